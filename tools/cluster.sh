#!/bin/sh
# Starts a three-node Samsa cluster on localhost, each node a broker and a controller,
# started exactly as Kafka 4.4 KRaft nodes are (no format step):
#   node 1: clients 127.0.0.1:9092, controller 127.0.0.1:9093, data ./data/node-1
#   node 2: clients 127.0.0.1:9192, controller 127.0.0.1:9193, data ./data/node-2
#   node 3: clients 127.0.0.1:9292, controller 127.0.0.1:9293, data ./data/node-3
# Logs go to ./data/node-N.log; Ctrl-C (or SIGTERM) stops all three.
# Usage: tools/cluster.sh [path to samsa-server] [--override key=value ...]
set -eu
BIN=${1:-build/bin/samsa-server}
[ $# -gt 0 ] && shift
VOTERS=1@127.0.0.1:9093,2@127.0.0.1:9193,3@127.0.0.1:9293
mkdir -p data
PIDS=""
for i in 1 2 3; do
    port=$((9092 + (i - 1) * 100))
    "$BIN" --override node.id=$i --override process.roles=broker,controller \
        --override listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$((port + 1)) \
        --override controller.listener.names=CONTROLLER \
        --override controller.quorum.voters=$VOTERS \
        --override log.dirs=data/node-$i "$@" >>data/node-$i.log 2>&1 &
    PIDS="$PIDS $!"
done
trap 'kill $PIDS 2>/dev/null; wait' INT TERM
echo "samsa cluster: bootstrap 127.0.0.1:9092,127.0.0.1:9192,127.0.0.1:9292 (pids$PIDS); logs in data/node-N.log"
wait
