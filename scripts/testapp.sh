#!/usr/bin/env bash
# Builds the Grafana-frontend test app (testapp/, see testapp/README.md) into testapp/dist,
# which the Grafana stand-in serves in frontend mode (`cargo run -p grafana-stub -- --frontend`).
# Installs node and npm from the OS packages (Debian/Ubuntu) when missing. Skips the build
# when package-lock.json, the Vite config, index.html and src/ are unchanged since the last
# one (a hash in testapp/dist/.stamp). Prints the dist path. FORCE=1 rebuilds anyway.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
app="$root/testapp"
dist="$app/dist"
stamp="$dist/.stamp"

fail() {
  echo "testapp.sh: $*" >&2
  exit 1
}

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  command -v apt-get >/dev/null || fail "node and npm are missing; install Node.js 18 or newer with npm"
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || fail "node and npm are missing, and installing them needs root or sudo"
    sudo="sudo"
  fi
  echo "Installing nodejs and npm ..." >&2
  $sudo apt-get update -qq || fail "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null \
    || fail "could not install nodejs and npm with apt-get"
fi
major="$(node -p 'process.versions.node.split(".")[0]')"
((major >= 18)) || fail "Node.js $(node --version) is too old: the test app needs 18 or newer"

hash="$(
  cd "$app" &&
    { find src -type f | LC_ALL=C sort; printf "%s\n" package-lock.json vite.config.js index.html; } |
    while read -r f; do printf '%s\n' "$f"; sha256sum <"$f"; done | sha256sum | cut -d' ' -f1
)"
if [[ -z "${FORCE:-}" && -f "$stamp" && "$(cat "$stamp")" == "$hash" && -f "$dist/index.html" ]]; then
  echo "testapp.sh: up to date" >&2
  echo "$dist"
  exit 0
fi

cd "$app"
start=$SECONDS
echo "testapp.sh: npm ci ..." >&2
npm ci --no-audit --no-fund --loglevel=error >&2 || fail "npm ci failed (is the npm registry reachable?)"
echo "testapp.sh: vite build ..." >&2
npx --no-install vite build --logLevel warn >&2 || fail "vite build failed"
[[ -f "$dist/index.html" ]] || fail "the build left no $dist/index.html"
echo "$hash" >"$stamp"
echo "testapp.sh: built in $((SECONDS - start)) s ($(du -sh "$dist" | cut -f1))" >&2
echo "$dist"
