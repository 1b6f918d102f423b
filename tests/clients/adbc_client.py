"""What a Python user does with vcfq's Flight SQL server through the ADBC driver.

Usage: adbc_client.py URI USER PASSWORD RECORDS  (run by tests/integration/flight.rs)
Every check raises on failure; the last line printed is "adbc: all checks passed".
"""
import sys

import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager

uri, user, password, records = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])


def connect(pw):
    return flight_sql.connect(uri, db_kwargs={"username": user, "password": pw})


def check(condition, what):
    if not condition:
        raise AssertionError(what)


# auth failure: a clear error, not a hang
try:
    with connect("wrong password") as bad:
        with bad.cursor() as cur:
            cur.execute("SELECT 1")
    raise AssertionError("wrong password was accepted")
except adbc_driver_manager.Error as e:
    check("invalid username or password" in str(e) or "Unauthenticated" in str(e), f"auth error: {e}")

with connect(password) as conn:
    with conn.cursor() as cur:
        # a query
        cur.execute("SELECT count(*) AS n FROM calls")
        n = cur.fetchone()[0]
        check(n == records, f"count {n} != {records}")

        # regression: a column the optimizer proves non-null (a folded constant) is announced
        # nullable by GetFlightInfo; the stream must carry the announced schema, or ADBC
        # rejects it ("endpoint 0 returned inconsistent schema")
        cur.execute("SELECT arrow_typeof(1) AS t, 40 + 2 AS answer")
        row = cur.fetchone()
        check(row == ("Int64", 42), f"folded constants: {row}")

        # a prepared statement with parameters
        cur.execute("SELECT count(*) FROM calls WHERE chrom = 'chr1'")
        chr1 = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM calls WHERE chrom = ? AND pos > ?", parameters=("chr1", 0))
        got = cur.fetchone()[0]
        check(got == chr1 and chr1 > 0, f"prepared count {got} != {chr1}")

        # fetch_arrow_table of a whole scan, typed as the VCF header says
        cur.execute("SELECT * FROM calls")
        table = cur.fetch_arrow_table()
        check(table.num_rows == records, f"scan rows {table.num_rows} != {records}")
        check(table.column_names[:5] == ["chrom", "pos", "id", "ref", "alt"], f"columns {table.column_names}")
        check(str(table.schema.field("pos").type) == "int64", f"pos type {table.schema.field('pos').type}")
        check(table.column("pos")[0].as_py() >= 1, "pos value")

        # DDL and INSERT over the wire; the temporary table belongs to this connection
        cur.execute("CREATE TABLE hits AS SELECT chrom, pos FROM calls WHERE pos < 100000")
        cur.execute("SELECT count(*) FROM hits")
        hits = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM calls WHERE pos < 100000")
        check(cur.fetchone()[0] == hits, "CREATE TABLE AS")

    # catalog metadata, as a notebook or BI tool asks for it
    objects = conn.adbc_get_objects(depth="all").read_all().to_pylist()
    catalogs = {c["catalog_name"]: c for c in objects}
    check("datafusion" in catalogs, f"catalogs {list(catalogs)}")
    schemas = {s["db_schema_name"]: s for s in catalogs["datafusion"]["catalog_db_schemas"]}
    tables = {t["table_name"]: t for t in schemas["public"]["db_schema_tables"]}
    check("calls" in tables and "hits" in tables, f"tables {list(tables)}")
    columns = [c["column_name"] for c in tables["calls"]["table_columns"]]
    check(columns[:5] == ["chrom", "pos", "id", "ref", "alt"], f"calls columns {columns}")
    info = conn.adbc_get_info()
    check(info.get("vendor_name") == "vcfq", f"vendor {info}")

    # errors come back as exceptions naming the object
    with conn.cursor() as cur:
        try:
            cur.execute("SELECT * FROM no_such_table")
            cur.fetchall()
            raise AssertionError("missing table accepted")
        except adbc_driver_manager.Error as e:
            check("no_such_table" in str(e), f"missing table error: {e}")

# another connection does not see the first one's table
with connect(password) as conn2:
    with conn2.cursor() as cur:
        try:
            cur.execute("SELECT * FROM hits")
            cur.fetchall()
            raise AssertionError("a table leaked between connections")
        except adbc_driver_manager.Error as e:
            check("hits" in str(e), f"isolation error: {e}")

print("adbc: all checks passed")
