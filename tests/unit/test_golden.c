/*
 * Golden vectors: request and response frames that real clients (kcat,
 * confluent-kafka, the Java client) exchanged with Apache Kafka 4.4, captured
 * by tools/golden/capture.sh into tests/vectors/<scenario>/. Every frame must
 * decode with the generated codecs to the header the manifest names,
 * re-encode byte for byte, and carry sensible content (valid record batches
 * in Produce requests and Fetch responses, a broker in Metadata responses).
 */
#include <dirent.h>
#include <stdio.h>

#include "base/fileio.h"
#include "protocol/compress.h"
#include "protocol/gen/api.h"
#include "protocol/records.h"
#include "protocol/request.h"
#include "test.h"

static int frames, requests, responses, batches, records_seen, beyond_schema;

static void check_records_blob(const char *file, sm_bytes_t rec, bool allow_partial) {
    if (rec.len <= 0) return;
    proto_batch_iter_t it;
    proto_batch_iter_init(&it, rec.ptr, (size_t)rec.len);
    const uint8_t *b;
    size_t len;
    proto_batch_header_t h;
    int rc;
    while ((rc = proto_batch_iter_next(&it, &b, &len, &h)) == 1) {
        int v = proto_batch_validate(b, len, &h);
        if (v == SM_OK && proto_batch_compression(&h)) v = proto_batch_validate_compressed(b, len, 1 << 24);
        if (v != SM_OK) {
            t_failures++;
            fprintf(stderr, "%s: a record batch does not validate (%d)\n", file, v);
        }
        batches++;
        records_seen += h.records_count;
    }
    if (rc < 0 && !(allow_partial && rc == SM_ERR_PARSE)) {
        t_failures++;
        fprintf(stderr, "%s: records end in a damaged batch (%d)\n", file, rc);
    }
}

static void semantic_checks(const char *file, bool is_req, int key, void *body) {
    if (is_req && key == 0) {
        proto_produce_request_t *p = body;
        for (int32_t i = 0; i < p->topic_data.n; i++)
            for (int32_t k = 0; k < p->topic_data.v[i].partition_data.n; k++)
                check_records_blob(file, p->topic_data.v[i].partition_data.v[k].records, false);
    } else if (!is_req && key == 1) {
        proto_fetch_response_t *f = body;
        for (int32_t i = 0; i < f->responses.n; i++)
            for (int32_t k = 0; k < f->responses.v[i].partitions.n; k++)
                check_records_blob(file, f->responses.v[i].partitions.v[k].records, true);
    } else if (!is_req && key == 3) {
        proto_metadata_response_t *m = body;
        CHECK(m->brokers.n >= 1 && m->brokers.v[0].node_id == 1);
    } else if (!is_req && key == 18) {
        proto_api_versions_response_t *a = body;
        CHECK_EQ_INT(0, a->error_code);
        CHECK(a->api_keys.n > 10);
        for (int32_t i = 0; i < a->api_keys.n; i++) {
            const proto_api_desc_t *api = proto_api_lookup(a->api_keys.v[i].api_key);
            CHECK(api && a->api_keys.v[i].max_version <= api->request->max_version);
        }
    }
}

static void check_frame(const char *dir, const char *file, bool is_req, int key, int version, int corr) {
    char path[2048];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    uint8_t *data;
    size_t len;
    if (fio_read_file(path, &data, &len, 16 << 20)) {
        t_failures++;
        fprintf(stderr, "%s: cannot read\n", path);
        return;
    }
    frames++;
    sm_arena_t a;
    sm_arena_init(&a, 0);
    const proto_api_desc_t *api = proto_api_lookup((int16_t)key);
    REQUIRE(api);
    const proto_msg_desc_t *m = is_req ? api->request : api->response;
    if (version > m->max_version) {
        /* Newer than our schemas (e.g. the Java client's first ApiVersions):
         * the header still parses and the version is refused cleanly. */
        if (is_req) {
            proto_request_t req;
            CHECK_EQ_INT(SM_ERR_VERSION, proto_request_parse_header(data, len, &a, &req));
            CHECK_EQ_INT(corr, req.header.correlation_id);
        }
        beyond_schema++;
        goto out;
    }
    size_t hlen;
    void *body = sm_arena_alloc(&a, m->struct_size);
    sm_reader_t r;
    if (is_req) {
        proto_request_t req;
        int rc = proto_request_parse_header(data, len, &a, &req);
        CHECK_EQ_INT(SM_OK, rc);
        CHECK_EQ_INT(key, req.header.request_api_key);
        CHECK_EQ_INT(version, req.header.request_api_version);
        CHECK_EQ_INT(corr, req.header.correlation_id);
        hlen = len - req.body_len;
        /* The header re-encodes byte for byte too. */
        uint8_t hbuf[512];
        sm_writer_t hw = sm_writer_make(hbuf, sizeof(hbuf));
        CHECK_EQ_INT(SM_OK, proto_request_header_encode(&hw, req.header_version, &req.header));
        CHECK((size_t)(hw.p - hbuf) == hlen && memcmp(hbuf, data, hlen) == 0);
        requests++;
    } else {
        int hv = proto_response_header_version((int16_t)key, (int16_t)version);
        sm_reader_t hr = sm_reader_make(data, len);
        int32_t c = 0;
        CHECK_EQ_INT(SM_OK, sm_rd_i32(&hr, &c));
        CHECK_EQ_INT(corr, c);
        if (hv >= 1) {
            uint32_t ntags;
            CHECK_EQ_INT(SM_OK, sm_rd_uvarint(&hr, &ntags));
        }
        hlen = (size_t)(hr.p - data);
        responses++;
    }
    r = sm_reader_make(data + hlen, len - hlen);
    int rc = m->decode(&r, &a, (int16_t)version, body);
    if (rc != SM_OK) {
        t_failures++;
        fprintf(stderr, "%s: decode failed (%d) at byte %zu of %zu\n", path, rc,
                (size_t)(r.p - data), len);
        goto out;
    }
    size_t body_len = (size_t)(r.p - (data + hlen));
    size_t trailing = sm_rd_left(&r);
    if (trailing) {
        /* librdkafka's all-topics Metadata request carries 3 extra bytes that
         * Kafka ignores; nothing else may. */
        CHECK(is_req && key == 3 && trailing == 3);
    }
    size_t n = m->size((int16_t)version, body);
    CHECK_EQ_INT(body_len, n);
    uint8_t *out = malloc(n ? n : 1);
    sm_writer_t w = sm_writer_make(out, n);
    CHECK_EQ_INT(SM_OK, m->encode(&w, (int16_t)version, body));
    if ((size_t)(w.p - out) != body_len || memcmp(out, data + hlen, body_len) != 0) {
        t_failures++;
        fprintf(stderr, "%s: re-encoding differs\n", path);
    }
    t_checks++;
    free(out);
    semantic_checks(path, is_req, key, body);
out:
    sm_arena_free(&a);
    free(data);
}

static void test_vectors(void) {
    char root[1024];
    snprintf(root, sizeof(root), "%s/tests/vectors", SAMSA_SOURCE_DIR);
    DIR *d = opendir(root);
    REQUIRE(d);
    struct dirent *e;
    int scenarios = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char dir[1300], mpath[1400];
        snprintf(dir, sizeof(dir), "%s/%s", root, e->d_name);
        snprintf(mpath, sizeof(mpath), "%s/manifest.txt", dir);
        FILE *f = fopen(mpath, "r");
        if (!f) continue;
        scenarios++;
        char file[256], kind[16];
        int key, version, corr;
        while (fscanf(f, "%255s %15s %d %d %d", file, kind, &key, &version, &corr) == 5)
            check_frame(dir, file, strcmp(kind, "request") == 0, key, version, corr);
        fclose(f);
    }
    closedir(d);
    fprintf(stderr, "golden: %d scenarios, %d frames (%d requests, %d responses, %d beyond our "
                    "schemas), %d record batches with %d records\n",
            scenarios, frames, requests, responses, beyond_schema, batches, records_seen);
    CHECK(scenarios >= 3);
    CHECK(batches > 0 && records_seen > 0);
}

int main(void) {
    RUN(test_vectors);
    return t_summary("golden");
}
