#!/usr/bin/env bash
# bench/compare.sh [--suite=current|own] OLD NEW [pattern]
#
# Runs the benchmark suite (package bench) on two commits and prints
# `benchstat old.txt new.txt`. Each commit is checked out into a temporary
# `git worktree` (removed on exit); NEW may be "." for the working tree as it
# is, uncommitted changes included. The two test binaries run alternately,
# COUNT (default 6) times each with -count=1, so that drift of a shared
# machine spreads over both sides instead of biasing one.
#
#   --suite=current (default): both commits are measured with the suite of
#       the working tree (bench/*.go, bench/workload, bench/truth are copied
#       into each worktree), so only the code under test differs. The old
#       commit must still compile against it.
#   --suite=own: each commit runs its own bench/ suite.
#
# Environment: COUNT (6), EVENTMETRICS_BENCH_POINTS (passed through),
# BENCHTIME (e.g. 2s or 100x; default go test's), OUT (directory for
# old.txt/new.txt, default bench/out/compare-OLD-NEW-DATE).
set -euo pipefail

usage() { sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2; }

suite=current
args=()
for a in "$@"; do
  case "$a" in
    --suite=current|--suite=own) suite="${a#--suite=}" ;;
    -h|--help) usage ;;
    --*) echo "compare.sh: unknown option $a" >&2; usage ;;
    *) args+=("$a") ;;
  esac
done
[ "${#args[@]}" -ge 2 ] && [ "${#args[@]}" -le 3 ] || usage
old="${args[0]}" new="${args[1]}" pattern="${args[2]:-.}"
count="${COUNT:-6}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
git rev-parse --git-dir >/dev/null

resolve() { # a revision, or "." for the working tree
  if [ "$1" = "." ]; then echo "."; else git rev-parse --verify --quiet "$1^{commit}" || { echo "compare.sh: unknown revision $1" >&2; exit 2; }; fi
}
old_rev="$(resolve "$old")"
new_rev="$(resolve "$new")"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/eventmetrics-compare.XXXXXX")"
worktrees=()
cleanup() {
  local wt
  for wt in "${worktrees[@]+"${worktrees[@]}"}"; do
    git -C "$root" worktree remove --force "$wt" >/dev/null 2>&1 || true
  done
  git -C "$root" worktree prune >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

short() { if [ "$1" = "." ]; then echo worktree; else git rev-parse --short "$1"; fi; }
out="${OUT:-$root/bench/out/compare-$(short "$old_rev")-$(short "$new_rev")-$(date +%Y%m%d-%H%M%S)}"

# checkout NAME REV: sets src_dir to the directory holding the sources of
# REV (not in a subshell: the worktree must be recorded for cleanup).
checkout() {
  local name="$1" rev="$2"
  if [ "$rev" = "." ]; then
    src_dir="$root"
    return
  fi
  src_dir="$tmp/$name"
  worktrees+=("$src_dir")
  git worktree add --detach --quiet "$src_dir" "$rev"
  if [ "$suite" = current ]; then
    # The suite of the working tree, without the peers module and outputs.
    mkdir -p "$src_dir/bench"
    tar -C "$root/bench" --exclude=./peers --exclude=./out -cf - . | tar -C "$src_dir/bench" -xf -
  elif ! ls "$src_dir"/bench/*_test.go >/dev/null 2>&1; then
    echo "compare.sh: $rev has no benchmark suite in bench/; use --suite=current" >&2
    exit 2
  fi
}

# build NAME DIR: compiles the suite's test binary.
build() {
  echo "building $1 ($2)" >&2
  (cd "$2" && go test -c -o "$tmp/$1.test" ./bench/) >&2
}

checkout old "$old_rev"
old_dir="$src_dir"
checkout new "$new_rev"
new_dir="$src_dir"
build old "$old_dir"
build new "$new_dir"

if ! command -v benchstat >/dev/null 2>&1 && [ ! -x "$(go env GOPATH)/bin/benchstat" ]; then
  echo "installing benchstat" >&2
  go install golang.org/x/perf/cmd/benchstat@latest
fi
benchstat="$(command -v benchstat || echo "$(go env GOPATH)/bin/benchstat")"

flags=(-test.run='^$' -test.bench="$pattern" -test.benchmem -test.count=1 -test.timeout=0)
[ -n "${BENCHTIME:-}" ] && flags+=(-test.benchtime="$BENCHTIME")
mkdir -p "$out"
: >"$out/old.txt"
: >"$out/new.txt"
echo "old=$old ($(short "$old_rev")) new=$new ($(short "$new_rev")) suite=$suite pattern=$pattern count=$count points=${EVENTMETRICS_BENCH_POINTS:-default}" | tee "$out/README" >&2
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/README" >&2
for i in $(seq 1 "$count"); do
  for side in old new; do
    dir="${side}_dir"
    echo "round $i/$count: $side" >&2
    (cd "${!dir}/bench" && "$tmp/$side.test" "${flags[@]}") >>"$out/$side.txt"
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/README" >&2
echo "results in $out" >&2
(cd "$out" && "$benchstat" "old:$(short "$old_rev")=old.txt" "new:$(short "$new_rev")=new.txt") | tee "$out/benchstat.txt"
