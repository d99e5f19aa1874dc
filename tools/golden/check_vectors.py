#!/usr/bin/env python3
"""Sanity-checks the golden vectors in tests/vectors/<scenario>/ (stdlib only).

For every frame listed in a scenario's manifest.json: the file exists and is
named after its entry; its header parses with the header version the manifest
gives (and the schemas imply) and carries the manifest's api key, version and
correlation id; each response answers an earlier request of the same
connection; the body decodes completely by walking our JSON schemas; record
batches in Produce requests and Fetch responses have valid CRC-32Cs and
well-formed records; rewritten ApiVersions responses stay within our schemas.
Each scenario must hold ApiVersions, Metadata, Produce with records and Fetch
with records. It checks the data, not Samsa's codecs (tests/unit/test_golden.c).

usage: check_vectors.py [--schemas DIR] [DIR...]   (default: tests/vectors)
"""

import argparse
import collections
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kafka_schema import (  # noqa: E402
    API_VERSIONS_KEY,
    BodyDecoder,
    DecodeError,
    Reader,
    Schemas,
    parse_batches,
    read_request_header,
    read_response_header,
)

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DEFAULT_SCHEMAS = os.path.join(
    os.environ.get("SHARED") or os.path.join(ROOT, "..", "shared"), "kafka-protocol-4.4"
)
PRODUCE, FETCH, METADATA = 0, 1, 3
UNSUPPORTED_VERSION = b"\x00\x23"  # error code 35
ENTRY_KEYS = {"file", "direction", "api_key", "api_version", "correlation_id",
              "header_version", "connection", "rewritten"}


class Scenario:
    def __init__(self, path, schemas):
        self.path = path
        self.name = os.path.basename(path.rstrip("/"))
        self.schemas = schemas
        self.failures = []
        self.notes = []
        self.counts = collections.Counter()
        self.batches = 0
        self.records = 0
        self.null_values = 0
        self.headers = 0
        self.compression = collections.Counter()
        self.produce_records = 0
        self.fetch_records = 0

    def fail(self, where, msg):
        self.failures.append(f"{self.name}/{where}: {msg}")

    def check(self):
        mpath = os.path.join(self.path, "manifest.json")
        try:
            with open(mpath) as f:
                manifest = json.load(f)
        except (OSError, ValueError) as e:
            self.fail("manifest.json", str(e))
            return
        if manifest.get("format") != 1 or not isinstance(manifest.get("frames"), list):
            self.fail("manifest.json", "expected {\"format\": 1, \"frames\": [...]}")
            return
        frames = manifest["frames"]
        self.check_txt(frames)
        listed = {e.get("file") for e in frames}
        for fn in sorted(os.listdir(self.path)):
            if fn.endswith(".bin") and fn not in listed:
                self.fail(fn, "not in manifest.json")
        pending = {}  # (connection, correlation id) -> (api key, version)
        for i, e in enumerate(frames):
            if set(e) != ENTRY_KEYS:
                self.fail(f"frame {i + 1}", f"entry keys {sorted(e)}")
                continue
            self.check_frame(i + 1, e, pending)
        for (conn, corr), (key, ver) in sorted(pending.items()):
            self.notes.append(f"{self.schemas.name(key)} v{ver} correlation id {corr} on "
                              f"connection {conn} has no response (client closed first)")
        self.check_coverage()

    def check_txt(self, frames):
        tpath = os.path.join(self.path, "manifest.txt")
        if not os.path.exists(tpath):
            self.fail("manifest.txt", "missing")
            return
        want = [f"{e.get('file')} {e.get('direction')} {e.get('api_key')} {e.get('api_version')} "
                f"{e.get('correlation_id')}" for e in frames]
        with open(tpath) as f:
            got = f.read().splitlines()
        if got != want:
            self.fail("manifest.txt", "does not list the same frames as manifest.json")

    def check_frame(self, seq, e, pending):
        fn, direction, key, ver = e["file"], e["direction"], e["api_key"], e["api_version"]
        api = self.schemas.apis.get(key)
        if api is None:
            self.fail(fn, f"api key {key} is not in our schemas")
            return
        want_name = f"{seq:04d}-{api.name}-v{ver}-{direction}.bin"
        if fn != want_name:
            self.fail(fn, f"expected the name {want_name}")
        if direction not in ("request", "response"):
            self.fail(fn, f"direction {direction!r}")
            return
        is_req = direction == "request"
        hv = api.request_header_version(ver) if is_req else api.response_header_version(ver)
        if e["header_version"] != hv:
            self.fail(fn, f"header_version {e['header_version']}, the schemas say {hv}")
        if e["rewritten"] and (is_req or key != API_VERSIONS_KEY):
            self.fail(fn, "only ApiVersions responses may be rewritten")
        try:
            with open(os.path.join(self.path, fn), "rb") as f:
                data = f.read()
        except OSError as err:
            self.fail(fn, str(err))
            return
        self.counts[(api.name, ver, direction)] += 1
        r = Reader(data)
        try:
            if is_req:
                h = read_request_header(r, hv)
                for k in ("api_key", "api_version", "correlation_id"):
                    if h[k] != e[k]:
                        self.fail(fn, f"header {k} {h[k]}, manifest {e[k]}")
                conn_corr = (e["connection"], e["correlation_id"])
                if conn_corr in pending:
                    self.fail(fn, "correlation id reused before its response")
                pending[conn_corr] = (key, ver)
            else:
                h = read_response_header(r, hv)
                if h["correlation_id"] != e["correlation_id"]:
                    self.fail(fn, f"header correlation id {h['correlation_id']}, "
                                  f"manifest {e['correlation_id']}")
                req = pending.pop((e["connection"], e["correlation_id"]), None)
                if req != (key, ver):
                    self.fail(fn, f"answers no earlier {api.name} v{ver} request on its connection")
        except DecodeError as err:
            self.fail(fn, f"header: {err}")
            return
        self.check_body(fn, api, ver, is_req, data, r)

    def check_body(self, fn, api, ver, is_req, data, r):
        if (not is_req and api.key == API_VERSIONS_KEY and r.left() >= 2
                and data[r.p:r.p + 2] == UNSUPPORTED_VERSION):
            # The refusal of a version we lack is in the v0 format whatever
            # the request's version, and lists only ApiVersions' own range.
            try:
                body = BodyDecoder(api.response, 0).decode(r)
            except DecodeError as err:
                self.fail(fn, f"UNSUPPORTED_VERSION body: {err}")
                return
            keys = [(k["ApiKey"], k["MinVersion"], k["MaxVersion"]) for k in body["ApiKeys"]]
            if r.left() or keys != [(API_VERSIONS_KEY, api.min_version, api.max_version)]:
                self.fail(fn, f"UNSUPPORTED_VERSION answer lists {keys}, {r.left()} bytes left")
            self.notes.append(f"{fn}: UNSUPPORTED_VERSION, ApiVersions v{api.min_version}-"
                              f"v{api.max_version} (v0 body)")
            return
        beyond = ver > api.max_version
        if beyond:
            # The client's first ApiVersions request goes out at its own newest
            # version before it knows ours; decode best-effort, fail nothing.
            self.notes.append(f"{fn}: v{ver} is beyond our schemas (max v{api.max_version})")
        blobs = []
        msg = api.request if is_req else api.response
        try:
            body = BodyDecoder(msg, ver, lambda path, b: blobs.append(b)).decode(r)
        except DecodeError as err:
            if not beyond:
                self.fail(fn, f"body: {err}")
            return
        if r.left() and not beyond:
            if is_req and api.key == METADATA:
                # librdkafka's Metadata requests can carry bytes past the
                # schema's fields; Kafka ignores them.
                self.notes.append(f"{fn}: {r.left()} bytes after the last field (ignored by Kafka)")
            else:
                self.fail(fn, f"{r.left()} bytes after the last field of {len(data)}")
        if beyond:
            return
        for blob in blobs:
            try:
                batches = parse_batches(blob, allow_partial=not is_req)
            except DecodeError as err:
                self.fail(fn, f"records: {err}")
                continue
            for b in batches:
                self.batches += 1
                self.records += b["records"]
                self.null_values += b["null_values"]
                self.headers += b["headers"]
                self.compression[b["compression"]] += 1
                if is_req and api.key == PRODUCE:
                    self.produce_records += b["records"]
                elif not is_req and api.key == FETCH:
                    self.fetch_records += b["records"]
        if not is_req and api.key == API_VERSIONS_KEY and body.get("ErrorCode") == 0:
            keys = body.get("ApiKeys") or []
            if len(keys) < 10:
                self.fail(fn, f"only {len(keys)} apis advertised")
            for k in keys:
                mine = self.schemas.apis.get(k["ApiKey"])
                if mine is None:
                    self.fail(fn, f"advertises api {k['ApiKey']}, absent from our schemas")
                elif not k["MinVersion"] <= k["MaxVersion"] <= mine.max_version:
                    self.fail(fn, f"advertises {mine.name} v{k['MinVersion']}-{k['MaxVersion']}, "
                                  f"our max is v{mine.max_version}")
        if not is_req and api.key == METADATA and not body.get("Brokers"):
            self.fail(fn, "Metadata response without brokers")

    def check_coverage(self):
        have = {(n, d) for (n, _, d) in self.counts}
        for name in ("ApiVersions", "Metadata", "Produce", "Fetch"):
            for d in ("request", "response"):
                if (name, d) not in have:
                    self.fail("coverage", f"no {name} {d}")
        if not self.produce_records:
            self.fail("coverage", "no Produce request with records")
        if not self.fetch_records:
            self.fail("coverage", "no Fetch response with records")

    def summary(self):
        apis = collections.defaultdict(lambda: [0, 0])
        for (name, ver, d), n in sorted(self.counts.items()):
            apis[f"{name} v{ver}"][0 if d == "request" else 1] += n
        frames = sum(self.counts.values())
        lines = [f"{self.name}: {frames} frames; " + ", ".join(
            f"{k} {q}/{s}" for k, (q, s) in apis.items()) + " (requests/responses)"]
        comp = ", ".join(f"{k} {n}" for k, n in sorted(self.compression.items()))
        lines.append(f"  {self.batches} record batches ({comp}), {self.records} records: "
                     f"{self.produce_records} produced, {self.fetch_records} fetched, "
                     f"{self.null_values} null values, {self.headers} headers")
        return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--schemas", default=DEFAULT_SCHEMAS)
    ap.add_argument("-v", "--verbose", action="store_true", help="print notes too")
    ap.add_argument("dirs", nargs="*", default=[os.path.join(ROOT, "tests", "vectors")])
    a = ap.parse_args()
    schemas = Schemas(a.schemas)
    dirs = []
    for d in a.dirs:
        if os.path.exists(os.path.join(d, "manifest.json")):
            dirs.append(d)
        else:
            dirs += sorted(os.path.join(d, s) for s in os.listdir(d)
                           if os.path.exists(os.path.join(d, s, "manifest.json")))
    if not dirs:
        print("check_vectors: no scenario with a manifest.json", file=sys.stderr)
        return 1
    passed = failed = 0
    total = 0
    for d in dirs:
        s = Scenario(d, schemas)
        s.check()
        for line in s.summary():
            print(line)
        if a.verbose:
            for n in s.notes:
                print(f"  note: {n}")
        else:
            print(f"  {len(s.notes)} notes (-v to list)")
        for f in s.failures:
            print(f"  FAIL {f}")
        total += sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
        if s.failures:
            failed += 1
        else:
            passed += 1
    print(f"check_vectors: {total} bytes in {len(dirs)} scenarios")
    print(f"scenarios: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
