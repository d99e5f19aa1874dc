#!/usr/bin/env bash
# Captures golden vectors: real clients talk to Apache Kafka 4.4 (from Maven
# Central, bench/kafka-ref) through tools/golden/record_proxy.py, which writes
# every frame under tests/vectors/<scenario>/. Run by hand, not in CI:
#   tools/golden/capture.sh [scenario...]   (kcat confluent-kafka java; default all)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
schemas=${SHARED:-$root/../shared}/kafka-protocol
kref="$root/bench/kafka-ref/kafka-ref.sh"
py=${PYTHON:-$root/.venv/bin/python}
scenarios=${*:-kcat confluent-kafka java}
kport=29092
pport=29192

for s in $scenarios; do
    work=$(mktemp -d)
    out="$root/tests/vectors/$s"
    rm -rf "$out"
    "$kref" start $kport "$work/kafka" $pport
    python3 "$root/tools/golden/record_proxy.py" $pport 127.0.0.1:$kport "$out" "$schemas" &
    proxy=$!
    for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$pport) 2>/dev/null && break; sleep 0.1; done
    b=127.0.0.1:$pport
    case $s in
        kcat)
            kcat -b $b -L -m 10 > /dev/null
            printf 'k1:hello\nk2:world\n:no key\n' | kcat -b $b -P -t golden-kcat -p 0 -K: -H src=kcat -z none
            kcat -b $b -C -t golden-kcat -p 0 -o beginning -c 3 -e > /dev/null
            ;;
        confluent-kafka)
            "$py" - "$b" <<'PY'
import sys
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
b = sys.argv[1]
a = AdminClient({"bootstrap.servers": b})
a.create_topics([NewTopic("golden-ck", 1, 1)])["golden-ck"].result(30)
p = Producer({"bootstrap.servers": b, "linger.ms": 50})
p.produce("golden-ck", key=b"k1", value=b"v1", partition=0, headers=[("h", b"x")])
p.produce("golden-ck", key=None, value=None, partition=0)
p.produce("golden-ck", key=b"k3", value=b"v3" * 20, partition=0)
assert p.flush(30) == 0
p = Producer({"bootstrap.servers": b, "compression.type": "zstd", "linger.ms": 50})
for i in range(20):
    p.produce("golden-ck", value=b"compressible " * 10, partition=0)
assert p.flush(30) == 0
c = Consumer({"bootstrap.servers": b, "group.id": "golden"})
c.assign([TopicPartition("golden-ck", 0, 0)])
got = 0
while got < 23:
    got += len(c.consume(100, 5))
c.close()
PY
            ;;
        java)
            lib="$root/bench/kafka-ref/target/lib"
            cls=$(mktemp -d)
            javac -d "$cls" -cp "$lib/*" "$root/tools/golden/Capture.java"
            java -cp "$cls:$lib/*" Capture $b
            rm -rf "$cls"
            ;;
    esac
    kill $proxy
    "$kref" stop "$work/kafka"
    rm -rf "$work"
    echo "captured $(wc -l < "$out/manifest.txt") frames for $s"
done
