/*
 * samsa groups reset-offsets: plans new committed offsets for a group and,
 * only with --execute, commits them, as kafka-consumer-groups.sh does. The
 * group must have no active members (Kafka refuses otherwise: a live consumer
 * would overwrite the reset with its next commit).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/adm_groups.h"
#include "cli/cli.h"
#include "cli/out.h"

#define NOPTS(o) (sizeof(o) / sizeof((o)[0]))

int adm_parse_datetime(const char *s, int64_t *ms) {
    int y, mo, d, h, mi, sec, n = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n != 19)
        return SM_ERR_PARSE;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 || y < 1970)
        return SM_ERR_PARSE;
    const char *p = s + n;
    int64_t frac = 0;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3) frac = frac * 10 + (*p - '0');
        if (digits == 0) return SM_ERR_PARSE;
        for (; digits < 3; digits++)
            frac *= 10;
    }
    int64_t offset_s = 0;
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om, k = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &k) != 2 || k != 5) {
            k = 0;
            if (sscanf(p + 1, "%2d%2d%n", &oh, &om, &k) != 2 || k != 4) return SM_ERR_PARSE;
        }
        if (oh > 23 || om > 59) return SM_ERR_PARSE;
        offset_s = (int64_t)(oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
        p += 1 + k;
    }
    if (*p) return SM_ERR_PARSE;
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    if (t == (time_t)-1) return SM_ERR_PARSE;
    *ms = ((int64_t)t - offset_s) * 1000 + frac;
    return SM_OK;
}

enum reset_how { R_NONE, R_EARLIEST, R_LATEST, R_OFFSET, R_DATETIME, R_SHIFT, R_CURRENT };

static int64_t clamp(int64_t v, const adm_part_t *p) {
    if (v < p->log_start) return p->log_start;
    if (v > p->log_end) return p->log_end;
    return v;
}

/* Sets every partition's target; fails on a shift from no committed offset. */
static int plan(adm_cmd_t *m, adm_parts_t *ps, enum reset_how how, int64_t arg) {
    if (how == R_DATETIME && adm_offsets_for_time(m, ps, arg) != CLI_OK) return CLI_FAIL;
    for (size_t i = 0; i < ps->n; i++) {
        adm_part_t *p = &ps->v[i];
        switch (how) {
        case R_EARLIEST: p->target = p->log_start; break;
        case R_LATEST: p->target = p->log_end; break;
        case R_OFFSET: p->target = clamp(arg, p); break;
        case R_DATETIME: p->target = clamp(p->target, p); break;
        case R_CURRENT: p->target = p->committed >= 0 ? p->committed : p->log_end; break;
        case R_SHIFT:
            if (p->committed < 0) {
                cli_error("topic '%.*s' partition %d: no committed offset to shift from",
                          (int)p->topic.len, p->topic.ptr, p->partition);
                return CLI_FAIL;
            }
            p->target = clamp(p->committed + arg, p);
            break;
        case R_NONE: break;
        }
    }
    return CLI_OK;
}

static void print_plan(const adm_cmd_t *m, const char *group, const adm_parts_t *ps,
                       bool executed) {
    if (m->c.json) {
        out_json_t j;
        oj_init(&j, stdout);
        oj_obj(&j);
        oj_kstr(&j, "group", group);
        oj_kbool(&j, "executed", executed);
        oj_key(&j, "offsets");
        oj_arr(&j);
        for (size_t i = 0; i < ps->n; i++) {
            oj_obj(&j);
            oj_ksstr(&j, "topic", ps->v[i].topic);
            oj_kint(&j, "partition", ps->v[i].partition);
            oj_kint(&j, "new_offset", ps->v[i].target);
            oj_obj_end(&j);
        }
        oj_arr_end(&j);
        oj_obj_end(&j);
        return;
    }
    static const char *const hdr[] = {"GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"};
    out_table_t t;
    out_table_init(&t, 4, hdr);
    for (size_t i = 0; i < ps->n; i++) {
        out_table_cell(&t, "%s", group);
        out_table_str(&t, ps->v[i].topic);
        out_table_cell(&t, "%d", ps->v[i].partition);
        out_table_cell(&t, "%lld", (long long)ps->v[i].target);
    }
    out_table_print(&t, stdout);
    out_table_free(&t);
}

int adm_groups_reset_offsets(int argc, char **argv) {
    adm_cmd_t m;
    const char *group = NULL, *datetime = NULL;
    adm_list_t topics = {0};
    bool all_topics = false, earliest = false, latest = false, current = false;
    bool execute = false, dry_run = false;
    int64_t to_offset = 0, shift = 0;
    adm_opt_t opts[] = {
        ADM_COMMON_OPTS(&m.c),
        {"--group", ADM_STR, &group, "GROUP", "group whose offsets to reset (required)", false},
        {"--topic", ADM_LIST, &topics, "TOPIC[:P,P]", "topic, or some of its partitions", false},
        {"--all-topics", ADM_FLAG, &all_topics, "", "every topic the group has offsets for", false},
        {"--to-earliest", ADM_FLAG, &earliest, "", "to the log start offset", false},
        {"--to-latest", ADM_FLAG, &latest, "", "to the log end offset", false},
        {"--to-offset", ADM_INT, &to_offset, "N", "to offset N (kept within the log)", false},
        {"--to-datetime", ADM_STR, &datetime, "YYYY-MM-DDTHH:mm:SS.sss",
         "to the first record at or after this time (UTC, or give Z/+hh:mm)", false},
        {"--shift-by", ADM_INT, &shift, "N", "move the committed offset by N (may be negative)",
         false},
        {"--to-current", ADM_FLAG, &current, "", "to the committed offset (log end if none)",
         false},
        {"--dry-run", ADM_FLAG, &dry_run, "", "only print the plan (the default)", false},
        {"--execute", ADM_FLAG, &execute, "", "commit the planned offsets", false},
    };
    static const char *const required[] = {"--group", NULL};
    int ret = adm_start(&m, argc, argv,
                        "samsa groups reset-offsets [-b HOST:PORT] --group GROUP "
                        "(--topic T[:P,P] | --all-topics) (--to-earliest | --to-latest | "
                        "--to-offset N | --to-datetime DT | --shift-by N | --to-current) "
                        "[--dry-run | --execute]",
                        opts, NOPTS(opts), required);
    if (ret != CLI_OK) goto done;
    ret = CLI_USAGE;
    enum reset_how how = R_NONE;
    int64_t arg = 0;
    int nhow = 0;
    if (earliest) nhow++, how = R_EARLIEST;
    if (latest) nhow++, how = R_LATEST;
    if (current) nhow++, how = R_CURRENT;
    if (adm_seen(opts, NOPTS(opts), "--to-offset")) nhow++, how = R_OFFSET, arg = to_offset;
    if (adm_seen(opts, NOPTS(opts), "--shift-by")) nhow++, how = R_SHIFT, arg = shift;
    if (datetime) {
        nhow++, how = R_DATETIME;
        if (adm_parse_datetime(datetime, &arg) != SM_OK) {
            cli_error("--to-datetime: '%s' is not YYYY-MM-DDTHH:mm:SS[.sss][Z|+hh:mm]", datetime);
            goto done;
        }
    }
    if (nhow != 1) {
        cli_error("give exactly one of --to-earliest, --to-latest, --to-offset, --to-datetime, "
                  "--shift-by, --to-current");
        goto done;
    }
    if (how == R_OFFSET && to_offset < 0) {
        cli_error("--to-offset: must not be negative, not %lld", (long long)to_offset);
        goto done;
    }
    if ((topics.n > 0) == all_topics) {
        cli_error("give either --topic or --all-topics");
        goto done;
    }
    if (execute && dry_run) {
        cli_error("give only one of --dry-run, --execute");
        goto done;
    }
    if ((ret = adm_connect(&m)) != CLI_OK) goto done;
    adm_parts_t ps = {0};
    for (size_t i = 0; i < topics.n; i++)
        if ((ret = adm_add_topic_arg(&m, topics.v[i], &ps)) != CLI_OK) goto done;
    int32_t node;
    adm_group_t *g;
    if ((ret = adm_coordinator(&m, group, &node)) != CLI_OK) goto done;
    if ((ret = adm_describe_group(&m, node, group, &g)) != CLI_OK) goto done;
    ret = CLI_FAIL;
    if (!adm_group_inactive(g)) {
        char what[300], msg[400];
        snprintf(what, sizeof(what), "group '%s'", group);
        snprintf(msg, sizeof(msg),
                 "Assignments can only be reset if the group '%s' is inactive, but the current "
                 "state is %.*s.",
                 group, (int)g->group_state.len, g->group_state.ptr);
        out_kafka_error(what, PROTO_ERR_NON_EMPTY_GROUP, sm_str_from(msg));
        goto done;
    }
    if (adm_fetch_committed(&m, node, group, &ps, !all_topics) != CLI_OK) goto done;
    out_progress("listing offsets of %zu partitions", ps.n);
    if (adm_fetch_log_offsets(&m, &ps) != CLI_OK) goto done;
    if (plan(&m, &ps, how, arg) != CLI_OK) goto done;
    adm_parts_sort(&ps);
    if (execute) {
        out_progress("committing offsets of %zu partitions", ps.n);
        if (ps.n && adm_commit_targets(&m, node, group, &ps) != CLI_OK) goto done;
    }
    out_progress_end();
    print_plan(&m, group, &ps, execute);
    if (!execute && !dry_run)
        fprintf(stderr,
                "samsa: dry run, nothing changed (add --execute to commit these offsets)\n");
    ret = CLI_OK;
done:
    return adm_finish(&m, opts, NOPTS(opts), ret);
}
