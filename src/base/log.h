/*
 * Leveled logging to stderr: one line per event, with a UTC timestamp, the level
 * and the module. Thread-safe (each line is one write). Not for request tracing.
 */
#ifndef SM_LOG_H
#define SM_LOG_H

enum sm_log_level { SM_LOG_DEBUG = 0, SM_LOG_INFO = 1, SM_LOG_WARN = 2, SM_LOG_ERROR = 3 };

extern int sm_log_min_level;

void sm_log_set_level(int level);
/* Parses "debug", "info", "warn" or "error"; returns -1 if unknown. */
int sm_log_level_parse(const char *name);
void sm_log_write(int level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define SM_LOG(level, module, ...)                                         \
    do {                                                                   \
        if ((level) >= sm_log_min_level) sm_log_write(level, module, __VA_ARGS__); \
    } while (0)
#define sm_debug(module, ...) SM_LOG(SM_LOG_DEBUG, module, __VA_ARGS__)
#define sm_info(module, ...) SM_LOG(SM_LOG_INFO, module, __VA_ARGS__)
#define sm_warn(module, ...) SM_LOG(SM_LOG_WARN, module, __VA_ARGS__)
#define sm_error(module, ...) SM_LOG(SM_LOG_ERROR, module, __VA_ARGS__)

#endif
