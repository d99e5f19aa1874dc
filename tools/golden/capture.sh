#!/usr/bin/env bash
# Captures golden vectors: real clients talk to Apache Kafka 4.4 (Maven Central
# jars, bench/kafka-ref) through tools/golden/record_proxy.py, which writes every
# frame under tests/vectors/<scenario>/; then tools/golden/check_vectors.py
# checks them. Run by hand, not in CI (needs the broker, kcat, confluent-kafka, Maven).
#
#   tools/golden/capture.sh [scenario...]     kcat confluent-kafka java (default: all)
#
# Environment: SHARED (default ../shared beside the repository), KREF_PORT (29092;
# +1 is the controller port), PROXY_PORT (29192), PYTHON (a Python with
# confluent_kafka; default: .venv if it has it, else a venv in /tmp made with pip).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
schemas=${SHARED:-$root/../shared}/kafka-protocol-4.4
kref="$root/bench/kafka-ref/kafka-ref.sh"
kport=${KREF_PORT:-29092}
pport=${PROXY_PORT:-29192}
scenarios=${*:-kcat confluent-kafka java}
b=127.0.0.1:$pport

[ -d "$schemas/message" ] || { echo "capture: no schemas at $schemas" >&2; exit 1; }
for p in $kport $((kport + 1)) $pport; do
    if (exec 3<> "/dev/tcp/127.0.0.1/$p") 2> /dev/null; then
        echo "capture: port $p is in use" >&2
        exit 1
    fi
done

python_with_ck() {
    if [ -n "${PYTHON:-}" ]; then
        echo "$PYTHON"
    elif "$root/.venv/bin/python" -c 'import confluent_kafka' 2> /dev/null; then
        echo "$root/.venv/bin/python"
    else
        local v=/tmp/samsa-golden-venv
        if ! "$v/bin/python" -c 'import confluent_kafka' 2> /dev/null; then
            python3 -m venv "$v" >&2
            "$v/bin/pip" -q install confluent-kafka >&2
        fi
        echo "$v/bin/python"
    fi
}

work=""
proxy=""
cleanup() {
    if [ -n "$proxy" ]; then kill "$proxy" 2> /dev/null || true; wait "$proxy" 2> /dev/null || true; fi
    proxy=""
    if [ -n "$work" ] && [ -s "$work/proxy.log" ]; then sed 's/^/  /' "$work/proxy.log" >&2; fi
    if [ -n "$work" ]; then "$kref" stop "$work/kafka" || true; rm -rf "$work"; fi
    work=""
}
trap cleanup EXIT

scenario_kcat() {
    local t=golden-kcat
    kcat -b $b -L > /dev/null
    # The topic is created by the producer's Metadata request (auto-creation).
    # Three keyed records with a header; the empty third value is sent as null.
    printf 'k1:hello\nk2:world\nk3:\n' |
        kcat -b $b -P -t $t -p 0 -K: -Z -H src=kcat -H n=1 -z none
    # An extra lz4-compressed batch.
    printf 'k4:compressed compressed compressed\nk5:compressed compressed compressed\n' |
        kcat -b $b -P -t $t -p 0 -K: -z lz4
    local got
    got=$(kcat -b $b -C -t $t -p 0 -o beginning -c 5 -e -Z -f '%k=%s;')
    [ "$got" = "k1=hello;k2=world;k3=NULL;k4=compressed compressed compressed;k5=compressed compressed compressed;" ] ||
        { echo "capture: kcat consumed '$got'" >&2; return 1; }
}

scenario_confluent_kafka() {
    local py
    py=$(python_with_ck)
    "$py" - "$b" << 'PY'
import sys
import time
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

b, t = sys.argv[1], "golden-ck"
admin = AdminClient({"bootstrap.servers": b})
admin.create_topics([NewTopic(t, 1, 1)])[t].result(30)
p = Producer({"bootstrap.servers": b, "linger.ms": 50, "compression.type": "none"})
p.produce(t, key=b"k1", value=b"v1", partition=0, headers=[("h", b"x"), ("empty", None)])
p.produce(t, key=b"k2", value=None, partition=0, headers=[("h", b"y")])
p.produce(t, key=None, value=b"v3" * 20, partition=0)
assert p.flush(30) == 0
# An extra zstd-compressed batch.
p = Producer({"bootstrap.servers": b, "linger.ms": 50, "compression.type": "zstd"})
for i in range(10):
    p.produce(t, key=b"z%d" % i, value=b"compressible " * 8, partition=0)
assert p.flush(30) == 0
c = Consumer({"bootstrap.servers": b, "group.id": "golden-ck", "enable.partition.eof": True})
c.assign([TopicPartition(t, 0, 0)])
recs, eof, deadline = [], False, time.monotonic() + 30
while not (eof and len(recs) >= 13) and time.monotonic() < deadline:
    for m in c.consume(100, 1):
        if m.error():
            eof = True
        else:
            recs.append(m)
c.close()
assert len(recs) == 13 and recs[1].value() is None, [(m.key(), m.value()) for m in recs]
print("confluent-kafka scenario: produced and consumed 13 records")
PY
}

scenario_java() {
    local proj="$root/tools/golden/java"
    (cd "$proj" && mvn -q -B -ntp compile dependency:build-classpath \
        -Dmdep.outputFile=target/classpath.txt)
    java -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
        -cp "$proj/target/classes:$(cat "$proj/target/classpath.txt")" samsa.golden.Capture $b
}

"$kref" setup
for s in $scenarios; do
    case $s in
        kcat | confluent-kafka | java) ;;
        *) echo "capture: unknown scenario $s" >&2; exit 2 ;;
    esac
    work=$(mktemp -d /tmp/golden-capture.XXXXXX)
    out="$root/tests/vectors/$s"
    # The broker advertises the proxy's address, so every connection a client
    # opens after bootstrap goes through the proxy too.
    "$kref" start "$kport" "$work/kafka" "$pport"
    python3 "$root/tools/golden/record_proxy.py" --port "$pport" --upstream "127.0.0.1:$kport" \
        --out "$out" --schemas "$schemas" 2> "$work/proxy.log" &
    proxy=$!
    for _ in $(seq 100); do (exec 3<> "/dev/tcp/127.0.0.1/$pport") 2> /dev/null && break; sleep 0.1; done
    "scenario_${s//-/_}"
    cleanup
    echo "capture: $s: $(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["frames"]))' \
        "$out/manifest.json") frames in $out"
done
python3 "$root/tools/golden/check_vectors.py" --schemas "$schemas" "$root/tests/vectors"
