/*
 * Request and response framing above the generated codecs: parses a request
 * frame (header + body) into typed structs, and writes response headers. The
 * header version follows from the api key and version: flexible request
 * versions use request header v2, others v1; responses use header v1 when
 * flexible, except ApiVersions, whose response header is always v0 so any
 * client can read it.
 */
#ifndef PROTO_REQUEST_H
#define PROTO_REQUEST_H

#include "protocol/gen/api.h"

typedef struct proto_request {
    proto_request_header_t header;  /* api key, version, correlation id, client id */
    int16_t header_version;
    const proto_api_desc_t *api;    /* NULL when the api key is unknown */
    void *body;                     /* decoded body (api->request type), arena-owned */
    const uint8_t *body_start;      /* body bytes inside the frame */
    size_t body_len;
} proto_request_t;

/* Header version a request of (api_key, version) uses; -1 if unknown. */
int proto_request_header_version(int16_t api_key, int16_t version);
/* Header version the response to (api_key, version) uses; -1 if unknown. */
int proto_response_header_version(int16_t api_key, int16_t version);

/*
 * Parses the header of a request frame (the bytes after the size prefix).
 * Only the first 8 bytes (api key, version, correlation id) are needed to
 * answer with an error, so those are parsed first and kept even when the rest
 * fails. Returns SM_OK, SM_ERR_PARSE (frame shorter than 8 bytes or a malformed
 * header), or SM_ERR_VERSION (unknown api key or version outside the schema:
 * header fields are still set, body not decoded).
 */
int proto_request_parse_header(const uint8_t *frame, size_t len, sm_arena_t *a,
                               proto_request_t *req);
/*
 * Parses the whole request: header, then the body with the api's codec. The
 * body must consume the frame exactly. Decoded strings and records borrow the
 * frame. Returns SM_OK, SM_ERR_VERSION, SM_ERR_PARSE or SM_ERR_NOMEM.
 */
int proto_request_parse(const uint8_t *frame, size_t len, sm_arena_t *a, proto_request_t *req);

/* The arena limit for decoding a frame of len bytes. Every array element
 * takes at least one byte of the frame (sm_rd_array_len), and a decoded
 * element is at most PROTO_DECODE_RATIO times its smallest wire form (a
 * compact string of one byte becomes a 16-byte slice; an element's unknown
 * tagged fields another 16), so a frame cannot make the broker reserve or zero
 * more than this, whatever its arrays claim. */
#define PROTO_DECODE_RATIO 16
#define PROTO_DECODE_SLACK 65536
size_t proto_decode_arena_limit(size_t len);

/* Size of the response header (without the 4-byte frame size). */
size_t proto_resp_header_len(int header_version);
/* Writes the response header for correlation_id in header_version. */
int proto_resp_header_write(sm_writer_t *w, int header_version, int32_t correlation_id);

/*
 * Encodes a complete response frame (size prefix, header, body) for the api's
 * response at version into memory from the arena. Returns SM_OK with the frame in out and len.
 */
int proto_response_encode(sm_arena_t *a, const proto_api_desc_t *api, int16_t version,
                          int32_t correlation_id, const void *body, uint8_t **out, size_t *len);

#endif
