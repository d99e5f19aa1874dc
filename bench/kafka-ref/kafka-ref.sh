#!/usr/bin/env bash
# The reference Apache Kafka 4.4 broker, from Maven Central jars, for benchmarks
# and golden-vector capture. Single combined broker+controller (KRaft) on
# 127.0.0.1, Kafka's defaults except listeners, log.dirs and replication
# factors of the internal topics (one node).
#
#   kafka-ref.sh setup                  resolve the jars once (target/lib)
#   kafka-ref.sh start PORT DATADIR [ADVERTISED_PORT]   format, start, wait until it serves
#   kafka-ref.sh stop DATADIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
lib="$here/target/lib"
java=${JAVA:-java}

setup() {
    if [ ! -f "$lib/.complete" ]; then
        (cd "$here" && mvn -q -B -ntp dependency:copy-dependencies -DoutputDirectory=target/lib)
        touch "$lib/.complete"
    fi
}

wait_port() { # port deadline_s
    local port=$1 deadline=$((SECONDS + $2))
    while [ $SECONDS -lt $deadline ]; do
        if (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then return 0; fi
        sleep 0.2
    done
    return 1
}

start() {
    local port=$1 data=$2 adv=${3:-$1}
    local cport=$((port + 1))
    setup
    mkdir -p "$data"
    cat > "$data/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$adv
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$data/logs
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
    local cp="$lib/*"
    if [ ! -f "$data/logs/meta.properties" ]; then
        "$java" -cp "$cp" kafka.tools.StorageTool format -t "$("$java" -cp "$cp" kafka.tools.StorageTool random-uuid)" \
            -c "$data/server.properties" > "$data/format.log" 2>&1
    fi
    nohup "$java" -Xms512m -Xmx1g -cp "$cp" -Dlog4j2.level=WARN kafka.Kafka "$data/server.properties" \
        > "$data/kafka.log" 2>&1 &
    echo $! > "$data/kafka.pid"
    if ! wait_port "$port" 90; then
        echo "kafka-ref: broker did not start; see $data/kafka.log" >&2
        exit 1
    fi
}

stop() {
    local data=$1
    if [ -f "$data/kafka.pid" ]; then
        local pid
        pid=$(cat "$data/kafka.pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$data/kafka.pid"
    fi
}

case "${1:-}" in
    setup) setup ;;
    start) start "$2" "$3" "${4:-}" ;;
    stop) stop "$2" ;;
    *) echo "usage: $0 setup | start PORT DATADIR [ADVERTISED_PORT] | stop DATADIR" >&2; exit 2 ;;
esac
