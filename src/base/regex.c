/*
 * Linear-time regular expressions (see regex.h): a recursive-descent parser
 * builds a small syntax tree, which compiles to NFA instructions; matching
 * keeps the set of live instructions per input position (Thompson's
 * construction, Pike's simulation without captures). Not for capture groups
 * or search: only whole-string matches are asked for.
 */
#include "base/regex.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

#define MAX_NODES 4096
#define MAX_PROG 20000
#define MAX_DEPTH 200

enum { N_EMPTY, N_CHAR, N_ANY, N_CLASS, N_BOL, N_EOL, N_CAT, N_ALT, N_REPEAT };
enum { I_CHAR, I_ANY, I_CLASS, I_BOL, I_EOL, I_SPLIT, I_JMP, I_MATCH };

typedef struct node {
    int type;
    int a, b;     /* children (CAT, ALT), child (REPEAT: a) */
    int min, max; /* REPEAT; max < 0: unbounded */
    uint8_t c;    /* CHAR */
    int cls;      /* CLASS: index into classes */
} node_t;

typedef struct inst {
    uint8_t op, c;
    int x, y; /* SPLIT targets, JMP target, CLASS index */
} inst_t;

struct sm_regex {
    inst_t *prog;
    int n;
    uint8_t (*classes)[32];
    int nclasses;
};

typedef struct parser {
    const char *p, *end;
    node_t *nodes;
    int n;
    uint8_t (*classes)[32];
    int nclasses, capclasses;
    int depth;
    int err;
} parser_t;

static int new_node(parser_t *ps, int type) {
    if (ps->n >= MAX_NODES) {
        ps->err = SM_ERR_RANGE;
        return -1;
    }
    memset(&ps->nodes[ps->n], 0, sizeof(node_t));
    ps->nodes[ps->n].type = type;
    return ps->n++;
}

static int new_class(parser_t *ps) {
    if (ps->nclasses == ps->capclasses) {
        int cap = ps->capclasses ? ps->capclasses * 2 : 8;
        uint8_t(*nc)[32] = realloc(ps->classes, (size_t)cap * 32);
        if (!nc) {
            ps->err = SM_ERR_NOMEM;
            return -1;
        }
        ps->classes = nc;
        ps->capclasses = cap;
    }
    memset(ps->classes[ps->nclasses], 0, 32);
    return ps->nclasses++;
}

static void set_bit(uint8_t *cls, unsigned c) { cls[c >> 3] |= (uint8_t)(1u << (c & 7)); }

static void set_range(uint8_t *cls, unsigned lo, unsigned hi) {
    for (unsigned c = lo; c <= hi; c++)
        set_bit(cls, c);
}

/* \d \w \s and their negations into cls; false when e is none of them. */
static bool perl_class(uint8_t *cls, char e) {
    uint8_t tmp[32] = {0};
    char lower = (char)(e | 0x20);
    if (lower == 'd') {
        set_range(tmp, '0', '9');
    } else if (lower == 'w') {
        set_range(tmp, '0', '9');
        set_range(tmp, 'A', 'Z');
        set_range(tmp, 'a', 'z');
        set_bit(tmp, '_');
    } else if (lower == 's') {
        const char *ws = " \t\n\r\f\v";
        for (; *ws; ws++)
            set_bit(tmp, (unsigned char)*ws);
    } else {
        return false;
    }
    bool negate = e >= 'A' && e <= 'Z';
    for (int i = 0; i < 32; i++)
        cls[i] |= negate ? (uint8_t)~tmp[i] : tmp[i];
    return true;
}

/* The byte an escape stands for; -1 for one that is not accepted. */
static int escaped_byte(char e) {
    switch (e) {
    case 'n': return '\n';
    case 't': return '\t';
    case 'r': return '\r';
    case 'f': return '\f';
    default:
        /* Escaped punctuation is itself; letters and digits that are not
         * known escapes would mean something else in RE2/J (\b, \1, \p). */
        if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '0' && e <= '9')) return -1;
        return (unsigned char)e;
    }
}

static int parse_alt(parser_t *ps);

static int parse_class(parser_t *ps) {
    int k = new_class(ps);
    if (k < 0) return -1;
    bool negate = ps->p < ps->end && *ps->p == '^';
    if (negate) ps->p++;
    bool first = true;
    while (ps->p < ps->end && (*ps->p != ']' || first)) {
        first = false;
        int lo;
        if (*ps->p == '\\') {
            if (++ps->p >= ps->end) return ps->err = SM_ERR_PARSE, -1;
            if (perl_class(ps->classes[k], *ps->p)) {
                ps->p++;
                continue;
            }
            if ((lo = escaped_byte(*ps->p++)) < 0) return ps->err = SM_ERR_PARSE, -1;
        } else if (*ps->p == '[' && ps->p + 1 < ps->end && ps->p[1] == ':') {
            return ps->err = SM_ERR_PARSE, -1; /* POSIX classes: not accepted */
        } else {
            lo = (unsigned char)*ps->p++;
        }
        int hi = lo;
        if (ps->p + 1 < ps->end && *ps->p == '-' && ps->p[1] != ']') {
            ps->p++;
            if (*ps->p == '\\') {
                if (++ps->p >= ps->end || (hi = escaped_byte(*ps->p)) < 0)
                    return ps->err = SM_ERR_PARSE, -1;
                ps->p++;
            } else {
                hi = (unsigned char)*ps->p++;
            }
            if (hi < lo) return ps->err = SM_ERR_PARSE, -1;
        }
        set_range(ps->classes[k], (unsigned)lo, (unsigned)hi);
    }
    if (ps->p >= ps->end) return ps->err = SM_ERR_PARSE, -1;
    ps->p++; /* ] */
    if (negate)
        for (int i = 0; i < 32; i++)
            ps->classes[k][i] = (uint8_t)~ps->classes[k][i];
    int n = new_node(ps, N_CLASS);
    if (n >= 0) ps->nodes[n].cls = k;
    return n;
}

static int parse_atom(parser_t *ps) {
    char ch = *ps->p++;
    int n;
    switch (ch) {
    case '(':
        if (ps->p + 1 < ps->end && ps->p[0] == '?') {
            if (ps->p[1] != ':') return ps->err = SM_ERR_PARSE, -1;
            ps->p += 2;
        }
        if (++ps->depth > MAX_DEPTH) return ps->err = SM_ERR_RANGE, -1;
        n = parse_alt(ps);
        ps->depth--;
        if (n < 0) return -1;
        if (ps->p >= ps->end || *ps->p != ')') return ps->err = SM_ERR_PARSE, -1;
        ps->p++;
        return n;
    case '[': return parse_class(ps);
    case '.': return new_node(ps, N_ANY);
    case '^': return new_node(ps, N_BOL);
    case '$': return new_node(ps, N_EOL);
    case '\\': {
        if (ps->p >= ps->end) return ps->err = SM_ERR_PARSE, -1;
        char e = *ps->p++;
        int k = new_class(ps);
        if (k < 0) return -1;
        if (perl_class(ps->classes[k], e)) {
            n = new_node(ps, N_CLASS);
            if (n >= 0) ps->nodes[n].cls = k;
            return n;
        }
        ps->nclasses--;
        int b = escaped_byte(e);
        if (b < 0) return ps->err = SM_ERR_PARSE, -1;
        n = new_node(ps, N_CHAR);
        if (n >= 0) ps->nodes[n].c = (uint8_t)b;
        return n;
    }
    case ')':
    case '*':
    case '+':
    case '?':
    case '{':
    case '|': return ps->err = SM_ERR_PARSE, -1;
    default:
        n = new_node(ps, N_CHAR);
        if (n >= 0) ps->nodes[n].c = (uint8_t)ch;
        return n;
    }
}

static bool parse_int(parser_t *ps, int *v) {
    if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') return false;
    *v = 0;
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
        *v = *v * 10 + (*ps->p++ - '0');
        if (*v > 1000) return false;
    }
    return true;
}

static bool is_quantifier(char c) { return c == '*' || c == '+' || c == '?' || c == '{'; }

static int parse_repeat(parser_t *ps) {
    int n = parse_atom(ps);
    while (n >= 0 && ps->p < ps->end && is_quantifier(*ps->p)) {
        int min, max;
        char q = *ps->p++;
        if (q == '*') {
            min = 0, max = -1;
        } else if (q == '+') {
            min = 1, max = -1;
        } else if (q == '?') {
            min = 0, max = 1;
        } else {
            if (!parse_int(ps, &min)) return ps->err = SM_ERR_PARSE, -1;
            max = min;
            if (ps->p < ps->end && *ps->p == ',') {
                ps->p++;
                max = -1;
                if (ps->p < ps->end && *ps->p != '}' && (!parse_int(ps, &max) || max < min))
                    return ps->err = SM_ERR_PARSE, -1;
            }
            if (ps->p >= ps->end || *ps->p != '}') return ps->err = SM_ERR_PARSE, -1;
            ps->p++;
        }
        /* Lazy and possessive quantifiers, and a quantifier of a quantifier
         * ("a**"), are not accepted, as in RE2. */
        if (ps->p < ps->end && is_quantifier(*ps->p)) return ps->err = SM_ERR_PARSE, -1;
        int r = new_node(ps, N_REPEAT);
        if (r < 0) return -1;
        ps->nodes[r].a = n;
        ps->nodes[r].min = min;
        ps->nodes[r].max = max;
        n = r;
    }
    return n;
}

static int parse_cat(parser_t *ps) {
    int n = new_node(ps, N_EMPTY);
    while (n >= 0 && ps->p < ps->end && *ps->p != '|' && *ps->p != ')') {
        int r = parse_repeat(ps);
        if (r < 0) return -1;
        int c = new_node(ps, N_CAT);
        if (c < 0) return -1;
        ps->nodes[c].a = n;
        ps->nodes[c].b = r;
        n = c;
    }
    return n;
}

static int parse_alt(parser_t *ps) {
    int n = parse_cat(ps);
    while (n >= 0 && ps->p < ps->end && *ps->p == '|') {
        ps->p++;
        int r = parse_cat(ps);
        if (r < 0) return -1;
        int a = new_node(ps, N_ALT);
        if (a < 0) return -1;
        ps->nodes[a].a = n;
        ps->nodes[a].b = r;
        n = a;
    }
    return n;
}

/* ---------------------------------------------------------------- compile */

typedef struct compiler {
    const node_t *nodes;
    inst_t *prog;
    int n;
    int err;
} compiler_t;

static int emit(compiler_t *c, int op) {
    if (c->n >= MAX_PROG) {
        c->err = SM_ERR_RANGE;
        return -1;
    }
    c->prog[c->n] = (inst_t){(uint8_t)op, 0, 0, 0};
    return c->n++;
}

static void compile_node(compiler_t *c, int id, int depth) {
    if (c->err) return;
    if (depth > MAX_DEPTH * 4) {
        c->err = SM_ERR_RANGE;
        return;
    }
    const node_t *nd = &c->nodes[id];
    int i, j;
    switch (nd->type) {
    case N_EMPTY: return;
    case N_CHAR:
        if ((i = emit(c, I_CHAR)) >= 0) c->prog[i].c = nd->c;
        return;
    case N_ANY: emit(c, I_ANY); return;
    case N_CLASS:
        if ((i = emit(c, I_CLASS)) >= 0) c->prog[i].x = nd->cls;
        return;
    case N_BOL: emit(c, I_BOL); return;
    case N_EOL: emit(c, I_EOL); return;
    case N_CAT:
        compile_node(c, nd->a, depth + 1);
        compile_node(c, nd->b, depth + 1);
        return;
    case N_ALT:
        if ((i = emit(c, I_SPLIT)) < 0) return;
        c->prog[i].x = c->n;
        compile_node(c, nd->a, depth + 1);
        if ((j = emit(c, I_JMP)) < 0) return;
        c->prog[i].y = c->n;
        compile_node(c, nd->b, depth + 1);
        c->prog[j].x = c->n;
        return;
    case N_REPEAT:
        for (int k = 0; k < nd->min; k++)
            compile_node(c, nd->a, depth + 1);
        if (nd->max < 0) {
            /* L: SPLIT body, out; body; JMP L */
            int l = emit(c, I_SPLIT);
            if (l < 0) return;
            c->prog[l].x = c->n;
            compile_node(c, nd->a, depth + 1);
            if ((j = emit(c, I_JMP)) < 0) return;
            c->prog[j].x = l;
            c->prog[l].y = c->n;
            return;
        }
        for (int k = nd->min; k < nd->max && !c->err; k++) {
            if ((i = emit(c, I_SPLIT)) < 0) return;
            c->prog[i].x = c->n;
            compile_node(c, nd->a, depth + 1);
            c->prog[i].y = c->n;
        }
        return;
    }
}

int sm_regex_compile(const char *pat, size_t len, sm_regex_t **out) {
    parser_t ps = {pat, pat + len, calloc(MAX_NODES, sizeof(node_t)), 0, NULL, 0, 0, 0, 0};
    sm_regex_t *re = calloc(1, sizeof(*re));
    inst_t *prog = calloc(MAX_PROG, sizeof(inst_t));
    int rc = SM_ERR_NOMEM;
    if (!ps.nodes || !re || !prog) goto fail;
    int root = parse_alt(&ps);
    if (root < 0 || ps.p != ps.end) {
        rc = ps.err ? ps.err : SM_ERR_PARSE;
        goto fail;
    }
    compiler_t c = {ps.nodes, prog, 0, 0};
    compile_node(&c, root, 0);
    if (!c.err) emit(&c, I_MATCH);
    if (c.err) {
        rc = c.err;
        goto fail;
    }
    re->prog = realloc(prog, (size_t)c.n * sizeof(inst_t));
    if (!re->prog) re->prog = prog;
    re->n = c.n;
    re->classes = ps.classes;
    re->nclasses = ps.nclasses;
    free(ps.nodes);
    *out = re;
    return SM_OK;
fail:
    free(ps.nodes);
    free(ps.classes);
    free(prog);
    free(re);
    return rc;
}

void sm_regex_free(sm_regex_t *re) {
    if (!re) return;
    free(re->prog);
    free(re->classes);
    free(re);
}

/* ---------------------------------------------------------------- match */

typedef struct thread_list {
    int *pc;
    int n;
} thread_list_t;

/* Adds pc and everything reachable from it without reading a byte, once per
 * position (mark[pc] == gen). An explicit stack keeps deep programs off the
 * C stack. */
static void add_thread(const sm_regex_t *re, thread_list_t *l, int pc, unsigned *mark, unsigned gen,
                       int *stack, size_t pos, size_t len) {
    int sp = 0;
    stack[sp++] = pc;
    while (sp) {
        pc = stack[--sp];
        if (mark[pc] == gen) continue;
        mark[pc] = gen;
        const inst_t *in = &re->prog[pc];
        switch (in->op) {
        case I_JMP: stack[sp++] = in->x; break;
        case I_SPLIT:
            stack[sp++] = in->y;
            stack[sp++] = in->x;
            break;
        case I_BOL:
            if (pos == 0) stack[sp++] = pc + 1;
            break;
        case I_EOL:
            if (pos == len) stack[sp++] = pc + 1;
            break;
        default: l->pc[l->n++] = pc;
        }
    }
}

bool sm_regex_matches(const sm_regex_t *re, const char *s, size_t len) {
    int n = re->n;
    /* Each pc is marked at most once per position, so a list holds at most
     * n entries and the stack at most 2n + 1. */
    int *buf = malloc(sizeof(int) * ((size_t)n * 4 + 2));
    unsigned *mark = calloc((size_t)n, sizeof(unsigned));
    bool matched = false;
    if (!buf || !mark) goto out;
    thread_list_t cur = {buf, 0}, next = {buf + n, 0};
    int *stack = buf + 2 * n;
    unsigned gen = 1;
    add_thread(re, &cur, 0, mark, gen, stack, 0, len);
    for (size_t i = 0; i <= len && cur.n; i++) {
        gen++;
        next.n = 0;
        for (int t = 0; t < cur.n; t++) {
            const inst_t *in = &re->prog[cur.pc[t]];
            if (in->op == I_MATCH) {
                if (i == len) matched = true;
                continue;
            }
            if (i == len) continue;
            uint8_t c = (uint8_t)s[i];
            bool ok = in->op == I_ANY    ? c != '\n'
                      : in->op == I_CHAR ? c == in->c
                                         : (re->classes[in->x][c >> 3] >> (c & 7)) & 1;
            if (ok) add_thread(re, &next, cur.pc[t] + 1, mark, gen, stack, i + 1, len);
        }
        if (matched) break;
        thread_list_t tmp = cur;
        cur = next;
        next = tmp;
    }
out:
    free(buf);
    free(mark);
    return matched;
}
