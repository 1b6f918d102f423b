#!/usr/bin/env python3
"""Load test of `vcfq serve` (loopback only, bounded): N concurrent ADBC clients run a mix of
queries for a fixed time; reports throughput, p50/p99 latency per query kind, errors, and the
server's peak RSS (sampled from /proc).

    cargo build --release
    . scripts/clients.sh            # the ADBC driver venv ($VCFQ_PYTHON)
    $VCFQ_PYTHON benches/flight_load.py --clients 32 --seconds 60
    $VCFQ_PYTHON benches/flight_load.py --observability --clients 16 --seconds 30 --rounds 3
        # metrics + audit + traces on vs off, rounds interleaved: throughput ratio
"""
import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import adbc_driver_flightsql.dbapi as flight_sql

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def vcfq_binary():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/vcfq/target"))
    return os.path.join(target, "release", "vcfq")


def rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid):
    """User + system CPU time of a process so far (from /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


QUERIES = {
    # kind: (sql, parameters or None)
    "count": ("SELECT count(*) FROM calls", None),
    "group_by_chrom": ("SELECT chrom, count(*) AS n FROM calls GROUP BY chrom ORDER BY chrom", None),
    "af_filter": ("SELECT count(*) FROM calls WHERE info.AF[1] > 0.1", None),
    "region_prepared": ("SELECT chrom, pos, ref, alt FROM calls WHERE chrom = ? AND pos BETWEEN ? AND ?", "region"),
    "rows_fetch": ("SELECT chrom, pos, id, ref, alt, qual FROM calls WHERE chrom = 'chr3'", None),
}


def run_load(args, work, vcf, observed, round_no):
    """One timed run against a fresh server; observed: what --observe names (metrics, an audit
    trail, OTLP traces to the test suite's OTLP receiver) on. Returns (queries, seconds,
    latencies, errors, peak RSS MiB, spans received)."""
    parts = set(args.observe.split(",")) if observed else set()
    config = os.path.join(work, f"server-{round_no}-{int(observed)}.toml")
    with open(config, "w") as f:
        f.write(f'addr = "127.0.0.1:0"\nallow_anonymous = true\nmemory_limit_mb = 2048\n'
                f'[[tables]]\nname = "calls"\nlocation = "{vcf}"\n')
        if "metrics" in parts:
            f.write('[metrics]\naddr = "127.0.0.1:0"\n')
        if "audit" in parts:
            f.write(f'[audit]\npath = "audit-{round_no}.jsonl"\n')
    env = dict(os.environ)
    sink = None
    if "traces" in parts:
        # a receiver that only counts spans: a collector runs elsewhere in a deployment, and one
        # decoding every span here would take the cores the server is measured on
        sink = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "clients", "otlp_sink.py"),
                                 "--count"], stdout=subprocess.PIPE, text=True)
        ports = json.loads(sink.stdout.readline())
        env.update({"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{ports['grpc']}",
                    "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    server = subprocess.Popen([args.binary, "serve", "--config", config], stdout=subprocess.PIPE,
                              text=True, env=env)
    line = server.stdout.readline()
    addr = line.strip().rsplit("://", 1)[-1]
    uri = f"grpc://{addr}"
    metrics_url = None
    if "metrics" in parts:
        metrics_url = server.stdout.readline().strip().rsplit(" ", 1)[-1]

    stop = time.monotonic() + args.seconds
    latencies = {k: [] for k in QUERIES}
    errors = []
    lock = threading.Lock()
    peak = [0.0]

    def sample_rss():
        while time.monotonic() < stop + 1:
            peak[0] = max(peak[0], rss_mib(server.pid))
            time.sleep(0.2)

    def scrape():
        # a Prometheus server's scrape interval, shortened
        while metrics_url and time.monotonic() < stop:
            try:
                urllib.request.urlopen(metrics_url, timeout=5).read()
            except OSError as e:
                with lock:
                    errors.append(f"scrape: {e}")
            time.sleep(1)

    def client(seed):
        rng = random.Random(seed)
        try:
            conn = flight_sql.connect(uri)
        except Exception as e:  # noqa: BLE001 - reported below
            with lock:
                errors.append(f"connect: {e}")
            return
        with conn:
            kinds = list(QUERIES)
            while time.monotonic() < stop:
                kind = rng.choice(kinds)
                sql, params = QUERIES[kind]
                t0 = time.monotonic()
                try:
                    with conn.cursor() as cur:
                        if params == "region":
                            start = rng.randrange(1, 20_000_000)
                            cur.execute(sql, parameters=(f"chr{rng.randrange(1, 5)}", start, start + 200_000))
                        else:
                            cur.execute(sql)
                        cur.fetch_arrow_table()
                except Exception as e:  # noqa: BLE001 - reported below
                    with lock:
                        errors.append(f"{kind}: {e}")
                    continue
                with lock:
                    latencies[kind].append(time.monotonic() - t0)

    helpers = [threading.Thread(target=sample_rss, daemon=True), threading.Thread(target=scrape, daemon=True)]
    for h in helpers:
        h.start()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    t_start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t_start
    cpu = cpu_seconds(server.pid)
    server.terminate()
    server.wait(timeout=30)
    spans = 0
    if sink is not None:
        time.sleep(1)
        sink.terminate()
        spans = json.loads(sink.stdout.read().strip().splitlines()[-1])["spans"]
        sink.wait()
    total = sum(len(v) for v in latencies.values())
    return total, elapsed, latencies, errors, peak[0], spans, cpu


def report(label, args, total, elapsed, latencies, errors, peak, spans, cpu):
    print(f"{label}: {args.clients} clients, {elapsed:.0f} s, {args.records} records: "
          f"{total} queries, {total / elapsed:.1f} queries/s, {len(errors)} errors, "
          f"server peak RSS {peak:.0f} MiB, server CPU {1000 * cpu / max(total, 1):.2f} ms/query"
          + (f", {spans} spans received" if spans else ""))
    print("| query | n | p50 ms | p99 ms |")
    print("|---|---|---|---|")
    everything = []
    for kind, values in latencies.items():
        if not values:
            continue
        everything.extend(values)
        values.sort()
        p50 = statistics.median(values) * 1000
        p99 = values[min(len(values) - 1, int(len(values) * 0.99))] * 1000
        print(f"| {kind} | {len(values)} | {p50:.0f} | {p99:.0f} |")
    if everything:
        everything.sort()
        print(f"| all | {len(everything)} | {statistics.median(everything) * 1000:.0f} | "
              f"{everything[min(len(everything) - 1, int(len(everything) * 0.99))] * 1000:.0f} |")
    for e in errors[:10]:
        print("error:", e, file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--binary", default=vcfq_binary())
    ap.add_argument("--observability", action="store_true",
                    help="also run with metrics (scraped every second), an audit trail and OTLP traces on; "
                         "rounds alternate, and the throughput ratio on/off is printed")
    ap.add_argument("--rounds", type=int, default=3, help="with --observability: rounds of off, on")
    ap.add_argument("--observe", default="metrics,audit,traces",
                    help="with --observability: what is on (comma-separated: metrics, audit, traces)")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="vcfq-load-")
    vcf = os.path.join(work, "load.vcf.gz")
    subprocess.run([args.binary, "gen", vcf, "--records", str(args.records), "--samples", "4"], check=True)
    subprocess.run(["tabix", "-p", "vcf", vcf], check=True)
    failed = False
    if not args.observability:
        result = run_load(args, work, vcf, False, 0)
        report("plain", args, *result)
        failed = bool(result[3])
    else:
        rates = {False: [], True: []}
        cpu = {False: [], True: []}
        for round_no in range(args.rounds):
            # alternate which goes first, so that drift of the machine falls on both
            for observed in ([False, True] if round_no % 2 == 0 else [True, False]):
                result = run_load(args, work, vcf, observed, round_no)
                report(f"round {round_no + 1}, observability {'on' if observed else 'off'}", args, *result)
                rates[observed].append(result[0] / result[1])
                cpu[observed].append(result[6] / max(result[0], 1))
                failed |= bool(result[3])
        off, on = max(rates[False]), max(rates[True])
        print(f"throughput, best of {args.rounds}: off {off:.1f} queries/s, on {on:.1f} queries/s, "
              f"on/off {on / off:.3f} (overhead {100 * (1 - on / off):.1f}%)")
        print(f"medians: off {statistics.median(rates[False]):.1f}, on {statistics.median(rates[True]):.1f}")
        # what the server itself spends per query (the clients and the OTLP receiver share
        # the machine's cores, so throughput also counts their CPU)
        off_cpu, on_cpu = statistics.median(cpu[False]) * 1000, statistics.median(cpu[True]) * 1000
        print(f"server CPU per query, medians: off {off_cpu:.2f} ms, on {on_cpu:.2f} ms, "
              f"on/off {on_cpu / off_cpu:.3f}")
    shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
