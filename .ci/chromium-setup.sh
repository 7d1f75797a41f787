#!/usr/bin/env bash
# Debian's Chromium for the review loop's headless-browser check (tests/review): a person's
# view of a Label Studio task. Installed once; the test fails under CI without it.
set -euo pipefail
command -v chromium >/dev/null && { chromium --version 2>/dev/null | head -1; exit 0; }
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq && apt-get install -y -q --no-install-recommends chromium >/dev/null
chromium --version 2>/dev/null | head -1
