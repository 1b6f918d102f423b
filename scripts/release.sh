#!/usr/bin/env bash
# The release build: `vcfq` with its debug information moved into `vcfq.debug` beside it
# (objcopy --only-keep-debug, then --strip-debug with a .gnu_debuglink to it). Backtraces
# still show file:line while vcfq.debug sits next to the binary; without it they show
# function names. Prints the binary's path.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
command -v objcopy >/dev/null 2>&1 || apt_install release binutils
cargo build --locked --release --bin vcfq >&2
out="$CARGO_TARGET_DIR/release"
objcopy --only-keep-debug "$out/vcfq" "$out/vcfq.debug"
objcopy --strip-debug --add-gnu-debuglink="$out/vcfq.debug" "$out/vcfq"
echo "$out/vcfq"
