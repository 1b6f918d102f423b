#!/usr/bin/env python3
"""Cut the torn tails a `kill -9` leaves in an Iggy 0.8.0 server's segments, before a restart.

    python3 scripts/iggy_segments.py DATA_DIR      # `scripts/iggy start` runs it on a restart

Server 0.8.0 loads a segment with its size taken from the message log's file length and its
end offset from the index. When the server was killed in the middle of writing a batch (a batch
it never acknowledged), the log keeps the batch's first bytes: the server appends after them,
and a later poll that spans them cannot frame the messages ("Invalid reserved field value").
Iggy fixed this after 0.8.0 (apache/iggy#3946: truncate torn segment tails at load).

For each segment whose index does not end exactly at the end of its log, this walks the log's
messages (64-byte headers: checksum, id, offset, timestamp, origin timestamp, user-headers
length, payload length, reserved = 0), keeps the longest run of whole messages with consecutive
offsets, truncates the log there and rewrites the index from that run (16-byte entries: offset
relative to the segment, end position, timestamp, as the server writes them). Intact segments
are only checked against their index and left alone. Prints a line per repaired segment.
"""
import os
import struct
import sys

HEADER = struct.Struct("<Q16sQQQIIQ")  # checksum, id, offset, timestamp, origin ts, headers len, payload len, reserved
INDEX = struct.Struct("<IIQ")  # relative offset, end position, timestamp


def intact(log_path, index_path):
    """True when the index's last entry ends where the log ends (or both are empty)."""
    log_len = os.path.getsize(log_path)
    try:
        index_len = os.path.getsize(index_path)
    except FileNotFoundError:
        return log_len == 0
    if index_len % INDEX.size:
        return False
    if index_len == 0:
        return log_len == 0
    with open(index_path, "rb") as f:
        f.seek(index_len - INDEX.size)
        _, end, _ = INDEX.unpack(f.read(INDEX.size))
    return end == log_len


def whole_messages(log_path, start_offset):
    """Index entries of the whole messages at the head of the log, and where they end."""
    entries = []
    position = 0
    with open(log_path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        while position + HEADER.size <= size:
            f.seek(position)
            _, _, offset, timestamp, _, headers_len, payload_len, reserved = HEADER.unpack(f.read(HEADER.size))
            end = position + HEADER.size + headers_len + payload_len
            if reserved != 0 or end > size or offset != start_offset + len(entries):
                break
            entries.append((offset - start_offset, end, timestamp))
            position = end
    return entries, position


def repair(data_dir):
    """Repairs every segment under data_dir/streams; returns how many were repaired."""
    repaired = 0
    for parent, _, files in os.walk(os.path.join(data_dir, "streams")):
        for name in sorted(files):
            if not name.endswith(".log"):
                continue
            stem = name[: -len(".log")]
            if not stem.isdigit():
                continue
            log_path = os.path.join(parent, name)
            index_path = os.path.join(parent, stem + ".index")
            if intact(log_path, index_path):
                continue
            entries, end = whole_messages(log_path, int(stem))
            cut = os.path.getsize(log_path) - end
            with open(log_path, "r+b") as f:
                f.truncate(end)
                os.fsync(f.fileno())
            with open(index_path, "wb") as f:
                f.write(b"".join(INDEX.pack(*e) for e in entries))
                os.fsync(f.fileno())
            print(f"iggy: {log_path}: cut a torn tail of {cut} bytes, kept {len(entries)} whole messages, "
                  "index rewritten", file=sys.stderr)
            repaired += 1
    return repaired


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    repair(sys.argv[1])


if __name__ == "__main__":
    main()
