"""What a restricted user of vcfq's Flight SQL server meets through the Python ADBC driver.

Usage: adbc_access.py URI PASSWORD  (run by tests/integration/access.rs, whose server config
grants alice a `cohort` narrowed to chr1 without ids, and nobody nothing)
Every check raises on failure; the last line printed is "adbc access: all checks passed".
"""
import sys

import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager

uri, password = sys.argv[1], sys.argv[2]


def connect(user):
    return flight_sql.connect(uri, db_kwargs={"username": user, "password": password})


def check(condition, what):
    if not condition:
        raise AssertionError(what)


def denied(cur, sql, names):
    try:
        cur.execute(sql)
        cur.fetchall()
    except adbc_driver_manager.Error as e:
        text = str(e)
        check("permission denied" in text and names in text, f"{sql}: {text}")
        check(
            isinstance(e, adbc_driver_manager.ProgrammingError)
            or "PERMISSION_DENIED" in text.upper().replace(" ", "_")
            or "Unauthorized" in text,
            f"{sql}: error kind {type(e).__name__}: {text}",
        )
        return
    raise AssertionError(f"{sql}: not refused")


with connect("alice") as conn:
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM cohort")
        check(cur.fetchone()[0] == 4, "row filter")
        cur.execute("SELECT count(*) FROM cohort WHERE chrom = ?", parameters=("chr2",))
        check(cur.fetchone()[0] == 0, "row filter through a prepared statement")
        cur.execute("SELECT count(*) FROM cohort a JOIN cohort b ON a.pos = b.pos AND a.chrom = b.chrom")
        check(cur.fetchone()[0] == 4, "row filter through a join")
        cur.execute("SELECT id FROM cohort")
        check(all(row[0] is None for row in cur.fetchall()), "masked ids")
        table = conn.cursor()
        table.execute("SELECT * FROM cohort")
        names = table.fetch_arrow_table().column_names
        check(names == ["chrom", "pos", "id", "ref", "alt", "genotypes"], f"columns {names}")
        denied(cur, "SELECT * FROM secret_calls", "secret_calls")
        denied(cur, "SELECT * FROM '/etc/passwd'", "/etc/passwd")
    objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
    tables = [
        t["table_name"]
        for c in objects
        for s in c["catalog_db_schemas"]
        for t in (s["db_schema_tables"] or [])
    ]
    check("cohort" in tables and "secret_calls" not in tables, f"tables {tables}")

with connect("nobody") as conn:
    with conn.cursor() as cur:
        denied(cur, "SELECT * FROM cohort", "cohort")

print("adbc access: all checks passed")
