#!/usr/bin/env bash
# tests/stack/ctl.sh DIR stop|start|restart|pause|cont|status SERVICE   (SERVICE: dovecot knot postfix rspamd prometheus)
# tests/stack/ctl.sh DIR flush      - ask postfix to retry its deferred queue now
# tests/stack/ctl.sh DIR status     - one line per service
#
# Acts by PID only (the pidfile written by the service, checked to belong to DIR), never by name:
# other stacks may run on the same machine.
#   stop     SIGTERM the service's main process, after 1 s also its remaining descendants, wait
#            until all have exited (SIGKILL after 14 s more). Exit 0 if it was not running.
#   start    (re)start it with the config up.sh wrote (DIR/svc/SERVICE.start), wait until its ports
#            accept connections. A running service is stopped first (= restart).
#   pause    SIGSTOP the service and its descendants: connections hang, e.g. DNS queries to knot
#            time out instead of being refused; cont = SIGCONT.
# Postfix retries deferred mail every 2 s (minimal_backoff_time); 'flush' makes it retry at once,
# e.g. right after 'start dovecot'.
set -euo pipefail
usage() { echo "usage: $0 DIR stop|start|restart|pause|cont|status SERVICE | $0 DIR flush|status" >&2; exit 2; }
[ $# -ge 2 ] || usage
D=$(realpath -m "$1"); CMD=$2; S=${3:-}
ALL="prometheus postfix rspamd dovecot oauth knot"

alive() {   # a live (non-zombie) process
  local st
  [ -r "/proc/$1/stat" ] || return 1
  st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}
ours() {    # the process mentions DIR in its command line, working dir, environment or open files
  local p=$1
  local f                               # no 'tr | grep -q' here: pipefail + SIGPIPE would lie
  case "$(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null)" in *"$D/"*) return 0;; esac
  case "$(readlink "/proc/$p/cwd" 2>/dev/null)/" in "$D"/*) return 0;; esac
  case "$(tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null)" in *"$D/"*) return 0;; esac
  for f in /proc/"$p"/fd/*; do          # rspamd rewrites its argv: an open log file under DIR
    case "$(readlink "$f" 2>/dev/null)" in "$D"/*) return 0;; esac
  done
  return 1
}
main_pid() {  # prints the service's main pid if it runs, else fails
  local f pid
  [ -f "$D/svc/$1.pidfile" ] || return 1
  # the daemon's own pidfile, else the pid recorded when it was started (a pidfile can vanish)
  for f in "$(cat "$D/svc/$1.pidfile")" "$D/svc/$1.pid"; do
    [ -s "$f" ] || continue
    pid=$(tr -dc 0-9 < "$f")
    [ -n "$pid" ] && alive "$pid" && ours "$pid" && { echo "$pid"; return 0; }
  done
  return 1
}
tree() {    # pid and all its descendants, from one process table (a ps per process took a minute
            # for the 2,000-connection Dovecot of tests/stack/scale-up.sh)
  ps -e -o pid=,ppid= 2>/dev/null | awk -v roots="$*" '
    { kids[$2] = kids[$2] " " $1 }
    END {
      n = split(roots, q, " ")
      for (i = 1; i <= n; i++) {
        print q[i]
        m = split(kids[q[i]], k, " ")
        for (j = 1; j <= m; j++) q[++n] = k[j]
      }
    }'
}
any_alive() { local p; for p in "$@"; do alive "$p" && return 0; done; return 1; }

stop() {
  local pid pids n
  pid=$(main_pid "$1") || return 0
  pids=$(tree "$pid")
  kill -CONT $pids 2>/dev/null || true       # a paused service cannot handle SIGTERM
  kill -TERM "$pid" 2>/dev/null || true
  for n in $(seq 10); do any_alive $pids || break; sleep 0.1; done
  # dovecot's master takes ~9 s to end an imap process in IDLE (a direct SIGTERM ends it at once)
  ! alive "$pid" || pids="$pids $(tree "$pid")"   # children spawned meanwhile
  kill -TERM $pids 2>/dev/null || true
  for n in $(seq 130); do any_alive $pids || break; sleep 0.1; done
  if any_alive $pids; then
    echo "ctl.sh: $1 did not exit on SIGTERM; SIGKILL $pids" >&2
    kill -KILL $pids 2>/dev/null || true
    for n in $(seq 50); do any_alive $pids || break; sleep 0.1; done
  fi
  ! any_alive $pids || { echo "ctl.sh: $1 still running: $pids" >&2; return 1; }
  if [ "$1" = prometheus ] || [ "$1" = oauth ]; then rm -f "$(cat "$D/svc/$1.pidfile")"; fi
}
start() {
  local a pid= n timeout=30
  [ -x "$D/svc/$1.start" ] || { echo "ctl.sh: $1 is not part of the stack in $D" >&2; return 1; }
  stop "$1"
  [ "$1" = rspamd ] && timeout=120
  "$D/svc/$1.start" 9>&- </dev/null
  n=$((timeout * 10))
  for a in $(cat "$D/svc/$1.addr"); do
    while ! (exec 3<>"/dev/tcp/${a%:*}/${a##*:}") 2>/dev/null; do
      n=$((n-1)); [ $n -gt 0 ] || { echo "ctl.sh: $1 not listening on $a after ${timeout}s; see $D/log" >&2; return 1; }
      sleep 0.1
    done
  done
  for n in $(seq 50); do pid=$(main_pid "$1") && break; sleep 0.1; done
  [ -n "$pid" ] || { echo "ctl.sh: $1 started but its pidfile is missing; see $D/log" >&2; return 1; }
  echo "$pid" > "$D/svc/$1.pid"
}
signal() {
  local pid
  pid=$(main_pid "$2") || { echo "ctl.sh: $2 is not running" >&2; return 1; }
  kill "-$1" $(tree "$pid")
}
status() {
  local s pid
  for s in ${1:-$ALL}; do
    [ -f "$D/svc/$s.pidfile" ] || continue
    if pid=$(main_pid "$s"); then echo "$s running pid $pid"; else echo "$s stopped"; fi
  done
}

[ -d "$D/svc" ] || { [ "$CMD" = stop ] && exit 0; echo "ctl.sh: no stack in $D" >&2; exit 1; }
case "$CMD" in
  flush)   postqueue -c "$D/postfix/etc" -f; exit;;
  status)  status "$S"; exit;;
esac
case "$S" in dovecot|knot|postfix|rspamd|prometheus|oauth) ;; *) usage;; esac
case "$CMD" in
  stop)    stop "$S";;
  start|restart) start "$S";;
  pause)   signal STOP "$S";;
  cont)    signal CONT "$S";;
  *)       usage;;
esac
