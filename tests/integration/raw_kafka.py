"""A tiny raw-socket Kafka request helper for tests that need exact versions or
inputs no client library sends: a writer and reader for the primitive types in
both the classic and the flexible (compact, tagged) encodings, one request and
response exchange, and DescribeConfigs encoded and decoded at any version."""

import socket
import struct


class Writer:
    def __init__(self, flexible):
        self.flexible = flexible
        self.out = bytearray()

    def raw(self, fmt, *v):
        self.out += struct.pack(">" + fmt, *v)
        return self

    def uvarint(self, n):
        while n >= 0x80:
            self.out.append((n & 0x7F) | 0x80)
            n >>= 7
        self.out.append(n)
        return self

    def length(self, n, fmt):
        """A string (fmt "h") or array (fmt "i") length; None is null."""
        if self.flexible:
            return self.uvarint(0 if n is None else n + 1)
        return self.raw(fmt, -1 if n is None else n)

    def string(self, s):
        data = None if s is None else s.encode()
        self.length(None if data is None else len(data), "h")
        if data is not None:
            self.out += data
        return self

    def array(self, items, put):
        self.length(None if items is None else len(items), "i")
        for item in items or []:
            put(self, item)
        return self

    def tags(self):
        if self.flexible:
            self.uvarint(0)
        return self


class Reader:
    def __init__(self, data, flexible):
        self.data = data
        self.pos = 0
        self.flexible = flexible

    def raw(self, fmt):
        v = struct.unpack_from(">" + fmt, self.data, self.pos)
        self.pos += struct.calcsize(">" + fmt)
        return v[0]

    def uvarint(self):
        n = shift = 0
        while True:
            b = self.data[self.pos]
            self.pos += 1
            n |= (b & 0x7F) << shift
            if b < 0x80:
                return n
            shift += 7

    def string(self):
        s = self.string_bytes()
        return None if s is None else s.decode()

    def string_bytes(self):
        """A string as its bytes (Kafka strings may hold any byte, NUL too)."""
        n = self.uvarint() - 1 if self.flexible else self.raw("h")
        if n < 0:
            return None
        s = self.data[self.pos:self.pos + n]
        self.pos += n
        return s

    def bytes(self):
        n = self.uvarint() - 1 if self.flexible else self.raw("i")
        if n < 0:
            return None
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def array(self, get):
        n = self.uvarint() - 1 if self.flexible else self.raw("i")
        return None if n < 0 else [get(self) for _ in range(n)]

    def tags(self):
        if self.flexible:
            for _ in range(self.uvarint()):
                self.uvarint()
                self.pos += self.uvarint()


def exchange(port, api_key, version, body, flexible, corr=11, timeout=10.0):
    """Sends one request (header v1, or v2 when flexible) and returns a Reader
    over the response body, past the correlation id and header tags."""
    head = struct.pack(">hhih", api_key, version, corr, 3) + b"raw" + (b"\x00" if flexible else b"")
    frame = head + body
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(struct.pack(">i", len(frame)) + frame)
        buf = b""
        while len(buf) < 4 or len(buf) < 4 + struct.unpack(">i", buf[:4])[0]:
            d = s.recv(65536)
            if not d:
                raise ConnectionError("the broker closed the connection")
            buf += d
    r = Reader(buf[4:], flexible)
    assert r.raw("i") == corr
    # ApiVersions answers with header v0 at every version.
    if api_key != 18:
        r.tags()
    return r


DESCRIBE_CONFIGS = 32


def describe_configs(port, version, resources, synonyms=False, documentation=False):
    """resources: (type, name, keys or None). Returns the decoded results as
    dicts with the fields the version carries."""
    flexible = version >= 4
    w = Writer(flexible)

    def put_resource(w, res):
        rtype, name, keys = res
        w.raw("b", rtype).string(name)
        w.array(keys, lambda w, k: w.string(k))
        w.tags()

    w.array(resources, put_resource)
    if version >= 1:
        w.raw("?", synonyms)
    if version >= 3:
        w.raw("?", documentation)
    w.tags()
    r = exchange(port, DESCRIBE_CONFIGS, version, bytes(w.out), flexible)

    def get_synonym(r):
        s = {"name": r.string(), "value": r.string(), "source": r.raw("b")}
        r.tags()
        return s

    def get_config(r):
        c = {"name": r.string(), "value": r.string(), "read_only": r.raw("?")}
        if version == 0:
            c["is_default"] = r.raw("?")
        else:
            c["source"] = r.raw("b")
        c["sensitive"] = r.raw("?")
        if version >= 1:
            c["synonyms"] = r.array(get_synonym)
        if version >= 3:
            c["type"] = r.raw("b")
            c["documentation"] = r.string()
        r.tags()
        return c

    def get_result(r):
        res = {"error_code": r.raw("h"), "error_message": r.string(), "resource_type": r.raw("b"),
               "resource_name": r.string()}
        res["configs"] = r.array(get_config)
        r.tags()
        return res

    r.raw("i")  # throttle time
    results = r.array(get_result)
    r.tags()
    assert r.pos == len(r.data), "bytes left after the response"
    return results
