#!/usr/bin/env bash
# Installs what grender needs at run time and test time, if it is missing:
# Chromium (the lighter headless shell, plus the full browser as a fallback) and
# fonts with CJK coverage, from the OS packages (Debian/Ubuntu). What only the tests need is
# installed by scripts/test-deps.sh.
set -euo pipefail

packages=(chromium-headless-shell chromium fonts-noto-cjk fonts-liberation libnss3-tools)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  if ! command -v apt-get >/dev/null; then
    echo "grender needs: ${missing[*]} (install Chromium and a CJK font with your package manager)" >&2
    exit 1
  fi
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  echo "Installing ${missing[*]} ..." >&2
  $sudo apt-get update -qq
  # chromium-headless-shell is missing from some releases; the full browser then serves.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk fonts-liberation libnss3-tools >/dev/null
fi
