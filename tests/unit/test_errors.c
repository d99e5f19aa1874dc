/*
 * Kafka error codes: the table is contiguous from -1 to its last code with
 * unique names, names and retriability of well-known codes, unknown codes.
 */
#include "protocol/errors.h"
#include "test.h"

static void test_known_codes(void) {
    CHECK(strcmp("NONE", proto_error_name(PROTO_ERR_NONE)) == 0);
    CHECK(strcmp("UNKNOWN_SERVER_ERROR", proto_error_name(-1)) == 0);
    CHECK(strcmp("OFFSET_OUT_OF_RANGE", proto_error_name(1)) == 0);
    CHECK(strcmp("NOT_LEADER_OR_FOLLOWER", proto_error_name(6)) == 0);
    CHECK(strcmp("UNSUPPORTED_VERSION", proto_error_name(35)) == 0);
    CHECK(strcmp("REBOOTSTRAP_REQUIRED", proto_error_name(129)) == 0);
    CHECK(strcmp("SHARE_SESSION_LIMIT_REACHED", proto_error_name(133)) == 0);
    CHECK_EQ_INT(1, PROTO_ERR_OFFSET_OUT_OF_RANGE);
    CHECK_EQ_INT(-1, PROTO_ERR_UNKNOWN_SERVER_ERROR);
    CHECK_EQ_INT(87, PROTO_ERR_INVALID_RECORD);
    CHECK_EQ_INT(130, PROTO_ERR_STREAMS_INVALID_TOPOLOGY);
    /* Retriable column: metadata and coordinator movement, timeouts, storage. */
    static const int16_t retriable[] = {2,  3,  5,  6,  7,  9,  13, 14, 15, 16,
                                        19, 20, 41, 51, 56, 74, 75, 89, 133};
    for (size_t i = 0; i < sizeof(retriable) / sizeof(retriable[0]); i++)
        CHECK(proto_error_retriable(retriable[i]));
    static const int16_t fatal[] = {-1, 0, 1, 10, 22, 25, 27, 35, 47, 59, 87, 90, 110, 130};
    for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
        CHECK(!proto_error_retriable(fatal[i]));
}

static void test_unknown_codes(void) {
    static const int16_t unknown[] = {-2, 134, 1000, INT16_MAX, INT16_MIN};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        CHECK(strcmp("UNKNOWN", proto_error_name(unknown[i])) == 0);
        CHECK(!proto_error_retriable(unknown[i]));
    }
}

/* Every code from -1 up to the highest has an entry, and no name repeats. */
static void test_table_shape(void) {
    int16_t max = -1;
#define MAX_CODE(c, name, r)                                                                       \
    if ((c) > max) max = (c);
    PROTO_ERRORS(MAX_CODE)
#undef MAX_CODE
    CHECK(max >= 130);
    int gaps = 0, dups = 0;
    for (int16_t c = -1; c <= max; c++) {
        const char *n = proto_error_name(c);
        if (strcmp(n, "UNKNOWN") == 0) gaps++;
        for (int16_t d = -1; d < c; d++)
            dups += strcmp(n, proto_error_name(d)) == 0;
    }
    CHECK_EQ_INT(0, gaps);
    CHECK_EQ_INT(0, dups);
}

int main(void) {
    RUN(test_known_codes);
    RUN(test_unknown_codes);
    RUN(test_table_shape);
    return t_summary("errors");
}
