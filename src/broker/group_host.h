/*
 * The broker's side of the group coordinator: creates __consumer_offsets,
 * implements group_host_t over the broker's partitions and flusher pool, and
 * starts and stops the coordinator (b->groups).
 */
#ifndef BROKER_GROUP_HOST_H
#define BROKER_GROUP_HOST_H

#include "broker/broker.h"

int broker_groups_start(broker_t *b);
/* Answers the coordinator's parked requests and stops its timer; it stays
 * allocated while the event loops still dispatch requests. */
void broker_groups_stop(broker_t *b);
/* Frees it, after the event loops stopped. */
void broker_groups_free(broker_t *b);

/*
 * Cluster mode: this broker became (led) or stopped being (!led) the leader of
 * partition of topic; for __consumer_offsets and __transaction_state the group
 * or transaction coordinator loads or unloads that partition. Any other topic,
 * and a single node, are ignored. Non-blocking (the loading happens on the
 * coordinators' own threads): partition.c calls it as metadata applies.
 */
void broker_coordinators_leadership(broker_t *b, const char *topic, int32_t partition, bool led,
                                    int32_t leader_epoch);
/*
 * Cluster mode: the node leading partition of an internal topic (the
 * coordinator of the keys hashed to it) into *node. NONE, or
 * COORDINATOR_NOT_AVAILABLE when it has no leader or the topic does not exist
 * yet (it is then created through the controller: blocks for that round trip).
 */
int16_t broker_coordinator_node(broker_t *b, const char *topic, int32_t partition, int32_t *node);

#endif
