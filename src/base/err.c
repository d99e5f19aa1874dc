/* Names for Samsa's internal status codes (base/err.h), for log lines. */
#include "base/err.h"

const char *sm_strerror(int status) {
    switch (status) {
    case SM_OK: return "ok";
    case SM_ERR: return "error";
    case SM_ERR_PARSE: return "malformed input";
    case SM_ERR_NOMEM: return "out of memory or over a limit";
    case SM_ERR_VERSION: return "unsupported version";
    case SM_ERR_IO: return "i/o error";
    case SM_ERR_AGAIN: return "try again";
    case SM_ERR_CORRUPT: return "corrupt data";
    case SM_ERR_RANGE: return "value out of range";
    case SM_ERR_NOTFOUND: return "not found";
    case SM_ERR_EXISTS: return "already exists";
    case SM_ERR_SPACE: return "buffer too small";
    case SM_ERR_FENCED: return "fenced by a newer epoch";
    case SM_ERR_STALE: return "stale epoch";
    case SM_ERR_LIMIT: return "out of descriptors";
    default: return "unknown status";
    }
}
