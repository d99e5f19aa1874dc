#!/usr/bin/env python3
"""Generates Samsa's C codecs for Kafka's protocol from Kafka's JSON schemas.

Reads message/ (requests, responses, headers), metadata/ (KRaft metadata log
records), coordinator/ (__consumer_offsets, __share_group_state and
__transaction_state records), raft/, storage/ (producer snapshots, tiered-storage
metadata records) and streams/ under --schemas (Kafka 4.4's schemas), and
writes under --out:

  <message>.h / <message>.c   one pair per schema: a struct per (nested) struct,
                              and init / decode / encode / size functions that
                              take the version
  api.h / api.c               tables: api key -> request/response descriptors,
                              metadata record type -> descriptor, ...
  testing/<message>.c         fill (pseudo-random values) and eq (compare) per
                              message, used only by the round-trip unit tests

Only names, types, versions, tags and defaults are taken from the schemas.
Standard library only; output is deterministic (sorted), so `make
protocol-check` can diff it.
"""

import argparse
import json
import os
import re
import sys

MAXV = 0x7FFF

# Folders of Kafka's schemas read, in this order. storage/ holds the producer
# snapshot file and the tiered-storage metadata records; streams/ Kafka
# Streams' subscription user data.
SCHEMA_FOLDERS = ("message", "metadata", "coordinator", "raft", "storage", "streams")

PRIMS = {
    # type: (C type, reader, writer, fixed size, array type)
    "bool": ("bool", "sm_rd_bool", "sm_wr_bool", 1, "sm_bool_array_t"),
    "int8": ("int8_t", "sm_rd_i8", "sm_wr_i8", 1, "sm_i8_array_t"),
    "int16": ("int16_t", "sm_rd_i16", "sm_wr_i16", 2, "sm_i16_array_t"),
    "uint16": ("uint16_t", "sm_rd_u16", "sm_wr_u16", 2, "sm_u16_array_t"),
    "int32": ("int32_t", "sm_rd_i32", "sm_wr_i32", 4, "sm_i32_array_t"),
    "uint32": ("uint32_t", "sm_rd_u32", "sm_wr_u32", 4, "sm_u32_array_t"),
    "int64": ("int64_t", "sm_rd_i64", "sm_wr_i64", 8, "sm_i64_array_t"),
    "float64": ("double", "sm_rd_f64", "sm_wr_f64", 8, "sm_f64_array_t"),
}
VARLEN = {"string": "sm_str_t", "bytes": "sm_bytes_t", "records": "sm_bytes_t"}
VARLEN_ARRAY = {"string": "sm_str_array_t", "bytes": "sm_bytes_array_t"}


# ---------------------------------------------------------------- schema input

def load_json_with_comments(path):
    """Kafka's schema files are JSON with // and /* */ comments."""
    text = open(path, encoding="utf-8").read()
    out = []
    i, n = 0, len(text)
    in_str = False
    while i < n:
        c = text[i]
        if in_str:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if c == '"':
                in_str = False
            i += 1
            continue
        if c == '"':
            in_str = True
            out.append(c)
            i += 1
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
        else:
            out.append(c)
            i += 1
    return json.loads("".join(out))


def parse_versions(spec):
    """'0+', '3-5', '7', 'none' -> (lo, hi) or None."""
    if spec is None:
        return None
    spec = str(spec).strip()
    if spec == "none":
        return None
    if spec.endswith("+"):
        return (int(spec[:-1]), MAXV)
    if "-" in spec:
        lo, hi = spec.split("-")
        return (int(lo), int(hi))
    return (int(spec), int(spec))


def snake(name):
    name = name.replace("KRaft", "Kraft")
    s = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    return s.lower()


C_KEYWORDS = {
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else",
    "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long", "register",
    "restrict", "return", "short", "signed", "sizeof", "static", "struct", "switch", "typedef",
    "union", "unsigned", "void", "volatile", "while", "bool",
}


def cname(name):
    s = snake(name)
    return s + "_" if s in C_KEYWORDS else s


class Field:
    def __init__(self, spec, msg):
        self.name = spec["name"]
        self.c = cname(self.name)
        self.type = spec["type"]
        self.versions = parse_versions(spec.get("versions", "none"))
        self.nullable = parse_versions(spec.get("nullableVersions"))
        self.tagged = parse_versions(spec.get("taggedVersions"))
        self.tag = int(spec["tag"]) if "tag" in spec else None
        self.flex_override = spec.get("flexibleVersions")
        self.default = spec.get("default")
        self.is_array = self.type.startswith("[]")
        self.elem = self.type[2:] if self.is_array else self.type
        self.struct = None  # Struct for struct-typed fields
        if self.tagged and self.versions is None:
            self.versions = self.tagged
        if self.elem not in PRIMS and self.elem not in VARLEN and self.elem != "uuid":
            self.struct = msg.struct_for(self.elem, spec.get("fields"))


class Struct:
    def __init__(self, msg, name, fields_spec):
        self.msg = msg
        self.name = name
        self.fields = []
        self.fields_spec = fields_spec
        base = msg.prefix if name == msg.name else msg.prefix + "_" + snake(name)
        self.ctype = base + "_t"
        self.cstruct = base
        self.fn = "m" if name == msg.name else snake(name)  # suffix for static functions

    def resolve(self):
        self.fields = [Field(f, self.msg) for f in self.fields_spec]


class Message:
    def __init__(self, path, spec, folder):
        self.path = path
        self.spec = spec
        self.folder = folder  # message, metadata, coordinator, raft, storage, streams
        self.name = spec["name"]
        self.kind = spec["type"]  # request, response, header, metadata, data
        self.api_key = spec.get("apiKey")
        self.valid = parse_versions(spec["validVersions"])
        # Kafka serves a request's newest version only once it is stable.
        self.unstable_latest = bool(spec.get("latestVersionUnstable", False))
        self.flex = parse_versions(spec.get("flexibleVersions", "none"))
        self.file = snake(self.name)
        self.prefix = "proto_" + self.file
        self.structs = {}
        self.order = []
        self.common = {c["name"]: c for c in spec.get("commonStructs", [])}
        self.root = Struct(self, self.name, spec["fields"])
        self.structs[self.name] = self.root
        self.order.append(self.root)
        self.root.resolve()

    def struct_for(self, name, fields_spec):
        if name in self.structs:
            return self.structs[name]
        if fields_spec is None:
            if name not in self.common:
                raise SystemExit(f"{self.path}: unknown struct type {name}")
            fields_spec = self.common[name]["fields"]
        st = Struct(self, name, fields_spec)
        self.structs[name] = st
        self.order.append(st)
        st.resolve()
        return st

    @property
    def flex_min(self):
        return self.flex[0] if self.flex else MAXV


# ---------------------------------------------------------------- helpers

def vcond(rng, valid, var="v"):
    """C condition for var in rng, simplified against the message's valid range."""
    if rng is None:
        return "false"
    lo, hi = rng
    vlo, vhi = valid
    if hi < vlo or lo > vhi:
        return "false"
    parts = []
    if lo > vlo:
        parts.append(f"{var} >= {lo}")
    if hi < vhi:
        parts.append(f"{var} <= {hi}")
    if not parts:
        return "true"
    return " && ".join(parts)


def intersect(a, b):
    if a is None or b is None:
        return None
    lo, hi = max(a[0], b[0]), min(a[1], b[1])
    return (lo, hi) if lo <= hi else None


def c_int_literal(ctype, val):
    if isinstance(val, bool):
        return "true" if val else "false"
    s = str(val).strip()
    if ctype == "bool":
        return "true" if s.lower() == "true" else "false"
    v = int(s, 0)
    if ctype == "int64_t":
        if v == -(2**63):
            return "INT64_MIN"
        return f"INT64_C({v})"
    if ctype == "int32_t" and v == -(2**31):
        return "INT32_MIN"
    if ctype == "double":
        return repr(float(v))
    return str(v)


def c_string_literal(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Gen:
    def __init__(self, msg):
        self.m = msg
        self.valid = msg.valid

    def cond(self, rng):
        return vcond(intersect(rng, self.valid), self.valid)

    def flex_expr(self):
        return vcond(self.m.flex, self.valid)

    # -- types
    def field_ctype(self, f):
        if f.is_array:
            if f.struct:
                return f.struct.cstruct + "_array_t"
            if f.elem in PRIMS:
                return PRIMS[f.elem][4]
            if f.elem == "uuid":
                return "sm_uuid_array_t"
            return VARLEN_ARRAY[f.elem]
        if f.struct:
            return f.struct.ctype + " *"
        if f.elem in PRIMS:
            return PRIMS[f.elem][0]
        if f.elem == "uuid":
            return "sm_uuid_t"
        return VARLEN[f.elem]

    def field_comment(self, f):
        v = f.versions
        vs = "none" if v is None else (f"{v[0]}+" if v[1] == MAXV else f"{v[0]}-{v[1]}")
        extra = ""
        if f.nullable:
            n = f.nullable
            extra += ", nullable " + (f"{n[0]}+" if n[1] == MAXV else f"{n[0]}-{n[1]}")
        if f.tag is not None:
            extra += f", tag {f.tag}"
        return f"{f.name}: {f.type}, v{vs}{extra}"

    # -- defaults
    def default_assign(self, f, lhs):
        """Statements setting lhs to the field's default value."""
        d = f.default
        if f.is_array:
            if isinstance(d, str) and d == "null":
                return [f"{lhs}.n = -1;"]
            return [f"{lhs}.n = 0;"]
        if f.struct:
            return [f"{lhs} = NULL;"]
        if f.elem in PRIMS:
            ct = PRIMS[f.elem][0]
            if d is None or (isinstance(d, str) and d == ""):
                return [] if ct != "bool" else []
            lit = c_int_literal(ct, d)
            if lit in ("0", "false", "0.0", "INT64_C(0)"):
                return []
            return [f"{lhs} = {lit};"]
        if f.elem == "uuid":
            return []
        if f.elem == "string":
            if isinstance(d, str) and d == "null":
                return [f"{lhs} = SM_STR_NULL;"]
            s = d if isinstance(d, str) else ""
            return [f"{lhs} = (sm_str_t){{{c_string_literal(s)}, {len(s.encode())}}};"]
        # bytes / records
        if isinstance(d, str) and d == "null":
            return [f"{lhs} = SM_BYTES_NULL;"]
        return [f"{lhs} = (sm_bytes_t){{NULL, 0}};"]

    def is_default_expr(self, f, val):
        """C expression true when val equals the field's default (tagged fields
        are only written when they differ from it)."""
        d = f.default
        if f.is_array:
            if isinstance(d, str) and d == "null":
                return f"({val}.n < 0)"
            return f"({val}.n == 0)"
        if f.struct:
            return f"({val} == NULL)"
        if f.elem in PRIMS:
            ct = PRIMS[f.elem][0]
            lit = "0" if d is None or d == "" else c_int_literal(ct, d)
            if ct == "bool" and lit == "0":
                lit = "false"
            return f"({val} == {lit})"
        if f.elem == "uuid":
            return f"sm_uuid_is_zero(&{val})"
        if f.elem == "string":
            if isinstance(d, str) and d == "null":
                return f"({val}.len < 0)"
            s = d if isinstance(d, str) else ""
            return f"sm_str_eq({val}, (sm_str_t){{{c_string_literal(s)}, {len(s.encode())}}})"
        if isinstance(d, str) and d == "null":
            return f"({val}.len < 0)"
        return f"({val}.len == 0)"

    # -- min wire size of a struct over all valid versions (for array bounds)
    def min_size(self, st, seen=()):
        if st in seen:
            return 0
        best = None
        lo, hi = self.valid
        for v in range(lo, min(hi, lo + 64) + 1):
            total = 0
            flex = self.m.flex is not None and self.m.flex[0] <= v <= self.m.flex[1]
            for f in st.fields:
                if f.versions is None or not (f.versions[0] <= v <= f.versions[1]):
                    continue
                if f.tagged and f.tagged[0] <= v <= f.tagged[1]:
                    continue
                total += self.field_min_size(f, v, flex, seen + (st,))
            if flex:
                total += 1
            best = total if best is None else min(best, total)
        return best or 0

    def field_min_size(self, f, v, flex, seen):
        compact = flex and f.flex_override != "none"
        nullable = f.nullable is not None and f.nullable[0] <= v <= f.nullable[1]
        if f.is_array:
            return 1 if compact else 4
        if f.struct:
            if nullable:
                return 1
            return self.min_size(f.struct, seen)
        if f.elem in PRIMS:
            return PRIMS[f.elem][3]
        if f.elem == "uuid":
            return 16
        if f.elem == "string":
            return 1 if compact else 2
        return 1 if compact else 4

    def elem_min_size(self, f):
        if f.struct:
            return self.min_size(f.struct)
        if f.elem in PRIMS:
            return PRIMS[f.elem][3]
        if f.elem == "uuid":
            return 16
        # string / bytes element: at least its length prefix
        return 1


# ---------------------------------------------------------------- code emit

class Emitter(Gen):
    def __init__(self, msg):
        super().__init__(msg)
        self.out = []

    def w(self, line=""):
        self.out.append(line)

    def nullable_cond(self, f):
        return self.cond(f.nullable)

    def compact(self, f):
        if f.flex_override == "none" or not self.has_flex():
            return "false"
        return "flex"

    # decode of one value (non-tagged path and tagged path share this)
    def decode_value(self, f, lhs, rd, ind):
        w = lambda s: self.w(ind + s)
        nul = self.nullable_cond(f)
        cp = self.compact(f)
        if f.is_array:
            if f.struct:
                minsz = self.elem_min_size(f)
                w(f"TRY(sm_rd_array_len({rd}, {cp}, {nul}, {minsz}, &{lhs}.n));")
                w(f"if ({lhs}.n > 0) {{")
                w(f"    {lhs}.v = sm_arena_calloc(a, (size_t){lhs}.n, sizeof(*{lhs}.v));")
                w(f"    if (!{lhs}.v) return SM_ERR_NOMEM;")
                w(f"    for (int32_t i = 0; i < {lhs}.n; i++)")
                w(f"        TRY(dec_{f.struct.fn}({rd}, a, v, &{lhs}.v[i]));")
                w("}")
                return
            minsz = self.elem_min_size(f)
            w(f"TRY(sm_rd_array_len({rd}, {cp}, {nul}, {minsz}, &{lhs}.n));")
            w(f"if ({lhs}.n > 0) {{")
            w(f"    {lhs}.v = sm_arena_calloc(a, (size_t){lhs}.n, sizeof(*{lhs}.v));")
            w(f"    if (!{lhs}.v) return SM_ERR_NOMEM;")
            w(f"    for (int32_t i = 0; i < {lhs}.n; i++)")
            if f.elem in PRIMS:
                w(f"        TRY({PRIMS[f.elem][1]}({rd}, &{lhs}.v[i]));")
            elif f.elem == "uuid":
                w(f"        TRY(sm_rd_uuid({rd}, &{lhs}.v[i]));")
            elif f.elem == "string":
                w(f"        TRY(sm_rd_string({rd}, {cp}, false, &{lhs}.v[i]));")
            else:
                w(f"        TRY(sm_rd_bytes({rd}, {cp}, false, &{lhs}.v[i]));")
            w("}")
            return
        if f.struct:
            if nul != "false":
                w(f"if ({nul}) {{")
                w("    int8_t present;")
                w(f"    TRY(sm_rd_i8({rd}, &present));")
                w("    if (present < 0) {")
                w(f"        {lhs} = NULL;")
                w("    } else {")
                w(f"        {lhs} = sm_arena_alloc(a, sizeof(*{lhs}));")
                w(f"        if (!{lhs}) return SM_ERR_NOMEM;")
                w(f"        TRY(dec_{f.struct.fn}({rd}, a, v, {lhs}));")
                w("    }")
                w("} else {")
                w(f"    {lhs} = sm_arena_alloc(a, sizeof(*{lhs}));")
                w(f"    if (!{lhs}) return SM_ERR_NOMEM;")
                w(f"    TRY(dec_{f.struct.fn}({rd}, a, v, {lhs}));")
                w("}")
            else:
                w(f"{lhs} = sm_arena_alloc(a, sizeof(*{lhs}));")
                w(f"if (!{lhs}) return SM_ERR_NOMEM;")
                w(f"TRY(dec_{f.struct.fn}({rd}, a, v, {lhs}));")
            return
        if f.elem in PRIMS:
            w(f"TRY({PRIMS[f.elem][1]}({rd}, &{lhs}));")
        elif f.elem == "uuid":
            w(f"TRY(sm_rd_uuid({rd}, &{lhs}));")
        elif f.elem == "string":
            w(f"TRY(sm_rd_string({rd}, {cp}, {nul}, &{lhs}));")
        else:
            w(f"TRY(sm_rd_bytes({rd}, {cp}, {nul}, &{lhs}));")

    def null_check(self, is_null, nul, ind):
        """A null value where the version does not allow one cannot be encoded."""
        if nul == "true":
            return
        if nul == "false":
            self.w(f"{ind}if ({is_null}) return SM_ERR_RANGE;")
        else:
            self.w(f"{ind}if ({is_null} && !({nul})) return SM_ERR_RANGE;")

    def encode_value(self, f, val, ind):
        w = lambda s: self.w(ind + s)
        nul = self.nullable_cond(f)
        cp = self.compact(f)
        if f.is_array:
            self.null_check(f"{val}.n < 0", nul, ind)
            w(f"TRY(sm_wr_array_len(w, {val}.n < 0 ? -1 : {val}.n, {cp}));")
            w(f"for (int32_t i = 0; i < {val}.n; i++)")
            if f.struct:
                w(f"    TRY(enc_{f.struct.fn}(w, v, &{val}.v[i]));")
            elif f.elem in PRIMS:
                w(f"    TRY({PRIMS[f.elem][2]}(w, {val}.v[i]));")
            elif f.elem == "uuid":
                w(f"    TRY(sm_wr_uuid(w, &{val}.v[i]));")
            elif f.elem == "string":
                w(f"    TRY(sm_wr_string(w, {val}.v[i], {cp}));")
            else:
                w(f"    TRY(sm_wr_bytes(w, {val}.v[i], {cp}));")
            return
        if f.struct:
            if nul == "true":
                w(f"TRY(sm_wr_i8(w, {val} ? 1 : -1));")
                w(f"if ({val}) TRY(enc_{f.struct.fn}(w, v, {val}));")
            elif nul != "false":
                w(f"if ({nul}) {{")
                w(f"    TRY(sm_wr_i8(w, {val} ? 1 : -1));")
                w(f"    if ({val}) TRY(enc_{f.struct.fn}(w, v, {val}));")
                w("} else {")
                w(f"    TRY(enc_{f.struct.fn}_or_default(w, v, {val}));")
                w("}")
            else:
                w(f"TRY(enc_{f.struct.fn}_or_default(w, v, {val}));")
            return
        if f.elem in PRIMS:
            w(f"TRY({PRIMS[f.elem][2]}(w, {val}));")
        elif f.elem == "uuid":
            w(f"TRY(sm_wr_uuid(w, &{val}));")
        elif f.elem == "string":
            self.null_check(f"{val}.len < 0", nul, ind)
            w(f"TRY(sm_wr_string(w, {val}, {cp}));")
        else:
            self.null_check(f"{val}.len < 0", nul, ind)
            if f.elem == "records":
                w(f"TRY(sm_wr_records(w, {val}, {cp}));")
            else:
                w(f"TRY(sm_wr_bytes(w, {val}, {cp}));")

    def size_expr(self, f, val, ind, acc="n"):
        """Statements adding the encoded size of val to acc."""
        w = lambda s: self.w(ind + s)
        nul = self.nullable_cond(f)
        cp = self.compact(f)
        if f.is_array:
            w(f"{acc} += sm_array_len_size({val}.n < 0 ? -1 : {val}.n, {cp});")
            if f.struct:
                w(f"for (int32_t i = 0; i < {val}.n; i++) {acc} += size_{f.struct.fn}(v, &{val}.v[i]);")
            elif f.elem in PRIMS:
                w(f"if ({val}.n > 0) {acc} += (size_t){val}.n * {PRIMS[f.elem][3]};")
            elif f.elem == "uuid":
                w(f"if ({val}.n > 0) {acc} += (size_t){val}.n * 16;")
            elif f.elem == "string":
                w(f"for (int32_t i = 0; i < {val}.n; i++) {acc} += sm_string_size({val}.v[i], {cp});")
            else:
                w(f"for (int32_t i = 0; i < {val}.n; i++) {acc} += sm_bytes_size({val}.v[i], {cp});")
            return
        if f.struct:
            if nul == "true":
                w(f"{acc} += 1 + ({val} ? size_{f.struct.fn}(v, {val}) : 0);")
            elif nul != "false":
                w(f"if ({nul}) {acc} += 1 + ({val} ? size_{f.struct.fn}(v, {val}) : 0);")
                w(f"else {acc} += size_{f.struct.fn}_or_default(v, {val});")
            else:
                w(f"{acc} += size_{f.struct.fn}_or_default(v, {val});")
            return
        if f.elem in PRIMS:
            w(f"{acc} += {PRIMS[f.elem][3]};")
        elif f.elem == "uuid":
            w(f"{acc} += 16;")
        elif f.elem == "string":
            w(f"{acc} += sm_string_size({val}, {cp});")
        else:
            w(f"{acc} += sm_bytes_size({val}, {cp});")

    def has_flex(self):
        return self.m.flex is not None and intersect(self.m.flex, self.valid) is not None

    def tagged_fields(self, st):
        return sorted([f for f in st.fields if f.tagged], key=lambda f: f.tag)

    def plain_fields(self, st):
        return [f for f in st.fields if not f.tagged]

    def needs_default_wrapper(self, st):
        """Non-array struct fields that are not nullable in every version encode
        a NULL pointer as the default struct."""
        for other in self.m.order:
            for f in other.fields:
                if f.struct is st and not f.is_array and self.nullable_cond(f) != "true":
                    return True
        return False

    def gen_struct_fns(self, st):
        m = self.m
        flexd = f"const bool flex = {self.flex_expr()};"
        tagged = self.tagged_fields(st)
        # init
        self.w(f"static void init_{st.fn}({st.ctype} *o) {{")
        self.w("    memset(o, 0, sizeof(*o));")
        for f in st.fields:
            for line in self.default_assign(f, f"o->{f.c}"):
                self.w("    " + line)
        self.w("}")
        self.w()
        # decode
        self.w(f"static int dec_{st.fn}(sm_reader_t *r, sm_arena_t *a, int16_t v, {st.ctype} *o) {{")
        if self.has_flex():
            self.w("    " + flexd)
        self.w(f"    init_{st.fn}(o);")
        for f in self.plain_fields(st):
            c = self.cond(f.versions)
            if c == "false":
                continue
            self.w(f"    /* {self.field_comment(f)} */")
            if c == "true":
                self.decode_value(f, f"o->{f.c}", "r", "    ")
            else:
                self.w(f"    if ({c}) {{")
                self.decode_value(f, f"o->{f.c}", "r", "        ")
                self.w("    }")
        if self.has_flex():
            if not tagged:
                self.w("    if (flex) TRY(proto_tags_read_unknown(r, a, &o->_unknown_tags));")
        if self.has_flex() and tagged:
            self.w("    if (flex) {")
            self.w("        uint32_t ntags;")
            self.w("        TRY(sm_rd_uvarint(r, &ntags));")
            self.w("        if (ntags > sm_rd_left(r) / 2) return SM_ERR_PARSE;")
            self.w("        for (uint32_t t = 0; t < ntags; t++) {")
            self.w("            uint32_t tag, tsize;")
            self.w("            const uint8_t *tp;")
            self.w("            TRY(sm_rd_uvarint(r, &tag));")
            self.w("            TRY(sm_rd_uvarint(r, &tsize));")
            self.w("            TRY(sm_rd_slice(r, tsize, &tp));")
            if True:
                self.w("            sm_reader_t sub = sm_reader_make(tp, tsize);")
                self.w("            switch (tag) {")
                for f in tagged:
                    c = self.cond(f.tagged)
                    self.w(f"            case {f.tag}: /* {self.field_comment(f)} */")
                    self.w(f"                if ({c}) {{")
                    self.decode_value(f, f"o->{f.c}", "&sub", "                    ")
                    self.w("                    continue;")
                    self.w("                }")
                    self.w("                break;")
                self.w("            default:")
                self.w("                break;")
                self.w("            }")
            self.w("            TRY(proto_tags_keep(a, &o->_unknown_tags, ntags, tag, tp, tsize));")
            self.w("        }")
            self.w("    }")
        self.w("    return SM_OK;")
        self.w("}")
        self.w()
        # size
        self.w(f"static size_t size_{st.fn}(int16_t v, const {st.ctype} *o) {{")
        if self.has_flex():
            self.w("    " + flexd)
        self.w("    size_t n = 0;")
        for f in self.plain_fields(st):
            c = self.cond(f.versions)
            if c == "false":
                continue
            if c == "true":
                self.size_expr(f, f"o->{f.c}", "    ")
            else:
                self.w(f"    if ({c}) {{")
                self.size_expr(f, f"o->{f.c}", "        ")
                self.w("    }")
        if self.has_flex():
            self.w("    if (flex) {")
            self.w("        uint32_t ntags = o->_unknown_tags.n > 0 ? (uint32_t)o->_unknown_tags.n : 0;")
            for f in tagged:
                c = self.cond(f.tagged)
                self.w(f"        if (({c}) && !{self.is_default_expr(f, 'o->' + f.c)}) {{")
                self.w("            size_t fs = 0;")
                self.size_expr(f, f"o->{f.c}", "            ", acc="fs")
                self.w(f"            n += sm_uvarint_size({f.tag}) + sm_uvarint_size((uint32_t)fs) + fs;")
                self.w("            ntags++;")
                self.w("        }")
            self.w("        n += sm_uvarint_size(ntags) + proto_tags_size(&o->_unknown_tags);")
            self.w("    }")
        self.w("    return n;")
        self.w("}")
        self.w()
        # encode
        self.w(f"static int enc_{st.fn}(sm_writer_t *w, int16_t v, const {st.ctype} *o) {{")
        if self.has_flex():
            self.w("    " + flexd)
        for f in self.plain_fields(st):
            c = self.cond(f.versions)
            if c == "false":
                continue
            if c == "true":
                self.encode_value(f, f"o->{f.c}", "    ")
            else:
                self.w(f"    if ({c}) {{")
                self.encode_value(f, f"o->{f.c}", "        ")
                self.w("    }")
        if self.has_flex():
            self.w("    if (flex) {")
            self.w("        uint32_t ntags = o->_unknown_tags.n > 0 ? (uint32_t)o->_unknown_tags.n : 0;")
            for i, f in enumerate(tagged):
                c = self.cond(f.tagged)
                self.w(f"        const bool has{i} = ({c}) && !{self.is_default_expr(f, 'o->' + f.c)};")
                self.w(f"        ntags += has{i};")
            self.w("        TRY(sm_wr_uvarint(w, ntags));")
            self.w("        int32_t u = 0;")
            for i, f in enumerate(tagged):
                self.w(f"        if (has{i}) {{")
                self.w(f"            TRY(proto_tags_write_below(w, &o->_unknown_tags, &u, {f.tag}));")
                self.w("            size_t fs = 0;")
                self.size_expr(f, f"o->{f.c}", "            ", acc="fs")
                self.w(f"            TRY(sm_wr_uvarint(w, {f.tag}));")
                self.w("            TRY(sm_wr_uvarint(w, (uint32_t)fs));")
                self.encode_value(f, f"o->{f.c}", "            ")
                self.w("        }")
            self.w("        TRY(proto_tags_write_below(w, &o->_unknown_tags, &u, UINT64_MAX));")
            self.w("    }")
        self.w("    return SM_OK;")
        self.w("}")
        self.w()
        # default-aware wrappers for non-nullable struct fields held as pointers
        if st is not m.root and self.needs_default_wrapper(st):
            self.w(f"static size_t size_{st.fn}_or_default(int16_t v, const {st.ctype} *o) {{")
            self.w(f"    {st.ctype} d;")
            self.w("    if (o) return size_" + st.fn + "(v, o);")
            self.w(f"    init_{st.fn}(&d);")
            self.w(f"    return size_{st.fn}(v, &d);")
            self.w("}")
            self.w()
            self.w(f"static int enc_{st.fn}_or_default(sm_writer_t *w, int16_t v, const {st.ctype} *o) {{")
            self.w(f"    {st.ctype} d;")
            self.w("    if (o) return enc_" + st.fn + "(w, v, o);")
            self.w(f"    init_{st.fn}(&d);")
            self.w(f"    return enc_{st.fn}(w, v, &d);")
            self.w("}")
            self.w()

    def gen_header(self):
        m = self.m
        guard = f"PROTO_GEN_{m.file.upper()}_H"
        self.w("/* Generated by tools/gen_protocol.py from Kafka's " + os.path.basename(m.path)
               + ". Do not edit. */")
        self.w(f"#ifndef {guard}")
        self.w(f"#define {guard}")
        self.w()
        self.w('#include "protocol/gen_support.h"')
        self.w()
        vlo, vhi = m.valid
        self.w(f"#define {m.prefix.upper()}_MIN_VERSION {vlo}")
        self.w(f"#define {m.prefix.upper()}_MAX_VERSION {vhi}")
        self.w(f"#define {m.prefix.upper()}_FIRST_FLEXIBLE_VERSION "
               + (str(m.flex[0]) if m.flex else "-1"))
        if m.api_key is not None:
            self.w(f"#define {m.prefix.upper()}_API_KEY {m.api_key}")
        self.w()
        for st in m.order:
            self.w(f"typedef struct {st.cstruct} {st.ctype};")
            self.w(f"typedef struct {st.cstruct}_array {{")
            self.w("    int32_t n; /* < 0: null */")
            self.w(f"    {st.ctype} *v;")
            self.w(f"}} {st.cstruct}_array_t;")
        self.w()
        for st in reversed(m.order):
            label = m.name if st is m.root else f"{m.name}.{st.name}"
            self.w(f"/* {label} */")
            self.w(f"struct {st.cstruct} {{")
            for f in st.fields:
                ct = self.field_ctype(f)
                sep = "" if ct.endswith("*") else " "
                self.w(f"    {ct}{sep}{f.c}; /* {self.field_comment(f)} */")
            if self.has_flex():
                self.w("    sm_raw_tags_t _unknown_tags; /* tagged fields this codec does not know */")
            if not st.fields and not self.has_flex():
                self.w("    char _empty;")
            self.w("};")
            self.w()
        p = m.prefix
        t = m.root.ctype
        self.w(f"/* Sets every field to its default. */")
        self.w(f"void {p}_init({t} *m);")
        self.w(f"/* Decodes version v from r; strings, bytes and records borrow r's buffer,")
        self.w(f" * arrays and nested structs are allocated from a. */")
        self.w(f"int {p}_decode(sm_reader_t *r, sm_arena_t *a, int16_t v, {t} *m);")
        self.w(f"/* Bytes {p}_encode writes for version v. */")
        self.w(f"size_t {p}_size(int16_t v, const {t} *m);")
        self.w(f"int {p}_encode(sm_writer_t *w, int16_t v, const {t} *m);")
        self.w(f"/* Sets the top-level ErrorCode; returns SM_ERR_NOTFOUND when there is none. */")
        self.w(f"int {p}_set_error(void *m, int16_t code);")
        self.w()
        self.w(f"#endif")
        return "\n".join(self.out) + "\n"

    def gen_source(self):
        m = self.m
        self.out = []
        self.w("/* Generated by tools/gen_protocol.py from Kafka's " + os.path.basename(m.path)
               + ". Do not edit. */")
        self.w(f'#include "protocol/gen/{m.file}.h"')
        self.w()
        for st in m.order:
            self.w(f"static void init_{st.fn}({st.ctype} *o);")
            self.w(f"static int dec_{st.fn}(sm_reader_t *r, sm_arena_t *a, int16_t v, {st.ctype} *o);")
            self.w(f"static size_t size_{st.fn}(int16_t v, const {st.ctype} *o);")
            self.w(f"static int enc_{st.fn}(sm_writer_t *w, int16_t v, const {st.ctype} *o);")
            if st is not m.root and self.needs_default_wrapper(st):
                # A struct may be used before its definition (a common
                # struct referenced from two nestings).
                self.w(f"static size_t size_{st.fn}_or_default(int16_t v, const {st.ctype} *o);")
                self.w(f"static int enc_{st.fn}_or_default(sm_writer_t *w, int16_t v, const {st.ctype} *o);")
        self.w()
        for st in reversed(m.order):
            if st is not m.root:
                self.gen_struct_fns(st)
        self.gen_struct_fns(m.root)
        p = m.prefix
        t = m.root.ctype
        self.w(f"void {p}_init({t} *m) {{ init_m(m); }}")
        self.w()
        self.w(f"int {p}_decode(sm_reader_t *r, sm_arena_t *a, int16_t v, {t} *m) {{")
        self.w(f"    if (v < {m.valid[0]} || v > {m.valid[1]}) return SM_ERR_VERSION;")
        self.w("    return dec_m(r, a, v, m);")
        self.w("}")
        self.w()
        self.w(f"size_t {p}_size(int16_t v, const {t} *m) {{ return size_m(v, m); }}")
        self.w()
        self.w(f"int {p}_encode(sm_writer_t *w, int16_t v, const {t} *m) {{")
        self.w(f"    if (v < {m.valid[0]} || v > {m.valid[1]}) return SM_ERR_VERSION;")
        self.w("    return enc_m(w, v, m);")
        self.w("}")
        self.w()
        errf = [f for f in m.root.fields if f.name == "ErrorCode" and f.type == "int16"]
        self.w(f"int {p}_set_error(void *m, int16_t code) {{")
        if errf:
            self.w(f"    (({t} *)m)->error_code = code;")
            self.w("    return SM_OK;")
        else:
            self.w("    (void)m;")
            self.w("    (void)code;")
            self.w("    return SM_ERR_NOTFOUND;")
        self.w("}")
        return "\n".join(self.out) + "\n"


# ---------------------------------------------------------------- test support

class TestEmitter(Gen):
    """fill(): pseudo-random values for every field present in a version;
    eq(): compares the fields present in a version."""

    def __init__(self, msg):
        super().__init__(msg)
        self.out = []

    def w(self, line=""):
        self.out.append(line)

    def present(self, f):
        """Condition under which the field travels on the wire in version v."""
        if f.tagged:
            return self.cond(f.tagged)
        return self.cond(f.versions)

    def fill_value(self, f, lhs, ind):
        w = lambda s: self.w(ind + s)
        nul = self.cond(f.nullable)
        # Strings in the classic encoding are limited by int16 and names are
        # short anyway.
        if f.is_array:
            w(f"if (({nul}) && pt_coin(g, 6)) {{")
            w(f"    {lhs}.n = -1;")
            w("} else {")
            w(f"    {lhs}.n = (int32_t)pt_rand(g, 4);")
            w(f"    {lhs}.v = sm_arena_calloc(a, (size_t){lhs}.n + 1, sizeof(*{lhs}.v));")
            w(f"    for (int32_t i = 0; i < {lhs}.n; i++) {{")
            if f.struct:
                w(f"        if (depth < 4) fill_{f.struct.fn}(g, a, v, &{lhs}.v[i], depth + 1);")
                w(f"        else init_{f.struct.fn}(&{lhs}.v[i]);")
            elif f.elem in PRIMS:
                w(f"        {lhs}.v[i] = {prim_random(f.elem)};")
            elif f.elem == "uuid":
                w(f"        pt_uuid(g, &{lhs}.v[i]);")
            elif f.elem == "string":
                w(f"        {lhs}.v[i] = pt_str(g, a);")
            else:
                w(f"        {lhs}.v[i] = pt_bytes(g, a);")
            w("    }")
            w("}")
            return
        if f.struct:
            w(f"if ((({nul}) && pt_coin(g, 4)) || depth >= 4) {{")
            w(f"    {lhs} = NULL;")
            w("} else {")
            w(f"    {lhs} = sm_arena_alloc(a, sizeof(*{lhs}));")
            w(f"    fill_{f.struct.fn}(g, a, v, {lhs}, depth + 1);")
            w("}")
            return
        if f.elem in PRIMS:
            w(f"{lhs} = {prim_random(f.elem)};")
        elif f.elem == "uuid":
            w(f"pt_uuid(g, &{lhs});")
        elif f.elem == "string":
            w(f"{lhs} = (({nul}) && pt_coin(g, 5)) ? SM_STR_NULL : pt_str(g, a);")
        else:
            w(f"{lhs} = (({nul}) && pt_coin(g, 5)) ? SM_BYTES_NULL : pt_bytes(g, a);")

    def eq_value(self, f, x, y, ind):
        w = lambda s: self.w(ind + s)
        if f.is_array:
            w(f"if (({x}.n < 0) != ({y}.n < 0)) return pt_fail(\"{f.name}: null\");")
            w(f"if ({x}.n >= 0 && {x}.n != {y}.n) return pt_fail(\"{f.name}: count\");")
            w(f"for (int32_t i = 0; i < {x}.n; i++) {{")
            if f.struct:
                w(f"    if (!eq_{f.struct.fn}(v, &{x}.v[i], &{y}.v[i])) return pt_fail(\"{f.name}[]\");")
            elif f.elem in PRIMS:
                w(f"    if (memcmp(&{x}.v[i], &{y}.v[i], sizeof({x}.v[i])) != 0) return pt_fail(\"{f.name}[]\");")
            elif f.elem == "uuid":
                w(f"    if (memcmp({x}.v[i].b, {y}.v[i].b, 16) != 0) return pt_fail(\"{f.name}[]\");")
            elif f.elem == "string":
                w(f"    if (!sm_str_eq({x}.v[i], {y}.v[i])) return pt_fail(\"{f.name}[]\");")
            else:
                w(f"    if (!pt_bytes_eq({x}.v[i], {y}.v[i])) return pt_fail(\"{f.name}[]\");")
            w("}")
            return
        if f.struct:
            nul = self.cond(f.nullable)
            # A NULL non-nullable struct encodes as the default struct.
            w(f"if (!pt_struct_eq_{f.struct.fn}(v, ({nul}) || {'true' if f.tagged else 'false'}, {x}, {y})) return pt_fail(\"{f.name}\");")
            return
        if f.elem in PRIMS:
            w(f"if (memcmp(&{x}, &{y}, sizeof({x})) != 0) return pt_fail(\"{f.name}\");")
        elif f.elem == "uuid":
            w(f"if (memcmp({x}.b, {y}.b, 16) != 0) return pt_fail(\"{f.name}\");")
        elif f.elem == "string":
            w(f"if (!sm_str_eq({x}, {y})) return pt_fail(\"{f.name}\");")
        else:
            w(f"if (!pt_bytes_eq({x}, {y})) return pt_fail(\"{f.name}\");")

    def gen(self):
        m = self.m
        self.w("/* Generated by tools/gen_protocol.py (test support for " + m.name
               + "). Do not edit. */")
        self.w('#include "protocol/gen_testing.h"')
        self.w(f'#include "protocol/gen/{m.file}.h"')
        self.w()
        for st in m.order:
            self.w(f"static void fill_{st.fn}(pt_rng_t *g, sm_arena_t *a, int16_t v, {st.ctype} *o, int depth);")
            self.w(f"static bool eq_{st.fn}(int16_t v, const {st.ctype} *x, const {st.ctype} *y);")
            self.w(f"static void init_{st.fn}({st.ctype} *o);")
        self.w()
        for st in m.order:
            # init mirrors the codec's defaults (needed to compare NULL with a
            # decoded default struct)
            em = Emitter(m)
            self.w(f"static void init_{st.fn}({st.ctype} *o) {{")
            self.w("    memset(o, 0, sizeof(*o));")
            for f in st.fields:
                for line in em.default_assign(f, f"o->{f.c}"):
                    self.w("    " + line)
            self.w("}")
            self.w()
            self.w(f"PROTO_MAYBE_UNUSED static bool pt_struct_eq_{st.fn}(int16_t v, bool null_ok, const {st.ctype} *x, const {st.ctype} *y) {{")
            self.w(f"    {st.ctype} dx, dy;")
            self.w("    if (!x && !y) return true;")
            self.w("    if (null_ok && (!x || !y)) return false;")
            self.w(f"    if (!x) {{ init_{st.fn}(&dx); x = &dx; }}")
            self.w(f"    if (!y) {{ init_{st.fn}(&dy); y = &dy; }}")
            self.w(f"    return eq_{st.fn}(v, x, y);")
            self.w("}")
            self.w()
        for st in m.order:
            self.w(f"static void fill_{st.fn}(pt_rng_t *g, sm_arena_t *a, int16_t v, {st.ctype} *o, int depth) {{")
            self.w(f"    init_{st.fn}(o);")
            for f in st.fields:
                c = self.present(f)
                if c == "false":
                    continue
                self.w(f"    if ({c}) {{")
                self.fill_value(f, f"o->{f.c}", "        ")
                self.w("    }")
            self.w("}")
            self.w()
            self.w(f"static bool eq_{st.fn}(int16_t v, const {st.ctype} *x, const {st.ctype} *y) {{")
            for f in st.fields:
                c = self.present(f)
                if c == "false":
                    continue
                self.w(f"    if ({c}) {{")
                self.eq_value(f, f"x->{f.c}", f"y->{f.c}", "        ")
                self.w("    }")
            self.w("    return true;")
            self.w("}")
            self.w()
        p = m.prefix
        t = m.root.ctype
        self.w(f"void {p}_fill(pt_rng_t *g, sm_arena_t *a, int16_t v, void *m) {{ fill_m(g, a, v, ({t} *)m, 0); }}")
        self.w(f"bool {p}_eq(int16_t v, const void *x, const void *y) {{ return eq_m(v, ({const_t(t)})x, ({const_t(t)})y); }}")
        return "\n".join(self.out) + "\n"


def prim_random(t):
    if t == "bool":
        return "(bool)(pt_next(g) & 1)"
    if t == "float64":
        return "(double)(int32_t)pt_next(g) / 8.0"
    return f"({PRIMS[t][0]})pt_next(g)"


def const_t(t):
    return f"const {t} *"


# ---------------------------------------------------------------- tables

def gen_api(msgs):
    h, c = [], []
    h.append("/* Generated by tools/gen_protocol.py. Do not edit. */")
    h.append("#ifndef PROTO_GEN_API_H")
    h.append("#define PROTO_GEN_API_H")
    h.append("")
    h.append('#include "protocol/gen_support.h"')
    h.append("")
    h.append("/* Every codec the generator produced, by schema. */")
    h.append("typedef struct proto_msg_desc {")
    h.append("    const char *name;")
    h.append("    const char *kind; /* request, response, header, metadata, data */")
    h.append("    int16_t api_key;  /* api key or record type; -1 when the schema has none */")
    h.append("    int16_t min_version;")
    h.append("    int16_t max_version;")
    h.append("    int16_t max_stable_version; /* max_version, or one less when the schema marks its latest version unstable */")
    h.append("    int16_t first_flexible_version; /* -1: no flexible version */")
    h.append("    size_t struct_size;")
    h.append("    void (*init)(void *m);")
    h.append("    int (*decode)(sm_reader_t *r, sm_arena_t *a, int16_t v, void *m);")
    h.append("    size_t (*size)(int16_t v, const void *m);")
    h.append("    int (*encode)(sm_writer_t *w, int16_t v, const void *m);")
    h.append("    int (*set_error)(void *m, int16_t code);")
    h.append("} proto_msg_desc_t;")
    h.append("")
    h.append("typedef struct proto_api_desc {")
    h.append("    int16_t api_key;")
    h.append("    const char *name;")
    h.append("    const proto_msg_desc_t *request;")
    h.append("    const proto_msg_desc_t *response;")
    h.append("} proto_api_desc_t;")
    h.append("")
    h.append("extern const proto_msg_desc_t proto_msgs[];")
    h.append("extern const size_t proto_msgs_count;")
    h.append("/* Indexed by api key; entries with name == NULL are unassigned keys. */")
    h.append("extern const proto_api_desc_t proto_apis[];")
    h.append("extern const size_t proto_apis_count;")
    h.append("")
    h.append("const proto_api_desc_t *proto_api_lookup(int16_t api_key);")
    h.append("/* KRaft metadata log records by record type (metadata/ schemas). */")
    h.append("const proto_msg_desc_t *proto_metadata_record_lookup(int16_t type);")
    h.append("const proto_msg_desc_t *proto_msg_lookup(const char *name);")
    h.append("")
    for m in msgs:
        h.append(f'#include "protocol/gen/{m.file}.h"')
    h.append("")
    h.append("#endif")

    c.append("/* Generated by tools/gen_protocol.py. Do not edit. */")
    c.append('#include "protocol/gen/api.h"')
    c.append("")
    c.append("#include <string.h>")
    c.append("")
    for m in msgs:
        p, t = m.prefix, m.root.ctype
        c.append(f"static void w_{m.file}_init(void *m) {{ {p}_init(({t} *)m); }}")
        c.append(f"static int w_{m.file}_decode(sm_reader_t *r, sm_arena_t *a, int16_t v, void *m) {{ return {p}_decode(r, a, v, ({t} *)m); }}")
        c.append(f"static size_t w_{m.file}_size(int16_t v, const void *m) {{ return {p}_size(v, (const {t} *)m); }}")
        c.append(f"static int w_{m.file}_encode(sm_writer_t *w, int16_t v, const void *m) {{ return {p}_encode(w, v, (const {t} *)m); }}")
    c.append("")
    idx = {}
    c.append("const proto_msg_desc_t proto_msgs[] = {")
    for i, m in enumerate(msgs):
        idx[m.name] = i
        ak = m.api_key if m.api_key is not None else -1
        fl = m.flex[0] if m.flex else -1
        stable = m.valid[1] - 1 if m.unstable_latest else m.valid[1]
        c.append(f'    {{"{m.name}", "{m.kind}", {ak}, {m.valid[0]}, {m.valid[1]}, {stable}, {fl}, sizeof({m.root.ctype}),')
        c.append(f"     w_{m.file}_init, w_{m.file}_decode, w_{m.file}_size, w_{m.file}_encode, {m.prefix}_set_error}},")
    c.append("};")
    c.append(f"const size_t proto_msgs_count = {len(msgs)};")
    c.append("")
    apis = {}
    for m in msgs:
        if m.kind in ("request", "response"):
            apis.setdefault(m.api_key, {})[m.kind] = m
    maxkey = max(apis)
    c.append("const proto_api_desc_t proto_apis[] = {")
    for k in range(maxkey + 1):
        if k not in apis:
            c.append(f"    {{{k}, NULL, NULL, NULL}},")
            continue
        req = apis[k]["request"]
        resp = apis[k]["response"]
        name = req.name[: -len("Request")]
        c.append(f'    {{{k}, "{name}", &proto_msgs[{idx[req.name]}], &proto_msgs[{idx[resp.name]}]}},')
    c.append("};")
    c.append(f"const size_t proto_apis_count = {maxkey + 1};")
    c.append("")
    c.append("const proto_api_desc_t *proto_api_lookup(int16_t api_key) {")
    c.append("    if (api_key < 0 || (size_t)api_key >= proto_apis_count) return NULL;")
    c.append("    if (!proto_apis[api_key].name) return NULL;")
    c.append("    return &proto_apis[api_key];")
    c.append("}")
    c.append("")
    c.append("const proto_msg_desc_t *proto_metadata_record_lookup(int16_t type) {")
    c.append("    switch (type) {")
    # storage/'s tiered-storage records are also of type "metadata", with
    # their own numbering: only metadata/ holds the KRaft log's records.
    kraft = [m for m in msgs if m.kind == "metadata" and m.folder == "metadata"]
    for m in sorted(kraft, key=lambda m: m.api_key):
        c.append(f"    case {m.api_key}: return &proto_msgs[{idx[m.name]}];")
    c.append("    default: return NULL;")
    c.append("    }")
    c.append("}")
    c.append("")
    c.append("const proto_msg_desc_t *proto_msg_lookup(const char *name) {")
    c.append("    for (size_t i = 0; i < proto_msgs_count; i++)")
    c.append("        if (strcmp(proto_msgs[i].name, name) == 0) return &proto_msgs[i];")
    c.append("    return NULL;")
    c.append("}")
    return "\n".join(h) + "\n", "\n".join(c) + "\n"


def gen_testing_table(msgs):
    c = ["/* Generated by tools/gen_protocol.py (test support). Do not edit. */",
         '#include "protocol/gen_testing.h"', ""]
    for m in msgs:
        c.append(f"void {m.prefix}_fill(pt_rng_t *g, sm_arena_t *a, int16_t v, void *m);")
        c.append(f"bool {m.prefix}_eq(int16_t v, const void *x, const void *y);")
    c.append("")
    c.append("const pt_msg_fns_t pt_msg_fns[] = {")
    for m in msgs:
        c.append(f'    {{"{m.name}", {m.prefix}_fill, {m.prefix}_eq}},')
    c.append("};")
    c.append(f"const size_t pt_msg_fns_count = {len(msgs)};")
    return "\n".join(c) + "\n"


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--schemas", required=True, help="Kafka 4.4 schema folder (../shared/kafka-protocol-4.4)")
    ap.add_argument("--out", required=True, help="output folder (src/protocol/gen)")
    args = ap.parse_args()

    msgs = []
    removed = []
    for sub in SCHEMA_FOLDERS:
        d = os.path.join(args.schemas, sub)
        if not os.path.isdir(d):
            sys.exit(f"gen_protocol: {d}: no such folder")
        for fn in sorted(os.listdir(d)):
            if fn.endswith(".json"):
                path = os.path.join(d, fn)
                spec = load_json_with_comments(path)
                if parse_versions(spec.get("validVersions")) is None:
                    # An API Kafka removed keeps its key reserved in a schema
                    # with "validVersions": "none" and no fields: no codec.
                    removed.append(spec["name"])
                    continue
                msgs.append(Message(path, spec, sub))
    msgs.sort(key=lambda m: m.file)
    names = [m.file for m in msgs]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        sys.exit(f"gen_protocol: duplicate message names: {sorted(dup)}")

    os.makedirs(os.path.join(args.out, "testing"), exist_ok=True)
    written = set()

    def emit(rel, text):
        path = os.path.join(args.out, rel)
        written.add(os.path.normpath(path))
        old = None
        if os.path.exists(path):
            old = open(path, encoding="utf-8").read()
        if old != text:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)

    for m in msgs:
        emit(m.file + ".h", Emitter(m).gen_header())
        emit(m.file + ".c", Emitter(m).gen_source())
        emit(os.path.join("testing", m.file + ".c"), TestEmitter(m).gen())
    h, c = gen_api(msgs)
    emit("api.h", h)
    emit("api.c", c)
    emit(os.path.join("testing", "table.c"), gen_testing_table(msgs))

    # Remove files from schemas that no longer exist.
    for root, _, files in os.walk(args.out):
        for fn in files:
            p = os.path.normpath(os.path.join(root, fn))
            if p not in written and (fn.endswith(".c") or fn.endswith(".h")):
                os.remove(p)
    print(f"gen_protocol: {len(msgs)} schemas -> {args.out}; no codec for the removed "
          f"APIs {', '.join(sorted(removed))}")


if __name__ == "__main__":
    main()
