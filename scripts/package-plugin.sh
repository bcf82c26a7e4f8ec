#!/usr/bin/env bash
# Lays out Grafana's renderer plugin in dist/grafana-image-renderer/: plugin.json and the
# grender binary as plugin_start_linux_<arch>. On amd64 the binary is static (musl) when the
# musl target and musl-gcc are installed (rustup target add x86_64-unknown-linux-musl;
# apt-get install musl-tools), so it runs in Grafana's Alpine image as well as its Ubuntu
# one; otherwise it links glibc (Ubuntu-based Grafana images only). arm64 is added when a
# cross toolchain is installed (rustup target aarch64-unknown-linux-gnu plus
# gcc-aarch64-linux-gnu). Copy the directory into Grafana's plugins directory (README,
# "Plugin mode").
set -euo pipefail
cd "$(dirname "$0")/.."
out=dist/grafana-image-renderer
rm -rf "$out"
mkdir -p "$out"
cp plugin/plugin.json "$out/"
cp README.md "$out/README.md"

build() { # target triple ("" for this machine's), Go architecture name
  if [[ -z $1 ]]; then
    cargo build --release --locked -p grender
    cp target/release/grender "$out/plugin_start_linux_$2"
  else
    cargo build --release --locked -p grender --target "$1"
    cp "target/$1/release/grender" "$out/plugin_start_linux_$2"
  fi
  strip "$out/plugin_start_linux_$2" 2>/dev/null || true
  chmod 755 "$out/plugin_start_linux_$2"
}

musl_ready() {
  rustup target list --installed 2>/dev/null | grep -q x86_64-unknown-linux-musl && command -v musl-gcc >/dev/null
}
case "$(uname -m)" in
  x86_64)
    if musl_ready; then
      CC_x86_64_unknown_linux_musl=musl-gcc build x86_64-unknown-linux-musl amd64
    else
      echo "amd64 links glibc: for Grafana's Alpine image install the musl target and musl-tools" >&2
      build "" amd64
    fi ;;
  aarch64) build "" arm64 ;;
esac
if [[ $(uname -m) == x86_64 ]] && rustup target list --installed 2>/dev/null | grep -q aarch64-unknown-linux-gnu \
   && command -v aarch64-linux-gnu-gcc >/dev/null; then
  CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc build aarch64-unknown-linux-gnu arm64
else
  echo "arm64 skipped: no aarch64 cross toolchain (rustup target add aarch64-unknown-linux-gnu; apt-get install gcc-aarch64-linux-gnu)" >&2
fi
ls -l "$out"
