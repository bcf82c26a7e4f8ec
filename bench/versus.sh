#!/bin/bash
# grender (defaults, and with a memory budget) beside the official Node renderer, alternating,
# in one run, on the Grafana-frontend test app: the figures of docs/adr/0012's last table.
#
#   bench/versus.sh NODE_RENDERER_DIR [ROUNDS] [BUDGET_MIB]
#   STAND_IN=1 bench/versus.sh …   # on the stand-in's canvas page (8 MiB bundle) instead
#
# NODE_RENDERER_DIR: grafana-image-renderer v4.x checked out and built with `npx tsc`
# (see bench/bench.py --node-renderer). Release builds are made once, first.
set -euo pipefail
node_dir=${1:?usage: bench/versus.sh NODE_RENDERER_DIR [ROUNDS] [BUDGET_MIB]}
rounds=${2:-2}
budget=${3:-896}
cd "$(dirname "$0")/.."
cargo build --release --quiet -p grender -p grafana-stub --bins --example cdp_floor
page=--frontend
[ "${STAND_IN:-0}" = 1 ] && page=--bundle-kib=8192
common=("$page" --no-floor --no-build -n 10 --clients 1,8 --per-client 5 --storm 0 --idle-wait 60 --after-idle)
for r in $(seq "$rounds"); do
  echo "=== round $r: Node renderer"
  python3 bench/bench.py "${common[@]}" --node-renderer "$node_dir" | tail -10
  echo "=== round $r: grender, defaults"
  python3 bench/bench.py "${common[@]}" | tail -10
  echo "=== round $r: grender, browser.memory-budget=$budget"
  python3 bench/bench.py "${common[@]}" --grender-arg=--browser.memory-budget="$budget" | tail -10
done
