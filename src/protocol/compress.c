/*
 * gzip (zlib), snappy (xerial framing over libsnappy's C API), lz4 (LZ4F
 * frames) and zstd (streaming) for record batches (see compress.h). Every
 * decoder writes into the caller's bounded buffer.
 */
#include "protocol/compress.h"

#include <lz4frame.h>
#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

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

/* ---- gzip ---- */

static int gzip_decompress(const uint8_t *in, size_t in_len, uint8_t *out, size_t cap, size_t *out_len) {
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, 15 + 32) != Z_OK) return SM_ERR_NOMEM;
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)in_len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int rc;
    for (;;) {
        rc = inflate(&z, Z_NO_FLUSH);
        if (rc == Z_STREAM_END) {
            /* Concatenated gzip members are legal. */
            if (z.avail_in == 0) break;
            if (inflateReset(&z) != Z_OK) break;
            continue;
        }
        if (rc == Z_OK && z.avail_out == 0 && z.avail_in > 0) {
            inflateEnd(&z);
            return SM_ERR_RANGE;
        }
        if (rc == Z_BUF_ERROR && z.avail_out == 0) {
            inflateEnd(&z);
            return SM_ERR_RANGE;
        }
        if (rc != Z_OK) break;
        if (z.avail_in == 0) {
            rc = Z_DATA_ERROR; /* input ended before the stream */
            break;
        }
    }
    size_t n = cap - z.avail_out;
    inflateEnd(&z);
    if (rc != Z_STREAM_END) return SM_ERR_CORRUPT;
    *out_len = n;
    return SM_OK;
}

static int gzip_compress(int level, const uint8_t *in, size_t in_len, uint8_t *out, size_t cap, size_t *out_len) {
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, level < 0 ? Z_DEFAULT_COMPRESSION : level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return SM_ERR_NOMEM;
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)in_len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    size_t n = cap - z.avail_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) return SM_ERR_SPACE;
    *out_len = n;
    return SM_OK;
}

/* ---- snappy: xerial framing ---- */

static const uint8_t xerial_magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};

static int snappy_block(const uint8_t *in, size_t in_len, uint8_t *out, size_t cap, size_t *n) {
    size_t need;
    if (snappy_uncompressed_length((const char *)in, in_len, &need) != SNAPPY_OK) return SM_ERR_CORRUPT;
    if (need > cap) return SM_ERR_RANGE;
    if (snappy_validate_compressed_buffer((const char *)in, in_len) != SNAPPY_OK) return SM_ERR_CORRUPT;
    size_t got = cap;
    if (snappy_uncompress((const char *)in, in_len, (char *)out, &got) != SNAPPY_OK) return SM_ERR_CORRUPT;
    *n = got;
    return SM_OK;
}

static int snappy_decompress(const uint8_t *in, size_t in_len, uint8_t *out, size_t cap, size_t *out_len) {
    if (in_len < 16 || memcmp(in, xerial_magic, 8) != 0) return snappy_block(in, in_len, out, cap, out_len);
    sm_reader_t r = sm_reader_make(in + 16, in_len - 16);
    size_t total = 0;
    while (sm_rd_left(&r) > 0) {
        int32_t blen;
        const uint8_t *p;
        if (sm_rd_i32(&r, &blen) || blen < 0 || sm_rd_slice(&r, (size_t)blen, &p)) return SM_ERR_CORRUPT;
        size_t n;
        int rc = snappy_block(p, (size_t)blen, out + total, cap - total, &n);
        if (rc) return rc;
        total += n;
    }
    *out_len = total;
    return SM_OK;
}

#define XERIAL_BLOCK 32768

static size_t snappy_bound(size_t len) {
    size_t blocks = len / XERIAL_BLOCK + 1;
    return 16 + blocks * (4 + snappy_max_compressed_length(XERIAL_BLOCK));
}

static int snappy_compress_x(const uint8_t *in, size_t in_len, uint8_t *out, size_t cap, size_t *out_len) {
    if (cap < snappy_bound(in_len)) return SM_ERR_SPACE;
    memcpy(out, xerial_magic, 8);
    sm_writer_t w = sm_writer_make(out + 8, 8);
    sm_wr_i32(&w, 1);
    sm_wr_i32(&w, 1);
    size_t o = 16;
    for (size_t off = 0; off < in_len || off == 0; off += XERIAL_BLOCK) {
        size_t chunk = in_len - off < XERIAL_BLOCK ? in_len - off : XERIAL_BLOCK;
        size_t n = cap - o - 4;
        if (snappy_compress((const char *)in + off, chunk, (char *)out + o + 4, &n) != SNAPPY_OK) return SM_ERR_SPACE;
        w = sm_writer_make(out + o, 4);
        sm_wr_i32(&w, (int32_t)n);
        o += 4 + n;
        if (in_len == 0) break;
    }
    *out_len = o;
    return SM_OK;
}

/* ---- lz4 frames ---- */

static int lz4_decompress(const uint8_t *in, size_t in_len, uint8_t *out, size_t cap, size_t *out_len) {
    LZ4F_dctx *d;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&d, LZ4F_VERSION))) return SM_ERR_NOMEM;
    size_t ipos = 0, opos = 0;
    int rc = SM_ERR_CORRUPT;
    for (;;) {
        size_t isz = in_len - ipos, osz = cap - opos;
        size_t hint = LZ4F_decompress(d, out + opos, &osz, in + ipos, &isz, NULL);
        if (LZ4F_isError(hint)) break;
        ipos += isz;
        opos += osz;
        if (hint == 0) {
            if (ipos == in_len) {
                rc = SM_OK;
                break;
            }
            continue; /* another frame follows */
        }
        if (opos == cap && isz == 0 && osz == 0) {
            rc = SM_ERR_RANGE;
            break;
        }
        if (ipos == in_len && osz == 0) break; /* truncated */
        if (opos == cap) {
            rc = SM_ERR_RANGE;
            break;
        }
    }
    LZ4F_freeDecompressionContext(d);
    if (rc == SM_OK) *out_len = opos;
    return rc;
}

static int lz4_compress(int level, const uint8_t *in, size_t in_len, uint8_t *out, size_t cap, size_t *out_len) {
    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof(prefs));
    prefs.compressionLevel = level < 0 ? 0 : level;
    prefs.frameInfo.blockSizeID = LZ4F_max64KB;
    size_t n = LZ4F_compressFrame(out, cap, in, in_len, &prefs);
    if (LZ4F_isError(n)) return SM_ERR_SPACE;
    *out_len = n;
    return SM_OK;
}

/* ---- zstd ---- */

static int zstd_decompress(const uint8_t *in, size_t in_len, uint8_t *out, size_t cap, size_t *out_len) {
    ZSTD_DCtx *d = ZSTD_createDCtx();
    if (!d) return SM_ERR_NOMEM;
    /* A frame must not demand a window bigger than 128 MiB. */
    ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, 27);
    ZSTD_inBuffer ib = {in, in_len, 0};
    ZSTD_outBuffer ob = {out, cap, 0};
    int rc = SM_ERR_CORRUPT;
    for (;;) {
        size_t r = ZSTD_decompressStream(d, &ob, &ib);
        if (ZSTD_isError(r)) break;
        if (r == 0 && ib.pos == ib.size) {
            rc = SM_OK;
            break;
        }
        if (ob.pos == ob.size) {
            /* Full: is there more output? Try one more byte of room. */
            uint8_t probe;
            ZSTD_outBuffer pb = {&probe, 1, 0};
            size_t r2 = ZSTD_decompressStream(d, &pb, &ib);
            if (!ZSTD_isError(r2) && pb.pos == 0 && r2 == 0 && ib.pos == ib.size) {
                rc = SM_OK;
                break;
            }
            rc = ZSTD_isError(r2) ? SM_ERR_CORRUPT : SM_ERR_RANGE;
            break;
        }
        if (ib.pos == ib.size && r != 0) break; /* truncated */
    }
    ZSTD_freeDCtx(d);
    if (rc == SM_OK) *out_len = ob.pos;
    return rc;
}

static int zstd_compress(int level, const uint8_t *in, size_t in_len, uint8_t *out, size_t cap, size_t *out_len) {
    size_t n = ZSTD_compress(out, cap, in, in_len, level < 0 ? 3 : level);
    if (ZSTD_isError(n)) return SM_ERR_SPACE;
    *out_len = n;
    return SM_OK;
}

/* ---- dispatch ---- */

int proto_decompress(int codec, const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap,
                     size_t *out_len) {
    switch (codec) {
    case PROTO_COMPRESSION_GZIP: return gzip_decompress(in, in_len, out, out_cap, out_len);
    case PROTO_COMPRESSION_SNAPPY: return snappy_decompress(in, in_len, out, out_cap, out_len);
    case PROTO_COMPRESSION_LZ4: return lz4_decompress(in, in_len, out, out_cap, out_len);
    case PROTO_COMPRESSION_ZSTD: return zstd_decompress(in, in_len, out, out_cap, out_len);
    default: return SM_ERR_VERSION;
    }
}

size_t proto_compress_bound(int codec, size_t len) {
    switch (codec) {
    case PROTO_COMPRESSION_GZIP: return compressBound((uLong)len) + 64;
    case PROTO_COMPRESSION_SNAPPY: return snappy_bound(len);
    case PROTO_COMPRESSION_LZ4: {
        LZ4F_preferences_t prefs;
        memset(&prefs, 0, sizeof(prefs));
        prefs.frameInfo.blockSizeID = LZ4F_max64KB;
        return LZ4F_compressFrameBound(len, &prefs);
    }
    case PROTO_COMPRESSION_ZSTD: return ZSTD_compressBound(len);
    default: return len;
    }
}

int proto_compress(int codec, int level, const uint8_t *in, size_t in_len, uint8_t *out,
                   size_t out_cap, size_t *out_len) {
    switch (codec) {
    case PROTO_COMPRESSION_GZIP: return gzip_compress(level, in, in_len, out, out_cap, out_len);
    case PROTO_COMPRESSION_SNAPPY: return snappy_compress_x(in, in_len, out, out_cap, out_len);
    case PROTO_COMPRESSION_LZ4: return lz4_compress(level, in, in_len, out, out_cap, out_len);
    case PROTO_COMPRESSION_ZSTD: return zstd_compress(level, in, in_len, out, out_cap, out_len);
    default: return SM_ERR_VERSION;
    }
}

int proto_batch_validate_compressed(const uint8_t *batch, size_t len, size_t max_decompressed) {
    proto_batch_header_t h;
    int rc = proto_batch_parse_header(batch, len, &h);
    if (rc) return rc;
    int codec = proto_batch_compression(&h);
    if (codec == PROTO_COMPRESSION_NONE) return SM_OK;
    if (codec > PROTO_COMPRESSION_ZSTD) return SM_ERR_VERSION;
    /* Records take at least 7 bytes each: the count bounds the output too. */
    size_t cap = max_decompressed;
    if ((size_t)h.records_count > cap / 7) return SM_ERR_RANGE;
    uint8_t *buf = malloc(cap ? cap : 1);
    if (!buf) return SM_ERR_NOMEM;
    size_t n = 0;
    rc = proto_decompress(codec, batch + PROTO_BATCH_HEADER_SIZE, len - PROTO_BATCH_HEADER_SIZE, buf, cap, &n);
    if (rc == SM_OK) {
        proto_record_iter_t it;
        proto_record_t rec;
        proto_record_iter_init(&it, buf, n, h.records_count);
        int32_t expect = 0;
        int r;
        while ((r = proto_record_iter_next(&it, &rec)) == 1) {
            if (rec.offset_delta != expect++) {
                r = SM_ERR_CORRUPT;
                break;
            }
        }
        if (r < 0 || it.p != it.end || expect != h.records_count) rc = SM_ERR_CORRUPT;
        /* Kafka allows last_offset_delta to exceed count-1 only for compacted batches. */
        if (rc == SM_OK && h.records_count > 0 && h.last_offset_delta < h.records_count - 1) rc = SM_ERR_CORRUPT;
    }
    free(buf);
    return rc;
}
