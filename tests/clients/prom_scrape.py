"""Scrapes vcfq serve's /metrics and parses it with the Prometheus project's Python client
(prometheus_client's text-format parser), for tests/integration/observability.rs.

Usage: prom_scrape.py URL [TOKEN]. Prints one JSON line: {"status": HTTP status, "samples":
[{"name", "labels", "value"}…]} (samples only when the scrape succeeded and parsed).
"""
import json
import sys
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

url = sys.argv[1]
request = urllib.request.Request(url)
if len(sys.argv) > 2:
    request.add_header("Authorization", f"Bearer {sys.argv[2]}")
try:
    with urllib.request.urlopen(request, timeout=10) as response:
        status = response.status
        content_type = response.headers.get("Content-Type", "")
        text = response.read().decode("utf-8")
except urllib.error.HTTPError as e:
    print(json.dumps({"status": e.code}))
    sys.exit(0)
samples = [
    {"name": s.name, "labels": s.labels, "value": s.value}
    for family in text_string_to_metric_families(text)
    for s in family.samples
]
print(json.dumps({"status": status, "content_type": content_type, "samples": samples}))
