#!/usr/bin/env python3
"""A recording Kafka proxy for golden test vectors (standard library only).

Listens on 127.0.0.1:PORT, forwards every connection to the broker at
UPSTREAM, and writes each request and response frame (the bytes after the
4-byte size prefix) to OUTDIR as NNNN-<Api>-v<version>-request.bin /
-response.bin, with one line per frame in OUTDIR/manifest.txt:

    <file> <request|response> <api_key> <api_version> <correlation_id>

ApiVersions responses are rewritten before they reach the client: each api's
max version is clamped to the highest version of Samsa's schemas and apis the
schemas lack are dropped, so the client then speaks versions Samsa's codec
knows. The rewritten response is what gets recorded (what the client saw).

usage: record_proxy.py PORT UPSTREAM_HOST:PORT OUTDIR SCHEMA_DIR
"""

import os
import socket
import struct
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from gen_protocol import load_json_with_comments, parse_versions  # noqa: E402

API_VERSIONS = 18


def schema_info(schema_dir):
    """api key -> (name, max version, first flexible request version)"""
    out = {}
    mdir = os.path.join(schema_dir, "message")
    for fn in os.listdir(mdir):
        if not fn.endswith("Request.json"):
            continue
        spec = load_json_with_comments(os.path.join(mdir, fn))
        lo, hi = parse_versions(spec["validVersions"])
        flex = parse_versions(spec.get("flexibleVersions", "none"))
        out[spec["apiKey"]] = (spec["name"][: -len("Request")], hi, flex[0] if flex else 1 << 15)
    return out


def read_uvarint(b, i):
    shift = v = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        if not c & 0x80:
            return v, i
        shift += 7


def uvarint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def rewrite_api_versions(frame, version, schemas):
    """Clamps the advertised versions; frame = header v0 + body."""
    corr = frame[:4]
    b = frame[4:]
    err = b[:2]
    i = 2
    flex = version >= 3
    if flex:
        n, i = read_uvarint(b, i)
        n -= 1
    else:
        n = struct.unpack(">i", b[i:i + 4])[0]
        i += 4
    entries = []
    for _ in range(max(n, 0)):
        key, lo, hi = struct.unpack(">hhh", b[i:i + 6])
        i += 6
        if flex:
            nt, i = read_uvarint(b, i)
            assert nt == 0, "tagged fields inside ApiVersion entries are not expected"
        if key in schemas:
            entries.append((key, lo, min(hi, schemas[key][1])))
    rest = b[i:]
    out = bytearray(corr + err)
    out += uvarint(len(entries) + 1) if flex else struct.pack(">i", len(entries))
    for key, lo, hi in entries:
        out += struct.pack(">hhh", key, lo, hi)
        if flex:
            out += b"\x00"
    out += rest
    return bytes(out)


class Recorder:
    def __init__(self, outdir, schemas):
        self.outdir = outdir
        self.schemas = schemas
        self.lock = threading.Lock()
        self.seq = 0
        os.makedirs(outdir, exist_ok=True)
        self.manifest = open(os.path.join(outdir, "manifest.txt"), "a")

    def write(self, kind, key, version, corr, frame):
        with self.lock:
            self.seq += 1
            name = self.schemas.get(key, (f"Api{key}",))[0]
            fn = f"{self.seq:04d}-{name}-v{version}-{kind}.bin"
            with open(os.path.join(self.outdir, fn), "wb") as f:
                f.write(frame)
            self.manifest.write(f"{fn} {kind} {key} {version} {corr}\n")
            self.manifest.flush()


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        d = s.recv(n - len(buf))
        if not d:
            return None
        buf += d
    return bytes(buf)


def handle(client, upstream, rec):
    server = socket.create_connection(upstream)
    pending = {}  # correlation id -> (api key, version)
    lock = threading.Lock()

    def requests():
        try:
            while True:
                h = recv_exact(client, 4)
                if h is None:
                    break
                frame = recv_exact(client, struct.unpack(">i", h)[0])
                if frame is None:
                    break
                key, ver, corr = struct.unpack(">hhi", frame[:8])
                with lock:
                    pending[corr] = (key, ver)
                rec.write("request", key, ver, corr, frame)
                server.sendall(h + frame)
        finally:
            try:
                server.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    t = threading.Thread(target=requests, daemon=True)
    t.start()
    try:
        while True:
            h = recv_exact(server, 4)
            if h is None:
                break
            frame = recv_exact(server, struct.unpack(">i", h)[0])
            if frame is None:
                break
            corr = struct.unpack(">i", frame[:4])[0]
            with lock:
                key, ver = pending.pop(corr, (-1, -1))
            if key == API_VERSIONS and struct.unpack(">h", frame[4:6])[0] == 0:
                frame = rewrite_api_versions(frame, ver, rec.schemas)
            rec.write("response", key, ver, corr, frame)
            client.sendall(struct.pack(">i", len(frame)) + frame)
    finally:
        client.close()
        server.close()


def main():
    port, upstream, outdir, schema_dir = sys.argv[1:5]
    host, uport = upstream.rsplit(":", 1)
    rec = Recorder(outdir, schema_info(schema_dir))
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", int(port)))
    ls.listen(16)
    print(f"record_proxy: 127.0.0.1:{port} -> {upstream}, writing {outdir}", flush=True)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=handle, args=(c, (host, int(uport)), rec), daemon=True).start()


if __name__ == "__main__":
    main()
