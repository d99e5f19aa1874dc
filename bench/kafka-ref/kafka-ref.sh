#!/usr/bin/env bash
# The reference Apache Kafka 4.4 broker, run from Maven Central jars, for
# benchmarks and golden-vector capture: one combined broker+controller (KRaft)
# node on 127.0.0.1 with Kafka's defaults except listeners, log.dirs and the
# replication factors of the internal topics. Not a deployment tool.
#
#   kafka-ref.sh setup                     resolve the jars once into target/lib
#   kafka-ref.sh start PORT DATADIR [ADVERTISED_PORT]
#                                          write DATADIR/server.properties, format the
#                                          storage (first start only), start the broker in
#                                          the background, wait until it answers Metadata
#   kafka-ref.sh stop DATADIR              SIGTERM, then SIGKILL after KAFKA_REF_STOP_TIMEOUT
#   kafka-ref.sh status DATADIR            exit 0 if that broker's process is alive
#   kafka-ref.sh wait PORT [SECONDS]       wait until a broker on PORT answers Metadata
#   kafka-ref.sh classpath                 print the classpath (for other tools)
#
# PORT serves PLAINTEXT, PORT+1 is the controller listener. ADVERTISED_PORT
# (default PORT) is the port the broker puts in Metadata, e.g. a proxy's.
# Environment: JAVA (default: $JAVA_HOME/bin/java or java), KAFKA_REF_HEAP
# (default "-Xms256m -Xmx1g"), KAFKA_REF_PROPS (extra server.properties lines,
# appended last so they override), KAFKA_REF_START_TIMEOUT (s, default 120),
# KAFKA_REF_STOP_TIMEOUT (s, default 30), KAFKA_REF_LOG_LEVEL (default INFO).
# DATADIR gets server.properties, logs/ (log.dirs), kafka.log, kafka.pid.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
lib="$here/target/lib"
stamp="$lib/.complete"
if [ -n "${JAVA:-}" ]; then
    java=$JAVA
elif [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then
    java=$JAVA_HOME/bin/java
else
    java=java
fi

die() {
    echo "kafka-ref: $*" >&2
    exit 1
}

setup() {
    # The stamp holds the pom's checksum, so editing the pom re-resolves.
    local sum
    sum=$(sha256sum "$here/pom.xml" | cut -d' ' -f1)
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then
        return 0
    fi
    command -v mvn > /dev/null || die "mvn not found (apt-get install maven)"
    rm -rf "$lib"
    (cd "$here" && mvn -q -B -ntp dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$lib") || die "resolving the jars failed"
    ls "$lib"/kafka_2.13-*.jar > /dev/null 2>&1 || die "kafka_2.13 jar missing after resolving"
    echo "$sum" > "$stamp"
}

# Sends a Metadata v12 request (all topics: no, just brokers) and succeeds if
# the answer lists at least one broker: the broker is unfenced and serving.
probe() { # port
    python3 - "$1" << 'PY'
import socket, struct, sys
port = int(sys.argv[1])
cid = b"kafka-ref-probe"
# header v2: api key 3, version 12, correlation id 1, client id, no tags;
# body: empty topic array, two false booleans, no tags.
req = struct.pack(">hhih", 3, 12, 1, len(cid)) + cid + b"\x00" + b"\x01\x00\x00\x00"
try:
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    s.settimeout(3)
    s.sendall(struct.pack(">i", len(req)) + req)
    buf = b""
    while len(buf) < 4 or len(buf) < 4 + struct.unpack(">i", buf[:4])[0]:
        d = s.recv(65536)
        if not d:
            sys.exit(1)
        buf += d
    corr = struct.unpack(">i", buf[4:8])[0]
    # correlation id, empty header tags, throttle time, then the broker array
    # as a compact array length (n + 1) in one byte for a few brokers.
    sys.exit(0 if corr == 1 and buf[8] == 0 and buf[13] >= 2 else 1)
except (OSError, IndexError, struct.error):
    sys.exit(1)
PY
}

wait_serving() { # port seconds [pid]
    local port=$1 deadline=$((SECONDS + $2)) pid=${3:-}
    while [ $SECONDS -lt $deadline ]; do
        if [ -n "$pid" ] && ! kill -0 "$pid" 2> /dev/null; then
            return 2
        fi
        if probe "$port"; then return 0; fi
        sleep 0.5
    done
    return 1
}

# The pid in DATADIR/kafka.pid if that process is alive and is this broker.
live_pid() { # datadir
    local data=$1 pid
    [ -f "$data/kafka.pid" ] || return 1
    pid=$(cat "$data/kafka.pid")
    [ -n "$pid" ] && kill -0 "$pid" 2> /dev/null || return 1
    tr '\0' ' ' < "/proc/$pid/cmdline" 2> /dev/null | grep -qF "$data/server.properties" || return 1
    echo "$pid"
}

start() {
    local port=$1 data=$2 adv=${3:-$1}
    [[ $port =~ ^[0-9]+$ ]] && [ "$port" -gt 0 ] && [ "$port" -lt 65535 ] || die "bad port '$port'"
    [[ $adv =~ ^[0-9]+$ ]] || die "bad advertised port '$adv'"
    mkdir -p "$data"
    data=$(cd "$data" && pwd)
    local cport=$((port + 1))
    if pid=$(live_pid "$data"); then
        die "a broker for $data is already running (pid $pid)"
    fi
    setup
    cat > "$data/server.properties" << EOF
# Written by bench/kafka-ref/kafka-ref.sh: single-node KRaft broker+controller.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$adv
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$data/logs
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
    if [ -n "${KAFKA_REF_PROPS:-}" ]; then
        printf '%s\n' "$KAFKA_REF_PROPS" >> "$data/server.properties"
    fi
    local cp="$lib/*"
    local log4j="-Dlog4j2.configurationFile=$here/log4j2.properties"
    if [ ! -f "$data/logs/meta.properties" ]; then
        local cluster
        # The tool's log lines go to stdout too: the id is its last line.
        cluster=$("$java" -cp "$cp" "$log4j" kafka.tools.StorageTool random-uuid 2> /dev/null | tail -n 1) ||
            die "StorageTool random-uuid failed"
        [[ $cluster =~ ^[A-Za-z0-9_-]{22}$ ]] || die "StorageTool random-uuid printed no cluster id"
        "$java" -cp "$cp" "$log4j" kafka.tools.StorageTool format -t "$cluster" \
            -c "$data/server.properties" > "$data/format.log" 2>&1 ||
            die "formatting the storage failed; see $data/format.log"
    fi
    # setsid: the broker outlives this script and the terminal's signals; the
    # inner shell writes its own pid, which exec hands to the JVM.
    # shellcheck disable=SC2086
    setsid bash -c 'echo $$ > "$1"; shift; exec "$@"' _ "$data/kafka.pid" \
        "$java" ${KAFKA_REF_HEAP:--Xms256m -Xmx1g} -XX:+UseG1GC -Djava.awt.headless=true \
        "$log4j" -cp "$cp" kafka.Kafka "$data/server.properties" \
        < /dev/null > "$data/kafka.log" 2>&1 &
    local pid=""
    for _ in $(seq 1 50); do
        pid=$(cat "$data/kafka.pid" 2> /dev/null || true)
        [ -n "$pid" ] && break
        sleep 0.1
    done
    [ -n "$pid" ] || die "the broker did not start; see $data/kafka.log"
    local rc=0
    wait_serving "$port" "${KAFKA_REF_START_TIMEOUT:-120}" "$pid" || rc=$?
    case $rc in
        0) echo "kafka-ref: serving on 127.0.0.1:$port (advertised $adv), pid $pid, data $data" ;;
        2)
            grep -m 5 -E "ERROR|FATAL" "$data/kafka.log" >&2 || tail -n 20 "$data/kafka.log" >&2
            die "the broker exited during start-up; see $data/kafka.log"
            ;;
        *)
            stop "$data"
            die "the broker did not serve within ${KAFKA_REF_START_TIMEOUT:-120}s; see $data/kafka.log"
            ;;
    esac
}

stop() {
    local data=$1 pid
    [ -d "$data" ] || return 0
    data=$(cd "$data" && pwd)
    if pid=$(live_pid "$data"); then
        kill -TERM "$pid" 2> /dev/null || true
        local deadline=$((SECONDS + ${KAFKA_REF_STOP_TIMEOUT:-30}))
        while kill -0 "$pid" 2> /dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
        if kill -0 "$pid" 2> /dev/null; then
            echo "kafka-ref: pid $pid ignored SIGTERM, killing it" >&2
            kill -KILL "$pid" 2> /dev/null || true
            while kill -0 "$pid" 2> /dev/null; do sleep 0.1; done
        fi
    fi
    rm -f "$data/kafka.pid"
}

usage() {
    sed -n '7,15p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

case "${1:-}" in
    setup) setup ;;
    start) [ $# -ge 3 ] || usage; start "$2" "$3" "${4:-}" ;;
    stop) [ $# -ge 2 ] || usage; stop "$2" ;;
    status) [ $# -ge 2 ] || usage; [ -d "$2" ] && live_pid "$(cd "$2" && pwd)" > /dev/null ;;
    wait) [ $# -ge 2 ] || usage; wait_serving "$2" "${3:-60}" ;;
    classpath) setup; ls "$lib"/*.jar | paste -sd: ;;
    *) usage ;;
esac
