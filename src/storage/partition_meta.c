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
#include "base/types.h"
#include "storage/log.h"

int log_write_partition_metadata(const char *dir, const uint8_t topic_id[16]) {
    char path[4200], text[64], id[23];
    sm_uuid_base64(topic_id, id);
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
    return sm_uuid_parse_base64(t, n, topic_id);
}
