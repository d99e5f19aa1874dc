#!/usr/bin/env python3
"""A recording Kafka proxy that captures golden test vectors (stdlib only).

Listens on 127.0.0.1:PORT, forwards each client connection to the broker at
UPSTREAM, splits both directions into Kafka frames (int32 size + frame) and
writes every frame, without its size prefix, to
OUTDIR/NNNN-<Api>-v<version>-request.bin / ...-response.bin. Responses are
named by pairing their correlation id with the request on the same connection.
OUTDIR/manifest.json lists the frames in capture order (format documented in
docs/golden-vectors.md); OUTDIR/manifest.txt has the same frames one per line,
"<file> <direction> <api_key> <api_version> <correlation_id>".

ApiVersions responses are rewritten on their way to the client: every api's
max version is clamped to the max of validVersions in our schemas and apis
absent from the schemas are dropped, so that the client then uses versions our
codec knows. An ApiVersions request newer than our schemas (the Java client
opens every connection with its own newest version) is not forwarded: the proxy
answers it as Kafka answers a version it does not know (UNSUPPORTED_VERSION,
v0 body, ApiVersions range only) but with our range, and the client retries at
our max. Rewritten and synthesized frames are recorded as the client saw them
and marked "rewritten": true. Nothing else is changed. Not for production use:
one thread pair per connection, no TLS/SASL.

usage: record_proxy.py --port PORT --upstream HOST:PORT --out OUTDIR [--schemas DIR]
"""

import argparse
import json
import os
import signal
import socket
import struct
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kafka_schema import API_VERSIONS_KEY, Reader, Schemas  # noqa: E402

UNSUPPORTED_VERSION = 35
DEFAULT_SCHEMAS = os.path.join(
    os.environ.get("SHARED")
    or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared"),
    "kafka-protocol-4.4",
)


def uvarint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def rewrite_api_versions(frame, version, schemas):
    """Clamps the api ranges of an ApiVersions response frame (header v0 +
    body). An UNSUPPORTED_VERSION answer is in the v0 body format whatever the
    request version was. Returns the new frame (unchanged if nothing to do)."""
    r = Reader(frame)
    r.unpack(">i")  # correlation id
    error = r.unpack(">h")
    if error == UNSUPPORTED_VERSION:
        version = 0
    elif error != 0:
        return frame
    flex = version >= 3
    n = r.uvarint() - 1 if flex else r.unpack(">i")
    entries = []
    for _ in range(max(n, 0)):
        key, lo, hi = r.unpack(">h"), r.unpack(">h"), r.unpack(">h")
        tags = b""
        if flex:
            start = r.p
            for _ in range(r.uvarint()):
                r.uvarint()
                r.take(r.uvarint())
            tags = frame[start : r.p]
        api = schemas.apis.get(key)
        if api is None or lo > api.max_version:
            continue
        entries.append(struct.pack(">hhh", key, lo, min(hi, api.max_version)) + tags)
    out = bytearray(frame[:6])
    out += uvarint(len(entries) + 1) if flex else struct.pack(">i", len(entries))
    for e in entries:
        out += e
    out += frame[r.p :]  # throttle time, tagged fields (features): untouched
    return bytes(out)


def refuse_api_versions(frame, version, schemas):
    """The answer to an ApiVersions request newer than our schemas, or None if
    our schemas know its version: what Kafka sends when it does not know the
    version (UNSUPPORTED_VERSION in the v0 format, listing only its own
    ApiVersions range), with our range, so the client retries at our max."""
    api = schemas.apis[API_VERSIONS_KEY]
    if version <= api.max_version:
        return None
    return frame[4:8] + struct.pack(
        ">hihhh", UNSUPPORTED_VERSION, 1, API_VERSIONS_KEY, api.min_version, api.max_version
    )


class Recorder:
    """Numbers frames across all connections and keeps both manifests current
    on disk after every frame, so an interrupted capture is still usable."""

    def __init__(self, outdir, schemas):
        self.outdir = outdir
        self.schemas = schemas
        self.lock = threading.Lock()
        self.entries = []
        os.makedirs(outdir, exist_ok=True)
        for fn in os.listdir(outdir):
            if fn.endswith(".bin") or fn.startswith("manifest."):
                os.unlink(os.path.join(outdir, fn))

    def header_version(self, direction, key, version):
        api = self.schemas.apis.get(key)
        if api is None:
            return -1
        if direction == "request":
            return api.request_header_version(version)
        return api.response_header_version(version)

    def write(self, conn, direction, key, version, corr, frame, rewritten=False):
        with self.lock:
            seq = len(self.entries) + 1
            fn = f"{seq:04d}-{self.schemas.name(key)}-v{version}-{direction}.bin"
            with open(os.path.join(self.outdir, fn), "wb") as f:
                f.write(frame)
            self.entries.append(
                {
                    "file": fn,
                    "direction": direction,
                    "api_key": key,
                    "api_version": version,
                    "correlation_id": corr,
                    "header_version": self.header_version(direction, key, version),
                    "connection": conn,
                    "rewritten": rewritten,
                }
            )
            self._flush()

    def _flush(self):
        tmp = os.path.join(self.outdir, "manifest.json.tmp")
        with open(tmp, "w") as f:
            json.dump({"format": 1, "frames": self.entries}, f, indent=1)
            f.write("\n")
        os.replace(tmp, os.path.join(self.outdir, "manifest.json"))
        tmp = os.path.join(self.outdir, "manifest.txt.tmp")
        with open(tmp, "w") as f:
            for e in self.entries:
                f.write(
                    f"{e['file']} {e['direction']} {e['api_key']} {e['api_version']} "
                    f"{e['correlation_id']}\n"
                )
        os.replace(tmp, os.path.join(self.outdir, "manifest.txt"))


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        d = s.recv(min(n - len(buf), 1 << 20))
        if not d:
            return None
        buf += d
    return bytes(buf)


def recv_frame(s):
    h = recv_exact(s, 4)
    if h is None:
        return None
    n = struct.unpack(">i", h)[0]
    if n < 0 or n > 200 << 20:
        raise ValueError(f"bad frame size {n}")
    return recv_exact(s, n)


def handle(conn_id, client, upstream, rec):
    try:
        server = socket.create_connection(upstream, timeout=10)
        server.settimeout(None)
    except OSError as e:
        print(f"record_proxy: connection {conn_id}: upstream: {e}", file=sys.stderr)
        client.close()
        return
    pending = {}  # correlation id -> (api key, version)
    lock = threading.Lock()
    send_lock = threading.Lock()  # both threads may answer the client

    def pump_requests():
        try:
            while True:
                frame = recv_frame(client)
                if frame is None:
                    break
                key, ver, corr = struct.unpack(">hhi", frame[:8])
                refusal = None
                with lock:
                    if key == API_VERSIONS_KEY and not pending:
                        refusal = refuse_api_versions(frame, ver, rec.schemas)
                    if refusal is None:
                        pending[corr] = (key, ver)
                rec.write(conn_id, "request", key, ver, corr, frame)
                if refusal is not None:
                    # Answered here, as Kafka limited to our schemas would;
                    # nothing is in flight, so the answer is in order.
                    rec.write(conn_id, "response", key, ver, corr, refusal, True)
                    with send_lock:
                        client.sendall(struct.pack(">i", len(refusal)) + refusal)
                    continue
                server.sendall(struct.pack(">i", len(frame)) + frame)
        except (OSError, ValueError, struct.error) as e:
            print(f"record_proxy: connection {conn_id}: client side: {e}", file=sys.stderr)
        finally:
            try:
                server.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    t = threading.Thread(target=pump_requests, daemon=True)
    t.start()
    try:
        while True:
            frame = recv_frame(server)
            if frame is None:
                break
            corr = struct.unpack(">i", frame[:4])[0]
            with lock:
                key, ver = pending.pop(corr, (-1, -1))
            if key == -1:
                print(f"record_proxy: connection {conn_id}: response to unknown "
                      f"correlation id {corr}", file=sys.stderr)
            rewritten = False
            if key == API_VERSIONS_KEY:
                new = rewrite_api_versions(frame, ver, rec.schemas)
                rewritten = new != frame
                frame = new
            rec.write(conn_id, "response", key, ver, corr, frame, rewritten)
            with send_lock:
                client.sendall(struct.pack(">i", len(frame)) + frame)
    except (OSError, ValueError, struct.error) as e:
        print(f"record_proxy: connection {conn_id}: broker side: {e}", file=sys.stderr)
    finally:
        t.join(timeout=5)
        with lock:
            for corr, (key, ver) in pending.items():
                # acks=0 produce requests get no response; others were cut off.
                print(f"record_proxy: connection {conn_id}: no response to "
                      f"{rec.schemas.name(key)} v{ver} correlation id {corr}", file=sys.stderr)
        client.close()
        server.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True, help="port to listen on (127.0.0.1)")
    ap.add_argument("--upstream", required=True, help="broker HOST:PORT")
    ap.add_argument("--out", required=True, help="scenario directory (emptied first)")
    ap.add_argument("--schemas", default=DEFAULT_SCHEMAS, help="kafka-protocol directory")
    a = ap.parse_args()
    host, uport = a.upstream.rsplit(":", 1)
    rec = Recorder(a.out, Schemas(a.schemas))
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", a.port))
    ls.listen(64)
    def on_term(*_):
        with rec.lock:  # never exit halfway through writing a frame
            os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    print(f"record_proxy: 127.0.0.1:{a.port} -> {a.upstream}, writing {a.out}", flush=True)
    conn_id = 0
    try:
        while True:
            c, _ = ls.accept()
            conn_id += 1
            threading.Thread(
                target=handle, args=(conn_id, c, (host, int(uport)), rec), daemon=True
            ).start()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
