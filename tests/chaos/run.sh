#!/usr/bin/env bash
# Run the fault-injection suite in two passes that share one results file, so the reliability
# table holds every scenario:
#
#   1. the scenarios whose figures or assertions are timings (lateness, leases, catch-up time,
#      a burst claimed in time), one at a time, on an otherwise quiet machine;
#   2. the scenarios marked `concurrent` (their figures are counts: lost, duplicated, stuck;
#      most of their time is spent waiting out a fault), CHAOS_PROCESSES at a time.
#
#   tests/chaos/run.sh [pytest options...]    (`make chaos` and `make test` call it)
#
# PA_CHAOS_WRITE_DOC=1 rewrites the table in docs/reliability.md at the end of the second pass.
# Exit code 5 (no test collected) counts as success; otherwise the first failing pass's code.
set -uo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-.venv/bin}
export CHAOS_PROCESSES=${CHAOS_PROCESSES:-3}

results=$(mktemp --suffix=.jsonl -t pa-chaos-XXXXXX)
trap 'rm -f "$results"' EXIT
export PA_CHAOS_RESULTS=$results

write_doc=${PA_CHAOS_WRITE_DOC:-0}
timed=0
concurrent=0
PA_CHAOS_WRITE_DOC=0 "$BIN/pytest" tests/chaos -m "not concurrent" "$@" || timed=$?
PA_CHAOS_WRITE_DOC=$write_doc "$BIN/pytest" tests/chaos -m concurrent \
  -n "$CHAOS_PROCESSES" --dist worksteal "$@" || concurrent=$?

for rc in $timed $concurrent; do
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then exit "$rc"; fi
done
