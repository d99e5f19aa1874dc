/*
 * Uuids as Kafka prints them: url-safe base64 of the 16 bytes, without padding.
 */
#include <stdint.h>
#include <string.h>

#include "base/err.h"
#include "base/types.h"

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void sm_uuid_base64(const uint8_t u[16], char out[23]) {
    int o = 0;
    for (int i = 0; i < 16; i += 3) {
        uint32_t v = (uint32_t)u[i] << 16 | (i + 1 < 16 ? (uint32_t)u[i + 1] << 8 : 0) |
                     (i + 2 < 16 ? u[i + 2] : 0);
        out[o++] = b64url[(v >> 18) & 63];
        out[o++] = b64url[(v >> 12) & 63];
        if (i + 1 < 16) out[o++] = b64url[(v >> 6) & 63];
        if (i + 2 < 16) out[o++] = b64url[v & 63];
    }
    out[o] = 0;
}

void sm_uuid_make_v4(uint8_t u[16]) {
    u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
    u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
}

int sm_uuid_parse_base64(const char *s, size_t n, uint8_t u[16]) {
    if (n != 22) return SM_ERR_CORRUPT;
    uint32_t acc = 0;
    int bits = 0, o = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = s[i] ? strchr(b64url, s[i]) : NULL;
        if (!p) return SM_ERR_CORRUPT;
        acc = acc << 6 | (uint32_t)(p - b64url);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o < 16) u[o++] = (uint8_t)(acc >> bits);
        }
    }
    return o == 16 ? SM_OK : SM_ERR_CORRUPT;
}
