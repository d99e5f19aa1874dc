/*
 * Record batch codecs over zlib, libsnappy's C API, LZ4F and libzstd (see compress.h), and the
 * walk over the records of a compressed batch. Every decoder writes through one bounded output
 * buffer (outbuf_t) that either is the caller's or grows up to a limit; no codec sizes its own
 * state from the output. Not for the uncompressed record format itself (records.c).
 */
#include "protocol/compress.h"

#include <lz4frame.h>
#include <snappy-c.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "base/buf.h"
#include "base/err.h"
#include "protocol/records.h"

const char *proto_compression_name(int codec) {
    switch (codec) {
    case PROTO_COMPRESSION_NONE: return "none";
    case PROTO_COMPRESSION_GZIP: return "gzip";
    case PROTO_COMPRESSION_SNAPPY: return "snappy";
    case PROTO_COMPRESSION_LZ4: return "lz4";
    case PROTO_COMPRESSION_ZSTD: return "zstd";
    default: return "unknown";
    }
}

/* Little-endian fields of the gzip, LZ4 and zstd formats, read from 4-byte slices that a
 * bounds-checked reader handed out. */
static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- bounded output ---- */

/*
 * Invariants: len <= cap <= max; p is never NULL (a caller's NULL buffer is replaced by a
 * zero-capacity dummy) so p + len is always defined. A caller's buffer has cap == max and never
 * moves; an owned one is realloc'd (contents kept) until cap == max.
 */
typedef struct outbuf {
    uint8_t *p;
    size_t len;
    size_t cap;
    size_t max;
    bool owned;
} outbuf_t;

#define OUTBUF_MIN_ALLOC 4096

/* Room for need more bytes: SM_OK, SM_ERR_RANGE past max, SM_ERR_NOMEM. */
static int ob_reserve(outbuf_t *o, size_t need) {
    if (need > o->max - o->len) return SM_ERR_RANGE;
    if (need <= o->cap - o->len) return SM_OK;
    size_t want = o->len + need, ncap = o->cap < OUTBUF_MIN_ALLOC ? OUTBUF_MIN_ALLOC : o->cap;
    while (ncap < want)
        ncap = ncap > o->max / 2 ? o->max : ncap * 2;
    if (ncap > o->max) ncap = o->max;
    uint8_t *np = realloc(o->p, ncap);
    if (!np) return SM_ERR_NOMEM;
    o->p = np;
    o->cap = ncap;
    return SM_OK;
}

/* Grows an owned buffer towards a size the stream announces; only a hint (a failure here
 * shows again at the next reserve). */
static void ob_hint(outbuf_t *o, size_t n) {
    if (!o->owned) return;
    if (n > o->max - o->len) n = o->max - o->len;
    (void)ob_reserve(o, n);
}

/* zlib counts in uInt; larger inputs and outputs are fed in pieces of this size. */
#define ZLIB_PIECE ((size_t)1 << 30)

static uInt zlib_piece(size_t n) { return (uInt)(n < ZLIB_PIECE ? n : ZLIB_PIECE); }

/*
 * Streaming codecs get the free part of the buffer; once it is full and cannot grow they get a
 * one-byte probe instead, so a stream that ends exactly at the bound (trailer, end mark and
 * checksum still unread) is accepted, and one more byte of output means SM_ERR_RANGE.
 */
typedef struct out_window {
    uint8_t *dst;
    size_t room;
    bool probe;
    uint8_t probe_byte;
} out_window_t;

static int ob_window(outbuf_t *o, out_window_t *w) {
    w->probe = false;
    if (o->len == o->cap) {
        int rc = ob_reserve(o, 1);
        if (rc == SM_ERR_RANGE) {
            w->probe = true;
            w->dst = &w->probe_byte;
            w->room = 1;
            return SM_OK;
        }
        if (rc) return rc;
    }
    w->dst = o->p + o->len;
    w->room = o->cap - o->len;
    return SM_OK;
}

/* Accounts produced bytes of a window: SM_ERR_RANGE when they went into the probe. */
static int ob_produced(outbuf_t *o, const out_window_t *w, size_t produced) {
    if (w->probe) return produced ? SM_ERR_RANGE : SM_OK;
    o->len += produced;
    return SM_OK;
}

/* ---- gzip ---- */

/*
 * gzip members only (windowBits 15 + 16), as Java's GZIPInputStream reads them; a zlib or raw
 * deflate stream would be stored and then fail in every Java consumer. Concatenated members
 * are legal gzip. Bytes after the last member are refused (Java would skip them).
 */
static int gzip_decompress(const uint8_t *in, size_t in_len, outbuf_t *o) {
    sm_reader_t r = sm_reader_make(in, in_len);
    const uint8_t *isize;
    if (in_len >= 18 && in_len < SIZE_MAX / 1032 && sm_rd_skip(&r, in_len - 4) == SM_OK &&
        sm_rd_slice(&r, 4, &isize) == SM_OK) {
        /* ISIZE, the length mod 2^32 of the last member, is a good first size; deflate cannot
         * expand more than 1032 times, so a larger claim is a lie. */
        size_t n = le32(isize);
        ob_hint(o, n < in_len * 1032 ? n : in_len * 1032);
    }
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, 15 + 16) != Z_OK) return SM_ERR_NOMEM;
    size_t ipos = 0;
    int rc;
    for (;;) {
        out_window_t w;
        if ((rc = ob_window(o, &w))) break;
        z.next_in = (Bytef *)(in + ipos);
        z.avail_in = zlib_piece(in_len - ipos);
        z.next_out = w.dst;
        z.avail_out = zlib_piece(w.room);
        uInt ain = z.avail_in, aout = z.avail_out;
        int zr = inflate(&z, Z_NO_FLUSH);
        ipos += ain - z.avail_in;
        if ((rc = ob_produced(o, &w, aout - z.avail_out))) break;
        if (zr == Z_STREAM_END) {
            if (ipos == in_len) break;
            if (inflateReset(&z) != Z_OK) {
                rc = SM_ERR_CORRUPT;
                break;
            }
            continue;
        }
        if (zr == Z_OK) continue;
        /* Z_BUF_ERROR here means the input ended inside a member (there was output room). */
        rc = zr == Z_MEM_ERROR ? SM_ERR_NOMEM : SM_ERR_CORRUPT;
        break;
    }
    inflateEnd(&z);
    return rc;
}

static int gzip_compress(int level, const uint8_t *in, size_t in_len, uint8_t *out, size_t cap,
                         size_t *out_len) {
    if (level > 9) return SM_ERR_RANGE;
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, level < 0 ? Z_DEFAULT_COMPRESSION : level, Z_DEFLATED, 15 + 16, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return SM_ERR_NOMEM;
    size_t ipos = 0, opos = 0;
    int rc;
    for (;;) {
        z.next_in = (Bytef *)(in + ipos);
        z.avail_in = zlib_piece(in_len - ipos);
        z.next_out = out + opos;
        z.avail_out = zlib_piece(cap - opos);
        uInt ain = z.avail_in, aout = z.avail_out;
        int flush = in_len - ipos <= ZLIB_PIECE ? Z_FINISH : Z_NO_FLUSH;
        int zr = deflate(&z, flush);
        ipos += ain - z.avail_in;
        opos += aout - z.avail_out;
        if (zr == Z_STREAM_END) {
            *out_len = opos;
            rc = SM_OK;
            break;
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            rc = SM_ERR;
            break;
        }
        if (opos == cap) {
            rc = SM_ERR_SPACE;
            break;
        }
    }
    deflateEnd(&z);
    return rc;
}

/* ---- snappy ---- */

/*
 * snappy-java's stream (Kafka's Java client): 8 magic bytes, int32 version and int32
 * compatible version (both 1, not checked, as librdkafka does not), then blocks of
 * [int32 big-endian length][raw snappy block]; no end marker. librdkafka writes one raw block
 * instead; a raw block cannot start with the magic in practice (it would announce 10626 bytes
 * and continue with an invalid tag).
 */
static const uint8_t xerial_magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
enum { XERIAL_HEADER = 16, XERIAL_BLOCK = 32768 };

static int snappy_block(const uint8_t *in, size_t in_len, outbuf_t *o) {
    size_t need;
    /* The length a block announces is checked against the bound before anything is written. */
    if (snappy_uncompressed_length((const char *)in, in_len, &need) != SNAPPY_OK)
        return SM_ERR_CORRUPT;
    /* The best an element does is 64 bytes from a 3-byte copy: a block announcing more than
     * 22 times its size lies (a torn xerial magic parsed as a raw block is one). */
    if (in_len < SIZE_MAX / 22 && need > in_len * 22) return SM_ERR_CORRUPT;
    int rc = ob_reserve(o, need);
    if (rc) return rc;
    size_t got = need;
    if (snappy_uncompress((const char *)in, in_len, (char *)(o->p + o->len), &got) != SNAPPY_OK ||
        got != need)
        return SM_ERR_CORRUPT;
    o->len += got;
    return SM_OK;
}

static int snappy_decompress(const uint8_t *in, size_t in_len, outbuf_t *o) {
    if (in_len < sizeof(xerial_magic) || memcmp(in, xerial_magic, sizeof(xerial_magic)) != 0)
        return snappy_block(in, in_len, o);
    sm_reader_t r = sm_reader_make(in, in_len);
    int32_t version, compat;
    if (sm_rd_skip(&r, sizeof(xerial_magic)) || sm_rd_i32(&r, &version) || sm_rd_i32(&r, &compat))
        return SM_ERR_CORRUPT;
    while (sm_rd_left(&r) > 0) {
        int32_t blen;
        const uint8_t *block;
        if (sm_rd_i32(&r, &blen) || blen <= 0 || sm_rd_slice(&r, (size_t)blen, &block))
            return SM_ERR_CORRUPT;
        int rc = snappy_block(block, (size_t)blen, o);
        if (rc) return rc;
    }
    return SM_OK;
}

static size_t snappy_bound(size_t len) {
    size_t blocks = len / XERIAL_BLOCK + (len % XERIAL_BLOCK != 0);
    return XERIAL_HEADER + blocks * (4 + snappy_max_compressed_length(XERIAL_BLOCK));
}

static int snappy_compress_xerial(const uint8_t *in, size_t in_len, uint8_t *out, size_t cap,
                                  size_t *out_len) {
    if (cap < XERIAL_HEADER) return SM_ERR_SPACE;
    sm_writer_t w = sm_writer_make(out, XERIAL_HEADER);
    sm_wr_raw(&w, xerial_magic, sizeof(xerial_magic));
    sm_wr_i32(&w, 1);
    sm_wr_i32(&w, 1);
    size_t o = XERIAL_HEADER;
    /* snappy-java writes header only for empty input, and never an empty block. */
    for (size_t off = 0; off < in_len; off += XERIAL_BLOCK) {
        size_t chunk = in_len - off < XERIAL_BLOCK ? in_len - off : XERIAL_BLOCK;
        if (cap - o < 4 || cap - o - 4 < snappy_max_compressed_length(chunk)) return SM_ERR_SPACE;
        size_t n = cap - o - 4;
        if (snappy_compress((const char *)in + off, chunk, (char *)out + o + 4, &n) != SNAPPY_OK)
            return SM_ERR_SPACE;
        w = sm_writer_make(out + o, 4);
        sm_wr_i32(&w, (int32_t)n);
        o += 4 + n;
    }
    *out_len = o;
    return SM_OK;
}

/* ---- lz4 ---- */

enum {
    LZ4_FRAME_MAGIC = 0x184D2204,
    LZ4_FLG_DICT_ID = 0x01,
    LZ4_FLG_CONTENT_SIZE = 0x08,
    LZ4_FLG_BLOCK_INDEPENDENT = 0x20,
};

/*
 * Kafka's Lz4BlockInputStream (magic v2: header checksum checked) reads a single frame and
 * refuses dependent blocks, a dictionary id (reserved bits to it) and skippable frames. LZ4F
 * would take all of those, and a batch stored with one would fail in every Java consumer, so
 * they are refused here first.
 */
static int lz4_decompress(const uint8_t *in, size_t in_len, outbuf_t *o) {
    sm_reader_t r = sm_reader_make(in, in_len);
    const uint8_t *magic, *size;
    uint8_t flg, bd;
    if (sm_rd_slice(&r, 4, &magic) || le32(magic) != LZ4_FRAME_MAGIC || sm_rd_u8(&r, &flg) ||
        sm_rd_u8(&r, &bd))
        return SM_ERR_CORRUPT;
    if (!(flg & LZ4_FLG_BLOCK_INDEPENDENT) || (flg & LZ4_FLG_DICT_ID)) return SM_ERR_CORRUPT;
    if ((flg & LZ4_FLG_CONTENT_SIZE) && sm_rd_slice(&r, 8, &size) == SM_OK &&
        in_len < SIZE_MAX / 256) {
        /* LZ4F checks the stated size at the end; LZ4 cannot expand more than 255 times. */
        uint64_t n = le32(size) | (uint64_t)le32(size + 4) << 32;
        ob_hint(o, n < in_len * 256 ? (size_t)n : in_len * 256);
    }
    LZ4F_dctx *d;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&d, LZ4F_VERSION))) return SM_ERR_NOMEM;
    size_t ipos = 0;
    int rc;
    for (;;) {
        out_window_t w;
        if ((rc = ob_window(o, &w))) break;
        size_t isz = in_len - ipos, osz = w.room;
        size_t hint = LZ4F_decompress(d, w.dst, &osz, in + ipos, &isz, NULL);
        if (LZ4F_isError(hint)) {
            rc = SM_ERR_CORRUPT;
            break;
        }
        ipos += isz;
        if ((rc = ob_produced(o, &w, osz))) break;
        if (hint == 0) { /* frame decoded and flushed */
            rc = ipos == in_len ? SM_OK : SM_ERR_CORRUPT;
            break;
        }
        if (isz == 0 && osz == 0) { /* no progress: the input ended inside the frame */
            rc = SM_ERR_CORRUPT;
            break;
        }
    }
    LZ4F_freeDecompressionContext(d);
    return rc;
}

/* What Kafka's Lz4BlockOutputStream writes: 64 KiB independent blocks, no checksums. */
static void lz4_prefs(LZ4F_preferences_t *prefs, int level) {
    memset(prefs, 0, sizeof(*prefs));
    prefs->frameInfo.blockSizeID = LZ4F_max64KB;
    prefs->frameInfo.blockMode = LZ4F_blockIndependent;
    prefs->compressionLevel = level < 0 ? 0 : level;
}

static int lz4_compress(int level, const uint8_t *in, size_t in_len, uint8_t *out, size_t cap,
                        size_t *out_len) {
    if (level > 12) return SM_ERR_RANGE;
    LZ4F_preferences_t prefs;
    lz4_prefs(&prefs, level);
    if (cap < LZ4F_compressFrameBound(in_len, &prefs)) return SM_ERR_SPACE;
    size_t n = LZ4F_compressFrame(out, cap, in, in_len, &prefs);
    if (LZ4F_isError(n)) return SM_ERR_NOMEM;
    *out_len = n;
    return SM_OK;
}

/* ---- zstd ---- */

enum {
    ZSTD_FRAME_MAGIC = 0xFD2FB528,
    ZSTD_SKIPPABLE_MAGIC = 0x184D2A50, /* low 4 bits free */
    ZSTD_FHD_SINGLE_SEGMENT = 0x20,
};
/* zstd's default streaming limit, which zstd-jni (Kafka's reader) keeps: 2^27 + 1. */
#define ZSTD_MAX_WINDOW (((uint64_t)1 << 27) + 1)

/*
 * Walks the frames before decoding: each must be complete, standard or skippable, and need a
 * window a Java consumer accepts. Sets *declared to the sum of the content sizes when every
 * data frame states one, else to UINT64_MAX.
 */
static int zstd_scan(const uint8_t *in, size_t in_len, uint64_t *declared) {
    uint64_t sum = 0;
    bool known = true;
    sm_reader_t r = sm_reader_make(in, in_len);
    while (sm_rd_left(&r) > 0) {
        size_t fsz = ZSTD_findFrameCompressedSize(r.p, sm_rd_left(&r));
        const uint8_t *frame, *magic;
        if (ZSTD_isError(fsz) || sm_rd_slice(&r, fsz, &frame)) return SM_ERR_CORRUPT;
        sm_reader_t fr = sm_reader_make(frame, fsz);
        if (sm_rd_slice(&fr, 4, &magic)) return SM_ERR_CORRUPT;
        if ((le32(magic) & 0xFFFFFFF0u) == ZSTD_SKIPPABLE_MAGIC) continue;
        uint8_t fhd, wd = 0;
        if (le32(magic) != ZSTD_FRAME_MAGIC || sm_rd_u8(&fr, &fhd) ||
            (!(fhd & ZSTD_FHD_SINGLE_SEGMENT) && sm_rd_u8(&fr, &wd)))
            return SM_ERR_CORRUPT;
        unsigned long long fcs = ZSTD_getFrameContentSize(frame, fsz);
        if (fcs == ZSTD_CONTENTSIZE_ERROR) return SM_ERR_CORRUPT;
        uint64_t window;
        if (fhd & ZSTD_FHD_SINGLE_SEGMENT) {
            window = fcs; /* single segment: the window is the whole content */
        } else {
            uint64_t base = (uint64_t)1 << (10 + (wd >> 3));
            window = base + base / 8 * (wd & 7);
        }
        if (window > ZSTD_MAX_WINDOW) return SM_ERR_CORRUPT;
        if (fcs == ZSTD_CONTENTSIZE_UNKNOWN)
            known = false;
        else
            sum = fcs > UINT64_MAX - sum ? UINT64_MAX : sum + fcs;
    }
    *declared = known ? sum : UINT64_MAX;
    return SM_OK;
}

/*
 * One-shot decoding straight into the output: no window buffer is allocated (streaming would
 * allocate up to the frame's window, 128 MiB). A frame without a content size (zstd-jni writes
 * none) is decoded into a growing buffer by retrying with twice the room.
 */
static int zstd_decompress(const uint8_t *in, size_t in_len, outbuf_t *o) {
    uint64_t declared;
    int rc = zstd_scan(in, in_len, &declared);
    if (rc) return rc;
    if (declared != UINT64_MAX) {
        if (declared > o->max - o->len) return SM_ERR_RANGE;
        if ((rc = ob_reserve(o, (size_t)declared))) return rc;
    } else {
        ob_hint(o, in_len < SIZE_MAX / 8 ? in_len * 8 : SIZE_MAX);
    }
    ZSTD_DCtx *d = ZSTD_createDCtx();
    if (!d) return SM_ERR_NOMEM;
    for (;;) {
        size_t n = ZSTD_decompressDCtx(d, o->p + o->len, o->cap - o->len, in, in_len);
        if (!ZSTD_isError(n)) {
            o->len += n;
            rc = SM_OK;
            break;
        }
        ZSTD_ErrorCode e = ZSTD_getErrorCode(n);
        if (e == ZSTD_error_memory_allocation) {
            rc = SM_ERR_NOMEM;
            break;
        }
        if (e != ZSTD_error_dstSize_tooSmall) {
            rc = SM_ERR_CORRUPT;
            break;
        }
        /* Too small: twice the room, up to the bound (a caller's buffer is at it already). */
        size_t room = o->cap - o->len, left = o->max - o->len;
        if (room >= left) {
            rc = SM_ERR_RANGE;
            break;
        }
        if ((rc = ob_reserve(o, room < left / 2 ? 2 * room + 1 : left))) break;
    }
    ZSTD_freeDCtx(d);
    return rc;
}

static int zstd_compress(int level, const uint8_t *in, size_t in_len, uint8_t *out, size_t cap,
                         size_t *out_len) {
    if (level > ZSTD_maxCLevel()) return SM_ERR_RANGE;
    size_t n = ZSTD_compress(out, cap, in, in_len, level < 0 ? 3 : level);
    if (ZSTD_isError(n))
        return ZSTD_getErrorCode(n) == ZSTD_error_dstSize_tooSmall ? SM_ERR_SPACE : SM_ERR_NOMEM;
    *out_len = n;
    return SM_OK;
}

/* ---- dispatch ---- */

static int decompress_into(int codec, const uint8_t *in, size_t in_len, outbuf_t *o) {
    if (codec < PROTO_COMPRESSION_GZIP || codec > PROTO_COMPRESSION_ZSTD) return SM_ERR_VERSION;
    if (!in || in_len == 0) return SM_ERR_CORRUPT;
    switch (codec) {
    case PROTO_COMPRESSION_GZIP: return gzip_decompress(in, in_len, o);
    case PROTO_COMPRESSION_SNAPPY: return snappy_decompress(in, in_len, o);
    case PROTO_COMPRESSION_LZ4: return lz4_decompress(in, in_len, o);
    default: return zstd_decompress(in, in_len, o);
    }
}

static outbuf_t outbuf_fixed(uint8_t *out, size_t cap, uint8_t *dummy) {
    if (!out) return (outbuf_t){dummy, 0, 0, 0, false};
    return (outbuf_t){out, 0, cap, cap, false};
}

int proto_decompress(int codec, const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap,
                     size_t *out_len) {
    uint8_t dummy;
    outbuf_t o = outbuf_fixed(out, out_cap, &dummy);
    int rc = decompress_into(codec, in, in_len, &o);
    if (rc == SM_OK) *out_len = o.len;
    return rc;
}

int proto_decompress_alloc(int codec, const uint8_t *in, size_t in_len, size_t max_out,
                           uint8_t **out, size_t *out_len) {
    *out = NULL;
    outbuf_t o = {malloc(1), 0, 0, max_out, true};
    if (!o.p) return SM_ERR_NOMEM;
    int rc = decompress_into(codec, in, in_len, &o);
    if (rc) {
        free(o.p);
        return rc;
    }
    *out = o.p;
    *out_len = o.len;
    return SM_OK;
}

size_t proto_compress_bound(int codec, size_t len) {
    if (len > SIZE_MAX / 4) return 0;
    switch (codec) {
    case PROTO_COMPRESSION_GZIP: return compressBound((uLong)len) + 18; /* gzip wrapper */
    case PROTO_COMPRESSION_SNAPPY: return snappy_bound(len);
    case PROTO_COMPRESSION_LZ4: {
        LZ4F_preferences_t prefs;
        lz4_prefs(&prefs, 0);
        return LZ4F_compressFrameBound(len, &prefs);
    }
    case PROTO_COMPRESSION_ZSTD: {
        size_t n = ZSTD_compressBound(len);
        return ZSTD_isError(n) ? 0 : n;
    }
    default: return 0;
    }
}

int proto_compress(int codec, int level, const uint8_t *in, size_t in_len, uint8_t *out,
                   size_t out_cap, size_t *out_len) {
    if (codec < PROTO_COMPRESSION_GZIP || codec > PROTO_COMPRESSION_ZSTD) return SM_ERR_VERSION;
    if (!out || out_cap == 0) return SM_ERR_SPACE;
    if (!in) in = (const uint8_t *)""; /* in_len is 0: no pointer arithmetic on NULL */
    switch (codec) {
    case PROTO_COMPRESSION_GZIP: return gzip_compress(level, in, in_len, out, out_cap, out_len);
    case PROTO_COMPRESSION_SNAPPY: return snappy_compress_xerial(in, in_len, out, out_cap, out_len);
    case PROTO_COMPRESSION_LZ4: return lz4_compress(level, in, in_len, out, out_cap, out_len);
    default: return zstd_compress(level, in, in_len, out, out_cap, out_len);
    }
}

/* ---- records of a compressed batch ---- */

/* Kafka's rules for a producer's records: exactly count records, offset deltas 0..count-1,
 * lengths adding up to the whole area. */
static int records_check(const uint8_t *data, size_t len, int32_t count) {
    proto_record_iter_t it;
    proto_record_t rec;
    proto_record_iter_init(&it, data, len, count);
    int32_t expect = 0;
    int r;
    while ((r = proto_record_iter_next(&it, &rec)) == 1) {
        if (rec.offset_delta != expect) return SM_ERR_CORRUPT;
        expect++;
    }
    if (r < 0 || expect != count || it.p != it.end) return SM_ERR_CORRUPT;
    return SM_OK;
}

static int batch_records_check(const uint8_t *batch, size_t len, outbuf_t *o) {
    proto_batch_header_t h;
    if (!batch || proto_batch_parse_header(batch, len, &h) != SM_OK) return SM_ERR_CORRUPT;
    if (proto_batch_total_size(&h) != len || h.records_count < 0) return SM_ERR_CORRUPT;
    if (h.records_count > 0 && h.last_offset_delta != h.records_count - 1) return SM_ERR_CORRUPT;
    int codec = proto_batch_compression(&h);
    const uint8_t *area = batch + PROTO_BATCH_HEADER_SIZE;
    size_t area_len = len - PROTO_BATCH_HEADER_SIZE;
    if (codec != PROTO_COMPRESSION_NONE) {
        int rc = decompress_into(codec, area, area_len, o);
        if (rc) return rc;
        area = o->p;
        area_len = o->len;
    }
    return records_check(area, area_len, h.records_count);
}

int proto_batch_validate_compressed(const uint8_t *batch, size_t len, size_t max_decompressed) {
    outbuf_t o = {malloc(1), 0, 0, max_decompressed, true};
    if (!o.p) return SM_ERR_NOMEM;
    int rc = batch_records_check(batch, len, &o);
    free(o.p);
    return rc;
}

int proto_batch_validate_compressed_into(const uint8_t *batch, size_t len, uint8_t *scratch,
                                         size_t scratch_cap) {
    uint8_t dummy;
    outbuf_t o = outbuf_fixed(scratch, scratch_cap, &dummy);
    return batch_records_check(batch, len, &o);
}
