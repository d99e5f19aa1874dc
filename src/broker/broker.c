/*
 * Broker start-up and shutdown: settings from the configuration (every
 * listener served or refused), the lock on each log dir, the cluster id in
 * meta.properties, the metadata log (__cluster_metadata-0, a one-voter quorum)
 * replayed into the image, partition logs, the delayed-request threads and one
 * network server per listener; and the operator's log lines for topic and
 * config changes. The locks are held from start to the end of broker_stop,
 * after the logs are closed.
 */
#include "broker/broker.h"
#include "broker/configs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/fileio.h"
#include "base/log.h"
#include "cluster/cluster.h"
#include "broker/delayed.h"
#include "broker/forward.h"
#include "broker/partition.h"
#include "broker/replica.h"
#include "broker/group_host.h"
#include "txn/coordinator.h"
#include "protocol/records.h"
#include "protocol/request.h"
#include "version.h"

void broker_on_request(net_request_t *nreq, void *arg);

int64_t broker_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "NAME://host:port" -> name, host, port ("" host: every interface). */
static int parse_listener(const char *uri, char *name, size_t ncap, char *host, size_t cap,
                          int32_t *port) {
    const char *p = strstr(uri, "://");
    if (!p || p == uri || (size_t)(p - uri) >= ncap) return -1;
    memcpy(name, uri, (size_t)(p - uri));
    name[p - uri] = 0;
    p += 3;
    const char *colon = strrchr(p, ':');
    if (!colon) return -1;
    size_t n = (size_t)(colon - p);
    if (n >= cap) return -1;
    memcpy(host, p, n);
    host[n] = 0;
    if (host[0] == '[') { /* [::1] */
        memmove(host, host + 1, n);
        char *e = strchr(host, ']');
        if (e) *e = 0;
    }
    char *end;
    long v = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end || v < 0 || v > 65535) return -1;
    *port = (int32_t)v;
    return 0;
}

/* Calls fn on each trimmed, non-empty item of a comma-separated list; stops
 * at the first non-zero return. */
static int each_item(const char *list, int (*fn)(const char *item, void *arg), void *arg) {
    char *buf = strdup(list ? list : "");
    if (!buf) return SM_ERR_NOMEM;
    char *save = NULL;
    int rc = 0;
    for (char *t = strtok_r(buf, ",", &save); t && !rc; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        size_t l = strlen(t);
        while (l && t[l - 1] == ' ')
            t[--l] = 0;
        if (*t) rc = fn(t, arg);
    }
    free(buf);
    return rc;
}

/* The security protocol of a listener name: listener.security.protocol.map,
 * else the name itself when it is a protocol (as Kafka does). */
static void listener_protocol(const sm_config_t *c, const char *name, char *out, size_t cap) {
    char map[4096];
    snprintf(map, sizeof(map), "%s", sm_config_str(c, "listener.security.protocol.map"));
    char *save = NULL;
    for (char *t = strtok_r(map, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        char *colon = strchr(t, ':');
        if (!colon) continue;
        *colon = 0;
        if (strcasecmp(t, name) == 0) {
            snprintf(out, cap, "%s", colon + 1);
            out[strcspn(out, " ")] = 0;
            return;
        }
    }
    snprintf(out, cap, "%s", name);
}

static bool in_list(const char *list, const char *name) {
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s", list ? list : "");
    char *save = NULL;
    for (char *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save))
        if (strcasecmp(t, name) == 0) return true;
    return false;
}

/* One item of listeners: served (PLAINTEXT) or refused with one line. */
static int add_listener(const char *uri, void *arg) {
    broker_t *b = arg;
    const sm_config_t *c = b->cfg;
    if (b->nlisteners == BROKER_MAX_LISTENERS) {
        fprintf(stderr, "config: listeners: more than %d listeners\n", BROKER_MAX_LISTENERS);
        return SM_ERR_PARSE;
    }
    broker_listener_t *l = &b->listeners[b->nlisteners];
    if (parse_listener(uri, l->name, sizeof(l->name), l->host, sizeof(l->host), &l->port)) {
        fprintf(stderr, "config: listeners: cannot parse \"%s\" (expected NAME://host:port)\n",
                uri);
        return SM_ERR_PARSE;
    }
    for (int i = 0; i < b->nlisteners; i++)
        if (strcasecmp(b->listeners[i].name, l->name) == 0) {
            fprintf(stderr, "config: listeners: the name %s is used twice\n", l->name);
            return SM_ERR_PARSE;
        }
    if (in_list(sm_config_str(c, "controller.listener.names"), l->name) &&
        (b->s.cluster_mode || sm_config_is_set(c, "process.roles"))) {
        if (!b->s.cluster_mode) {
            fprintf(stderr,
                    "config: listeners: %s is a controller listener (controller.listener.names) "
                    "but controller.quorum.voters is not set; set it to run a cluster, or "
                    "remove the listener to run this node alone\n",
                    uri);
            return SM_ERR_PARSE;
        }
        if (b->ctrl_listener.name[0]) {
            fprintf(stderr, "config: listeners: more than one controller listener (%s)\n", uri);
            return SM_ERR_PARSE;
        }
        /* Served by the cluster module on its own thread, not as a client listener. */
        broker_listener_t *cl = &b->ctrl_listener;
        memcpy(cl, l, sizeof(*cl));
        memcpy(cl->advertised_host, l->host, sizeof(l->host));
        cl->advertised_port = l->port;
        cl->b = b;
        cl->forwarded = true;
        memset(l, 0, sizeof(*l));
        return 0;
    }
    char proto[64];
    listener_protocol(c, l->name, proto, sizeof(proto));
    if (strcasecmp(proto, "PLAINTEXT") != 0) {
        fprintf(stderr,
                "config: listeners: %s uses security protocol %s, which Samsa cannot serve yet "
                "(only PLAINTEXT)\n",
                uri, proto);
        return SM_ERR_PARSE;
    }
    memcpy(l->advertised_host, l->host, sizeof(l->host));
    l->advertised_port = l->port;
    l->b = b;
    b->nlisteners++;
    return 0;
}

/* One item of advertised.listeners: the address of the listener it names. */
static int add_advertised(const char *uri, void *arg) {
    broker_t *b = arg;
    char name[64], host[256];
    int32_t port;
    if (parse_listener(uri, name, sizeof(name), host, sizeof(host), &port)) {
        fprintf(stderr,
                "config: advertised.listeners: cannot parse \"%s\" (expected NAME://host:port)\n",
                uri);
        return SM_ERR_PARSE;
    }
    for (int i = -1; i < b->nlisteners; i++) {
        broker_listener_t *l = i < 0 ? &b->ctrl_listener : &b->listeners[i];
        if (!l->name[0] || strcasecmp(l->name, name) != 0) continue;
        snprintf(l->advertised_host, sizeof(l->advertised_host), "%s", host);
        l->advertised_port = port;
        return 0;
    }
    fprintf(stderr, "config: advertised.listeners: %s names no listener in listeners\n", uri);
    return SM_ERR_PARSE;
}

static int load_listeners(broker_t *b, const sm_config_t *c) {
    int rc = each_item(sm_config_str(c, "listeners"), add_listener, b);
    if (rc) return rc;
    if (b->nlisteners == 0 && !(b->s.cluster_mode && !b->s.is_broker)) {
        fprintf(stderr, "config: listeners: no listener given\n");
        return SM_ERR_PARSE;
    }
    if ((rc = each_item(sm_config_str(c, "advertised.listeners"), add_advertised, b))) return rc;
    for (int i = 0; i < b->nlisteners; i++) {
        broker_listener_t *l = &b->listeners[i];
        if (!l->advertised_host[0] || strcmp(l->advertised_host, "0.0.0.0") == 0 ||
            strcmp(l->advertised_host, "::") == 0) {
            if (gethostname(l->advertised_host, sizeof(l->advertised_host)))
                snprintf(l->advertised_host, sizeof(l->advertised_host), "localhost");
        }
    }
    return SM_OK;
}

/* process.roles: "broker", "controller" or both. */
static int parse_roles(broker_t *b, const char *roles, bool *controller) {
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", roles ? roles : "");
    b->s.is_broker = false;
    *controller = false;
    char *save = NULL;
    for (char *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        if (strcmp(t, "broker") == 0)
            b->s.is_broker = true;
        else if (strcmp(t, "controller") == 0)
            *controller = true;
        else {
            fprintf(stderr, "config: process.roles: unknown role \"%s\" (broker, controller)\n",
                    t);
            return SM_ERR_PARSE;
        }
    }
    if (!b->s.is_broker && !*controller) {
        fprintf(stderr, "config: process.roles: empty (broker, controller or both)\n");
        return SM_ERR_PARSE;
    }
    return SM_OK;
}

/* Cluster mode (controller.quorum.voters): the roles, the voters and the controller
 * listener must agree, as Kafka checks them at start. */
static int check_cluster_settings(broker_t *b, const sm_config_t *c, bool controller) {
    cluster_voter_t voters[RAFT_MAX_VOTERS];
    int nv = 0;
    char err[512];
    bool dynamic = !sm_config_is_set(c, "controller.quorum.voters");
    if (dynamic ? cluster_parse_bootstrap(sm_config_str(c, "controller.quorum.bootstrap.servers"),
                                          voters, &nv, err, sizeof(err))
                : cluster_parse_voters(sm_config_str(c, "controller.quorum.voters"), voters, &nv,
                                       err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        return SM_ERR_PARSE;
    }
    bool voter = false;
    for (int i = 0; i < nv; i++)
        if (voters[i].id == b->s.node_id) voter = true;
    /* a dynamic quorum's controllers join as observers and are added (KIP-853) */
    if (dynamic) voter = controller;
    if (controller && !voter) {
        fprintf(stderr,
                "config: controller.quorum.voters: node.id %d has the controller role but is not "
                "one of the voters\n",
                b->s.node_id);
        return SM_ERR_PARSE;
    }
    if (!controller && voter) {
        fprintf(stderr,
                "config: controller.quorum.voters: node.id %d is a voter but process.roles has "
                "no controller role\n",
                b->s.node_id);
        return SM_ERR_PARSE;
    }
    if (controller && !b->ctrl_listener.name[0]) {
        fprintf(stderr, "config: controller.listener.names: a controller needs its listener "
                        "(e.g. listeners=PLAINTEXT://:9092,CONTROLLER://:9093 and "
                        "controller.listener.names=CONTROLLER)\n");
        return SM_ERR_PARSE;
    }
    if (!controller && b->ctrl_listener.name[0]) {
        fprintf(stderr, "config: listeners: %s is a controller listener but process.roles has no "
                        "controller role\n",
                b->ctrl_listener.name);
        return SM_ERR_PARSE;
    }
    return SM_OK;
}

typedef struct find_ctrl {
    const sm_config_t *c;
    int n;
} find_ctrl_t;

static int find_ctrl_listener(const char *uri, void *arg) {
    find_ctrl_t *f = arg;
    char name[64], host[256];
    int32_t port;
    if (parse_listener(uri, name, sizeof(name), host, sizeof(host), &port) == 0 &&
        in_list(sm_config_str(f->c, "controller.listener.names"), name))
        f->n++;
    return 0;
}

static bool has_controller_listener(const sm_config_t *c) {
    find_ctrl_t f = {.c = c};
    each_item(sm_config_str(c, "listeners"), find_ctrl_listener, &f);
    return f.n > 0;
}

static int load_settings(broker_t *b, sm_config_t *c) {
    broker_settings_t *s = &b->s;
    s->node_id = sm_config_is_set(c, "broker.id") && !sm_config_is_set(c, "node.id")
                     ? sm_config_int(c, "broker.id")
                     : sm_config_int(c, "node.id");
    int rc;
    bool controller = true;
    rc = parse_roles(b, sm_config_str(c, "process.roles"), &controller);
    if (rc) return rc;
    /* controller.quorum.voters: a static quorum. controller.quorum.bootstrap.servers alone: a
     * dynamic one (KIP-853) for a broker, or a controller with its controller listener; a
     * controller without one (Kafka's stock file with only a client listener) stays a plain
     * single node. */
    s->dynamic_quorum = !sm_config_is_set(c, "controller.quorum.voters") &&
                        sm_config_is_set(c, "controller.quorum.bootstrap.servers") &&
                        sm_config_is_set(c, "process.roles") &&
                        (!controller || has_controller_listener(c));
    s->cluster_mode = sm_config_is_set(c, "controller.quorum.voters") || s->dynamic_quorum;
    if (!s->cluster_mode) {
        /* A single node: Kafka's KRaft keys name nothing Samsa needs. */
        static const char *const unused[] = {"process.roles",
                                             "controller.quorum.bootstrap.servers",
                                             "offsets.topic.replication.factor",
                                             "transaction.state.log.replication.factor", NULL};
        for (const char *const *k = unused; *k; k++)
            if (sm_config_is_set(c, *k))
                sm_warn("config", "%s: Kafka setting Samsa does not act on; ignored (a single "
                                  "node without controller.quorum.voters)",
                        *k);
    }
    if (!s->cluster_mode && !(s->is_broker && controller)) {
        fprintf(stderr,
                "config: process.roles=%s needs controller.quorum.voters (a cluster); a single "
                "node is broker,controller\n",
                sm_config_str(c, "process.roles"));
        return SM_ERR_PARSE;
    }
    if (!s->cluster_mode) s->is_broker = true;
    rc = load_listeners(b, c);
    if (rc) return rc;
    if (s->cluster_mode && (rc = check_cluster_settings(b, c, controller))) return rc;
    s->is_controller = controller;
    s->num_partitions = sm_config_int(c, "num.partitions");
    s->default_replication_factor = (int16_t)sm_config_int(c, "default.replication.factor");
    s->auto_create_topics = sm_config_bool(c, "auto.create.topics.enable");
    s->delete_topic_enable = sm_config_bool(c, "delete.topic.enable");
    s->fetch_max_bytes = sm_config_int(c, "fetch.max.bytes");
    s->fsync_before_ack = sm_config_bool(c, "samsa.log.fsync.before.ack");
    s->producer_id_expiration_ms = sm_config_long(c, "producer.id.expiration.ms");
    s->fetch_session_slots = sm_config_int(c, "max.incremental.fetch.session.cache.slots");
    return SM_OK;
}

/* ---- meta.properties: the cluster id, as Kafka keeps it in each log dir ---- */

/* A log directory's id (KIP-858, meta.properties directory.id): random as Kafka's
 * Uuid.randomUuid, never one of the reserved ids (the first 100, zero included) nor one whose
 * text starts with '-' (command-line tools would take it for an option). */
static void random_directory_id(uint8_t u[16]) {
    do {
        if (getrandom(u, 16, 0) != 16)
            for (int i = 0; i < 16; i++)
                u[i] = (uint8_t)rand();
        sm_uuid_make_v4(u);
    } while (u[0] == 0 || (u[0] >> 2) == 62);
}

static void random_cluster_id(char *out) {
    uint8_t u[16];
    random_directory_id(u);
    sm_uuid_base64(u, out);
}

/* This node's directory id: the first log dir's meta.properties directory.id; one is added to
 * a file written before Samsa kept it. */
static int load_directory_id(const char *dir, uint8_t out[16]) {
    char path[4096];
    snprintf(path, sizeof(path), "%s/meta.properties", dir);
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = fio_read_file(path, &data, &len, 64 << 10);
    if (rc != SM_OK) return rc;
    const char *p = NULL;
    for (size_t i = 0; i + 13 <= len && !p; i++)
        if ((i == 0 || data[i - 1] == '\n') && memcmp(data + i, "directory.id=", 13) == 0)
            p = (const char *)data + i + 13;
    if (p) {
        size_t n = strcspn(p, "\r\n");
        if ((const uint8_t *)p + n > data + len) n = (size_t)(data + len - (const uint8_t *)p);
        rc = sm_uuid_parse_base64(p, n, out);
        if (rc != SM_OK) sm_error("broker", "%s: directory.id cannot be read", path);
        free(data);
        return rc;
    }
    char id[23], *text = malloc(len + 64);
    random_directory_id(out);
    sm_uuid_base64(out, id);
    if (!text) {
        free(data);
        return SM_ERR_NOMEM;
    }
    memcpy(text, data, len);
    int n = snprintf(text + len, 64, "%sdirectory.id=%s\n",
                     len && data[len - 1] != '\n' ? "\n" : "", id);
    rc = fio_write_file(path, text, len + (size_t)n, true);
    free(text);
    free(data);
    return rc;
}

static int load_cluster_id(broker_t *b, char **dirs, int ndirs) {
    char found[64] = "";
    for (int i = 0; i < ndirs; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/meta.properties", dirs[i]);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        char line[512];
        while (fgets(line, sizeof(line), f)) {
            if (strncmp(line, "cluster.id=", 11) == 0) {
                char id[64];
                size_t idl = strcspn(line + 11, "\r\n");
                if (idl >= sizeof(id)) idl = sizeof(id) - 1;
                memcpy(id, line + 11, idl);
                id[idl] = 0;
                id[strcspn(id, "\r\n")] = 0;
                if (found[0] && strcmp(found, id) != 0) {
                    fclose(f);
                    sm_error("broker", "%s: cluster.id %s differs from %s in another log dir", path,
                             id, found);
                    return SM_ERR;
                }
                snprintf(found, sizeof(found), "%s", id);
            }
        }
        fclose(f);
    }
    const char *cfg_id = sm_config_str(b->cfg, "cluster.id");
    if (!found[0]) {
        cluster_voter_t voters[RAFT_MAX_VOTERS];
        int nv = 0;
        char err[256];
        if (cfg_id)
            snprintf(found, sizeof(found), "%s", cfg_id);
        else if (b->s.cluster_mode && !b->s.dynamic_quorum &&
                 cluster_parse_voters(sm_config_str(b->cfg, "controller.quorum.voters"), voters,
                                      &nv, err, sizeof(err)) == SM_OK)
            cluster_default_id(voters, nv, found); /* the same on every node: no format step */
        else if (b->s.dynamic_quorum &&
                 cluster_parse_bootstrap(sm_config_str(b->cfg,
                                                       "controller.quorum.bootstrap.servers"),
                                         voters, &nv, err, sizeof(err)) == SM_OK)
            cluster_default_id(voters, nv, found); /* nodes with the same bootstrap servers */
        else
            random_cluster_id(found);
    }
    snprintf(b->cluster_id, sizeof(b->cluster_id), "%s", found);
    for (int i = 0; i < ndirs; i++) {
        char path[4096], text[512];
        snprintf(path, sizeof(path), "%s/meta.properties", dirs[i]);
        if (access(path, F_OK) == 0) continue;
        uint8_t dir_id[16];
        char dir_text[23];
        random_directory_id(dir_id);
        sm_uuid_base64(dir_id, dir_text);
        int n = snprintf(text, sizeof(text),
                         "#\n#Written by samsa-server\nnode.id=%d\nversion=1\ncluster.id=%s\n"
                         "directory.id=%s\n",
                         b->s.node_id, found, dir_text);
        if (fio_write_file(path, text, (size_t)n, true)) return SM_ERR_IO;
    }
    return SM_OK;
}

/* ---- the metadata log: a one-voter quorum ---- */

static int quorum_append(void *ctx, uint8_t *batch, size_t len, int64_t *base) {
    broker_t *b = ctx;
    int64_t last;
    int rc = log_append(b->metadata_log, batch, len, 0, base, &last);
    if (rc == SM_OK) rc = log_flush(b->metadata_log);
    return rc;
}

static int replay_batch(void *arg, const uint8_t *batch, size_t len,
                        const proto_batch_header_t *h) {
    (void)h;
    return meta_controller_replay_batch(arg, batch, len);
}

static int replay_metadata(broker_t *b) {
    return log_for_each_batch(b->metadata_log, 0, replay_batch, &b->controller);
}

/* "k=v, k2=v2" of a config map (name -> char* value), for log lines. */
static void format_configs(const sm_map_t *m, char *out, size_t cap) {
    size_t o = 0, it = 0;
    const void *k;
    size_t kl;
    void *v;
    out[0] = 0;
    while (sm_map_next(m, &it, &k, &kl, &v) && o + 1 < cap) {
        int n = snprintf(out + o, cap - o, "%s%.*s=%s", o ? ", " : "", (int)kl, (const char *)k,
                         (const char *)v);
        if (n < 0) break;
        o += (size_t)n;
    }
    if (!out[0]) snprintf(out, cap, "none");
}

static void on_topic_created(void *ctx, const meta_topic_t *t, int32_t first) {
    char cfgs[1024];
    format_configs(&t->configs, cfgs, sizeof(cfgs));
    if (first == 0)
        sm_info("broker", "created topic %s with %d partitions (configs: %s)", t->name,
                t->n_partitions, cfgs);
    else
        sm_info("broker", "topic %s: added partitions %d..%d", t->name, first, t->n_partitions - 1);
    broker_partitions_create(ctx, t, first);
}

static void on_partitions_changed(void *ctx, const meta_topic_t *t) {
    broker_partitions_create(ctx, t, 0); /* new epochs, and replicas that are new here */
}

static void on_topic_deleted(void *ctx, const meta_topic_t *t) {
    sm_info("broker", "deleting topic %s (%d partitions)", t->name, t->n_partitions);
    broker_partitions_delete(ctx, t);
}

static void on_configs_changed(void *ctx, const meta_topic_t *t) {
    broker_t *b = ctx;
    char cfgs[1024];
    if (t) {
        format_configs(&t->configs, cfgs, sizeof(cfgs));
        sm_info("broker", "topic %s: configs changed; overrides now: %s", t->name, cfgs);
        broker_partitions_reconfigure(ctx, t);
        return;
    }
    format_configs(&b->image.broker_default_configs, cfgs, sizeof(cfgs));
    char mine[1024];
    format_configs(&b->image.broker_configs, mine, sizeof(mine));
    sm_info("broker", "dynamic broker configs changed; cluster-wide: %s; this broker: %s", cfgs,
            mine);
    if (broker_configs_refresh(ctx))
        sm_error("broker", "dynamic broker configs not applied: out of memory");
}

static void on_conn_close(net_conn_t *c, void *arg) {
    (void)c;
    (void)arg;
}

int16_t broker_internal_rf(broker_t *b, const char *key) {
    return b->s.cluster_mode ? (int16_t)sm_config_int(b->cfg, key) : 1;
}

int broker_internal_topic(broker_t *b, const char *name, int32_t partitions, int16_t rf,
                          const meta_config_kv_t *kv, int nkv, sm_uuid_t *id, int32_t *nparts) {
    sm_str_t n = sm_str_from(name);
    meta_image_rdlock(&b->image);
    bool exists = meta_image_topic(&b->image, n) != NULL;
    meta_image_unlock(&b->image);
    if (!exists) {
        meta_result_t res;
        sm_uuid_t created;
        meta_create_topic(&b->controller, n, partitions, rf, kv, nkv, false, &created, &res);
        if (res.error) {
            sm_error("broker", "cannot create %s: %s", name, res.message);
            return SM_ERR;
        }
    }
    meta_image_rdlock(&b->image);
    meta_topic_t *t = meta_image_topic(&b->image, n);
    if (t) {
        *id = t->id;
        *nparts = t->n_partitions;
    }
    meta_image_unlock(&b->image);
    if (!t) sm_error("broker", "%s is missing from the metadata image after its creation", name);
    return t ? SM_OK : SM_ERR;
}

int broker_next_producer_id(broker_t *b, int64_t *pid) {
    pthread_mutex_lock(&b->pid_mu);
    int rc = SM_OK;
    if (b->pid_next >= b->pid_end) {
        meta_result_t res;
        int64_t first = 0;
        meta_allocate_producer_ids(&b->controller, 1000, &first, &res);
        if (res.error) {
            rc = SM_ERR_IO;
            goto out;
        }
        b->pid_next = first;
        b->pid_end = first + 1000;
    }
    *pid = b->pid_next++;
out:
    pthread_mutex_unlock(&b->pid_mu);
    return rc;
}

typedef struct dir_list {
    char **v;
    int n;
} dir_list_t;

static int push_dir(const char *item, void *arg) {
    dir_list_t *l = arg;
    return (l->v[l->n++] = strdup(item)) ? 0 : SM_ERR_NOMEM;
}

static char **split_dirs(const char *list, int *n) {
    dir_list_t l = {calloc(strlen(list ? list : "") / 2 + 2, sizeof(char *)), 0};
    if (!l.v || each_item(list, push_dir, &l)) {
        for (int i = 0; l.v && i < l.n; i++)
            free(l.v[i]);
        free(l.v);
        *n = 0;
        return NULL;
    }
    *n = l.n;
    return l.v;
}

/* mkdir -p, as Kafka creates missing log directories with their parents. */
static int mkdir_parents(const char *dir) {
    char path[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(path, dir, n + 1);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(path, 0755) && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(path, 0755);
}

/*
 * Takes dir's .lock as Kafka does: an exclusive flock held for the broker's
 * life (the kernel drops it when the process dies, even by kill -9), with the
 * holder's pid written inside so a second broker can name it.
 */
static int lock_dir(broker_t *b, const char *dir) {
    char path[4096];
    snprintf(path, sizeof(path), "%s/.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        sm_error("broker", "%s: cannot open the lock file: %s", path, strerror(errno));
        return SM_ERR_IO;
    }
    if (flock(fd, LOCK_EX | LOCK_NB)) {
        int e = errno;
        char holder[32] = "";
        ssize_t n = pread(fd, holder, sizeof(holder) - 1, 0);
        holder[n > 0 ? n : 0] = 0;
        holder[strcspn(holder, "\r\n")] = 0;
        close(fd);
        if (e == EWOULDBLOCK) {
            sm_error("broker",
                     "log dir %s is in use by another broker (%s%s holds %s); two brokers "
                     "cannot share a log dir",
                     dir, holder[0] ? "pid " : "a process", holder, path);
            return SM_ERR_EXISTS;
        }
        sm_error("broker", "%s: cannot lock: %s", path, strerror(e));
        return SM_ERR_IO;
    }
    char pid[32];
    int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) || pwrite(fd, pid, (size_t)n, 0) != n)
        sm_warn("broker", "%s: cannot record this pid: %s", path, strerror(errno));
    b->lock_fds[b->nlocks++] = fd;
    return SM_OK;
}

static void unlock_dirs(broker_t *b) {
    for (int i = 0; i < b->nlocks; i++)
        close(b->lock_fds[i]); /* the lock goes with the descriptor */
    b->nlocks = 0;
}

/* A log dir: created with its parents when missing, then locked. */
static int prepare_dir(broker_t *b, const char *dir) {
    struct stat st;
    if (mkdir_parents(dir) && errno != EEXIST) {
        sm_error("broker", "log dir %s: cannot create it: %s", dir, strerror(errno));
        return SM_ERR_IO;
    }
    if (stat(dir, &st)) {
        sm_error("broker", "log dir %s: %s", dir, strerror(errno));
        return SM_ERR_IO;
    }
    if (!S_ISDIR(st.st_mode)) {
        sm_error("broker",
                 "log dir %s exists and is not a directory (log.dirs must name directories)", dir);
        return SM_ERR_IO;
    }
    if (access(dir, R_OK | W_OK | X_OK)) {
        sm_error("broker", "log dir %s: not writable by this user: %s", dir, strerror(errno));
        return SM_ERR_IO;
    }
    return lock_dir(b, dir);
}

static int start_listener(broker_t *b, broker_listener_t *l) {
    const sm_config_t *cfg = b->cfg;
    net_opts_t no;
    net_opts_default(&no);
    no.host = l->host;
    no.port = l->port;
    no.threads = sm_config_int(cfg, "num.network.threads");
    no.max_request_bytes = sm_config_int(cfg, "socket.request.max.bytes");
    no.idle_ms = sm_config_long(cfg, "connections.max.idle.ms");
    no.max_inflight_per_conn = sm_config_int(cfg, "queued.max.requests");
    int64_t qb = sm_config_long(cfg, "queued.max.request.bytes");
    no.max_inflight_bytes = qb > 0 ? (size_t)qb : 512u << 20;
    no.max_connections = sm_config_int(cfg, "max.connections");
    no.max_connections_per_ip = sm_config_int(cfg, "max.connections.per.ip");
    no.ip_overrides = sm_config_str(cfg, "max.connections.per.ip.overrides");
    no.on_request = broker_on_request;
    no.on_close = on_conn_close;
    no.arg = l;
    no.start_closed = b->s.cluster_mode && b->s.is_broker;
    int rc = net_server_start(&no, &l->net);
    if (rc) return rc;
    if (l->advertised_port == 0) l->advertised_port = net_server_port(l->net);
    sm_info("broker", "listener %s: %s PLAINTEXT on %s:%d, advertised as %s:%d", l->name,
            no.start_closed ? "bound (refusing connections until the broker is caught up "
                              "with the metadata log and unfenced)"
                            : "serving",
            l->host[0] ? l->host : "*", net_server_port(l->net), l->advertised_host,
            l->advertised_port);
    return SM_OK;
}

/* cluster_opts_t.on_serving (quorum thread): the broker has caught up with the metadata log
 * and is unfenced; its client listeners open, as Kafka's broker starts its acceptors only
 * then. */
static void open_listeners(void *ctx) {
    broker_t *b = ctx;
    pthread_mutex_lock(&b->listeners_mu);
    for (int i = 0; i < b->nlisteners && !b->listeners_stopped; i++) {
        net_server_open(b->listeners[i].net);
        sm_info("broker", "listener %s: serving PLAINTEXT on port %d", b->listeners[i].name,
                net_server_port(b->listeners[i].net));
    }
    pthread_mutex_unlock(&b->listeners_mu);
}

/* The cleaner is about to remove an ABORT marker whose transaction has no
 * data left (log_clean_opts_t.marker_removed): its entry leaves the
 * partition's aborted index too, so read_committed fetches stop announcing
 * a transaction whose marker is gone (a client would drop the producer's
 * later batches until some other ABORT marker). */
static void aborted_marker_removed(void *arg, log_t *l, int64_t producer_id, int64_t offset) {
    broker_t *b = arg;
    const char *dir = log_dir(l);
    const char *name = strrchr(dir, '/');
    char topic[256];
    int32_t index;
    if (!log_manager_parse_dir_name(name ? name + 1 : dir, topic, sizeof(topic), &index)) return;
    meta_image_rdlock(&b->image);
    meta_topic_t *t = meta_image_topic(&b->image, (sm_str_t){topic, (int32_t)strlen(topic)});
    sm_uuid_t id = t ? t->id : (sm_uuid_t){{0}};
    meta_image_unlock(&b->image);
    broker_partition_t *p = t ? broker_partition_get(b, &id, index) : NULL;
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    if (p->log == l) txn_aborted_index_remove(&p->aborted, producer_id, offset);
    pthread_mutex_unlock(&p->mu);
    broker_partition_put(p);
}

/* True when the image has the partition folder's topic: by id when the
 * folder names one, else by name. Caller holds the image lock. */
static bool claimed_by_image(void *arg, const char *topic, int32_t partition,
                             const uint8_t *topic_id) {
    meta_image_t *img = arg;
    meta_topic_t *t;
    if (topic_id) {
        sm_uuid_t id;
        memcpy(id.b, topic_id, 16);
        t = meta_image_topic_by_id(img, &id);
        if (t && strcmp(t->name, topic) != 0) t = NULL;
    } else {
        t = meta_image_topic(img, (sm_str_t){topic, (int32_t)strlen(topic)});
    }
    return t && partition >= 0 && partition < t->n_partitions;
}

/* Runs a request a broker forwarded to this controller (worker thread). */
static void serve_forwarded(void *ctx, net_request_t *nreq) {
    broker_t *b = ctx;
    int16_t key = nreq->len >= 2 ? (int16_t)(nreq->frame[0] << 8 | nreq->frame[1]) : -1;
    if (key != PROTO_ALLOCATE_PRODUCER_IDS_REQUEST_API_KEY) {
        broker_on_request(nreq, &b->ctrl_listener);
        return;
    }
    /* A broker's producer id block (a controller-only API, not in the broker's table). */
    sm_arena_t a;
    sm_arena_init(&a, 0);
    proto_request_t req;
    proto_allocate_producer_ids_response_t resp;
    proto_allocate_producer_ids_response_init(&resp);
    uint8_t *frame = NULL;
    size_t len = 0;
    if (proto_request_parse(nreq->frame, nreq->len, &a, &req) == SM_OK) {
        meta_result_t res;
        int64_t first = -1;
        meta_allocate_producer_ids(&b->controller, 1000, &first, &res);
        resp.error_code = res.error;
        resp.producer_id_start = res.error ? -1 : first;
        resp.producer_id_len = res.error ? 0 : 1000;
        uint8_t *enc;
        if (proto_response_encode(&a, req.api, req.header.request_api_version,
                                  req.header.correlation_id, &resp, &enc, &len) == SM_OK &&
            (frame = malloc(len)))
            memcpy(frame, enc, len);
    }
    sm_arena_free(&a);
    if (!frame) {
        net_request_close(nreq);
        return;
    }
    net_segment_t seg = {frame, len, -1, 0, free, frame};
    net_request_respond(nreq, &seg, 1);
}

static int start_cluster(broker_t *b, const sm_config_t *cfg, const char *first_dir) {
    cluster_opts_t *o = calloc(1, sizeof(*o));
    if (!o) return SM_ERR_NOMEM;
    char err[512];
    o->dynamic = b->s.dynamic_quorum;
    int rc = o->dynamic
                 ? cluster_parse_bootstrap(sm_config_str(cfg, "controller.quorum.bootstrap.servers"),
                                           o->bootstrap, &o->n_bootstrap, err, sizeof(err))
                 : cluster_parse_voters(sm_config_str(cfg, "controller.quorum.voters"), o->voters,
                                        &o->n_voters, err, sizeof(err));
    if (!rc && (rc = load_directory_id(first_dir, o->directory_id)) != SM_OK)
        snprintf(err, sizeof(err), "%s/meta.properties: no usable directory.id", first_dir);
    if (rc) {
        fprintf(stderr, "%s\n", err);
        free(o);
        return SM_ERR_PARSE;
    }
    o->node_id = b->s.node_id;
    o->is_broker = b->s.is_broker;
    o->is_controller = b->s.is_controller;
    snprintf(o->cluster_id, sizeof(o->cluster_id), "%s", b->cluster_id);
    snprintf(o->metadata_dir, sizeof(o->metadata_dir), "%s/__cluster_metadata-0", first_dir);
    snprintf(o->controller_listener, sizeof(o->controller_listener), "%s",
             b->ctrl_listener.name);
    snprintf(o->controller_host, sizeof(o->controller_host), "%s", b->ctrl_listener.host);
    o->controller_port = b->ctrl_listener.port;
    net_opts_default(&o->net);
    o->net.max_request_bytes = sm_config_int(cfg, "socket.request.max.bytes");
    o->election_timeout_ms = sm_config_int(cfg, "controller.quorum.election.timeout.ms");
    o->fetch_timeout_ms = sm_config_int(cfg, "controller.quorum.fetch.timeout.ms");
    o->election_backoff_max_ms = sm_config_int(cfg, "controller.quorum.election.backoff.max.ms");
    o->request_timeout_ms = sm_config_int(cfg, "controller.quorum.request.timeout.ms");
    o->retry_backoff_ms = sm_config_int(cfg, "controller.quorum.retry.backoff.ms");
    /* Raft counts entries between snapshots: one per 128 bytes of the byte threshold. */
    int64_t between = sm_config_long(cfg, "metadata.log.max.record.bytes.between.snapshots");
    o->snapshot_min_entries = between / 128 > 0 ? between / 128 : 1;
    o->snapshot_interval_ms = sm_config_long(cfg, "metadata.log.max.snapshot.interval.ms");
    o->heartbeat_interval_ms = sm_config_int(cfg, "broker.heartbeat.interval.ms");
    o->session_timeout_ms = sm_config_int(cfg, "broker.session.timeout.ms");
    o->unclean_leader_election = sm_config_bool(cfg, "unclean.leader.election.enable");
    o->min_insync_replicas = (int32_t)sm_config_int(cfg, "min.insync.replicas");
    o->auto_leader_rebalance = sm_config_bool(cfg, "auto.leader.rebalance.enable");
    o->leader_imbalance_check_ms =
        sm_config_long(cfg, "leader.imbalance.check.interval.seconds") * 1000;
    o->leader_imbalance_pct = sm_config_int(cfg, "leader.imbalance.per.broker.percentage");
    for (int i = 0; i < b->nlisteners && o->n_endpoints < META_MAX_ENDPOINTS; i++) {
        meta_endpoint_t *e = &o->endpoints[o->n_endpoints++];
        snprintf(e->name, sizeof(e->name), "%s", b->listeners[i].name);
        snprintf(e->host, sizeof(e->host), "%s", b->listeners[i].advertised_host);
        e->port = b->listeners[i].advertised_port;
        e->security_protocol = 0; /* PLAINTEXT */
    }
    const char *rack = sm_config_str(cfg, "broker.rack");
    snprintf(o->rack, sizeof(o->rack), "%s", rack ? rack : "");
    o->previous_broker_epoch = b->logs ? log_manager_clean_broker_epoch(b->logs) : -1;
    o->image = &b->image;
    o->controller = &b->controller;
    o->serve = serve_forwarded;
    o->serve_ctx = b;
    o->forward_stale = broker_forward_stale;
    o->forward_fail = broker_forward_fail;
    o->on_serving = open_listeners;
    rc = cluster_start(o, &b->cluster);
    free(o);
    return rc;
}

int broker_format(sm_config_t *cfg, bool standalone) {
    broker_t *b = calloc(1, sizeof(*b));
    if (!b) return SM_ERR_NOMEM;
    b->cfg = cfg;
    int ndirs = 0;
    char **dirs = NULL;
    int rc = load_settings(b, cfg);
    if (rc) goto out;
    if (standalone && !(b->s.dynamic_quorum && b->s.is_controller)) {
        fprintf(stderr, "config: --standalone: needs a controller (process.roles, its controller "
                        "listener) with controller.quorum.bootstrap.servers and no "
                        "controller.quorum.voters\n");
        rc = SM_ERR_PARSE;
        goto out;
    }
    dirs = split_dirs(sm_config_is_set(cfg, "log.dirs") ? sm_config_str(cfg, "log.dirs")
                                                        : sm_config_str(cfg, "log.dir"),
                      &ndirs);
    if (!dirs || ndirs == 0) {
        fprintf(stderr, "config: log.dirs: no log directory given\n");
        rc = SM_ERR_PARSE;
        goto out;
    }
    for (int i = 0; i < ndirs && !rc; i++)
        rc = prepare_dir(b, dirs[i]);
    if (!rc) rc = load_cluster_id(b, dirs, ndirs);
    uint8_t dir_id[16];
    if (!rc) rc = load_directory_id(dirs[0], dir_id);
    if (rc) goto out;
    char dir_text[23];
    sm_uuid_base64(dir_id, dir_text);
    if (standalone) {
        char mdir[4096];
        snprintf(mdir, sizeof(mdir), "%s/__cluster_metadata-0", dirs[0]);
        const broker_listener_t *l = &b->ctrl_listener;
        const char *host = l->advertised_host[0] ? l->advertised_host : "localhost";
        rc = cluster_format_standalone(mdir, b->s.node_id, dir_id, l->name, host,
                                       l->advertised_port);
        if (rc) goto out;
        printf("Formatted %s: cluster id %s, directory id %s, a standalone quorum of voter "
               "%d@%s:%d (kraft.version 1)\n",
               dirs[0], b->cluster_id, dir_text, b->s.node_id, host, l->advertised_port);
    } else {
        printf("Formatted %s: cluster id %s, directory id %s\n", dirs[0], b->cluster_id,
               dir_text);
    }
out:
    unlock_dirs(b);
    for (int i = 0; dirs && i < ndirs; i++)
        free(dirs[i]);
    free(dirs);
    free(b);
    return rc;
}

void broker_close_unclaimed_logs(broker_t *b) {
    meta_image_rdlock(&b->image);
    log_manager_close_unclaimed(b->logs, claimed_by_image, &b->image);
    meta_image_unlock(&b->image);
}

int broker_start(broker_t *b, sm_config_t *cfg) {
    memset(b, 0, sizeof(*b));
    b->cfg = cfg;
    int rc = load_settings(b, cfg);
    if (rc) return rc;
    pthread_mutex_init(&b->partitions_mu, NULL);
    pthread_mutex_init(&b->create_mu, NULL);
    pthread_mutex_init(&b->pid_mu, NULL);
    pthread_mutex_init(&b->settings_mu, NULL);
    pthread_mutex_init(&b->listeners_mu, NULL);
    /* The throttles' windows are static; their rates come with the dynamic configs. */
    repl_quota_init(&b->leader_quota);
    repl_quota_init(&b->follower_quota);
    int32_t quota_samples = sm_config_int(cfg, "replication.quota.window.num");
    int64_t quota_window_ms =
        (int64_t)sm_config_int(cfg, "replication.quota.window.size.seconds") * 1000;
    repl_quota_set_window(&b->leader_quota, quota_samples, quota_window_ms);
    repl_quota_set_window(&b->follower_quota, quota_samples, quota_window_ms);
    sm_map_init(&b->partitions);
    meta_image_init(&b->image);

    int ndirs = 0;
    const char *dirs_cfg = sm_config_is_set(cfg, "log.dirs") ? sm_config_str(cfg, "log.dirs")
                                                             : sm_config_str(cfg, "log.dir");
    char **dirs = split_dirs(dirs_cfg, &ndirs);
    if (!dirs || ndirs == 0) {
        fprintf(stderr, "config: log.dirs: no log directory given\n");
        return SM_ERR_PARSE;
    }
    if (ndirs > BROKER_MAX_LOG_DIRS) {
        fprintf(stderr, "config: log.dirs: more than %d directories\n", BROKER_MAX_LOG_DIRS);
        rc = SM_ERR_PARSE;
        goto out;
    }
    for (int i = 0; i < ndirs; i++)
        if ((rc = prepare_dir(b, dirs[i]))) goto out;
    if ((rc = load_cluster_id(b, dirs, ndirs))) goto out;

    /* The metadata log lives beside the partition logs, like KRaft's. */
    char mdir[4096];
    snprintf(mdir, sizeof(mdir), "%s/__cluster_metadata-0", dirs[0]);
    if (b->s.cluster_mode) {
        b->image.self_id = b->s.node_id;
        meta_quorum_t q = {.append = cluster_append,
                           .replicated = true,
                           .is_active = cluster_is_active,
                           .remote_create_topic = cluster_remote_create_topic,
                           .remote_allocate_producer_ids = cluster_remote_allocate_producer_ids};
        meta_listener_t listener = {on_topic_created, on_topic_deleted, on_configs_changed, b,
                                    on_partitions_changed};
        meta_controller_init(&b->controller, &b->image, b->s.node_id, q, listener);
        meta_image_rdlock(&b->image);
        rc = broker_configs_refresh(b);
        meta_image_unlock(&b->image);
        if (rc) goto out;
        goto logs;
    }
    log_config_t mcfg;
    log_config_default(&mcfg);
    mcfg.retention_ms = -1;
    mcfg.segment_bytes = 64 << 20;
    if ((rc = log_open(mdir, &mcfg, false, 0, -1, &b->metadata_log))) {
        sm_error("broker", "%s: cannot open the metadata log: %s", mdir, sm_strerror(rc));
        goto out;
    }
    meta_quorum_t q = {.append = quorum_append, .ctx = b};
    meta_listener_t listener = {on_topic_created, on_topic_deleted, on_configs_changed, b, NULL};
    meta_controller_init(&b->controller, &b->image, b->s.node_id, q, listener);
    if ((rc = replay_metadata(b))) {
        sm_error("broker",
                 "%s: the metadata log cannot be replayed (%s): not starting with an image that "
                 "does not match it",
                 mdir, sm_strerror(rc));
        goto out;
    }
    meta_image_rdlock(&b->image);
    rc = broker_configs_refresh(b); /* no partitions yet: only the defaults */
    meta_image_unlock(&b->image);
    if (rc) goto out;

logs:;
    log_manager_opts_t lo = {
        .dirs = (const char *const *)dirs,
        .ndirs = ndirs,
        .defaults = b->log_defaults,
        .recovery_threads = sm_config_int(cfg, "num.recovery.threads.per.data.dir"),
        .retention_check_ms = sm_config_long(cfg, "log.retention.check.interval.ms"),
        .checkpoint_interval_ms = sm_config_long(cfg, "log.flush.offset.checkpoint.interval.ms"),
        .recovery_checkpoint_ms = sm_config_long(cfg, "samsa.log.recovery.flush.ms"),
        .defer_recovery = true,
        .cleaner = {
            .enable = sm_config_bool(cfg, "log.cleaner.enable"),
            .threads = sm_config_int(cfg, "log.cleaner.threads"),
            .backoff_ms = sm_config_long(cfg, "log.cleaner.backoff.ms"),
            .dedupe_buffer_size = sm_config_long(cfg, "log.cleaner.dedupe.buffer.size"),
            .io_buffer_size = sm_config_int(cfg, "log.cleaner.io.buffer.size"),
            .load_factor = strtod(sm_config_str(cfg, "log.cleaner.io.buffer.load.factor"), NULL),
            .io_max_bytes_per_second =
                strtod(sm_config_str(cfg, "log.cleaner.io.max.bytes.per.second"), NULL),
            .marker_removed = aborted_marker_removed,
            .marker_arg = b,
        }};
    if ((rc = log_manager_open(&lo, &b->logs))) goto out;
    /* In a cluster the coordinators start with nothing loaded, before any partition
     * exists here: they load each partition of their topics this broker comes to lead
     * (broker_coordinators_leadership, as metadata applies). */
    if (b->s.cluster_mode && (rc = broker_groups_start(b))) goto out;
    if (b->s.cluster_mode && (rc = txn_coordinator_start(b))) goto out;

    /* Partitions of every topic in the image; then the folders no topic
     * claims are closed and left on disk as they are. */
    meta_image_rdlock(&b->image);
    size_t it = 0;
    void *v;
    while (sm_map_next(&b->image.topics_by_name, &it, NULL, NULL, &v)) {
        /* A partition whose log cannot open is offline alone (logged); only
         * running out of memory stops the start. */
        if ((rc = broker_partitions_create(b, v, 0)) == SM_ERR_NOMEM) break;
        rc = SM_OK;
    }
    /* Cluster mode: the image fills as the metadata log is applied; folders are claimed
     * then. */
    if (rc == SM_OK && !b->s.cluster_mode)
        log_manager_close_unclaimed(b->logs, claimed_by_image, &b->image);
    meta_image_unlock(&b->image);
    if (rc == SM_OK) rc = log_manager_start_cleaner(b->logs);
    if (rc) goto out;
    /* Logs of an unclean stop recover in the background, each served as soon
     * as it is; the coordinators need their topics whole first (recovered
     * first). */
    log_manager_start_recovery(b->logs, broker_partition_recovered, b);
    log_manager_wait_topic(b->logs, "__consumer_offsets");
    log_manager_wait_topic(b->logs, "__transaction_state");
    if ((rc = broker_delayed_start(b))) goto out;
    /* A single node's coordinators load their whole topics now. */
    if (!b->s.cluster_mode && (rc = broker_groups_start(b))) goto out;
    if (!b->s.cluster_mode && (rc = txn_coordinator_start(b))) goto out;

    for (int i = 0; i < b->nlisteners; i++)
        if ((rc = start_listener(b, &b->listeners[i]))) goto out;
    /* After the listeners: the registration carries their bound ports. */
    /* Fetchers first: partitions are followed as soon as metadata applies. */
    if (b->s.cluster_mode && (rc = broker_replicas_start(b))) goto out;
    if (b->s.cluster_mode && (rc = start_cluster(b, cfg, dirs[0]))) goto out;
    const broker_listener_t *first = b->nlisteners ? &b->listeners[0] : &b->ctrl_listener;
    b->s.advertised_port = first->advertised_port;
    snprintf(b->s.advertised_host, sizeof(b->s.advertised_host), "%s", first->advertised_host);
    sm_info("broker", "samsa-server %s node %d started (cluster %s, %zu topics, log dirs %s)",
            SAMSA_VERSION, b->s.node_id, b->cluster_id, sm_map_size(&b->image.topics_by_name),
            dirs_cfg);
out:
    if (rc && !b->logs) unlock_dirs(b); /* nothing of the dirs is open yet */
    for (int i = 0; i < ndirs; i++)
        free(dirs[i]);
    free(dirs);
    return rc;
}

void broker_stop(broker_t *b) {
    /* Parked requests answer first, then the network drains and stops: the
     * loops dispatch requests until then, and a request that would park or
     * wait for the flusher completes on its loop (the delayed module and the
     * group coordinator stay allocated, their threads gone). Only then are
     * they freed. */
    atomic_store(&b->stopping, true);
    /* No partition appears behind the shutdown's back. */
    if (b->logs) log_manager_finish_recovery(b->logs);
    broker_groups_stop(b);
    broker_delayed_stop(b);
    pthread_mutex_lock(&b->listeners_mu);
    b->listeners_stopped = true;
    pthread_mutex_unlock(&b->listeners_mu);
    /* Relays still waiting for a controller are closed while their connections live. */
    if (b->cluster) cluster_forward_close(b->cluster);
    for (int i = 0; i < b->nlisteners; i++) {
        if (b->listeners[i].net) net_server_stop(b->listeners[i].net, 5000);
        b->listeners[i].net = NULL;
    }
    /* Then the cluster: controlled shutdown, a leader resigns, the quorum thread (which
     * creates and deletes partitions as metadata applies) stops before they close. */
    /* Fetchers and the ISR upkeep stop before the quorum thread (they talk to it); what
     * they hold goes after it (it may still hand them partitions meanwhile). */
    broker_replicas_stop(b);
    /* KIP-966: the clean-shutdown markers record this registration's broker epoch. */
    if (b->cluster && b->logs)
        log_manager_set_broker_epoch(b->logs, cluster_broker_epoch(b->cluster));
    if (b->cluster) cluster_stop(b->cluster);
    b->cluster = NULL;
    broker_replicas_free(b);
    /* After the network: no handler reaches it any more; its marker thread
     * still writes to the partitions (and tells the group coordinator of
     * markers on __consumer_offsets), closed next. */
    txn_coordinator_stop(b);
    broker_delayed_free(b);
    broker_groups_free(b);
    size_t nparts = sm_map_size(&b->partitions);
    broker_partitions_close_all(b);
    bool log_errors = b->logs && log_manager_close(b->logs);
    if (log_errors) sm_error("broker", "closing the logs reported errors");
    b->logs = NULL;
    if (b->metadata_log && log_close(b->metadata_log))
        sm_error("broker", "closing the metadata log reported errors");
    b->metadata_log = NULL;
    int ndirs = b->nlocks;
    unlock_dirs(b);
    sm_info("broker", "shutdown: %zu partition logs flushed and closed%s, %d log dir(s) unlocked",
            nparts, log_errors ? " (with errors, see above)" : "", ndirs);
    meta_controller_free(&b->controller);
    meta_image_free(&b->image);
    sm_map_free(&b->partitions);
    sm_config_free(b->eff);
    b->eff = NULL;
}
