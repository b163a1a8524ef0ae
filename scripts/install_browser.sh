#!/usr/bin/env bash
# Install Debian's Chromium for the report tests that open the HTML report in a headless browser
# (tests/test_report_browser.py). Needs root (CI runs as root); safe to run again.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  echo "chromium already installed: $(chromium --version 2>/dev/null)"
  exit 0
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
echo "installed $(chromium --version 2>/dev/null)"
