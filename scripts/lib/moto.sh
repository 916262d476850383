# shellcheck shell=bash
# start_moto: starts the local AWS (moto_server with the project's fixes, scripts/lib/intake_moto.py)
# on a free loopback port, waits (bounded) until it answers, exports MOTO_ENDPOINT, and stops it
# when the calling script exits.

free_port() {
  .venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_moto() {
  local port log
  port=$(free_port)
  log=${MOTO_LOG:-$(mktemp -t moto.XXXXXX.log)}
  .venv/bin/python scripts/lib/intake_moto.py -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
  MOTO_PID=$!
  trap 'kill "$MOTO_PID" 2>/dev/null || true' EXIT
  export MOTO_ENDPOINT="http://127.0.0.1:$port"
  for _ in $(seq 1 150); do
    if .venv/bin/python -c "import urllib.request,sys; urllib.request.urlopen('$MOTO_ENDPOINT/moto-api/', timeout=1)" 2>/dev/null; then
      return 0
    fi
    if ! kill -0 "$MOTO_PID" 2>/dev/null; then
      echo "moto_server exited; its log:" >&2; cat "$log" >&2; return 1
    fi
    sleep 0.2
  done
  echo "moto_server did not answer on $MOTO_ENDPOINT within 30 s; its log: $log" >&2
  return 1
}
