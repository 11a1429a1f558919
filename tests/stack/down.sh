#!/usr/bin/env bash
# tests/stack/down.sh DIR - stop every service of the stack in DIR by PID (never by name: other
# stacks may run on this machine), wait until they and their children have exited.
# Exit 0 when nothing of the stack runs any more (also when DIR holds no stack). DIR is kept (logs,
# mail); up.sh wipes it on its next run.
set -uo pipefail
[ $# -ge 1 ] && [ -n "$1" ] || { echo "usage: $0 DIR" >&2; exit 2; }
D=$(realpath -m "$1")
CTL=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/ctl.sh
[ -d "$D/svc" ] || exit 0
rc=0
for s in prometheus postfix rspamd dovecot oauth knot; do
  [ -f "$D/svc/$s.pidfile" ] || continue
  "$CTL" "$D" stop "$s" || rc=1
done
st=$("$CTL" "$D" status)                # no pipe into grep -q: callers may ignore SIGPIPE
case "$st" in *" running "*) echo "$st" >&2; rc=1;; esac
exit $rc
