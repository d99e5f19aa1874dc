"""Kafka's JSON message schemas, read generically, for the golden-vector tools.

Loads /work/shared/kafka-protocol-4.4/message/*.json (comments stripped), answers
which header versions a request/response uses, and decodes a message body by
walking its schema. Standard library only. This is a checking aid for
tools/golden/, not a codec: Samsa's codecs are generated C (tools/gen_protocol.py).
"""

import json
import os
import struct

API_VERSIONS_KEY = 18
CONTROLLED_SHUTDOWN_KEY = 7


def strip_comments(text):
    """Removes // comments outside JSON strings."""
    out = []
    i, n = 0, len(text)
    in_str = False
    while i < n:
        c = text[i]
        if in_str:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
            out.append(c)
        elif c == "/" and text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


def load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.loads(strip_comments(f.read()))


class Versions:
    """A version range as the schemas write it: "none", "3", "3+", "0-4"."""

    def __init__(self, spec):
        spec = (spec or "none").strip()
        if spec == "none":
            self.lo, self.hi = 1, 0
        elif spec.endswith("+"):
            self.lo, self.hi = int(spec[:-1]), 1 << 15
        elif "-" in spec:
            a, b = spec.split("-")
            self.lo, self.hi = int(a), int(b)
        else:
            self.lo = self.hi = int(spec)

    def __contains__(self, v):
        return self.lo <= v <= self.hi


class Api:
    def __init__(self, request, response):
        self.key = request["apiKey"]
        self.name = request["name"][: -len("Request")]
        self.request = request
        self.response = response
        self.valid = Versions(request["validVersions"])
        self.min_version = self.valid.lo
        self.max_version = self.valid.hi
        self.req_flexible = Versions(request.get("flexibleVersions"))
        self.resp_flexible = Versions(response.get("flexibleVersions"))

    def request_header_version(self, version):
        # ControlledShutdown v0 used header v0 (no client id); 4.x dropped it.
        if self.key == CONTROLLED_SHUTDOWN_KEY and version == 0:
            return 0
        return 2 if version in self.req_flexible else 1

    def response_header_version(self, version):
        # ApiVersions responses always use header v0, so that a client that
        # sent a version the broker does not know can still read the answer.
        if self.key == API_VERSIONS_KEY:
            return 0
        return 1 if version in self.resp_flexible else 0


class Schemas:
    def __init__(self, schema_dir):
        mdir = os.path.join(schema_dir, "message")
        if not os.path.isdir(mdir):
            mdir = schema_dir
        self.apis = {}
        for fn in sorted(os.listdir(mdir)):
            if not fn.endswith("Request.json"):
                continue
            req = load_json(os.path.join(mdir, fn))
            if req.get("type") != "request":
                continue
            resp = load_json(os.path.join(mdir, fn[: -len("Request.json")] + "Response.json"))
            api = Api(req, resp)
            self.apis[api.key] = api

    def name(self, key):
        api = self.apis.get(key)
        return api.name if api else f"Api{key}"


# ---------------------------------------------------------------- decoding


class DecodeError(Exception):
    pass


class Reader:
    def __init__(self, data, pos=0, end=None):
        self.b = data
        self.p = pos
        self.end = len(data) if end is None else end

    def left(self):
        return self.end - self.p

    def take(self, n):
        if n < 0 or self.p + n > self.end:
            raise DecodeError(f"need {n} bytes at {self.p}, have {self.left()}")
        out = self.b[self.p : self.p + n]
        self.p += n
        return out

    def unpack(self, fmt):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def uvarint(self):
        v = shift = 0
        while True:
            if shift > 28:
                raise DecodeError(f"unsigned varint too long at {self.p}")
            c = self.take(1)[0]
            v |= (c & 0x7F) << shift
            if not c & 0x80:
                return v
            shift += 7

    def varint(self):  # zigzag, up to 64 bits (records)
        v = shift = 0
        while True:
            if shift > 63:
                raise DecodeError(f"varint too long at {self.p}")
            c = self.take(1)[0]
            v |= (c & 0x7F) << shift
            if not c & 0x80:
                return (v >> 1) ^ -(v & 1)
            shift += 7


def read_request_header(r, header_version):
    """-> dict(api_key, api_version, correlation_id, client_id, tagged)"""
    h = {
        "api_key": r.unpack(">h"),
        "api_version": r.unpack(">h"),
        "correlation_id": r.unpack(">i"),
    }
    if header_version >= 1:
        n = r.unpack(">h")  # a classic nullable string even in header v2
        h["client_id"] = None if n == -1 else r.take(n).decode("utf-8", "replace")
    if header_version >= 2:
        h["tagged"] = read_raw_tags(r)
    return h


def read_response_header(r, header_version):
    h = {"correlation_id": r.unpack(">i")}
    if header_version >= 1:
        h["tagged"] = read_raw_tags(r)
    return h


def read_raw_tags(r):
    tags = {}
    for _ in range(r.uvarint()):
        tag = r.uvarint()
        tags[tag] = r.take(r.uvarint())
    return tags


PRIMITIVE = {
    "bool": ">?",
    "int8": ">b",
    "int16": ">h",
    "uint16": ">H",
    "int32": ">i",
    "uint32": ">I",
    "int64": ">q",
    "float64": ">d",
}


class BodyDecoder:
    """Decodes a message body per its schema into nested dicts (bytes and
    records fields stay bytes). on_records(path, blob) sees every records field."""

    def __init__(self, message, version, on_records=None):
        self.msg = message
        self.v = version
        self.flex = version in Versions(message.get("flexibleVersions"))
        self.structs = {s["name"]: s for s in message.get("commonStructs", [])}
        self.on_records = on_records

    def decode(self, r):
        return self.struct(r, self.msg["fields"], self.msg["name"])

    def struct(self, r, fields, path):
        out = {}
        tagged = {}
        for f in fields:
            if self.v not in Versions(f.get("versions")):
                continue
            if self.flex and "tag" in f and self.v in Versions(f.get("taggedVersions")):
                tagged[f["tag"]] = f
                continue
            out[f["name"]] = self.field(r, f, f"{path}.{f['name']}")
        if self.flex:
            for _ in range(r.uvarint()):
                tag = r.uvarint()
                size = r.uvarint()
                sub = Reader(r.b, r.p, r.p + size)
                if sub.end > r.end:
                    raise DecodeError(f"{path}: tagged field {tag} overruns its struct")
                if tag in tagged:
                    f = tagged[tag]
                    out[f["name"]] = self.field(sub, f, f"{path}.{f['name']}")
                    if sub.left():
                        raise DecodeError(f"{path}: tagged field {tag} left {sub.left()} bytes")
                else:
                    out.setdefault("_unknown_tags", {})[tag] = r.b[r.p : r.p + size]
                r.p += size
        return out

    def fields_of(self, f, type_name):
        if "fields" in f:
            return f["fields"]
        if type_name in self.structs:
            return self.structs[type_name]["fields"]
        raise DecodeError(f"no schema for struct type {type_name}")

    def field(self, r, f, path):
        t = f["type"]
        nullable = self.v in Versions(f.get("nullableVersions"))
        # A field may opt out of compact encoding (RequestHeader.ClientId).
        flex = self.flex and (
            "flexibleVersions" not in f or self.v in Versions(f["flexibleVersions"])
        )
        if t.startswith("[]"):
            n = r.uvarint() - 1 if flex else r.unpack(">i")
            if n < 0:
                if not nullable:
                    raise DecodeError(f"{path}: null array that is not nullable")
                return None
            if n > r.left():
                raise DecodeError(f"{path}: array of {n} in {r.left()} bytes")
            elem = t[2:]
            if elem in PRIMITIVE or elem in ("string", "bytes", "uuid", "records"):
                return [self.scalar(r, elem, False, flex, f"{path}[{i}]") for i in range(n)]
            fields = self.fields_of(f, elem)
            return [self.struct(r, fields, f"{path}[{i}]") for i in range(n)]
        if t in PRIMITIVE or t in ("string", "bytes", "uuid", "records"):
            return self.scalar(r, t, nullable, flex, path)
        # A struct-typed field; nullable ones carry an int8 presence marker.
        if nullable:
            if r.unpack(">b") < 0:
                return None
        return self.struct(r, self.fields_of(f, t), path)

    def scalar(self, r, t, nullable, flex, path):
        if t in PRIMITIVE:
            return r.unpack(PRIMITIVE[t])
        if t == "uuid":
            return r.take(16)
        if t == "string":
            n = r.uvarint() - 1 if flex else r.unpack(">h")
        else:
            n = r.uvarint() - 1 if flex else r.unpack(">i")
        if n < 0:
            if not nullable:
                raise DecodeError(f"{path}: null {t} that is not nullable")
            return None
        data = r.take(n)
        if t == "string":
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DecodeError(f"{path}: string is not UTF-8") from e
        if t == "records" and self.on_records:
            self.on_records(path, data)
        return data


# ----------------------------------------------------------- record batches

_CRC32C = []


def crc32c(data):
    if not _CRC32C:
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
            _CRC32C.append(c)
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC32C[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


COMPRESSION = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}


def parse_batches(blob, allow_partial):
    """Record batches (magic 2) in a records blob -> list of dicts. Checks each
    CRC-32C and, for uncompressed batches, walks every record. A Fetch
    response may end in a partial batch (allow_partial)."""
    out = []
    r = Reader(blob)
    while r.left():
        if r.left() < 12 or r.left() < 12 + struct.unpack(">i", blob[r.p + 8 : r.p + 12])[0]:
            if allow_partial:
                break
            raise DecodeError(f"records end in a partial batch at {r.p}")
        start = r.p
        base_offset = r.unpack(">q")
        length = r.unpack(">i")
        body = Reader(blob, r.p, r.p + length)
        r.p += length
        body.unpack(">i")  # partition leader epoch
        magic = body.unpack(">b")
        if magic != 2:
            raise DecodeError(f"batch at {start}: magic {magic}, only 2 is expected")
        crc = body.unpack(">I")
        if crc32c(blob[body.p : body.end]) != crc:
            raise DecodeError(f"batch at {start}: CRC-32C mismatch")
        attrs = body.unpack(">h")
        body.unpack(">i")  # last offset delta
        body.unpack(">q")  # base timestamp
        body.unpack(">q")  # max timestamp
        producer_id = body.unpack(">q")
        body.unpack(">h")  # producer epoch
        base_sequence = body.unpack(">i")
        count = body.unpack(">i")
        b = {
            "base_offset": base_offset,
            "compression": COMPRESSION.get(attrs & 7, f"unknown{attrs & 7}"),
            "transactional": bool(attrs & 0x10),
            "control": bool(attrs & 0x20),
            "producer_id": producer_id,
            "base_sequence": base_sequence,
            "records": count,
            "null_values": 0,
            "headers": 0,
        }
        if attrs & 7 == 0:
            for i in range(count):
                rlen = body.varint()
                rec = Reader(blob, body.p, body.p + rlen)
                body.p += rlen
                if body.p > body.end:
                    raise DecodeError(f"batch at {start}: record {i} overruns the batch")
                rec.take(1)  # attributes
                rec.varint()  # timestamp delta
                rec.varint()  # offset delta
                klen = rec.varint()
                if klen >= 0:
                    rec.take(klen)
                vlen = rec.varint()
                if vlen >= 0:
                    rec.take(vlen)
                else:
                    b["null_values"] += 1
                for _ in range(rec.varint()):
                    rec.take(rec.varint())  # header key (never null)
                    hv = rec.varint()
                    if hv >= 0:
                        rec.take(hv)
                    b["headers"] += 1
                if rec.left():
                    raise DecodeError(f"batch at {start}: record {i} has {rec.left()} extra bytes")
            if body.left():
                raise DecodeError(f"batch at {start}: {body.left()} bytes after the last record")
        out.append(b)
    return out
