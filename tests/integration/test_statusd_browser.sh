#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ef-test: parallel
# The dashboard in headless Chromium: see tests/browser/run.sh (it installs
# chromium and playwright-core when it can, and skips cleanly when not).
exec bash "$(dirname "$0")/../browser/run.sh"
