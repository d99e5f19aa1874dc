/*
 * The linear-time regex (base/regex.h): RE2/J syntax that topic
 * subscriptions use, whole-string matching, rejected syntax, and patterns
 * that make backtracking matchers take exponential time.
 */
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/regex.h"
#include "test.h"

static int match(const char *pat, const char *s) {
    sm_regex_t *re;
    if (sm_regex_compile(pat, strlen(pat), &re) != SM_OK) return -1;
    int m = sm_regex_matches(re, s, strlen(s));
    sm_regex_free(re);
    return m;
}

static void test_syntax(void) {
    CHECK_EQ_INT(1, match("orders", "orders"));
    CHECK_EQ_INT(0, match("orders", "orders2")); /* whole string */
    CHECK_EQ_INT(0, match("order", "orders"));
    CHECK_EQ_INT(1, match("orders-.*", "orders-eu"));
    CHECK_EQ_INT(1, match("orders-.*", "orders-"));
    CHECK_EQ_INT(1, match("t[0-9]+", "t42"));
    CHECK_EQ_INT(0, match("t[0-9]+", "t"));
    CHECK_EQ_INT(1, match("t[^0-9]x", "tax"));
    CHECK_EQ_INT(0, match("t[^0-9]x", "t5x"));
    CHECK_EQ_INT(1, match("(foo|bar)-\\d{2}", "bar-07"));
    CHECK_EQ_INT(0, match("(foo|bar)-\\d{2}", "bar-7"));
    CHECK_EQ_INT(1, match("a{2,3}", "aaa"));
    CHECK_EQ_INT(0, match("a{2,3}", "aaaa"));
    CHECK_EQ_INT(1, match("a{2,}", "aaaaa"));
    CHECK_EQ_INT(1, match("(?:ab)?c", "c"));
    CHECK_EQ_INT(1, match("\\w+\\.\\w+", "my_topic.v2"));
    CHECK_EQ_INT(0, match("\\w+\\.\\w+", "my_topicxv2"));
    CHECK_EQ_INT(1, match("^t.*$", "topic"));
    CHECK_EQ_INT(1, match("[a\\-z]", "-"));
    CHECK_EQ_INT(1, match("", ""));
    CHECK_EQ_INT(1, match("a|", ""));
}

static void test_rejected(void) {
    const char *bad[] = {"(",   ")",      "a)",  "[a-",    "[z-a]",       "*a",
                         "a**", "a*?",    "a++", "(?=a)",  "(?<n>a)",     "\\1",
                         "\\b", "\\p{L}", "a{2", "a{3,2}", "[[:alpha:]]", "\\"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sm_regex_t *re = NULL;
        int rc = sm_regex_compile(bad[i], strlen(bad[i]), &re);
        if (rc == SM_OK) fprintf(stderr, "accepted: %s\n", bad[i]);
        CHECK(rc != SM_OK);
        sm_regex_free(re);
    }
    /* Counted repetition is bounded by the program size, not expanded blindly. */
    sm_regex_t *re = NULL;
    CHECK_EQ_INT(SM_ERR_RANGE, sm_regex_compile("((a{1000}){1000}){1000}", 23, &re));
}

/* Patterns that take a backtracking matcher exponential time finish here
 * (the test's own time bound is ctest's timeout; nothing is timed). */
static void test_no_backtracking_blowup(void) {
    size_t n = 20000;
    char *s = malloc(n + 2);
    REQUIRE(s);
    memset(s, 'a', n);
    s[n] = 0;
    CHECK_EQ_INT(0, match("(a*)*b", s));
    CHECK_EQ_INT(0, match("(a|a)*b", s));
    CHECK_EQ_INT(0, match("(a|aa)*c", s));
    CHECK_EQ_INT(1, match("(a|aa)*", s));
    s[n] = '!';
    s[n + 1] = 0;
    CHECK_EQ_INT(0, match("(.*a){20}", s));
    free(s);
}

int main(void) {
    RUN(test_syntax);
    RUN(test_rejected);
    RUN(test_no_backtracking_blowup);
    return t_summary("regex");
}
