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

#endif
