"""Screenshot of the running demo with headless Debian Chromium (Selenium + /usr/bin/chromedriver), for the README.

    python -m worldgen.demo.screenshot --url http://127.0.0.1:7860 --out docs/demo.png   # a demo that is running
    python -m worldgen.demo.screenshot --checkpoints checkpoints --out docs/demo.png       # start one here, shoot

Opens the page, clicks Generate on the Driving tab, waits for the rollout's ``<video>`` and saves a PNG. The same
``open_and_generate`` drives the browser test. Install the browser with ``tools/install_browser.sh``.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Sequence

CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage")


def chromium(profile: str | Path, size=(1400, 1000)):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser = shutil.which("chromium")
    if browser is None or not Path(CHROMEDRIVER).exists():
        raise FileNotFoundError("chromium / chromedriver not installed: run tools/install_browser.sh")
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for flag in FLAGS + (f"--window-size={size[0]},{size[1]}", f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


TABS = {"drive": ("Driving", "drive"), "t2v": ("Text to video", "t2v")}  # --tab -> (tab label, element id prefix)


def open_and_generate(driver, url: str, timeout: float = 300, tab: str = "drive") -> dict:
    """Open the demo, click Generate on ``tab`` (drive | t2v), wait for its ``<video>``; returns src and status."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    label, key = TABS[tab]
    driver.get(url)
    wait = WebDriverWait(driver, timeout)
    wait.until(EC.element_to_be_clickable((By.ID, "drive-generate")))
    next(b for b in driver.find_elements(By.CSS_SELECTOR, "button[role='tab']") if b.text == label).click()
    wait.until(EC.element_to_be_clickable((By.ID, f"{key}-generate"))).click()
    video = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, f"#{key}-video video")))
    wait.until(lambda d: "done:" in d.find_element(By.ID, f"{key}-status").text)
    return {"src": video.get_attribute("src"), "status": driver.find_element(By.ID, f"{key}-status").text,
            "title": driver.title, "page": driver.page_source}


def _serve_and_shoot(args: argparse.Namespace) -> int:
    import socket

    from worldgen.demo.app import DemoConfig, launch

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    demo, app, url = launch(DemoConfig(checkpoints=args.checkpoints, devices="cpu", default_horizon=args.horizon),
                            port=port, block=False)
    try:
        return main(["--url", url, "--out", args.out, "--height", str(args.height), "--tab", args.tab])
    finally:
        app.close()
        demo.pool.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:7860")
    parser.add_argument("--out", default="docs/demo.png")
    parser.add_argument("--height", type=int, default=1000)
    parser.add_argument("--checkpoints", help="start a demo on these checkpoints (CPU, free port) instead of --url")
    parser.add_argument("--horizon", type=int, default=64, help="default horizon of the started demo")
    parser.add_argument("--tab", choices=sorted(TABS), default="drive", help="which tab to generate on")
    args = parser.parse_args(argv)
    if args.checkpoints:
        return _serve_and_shoot(args)
    with tempfile.TemporaryDirectory() as profile:
        driver = chromium(profile, (1400, args.height))
        try:
            info = open_and_generate(driver, args.url, tab=args.tab)
            driver.execute_script("window.scrollTo(0, 0)")
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(args.out)
        finally:
            driver.quit()
    print(f"wrote {args.out}: {info['status']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
