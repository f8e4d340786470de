#!/usr/bin/env bash
# Start a Celery worker (every queue of the routing table) and the beat scheduler in the
# background, with their output under logs/ and our events in logs/core.log.
#
#   ./tests/start_workers.sh          start both (stops any left from an earlier start)
#   ./tests/start_workers.sh stop     stop both cleanly (SIGTERM, then wait)
#   ./tests/start_workers.sh status   show whether they run
#
# Uses the project's .venv when present, and the configuration in the environment
# (DATABASE_URL, REDIS_URL, ...; nothing set = the embedded SQLite default).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p logs
BIN=.venv/bin
[ -x "$BIN/celery" ] || BIN="$(dirname "$(command -v celery)")"
APP=personal_assistant.workers.celery_app

running() { [ -f "logs/$1.pid" ] && kill -0 "$(cat "logs/$1.pid")" 2>/dev/null; }

stop_one() {
  local name=$1
  if running "$name"; then
    local pid
    pid=$(cat "logs/$name.pid")
    kill -TERM "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
    echo "stopped $name (pid $pid)"
  fi
  rm -f "logs/$name.pid"
}

start() {
  stop_one worker
  stop_one beat
  "$BIN/python" -m personal_assistant.cli.main db upgrade >/dev/null
  QUEUES=$("$BIN/python" -c 'from personal_assistant.workers.routing import worker_queues; print(worker_queues())')
  nohup "$BIN/celery" -A "$APP" worker -Q "$QUEUES" -l info --without-mingle --without-gossip \
    >> logs/worker.log 2>&1 &
  echo $! > logs/worker.pid
  nohup "$BIN/celery" -A "$APP" beat -l info -s logs/celerybeat-schedule >> logs/beat.log 2>&1 &
  echo $! > logs/beat.pid
  echo "worker pid $(cat logs/worker.pid), log logs/worker.log (queues: $QUEUES)"
  echo "beat   pid $(cat logs/beat.pid), log logs/beat.log"
  echo "events: logs/core.log    stop with: ./tests/start_workers.sh stop"
}

case "${1:-start}" in
  start) start ;;
  stop) stop_one worker; stop_one beat ;;
  status)
    for name in worker beat; do
      if running "$name"; then echo "$name: running (pid $(cat "logs/$name.pid"))"
      else echo "$name: stopped"; fi
    done ;;
  *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac
