#!/usr/bin/env python3
"""Failover benchmark of a coordinated table (Iggy primary, Kafka fallback), on real servers.

1. Throughput without failure: `INSERT INTO` a coordinated table, directly into Iggy and
   directly into Kafka, the same generated sites VCF, alternating, `--throughput-runs` times
   each; the time of each INSERT is its process's time minus that of the same CREATE alone
   (median), so that connecting and creating topics does not count as writing.
2. Failover, `--runs` times: a fresh Iggy server, the coordinated INSERT, `kill -9` of the
   Iggy server a third of the way in (a third of the time the INSERT takes without failure),
   then the server restarted on its data directory and the table read back. Reports the time
   from the kill to the first acknowledgement by the fallback, statement time against no
   failure, rows lost and rows read twice (both compared with the VCF itself, row by row with
   EXCEPT ALL).
3. Recovery, through `vcfq serve` and the ADBC driver (one process keeps the breakers): the
   same failover, then the primary restarted behind a relay on the address the table names,
   and small INSERTs until its breaker is closed again: the states they see, and which
   platform their rows went to.

    scripts/release.sh && . scripts/clients.sh     # the release binary; $VCFQ_PYTHON (ADBC)
    $VCFQ_PYTHON benches/failover_bench.py          # 1,000,000 rows, 5 runs
    $VCFQ_PYTHON benches/failover_bench.py --records 200000 --runs 2 --throughput-runs 1
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from common import IGGY, KAFKA, Relay, last_rows, sql, start_server, vcfq_binary

OPEN_MS = 2000


def coordinated(name, iggy_url, bootstrap, vcf, topic, extra=""):
    return (f"CREATE EXTERNAL TABLE {name} STORED AS STREAM LOCATION '{name}' OPTIONS ("
            f"'primary' '{iggy_url}/bench/{topic}', 'fallback' 'kafka://{bootstrap}/{topic}', "
            f"'like' '{vcf}', 'partitions' '4' {extra});")


HEALTH = ("SELECT role, state, messages_acknowledged, CAST(first_ack AS BIGINT), "
          "coalesce(last_transition_reason, '') FROM vcfq.stream_health ORDER BY role DESC;")


def timed_sql(vcfq, text):
    t0 = time.monotonic()
    sql(vcfq, text)
    return time.monotonic() - t0


def throughput(vcfq, url, bootstrap, vcf, extra, runs):
    """Median INSERT seconds (CREATE time taken off) of each kind of table, and median CREATE
    seconds of the coordinated one."""
    tables = {
        "coordinated": lambda t: coordinated("c", url, bootstrap, vcf, t, extra),
        "iggy": lambda t: f"CREATE EXTERNAL TABLE c STORED AS IGGY LOCATION '{url}/bench/{t}' "
                          f"OPTIONS ('like' '{vcf}', 'partitions' '4');",
        "kafka": lambda t: f"CREATE EXTERNAL TABLE c STORED AS KAFKA LOCATION '{bootstrap}/{t}' "
                           f"OPTIONS ('like' '{vcf}', 'partitions' '4');",
    }
    insert = f" INSERT INTO c SELECT * FROM '{vcf}';"
    times = {k: [] for k in tables}
    creates = []
    for run in range(runs):
        kinds = list(tables) if run % 2 == 0 else list(reversed(tables))
        for kind in kinds:
            create = timed_sql(vcfq, tables[kind](f"create-{kind}-{run}"))
            total = timed_sql(vcfq, tables[kind](f"insert-{kind}-{run}") + insert)
            times[kind].append(total - create)
            if kind == "coordinated":
                creates.append(create)
            print(f"throughput run {run + 1}: {kind} INSERT {total - create:.2f} s "
                  f"(+ {create:.2f} s CREATE)", flush=True)
    return {k: statistics.median(v) for k, v in times.items()}, statistics.median(creates)


def kill_after(server, delay, killed):
    def kill():
        time.sleep(delay)
        pid = open(os.path.join(server, "pid")).read().strip()
        killed["at_ms"] = time.time() * 1000
        subprocess.run(["kill", "-9", pid], check=True)
    thread = threading.Thread(target=kill)
    thread.start()
    return thread


def failover_run(vcfq, work, run, bootstrap, vcf, extra, calm, kill_at):
    server = os.path.join(work, f"iggy-{run + 1}")
    url = start_server(IGGY, server)
    topic = f"run{run}"
    insert = f" INSERT INTO c SELECT * FROM '{vcf}';"
    killed = {}
    killer = kill_after(server, kill_at, killed)
    t0 = time.monotonic()
    out = sql(vcfq, coordinated("c", url, bootstrap, vcf, topic, extra) + insert + " " + HEALTH)
    total = time.monotonic() - t0
    killer.join()
    health = {row[0]: row for row in last_rows(out)}
    first_fallback_ack = float(health["fallback"][3]) if health["fallback"][3] else float("nan")
    failover = (first_fallback_ack - killed["at_ms"]) / 1000
    # the primary back on its data, both platforms read
    url = start_server(IGGY, server)
    cols = "chrom, pos, id, ref, alt, qual"
    check = (coordinated("c", url, bootstrap, vcf, topic, extra) +
             f" SELECT (SELECT count(*) FROM (SELECT {cols} FROM '{vcf}' EXCEPT ALL SELECT {cols} FROM c)) AS lost,"
             f" (SELECT count(*) FROM (SELECT {cols} FROM c EXCEPT ALL SELECT {cols} FROM '{vcf}')) AS extra,"
             f" (SELECT count(*) FROM c) AS rows_read;")
    lost, dup, read = (int(v) for v in last_rows(sql(vcfq, check))[0])
    subprocess.run([IGGY, "stop", server], check=False)
    print(f"run {run + 1}: failover {failover:.3f} s, statement {total:.2f} s (no failure {calm:.2f} s), "
          f"lost {lost}, read twice {dup}, rows read {read}; primary acknowledged "
          f"{health['primary'][2]}, fallback {health['fallback'][2]}", flush=True)
    return failover, total, lost, dup


def recovery(vcfq, work, bootstrap, vcf, extra, calm):
    """Failover and recovery in one `vcfq serve`: what the breaker of the primary does."""
    import adbc_driver_flightsql.dbapi as flight_sql

    server = os.path.join(work, "iggy-recovery")
    url = start_server(IGGY, server)
    credentials, address = url.removeprefix("iggy://").rsplit("@", 1)
    relay = Relay(address)
    password = "bench password"
    hashed = subprocess.run([vcfq, "hash-password"], input=password, check=True,
                            capture_output=True, text=True).stdout.strip()
    options = {
        "primary": f"iggy://{credentials}@{relay.address}/bench/recovery",
        "fallback": f"kafka://{bootstrap}/recovery",
        "like": vcf, "partitions": "4", "breaker.open_ms": str(OPEN_MS),
    }
    for k, v in zip(extra.split("'")[1::4], extra.split("'")[3::4]):
        options[k] = v
    config = os.path.join(work, "serve.toml")
    with open(config, "w") as f:
        f.write(f'addr = "127.0.0.1:0"\n[files]\nread = ["{os.path.dirname(vcf)}"]\n'
                '[[users]]\nname = "bench"\n'
                f'password_hash = "{hashed}"\n[[tables]]\nname = "c"\nlocation = "c"\n'
                'format = "stream"\n[tables.options]\n')
        f.writelines(f'"{k}" = "{v}"\n' for k, v in options.items())
    serve = subprocess.Popen([vcfq, "serve", "--config", config], stdout=subprocess.PIPE, text=True)
    try:
        uri = serve.stdout.readline().strip().rsplit(" ", 1)[-1]
        conn = flight_sql.connect(uri, db_kwargs={"username": "bench", "password": password})
        cur = conn.cursor()

        def health():
            cur.execute("SELECT state, messages_acknowledged, coalesce(last_transition_reason, '') "
                        "FROM vcfq.stream_health WHERE role = 'primary'")
            return cur.fetchone()

        killed = {}
        killer = kill_after(server, calm / 3, killed)
        cur.execute(f"INSERT INTO c SELECT * FROM '{vcf}'")
        cur.fetchall()
        killer.join()
        print(f"recovery: after the failover INSERT the primary is {health()}", flush=True)
        restarted = time.monotonic()
        relay.point_to(start_server(IGGY, server).rsplit("@", 1)[1])
        steps = []
        for i in range(20):
            time.sleep(0.25)
            cur.execute(f"INSERT INTO c (chrom, pos, ref, alt) SELECT 'chrR', value, 'A', ['C'] "
                        f"FROM generate_series({i * 1000 + 1}, {i * 1000 + 1000})")
            cur.fetchall()
            state = health()
            steps.append((time.monotonic() - restarted, state))
            print(f"recovery: INSERT {i + 1} at {steps[-1][0]:.2f} s after the restart: primary {state}",
                  flush=True)
            if state[0] == "closed":
                break
        cur.execute("SELECT _platform, count(*) FROM c WHERE chrom = 'chrR' GROUP BY _platform ORDER BY 1")
        platforms = cur.fetchall()
        closed_at = next((t for t, s in steps if s[0] == "closed"), None)
        cur.close()
        conn.close()
        return steps, platforms, closed_at
    finally:
        serve.kill()
        serve.wait()
        subprocess.run([IGGY, "stop", server], check=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--throughput-runs", type=int, default=3)
    ap.add_argument("--binary", default=vcfq_binary())
    ap.add_argument("--window", type=int, help="the coordinated table's 'window' option")
    args = ap.parse_args()
    vcfq = args.binary
    extra = f", 'window' '{args.window}'" if args.window else ""
    work = tempfile.mkdtemp(prefix="vcfq-failover-bench-")
    vcf = os.path.join(work, "sites.vcf.gz")
    subprocess.run([vcfq, "gen", vcf, "--records", str(args.records)], check=True)
    broker = os.path.join(work, "broker")
    bootstrap = start_server(KAFKA, broker)
    results = []
    try:
        server = os.path.join(work, "iggy-0")
        url = start_server(IGGY, server)
        speed, create = throughput(vcfq, url, bootstrap, vcf, extra, args.throughput_runs)
        subprocess.run([IGGY, "stop", server], check=False)
        calm = speed["coordinated"]
        # the kill comes a third of the way into the INSERT (after the CREATE before it)
        kill_at = create + calm / 3
        for run in range(args.runs):
            results.append(failover_run(vcfq, work, run, bootstrap, vcf, extra, calm, kill_at))
        steps, platforms, closed_at = recovery(vcfq, work, bootstrap, vcf, extra, calm)
    finally:
        subprocess.run([KAFKA, "stop", broker], check=False)

    fo = [r[0] for r in results]
    tt = [r[1] - create for r in results]  # the INSERT with failover, CREATE taken off
    print()
    print(f"{args.records} rows, {args.runs} runs, kill -9 of the Iggy primary {calm / 3:.2f} s into the INSERT")
    print("| measure | p50 | max |")
    print("|---|---|---|")
    print(f"| kill → first fallback acknowledgement | {statistics.median(fo):.3f} s | {max(fo):.3f} s |")
    print(f"| INSERT time with failover / without ({calm:.2f} s) | "
          f"{statistics.median(tt) / calm:.2f} | {max(tt) / calm:.2f} |")
    print(f"| rows lost | {statistics.median([r[2] for r in results]):.0f} | {max(r[2] for r in results)} |")
    print(f"| rows read twice | {statistics.median([r[3] for r in results]):.0f} | {max(r[3] for r in results)} |")
    print()
    print(f"| INSERT of the whole file (median of {args.throughput_runs}, CREATE excluded) | seconds | rows/s | coordinated / direct |")
    print("|---|---|---|---|")
    for kind in ("coordinated", "iggy", "kafka"):
        ratio = "" if kind == "coordinated" else f"{speed[kind] / calm:.2f}"
        print(f"| {kind} | {speed[kind]:.2f} | {args.records / speed[kind]:,.0f} | {ratio} |")
    print()
    print(f"recovery (breaker.open_ms {OPEN_MS}): primary breaker after each small INSERT since its restart:")
    for t, state in steps:
        print(f"  {t:.2f} s: {state[0]} ({state[2]})")
    print(f"closed {closed_at:.2f} s after the restart" if closed_at is not None else "never closed")
    print(f"rows of the INSERTs after the restart, per platform: {platforms}")


if __name__ == "__main__":
    sys.exit(main())
