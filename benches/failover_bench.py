#!/usr/bin/env python3
"""Failover benchmark of a coordinated table (Iggy primary, Kafka fallback), on real servers.

For each run: a fresh Iggy server, `INSERT INTO` a coordinated table the rows of a generated
sites VCF, `kill -9` of the Iggy server a third of the way in (a third of the time the same
INSERT takes without failure), then the server restarted on its data directory and the table
read back. Reports, per run and as p50: time from the kill to the first acknowledgement by
the fallback, statement time against no failure, rows lost and rows read twice (both compared
with the VCF itself, row by row with EXCEPT ALL). Also coordinated INSERT throughput against
direct INSERTs into each platform.

    scripts/release.sh && python3 benches/failover_bench.py            # 1,000,000 rows, 5 runs
    python3 benches/failover_bench.py --records 200000 --runs 2        # a quick look
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IGGY = os.path.join(ROOT, "scripts", "iggy")
KAFKA = os.path.join(ROOT, "scripts", "kafka")


def vcfq_binary():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/vcfq/target"))
    return os.path.join(target, "release", "vcfq")


def sql(vcfq, text):
    out = subprocess.run([vcfq, "-q", "--format", "tsv", "-c", text], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"vcfq failed: {out.stderr.strip()}\n{text[:300]}")
    return out.stdout


def last_rows(out):
    """Rows of the last result in tsv output (header line skipped)."""
    blocks = [b for b in out.strip().split("\n\n") if b.strip()]
    lines = blocks[-1].splitlines() if blocks else []
    return [line.split("\t") for line in lines[1:]]


EXTRA = ""


def coordinated(name, iggy_url, bootstrap, vcf, topic, extra=""):
    extra = extra + EXTRA
    return (f"CREATE EXTERNAL TABLE {name} STORED AS STREAM LOCATION '{name}' OPTIONS ("
            f"'primary' '{iggy_url}/bench/{topic}', 'fallback' 'kafka://{bootstrap}/{topic}', "
            f"'like' '{vcf}', 'partitions' '4' {extra});")


HEALTH = ("SELECT role, state, messages_acknowledged, CAST(first_ack AS BIGINT), "
          "coalesce(last_transition_reason, '') FROM vcfq.stream_health ORDER BY role DESC;")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--binary", default=vcfq_binary())
    ap.add_argument("--window", type=int, help="the coordinated table's 'window' option")
    args = ap.parse_args()
    vcfq = args.binary
    global EXTRA
    if args.window:
        EXTRA = f", 'window' '{args.window}'"
    work = tempfile.mkdtemp(prefix="vcfq-failover-bench-")
    vcf = os.path.join(work, "sites.vcf.gz")
    subprocess.run([vcfq, "gen", vcf, "--records", str(args.records)], check=True)
    broker = os.path.join(work, "broker")
    bootstrap = subprocess.run([KAFKA, "start", broker], check=True, capture_output=True, text=True).stdout.strip()
    insert = f" INSERT INTO c SELECT * FROM '{vcf}';"
    results = []
    try:
        # without failure: coordinated, and direct into each platform
        server = os.path.join(work, "iggy-0")
        url = subprocess.run([IGGY, "start", server], check=True, capture_output=True, text=True).stdout.strip()
        t0 = time.monotonic()
        sql(vcfq, coordinated("c", url, bootstrap, vcf, "calm") + insert)
        calm = time.monotonic() - t0
        t0 = time.monotonic()
        sql(vcfq, f"CREATE EXTERNAL TABLE c STORED AS IGGY LOCATION '{url}/bench/direct' "
                  f"OPTIONS ('like' '{vcf}', 'partitions' '4');" + insert)
        direct_iggy = time.monotonic() - t0
        t0 = time.monotonic()
        sql(vcfq, f"CREATE EXTERNAL TABLE c STORED AS KAFKA LOCATION '{bootstrap}/direct' "
                  f"OPTIONS ('like' '{vcf}', 'partitions' '4');" + insert)
        direct_kafka = time.monotonic() - t0
        subprocess.run([IGGY, "stop", server], check=False)

        for run in range(args.runs):
            server = os.path.join(work, f"iggy-{run + 1}")
            url = subprocess.run([IGGY, "start", server], check=True, capture_output=True, text=True).stdout.strip()
            topic = f"run{run}"
            killed = {}

            def kill_later():
                time.sleep(calm / 3)
                pid = open(os.path.join(server, "pid")).read().strip()
                killed["at_ms"] = time.time() * 1000
                subprocess.run(["kill", "-9", pid], check=True)

            killer = threading.Thread(target=kill_later)
            t0 = time.monotonic()
            killer.start()
            out = sql(vcfq, coordinated("c", url, bootstrap, vcf, topic) + insert + " " + HEALTH)
            total = time.monotonic() - t0
            killer.join()
            health = {row[0]: row for row in last_rows(out)}
            first_fallback_ack = float(health["fallback"][3]) if health["fallback"][3] else float("nan")
            failover = (first_fallback_ack - killed["at_ms"]) / 1000
            # the primary back on its data, both platforms read
            url = subprocess.run([IGGY, "start", server], check=True, capture_output=True, text=True).stdout.strip()
            cols = "chrom, pos, id, ref, alt, qual"
            check = (coordinated("c", url, bootstrap, vcf, topic) +
                     f" SELECT (SELECT count(*) FROM (SELECT {cols} FROM '{vcf}' EXCEPT ALL SELECT {cols} FROM c)) AS lost,"
                     f" (SELECT count(*) FROM (SELECT {cols} FROM c EXCEPT ALL SELECT {cols} FROM '{vcf}')) AS extra,"
                     f" (SELECT count(*) FROM c) AS rows_read;")
            lost, extra, read = (int(v) for v in last_rows(sql(vcfq, check))[0])
            subprocess.run([IGGY, "stop", server], check=False)
            results.append((failover, total, lost, extra, read, health))
            print(f"run {run + 1}: failover {failover:.3f} s, statement {total:.2f} s (no failure {calm:.2f} s), "
                  f"lost {lost}, read twice {extra}, rows read {read}; primary acknowledged "
                  f"{health['primary'][2]}, fallback {health['fallback'][2]}", flush=True)
    finally:
        subprocess.run([KAFKA, "stop", broker], check=False)

    fo = [r[0] for r in results]
    tt = [r[1] for r in results]
    print()
    print(f"{args.records} rows, {args.runs} runs, kill -9 of the Iggy primary after {calm / 3:.2f} s")
    print("| measure | p50 | max |")
    print("|---|---|---|")
    print(f"| kill → first fallback acknowledgement | {statistics.median(fo):.3f} s | {max(fo):.3f} s |")
    print(f"| statement time with failover / without ({calm:.2f} s) | {statistics.median(tt) / calm:.2f} | {max(tt) / calm:.2f} |")
    print(f"| rows lost | {statistics.median([r[2] for r in results]):.0f} | {max(r[2] for r in results)} |")
    print(f"| rows read twice | {statistics.median([r[3] for r in results]):.0f} | {max(r[3] for r in results)} |")
    print()
    print("| INSERT of the whole file | seconds | coordinated / direct |")
    print("|---|---|---|")
    print(f"| coordinated (Iggy primary, no failure) | {calm:.2f} | |")
    print(f"| direct into Iggy | {direct_iggy:.2f} | {direct_iggy / calm:.2f} |")
    print(f"| direct into Kafka | {direct_kafka:.2f} | {direct_kafka / calm:.2f} |")


if __name__ == "__main__":
    sys.exit(main())
