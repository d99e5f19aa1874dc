/*
 * Regular expressions that match in linear time: a pattern is compiled to a
 * Thompson NFA and run by simulating all its states at once, so matching
 * costs O(len(text) x len(program)) whatever the pattern (no backtracking:
 * "(a*)*b" against a long run of a's is as cheap as any other). The syntax
 * is the part of RE2/J (Kafka's regex subscriptions, KIP-848) that topic
 * names need: literals, ., [...] and [^...] classes with ranges, \d \w \s and
 * their negations, escapes, ( ) and (?: ), |, * + ?, {n} {n,} {n,m}, ^ and $.
 * Not supported (rejected): backreferences, lookaround, lazy or possessive
 * quantifiers, named groups, flags, Unicode classes. Bytes are matched as
 * bytes (topic names are ASCII).
 */
#ifndef SM_REGEX_H
#define SM_REGEX_H

#include <stdbool.h>
#include <stddef.h>

typedef struct sm_regex sm_regex_t;

/* Compiles pat[0..len). Returns SM_OK, SM_ERR_PARSE for a syntax it does not
 * accept, SM_ERR_RANGE when the program would pass its size bound (large
 * counted repetitions), SM_ERR_NOMEM. */
int sm_regex_compile(const char *pat, size_t len, sm_regex_t **out);
/* True when the whole of s[0..len) matches (Java's Matcher.matches()). */
bool sm_regex_matches(const sm_regex_t *re, const char *s, size_t len);
void sm_regex_free(sm_regex_t *re);

#endif
