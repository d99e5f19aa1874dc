/*
 * Record batch codecs: pinned bytes from Kafka's Java client and the gzip/lz4/zstd tools,
 * round trips at every size class with exact and one-byte-short bounds, decompression bombs
 * refused within a memory bound, every truncation, garbage and bit flips, the framings and
 * frame options Kafka's readers accept or refuse, and whole compressed batches validated.
 */
#include <lz4frame.h>
#include <snappy-c.h>
#include <sys/resource.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "base/buf.h"
#include "base/err.h"
#include "protocol/compress.h"
#include "protocol/records.h"
#include "test.h"

#define SEED 0xc0de5eedu

static const int codecs[] = {PROTO_COMPRESSION_GZIP, PROTO_COMPRESSION_SNAPPY,
                             PROTO_COMPRESSION_LZ4, PROTO_COMPRESSION_ZSTD};
#define NCODECS 4

static uint64_t rng_state;
static uint32_t rng_next(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}

static uint8_t *xmalloc(size_t n) {
    uint8_t *p = malloc(n ? n : 1);
    if (!p) abort();
    return p;
}

/* Random bytes, or text-like bytes that compress (words from a small set, drifting). */
static void fill(uint8_t *p, size_t n, int compressible) {
    static const char *words[] = {"kafka ",   "record ", "batch ", "offset ",
                                  "{\"id\":", "42, ",    "value",  "\n"};
    size_t i = 0;
    while (i < n) {
        if (!compressible) {
            p[i++] = (uint8_t)rng_next();
            continue;
        }
        const char *w = words[rng_next() % 8];
        for (size_t k = 0; w[k] && i < n; k++)
            p[i++] = (uint8_t)w[k];
    }
}

static int rc_is_clean(int rc) { return rc == SM_OK || rc == SM_ERR_CORRUPT || rc == SM_ERR_RANGE; }

/* Compresses into a fresh buffer of exactly the bound; returns it, *clen set. */
static uint8_t *compress_new(int codec, int level, const uint8_t *in, size_t n, size_t *clen) {
    size_t cap = proto_compress_bound(codec, n);
    uint8_t *out = xmalloc(cap);
    int rc = proto_compress(codec, level, in, n, out, cap, clen);
    if (rc != SM_OK) {
        fprintf(stderr, "compress %s level %d of %zu bytes: %d\n", proto_compression_name(codec),
                level, n, rc);
        abort();
    }
    return out;
}

/* ---------------------------------------------------------------- pinned vectors */

/* "hello" as Kafka 4.4's Java client compresses it for magic v2 (GZIPOutputStream, snappy-java
 * SnappyOutputStream, Lz4BlockOutputStream, zstd-jni), captured once with kafka-clients. */
static const uint8_t java_gzip[] = {0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                    0xff, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x86,
                                    0xa6, 0x10, 0x36, 0x05, 0x00, 0x00, 0x00};
static const uint8_t java_snappy[] = {0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00, 0x00,
                                      0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
                                      0x00, 0x07, 0x05, 0x10, 0x68, 0x65, 0x6c, 0x6c, 0x6f};
static const uint8_t java_lz4[] = {0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82, 0x05, 0x00, 0x00,
                                   0x80, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x00, 0x00, 0x00, 0x00};
/* zstd-jni streams: no content size, window descriptor only. */
static const uint8_t java_zstd[] = {0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58, 0x28, 0x00, 0x00,
                                    0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x01, 0x00, 0x00};

/* The command-line tools (gzip 1.12, lz4 1.9.4, zstd 1.5.4): `printf hello | gzip -n`,
 * `printf hello | lz4` (content checksum), `printf hello | zstd` (checksum, no content size),
 * `printf hellohellohello | zstd` (a repeat match), `zstd --no-check hello.txt` (content
 * size, single segment). */
static const uint8_t cli_gzip[] = {0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                   0x03, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x86,
                                   0xa6, 0x10, 0x36, 0x05, 0x00, 0x00, 0x00};
static const uint8_t cli_lz4[] = {0x04, 0x22, 0x4d, 0x18, 0x64, 0x40, 0xa7, 0x05,
                                  0x00, 0x00, 0x80, 0x68, 0x65, 0x6c, 0x6c, 0x6f,
                                  0x00, 0x00, 0x00, 0x00, 0xf9, 0x77, 0x00, 0xfb};
static const uint8_t cli_zstd[] = {0x28, 0xb5, 0x2f, 0xfd, 0x04, 0x58, 0x29, 0x00, 0x00,
                                   0x68, 0x65, 0x6c, 0x6c, 0x6f, 0xa3, 0x6d, 0x9f, 0x88};
static const uint8_t cli_zstd_repeat[] = {0x28, 0xb5, 0x2f, 0xfd, 0x04, 0x58, 0x5d, 0x00,
                                          0x00, 0x28, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x01,
                                          0x00, 0xd8, 0x8a, 0x16, 0x89, 0xac, 0x8f, 0x38};
static const uint8_t cli_zstd_sized[] = {0x28, 0xb5, 0x2f, 0xfd, 0x20, 0x05, 0x29,
                                         0x00, 0x00, 0x68, 0x65, 0x6c, 0x6c, 0x6f};
/* Raw snappy blocks written by hand from the format: length varint, a 5-byte literal (tag
 * 0x10), and for the repeat a 1-byte-offset copy of 10 bytes at offset 5 (tag 0x19, 0x05). */
static const uint8_t raw_snappy[] = {0x05, 0x10, 0x68, 0x65, 0x6c, 0x6c, 0x6f};
static const uint8_t raw_snappy_repeat[] = {0x0f, 0x10, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x19, 0x05};

typedef struct vector {
    const char *name;
    int codec;
    const uint8_t *bytes;
    size_t len;
    const char *text;
} vector_t;

#define VEC(name, codec, arr, text)                                                                \
    { name, codec, arr, sizeof(arr), text }
static const vector_t vectors[] = {
    VEC("java gzip", PROTO_COMPRESSION_GZIP, java_gzip, "hello"),
    VEC("java snappy", PROTO_COMPRESSION_SNAPPY, java_snappy, "hello"),
    VEC("java lz4", PROTO_COMPRESSION_LZ4, java_lz4, "hello"),
    VEC("java zstd", PROTO_COMPRESSION_ZSTD, java_zstd, "hello"),
    VEC("cli gzip", PROTO_COMPRESSION_GZIP, cli_gzip, "hello"),
    VEC("cli lz4", PROTO_COMPRESSION_LZ4, cli_lz4, "hello"),
    VEC("cli zstd", PROTO_COMPRESSION_ZSTD, cli_zstd, "hello"),
    VEC("cli zstd repeat", PROTO_COMPRESSION_ZSTD, cli_zstd_repeat, "hellohellohello"),
    VEC("cli zstd sized", PROTO_COMPRESSION_ZSTD, cli_zstd_sized, "hello"),
    VEC("raw snappy", PROTO_COMPRESSION_SNAPPY, raw_snappy, "hello"),
    VEC("raw snappy repeat", PROTO_COMPRESSION_SNAPPY, raw_snappy_repeat, "hellohellohello"),
};

/* Each pinned stream decodes to its text at an exact bound and is refused one byte short. */
static void test_known_vectors(void) {
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        const vector_t *v = &vectors[i];
        size_t n = strlen(v->text), got = 0;
        uint8_t out[32];
        int rc = proto_decompress(v->codec, v->bytes, v->len, out, n, &got);
        if (rc != SM_OK || got != n || memcmp(out, v->text, n) != 0) {
            t_failures++;
            fprintf(stderr, "%s: rc %d, %zu bytes\n", v->name, rc, got);
        }
        CHECK_EQ_INT(SM_ERR_RANGE, proto_decompress(v->codec, v->bytes, v->len, out, n - 1, &got));
        uint8_t *heap = NULL;
        CHECK_EQ_INT(SM_OK, proto_decompress_alloc(v->codec, v->bytes, v->len, n, &heap, &got));
        CHECK(heap && got == n && memcmp(heap, v->text, n) == 0);
        free(heap);
    }
}

/* Our encoders write byte for byte what the Java client (snappy, lz4) and the tools (gzip -n,
 * zstd --no-check from a file) write for "hello". */
static void test_compress_pinned(void) {
    static const struct {
        int codec;
        const uint8_t *bytes;
        size_t len;
    } want[] = {
        {PROTO_COMPRESSION_GZIP, cli_gzip, sizeof(cli_gzip)},
        {PROTO_COMPRESSION_SNAPPY, java_snappy, sizeof(java_snappy)},
        {PROTO_COMPRESSION_LZ4, java_lz4, sizeof(java_lz4)},
        {PROTO_COMPRESSION_ZSTD, cli_zstd_sized, sizeof(cli_zstd_sized)},
    };
    for (size_t i = 0; i < 4; i++) {
        uint8_t out[256];
        size_t n = 0;
        CHECK_EQ_INT(SM_OK, proto_compress(want[i].codec, -1, (const uint8_t *)"hello", 5, out,
                                           sizeof(out), &n));
        CHECK_EQ_INT(want[i].len, n);
        if (n == want[i].len) CHECK_EQ_MEM(want[i].bytes, out, n);
    }
}

static void test_names(void) {
    static const char *names[] = {"none", "gzip", "snappy", "lz4", "zstd", "unknown", "unknown"};
    for (int c = 0; c < 7; c++)
        CHECK(strcmp(names[c], proto_compression_name(c)) == 0);
    CHECK(strcmp("unknown", proto_compression_name(-1)) == 0);
}

/* ---------------------------------------------------------------- round trips */

/* Every codec at every size class, random and compressible: exact bound accepted, one byte
 * short refused without a write past it, the growing variant at and below its limit. */
static void test_round_trips(void) {
    static const size_t sizes[] = {0, 1, 100, 32767, 32768, 32769, 65536, 65537, 1 << 20};
    enum { GUARD = 64 };
    for (size_t c = 0; c < NCODECS; c++) {
        for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
            for (int comp = 0; comp < 2; comp++) {
                int codec = codecs[c];
                size_t n = sizes[k], clen = 0, dlen = 0;
                uint8_t *in = xmalloc(n), *back = xmalloc(n + GUARD);
                fill(in, n, comp);
                uint8_t *z = compress_new(codec, -1, in, n, &clen);
                int rc = proto_decompress(codec, z, clen, back, n, &dlen);
                if (rc != SM_OK || dlen != n || (n && memcmp(in, back, n) != 0)) {
                    t_failures++;
                    fprintf(stderr, "%s %zu bytes (%s): rc %d, %zu back\n",
                            proto_compression_name(codec), n, comp ? "text" : "random", rc, dlen);
                }
                if (n > 0) {
                    memset(back, 0xA5, n + GUARD);
                    CHECK_EQ_INT(SM_ERR_RANGE,
                                 proto_decompress(codec, z, clen, back, n - 1, &dlen));
                    for (size_t g = n - 1; g < n + GUARD; g++)
                        if (back[g] != 0xA5) {
                            t_failures++;
                            fprintf(stderr, "%s %zu: byte %zu written past the bound\n",
                                    proto_compression_name(codec), n, g);
                            break;
                        }
                    CHECK_EQ_INT(SM_ERR_RANGE, proto_decompress(codec, z, clen, NULL, 0, &dlen));
                }
                uint8_t *heap = NULL;
                CHECK_EQ_INT(SM_OK, proto_decompress_alloc(codec, z, clen, n, &heap, &dlen));
                CHECK(heap && dlen == n && (n == 0 || memcmp(heap, in, n) == 0));
                free(heap);
                if (n > 0) {
                    CHECK_EQ_INT(SM_ERR_RANGE,
                                 proto_decompress_alloc(codec, z, clen, n - 1, &heap, &dlen));
                    CHECK(heap == NULL);
                }
                free(z);
                free(in);
                free(back);
            }
        }
    }
}

/* Every level each codec accepts reads back; levels past the range are refused. */
static void test_levels(void) {
    static const struct {
        int codec;
        int levels[6];
        int bad;
    } cases[] = {
        {PROTO_COMPRESSION_GZIP, {0, 1, 5, 9, -1, -1}, 10},
        {PROTO_COMPRESSION_LZ4, {0, 1, 3, 9, 12, -1}, 13},
        {PROTO_COMPRESSION_ZSTD, {0, 1, 3, 19, 22, -1}, 23},
        {PROTO_COMPRESSION_SNAPPY, {0, 100, -1, -1, -1, -1}, INT32_MIN},
    };
    size_t n = 200000;
    uint8_t *in = xmalloc(n), *back = xmalloc(n);
    fill(in, n, 1);
    fill(in + n / 2, n / 4, 0);
    for (size_t i = 0; i < 4; i++) {
        for (size_t l = 0; l < 6; l++) {
            size_t clen, dlen = 0;
            uint8_t *z = compress_new(cases[i].codec, cases[i].levels[l], in, n, &clen);
            CHECK_EQ_INT(SM_OK, proto_decompress(cases[i].codec, z, clen, back, n, &dlen));
            CHECK(dlen == n && memcmp(in, back, n) == 0);
            free(z);
        }
        if (cases[i].bad != INT32_MIN) {
            uint8_t out[64];
            size_t clen;
            CHECK_EQ_INT(SM_ERR_RANGE, proto_compress(cases[i].codec, cases[i].bad, in, 10, out,
                                                      sizeof(out), &clen));
        }
    }
    free(in);
    free(back);
}

/* Too little output room is SM_ERR_SPACE with nothing written past it; codecs other than 1..4
 * and bounds that cannot be computed are refused. */
static void test_compress_limits(void) {
    size_t n = 100000;
    uint8_t *in = xmalloc(n);
    fill(in, n, 0);
    for (size_t c = 0; c < NCODECS; c++) {
        size_t bound = proto_compress_bound(codecs[c], n), clen;
        CHECK(bound >= n);
        uint8_t *out = xmalloc(bound);
        size_t small = n / 2;
        memset(out, 0x5A, bound);
        CHECK_EQ_INT(SM_ERR_SPACE, proto_compress(codecs[c], -1, in, n, out, small, &clen));
        size_t g = small;
        while (g < bound && out[g] == 0x5A)
            g++;
        CHECK_EQ_INT(bound, g);
        CHECK_EQ_INT(SM_ERR_SPACE, proto_compress(codecs[c], -1, in, n, NULL, 0, &clen));
        CHECK_EQ_INT(SM_OK, proto_compress(codecs[c], -1, NULL, 0, out, bound, &clen));
        CHECK_EQ_INT(0, proto_compress_bound(codecs[c], SIZE_MAX - 10));
        free(out);
    }
    uint8_t out[64];
    size_t clen, dlen;
    for (int codec = 0; codec < 8; codec += 5) { /* none, and 5: no such codec */
        CHECK_EQ_INT(0, proto_compress_bound(codec, 10));
        CHECK_EQ_INT(SM_ERR_VERSION, proto_compress(codec, -1, in, 10, out, sizeof(out), &clen));
        CHECK_EQ_INT(SM_ERR_VERSION, proto_decompress(codec, in, 10, out, sizeof(out), &dlen));
    }
    free(in);
}

/* ---------------------------------------------------------------- bombs */

#define BOMB_SIZE ((size_t)100 << 20)
#define BOMB_CAP ((size_t)1 << 20)
#define BOMB_AS_HEADROOM ((size_t)48 << 20)
static const uint8_t zero_chunk[65536];

typedef struct growbuf {
    uint8_t *p;
    size_t len, cap;
} growbuf_t;

/* Sizes the buffer once, so a big bomb leaves no freed doublings behind in the peak. */
static growbuf_t gb_sized(size_t cap) { return (growbuf_t){xmalloc(cap), 0, cap}; }

static void gb_put(growbuf_t *g, const void *src, size_t n) {
    if (n == 0) return;
    if (g->len + n > g->cap) {
        g->cap = (g->len + n) * 2;
        g->p = realloc(g->p, g->cap);
        if (!g->p) abort();
    }
    memcpy(g->p + g->len, src, n);
    g->len += n;
}

/* 100 MiB of zeros streamed through each codec from one 64 KiB chunk, so that neither the
 * test nor the code under test ever holds 100 MiB. */
static growbuf_t bomb_gzip(void) {
    growbuf_t g = {0};
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) abort();
    uint8_t out[65536];
    for (size_t done = 0; done < BOMB_SIZE; done += sizeof(zero_chunk)) {
        int last = done + sizeof(zero_chunk) >= BOMB_SIZE;
        z.next_in = (Bytef *)zero_chunk;
        z.avail_in = sizeof(zero_chunk);
        do {
            z.next_out = out;
            z.avail_out = sizeof(out);
            deflate(&z, last ? Z_FINISH : Z_NO_FLUSH);
            gb_put(&g, out, sizeof(out) - z.avail_out);
        } while (z.avail_out == 0 || (last && z.avail_in > 0));
    }
    deflateEnd(&z);
    return g;
}

static growbuf_t bomb_lz4(void) {
    growbuf_t g = {0};
    LZ4F_cctx *c;
    if (LZ4F_isError(LZ4F_createCompressionContext(&c, LZ4F_VERSION))) abort();
    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof(prefs));
    prefs.frameInfo.blockSizeID = LZ4F_max64KB;
    prefs.frameInfo.blockMode = LZ4F_blockIndependent;
    size_t cap = LZ4F_compressBound(sizeof(zero_chunk), &prefs) + LZ4F_HEADER_SIZE_MAX;
    uint8_t *out = xmalloc(cap);
    gb_put(&g, out, LZ4F_compressBegin(c, out, cap, &prefs));
    for (size_t done = 0; done < BOMB_SIZE; done += sizeof(zero_chunk))
        gb_put(&g, out, LZ4F_compressUpdate(c, out, cap, zero_chunk, sizeof(zero_chunk), NULL));
    gb_put(&g, out, LZ4F_compressEnd(c, out, cap, NULL));
    LZ4F_freeCompressionContext(c);
    free(out);
    return g;
}

/* pledged: state the content size in the frame (refused before decoding) or not (zstd-jni). */
static growbuf_t bomb_zstd(int pledged) {
    growbuf_t g = {0};
    ZSTD_CCtx *c = ZSTD_createCCtx();
    if (pledged) ZSTD_CCtx_setPledgedSrcSize(c, BOMB_SIZE);
    uint8_t out[65536];
    for (size_t done = 0; done < BOMB_SIZE; done += sizeof(zero_chunk)) {
        ZSTD_EndDirective end =
            done + sizeof(zero_chunk) >= BOMB_SIZE ? ZSTD_e_end : ZSTD_e_continue;
        ZSTD_inBuffer ib = {zero_chunk, sizeof(zero_chunk), 0};
        size_t left;
        do {
            ZSTD_outBuffer ob = {out, sizeof(out), 0};
            left = ZSTD_compressStream2(c, &ob, &ib, end);
            if (ZSTD_isError(left)) abort();
            gb_put(&g, out, ob.pos);
        } while (ib.pos < ib.size || (end == ZSTD_e_end && left > 0));
    }
    ZSTD_freeCCtx(c);
    return g;
}

/* xerial framing of one 32 KiB block of zeros repeated 3200 times (snappy cannot shrink
 * zeros more than ~21 times, so this one is ~5 MB). */
static growbuf_t bomb_snappy(void) {
    growbuf_t g = gb_sized(5 << 20);
    static const uint8_t hdr[16] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1};
    gb_put(&g, hdr, sizeof(hdr));
    static uint8_t block[4 + 32 + 32768 + 32768 / 6]; /* snappy wants its worst case */
    size_t n = sizeof(block) - 4;
    if (snappy_compress((const char *)zero_chunk, 32768, (char *)block + 4, &n) != SNAPPY_OK)
        abort();
    sm_writer_t w = sm_writer_make(block, 4);
    sm_wr_i32(&w, (int32_t)n);
    for (size_t done = 0; done < BOMB_SIZE; done += 32768)
        gb_put(&g, block, 4 + n);
    return g;
}

/* One raw snappy block of 100 MiB written by hand from the format: the length varint, a
 * 1-byte literal zero (tag 0x00), then 2-byte-offset copies at offset 1 (tag (len-1)<<2 | 2),
 * 64 bytes per 3 input bytes, the best snappy does (~5 MB). */
static growbuf_t bomb_snappy_raw(void) {
    growbuf_t g = gb_sized(5 << 20);
    uint8_t b[8];
    size_t k = 0;
    for (uint32_t v = (uint32_t)BOMB_SIZE; v; v >>= 7)
        b[k++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    b[k++] = 0x00;
    b[k++] = 0x00;
    gb_put(&g, b, k);
    for (size_t left = BOMB_SIZE - 1; left > 0;) {
        size_t n = left < 64 ? left : 64;
        uint8_t copy[3] = {(uint8_t)(((n - 1) << 2) | 2), 1, 0};
        gb_put(&g, copy, 3);
        left -= n;
    }
    return g;
}

/* Address space mapped now, in bytes. */
static size_t vm_now(void) {
    long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld", &pages) != 1) pages = 0;
        fclose(f);
    }
    return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

/* A batch of the given records area bytes, already compressed with codec. */
static size_t batch_with_area(uint8_t *out, size_t cap, int codec, int32_t count,
                              const uint8_t *area, size_t area_len);

/* 100 MiB of zeros in little (gzip ~100 KB, lz4 ~430 KB, zstd ~3 KB, snappy ~5 MB): each is
 * refused at a 1 MiB bound by all four entry points while the address space may grow by
 * 48 MiB at most (RLIMIT_AS), so a decoder that allocated anything near the 100 MiB, touched
 * or not, would fail (malloc returns NULL; under ASan the allocator aborts). */
static void test_bombs(void) {
    static const struct {
        const char *name;
        int codec;
        int kind;
        size_t max_len;
    } bombs[] = {
        {"gzip", PROTO_COMPRESSION_GZIP, 0, 200 << 10},
        {"lz4", PROTO_COMPRESSION_LZ4, 1, 500 << 10},
        {"zstd sized", PROTO_COMPRESSION_ZSTD, 2, 16 << 10},
        {"zstd unsized", PROTO_COMPRESSION_ZSTD, 3, 16 << 10},
        {"snappy xerial", PROTO_COMPRESSION_SNAPPY, 4, 6 << 20},
        {"snappy raw", PROTO_COMPRESSION_SNAPPY, 5, 5 << 20},
    };
    uint8_t *out = xmalloc(BOMB_CAP);
    for (size_t i = 0; i < sizeof(bombs) / sizeof(bombs[0]); i++) {
        growbuf_t g;
        switch (bombs[i].kind) {
        case 0: g = bomb_gzip(); break;
        case 1: g = bomb_lz4(); break;
        case 2: g = bomb_zstd(1); break;
        case 3: g = bomb_zstd(0); break;
        case 4: g = bomb_snappy(); break;
        default: g = bomb_snappy_raw(); break;
        }
        CHECK(g.len <= bombs[i].max_len);
        size_t cap = g.len + PROTO_BATCH_HEADER_SIZE, dlen = 0;
        uint8_t *batch = xmalloc(cap), *heap = NULL;
        size_t blen = batch_with_area(batch, cap, bombs[i].codec, 1, g.p, g.len);
        proto_batch_header_t h;
        CHECK_EQ_INT(SM_OK, proto_batch_validate(batch, blen, &h));

        struct rlimit saved, limited;
        REQUIRE(getrlimit(RLIMIT_AS, &saved) == 0);
        limited = saved;
        limited.rlim_cur = vm_now() + BOMB_AS_HEADROOM;
        if (saved.rlim_cur != RLIM_INFINITY && saved.rlim_cur < limited.rlim_cur)
            limited.rlim_cur = saved.rlim_cur;
        REQUIRE(setrlimit(RLIMIT_AS, &limited) == 0);
        int rc = proto_decompress(bombs[i].codec, g.p, g.len, out, BOMB_CAP, &dlen);
        if (rc != SM_ERR_RANGE) {
            t_failures++;
            fprintf(stderr, "%s bomb: expected SM_ERR_RANGE, got %d\n", bombs[i].name, rc);
        }
        CHECK_EQ_INT(SM_ERR_RANGE,
                     proto_decompress_alloc(bombs[i].codec, g.p, g.len, BOMB_CAP, &heap, &dlen));
        CHECK_EQ_INT(SM_ERR_RANGE, proto_batch_validate_compressed(batch, blen, BOMB_CAP));
        CHECK_EQ_INT(SM_ERR_RANGE,
                     proto_batch_validate_compressed_into(batch, blen, out, BOMB_CAP));
        REQUIRE(setrlimit(RLIMIT_AS, &saved) == 0);
        fprintf(stderr, "  bomb %s: %zu bytes\n", bombs[i].name, g.len);
        free(batch);
        free(g.p);
    }
    free(out);
}

/* ---------------------------------------------------------------- damage */

/* Every prefix of a stream fails cleanly (gzip, lz4 and zstd have end markers: always
 * SM_ERR_CORRUPT); at several cut points for large streams. */
static void test_truncation(void) {
    size_t sizes[] = {3000, 1 << 20};
    for (size_t c = 0; c < NCODECS; c++) {
        for (size_t s = 0; s < 2; s++) {
            size_t n = sizes[s], clen, dlen;
            uint8_t *in = xmalloc(n), *back = xmalloc(n);
            fill(in, n / 2, 1);
            fill(in + n / 2, n - n / 2, 0);
            uint8_t *z = compress_new(codecs[c], -1, in, n, &clen);
            size_t step = s == 0 ? 1 : clen / 37 + 1;
            for (size_t cut = 0; cut < clen; cut += step) {
                /* a copy of exactly cut bytes, so ASan sees any read past it */
                uint8_t *part = xmalloc(cut);
                memcpy(part, z, cut);
                int rc = proto_decompress(codecs[c], part, cut, back, n, &dlen);
                if (codecs[c] == PROTO_COMPRESSION_SNAPPY) {
                    /* xerial has no end marker: a cut between blocks is a shorter stream */
                    CHECK(rc == SM_ERR_CORRUPT || (rc == SM_OK && dlen < n && dlen % 32768 == 0));
                } else if (rc != SM_ERR_CORRUPT) {
                    t_failures++;
                    fprintf(stderr, "%s: %zu of %zu bytes gave %d\n",
                            proto_compression_name(codecs[c]), cut, clen, rc);
                }
                free(part);
            }
            free(z);
            free(in);
            free(back);
        }
    }
}

/* Random bytes, and random bytes behind a valid stream start, fail cleanly; those without the
 * codec's magic are never accepted. */
static void test_garbage(void) {
    uint8_t *junk = xmalloc(8192), out[16384];
    size_t dlen;
    for (size_t c = 0; c < NCODECS; c++) {
        uint8_t hello[256];
        size_t hlen;
        proto_compress(codecs[c], -1, (const uint8_t *)"hello hello hello", 17, hello,
                       sizeof(hello), &hlen);
        for (int i = 0; i < 300; i++) {
            size_t n = 1 + rng_next() % 8192;
            fill(junk, n, 0);
            int rc = proto_decompress(codecs[c], junk, n, out, sizeof(out), &dlen);
            if (codecs[c] == PROTO_COMPRESSION_SNAPPY)
                CHECK(rc_is_clean(rc)); /* a raw block has no magic */
            else
                CHECK_EQ_INT(SM_ERR_CORRUPT, rc);
            /* keep the stream's first bytes (magic, header) and randomise the rest */
            size_t keep = 1 + rng_next() % (hlen - 1);
            memcpy(junk, hello, keep);
            rc = proto_decompress(codecs[c], junk, n > keep ? n : keep, out, sizeof(out), &dlen);
            CHECK(rc_is_clean(rc));
            if (rc == SM_OK) CHECK(dlen <= sizeof(out));
        }
    }
    free(junk);
}

/* Seeded bit flips and byte changes in valid streams: every outcome is clean (gzip's CRC and
 * zstd/lz4 structure catch most; the rest decode to something within the bound). */
static void test_bit_flips(void) {
    size_t n = 20000;
    uint8_t *in = xmalloc(n), *out = xmalloc(n);
    fill(in, n, 1);
    for (size_t c = 0; c < NCODECS; c++) {
        size_t clen, dlen;
        uint8_t *z = compress_new(codecs[c], -1, in, n, &clen);
        uint8_t *d = xmalloc(clen);
        int ok = 0;
        for (int i = 0; i < 3000; i++) {
            memcpy(d, z, clen);
            int flips = 1 + (int)(rng_next() % 3);
            for (int f = 0; f < flips; f++) {
                size_t at = rng_next() % clen;
                if (rng_next() % 2)
                    d[at] ^= (uint8_t)(1u << (rng_next() % 8));
                else
                    d[at] = (uint8_t)rng_next();
            }
            int rc = proto_decompress(codecs[c], d, clen, out, rng_next() % 2 ? n : n / 2, &dlen);
            CHECK(rc_is_clean(rc));
            ok += rc == SM_OK;
            if (codecs[c] == PROTO_COMPRESSION_GZIP && rc == SM_OK)
                CHECK(dlen == n && memcmp(out, in, n) == 0); /* CRC32 and ISIZE checked */
        }
        fprintf(stderr, "  %s: %d of 3000 damaged streams still decoded\n",
                proto_compression_name(codecs[c]), ok);
        free(d);
        free(z);
    }
    free(in);
    free(out);
}

/* ---------------------------------------------------------------- framings */

static const uint8_t xerial_hdr[16] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0,
                                       0,    0,   0,   1,   0,   0,   0,   1};

/* Appends [int32 length][raw block of in] to g. */
static void xerial_block(growbuf_t *g, const uint8_t *in, size_t n) {
    size_t cap = snappy_max_compressed_length(n), clen = cap;
    uint8_t *b = xmalloc(4 + cap);
    if (snappy_compress((const char *)in, n, (char *)b + 4, &clen) != SNAPPY_OK) abort();
    sm_writer_t w = sm_writer_make(b, 4);
    sm_wr_i32(&w, (int32_t)clen);
    gb_put(g, b, 4 + clen);
    free(b);
}

/* Blocks of any size (snappy-java writes 32 KiB, other writers more), raw blocks, every
 * truncation of a multi-block stream, and malformed block lengths. */
static void test_snappy_framing(void) {
    static const size_t blocks[] = {1, 1000, 32768, 70000, 5};
    size_t total = 0, off = 0;
    for (size_t i = 0; i < 5; i++)
        total += blocks[i];
    uint8_t *in = xmalloc(total), *out = xmalloc(total);
    fill(in, total, 1);
    growbuf_t g = {0};
    gb_put(&g, xerial_hdr, sizeof(xerial_hdr));
    size_t ends[5], produced[5];
    for (size_t i = 0; i < 5; i++) {
        xerial_block(&g, in + off, blocks[i]);
        off += blocks[i];
        ends[i] = g.len;
        produced[i] = off;
    }
    size_t dlen = 0;
    CHECK_EQ_INT(SM_OK, proto_decompress(PROTO_COMPRESSION_SNAPPY, g.p, g.len, out, total, &dlen));
    CHECK(dlen == total && memcmp(in, out, total) == 0);
    CHECK_EQ_INT(SM_ERR_RANGE,
                 proto_decompress(PROTO_COMPRESSION_SNAPPY, g.p, g.len, out, total - 1, &dlen));
    /* every cut: OK exactly at the header's end and at block ends, with what they hold */
    for (size_t cut = 0; cut < g.len; cut++) {
        uint8_t *part = xmalloc(cut);
        memcpy(part, g.p, cut);
        int rc = proto_decompress(PROTO_COMPRESSION_SNAPPY, part, cut, out, total, &dlen);
        size_t expect = SIZE_MAX;
        if (cut == sizeof(xerial_hdr)) expect = 0;
        for (size_t i = 0; i < 5; i++)
            if (cut == ends[i]) expect = produced[i];
        if (expect == SIZE_MAX ? rc != SM_ERR_CORRUPT : (rc != SM_OK || dlen != expect)) {
            t_failures++;
            fprintf(stderr, "xerial cut at %zu: rc %d, %zu bytes\n", cut, rc, dlen);
        }
        free(part);
    }
    /* our own output: 32 KiB blocks behind a version 1 / compatible 1 header */
    size_t clen;
    uint8_t *z = compress_new(PROTO_COMPRESSION_SNAPPY, -1, in, 100000, &clen);
    CHECK_EQ_MEM(xerial_hdr, z, 16);
    sm_reader_t r = sm_reader_make(z + 16, clen - 16);
    int nblocks = 0;
    while (sm_rd_left(&r) > 0) {
        int32_t blen;
        const uint8_t *b;
        size_t ulen = 0;
        REQUIRE(sm_rd_i32(&r, &blen) == SM_OK && blen > 0 &&
                sm_rd_slice(&r, (size_t)blen, &b) == SM_OK);
        CHECK(snappy_uncompressed_length((const char *)b, (size_t)blen, &ulen) == SNAPPY_OK);
        CHECK_EQ_INT(nblocks < 3 ? 32768 : 100000 - 3 * 32768, ulen);
        nblocks++;
    }
    CHECK_EQ_INT(4, nblocks);
    free(z);
    /* one raw block of everything, as librdkafka writes */
    size_t rlen = snappy_max_compressed_length(total);
    uint8_t *raw = xmalloc(rlen);
    REQUIRE(snappy_compress((const char *)in, total, (char *)raw, &rlen) == SNAPPY_OK);
    CHECK_EQ_INT(SM_OK, proto_decompress(PROTO_COMPRESSION_SNAPPY, raw, rlen, out, total, &dlen));
    CHECK(dlen == total && memcmp(in, out, total) == 0);
    free(raw);
    /* malformed framing: zero, negative and overlong block lengths, a short header */
    static const int32_t bad_lengths[] = {0, -1, INT32_MIN, 1000};
    for (size_t i = 0; i < 4; i++) {
        uint8_t s[16 + 4 + 7];
        memcpy(s, xerial_hdr, 16);
        sm_writer_t w = sm_writer_make(s + 16, 4);
        sm_wr_i32(&w, bad_lengths[i]);
        memcpy(s + 20, raw_snappy, 7);
        CHECK_EQ_INT(SM_ERR_CORRUPT,
                     proto_decompress(PROTO_COMPRESSION_SNAPPY, s, sizeof(s), out, total, &dlen));
    }
    CHECK_EQ_INT(SM_ERR_CORRUPT,
                 proto_decompress(PROTO_COMPRESSION_SNAPPY, xerial_hdr, 12, out, total, &dlen));
    /* a raw block announcing more than snappy can expand its bytes to (100 MiB from 3 bytes)
     * is malformed, not too large; a torn xerial magic read as a raw block is one */
    static const uint8_t liar[] = {0x80, 0x80, 0x80, 0x32, 0x00, 0x00};
    CHECK_EQ_INT(SM_ERR_CORRUPT,
                 proto_decompress(PROTO_COMPRESSION_SNAPPY, liar, sizeof(liar), out, 10, &dlen));
    for (size_t cut = 1; cut < 8; cut++)
        CHECK_EQ_INT(SM_ERR_CORRUPT, proto_decompress(PROTO_COMPRESSION_SNAPPY, xerial_hdr, cut,
                                                      out, 1 << 20, &dlen));
    free(g.p);
    free(in);
    free(out);
}

/* An LZ4 frame with the given preferences, via the streaming API (so that several blocks
 * exist and LZ4F cannot quietly switch a one-block frame to independent blocks). */
static growbuf_t lz4_frame(const LZ4F_preferences_t *prefs, const uint8_t *in, size_t n) {
    growbuf_t g = {0};
    LZ4F_cctx *c;
    if (LZ4F_isError(LZ4F_createCompressionContext(&c, LZ4F_VERSION))) abort();
    size_t cap = LZ4F_compressBound(n, prefs) + LZ4F_HEADER_SIZE_MAX;
    uint8_t *out = xmalloc(cap);
    size_t k = LZ4F_compressBegin(c, out, cap, prefs);
    k += LZ4F_compressUpdate(c, out + k, cap - k, in, n, NULL);
    k += LZ4F_compressEnd(c, out + k, cap - k, NULL);
    gb_put(&g, out, k);
    free(out);
    LZ4F_freeCompressionContext(c);
    return g;
}

/* What Kafka's Lz4BlockInputStream accepts: independent blocks of any maximum size, block and
 * content checksums, a content size; what it refuses although LZ4F would decode it: dependent
 * blocks, a dictionary id, a skippable frame, a second frame. */
static void test_lz4_kafka_rules(void) {
    size_t n = 300000, dlen;
    uint8_t *in = xmalloc(n), *out = xmalloc(n + 10);
    fill(in, n, 1);
    size_t clen;
    uint8_t *z = compress_new(PROTO_COMPRESSION_LZ4, -1, in, n, &clen);
    CHECK_EQ_INT(0x60, z[4]); /* version 01, independent blocks, no checksums, no size */
    CHECK_EQ_INT(0x40, z[5]); /* 64 KiB blocks */
    free(z);

    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof(prefs));
    prefs.frameInfo.blockMode = LZ4F_blockIndependent;
    prefs.frameInfo.blockSizeID = LZ4F_max4MB;
    prefs.frameInfo.blockChecksumFlag = LZ4F_blockChecksumEnabled;
    prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
    prefs.frameInfo.contentSize = n;
    growbuf_t g = lz4_frame(&prefs, in, n);
    CHECK_EQ_INT(SM_OK, proto_decompress(PROTO_COMPRESSION_LZ4, g.p, g.len, out, n, &dlen));
    CHECK(dlen == n && memcmp(in, out, n) == 0);
    uint8_t *heap;
    CHECK_EQ_INT(SM_OK, proto_decompress_alloc(PROTO_COMPRESSION_LZ4, g.p, g.len, n, &heap, &dlen));
    CHECK(dlen == n && memcmp(in, heap, n) == 0);
    free(heap);
    CHECK_EQ_INT(SM_ERR_RANGE,
                 proto_decompress_alloc(PROTO_COMPRESSION_LZ4, g.p, g.len, n - 1, &heap, &dlen));
    /* a damaged content checksum */
    g.p[g.len - 1] ^= 1;
    CHECK_EQ_INT(SM_ERR_CORRUPT,
                 proto_decompress(PROTO_COMPRESSION_LZ4, g.p, g.len, out, n, &dlen));
    free(g.p);

    memset(&prefs, 0, sizeof(prefs));
    prefs.frameInfo.blockMode = LZ4F_blockLinked;
    prefs.frameInfo.blockSizeID = LZ4F_max64KB;
    g = lz4_frame(&prefs, in, n);
    CHECK_EQ_INT(0, g.p[4] & 0x20);
    CHECK_EQ_INT(SM_ERR_CORRUPT,
                 proto_decompress(PROTO_COMPRESSION_LZ4, g.p, g.len, out, n, &dlen));
    { /* LZ4F itself would decode it: the refusal is Kafka's rule, not damage */
        LZ4F_dctx *d;
        LZ4F_createDecompressionContext(&d, LZ4F_VERSION);
        size_t osz = n, isz = g.len;
        CHECK_EQ_INT(0, LZ4F_decompress(d, out, &osz, g.p, &isz, NULL));
        CHECK_EQ_INT(n, osz);
        LZ4F_freeDecompressionContext(d);
    }
    free(g.p);

    memset(&prefs, 0, sizeof(prefs));
    prefs.frameInfo.blockMode = LZ4F_blockIndependent;
    prefs.frameInfo.dictID = 7;
    g = lz4_frame(&prefs, in, 1000);
    CHECK_EQ_INT(SM_ERR_CORRUPT,
                 proto_decompress(PROTO_COMPRESSION_LZ4, g.p, g.len, out, n, &dlen));
    free(g.p);

    /* two frames, and a skippable frame before one */
    growbuf_t two = {0};
    gb_put(&two, java_lz4, sizeof(java_lz4));
    gb_put(&two, java_lz4, sizeof(java_lz4));
    CHECK_EQ_INT(SM_ERR_CORRUPT,
                 proto_decompress(PROTO_COMPRESSION_LZ4, two.p, two.len, out, n, &dlen));
    free(two.p);
    static const uint8_t skippable[] = {0x50, 0x2a, 0x4d, 0x18, 0x02, 0, 0, 0, 0xab, 0xcd};
    growbuf_t sk = {0};
    gb_put(&sk, skippable, sizeof(skippable));
    gb_put(&sk, java_lz4, sizeof(java_lz4));
    CHECK_EQ_INT(SM_ERR_CORRUPT,
                 proto_decompress(PROTO_COMPRESSION_LZ4, sk.p, sk.len, out, n, &dlen));
    free(sk.p);
    /* a damaged header checksum (Kafka checks it for magic v2) */
    uint8_t bad[sizeof(java_lz4)];
    memcpy(bad, java_lz4, sizeof(bad));
    bad[6] ^= 0x10;
    CHECK_EQ_INT(SM_ERR_CORRUPT,
                 proto_decompress(PROTO_COMPRESSION_LZ4, bad, sizeof(bad), out, n, &dlen));
    free(in);
    free(out);
}

/* A zstd frame streamed with the given window log and no content size. */
static growbuf_t zstd_frame_window(int window_log, const uint8_t *in, size_t n) {
    growbuf_t g = {0};
    ZSTD_CCtx *c = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, window_log);
    size_t cap = ZSTD_compressBound(n) + 64;
    uint8_t *out = xmalloc(cap);
    ZSTD_outBuffer ob = {out, cap, 0};
    ZSTD_inBuffer ib = {in, n, 0};
    ZSTD_compressStream2(c, &ob, &ib, ZSTD_e_continue); /* size unknown when the frame starts */
    while (ZSTD_compressStream2(c, &ob, &ib, ZSTD_e_end) != 0) {
    }
    gb_put(&g, out, ob.pos);
    free(out);
    ZSTD_freeCCtx(c);
    return g;
}

/* Concatenated and skippable frames, frames without a content size grown into, damaged
 * checksums, and the window limit of Kafka's zstd-jni reader (2^27). */
static void test_zstd_frames(void) {
    uint8_t out[64];
    size_t dlen;
    growbuf_t g = {0};
    static const uint8_t skippable[] = {0x5e, 0x2a, 0x4d, 0x18, 0x03, 0, 0, 0, 1, 2, 3};
    gb_put(&g, cli_zstd, sizeof(cli_zstd));
    gb_put(&g, skippable, sizeof(skippable));
    gb_put(&g, java_zstd, sizeof(java_zstd));
    gb_put(&g, cli_zstd_sized, sizeof(cli_zstd_sized));
    CHECK_EQ_INT(SM_OK, proto_decompress(PROTO_COMPRESSION_ZSTD, g.p, g.len, out, 15, &dlen));
    CHECK(dlen == 15 && memcmp(out, "hellohellohello", 15) == 0);
    CHECK_EQ_INT(SM_ERR_RANGE,
                 proto_decompress(PROTO_COMPRESSION_ZSTD, g.p, g.len, out, 14, &dlen));
    gb_put(&g, "x", 1); /* trailing byte */
    CHECK_EQ_INT(SM_ERR_CORRUPT,
                 proto_decompress(PROTO_COMPRESSION_ZSTD, g.p, g.len, out, 64, &dlen));
    free(g.p);

    uint8_t bad[sizeof(cli_zstd)];
    memcpy(bad, cli_zstd, sizeof(bad));
    bad[sizeof(bad) - 1] ^= 1; /* content checksum */
    CHECK_EQ_INT(SM_ERR_CORRUPT,
                 proto_decompress(PROTO_COMPRESSION_ZSTD, bad, sizeof(bad), out, 64, &dlen));

    size_t n = 3 << 20;
    uint8_t *in = xmalloc(n), *big = xmalloc(n);
    fill(in, n, 1);
    g = zstd_frame_window(27, in, n);
    CHECK_EQ_INT(SM_OK, proto_decompress(PROTO_COMPRESSION_ZSTD, g.p, g.len, big, n, &dlen));
    CHECK(dlen == n && memcmp(in, big, n) == 0);
    uint8_t *heap;
    /* no content size: the growing buffer starts near 8x the input and doubles */
    CHECK_EQ_INT(SM_OK,
                 proto_decompress_alloc(PROTO_COMPRESSION_ZSTD, g.p, g.len, n, &heap, &dlen));
    CHECK(dlen == n && memcmp(in, heap, n) == 0);
    free(heap);
    CHECK_EQ_INT(SM_ERR_RANGE,
                 proto_decompress_alloc(PROTO_COMPRESSION_ZSTD, g.p, g.len, n - 1, &heap, &dlen));
    free(g.p);
    g = zstd_frame_window(28, in, 1000);
    CHECK_EQ_INT(SM_ERR_CORRUPT,
                 proto_decompress(PROTO_COMPRESSION_ZSTD, g.p, g.len, big, n, &dlen));
    { /* libzstd's one-shot decoder would take it: the refusal is the window rule */
        size_t r = ZSTD_decompress(big, n, g.p, g.len);
        CHECK(!ZSTD_isError(r) && r == 1000);
    }
    free(g.p);
    free(in);
    free(big);
}

/* gzip members only: concatenated members are one stream; a zlib or raw deflate stream (which
 * no Java consumer could read), bytes after the last member and damaged CRC or ISIZE are not. */
static void test_gzip_members(void) {
    uint8_t out[64];
    size_t dlen;
    growbuf_t g = {0};
    gb_put(&g, java_gzip, sizeof(java_gzip));
    gb_put(&g, cli_gzip, sizeof(cli_gzip));
    CHECK_EQ_INT(SM_OK, proto_decompress(PROTO_COMPRESSION_GZIP, g.p, g.len, out, 10, &dlen));
    CHECK(dlen == 10 && memcmp(out, "hellohello", 10) == 0);
    CHECK_EQ_INT(SM_ERR_RANGE, proto_decompress(PROTO_COMPRESSION_GZIP, g.p, g.len, out, 9, &dlen));
    gb_put(&g, "\0", 1);
    CHECK_EQ_INT(SM_ERR_CORRUPT,
                 proto_decompress(PROTO_COMPRESSION_GZIP, g.p, g.len, out, 64, &dlen));
    free(g.p);

    uint8_t zl[64];
    uLongf zlen = sizeof(zl);
    REQUIRE(compress2(zl, &zlen, (const Bytef *)"hello", 5, 6) == Z_OK);
    CHECK_EQ_INT(SM_ERR_CORRUPT,
                 proto_decompress(PROTO_COMPRESSION_GZIP, zl, zlen, out, 64, &dlen));
    CHECK_EQ_INT(SM_ERR_CORRUPT,
                 proto_decompress(PROTO_COMPRESSION_GZIP, zl + 2, zlen - 6, out, 64, &dlen));

    for (size_t at = sizeof(java_gzip) - 8; at < sizeof(java_gzip); at++) {
        uint8_t bad[sizeof(java_gzip)];
        memcpy(bad, java_gzip, sizeof(bad));
        bad[at] ^= 0x01;
        CHECK_EQ_INT(SM_ERR_CORRUPT,
                     proto_decompress(PROTO_COMPRESSION_GZIP, bad, sizeof(bad), out, 64, &dlen));
    }
}

/* Empty input is malformed for every codec, whatever the bound. */
static void test_empty_input(void) {
    uint8_t out[8], *heap;
    size_t dlen;
    for (size_t c = 0; c < NCODECS; c++) {
        CHECK_EQ_INT(SM_ERR_CORRUPT, proto_decompress(codecs[c], out, 0, out, sizeof(out), &dlen));
        CHECK_EQ_INT(SM_ERR_CORRUPT, proto_decompress(codecs[c], NULL, 0, NULL, 0, &dlen));
        CHECK_EQ_INT(SM_ERR_CORRUPT, proto_decompress_alloc(codecs[c], NULL, 0, 100, &heap, &dlen));
    }
}

/* ---------------------------------------------------------------- batches */

static void put_i32_at(uint8_t *p, int32_t v) {
    sm_writer_t w = sm_writer_make(p, 4);
    sm_wr_i32(&w, v);
}

static size_t batch_with_area(uint8_t *out, size_t cap, int codec, int32_t count,
                              const uint8_t *area, size_t area_len) {
    uint8_t plain[PROTO_BATCH_HEADER_SIZE];
    proto_batch_builder_t b;
    proto_batch_builder_opts_t o = {0, 0, 0, 1000, -1, -1, -1};
    proto_batch_builder_init(&b, plain, sizeof(plain), &o);
    size_t plen;
    if (proto_batch_builder_finish(&b, &plen) != SM_OK || cap < PROTO_BATCH_HEADER_SIZE + area_len)
        abort();
    memcpy(out, plain, PROTO_BATCH_HEADER_SIZE);
    memcpy(out + PROTO_BATCH_HEADER_SIZE, area, area_len);
    size_t len = PROTO_BATCH_HEADER_SIZE + area_len;
    put_i32_at(out + PROTO_BATCH_OFF_LENGTH, (int32_t)(len - PROTO_BATCH_LOG_OVERHEAD));
    out[PROTO_BATCH_OFF_ATTRIBUTES + 1] = (uint8_t)codec;
    put_i32_at(out + PROTO_BATCH_OFF_LAST_OFFSET_DELTA, count ? count - 1 : 0);
    put_i32_at(out + PROTO_BATCH_OFF_RECORDS_COUNT, count);
    proto_batch_update_crc(out, len);
    return len;
}

/* An uncompressed batch of 200 records: keys, null keys, values of many sizes, headers;
 * timestamps all at the base so each record's offset delta is its 4th byte when short. */
static size_t build_plain(uint8_t *buf, size_t cap, int32_t count) {
    proto_batch_builder_t b;
    proto_batch_builder_opts_t o = {0, 0, 0, 1000, -1, -1, -1};
    proto_batch_builder_init(&b, buf, cap, &o);
    static uint8_t payload[3000];
    fill(payload, sizeof(payload), 1);
    proto_record_header_t hdr[2] = {{sm_str_from("trace"), {payload, 8}},
                                    {sm_str_from("null"), SM_BYTES_NULL}};
    for (int32_t i = 0; i < count; i++) {
        sm_bytes_t key = i % 3 == 0 ? SM_BYTES_NULL : (sm_bytes_t){payload + i, 1 + i % 7};
        sm_bytes_t val = {payload + i % 100, i % 10 == 9 ? 2000 : i % 40};
        proto_batch_builder_add(&b, 1000, key, val, hdr, i % 3 == 1 ? 2 : 0);
    }
    size_t len = 0;
    if (proto_batch_builder_finish(&b, &len) != SM_OK) abort();
    return len;
}

/* The batch test of the task: records compressed into a new batch with the codec attribute
 * and a recomputed CRC pass proto_batch_validate and the records check, with the exact bound,
 * with a scratch buffer, and no longer once the records, count or last offset delta lie. */
static void test_compressed_batch(void) {
    enum { COUNT = 200 };
    static uint8_t plain[1 << 18], batch[1 << 18], area[1 << 18];
    size_t plen = build_plain(plain, sizeof(plain), COUNT);
    size_t alen = plen - PROTO_BATCH_HEADER_SIZE;
    proto_batch_header_t h;
    REQUIRE(proto_batch_validate(plain, plen, &h) == SM_OK);
    CHECK_EQ_INT(SM_OK, proto_batch_validate_compressed(plain, plen, 0)); /* read in place */
    for (size_t c = 0; c < NCODECS; c++) {
        int codec = codecs[c];
        size_t clen = 0;
        REQUIRE(proto_compress(codec, -1, plain + PROTO_BATCH_HEADER_SIZE, alen, area, sizeof(area),
                               &clen) == SM_OK);
        size_t len = batch_with_area(batch, sizeof(batch), codec, COUNT, area, clen);
        CHECK(len < plen);
        CHECK_EQ_INT(SM_OK, proto_batch_validate(batch, len, &h));
        CHECK_EQ_INT(codec, proto_batch_compression(&h));
        CHECK_EQ_INT(SM_OK, proto_batch_validate_compressed(batch, len, alen));
        CHECK_EQ_INT(SM_ERR_RANGE, proto_batch_validate_compressed(batch, len, alen - 1));
        uint8_t *scratch = xmalloc(alen);
        CHECK_EQ_INT(SM_OK, proto_batch_validate_compressed_into(batch, len, scratch, alen));
        CHECK_EQ_INT(SM_ERR_RANGE,
                     proto_batch_validate_compressed_into(batch, len, scratch, alen - 1));
        CHECK_EQ_INT(SM_ERR_RANGE, proto_batch_validate_compressed_into(batch, len, NULL, 0));
        free(scratch);
        /* the whole batch length must match */
        CHECK_EQ_INT(SM_ERR_CORRUPT, proto_batch_validate_compressed(batch, len - 1, 1 << 20));
        /* one record more or fewer than the records hold */
        for (int32_t d = -1; d <= 1; d += 2) {
            len = batch_with_area(batch, sizeof(batch), codec, COUNT + d, area, clen);
            CHECK_EQ_INT(SM_ERR_CORRUPT, proto_batch_validate_compressed(batch, len, 1 << 20));
        }
        /* last offset delta not count - 1 */
        len = batch_with_area(batch, sizeof(batch), codec, COUNT, area, clen);
        put_i32_at(batch + PROTO_BATCH_OFF_LAST_OFFSET_DELTA, COUNT);
        proto_batch_update_crc(batch, len);
        CHECK_EQ_INT(SM_ERR_CORRUPT, proto_batch_validate_compressed(batch, len, 1 << 20));
        /* an unknown codec */
        len = batch_with_area(batch, sizeof(batch), 5, COUNT, area, clen);
        CHECK_EQ_INT(SM_ERR_VERSION, proto_batch_validate_compressed(batch, len, 1 << 20));
        /* garbage where the compressed records belong */
        uint8_t junk[500];
        fill(junk, sizeof(junk), 0);
        len = batch_with_area(batch, sizeof(batch), codec, COUNT, junk, sizeof(junk));
        CHECK(proto_batch_validate_compressed(batch, len, 1 << 20) == SM_ERR_CORRUPT);
    }
    /* records that lie inside a well-formed stream: an offset delta out of order (record 1
     * says 2), bytes left after the last record */
    static uint8_t bad[1 << 18];
    memcpy(bad, plain + PROTO_BATCH_HEADER_SIZE, alen);
    proto_record_iter_t it;
    proto_record_t rec;
    proto_record_iter_init(&it, bad, alen, COUNT);
    REQUIRE(proto_record_iter_next(&it, &rec) == 1);
    uint8_t *second = (uint8_t *)it.p;
    REQUIRE(second[1] == 0 && second[2] == 0 && second[3] == 2); /* attrs, ts delta, delta 1 */
    second[3] = 4;
    memset(bad + alen, 0, 3);
    for (int variant = 0; variant < 2; variant++) {
        if (variant == 1) second[3] = 2; /* restored; three zero bytes appended instead */
        size_t blen = alen + (variant == 1 ? 3 : 0);
        for (size_t c = 0; c < NCODECS; c++) {
            size_t clen = 0;
            REQUIRE(proto_compress(codecs[c], -1, bad, blen, area, sizeof(area), &clen) == SM_OK);
            size_t len = batch_with_area(batch, sizeof(batch), codecs[c], COUNT, area, clen);
            CHECK_EQ_INT(SM_OK, proto_batch_validate(batch, len, &h));
            CHECK_EQ_INT(SM_ERR_CORRUPT, proto_batch_validate_compressed(batch, len, 1 << 20));
        }
    }
    /* a compressed batch of zero records decodes to nothing and passes here (the producer
     * path refuses empty batches itself) */
    for (size_t c = 0; c < NCODECS; c++) {
        size_t clen = 0;
        REQUIRE(proto_compress(codecs[c], -1, NULL, 0, area, sizeof(area), &clen) == SM_OK);
        size_t len = batch_with_area(batch, sizeof(batch), codecs[c], 0, area, clen);
        CHECK_EQ_INT(SM_OK, proto_batch_validate_compressed(batch, len, 0));
    }
}

int main(void) {
    rng_state = SEED;
    fprintf(stderr, "seed %#x\n", SEED);
    RUN(test_bombs);
    RUN(test_names);
    RUN(test_known_vectors);
    RUN(test_compress_pinned);
    RUN(test_round_trips);
    RUN(test_levels);
    RUN(test_compress_limits);
    RUN(test_truncation);
    RUN(test_garbage);
    RUN(test_bit_flips);
    RUN(test_snappy_framing);
    RUN(test_lz4_kafka_rules);
    RUN(test_zstd_frames);
    RUN(test_gzip_members);
    RUN(test_empty_input);
    RUN(test_compressed_batch);
    return t_summary("compress");
}
