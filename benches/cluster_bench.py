#!/usr/bin/env python3
"""Queries locally and on a Ballista cluster of vcfq processes on this machine: one executor,
then two, with the split of each query's time into planning (the client opening the files and
planning; `EXPLAIN` of the same query run locally), the cluster's scheduling (queued until an
executor took the job), its execution (first task start to last task end, as the scheduler
reports it) and the rest (connecting, shipping plans, fetching results).

    scripts/release.sh && python3 benches/cluster_bench.py            # 4 M sites, 200 k x 100 genotypes
    python3 benches/cluster_bench.py --scale 0.1 --repeat 1             # a quick look

The executors share this machine's cores with each other and with the client, so the
numbers measure the overheads of distribution, not scale-out; the per-partition rates they
give feed the projection in the closing note and the README.
"""
import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from common import vcfq_binary

DURATION = re.compile(r"finished executing in ([\d.]+)(ms|s|µs|us|ns)")


def seconds(value, unit):
    return float(value) * {"s": 1.0, "ms": 1e-3, "µs": 1e-6, "us": 1e-6, "ns": 1e-9}[unit]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(vcfq, sql, cluster=None, split=None):
    """Wall seconds of one statement, its output, and the job execution seconds the client's
    Ballista log reports (None locally)."""
    cmd = [vcfq, "--format", "tsv"]
    if split:
        cmd += ["--set", f"vcf.min_split_bytes={split}"]
    if cluster:
        cmd += ["--cluster", cluster]
    cmd += ["-c", sql]
    env = dict(os.environ, VCFQ_LOG="info") if cluster else None
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"{sql}: {out.stderr[-2000:]}")
    job = None
    m = DURATION.findall(out.stderr)
    if m:
        job = sum(seconds(v, u) for v, u in m)
    return wall, out.stdout, job


class Cluster:
    """`vcfq scheduler` and N `vcfq executor`s on loopback, stopped by close()."""

    def __init__(self, vcfq, executors, concurrency, scheduling, work):
        self.procs = []
        sched = subprocess.Popen([vcfq, "scheduler", "--port", "0", "--scheduling", scheduling],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.procs.append(sched)
        self.url = sched.stdout.readline().strip()
        for i in range(executors):
            self.procs.append(subprocess.Popen(
                [vcfq, "executor", "--scheduler", self.url, "--port", str(free_port()),
                 "--task-port", str(free_port()), "--scheduling", scheduling,
                 "--concurrency", str(concurrency), "--work-dir", os.path.join(work, f"exec{i}")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(1.0)

    def close(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=3, help="runs per query and mode; best is kept")
    ap.add_argument("--split", default="4194304", help="vcf.min_split_bytes (bytes per unit)")
    ap.add_argument("--scheduling", default="push,pull",
                    help="comma-separated: push (the default of vcfq scheduler) and/or pull")
    ap.add_argument("--binary", default=vcfq_binary())
    args = ap.parse_args()
    vcfq = args.binary
    work = tempfile.mkdtemp(prefix="vcfq-cluster-bench-")
    try:
        sites = os.path.join(work, "sites.vcf.gz")
        geno = os.path.join(work, "geno.vcf.gz")
        subprocess.run([vcfq, "gen", sites, "--records", str(int(4_000_000 * args.scale))], check=True)
        subprocess.run([vcfq, "gen", geno, "--records", str(int(200_000 * args.scale)), "--samples", "100"],
                       check=True)
        queries = {
            "count": f"SELECT count(*) FROM '{sites}'",
            "info filter": f"SELECT count(*) FROM '{sites}' WHERE info.AF[1] > 0.1 AND array_has(filter, 'PASS')",
            "group by chrom": f"SELECT chrom, count(*), round(avg(qual), 3), sum(info.DP) FROM '{sites}' GROUP BY chrom ORDER BY chrom",
            "per-sample non-ref": f"SELECT sample, count(*) FROM vcf_genotypes('{geno}') WHERE gt_dosage(GT) > 0 "
                                  "GROUP BY sample ORDER BY sample",
        }
        results = {}
        planning = {}
        for name, sql in queries.items():
            planning[name] = min(run(vcfq, "EXPLAIN " + sql, split=args.split)[0] for _ in range(args.repeat))
            best = min((run(vcfq, sql, split=args.split) for _ in range(args.repeat)), key=lambda r: r[0])
            results[(name, "local")] = best
        modes = []
        for scheduling in args.scheduling.split(","):
            for executors, concurrency in [(1, 2), (2, 1)]:
                modes.append((f"{executors} executor{'s' if executors > 1 else ''} x {concurrency}, "
                              f"{scheduling}", executors, concurrency, scheduling))
        for mode, executors, concurrency, scheduling in modes:
            cluster = Cluster(vcfq, executors, concurrency, scheduling, work)
            try:
                for name, sql in queries.items():
                    best = min((run(vcfq, sql, cluster.url, args.split) for _ in range(args.repeat)),
                               key=lambda r: r[0])
                    if best[1] != results[(name, "local")][1]:
                        raise SystemExit(f"{name}: the cluster's answer differs from the local one")
                    results[(name, mode)] = best
            finally:
                cluster.close()
        size = os.path.getsize(sites) / 1e6
        print(f"\nsites {size:.0f} MB ({int(4_000_000 * args.scale):,} records), genotypes "
              f"{os.path.getsize(geno) / 1e6:.0f} MB; vcf.min_split_bytes={args.split}; best of {args.repeat}\n")
        print("| query | local s | planning s | " + " | ".join(f"{m[0]}: s (job s)" for m in modes)
              + " | cluster/local |")
        print("|---" * (len(modes) + 4) + "|")
        for name in queries:
            local = results[(name, "local")][0]
            cells = []
            ratios = []
            for mode in [m[0] for m in modes]:
                wall, _, job = results[(name, mode)]
                cells.append(f"{wall:.2f} ({job:.2f})" if job is not None else f"{wall:.2f}")
                ratios.append(f"{wall / local:.2f}")
            print(f"| {name} | {local:.2f} | {planning[name]:.2f} | {' | '.join(cells)} | {' / '.join(ratios)} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
