/*
 * Consumer-group calls shared by the `samsa groups` subcommands: finding the
 * coordinator, DescribeGroups, committed offsets (OffsetFetch), log offsets
 * (ListOffsets, routed to each partition's leader) and committing offsets
 * as an admin (generation -1, no member). Printing is left to groups.c.
 */
#ifndef SAMSA_CLI_ADM_GROUPS_H
#define SAMSA_CLI_ADM_GROUPS_H

#include "cli/adm_args.h"

typedef proto_describe_groups_response_described_group_t adm_group_t;
typedef proto_describe_groups_response_described_group_member_t adm_member_t;

/* One partition of a group's view: offsets and the member it is assigned to. */
typedef struct adm_part {
    sm_str_t topic;
    int32_t partition;
    int64_t committed;          /* -1: none */
    int64_t log_start;          /* -1: unknown */
    int64_t log_end;            /* -1: unknown */
    int64_t target;             /* reset-offsets: the new offset; -1 until planned */
    const adm_member_t *member; /* NULL: unassigned */
} adm_part_t;

typedef struct adm_parts {
    adm_part_t *v;
    size_t n, cap;
} adm_parts_t;

/* Appends (topic, partition) if absent; returns it. Memory from m's arena. */
adm_part_t *adm_parts_add(adm_cmd_t *m, adm_parts_t *ps, sm_str_t topic, int32_t partition);
void adm_parts_sort(adm_parts_t *ps);

/* The coordinator of group (retrying while it loads, up to the timeout).
 * Prints the failure and returns CLI_FAIL, or CLI_OK with *node set. */
int adm_coordinator(adm_cmd_t *m, const char *group, int32_t *node);

/* DescribeGroups for one group at its coordinator; *out in m's arena. */
int adm_describe_group(adm_cmd_t *m, int32_t node, const char *group, adm_group_t **out);

/* True when the group exists but has no members (Kafka's Empty), or is Dead. */
bool adm_group_inactive(const adm_group_t *g);

/* Adds the committed offsets of group to ps: every committed partition when
 * only_listed is false, else only the partitions already in ps. */
int adm_fetch_committed(adm_cmd_t *m, int32_t node, const char *group, adm_parts_t *ps,
                        bool only_listed);

/* Sets log_start and log_end of every partition in ps (ListOffsets to the
 * leaders). Unknown topics or partitions are reported and fail. */
int adm_fetch_log_offsets(adm_cmd_t *m, adm_parts_t *ps);

/* The offset of the first record with timestamp >= ts_ms for each partition
 * into target (log_end where there is none). */
int adm_offsets_for_time(adm_cmd_t *m, adm_parts_t *ps, int64_t ts_ms);

/* Adds every partition of topic (from Metadata) to ps; unknown topic fails. */
int adm_topic_partitions(adm_cmd_t *m, const char *topic, adm_parts_t *ps);

/* Commits each partition's target for group at its coordinator. */
int adm_commit_targets(adm_cmd_t *m, int32_t node, const char *group, const adm_parts_t *ps);

/* Attaches members' assignments (consumer protocol) to the partitions, adding
 * assigned partitions that have no committed offset. */
void adm_attach_members(adm_cmd_t *m, const adm_group_t *g, adm_parts_t *ps);

/* samsa groups reset-offsets (adm_reset.c); and its date parser, exposed for
 * the docs' examples: "YYYY-MM-DDTHH:mm:SS[.sss]" with an optional "Z" or
 * "+hh:mm"/"-hh:mm" (no zone: UTC), into milliseconds since the epoch. */
int adm_groups_reset_offsets(int argc, char **argv);
int adm_parse_datetime(const char *s, int64_t *ms);

/* "T" (every partition, from Metadata) or "T:0,1,2" into ps. */
int adm_add_topic_arg(adm_cmd_t *m, const char *arg, adm_parts_t *ps);

#endif
