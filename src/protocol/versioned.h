/*
 * Records of the coordinators' internal topics and of the metadata log are
 * "int16 version, then the message at that version" (Kafka's
 * coordinator-key / coordinator-value framing). Encoding one with a
 * generated codec; decoding is the codec's own decode after reading the
 * version.
 */
#ifndef PROTO_VERSIONED_H
#define PROTO_VERSIONED_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/gen/api.h"

/* Encodes version + msg into a new malloc'd buffer (*out, *len). SM_OK,
 * SM_ERR_NOMEM, or SM_ERR when the codec fails. */
int proto_encode_versioned(const proto_msg_desc_t *d, int16_t version, const void *msg,
                           uint8_t **out, size_t *len);

#endif
