/*
 * Output helpers of the admin commands: aligned plain-text tables with a
 * header row, a small streaming JSON writer for --output json, Kafka error
 * lines, and the progress line shown on a terminal. Nothing here talks to a
 * broker.
 */
#ifndef SAMSA_CLI_OUT_H
#define SAMSA_CLI_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/types.h"

/* A table of string cells, printed with every column padded to its widest
 * cell. Allocation failures abort the process (a CLI has nothing to save). */
typedef struct out_table {
    size_t ncols;
    char **cells; /* row-major; row 0 is the header */
    size_t ncells, cap;
} out_table_t;

/* A table whose header row is the ncols names given. */
void out_table_init(out_table_t *t, size_t ncols, const char *const *headers);
/* Appends one cell (printf format); rows fill left to right. */
void out_table_cell(out_table_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends one cell from a borrowed protocol string ("-" for null or empty). */
void out_table_str(out_table_t *t, sm_str_t s);
size_t out_table_rows(const out_table_t *t); /* data rows, without the header */
void out_table_print(const out_table_t *t, FILE *f);
void out_table_free(out_table_t *t);

/* Streaming JSON on stdout: commas and nesting tracked, strings escaped. */
typedef struct out_json {
    FILE *f;
    int depth;
    bool need_comma[32];
    bool after_key;
} out_json_t;

void oj_init(out_json_t *j, FILE *f);
void oj_obj(out_json_t *j);
void oj_obj_end(out_json_t *j);
void oj_arr(out_json_t *j);
void oj_arr_end(out_json_t *j); /* closing the outermost value ends the line */
void oj_key(out_json_t *j, const char *key);
void oj_str(out_json_t *j, const char *s); /* NULL: null */
void oj_sstr(out_json_t *j, sm_str_t s);   /* len < 0: null */
void oj_int(out_json_t *j, int64_t v);
void oj_bool(out_json_t *j, bool v);
void oj_null(out_json_t *j);
/* A key and its value in one call. */
void oj_kstr(out_json_t *j, const char *key, const char *s);
void oj_ksstr(out_json_t *j, const char *key, sm_str_t s);
void oj_kint(out_json_t *j, const char *key, int64_t v);
void oj_kbool(out_json_t *j, const char *key, bool v);

/* "samsa: <what>: <ERROR_NAME>: <message>" on stderr (message left out when
 * the broker sent none). */
void out_kafka_error(const char *what, int16_t code, sm_str_t message);

/* A progress line on stderr, rewritten in place, only when stderr is a
 * terminal; out_progress_end erases it. */
void out_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void out_progress_end(void);

/* Kafka's text form of a topic id: URL-safe base64 without padding. */
void out_uuid(const sm_uuid_t *u, char out[23]);

/* A protocol string as a NUL-terminated copy in buf ("" for null). */
const char *out_cstr(sm_str_t s, char *buf, size_t cap);

#endif
