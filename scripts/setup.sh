#!/usr/bin/env bash
# Installs what building vcfq needs on a fresh Debian machine (as root, or with sudo) and sets
# CARGO_TARGET_DIR (a cache outside the clone). Sourced by quickstart.sh and test.sh.
set -euo pipefail

# libssl-dev and zlib1g-dev: the bundled librdkafka (Kafka client) links against them;
# protobuf-compiler: Lance's build compiles its protobuf definitions with protoc
packages=(build-essential pkg-config ca-certificates python3 libssl-dev zlib1g-dev protobuf-compiler)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# apt_install WHO PACKAGE…: installs Debian packages (as root, or with sudo); also used by clients.sh
apt_install() {
  local who=$1 sudo=""
  shift
  [ $# -gt 0 ] || return 0
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "$who: installing $*" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}
apt_install setup ${missing[@]+"${missing[@]}"}
if ! command -v cargo >/dev/null 2>&1; then
  [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
fi
command -v cargo >/dev/null 2>&1 || { echo "setup: cargo (Rust 1.94 or newer) is needed: https://rustup.rs" >&2; exit 1; }
# Build outside the clone, so that repeated runs (and CI on this machine) are incremental.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vcfq/target}"
mkdir -p "$CARGO_TARGET_DIR"
# `target/` in the clone points there too, so `target/debug/vcfq` (as the conformance tool and
# plain `cargo build` expect) is the binary the scripts build.
if [ ! -e target ] && [ ! -L target ]; then
  ln -s "$CARGO_TARGET_DIR" target
fi
