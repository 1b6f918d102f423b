#!/usr/bin/env bash
# The main job: build vcfq, generate an example VCF (20,000 records, 8 samples, BGZF) and run
# the quick-start script over it.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
cargo build --locked --bin vcfq
vcfq="$CARGO_TARGET_DIR/debug/vcfq"
mkdir -p data
[ -f data/example.vcf.gz ] || "$vcfq" gen data/example.vcf.gz --records 20000 --samples 8
"$vcfq" -f queries/quickstart.sql
