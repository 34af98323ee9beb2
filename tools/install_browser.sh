#!/usr/bin/env bash
# Install Debian's headless browser for the demo's browser test: chromium + chromium-driver (/usr/bin/chromedriver).
# Idempotent: does nothing when both are already installed. Never downloads a browser build of its own; only apt.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_browser.sh: apt-get not found; install chromium and chromium-driver with your package manager" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver
command -v chromium >/dev/null && [ -x /usr/bin/chromedriver ]
