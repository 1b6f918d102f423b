"""Runs statements through the Python ADBC Flight SQL driver with the connection options given
and prints one JSON line per statement: {"rows": [[...], ...]} or {"error": "..."}. Used by
tests/integration/observability.rs for bearer JWTs, mutual TLS and traced calls.

Usage: adbc_query.py URI OPTIONS_JSON SQL [SQL ...]
OPTIONS_JSON are the driver's database options (db_kwargs), e.g.
{"adbc.flight.sql.authorization_header": "Bearer ..."}; a value "@path" is replaced by the
text of the file (PEM certificates and keys, which the driver takes as text).
"""
import json
import sys

import adbc_driver_flightsql.dbapi as flight_sql

uri, options, statements = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3:]
for key, value in list(options.items()):
    if isinstance(value, str) and value.startswith("@"):
        with open(value[1:]) as f:
            options[key] = f.read()


def error(e):
    return {"error": f"{type(e).__name__}: {e}"}


try:
    conn = flight_sql.connect(uri, db_kwargs=options)
except Exception as e:  # a refused connection fails every statement
    for _ in statements:
        print(json.dumps(error(e)), flush=True)
    sys.exit(0)
with conn:
    for sql in statements:
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                rows = [list(row) for row in cur.fetchall()]
            print(json.dumps({"rows": rows}, default=str), flush=True)
        except Exception as e:
            print(json.dumps(error(e)), flush=True)
