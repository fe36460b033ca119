#!/usr/bin/env bash
# Connection hygiene of the release binary under a low open-file limit (soft 256, hard 384):
# it raises its limit to the hard one and caps connections below it; 400 silent connections
# (more than the cap) leave normal requests answered in under a second; the silent ones and
# slow ones are closed by their time-outs and their descriptors come back; malformed requests
# don't reach the log above debug. Uses the in-memory store: no database needed.
# Prints one line per check and "N passed, M failed" last; exits non-zero when a check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

need_tools curl
log "cargo build --release --bin approvals (a no-op when up to date)"
cargo build --quiet --release --bin approvals
target_dir

SOFT=256
HARD=384
IDLE=2
FLOOD=400
# The flood needs that many descriptors in this shell too.
[ "$(ulimit -Hn)" = unlimited ] || [ "$(ulimit -Hn)" -ge $((FLOOD + 64)) ] \
  || die "this shell's open-file hard limit ($(ulimit -Hn)) is below $((FLOOD + 64))"
ulimit -Sn "$(ulimit -Hn)"

WORK=$(mktemp -d /tmp/approvals-conn.XXXXXX)
on_exit "rm -rf '$WORK'"
PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"
log "starting the server with nofile $SOFT (hard $HARD) on port $PORT (log: $WORK/server.log)"
(
  ulimit -Sn "$SOFT"
  ulimit -Hn "$HARD"
  exec env -u DATABASE_URL BIND_ADDR="127.0.0.1:$PORT" RUST_LOG=info LOG_FORMAT=json \
    HTTP_IDLE_TIMEOUT="${IDLE}s" HTTP_HEADER_READ_TIMEOUT=1s "$(release_bin approvals)" serve
) >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
on_exit "kill $SERVER_PID 2>/dev/null; wait $SERVER_PID 2>/dev/null"
for _ in $(seq 1 100); do
  curl -fsS "$BASE/healthz" >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; die "the server exited"; }
  sleep 0.1
done

# The limit was raised to the hard one, and the cap sits below it.
cap_line=$(grep -m1 'connection cap' "$WORK/server.log" || true)
check "the server raised its open-file limit to $HARD" yes \
  "$(grep -q "\"open_files\":$HARD[,}]" <<<"$cap_line" && echo yes || echo "no: $cap_line")"
CAP=$(sed -n 's/.*"max_connections":\([0-9]*\).*/\1/p' <<<"$cap_line")
check "the connection cap ($CAP) is below the limit and below the flood" yes \
  "$([ -n "$CAP" ] && [ "$CAP" -lt "$HARD" ] && [ "$CAP" -lt "$FLOOD" ] && echo yes || echo no)"

fds_of_server() { find "/proc/$SERVER_PID/fd" -mindepth 1 -maxdepth 1 | wc -l; }
BASELINE_FDS=$(fds_of_server)

log "opening $FLOOD silent connections"
FDS=()
for _ in $(seq 1 "$FLOOD"); do
  exec {fd}<>"/dev/tcp/127.0.0.1/$PORT"
  FDS+=("$fd")
done
SLOW=()
for _ in 1 2 3 4 5; do
  exec {fd}<>"/dev/tcp/127.0.0.1/$PORT"
  printf 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ' >&"$fd"
  SLOW+=("$fd")
done

slow_answers=0
for i in $(seq 1 20); do
  t=$(curl -sS -o /dev/null -w '%{http_code} %{time_total}' --max-time 5 "$BASE/healthz" 2>/dev/null || echo "000 5")
  code=${t% *}
  secs=${t#* }
  if [ "$code" != 200 ] || ! awk -v s="$secs" 'BEGIN { exit !(s < 1.0) }'; then
    slow_answers=$((slow_answers + 1))
    printf '     request %d: %s in %ss\n' "$i" "$code" "$secs"
  fi
done
check "with $FLOOD silent connections open, 20 normal requests are each answered 200 in under 1 s" 0 "$slow_answers"
check "the server holds no more than the cap of connections (descriptors in use)" yes \
  "$([ "$(fds_of_server)" -le $((BASELINE_FDS + CAP + 2)) ] && echo yes || echo "no: $(fds_of_server)")"

# read -t on a closed socket returns at once with status 1; on an open one it times out (> 128).
count_closed() {
  local n=0 fd status
  for fd in "$@"; do
    status=0
    read -r -t 0.01 -u "$fd" _ 2>/dev/null || status=$?
    [ "$status" -gt 128 ] || n=$((n + 1))
  done
  printf '%d' "$n"
}
sleep 1.5
check "the 5 slow clients were cut off by the 1 s header time-out" 5 "$(count_closed "${SLOW[@]}")"
sleep "$IDLE"
# On a loaded machine the last of them may close a moment late: look again for up to another
# idle time-out before counting what is still open.
closed=$(count_closed "${FDS[@]}")
deadline=$((SECONDS + IDLE))
while [ "$closed" -lt "$FLOOD" ] && [ "$SECONDS" -lt "$deadline" ]; do
  sleep 0.2
  closed=$(count_closed "${FDS[@]}")
done
check "all $FLOOD silent connections are closed after the ${IDLE} s idle time-out (and at most ${IDLE} s more)" "$FLOOD" "$closed"
for fd in "${FDS[@]}" "${SLOW[@]}"; do exec {fd}>&-; done
check "the server's descriptors came back (at most $((BASELINE_FDS + 2)), was $BASELINE_FDS)" yes \
  "$([ "$(fds_of_server)" -le $((BASELINE_FDS + 2)) ] && echo yes || echo "no: $(fds_of_server)")"

log "malformed requests: bad Content-Length, header bytes, oversized headers, long URI"
LOG_LINES=$(wc -l <"$WORK/server.log")
LONG=$(head -c 70000 /dev/zero | tr '\0' 'a')
for _ in $(seq 1 25); do
  printf 'GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n' >"$WORK/bad1"
  curl -sS -o /dev/null --max-time 2 "telnet://127.0.0.1:$PORT" <"$WORK/bad1" 2>/dev/null || true
  printf 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad\001: y\r\n\r\n' >"$WORK/bad2"
  curl -sS -o /dev/null --max-time 2 "telnet://127.0.0.1:$PORT" <"$WORK/bad2" 2>/dev/null || true
  curl -sS -o /dev/null --max-time 2 -H "X-Big: $LONG" "$BASE/healthz" 2>/dev/null || true
  curl -sS -o /dev/null --max-time 2 "$BASE/healthz?$LONG" 2>/dev/null || true
done
check "the server still answers after 100 malformed requests" 200 \
  "$(curl -sS -o /dev/null -w '%{http_code}' --max-time 2 "$BASE/healthz" || echo 000)"
check "nothing above debug was logged for them (no WARN or ERROR line)" 0 \
  "$(tail -n +$((LOG_LINES + 1)) "$WORK/server.log" | grep -cE '"level":"(WARN|ERROR)"' || true)"
check "no 'Too many open files' in the log" 0 "$(grep -c 'Too many open files' "$WORK/server.log" || true)"

check_summary
