#!/usr/bin/env bash
# Headless Chromium for the browser test (Debian's package; Playwright drives it via executable_path).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != 0 ]; then echo "chromium missing and not root: browser tests will be skipped" >&2; exit 0; fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq chromium >/dev/null
