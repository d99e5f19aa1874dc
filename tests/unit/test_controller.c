/*
 * The controller against a quorum that can be made to fail: the metadata log
 * is the single source of truth, so a change whose append fails leaves the
 * image and the listener (the broker's partitions on disk) untouched, a
 * delete reaches the listener only once committed and applied, and a
 * committed record that cannot be applied fails the replay.
 */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "metadata/controller.h"
#include "protocol/errors.h"
#include "test.h"

/* The fake quorum: keeps each appended batch; fails while fail is set. */
typedef struct fake_log {
    bool fail;
    int n;
    uint8_t *batch[16];
    size_t len[16];
    int64_t end;
} fake_log_t;

static int fake_append(void *ctx, uint8_t *batch, size_t len, int64_t *base) {
    fake_log_t *l = ctx;
    if (l->fail || l->n == 16) return SM_ERR_IO;
    l->batch[l->n] = malloc(len);
    if (!l->batch[l->n]) return SM_ERR_NOMEM;
    memcpy(l->batch[l->n], batch, len);
    l->len[l->n++] = len;
    *base = l->end;
    /* Records count at offset 57 of a v2 batch header (big endian). */
    l->end += (int64_t)((uint32_t)batch[57] << 24 | (uint32_t)batch[58] << 16 |
                        (uint32_t)batch[59] << 8 | batch[60]);
    return SM_OK;
}

/* What the listener saw, and whether the image already agreed then. */
typedef struct seen {
    meta_image_t *img;
    int created, deleted;
    int32_t deleted_partitions;
    char deleted_name[64];
    bool deleted_still_in_image;
} seen_t;

static void on_created(void *ctx, const meta_topic_t *t, int32_t first) {
    (void)t;
    (void)first;
    ((seen_t *)ctx)->created++;
}

/* Called with the controller mutex held and no image lock. */
static void on_deleted(void *ctx, const meta_topic_t *t) {
    seen_t *s = ctx;
    s->deleted++;
    s->deleted_partitions = t->n_partitions;
    snprintf(s->deleted_name, sizeof(s->deleted_name), "%s", t->name);
    meta_image_rdlock(s->img);
    s->deleted_still_in_image = meta_image_topic_by_id(s->img, &t->id) != NULL;
    meta_image_unlock(s->img);
}

static bool has_topic(meta_image_t *img, const char *name) {
    meta_image_rdlock(img);
    bool yes = meta_image_topic(img, (sm_str_t){name, (int32_t)strlen(name)}) != NULL;
    meta_image_unlock(img);
    return yes;
}

static void test_failed_append_changes_nothing(void) {
    meta_image_t img;
    meta_image_init(&img);
    fake_log_t log = {0};
    seen_t seen = {.img = &img};
    meta_controller_t c;
    meta_quorum_t q = {.append = fake_append, .ctx = &log};
    meta_listener_t l = {.topic_created = on_created, .topic_deleted = on_deleted, .ctx = &seen};
    REQUIRE(meta_controller_init(&c, &img, 1, q, l) == SM_OK);
    sm_str_t name = {"orders", 6};
    sm_uuid_t id;
    meta_result_t res;

    log.fail = true;
    meta_create_topic(&c, name, 3, 1, NULL, 0, false, &id, &res);
    CHECK_EQ_INT(PROTO_ERR_KAFKA_STORAGE_ERROR, res.error);
    CHECK(!has_topic(&img, "orders"));
    CHECK_EQ_INT(0, seen.created);

    log.fail = false;
    meta_create_topic(&c, name, 3, 1, NULL, 0, false, &id, &res);
    CHECK_EQ_INT(PROTO_ERR_NONE, res.error);
    CHECK(has_topic(&img, "orders"));
    CHECK_EQ_INT(1, seen.created);

    /* The delete's append fails: the topic and its partitions stay. */
    log.fail = true;
    meta_delete_topic(&c, name, NULL, &res);
    CHECK_EQ_INT(PROTO_ERR_KAFKA_STORAGE_ERROR, res.error);
    CHECK(has_topic(&img, "orders"));
    CHECK_EQ_INT(0, seen.deleted);

    /* Committed: applied to the image before the partitions are told. */
    log.fail = false;
    meta_delete_topic(&c, name, NULL, &res);
    CHECK_EQ_INT(PROTO_ERR_NONE, res.error);
    CHECK(!has_topic(&img, "orders"));
    CHECK_EQ_INT(1, seen.deleted);
    CHECK_EQ_INT(3, seen.deleted_partitions);
    CHECK(strcmp(seen.deleted_name, "orders") == 0);
    CHECK(!seen.deleted_still_in_image);

    /* Replaying the log gives the same image: create then remove. */
    meta_image_t again;
    meta_image_init(&again);
    meta_controller_t c2;
    REQUIRE(meta_controller_init(&c2, &again, 1, q, (meta_listener_t){0}) == SM_OK);
    CHECK_EQ_INT(2, log.n);
    for (int i = 0; i < log.n; i++)
        CHECK_EQ_INT(SM_OK, meta_controller_replay_batch(&c2, log.batch[i], log.len[i]));
    CHECK(!has_topic(&again, "orders"));
    meta_controller_free(&c2);
    meta_image_free(&again);

    /* A committed record that does not apply (the removal of a topic the
     * image never had) fails the replay instead of being skipped. */
    meta_image_t partial;
    meta_image_init(&partial);
    meta_controller_t c3;
    REQUIRE(meta_controller_init(&c3, &partial, 1, q, (meta_listener_t){0}) == SM_OK);
    CHECK(meta_controller_replay_batch(&c3, log.batch[1], log.len[1]) != SM_OK);
    meta_controller_free(&c3);
    meta_image_free(&partial);

    for (int i = 0; i < log.n; i++)
        free(log.batch[i]);
    meta_controller_free(&c);
    meta_image_free(&img);
}

int main(void) {
    sm_log_set_level(SM_LOG_ERROR);
    RUN(test_failed_append_changes_nothing);
    return t_summary("controller");
}
