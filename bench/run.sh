#!/usr/bin/env bash
# bench/run.sh [pattern]: one run of the benchmark suite (package bench)
# into a file, for benchstat later.
#
#   bench/run.sh                      # every benchmark, 1,000 points per series
#   bench/run.sh 'Query/W-event'      # a -bench pattern
#   COUNT=6 bench/run.sh Append       # -count=6
#   EVENTMETRICS_BENCH_POINTS=10000 bench/run.sh   # the full 10M-point workloads
#   OUT=/tmp/x.txt bench/run.sh       # where to write (default bench/out/)
set -euo pipefail

pattern="${1:-.}"
count="${COUNT:-1}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

rev="$(git rev-parse --short HEAD 2>/dev/null || echo nogit)"
if [ -n "$(git status --porcelain 2>/dev/null || true)" ]; then rev="$rev-dirty"; fi
out="${OUT:-$root/bench/out/bench-$rev-$(date +%Y%m%d-%H%M%S).txt}"
mkdir -p "$(dirname "$out")"

{
  echo "# bench/run.sh pattern=$pattern count=$count rev=$rev points=${EVENTMETRICS_BENCH_POINTS:-default}"
  echo "# $(date -u '+%Y-%m-%d %H:%M UTC'); nproc $(nproc); load average $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out"
go test -run='^$' -bench="$pattern" -benchmem -count="$count" -timeout=0 ./bench/ | tee -a "$out"
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out"
echo "wrote $out" >&2
