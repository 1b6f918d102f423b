#!/usr/bin/env bash
# Every test: unit tests, the sqllogictest files, the CLI and saved-query tests, and (when the
# shared corpus is beside the clone) the bcftools conformance check over real-world VCFs.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
cargo test --locked --workspace
conformance=../shared/tools/vcf-conformance
if [ -x "$conformance" ] || [ -f "$conformance" ]; then
  python3 "$conformance" --vcfq "$CARGO_TARGET_DIR/debug/vcfq"
else
  echo "test: $conformance not found; conformance check skipped"
fi
