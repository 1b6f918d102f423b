#!/usr/bin/env python3
"""Load test of `vcfq serve` (loopback only, bounded): N concurrent ADBC clients run a mix of
queries for a fixed time; reports throughput, p50/p99 latency per query kind, errors, and the
server's peak RSS (sampled from /proc).

    cargo build --release
    . scripts/clients.sh            # the ADBC driver venv ($VCFQ_PYTHON)
    $VCFQ_PYTHON benches/flight_load.py --clients 32 --seconds 60
"""
import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time

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


QUERIES = {
    # kind: (sql, parameters or None)
    "count": ("SELECT count(*) FROM calls", None),
    "group_by_chrom": ("SELECT chrom, count(*) AS n FROM calls GROUP BY chrom ORDER BY chrom", None),
    "af_filter": ("SELECT count(*) FROM calls WHERE info.AF[1] > 0.1", None),
    "region_prepared": ("SELECT chrom, pos, ref, alt FROM calls WHERE chrom = ? AND pos BETWEEN ? AND ?", "region"),
    "rows_fetch": ("SELECT chrom, pos, id, ref, alt, qual FROM calls WHERE chrom = 'chr3'", None),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--binary", default=vcfq_binary())
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="vcfq-load-")
    vcf = os.path.join(work, "load.vcf.gz")
    subprocess.run([args.binary, "gen", vcf, "--records", str(args.records), "--samples", "4"], check=True)
    subprocess.run(["tabix", "-p", "vcf", vcf], check=True)
    config = os.path.join(work, "server.toml")
    with open(config, "w") as f:
        f.write(f'addr = "127.0.0.1:0"\nallow_anonymous = true\nmemory_limit_mb = 2048\n'
                f'[[tables]]\nname = "calls"\nlocation = "{vcf}"\n')
    server = subprocess.Popen([args.binary, "serve", "--config", config], stdout=subprocess.PIPE, text=True)
    line = server.stdout.readline()
    addr = line.strip().rsplit("://", 1)[-1]
    uri = f"grpc://{addr}"

    stop = time.monotonic() + args.seconds
    latencies = {k: [] for k in QUERIES}
    errors = []
    lock = threading.Lock()
    peak = [0.0]

    def sample_rss():
        while time.monotonic() < stop + 1:
            peak[0] = max(peak[0], rss_mib(server.pid))
            time.sleep(0.2)

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

    sampler = threading.Thread(target=sample_rss, daemon=True)
    sampler.start()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    t_start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t_start
    server.terminate()
    server.wait(timeout=30)

    total = sum(len(v) for v in latencies.values())
    print(f"{args.clients} clients, {elapsed:.0f} s, {args.records} records: "
          f"{total} queries, {total / elapsed:.1f} queries/s, {len(errors)} errors, "
          f"server peak RSS {peak[0]:.0f} MiB")
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
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
