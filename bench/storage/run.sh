#!/usr/bin/env bash
# Storage benchmark: Samsa's append path next to the disk's own sequential
# write speed measured in the same run, in the same directory: dd and fio
# writing the same number of bytes in 16 KiB blocks, and fio writing blocks of
# exactly Samsa's batch sizes (one fdatasync at the end; a sync per block for
# the fsync-before-ack case). Files are not preallocated (fio --fallocate=none),
# as segment files are not (Kafka's preallocate=false). Runs are interleaved and
# repeated (a VM disk varies a lot from one run to the next); the median is
# what to compare.
# usage: bench/storage/run.sh [TOTAL_MB] [SYNC_MB] [ROUNDS]
#        (from the repository root, after the build; BENCH_DIR picks the disk)
set -euo pipefail
mb=${1:-1024}
small=${2:-64}
rounds=${3:-3}
bin=${BENCH_BIN:-build/bin/bench_append}
dir=$(mktemp -d -p "${BENCH_DIR:-$PWD}" bench-storage.XXXXXX)
out=$(mktemp)
trap 'rm -rf "$dir" "$out"' EXIT
echo "# storage benchmark, $(date -u +%F), $(nproc) cores, data on $(df -h "$dir" | awk 'NR==2{print $1}') ($(df -T "$dir" | awk 'NR==2{print $2}')), $rounds rounds"

dd_mbs() { # MB, extra dd flags -> MB/s
    local n=$1
    shift
    dd if=/dev/zero of="$dir/dd.bin" bs=16k count=$((n * 64)) "$@" 2>&1 |
        awk '/copied/{printf "%.1f\n", $1 / $(NF-3) / 1e6}'
    rm -f "$dir/dd.bin"
}
fio_mbs() { # MB, extra fio flags -> MB/s
    local n=$1
    shift
    fio --name=seq --directory="$dir" --rw=write --size="${n}m" --ioengine=psync \
        --fallocate=none --output-format=json "$@" 2>/dev/null |
        python3 -c 'import json,sys; print("%.1f" % (json.load(sys.stdin)["jobs"][0]["write"]["bw_bytes"] / 1e6))'
    rm -f "$dir"/seq.*
}
samsa_mbs() { # MB, record bytes, mode [producers] -> MB/s
    "$bin" "$dir/p" "$@" | awk '/MB\/s/{for (i = 1; i <= NF; i++) if ($(i+1) == "MB/s") print $i}'
}
note() { echo "$1 $2" >>"$out"; }

have_fio=$(command -v fio >/dev/null && echo 1 || echo 0)
bs1k=$("$bin" "$dir/p" 1 1024 size)
bs100=$("$bin" "$dir/p" 1 100 size)
for r in $(seq 1 "$rounds"); do
    note cache.dd "$(dd_mbs "$mb" conv=fdatasync)"
    if [ "$have_fio" = 1 ]; then
        note cache.fio "$(fio_mbs "$mb" --bs=16k --end_fsync=1)"
        note cache.fio.1k "$(fio_mbs "$mb" --bs="$bs1k" --end_fsync=1)"
        note cache.fio.100 "$(fio_mbs "$mb" --bs="$bs100" --end_fsync=1)"
    fi
    note cache.samsa.1k "$(samsa_mbs "$mb" 1024 cache)"
    note cache.samsa.100 "$(samsa_mbs "$mb" 100 cache)"
    note sync.dd "$(dd_mbs "$small" oflag=dsync)"
    [ "$have_fio" = 1 ] && note sync.fio "$(fio_mbs "$small" --bs=16k --fdatasync=1)"
    note sync.samsa.1k "$(samsa_mbs "$small" 1024 sync)"
    note sync.samsa.100 "$(samsa_mbs "$small" 100 sync)"
    note group8.samsa.1k "$(samsa_mbs "$small" 1024 group 8)"
    note group8.samsa.100 "$(samsa_mbs "$small" 100 group 8)"
    note group32.samsa.1k "$(samsa_mbs "$small" 1024 group 32)"
done

report() { # key, label
    local vals
    vals=$(awk -v k="$1" '$1 == k && $2 != "" { print $2 }' "$out" | sort -n)
    [ -z "$vals" ] && return 0
    echo "$vals" | awk -v label="$2" '{ v[NR] = $1; s = s (NR > 1 ? " / " : "") $1 }
        END { printf "%-54s median %7.1f MB/s   (runs: %s)\n", label, v[int((NR + 1) / 2)], s }'
}
echo "## page cache (Kafka's default flush policy), $mb MB, one fdatasync at the end"
report cache.dd "dd, 16 KiB blocks"
report cache.fio "fio, 16 KiB blocks"
report cache.fio.1k "fio, blocks of $bs1k bytes (the 1 KiB-record batch)"
report cache.fio.100 "fio, blocks of $bs100 bytes (the 100 B-record batch)"
report cache.samsa.1k "Samsa, 1 KiB records, 16 KiB batches"
report cache.samsa.100 "Samsa, 100 B records, 16 KiB batches"
echo "## fsync before every acknowledgement, $small MB"
report sync.dd "dd, 16 KiB blocks, O_DSYNC"
report sync.fio "fio, 16 KiB blocks, fdatasync after each"
report sync.samsa.1k "Samsa, 1 producer, 1 KiB records"
report sync.samsa.100 "Samsa, 1 producer, 100 B records"
report group8.samsa.1k "Samsa, 8 producers (group commit), 1 KiB records"
report group8.samsa.100 "Samsa, 8 producers (group commit), 100 B records"
report group32.samsa.1k "Samsa, 32 producers (group commit), 1 KiB records"
