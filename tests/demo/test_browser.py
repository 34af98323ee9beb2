"""A real browser on the demo: headless Debian Chromium driven by Selenium through /usr/bin/chromedriver.

The browser is installed by ``tools/install_browser.sh`` (apt: chromium + chromium-driver), never downloaded by a
tool. Opens the page, clicks Generate on the Driving tab and waits for the rollout's ``<video>`` element.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from worldgen.demo.screenshot import CHROMEDRIVER, chromium, open_and_generate

pytestmark = [pytest.mark.slow,  # a real browser
              pytest.mark.skipif(not Path(CHROMEDRIVER).exists() or not shutil.which("chromium"),
                                 reason="Debian chromium + chromium-driver not installed (tools/install_browser.sh)")]


def test_page_generates_a_video(server, tmp_path):
    driver = chromium(tmp_path / "profile")
    try:
        info = open_and_generate(driver, server[1], timeout=120)
        assert info["title"] == "worldgen demo"
        assert info["src"] and ".mp4" in info["src"]
        assert "done: 16 frames" in info["status"]
        from selenium.webdriver.common.by import By

        tabs = [b.text for b in driver.find_elements(By.CSS_SELECTOR, "button[role='tab']")]
        assert {"Driving", "Text to video", "Drift"} <= set(tabs), tabs
        driver.save_screenshot(str(tmp_path / "demo.png"))
        assert (tmp_path / "demo.png").stat().st_size > 10_000
    finally:
        driver.quit()


def test_page_shows_a_refused_request_as_a_message(server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    driver = chromium(tmp_path / "profile")
    try:
        driver.get(server[1])
        wait = WebDriverWait(driver, 60)
        wait.until(EC.element_to_be_clickable((By.ID, "drive-generate")))
        next(b for b in driver.find_elements(By.CSS_SELECTOR, "button[role='tab']") if b.text == "Drift").click()
        wait.until(EC.element_to_be_clickable((By.ID, "drift-generate"))).click()
        message = "pick generated videos or upload mp4 files first"
        wait.until(lambda d: message in d.find_element(By.TAG_NAME, "body").text)
        body = driver.find_element(By.TAG_NAME, "body").text
        assert "Traceback" not in body and 'File "' not in body
    finally:
        driver.quit()
