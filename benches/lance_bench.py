#!/usr/bin/env python3
"""Vector search over a Lance dataset: vcfq's SQL next to Python's lancedb, in one run, on
1,000,000 x 384 Float32 vectors (clustered, as embeddings are: 2,000 centres).

Steps, for both tools (write and index: each on its own copy of the data; searches: both on
vcfq's dataset and index, two indexes trained apart differing in search cost by up to 10%):
  write      vcfq `COPY (SELECT * FROM 'v.parquet') TO 'd' STORED AS LANCE` / pylance write_dataset
  index      `CREATE INDEX … USING IVF_PQ (v) WITH (metric = 'l2', …)` / lancedb create_index
  search     top 10 of --queries query vectors through the index (nprobes, refine_factor as
             given), vcfq through its Flight SQL server (the ADBC Python driver, one connection)
             in both idioms, and lancedb: the three searches of each query one after the other
             (rotating order, datasets read into the page cache first); per-query latency
             p50/p99 and recall@10 against NumPy's exact answer
  exact      the same queries with the index off (`SET vector.use_index = false`, a top-k scan
             of every vector) / lancedb's bypass_vector_index(), against the memory bandwidth
             bound of one pass over the vectors (1.5 GB)

    scripts/release.sh && $VCFQ_PYTHON benches/lance_bench.py
    $VCFQ_PYTHON benches/lance_bench.py --rows 100000 --queries 50     # a quick look
    $VCFQ_PYTHON benches/lance_bench.py --search-only                  # searches again

Needs numpy, pyarrow, pylance, lancedb and adbc-driver-flightsql in $VCFQ_PYTHON's environment
(`. scripts/clients.sh` installs them); data goes to the benchmark data directory.
"""
import argparse
import os
import shutil
import socket
import subprocess
import sys
import time

from common import vcfq_binary

TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/vcfq/target"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def write_and_index(args, source, ours, theirs, create, db, vcfq, rows, pq, lance):
    """Writes both datasets from the Parquet file and indexes them, timing each step."""
    for d in (ours, theirs):
        shutil.rmtree(d, ignore_errors=True)
    t_ours = vcfq(f"COPY (SELECT * FROM '{source}') TO '{ours}' STORED AS LANCE")
    t0 = time.perf_counter()
    lance.write_dataset(pq.read_table(source), theirs)
    t_theirs = time.perf_counter() - t0
    rows.append(("write from Parquet (s)", t_ours, t_theirs))

    # index
    base = vcfq(create + " SELECT 1")
    t_ours = vcfq(create + f" CREATE INDEX v_idx ON t USING IVF_PQ (v) WITH (metric = 'l2', "
                           f"num_partitions = {args.partitions}, num_sub_vectors = {args.sub_vectors})") - base
    peer = db.open_table("peer")
    t0 = time.perf_counter()
    peer.create_index(metric="l2", num_partitions=args.partitions, num_sub_vectors=args.sub_vectors,
                      vector_column_name="v", index_type="IVF_PQ")
    t_theirs = time.perf_counter() - t0
    rows.append(("index build (s)", t_ours, t_theirs))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--exact-queries", type=int, default=5)
    ap.add_argument("--partitions", type=int, default=256)
    ap.add_argument("--sub-vectors", type=int, default=48)
    ap.add_argument("--nprobes", type=int, default=16)
    ap.add_argument("--refine", type=int, default=10)
    ap.add_argument("--binary", default=vcfq_binary())
    ap.add_argument("--search-only", action="store_true",
                    help="reuse the datasets and indexes of the last run (same options): searches only")
    args = ap.parse_args()
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    import lance
    import lancedb
    import adbc_driver_flightsql.dbapi as flight_sql

    data = os.path.join(TARGET, "bench-data", f"lance-{args.rows}x{args.dim}")
    os.makedirs(data, exist_ok=True)
    source = os.path.join(data, "vectors.parquet")
    rng = np.random.default_rng(41)
    centres = rng.standard_normal((2000, args.dim), dtype=np.float32)
    if not os.path.exists(source):
        x = centres[np.arange(args.rows) % len(centres)] + 0.5 * rng.standard_normal((args.rows, args.dim), dtype=np.float32)
        v = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), args.dim)
        table = pa.table({"id": pa.array(np.arange(args.rows, dtype=np.int64)), "v": v})
        pq.write_table(table, source + ".tmp", compression="none", row_group_size=65536)
        os.replace(source + ".tmp", source)
    table = pq.read_table(source)
    x = table.column("v").combine_chunks().values.to_numpy().reshape(args.rows, args.dim)
    picks = rng.integers(args.rows, size=args.queries)
    queries = x[picks] + 0.1 * rng.standard_normal((args.queries, args.dim), dtype=np.float32)
    norms = np.einsum("ij,ij->i", x, x)
    exact = [np.argsort(norms - 2 * (x @ q), kind="stable")[:10] for q in queries]
    gb = x.nbytes / 1e9
    print(f"{args.rows:,} x {args.dim} Float32 vectors ({gb:.2f} GB), {args.queries} queries, top 10, "
          f"IVF_PQ (l2, {args.partitions} partitions, {args.sub_vectors} sub-vectors), "
          f"nprobes {args.nprobes}, refine_factor {args.refine}; {os.cpu_count()} cores")

    def vcfq(statements):
        t0 = time.perf_counter()
        out = subprocess.run([args.binary, "-q", "--format", "tsv", "-c", statements], capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"vcfq failed: {out.stderr.strip()[:500]}")
        return time.perf_counter() - t0

    ours, theirs = os.path.join(data, "vcfq.lance"), os.path.join(data, "peer.lance")
    rows = []
    create = f"CREATE EXTERNAL TABLE t STORED AS LANCE LOCATION '{ours}';"
    db = lancedb.connect(data)
    if not args.search_only:
        write_and_index(args, source, ours, theirs, create, db, vcfq, rows, pq, lance)
    # the searches: both tools on the same dataset and index (vcfq's; two indexes trained
    # apart differ in search cost by as much as 10%)
    peer = db.open_table("vcfq")

    # search through the index
    port = free_port()
    log = open(os.path.join(data, "server.log"), "w")
    server = subprocess.Popen([args.binary, "serve", "--addr", f"127.0.0.1:{port}", "--read-root", data],
                              stdout=subprocess.DEVNULL, stderr=log)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        conn = flight_sql.connect(f"grpc://127.0.0.1:{port}")
        cur = conn.cursor()
        cur.execute(create)
        cur.fetchall()

        def literal(q):
            return "[" + ", ".join(f"{float(f):.8g}" for f in q) + "]"

        def run(sql):
            t0 = time.perf_counter()
            cur.execute(sql)
            ids = cur.fetch_arrow_table().column(0).to_pylist()
            return time.perf_counter() - t0, ids

        def recall(results):
            return float(np.mean([len(set(r) & set(map(int, e))) / 10 for r, e in zip(results, exact)]))

        def peer_search(q):
            t0 = time.perf_counter()
            r = peer.search(q, vector_column_name="v").metric("l2").nprobes(args.nprobes) \
                .refine_factor(args.refine).limit(10).select(["id"]).to_arrow()
            return time.perf_counter() - t0, r.column("id").to_pylist()

        idioms = {
            "vector_search": lambda q: run(f"SELECT id FROM vector_search('t', 'v', {literal(q)}, 10, "
                                           f"nprobes => {args.nprobes}, refine_factor => {args.refine})"),
            "ORDER BY l2_distance LIMIT 10": lambda q: run(f"SELECT id FROM t ORDER BY l2_distance(v, {literal(q)}) LIMIT 10"),
            "lancedb": peer_search,
        }
        cur.execute(f"SET vector.nprobes = {args.nprobes}")
        cur.fetchall()
        cur.execute(f"SET vector.refine_factor = {args.refine}")
        cur.fetchall()
        print("\n| step | vcfq | lancedb | vcfq / lancedb |")
        print("|---|---|---|---|")
        for name, t_o, t_t in rows:
            print(f"| {name} | {t_o:.2f} | {t_t:.2f} | {t_o / t_t:.2f} |")
        # both datasets in the page cache (the refine step reads 10 x refine_factor vectors at
        # random), opened and warmed once; then the three searches of each query one after the
        # other, in rotating order, so that both tools see the same machine and cache state
        for d in (ours,):
            for root, _, files in os.walk(d):
                for f in files:
                    with open(os.path.join(root, f), "rb") as fh:
                        while fh.read(1 << 24):
                            pass
        for make in idioms.values():
            make(queries[0])
        names = list(idioms)
        times = {n: [] for n in names}
        results = {n: [] for n in names}
        for i, q in enumerate(queries):
            for n in names[i % 3:] + names[:i % 3]:
                secs, ids = idioms[n](q)
                times[n].append(secs)
                results[n].append(ids)
        for name in names[:2]:
            for p in (50, 99):
                o, t = percentile(times[name], p) * 1e3, percentile(times["lancedb"], p) * 1e3
                print(f"| {name}: p{p} latency (ms) | {o:.2f} | {t:.2f} | {o / t:.2f} |")
            print(f"| {name}: recall@10 | {recall(results[name]):.3f} | {recall(results['lancedb']):.3f} | |")

        # exact: every vector read
        cur.execute("SET vector.use_index = false")
        cur.fetchall()
        few = queries[: args.exact_queries]
        times = []
        for q in few:
            secs, ids = idioms["ORDER BY l2_distance LIMIT 10"](q)
            times.append(secs)
        exact_ok = idioms["ORDER BY l2_distance LIMIT 10"](few[0])[1] == list(map(int, exact[0]))
        peer_exact = []
        for q in few:
            t0 = time.perf_counter()
            peer.search(q, vector_column_name="v").metric("l2").bypass_vector_index().limit(10).select(["id"]).to_arrow()
            peer_exact.append(time.perf_counter() - t0)
        o, t = min(times), min(peer_exact)
        print(f"| exact top 10, every vector (s, best of {len(few)}) | {o:.3f} | {t:.3f} | {o / t:.2f} |")
        print(f"exact scan: vcfq {gb / o:.1f} GB/s, lancedb {gb / t:.1f} GB/s over {gb:.2f} GB of vectors "
              f"(same top 10 as NumPy: {exact_ok})")
        conn.close()
    finally:
        server.terminate()
        server.wait()
    print("vcfq queries go through its Flight SQL server (ADBC, loopback, the SQL text of each query "
          "with its 384 numbers parsed); lancedb runs in this Python process")


if __name__ == "__main__":
    sys.exit(main())
