#!/usr/bin/env bash
# Storage benchmark: Samsa's append path next to the disk's own sequential
# write speed measured in the same run (dd writing the same bytes in 16 KiB
# blocks, fdatasync at the end; and with O_DSYNC for the fsync case).
# usage: bench/storage/run.sh [TOTAL_MB]   (from the repository root, after make)
set -euo pipefail
mb=${1:-1024}
bin=build/bin/bench_append
dir=$(mktemp -d -p "${BENCH_DIR:-$PWD}" bench-storage.XXXXXX)
trap 'rm -rf "$dir"' EXIT
echo "# storage benchmark, $(date -u +%F), $(nproc) cores, $mb MB per run, data on $(df -h "$dir" | awk 'NR==2{print $1}')"
dd_rate() { # extra dd flags
    dd if=/dev/zero of="$dir/dd.bin" bs=16k count=$((mb * 64)) "$@" 2>&1 | awk '/copied/{print $(NF-1), $NF}'
    rm -f "$dir/dd.bin"
}
echo "dd sequential write, fdatasync at end: $(dd_rate conv=fdatasync)"
"$bin" "$dir/p-0" "$mb" 1024 0
"$bin" "$dir/p-1" "$mb" 100 0
small=$((mb / 16 > 0 ? mb / 16 : 1))
echo "dd with O_DSYNC (a sync per 16 KiB block), $small MB: $(mb=$small; dd if=/dev/zero of="$dir/dd.bin" bs=16k count=$((small * 64)) oflag=dsync 2>&1 | awk '/copied/{print $(NF-1), $NF}')"
"$bin" "$dir/p-2" "$small" 1024 1
"$bin" "$dir/p-3" "$small" 100 1
