/*
 * Kafka's partition.metadata file in a partition folder: "version: 0" and
 * "topic_id: <uuid>" with the UUID in URL-safe base64 without padding (Kafka's
 * Uuid.toString). Not the topic's metadata itself, which lives in metadata/.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/fileio.h"
#include "storage/log.h"

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void uuid_to_b64(const uint8_t id[16], char out[23]) {
    int o = 0;
    for (int i = 0; i < 16; i += 3) {
        uint32_t v = (uint32_t)id[i] << 16;
        if (i + 1 < 16) v |= (uint32_t)id[i + 1] << 8;
        if (i + 2 < 16) v |= id[i + 2];
        int chars = i + 2 < 16 ? 4 : (i + 1 < 16 ? 3 : 2);
        for (int k = 0; k < chars; k++)
            out[o++] = b64url[(v >> (18 - 6 * k)) & 63];
    }
    out[o] = 0; /* 22 characters */
}

static int b64_val(char c) {
    const char *p = c ? strchr(b64url, c) : NULL;
    return p ? (int)(p - b64url) : -1;
}

static int b64_to_uuid(const char *s, size_t n, uint8_t id[16]) {
    if (n != 22) return SM_ERR_CORRUPT;
    uint32_t acc = 0;
    int bits = 0, o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_val(s[i]);
        if (v < 0) return SM_ERR_CORRUPT;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o < 16) id[o++] = (uint8_t)(acc >> bits);
        }
    }
    return o == 16 ? SM_OK : SM_ERR_CORRUPT;
}

int log_write_partition_metadata(const char *dir, const uint8_t topic_id[16]) {
    char path[4200], text[64], id[23];
    uuid_to_b64(topic_id, id);
    int n = snprintf(text, sizeof(text), "version: 0\ntopic_id: %s\n", id);
    snprintf(path, sizeof(path), "%s/partition.metadata", dir);
    return fio_write_file(path, text, (size_t)n, true);
}

int log_read_partition_metadata(const char *dir, uint8_t topic_id[16]) {
    char path[4200];
    snprintf(path, sizeof(path), "%s/partition.metadata", dir);
    uint8_t *data;
    size_t len;
    int rc = fio_read_file(path, &data, &len, 4096);
    /* Missing, unreadable or out of descriptors say so; only an oversized
     * file is corrupt. */
    if (rc) return rc == SM_ERR_RANGE ? SM_ERR_CORRUPT : rc;
    rc = SM_ERR_CORRUPT;
    char text[4097];
    memcpy(text, data, len);
    text[len] = 0;
    free(data);
    const char *v = strstr(text, "version: ");
    const char *t = strstr(text, "topic_id: ");
    if (!v || !t || strncmp(v + 9, "0\n", 2) != 0) return rc;
    t += 10;
    size_t n = strcspn(t, "\r\n");
    return b64_to_uuid(t, n, topic_id);
}
