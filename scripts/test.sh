#!/usr/bin/env bash
# Every test: unit tests, the sqllogictest files, the CLI and saved-query tests, the Flight SQL
# server with real clients (ADBC, JDBC), Kafka and Iggy tables and sinks on a real broker and a
# real Iggy server (built once from ../shared/vendor; without it the Iggy tests are skipped,
# saying so), and (when the shared corpus is beside the clone) the bcftools conformance check
# over real-world VCFs, run locally and again on a Ballista cluster of vcfq processes.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
. scripts/clients.sh
# bcftools: the peer that tests/integration/vectors.rs checks LD r² against (installed before
# the Iggy build below starts, so that two apt runs never meet)
command -v bcftools >/dev/null 2>&1 || apt_install test bcftools
# a real Kafka broker for tests/integration/kafka.rs and a real Iggy server for
# tests/integration/iggy.rs, stopped when this script ends
kafka_dir="$(mktemp -d)"
iggy_dir="$(mktemp -d)"
iggy_log="$iggy_dir.build.log"
cluster_dir="$(mktemp -d)"
cluster_pids=""
trap 'scripts/kafka stop "$kafka_dir"; scripts/iggy stop "$iggy_dir"; [ -z "$cluster_pids" ] || kill $cluster_pids 2>/dev/null || true; rm -rf "$kafka_dir" "$iggy_dir" "$iggy_log" "$cluster_dir"' EXIT
# On a fresh machine the Iggy server is built from source (about 11 minutes on two cores): that
# build runs beside vcfq's own, filling the cores that the long serial stretches of a cargo
# build leave idle.
iggy_build=""
if scripts/iggy available; then
  scripts/iggy install >"$iggy_log" 2>&1 &
  iggy_build=$!
fi
VCFQ_KAFKA_BOOTSTRAP="$(scripts/kafka start "$kafka_dir")"
export VCFQ_KAFKA_BOOTSTRAP
# the text model of embed_text (checked there against a NumPy forward pass)
scripts/models >/dev/null
cargo test --locked --workspace --no-run
if [ -n "$iggy_build" ]; then
  if ! wait "$iggy_build"; then
    cat "$iggy_log" >&2
    echo "test: building the Iggy server failed (log above)" >&2
    exit 1
  fi
  cat "$iggy_log" >&2
  VCFQ_IGGY="$(scripts/iggy start "$iggy_dir")"
  # the tests restart this server (kill -9, then start on the same DIR)
  export VCFQ_IGGY VCFQ_IGGY_DIR="$iggy_dir"
else
  echo "test: no Iggy server (neither \$IGGY_SERVER nor ../shared/vendor/iggy-server-0.8.0.tar.gz): Iggy tests skipped; set IGGY_SERVER=/path/to/iggy-server to run them"
fi
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
  # the same files through a cluster (a scheduler and two executors on loopback ports,
  # `vcfq --cluster`): every row and every error must be the local run's
  vcfq="$CARGO_TARGET_DIR/debug/vcfq"
  free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
  "$vcfq" scheduler --port 0 >"$cluster_dir/url" 2>"$cluster_dir/scheduler.log" &
  cluster_pids=$!
  for _ in $(seq 100); do [ -s "$cluster_dir/url" ] && break; sleep 0.1; done
  url="$(head -n 1 "$cluster_dir/url")"
  [ -n "$url" ] || { cat "$cluster_dir/scheduler.log" >&2; echo "test: vcfq scheduler did not start" >&2; exit 1; }
  for i in 1 2; do
    "$vcfq" executor --scheduler "$url" --port "$(free_port)" --task-port "$(free_port)" \
      --concurrency 2 --work-dir "$cluster_dir/executor$i" 2>"$cluster_dir/executor$i.log" &
    cluster_pids="$cluster_pids $!"
  done
  printf '#!/bin/sh\nexec "%s" --cluster "%s" "$@"\n' "$vcfq" "$url" >"$cluster_dir/vcfq"
  chmod +x "$cluster_dir/vcfq"
  on_cluster=$(python3 "$conformance" --vcfq "$cluster_dir/vcfq" || true)
  if [ "$on_cluster" != "$report" ]; then
    diff <(echo "$report") <(echo "$on_cluster") >&2 || true
    echo "test: the conformance check on a cluster ($url) differs from the local one (diff above: < local, > cluster)" >&2
    exit 1
  fi
  echo "test: conformance on a cluster ok: $(echo "$on_cluster" | tail -n 1)"
else
  echo "test: $conformance not found; conformance check skipped"
fi
