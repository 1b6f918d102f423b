#!/usr/bin/env python3
"""Kafka write/read benchmark: `INSERT INTO topic SELECT * FROM` a sites VCF, and reading the
topic back, next to Kafka's own kafka-producer-perf-test / kafka-consumer-perf-test with the
same message count and size, on the same single-node broker, in the same run.

    cargo build --release && python3 benches/kafka_bench.py            # 2,000,000 records
    python3 benches/kafka_bench.py --records 200000                    # a quick look
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

from common import full_read, timed_rss, vcfq_binary

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KAFKA = os.path.join(ROOT, "scripts", "kafka")


def timed(cmd):
    t0 = time.monotonic()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return time.monotonic() - t0, out.stdout + out.stderr


def topic_bytes(data_dir, topic):
    total = 0
    for name in os.listdir(data_dir):
        if name.startswith(topic + "-"):
            for f in os.listdir(os.path.join(data_dir, name)):
                if f.endswith(".log"):
                    total += os.path.getsize(os.path.join(data_dir, name, f))
    return total


def java_tool(main_class, args):
    version = os.environ.get("KAFKA_VERSION", "4.1.1")
    home = os.path.expanduser(f"~/.cache/vcfq/kafka-{version}")
    cmd = ["java", "-Xmx1g", "-cp", f"{home}/lib/*", f"-Dlog4j2.configurationFile={home}/log4j2.properties",
           "-Dkafka.logs.dir=/tmp", main_class] + args
    return timed(cmd)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=2_000_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--binary", default=vcfq_binary())
    args = ap.parse_args()
    vcfq = args.binary
    work = tempfile.mkdtemp(prefix="vcfq-kafka-bench-")
    vcf = os.path.join(work, "sites.vcf.gz")
    subprocess.run([vcfq, "gen", vcf, "--records", str(args.records)], check=True)
    broker_dir = os.path.join(work, "broker")
    bootstrap = subprocess.run([KAFKA, "start", broker_dir], check=True, capture_output=True, text=True).stdout.strip()
    try:
        table = (f"CREATE EXTERNAL TABLE t STORED AS KAFKA LOCATION '{bootstrap}/calls' "
                 f"OPTIONS ('like' '{vcf}', 'partitions' '{args.partitions}');")
        secs, out, write_rss = timed_rss([vcfq, "-q", "--format", "tsv", "-c", table + f" INSERT INTO t SELECT * FROM '{vcf}'"])
        written = int(out.strip().splitlines()[-1])
        assert written == args.records, out
        stored = topic_bytes(os.path.join(broker_dir, "data"), "calls")
        size = max(1, stored // written)
        write_rps, write_mbs = written / secs, stored / secs / 1e6

        secs_r, out, read_rss = timed_rss([vcfq, "-q", "--format", "tsv", "-c", table + " SELECT count(*) FROM t"])
        read = int(out.strip().splitlines()[-1])
        assert read == args.records, out
        read_rps, read_mbs = read / secs_r, stored / secs_r / 1e6
        secs_f, full_rows, full_rss = full_read(vcfq, table)
        assert full_rows == args.records, full_rows
        full_rps, full_mbs = full_rows / secs_f, stored / secs_f / 1e6

        java_tool("org.apache.kafka.tools.TopicCommand",
                  ["--bootstrap-server", bootstrap, "--create", "--topic", "perf", "--partitions", str(args.partitions)])
        _, perf = java_tool("org.apache.kafka.tools.ProducerPerformance", [
            "--topic", "perf", "--num-records", str(args.records), "--record-size", str(size),
            "--throughput", "-1", "--producer-props", f"bootstrap.servers={bootstrap}", "acks=all",
            "enable.idempotence=true", "linger.ms=5"])
        m = re.findall(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\)", perf)
        peer_rps, peer_mbs = float(m[-1][1]), float(m[-1][2])
        _, cperf = java_tool("org.apache.kafka.tools.ConsumerPerformance", [
            "--bootstrap-server", bootstrap, "--topic", "perf", "--messages", str(args.records), "--hide-header"])
        rows = [line.split(",") for line in cperf.splitlines() if line.count(",") >= 5]
        if not rows:
            raise SystemExit(f"kafka-consumer-perf-test gave no result:\n{cperf}")
        fields = [f.strip() for f in rows[-1]]
        peer_read_mbs, peer_read_rps = float(fields[3]), float(fields[5])
    finally:
        subprocess.run([KAFKA, "stop", broker_dir], check=False)

    print(f"{args.records} records, {args.partitions} partitions, ~{size} bytes/message on the broker")
    print("| step | vcfq records/s | vcfq MB/s | peer records/s | peer MB/s | vcfq / peer |")
    print("|---|---|---|---|---|---|")
    print(f"| write (INSERT INTO topic SELECT * FROM vcf) | {write_rps:,.0f} | {write_mbs:.1f} | "
          f"{peer_rps:,.0f} | {peer_mbs:.1f} | {write_rps / peer_rps:.2f} |")
    print(f"| read (SELECT count(*) FROM topic) | {read_rps:,.0f} | {read_mbs:.1f} | "
          f"{peer_read_rps:,.0f} | {peer_read_mbs:.1f} | {read_rps / peer_read_rps:.2f} |")
    print(f"| read, every column decoded | {full_rps:,.0f} | {full_mbs:.1f} | "
          f"{peer_read_rps:,.0f} | {peer_read_mbs:.1f} | {full_rps / peer_read_rps:.2f} |")
    print(f"vcfq peak RSS: write {write_rss:.0f} MiB, read {read_rss:.0f} MiB, full read {full_rss:.0f} MiB")
    print("peer: kafka-producer-perf-test (acks=all, idempotent, linger.ms=5, same size) / "
          "kafka-consumer-perf-test; vcfq write time includes reading and parsing the VCF, "
          "read time includes decoding every message into Arrow")


if __name__ == "__main__":
    sys.exit(main())
