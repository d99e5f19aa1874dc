/* server.properties parsing, defaults, precedence and error lines. */
#include <unistd.h>

#include "base/config.h"
#include "base/log.h"
#include "test.h"

static void test_defaults(void) {
    sm_config_t *c = sm_config_new();
    CHECK_EQ_INT(1, sm_config_int(c, "num.partitions"));
    CHECK_EQ_INT(1073741824, sm_config_long(c, "log.segment.bytes"));
    CHECK_EQ_INT(168LL * 3600000, sm_config_retention_ms(c));
    CHECK_EQ_INT(1048588, sm_config_int(c, "message.max.bytes"));
    CHECK(sm_config_bool(c, "auto.create.topics.enable"));
    CHECK(strcmp(sm_config_str(c, "listeners"), "PLAINTEXT://localhost:9092") == 0);
    CHECK(!sm_config_is_set(c, "log.dirs"));
    CHECK_EQ_INT(SM_CONFIG_DEFAULT, sm_config_source(c, "num.partitions"));
    sm_config_free(c);
}

static void test_file_and_overrides(void) {
    char path[] = "/tmp/samsa-config-XXXXXX";
    int fd = mkstemp(path);
    const char *text = "# comment\n! also a comment\n\nnum.partitions = 6\n"
                       "log.dirs=/a,\\\n   /b\nlog.retention.minutes: 30\nssl.keystore.location=/x\n";
    REQUIRE(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    sm_config_t *c = sm_config_new();
    char err[256];
    CHECK_EQ_INT(0, sm_config_load_file(c, path, err, sizeof(err)));
    CHECK_EQ_INT(6, sm_config_int(c, "num.partitions"));
    CHECK(strcmp(sm_config_str(c, "log.dirs"), "/a,/b") == 0);
    CHECK_EQ_INT(30 * 60000, sm_config_retention_ms(c));
    CHECK_EQ_INT(SM_CONFIG_FILE, sm_config_source(c, "num.partitions"));
    CHECK_EQ_INT(0, sm_config_set_override(c, "log.retention.ms=1000", err, sizeof(err)));
    CHECK_EQ_INT(1000, sm_config_retention_ms(c));
    CHECK_EQ_INT(SM_CONFIG_OVERRIDE, sm_config_source(c, "log.retention.ms"));
    sm_config_free(c);
    unlink(path);
}

static void test_errors_name_the_key(void) {
    sm_config_t *c = sm_config_new();
    char err[256];
    CHECK_EQ_INT(-1, sm_config_set_override(c, "log.segment.bytes=abc", err, sizeof(err)));
    CHECK(strstr(err, "log.segment.bytes") && strstr(err, "not an integer"));
    CHECK_EQ_INT(-1, sm_config_set_override(c, "num.partitions=0", err, sizeof(err)));
    CHECK(strstr(err, "num.partitions") && strstr(err, "outside"));
    CHECK_EQ_INT(-1, sm_config_set_override(c, "foo.bar=1", err, sizeof(err)));
    CHECK(strstr(err, "foo.bar") && strstr(err, "unknown key"));
    CHECK_EQ_INT(-1, sm_config_set_override(c, "auto.create.topics.enable=yes", err, sizeof(err)));
    CHECK(strstr(err, "auto.create.topics.enable"));
    CHECK_EQ_INT(-1, sm_config_set_override(c, "log.message.timestamp.type=Whenever", err, sizeof(err)));
    CHECK(strstr(err, "log.message.timestamp.type"));
    CHECK_EQ_INT(-1, sm_config_set_override(c, "novalue", err, sizeof(err)));
    CHECK(strstr(err, "key=value"));
    CHECK_EQ_INT(-1, sm_config_load_file(c, "/nonexistent/server.properties", err, sizeof(err)));
    CHECK(strstr(err, "/nonexistent/server.properties"));
    CHECK(strchr(err, '\n') == NULL);
    sm_config_free(c);
}

int main(void) {
    sm_log_set_level(SM_LOG_ERROR);
    RUN(test_defaults);
    RUN(test_file_and_overrides);
    RUN(test_errors_name_the_key);
    return t_summary("config");
}
