#!/usr/bin/env python3
"""Iggy write/read benchmark: `INSERT INTO topic SELECT * FROM` a sites VCF and reading the
topic back (`SELECT count(*)` and a full-row read), next to Iggy's own `iggy-bench`
(pinned-producer with one producer like vcfq's one writer, pinned-consumer with one consumer per
core like vcfq's readers; the same message count and size) on the same
server, in the same run.

    scripts/release.sh && python3 benches/iggy_bench.py          # 2,000,000 records
    python3 benches/iggy_bench.py --records 200000 --repeat 1    # a quick look

Each step runs once per round, vcfq's and iggy-bench's interleaved, and the best round of each
is compared (the same binary's rates moved by 2x between runs on this 2-core host, the peer's
as much); the medians of the rounds follow. iggy-bench is timed two ways: by its own "total
time" (from after its logins to its last message) and by the wall time of its process, which
is how vcfq is timed (start-up, logins and planning included).

Builds `iggy-bench` from the same source tarball as the server on first use
(`scripts/iggy install bench`).
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from common import full_read, timed_rss, vcfq_binary

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IGGY = os.path.join(ROOT, "scripts", "iggy")
BENCH = os.path.expanduser("~/.cache/vcfq/iggy-0.8.0/bin/iggy-bench")


def iggy_bench(kind, address, records, size, batch, actors):
    """Messages/s of iggy-bench with `actors` producers or consumers: the messages it moved
    over its own "total time" (the time its actors ran, first start to last end), over the
    wall time of its whole process (start-up and logins included, as vcfq's times are), and its
    "Total throughput" figure. The latter is a sum of each actor's mean over sampling windows;
    with actors that do not run quite together (two consumers and the server on two cores) it
    came out anywhere between 1.6 and 4.7 M messages/s for the same 2 M messages, so the
    comparison uses the former, the same wall-clock measure as vcfq's."""
    flag = "--producers" if kind == "pinned-producer" else "--consumers"
    per_actor = max(1, records // actors // batch)
    cmd = [BENCH, "-m", str(size), "-P", str(batch), "-b", str(per_actor), "-u", "vcfq", "-p", "vcfq-test",
           "-w", "0s"] + (["--reuse-streams"] if kind == "pinned-consumer" else []) + [
           kind, flag, str(actors), "--streams", str(actors), "tcp", "--server-address", address]
    t0 = time.monotonic()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    wall = time.monotonic() - t0
    text = out.stdout + out.stderr
    m = re.findall(r"Total throughput: [\d.]+ MB/s, (\d+) messages/s.*total time: ([\d.]+) s", text)
    if not m:
        raise SystemExit(f"iggy-bench {kind} gave no summary:\n{text[-3000:]}")
    moved = actors * per_actor * batch
    return moved / float(m[-1][1]), moved / wall, float(m[-1][0])


def stored_bytes(server_dir):
    """Bytes of the message logs the server keeps under server_dir (messages and their headers)."""
    total = 0
    for parent, _, files in os.walk(os.path.join(server_dir, "data", "streams")):
        total += sum(os.path.getsize(os.path.join(parent, f)) for f in files if f.endswith(".log"))
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=2_000_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3,
                    help="rounds, each step of both tools once per round (interleaved); best of them")
    ap.add_argument("--binary", default=vcfq_binary())
    args = ap.parse_args()
    vcfq = args.binary
    subprocess.run([IGGY, "install", "bench"], check=True)
    work = tempfile.mkdtemp(prefix="vcfq-iggy-bench-")
    vcf = os.path.join(work, "sites.vcf.gz")
    subprocess.run([vcfq, "gen", vcf, "--records", str(args.records)], check=True)
    # the same rows already decoded (Parquet): what the sink itself takes, as iggy-bench's
    # producer sends messages it made in memory
    parquet = os.path.join(work, "sites.parquet")
    subprocess.run([vcfq, "-q", "-c", f"COPY (SELECT * FROM '{vcf}') TO '{parquet}' STORED AS PARQUET"],
                   check=True, capture_output=True)
    server_dir = os.path.join(work, "server")
    url = subprocess.run([IGGY, "start", server_dir], check=True, capture_output=True, text=True).stdout.strip()
    address = url.rsplit("@", 1)[-1]
    readers = min(args.partitions, os.cpu_count() or 1)
    batch = 1000
    samples = {}
    size = None

    def keep(name, rate, rss=None):
        samples.setdefault(name, []).append((rate, rss))

    try:
        for r in range(args.repeat):
            def table(topic):
                return (f"CREATE EXTERNAL TABLE t STORED AS IGGY LOCATION '{url}/bench/{topic}' "
                        f"OPTIONS ('like' '{vcf}', 'partitions' '{args.partitions}');")
            secs, out, rss = timed_rss([vcfq, "-q", "--format", "tsv", "-c",
                                        table(f"calls{r}") + f" INSERT INTO t SELECT * FROM '{vcf}'"])
            written = int(out.strip().splitlines()[-1])
            assert written == args.records, out
            keep("write", written / secs, rss)
            if size is None:
                # iggy-bench's messages as large as vcfq's: what the server stores per message
                # (its 64-byte message header, the JSON row, the key header), less the header
                size = max(1, stored_bytes(server_dir) // written - 64)
            secs, out, rss = timed_rss([vcfq, "-q", "--format", "tsv", "-c",
                                        table(f"parquet{r}") + f" INSERT INTO t SELECT * FROM '{parquet}'"])
            assert int(out.strip().splitlines()[-1]) == args.records, out
            keep("write_decoded", args.records / secs, rss)
            secs, out, rss = timed_rss([vcfq, "-q", "--format", "tsv", "-c", table(f"calls{r}") + " SELECT count(*) FROM t"])
            assert int(out.strip().splitlines()[-1]) == args.records, out
            keep("count", args.records / secs, rss)
            secs, rows, rss = full_read(vcfq, table(f"calls{r}"))
            assert rows == args.records, rows
            keep("full", args.records / secs, rss)
            # as many actors as vcfq has writers (one) and readers (one per core)
            rate, wall, own = iggy_bench("pinned-producer", address, args.records, size, batch, 1)
            keep("peer_write", rate)
            keep("peer_write_wall", wall)
            keep("peer_write_own", own)
            # the consumers read the streams that as many producers wrote
            iggy_bench("pinned-producer", address, args.records, size, batch, readers)
            rate, wall, own = iggy_bench("pinned-consumer", address, args.records, size, batch, readers)
            keep("peer_read", rate)
            keep("peer_read_wall", wall)
            keep("peer_read_own", own)
    finally:
        subprocess.run([IGGY, "stop", server_dir], check=False)
        # the generated VCF, its Parquet copy and the server's data: gigabytes
        shutil.rmtree(work, ignore_errors=True)

    best = {name: max(runs, key=lambda r: r[0]) for name, runs in samples.items()}
    median = {name: statistics.median(r[0] for r in runs) for name, runs in samples.items()}
    rows = [
        ("write (INSERT INTO topic SELECT * FROM vcf)", "write", "peer_write"),
        ("write from the same rows decoded (SELECT * FROM parquet)", "write_decoded", "peer_write"),
        ("read (SELECT count(*) FROM topic)", "count", "peer_read"),
        ("read, every column decoded", "full", "peer_read"),
    ]
    print(f"{args.records} records, {args.partitions} partitions, best of {args.repeat} interleaved rounds; "
          f"iggy-bench: 1 producer / {readers} consumers (as vcfq: one writer, one reader per core), "
          f"{size}-byte messages, batches of {batch}")
    print("| step | vcfq records/s | iggy-bench records/s (its total time) | vcfq / iggy-bench "
          "| iggy-bench records/s (its process) | vcfq / iggy-bench process | vcfq peak RSS MiB |")
    print("|---|---|---|---|---|---|---|")
    for name, ours, peer in rows:
        (rate, rss), (peer_rate, _), (peer_wall, _) = best[ours], best[peer], best[peer + "_wall"]
        print(f"| {name} | {rate:,.0f} | {peer_rate:,.0f} | {rate / peer_rate:.2f} | {peer_wall:,.0f} | "
              f"{rate / peer_wall:.2f} | {rss:.0f} |")
    print("medians of the rounds:")
    for name, ours, peer in rows:
        print(f"- {name}: vcfq {median[ours]:,.0f}, iggy-bench {median[peer]:,.0f} (total time) / "
              f"{median[peer + '_wall']:,.0f} (process): {median[ours] / median[peer]:.2f} / "
              f"{median[ours] / median[peer + '_wall']:.2f}")
    print(f"iggy-bench records/s = its messages / its total time; its own \"Total throughput\" said "
          f"{best['peer_write_own'][0]:,.0f} (producer) and {best['peer_read_own'][0]:,.0f} (consumers) at best")
    print("vcfq's times are its whole process (start-up, logins, planning included), as are "
          "iggy-bench's process times; iggy-bench's total time starts after its logins")
    print("vcfq write time includes reading and decoding the input (VCF or Parquet) and the fsync "
          "flush; read times include decoding messages into Arrow (count(*) decodes one column, to "
          "prove each message decodes); iggy-bench sends messages it made in memory and reads bytes "
          "without looking at them")


if __name__ == "__main__":
    sys.exit(main())
