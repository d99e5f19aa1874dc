/*
 * Names and retriability of Kafka error codes (see errors.h).
 */
#include "protocol/errors.h"

const char *proto_error_name(int16_t code) {
    switch (code) {
#define NAME_CASE(c, name, retriable)                                                              \
    case (c): return #name;
        PROTO_ERRORS(NAME_CASE)
#undef NAME_CASE
    default: return "UNKNOWN";
    }
}

bool proto_error_retriable(int16_t code) {
    switch (code) {
#define RETRY_CASE(c, name, retriable)                                                             \
    case (c): return (retriable) != 0;
        PROTO_ERRORS(RETRY_CASE)
#undef RETRY_CASE
    default: return false;
    }
}
