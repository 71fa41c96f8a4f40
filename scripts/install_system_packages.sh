#!/usr/bin/env bash
# The Debian programs some tests use, installed when missing: opus-tools (the Opus baseline
# of `audio-core eval`) and chromium (the browser test of `audio-core ui`, driven by
# Playwright with the system binary: no browser download). Called by tox's test env, so the
# README's test command (and .ci/run, which runs it) sets up everything the suite needs.
set -euo pipefail
missing=()
command -v opusenc >/dev/null || missing+=(opus-tools)
command -v chromium >/dev/null || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing ${missing[*]} with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
    echo "scripts/install_system_packages.sh: ${missing[*]} missing and not installable here" \
         "(needs root and apt-get); install them, or their tests fail saying so" >&2
fi
