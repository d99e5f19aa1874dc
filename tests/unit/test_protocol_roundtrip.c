/*
 * Round trip of every generated codec at every valid version: fill a message
 * with pseudo-random values, check size() == bytes encoded, decode, compare the
 * fields of that version, re-encode byte-identically, and check that every
 * strict prefix of the encoding fails to decode cleanly.
 */
#include "protocol/gen/api.h"
#include "protocol/gen_testing.h"
#include "test.h"

const char *pt_last_failure;

#define ROUNDS 12

static long total_cases;

static void roundtrip_one(const proto_msg_desc_t *d, const pt_msg_fns_t *f, int16_t v,
                          uint64_t seed, int check_prefixes) {
    sm_arena_t a, b;
    sm_arena_init(&a, 0);
    sm_arena_init(&b, 0);
    pt_rng_t g = {seed};
    void *m = sm_arena_alloc(&a, d->struct_size);
    void *back = sm_arena_alloc(&b, d->struct_size);
    f->fill(&g, &a, v, m);
    size_t n = d->size(v, m);
    uint8_t *buf = malloc(n + 1);
    sm_writer_t w = sm_writer_make(buf, n);
    int rc = d->encode(&w, v, m);
    if (rc != SM_OK || (size_t)(w.p - buf) != n) {
        t_failures++;
        fprintf(stderr, "%s v%d seed %llu: encode rc=%d wrote %zu of size %zu\n", d->name, v,
                (unsigned long long)seed, rc, (size_t)(w.p - buf), n);
        goto out;
    }
    sm_reader_t r = sm_reader_make(buf, n);
    rc = d->decode(&r, &b, v, back);
    if (rc != SM_OK || r.p != r.end) {
        t_failures++;
        fprintf(stderr, "%s v%d seed %llu: decode rc=%d, %zu bytes left\n", d->name, v,
                (unsigned long long)seed, rc, sm_rd_left(&r));
        goto out;
    }
    pt_last_failure = "";
    if (!f->eq(v, m, back)) {
        t_failures++;
        fprintf(stderr, "%s v%d seed %llu: decoded value differs in %s\n", d->name, v,
                (unsigned long long)seed, pt_last_failure);
        goto out;
    }
    uint8_t *again = malloc(n + 1);
    sm_writer_t w2 = sm_writer_make(again, n);
    if (d->size(v, back) != n || d->encode(&w2, v, back) != SM_OK || memcmp(buf, again, n)) {
        t_failures++;
        fprintf(stderr, "%s v%d seed %llu: re-encoding differs\n", d->name, v,
                (unsigned long long)seed);
    }
    free(again);
    if (check_prefixes) {
        for (size_t cut = 0; cut < n; cut++) {
            sm_arena_t c;
            sm_arena_init(&c, 1 << 20);
            void *tmp = sm_arena_alloc(&c, d->struct_size);
            uint8_t *copy = malloc(cut ? cut : 1);
            memcpy(copy, buf, cut);
            sm_reader_t pr = sm_reader_make(copy, cut);
            int prc = d->decode(&pr, &c, v, tmp);
            if (prc == SM_OK) {
                t_failures++;
                fprintf(stderr, "%s v%d: prefix of %zu/%zu bytes decoded\n", d->name, v, cut, n);
            }
            free(copy);
            sm_arena_free(&c);
        }
    }
    t_checks++;
    total_cases++;
out:
    free(buf);
    sm_arena_free(&a);
    sm_arena_free(&b);
}

static void test_every_message_every_version(void) {
    REQUIRE(proto_msgs_count == pt_msg_fns_count);
    for (size_t i = 0; i < proto_msgs_count; i++) {
        const proto_msg_desc_t *d = &proto_msgs[i];
        const pt_msg_fns_t *f = &pt_msg_fns[i];
        CHECK(strcmp(d->name, f->name) == 0);
        for (int v = d->min_version; v <= d->max_version; v++)
            for (uint64_t s = 1; s <= ROUNDS; s++)
                roundtrip_one(d, f, (int16_t)v, s * 7919 + (uint64_t)v, s <= 2);
    }
    fprintf(stderr, "round trips: %ld\n", total_cases);
}

static void test_every_api_key_has_codecs(void) {
    int apis = 0;
    for (size_t k = 0; k < proto_apis_count; k++) {
        const proto_api_desc_t *api = proto_api_lookup((int16_t)k);
        if (!api) continue;
        apis++;
        CHECK(api->request && api->response);
        CHECK_EQ_INT(api->request->max_version, api->response->max_version);
    }
    CHECK(apis >= 80);
    CHECK(proto_api_lookup(-1) == NULL);
    CHECK(proto_api_lookup(30000) == NULL);
}

/* eq() must see a difference between two independently filled messages, or
 * the round trip above would prove nothing. Messages without fields are the
 * only exception. */
static void test_eq_detects_differences(void) {
    int compared = 0, equal = 0;
    size_t bytes = 0;
    for (size_t i = 0; i < proto_msgs_count; i++) {
        const proto_msg_desc_t *d = &proto_msgs[i];
        for (int v = d->min_version; v <= d->max_version; v++) {
            sm_arena_t a;
            sm_arena_init(&a, 0);
            pt_rng_t g1 = {1000 + (uint64_t)v}, g2 = {2000 + (uint64_t)v};
            void *x = sm_arena_alloc(&a, d->struct_size), *y = sm_arena_alloc(&a, d->struct_size);
            pt_msg_fns[i].fill(&g1, &a, (int16_t)v, x);
            pt_msg_fns[i].fill(&g2, &a, (int16_t)v, y);
            bytes += d->size((int16_t)v, x);
            compared++;
            if (pt_msg_fns[i].eq((int16_t)v, x, y) && d->size((int16_t)v, x) > 8) {
                equal++;
                fprintf(stderr, "%s v%d: different fills compare equal\n", d->name, v);
            }
            sm_arena_free(&a);
        }
    }
    fprintf(stderr, "compared %d, mean encoded size %zu bytes\n", compared, bytes / (size_t)compared);
    CHECK_EQ_INT(0, equal);
    CHECK(bytes / (size_t)compared > 20);
}

static void test_huge_count_fails_fast(void) {
    /* Metadata v4 request: topics array count 2^31-1 in a tiny frame must fail
     * without allocating. */
    uint8_t frame[40] = {0x7f, 0xff, 0xff, 0xff};
    const proto_api_desc_t *api = proto_api_lookup(3);
    REQUIRE(api);
    sm_arena_t a;
    sm_arena_init(&a, 1 << 16);
    void *m = sm_arena_alloc(&a, api->request->struct_size);
    sm_reader_t r = sm_reader_make(frame, sizeof(frame));
    CHECK(api->request->decode(&r, &a, 4, m) != SM_OK);
    CHECK(a.used < 4096);
    sm_arena_free(&a);
    /* The same with a compact array (Metadata v9). */
    uint8_t frame2[40] = {0xff, 0xff, 0xff, 0xff, 0x07};
    sm_arena_init(&a, 1 << 16);
    m = sm_arena_alloc(&a, api->request->struct_size);
    r = sm_reader_make(frame2, sizeof(frame2));
    CHECK(api->request->decode(&r, &a, 9, m) != SM_OK);
    CHECK(a.used < 4096);
    sm_arena_free(&a);
}

int main(void) {
    RUN(test_every_api_key_has_codecs);
    RUN(test_huge_count_fails_fast);
    RUN(test_eq_detects_differences);
    RUN(test_every_message_every_version);
    return t_summary("protocol_roundtrip");
}
