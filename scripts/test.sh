#!/usr/bin/env bash
# Every test: unit tests, the sqllogictest files, the CLI and saved-query tests, the Flight SQL
# server with real clients (ADBC, JDBC), Kafka tables and sinks on a real broker, and (when the
# shared corpus is beside the clone) the bcftools conformance check over real-world VCFs.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
. scripts/clients.sh
# a real Kafka broker for tests/integration/kafka.rs, stopped when this script ends
kafka_dir="$(mktemp -d)"
trap 'scripts/kafka stop "$kafka_dir"; rm -rf "$kafka_dir"' EXIT
VCFQ_KAFKA_BOOTSTRAP="$(scripts/kafka start "$kafka_dir")"
export VCFQ_KAFKA_BOOTSTRAP
cargo test --locked --workspace
conformance=../shared/tools/vcf-conformance
if [ -x "$conformance" ] || [ -f "$conformance" ]; then
  # every difference from bcftools must be one of the documented, deliberate ones
  report=$(python3 "$conformance" --vcfq "$CARGO_TARGET_DIR/debug/vcfq" || true)
  echo "$report"
  known=$(grep -v '^#' tests/conformance-known-differences.tsv | cut -f1 | sed '/^$/d' || true)
  failed=$(echo "$report" | sed -n 's/^FAIL \([^:]*\):.*/\1/p')
  if [ -n "$known" ]; then
    unexpected=$(echo "$failed" | grep -vxF "$known" || true)
  else
    unexpected=$failed
  fi
  if [ -n "$unexpected" ] || ! echo "$report" | tail -n 1 | grep -q "corpus files agree"; then
    echo "test: conformance differences not in tests/conformance-known-differences.tsv: ${unexpected:-no summary line}" >&2
    exit 1
  fi
  echo "test: conformance ok (known, documented differences: $(printf '%s' "$known" | grep -c . || true))"
else
  echo "test: $conformance not found; conformance check skipped"
fi
