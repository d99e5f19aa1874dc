/*
 * libFuzzer target: arbitrary bytes as a request frame (the bytes after the
 * size prefix), so the header selects any (api key, version). A frame that
 * parses must re-encode to exactly size() bytes and decode again.
 */
#include <stdlib.h>

#include "protocol/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sm_arena_t a;
    /* The broker bounds a request's arena by a multiple of its frame size. */
    sm_arena_init(&a, 64 * size + 65536);
    proto_request_t req;
    if (proto_request_parse(data, size, &a, &req) == SM_OK) {
        const proto_msg_desc_t *m = req.api->request;
        int16_t v = req.header.request_api_version;
        size_t n = m->size(v, req.body);
        uint8_t *buf = malloc(n ? n : 1);
        sm_writer_t w = sm_writer_make(buf, n);
        if (m->encode(&w, v, req.body) != SM_OK || (size_t)(w.p - buf) != n) abort();
        void *again = sm_arena_alloc(&a, m->struct_size);
        if (again) {
            sm_reader_t r = sm_reader_make(buf, n);
            int rc = m->decode(&r, &a, v, again);
            if (rc != SM_OK && rc != SM_ERR_NOMEM) abort();
        }
        free(buf);
    }
    sm_arena_free(&a);
    return 0;
}
