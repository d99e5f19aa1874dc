/*
 * Version-prefixed records (see versioned.h).
 */
#include "protocol/versioned.h"

#include <stdlib.h>

#include "base/buf.h"
#include "base/err.h"

int proto_encode_versioned(const proto_msg_desc_t *d, int16_t version, const void *msg,
                           uint8_t **out, size_t *len) {
    size_t n = 2 + d->size(version, msg);
    uint8_t *buf = malloc(n);
    if (!buf) return SM_ERR_NOMEM;
    sm_writer_t w = sm_writer_make(buf, n);
    if (sm_wr_i16(&w, version) || d->encode(&w, version, msg)) {
        free(buf);
        return SM_ERR;
    }
    *out = buf;
    *len = n;
    return SM_OK;
}
