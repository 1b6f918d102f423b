"""Helpers the benchmarks share: where the release binary is, running vcfq, timing commands."""
import os
import re
import socket
import subprocess
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IGGY = os.path.join(ROOT, "scripts", "iggy")
KAFKA = os.path.join(ROOT, "scripts", "kafka")


def vcfq_binary():
    """The release build (`scripts/release.sh`)."""
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/vcfq/target"))
    return os.path.join(target, "release", "vcfq")


def sql(vcfq, text):
    """tsv output of `vcfq -c text`; exits naming the statement when vcfq fails."""
    out = subprocess.run([vcfq, "-q", "--format", "tsv", "-c", text], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"vcfq failed: {out.stderr.strip()}\n{text[:300]}")
    return out.stdout


def last_rows(out):
    """Rows of the last result in tsv output (header line skipped)."""
    blocks = [b for b in out.strip().split("\n\n") if b.strip()]
    lines = blocks[-1].splitlines() if blocks else []
    return [line.split("\t") for line in lines[1:]]


def timed_rss(cmd):
    """Seconds, output and peak RSS (MiB) of a command, via GNU time."""
    t0 = time.monotonic()
    out = subprocess.run(["/usr/bin/time", "-f", "RSS %M"] + cmd, check=True, capture_output=True, text=True)
    secs = time.monotonic() - t0
    rss = int(re.findall(r"RSS (\d+)", out.stderr)[-1]) / 1024
    return secs, out.stdout, rss


def full_read(vcfq, table):
    """Seconds, rows and peak RSS of reading every column of every message of table `t`
    (created by the statement `table`): a count of each column needs each one decoded."""
    columns = ["chrom", "pos", "id", "ref", "alt", "qual", "filter", "info"]
    counts = ", ".join(f"count({c})" for c in columns)
    secs, out, rss = timed_rss([vcfq, "-q", "--format", "tsv", "-c", table + f" SELECT count(*), {counts} FROM t"])
    return secs, int(out.strip().splitlines()[-1].split("\t")[0]), rss


def start_server(script, directory):
    """`scripts/iggy start DIR` or `scripts/kafka start DIR`: the address it prints."""
    return subprocess.run([script, "start", directory], check=True, capture_output=True, text=True).stdout.strip()


class Relay:
    """A TCP relay on a fixed loopback port to an upstream that can change (a restarted Iggy
    server comes up on a new port); relayed connections die with their upstream."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = "127.0.0.1:%d" % self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def point_to(self, upstream):
        self.upstream = upstream

    def _accept(self):
        while True:
            try:
                inbound, _ = self.listener.accept()
            except OSError:
                return
            host, port = self.upstream.rsplit(":", 1)
            try:
                outbound = socket.create_connection((host, int(port)), timeout=2)
                outbound.settimeout(None)
            except OSError:
                inbound.close()
                continue
            for a, b in ((inbound, outbound), (outbound, inbound)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while data := src.recv(1 << 16):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
