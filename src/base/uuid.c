/*
 * Uuids as Kafka prints them: url-safe base64 of the 16 bytes, without padding.
 */
#include <stdint.h>

#include "base/types.h"

void sm_uuid_base64(const uint8_t u[16], char out[23]) {
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    int o = 0;
    for (int i = 0; i < 16; i += 3) {
        uint32_t v = (uint32_t)u[i] << 16 | (i + 1 < 16 ? (uint32_t)u[i + 1] << 8 : 0) |
                     (i + 2 < 16 ? u[i + 2] : 0);
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        if (i + 1 < 16) out[o++] = b64[(v >> 6) & 63];
        if (i + 2 < 16) out[o++] = b64[v & 63];
    }
    out[o] = 0;
}

void sm_uuid_make_v4(uint8_t u[16]) {
    u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
    u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
}
