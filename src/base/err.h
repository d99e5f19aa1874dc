/*
 * Samsa's internal status codes. Functions return 0 for success and one of these
 * negative values on failure; Kafka's int16 error codes are a separate space that
 * only travels toward clients (see protocol/errors.h).
 */
#ifndef SM_ERR_H
#define SM_ERR_H

enum sm_status {
    SM_OK = 0,
    SM_ERR = -1,          /* generic failure */
    SM_ERR_PARSE = -2,    /* malformed input: bytes ran out or a value is impossible */
    SM_ERR_NOMEM = -3,    /* allocation failed or a bound was exceeded */
    SM_ERR_VERSION = -4,  /* unsupported (api key, version) */
    SM_ERR_IO = -5,       /* a system call failed; errno says which */
    SM_ERR_AGAIN = -6,    /* would block; retry when the event fires */
    SM_ERR_CORRUPT = -7,  /* stored data failed validation (CRC, size) */
    SM_ERR_RANGE = -8,    /* value out of the allowed range */
    SM_ERR_NOTFOUND = -9, /* no such entry */
    SM_ERR_EXISTS = -10,  /* entry already exists */
    SM_ERR_SPACE = -11,   /* a buffer is too small for the output */
    SM_ERR_FENCED = -12,  /* a newer epoch of the same owner exists */
    SM_ERR_STALE = -13,   /* an epoch older than the one in force */
    SM_ERR_LIMIT = -14,   /* a process limit was reached (descriptors): retry later */
};

const char *sm_strerror(int status);

/* On functions whose status must not be dropped (persistence, producer
 * state): the compiler refuses a call in src/ that ignores it (targets built
 * with SM_CHECK_RESULTS; tests and benchmarks are not). A caller that may
 * ignore one says why and writes SM_IGNORE(call) (gcc does not accept a
 * (void) cast for this attribute). */
#ifdef SM_CHECK_RESULTS
#define SM_MUST_CHECK __attribute__((warn_unused_result))
#else
#define SM_MUST_CHECK
#endif
#define SM_IGNORE(call)                                                                            \
    do {                                                                                           \
        if (call) {                                                                                \
        }                                                                                          \
    } while (0)

#endif
