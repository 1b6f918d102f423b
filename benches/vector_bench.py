#!/usr/bin/env python3
"""Exact k-nearest-neighbour search with vcfq's distance functions: `SELECT id FROM m ORDER BY
<distance>(v, <query>) LIMIT 10` over 1,000,000 x 384 Float32 vectors held in memory, next to
NumPy on the same vectors in the same run (inner product as one BLAS matrix-vector product;
cosine and L2 in the fewest NumPy passes), and to the memory-bandwidth bound (one pass reads
1.5 GB). Every answer is checked against NumPy's.

    scripts/release.sh && python3 benches/vector_bench.py
    python3 benches/vector_bench.py --rows 100000 --repeat 3        # a quick look

Needs NumPy and pyarrow in $VCFQ_PYTHON's environment (`pip install numpy pyarrow`); the
vectors are generated once into the benchmark data directory (1.5 GB as Parquet).
"""
import argparse
import os
import subprocess
import sys
import time

from common import vcfq_binary

TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/vcfq/target"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--repeat", type=int, default=5, help="queries per metric")
    ap.add_argument("--texts", type=int, default=2000, help="sentences for the embed_text step (0: none)")
    ap.add_argument("--binary", default=vcfq_binary())
    args = ap.parse_args()
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = os.path.join(TARGET, "bench-data")
    os.makedirs(data, exist_ok=True)
    path = os.path.join(data, f"vectors-{args.rows}x{args.dim}.parquet")
    rng = np.random.default_rng(14)
    if not os.path.exists(path):
        x = rng.standard_normal((args.rows, args.dim), dtype=np.float32)
        v = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), args.dim)
        table = pa.table({"id": pa.array(np.arange(args.rows, dtype=np.int64)), "v": v})
        pq.write_table(table, path + ".tmp", compression="none", row_group_size=65536)
        os.replace(path + ".tmp", path)
    x = pq.read_table(path).column("v").combine_chunks().values.to_numpy().reshape(args.rows, args.dim)
    queries = [x[rng.integers(args.rows)] + rng.standard_normal(args.dim, dtype=np.float32) * 0.5
               for _ in range(args.repeat)]

    def literal(q):
        return "[" + ", ".join(f"{float(f):.8g}" for f in q) + "]"

    def numpy_top(metric, q):
        if metric == "inner_product":
            return np.argsort(-(x @ q), kind="stable")[:10]
        if metric == "cosine_distance":
            d = 1 - (x @ q) / (np.sqrt(np.einsum("ij,ij->i", x, x)) * np.linalg.norm(q))
        else:
            d = np.einsum("ij,ij->i", x, x) - 2 * (x @ q) + q @ q
        return np.argsort(d, kind="stable")[:10]

    def numpy_time(metric, q):
        t0 = time.perf_counter()
        if metric == "inner_product":
            s = x @ q
            np.argpartition(-s, 10)[:10]
        elif metric == "cosine_distance":
            s = (x @ q) / (np.sqrt(np.einsum("ij,ij->i", x, x)) * np.linalg.norm(q))
            np.argpartition(-s, 10)[:10]
        else:
            d = np.einsum("ij,ij->i", x, x) - 2 * (x @ q)
            np.argpartition(d, 10)[:10]
        return time.perf_counter() - t0

    def vcfq(statements):
        t0 = time.perf_counter()
        out = subprocess.run([args.binary, "-q", "--format", "tsv", "-c", statements],
                             capture_output=True, text=True)
        secs = time.perf_counter() - t0
        if out.returncode != 0:
            raise SystemExit(f"vcfq failed: {out.stderr.strip()[:500]}")
        return secs, out.stdout

    load = f"CREATE TABLE m AS SELECT * FROM '{path}';"
    base = min(vcfq(load)[0] for _ in range(2))
    gb = args.rows * args.dim * 4 / 1e9
    print(f"{args.rows:,} x {args.dim} Float32 vectors ({gb:.2f} GB) in memory, top 10 of "
          f"{args.repeat} queries per metric; vcfq per query = (load + queries - load) / queries")
    print("| metric | vcfq s/query | GB/s | NumPy s/query | vcfq / NumPy time | same top 10 |")
    print("|---|---|---|---|---|---|")
    for metric in ["inner_product", "cosine_distance", "l2_distance"]:
        order = "DESC" if metric == "inner_product" else "ASC"
        sql = load + "".join(
            f" SELECT id FROM m ORDER BY {metric}(v, {literal(q)}) {order}, id LIMIT 10;" for q in queries)
        secs, out = vcfq(sql)
        per_query = max(secs - base, 1e-9) / len(queries)
        # each result: a header line `id`, then its rows
        got = []
        for line in out.splitlines():
            if line == "id":
                got.append([])
            elif line and got:
                got[-1].append(int(line))
        same = all(list(map(int, numpy_top(metric, q))) == g for q, g in zip(queries, got))
        peer = min(numpy_time(metric, q) for q in queries)
        print(f"| {metric} | {per_query:.3f} | {gb / per_query:.1f} | {peer:.3f} | {per_query / peer:.2f} | {same} |")
    print("NumPy: inner product as x @ q (BLAS), cosine with the norms of x in one einsum pass, "
          "L2 as |x|^2 - 2 x.q; vcfq computes every distance from the vectors themselves in one pass")
    if args.texts:
        text_throughput(args, vcfq)


def text_throughput(args, vcfq):
    """Sentences per second of embed_text over annotation-like sentences of 6 to 30 words."""
    words = ("missense variant in exon of gene with reduced protein function and pathogenic "
             "evidence from segregation in families of affected carriers benign likely "
             "uncertain significance splice region frameshift stop gained").split()
    lines = [" ".join(words[(i * 7 + k * 3) % len(words)] for k in range(6 + i % 25))
             for i in range(args.texts)]
    path = os.path.join(TARGET, "bench-data", f"sentences-{args.texts}.csv")
    with open(path, "w") as f:
        f.write("t\n" + "\n".join(lines) + "\n")
    table = f"CREATE EXTERNAL TABLE s STORED AS CSV LOCATION '{path}' OPTIONS ('format.has_header' 'true');"
    base = min(vcfq(table + " SELECT count(t) FROM s")[0] for _ in range(2))
    secs = min(vcfq(table + " SELECT count(embed_text(t)) FROM s")[0] for _ in range(2))
    print(f"embed_text: {args.texts} sentences of 6-30 words in {secs - base:.2f} s: "
          f"{args.texts / (secs - base):.0f} sentences/s on {os.cpu_count()} cores (best of 2)")


if __name__ == "__main__":
    sys.exit(main())
