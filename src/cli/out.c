/*
 * Tables, JSON, error and progress lines for the admin commands (see out.h).
 */
#include "cli/out.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "protocol/errors.h"

static void *out_xrealloc(void *p, size_t n) {
    void *q = realloc(p, n);
    if (!q) {
        fputs("samsa: out of memory\n", stderr);
        exit(CLI_FAIL);
    }
    return q;
}

static void table_push(out_table_t *t, char *cell) {
    if (t->ncells == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->cells = out_xrealloc(t->cells, t->cap * sizeof(*t->cells));
    }
    t->cells[t->ncells++] = cell;
}

void out_table_init(out_table_t *t, size_t ncols, const char *const *headers) {
    memset(t, 0, sizeof(*t));
    t->ncols = ncols;
    for (size_t i = 0; i < ncols; i++)
        out_table_cell(t, "%s", headers[i]);
}

void out_table_cell(out_table_t *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = out_xrealloc(NULL, (size_t)(n < 0 ? 0 : n) + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)(n < 0 ? 0 : n) + 1, fmt, ap);
    va_end(ap);
    table_push(t, s);
}

void out_table_str(out_table_t *t, sm_str_t s) {
    if (s.len <= 0)
        out_table_cell(t, "-");
    else
        out_table_cell(t, "%.*s", (int)s.len, s.ptr);
}

size_t out_table_rows(const out_table_t *t) { return t->ncols ? t->ncells / t->ncols - 1 : 0; }

void out_table_print(const out_table_t *t, FILE *f) {
    size_t *w = out_xrealloc(NULL, t->ncols * sizeof(*w));
    memset(w, 0, t->ncols * sizeof(*w));
    for (size_t i = 0; i < t->ncells; i++) {
        size_t l = strlen(t->cells[i]);
        if (l > w[i % t->ncols]) w[i % t->ncols] = l;
    }
    for (size_t i = 0; i < t->ncells; i++) {
        size_t col = i % t->ncols;
        if (col + 1 == t->ncols)
            fprintf(f, "%s\n", t->cells[i]);
        else
            fprintf(f, "%-*s  ", (int)w[col], t->cells[i]);
    }
    free(w);
}

void out_table_free(out_table_t *t) {
    for (size_t i = 0; i < t->ncells; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof(*t));
}

void oj_init(out_json_t *j, FILE *f) {
    memset(j, 0, sizeof(*j));
    j->f = f;
}

/* Before any value: a comma when a sibling came first (not after a key). */
static void oj_sep(out_json_t *j) {
    if (j->after_key) {
        j->after_key = false;
        return;
    }
    if (j->need_comma[j->depth]) fputc(',', j->f);
    j->need_comma[j->depth] = true;
}

static void oj_open(out_json_t *j, char c) {
    oj_sep(j);
    fputc(c, j->f);
    if (j->depth < 31) j->depth++;
    j->need_comma[j->depth] = false;
}

static void oj_close(out_json_t *j, char c) {
    fputc(c, j->f);
    if (j->depth > 0) j->depth--;
    if (j->depth == 0) fputc('\n', j->f);
}

void oj_obj(out_json_t *j) { oj_open(j, '{'); }
void oj_obj_end(out_json_t *j) { oj_close(j, '}'); }
void oj_arr(out_json_t *j) { oj_open(j, '['); }
void oj_arr_end(out_json_t *j) { oj_close(j, ']'); }

static void oj_quoted(out_json_t *j, const char *s, size_t n) {
    fputc('"', j->f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(j->f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", j->f);
        else if (c == '\t')
            fputs("\\t", j->f);
        else if (c < 0x20)
            fprintf(j->f, "\\u%04x", c);
        else
            fputc(c, j->f);
    }
    fputc('"', j->f);
}

void oj_key(out_json_t *j, const char *key) {
    oj_sep(j);
    oj_quoted(j, key, strlen(key));
    fputc(':', j->f);
    j->after_key = true;
}

void oj_str(out_json_t *j, const char *s) {
    oj_sep(j);
    if (s)
        oj_quoted(j, s, strlen(s));
    else
        fputs("null", j->f);
}

void oj_sstr(out_json_t *j, sm_str_t s) {
    oj_sep(j);
    if (s.len >= 0)
        oj_quoted(j, s.ptr, (size_t)s.len);
    else
        fputs("null", j->f);
}

void oj_int(out_json_t *j, int64_t v) {
    oj_sep(j);
    fprintf(j->f, "%lld", (long long)v);
}

void oj_bool(out_json_t *j, bool v) {
    oj_sep(j);
    fputs(v ? "true" : "false", j->f);
}

void oj_null(out_json_t *j) {
    oj_sep(j);
    fputs("null", j->f);
}

void oj_kstr(out_json_t *j, const char *key, const char *s) {
    oj_key(j, key);
    oj_str(j, s);
}

void oj_ksstr(out_json_t *j, const char *key, sm_str_t s) {
    oj_key(j, key);
    oj_sstr(j, s);
}

void oj_kint(out_json_t *j, const char *key, int64_t v) {
    oj_key(j, key);
    oj_int(j, v);
}

void oj_kbool(out_json_t *j, const char *key, bool v) {
    oj_key(j, key);
    oj_bool(j, v);
}

void out_kafka_error(const char *what, int16_t code, sm_str_t message) {
    if (message.len > 0)
        cli_error("%s: %s: %.*s", what, proto_error_name(code), (int)message.len, message.ptr);
    else
        cli_error("%s: %s", what, proto_error_name(code));
}

static bool progress_shown;

void out_progress(const char *fmt, ...) {
    if (!cli_progress_wanted()) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("\r", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\033[K", stderr);
    va_end(ap);
    progress_shown = true;
}

void out_progress_end(void) {
    if (!progress_shown) return;
    fputs("\r\033[K", stderr);
    progress_shown = false;
}

void out_uuid(const sm_uuid_t *u, char out[23]) {
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (int i = 0; i < 16; i++) {
        acc = (acc << 8) | u->b[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = b64[(acc >> bits) & 63];
        }
    }
    if (bits > 0) out[o++] = b64[(acc << (6 - bits)) & 63];
    out[o] = '\0';
}

const char *out_cstr(sm_str_t s, char *buf, size_t cap) {
    size_t n = s.len > 0 ? (size_t)s.len : 0;
    if (n >= cap) n = cap - 1;
    if (n) memcpy(buf, s.ptr, n);
    buf[n] = '\0';
    return buf;
}
