#!/usr/bin/env bash
# tests/stack/scale-up.sh DIR - the loopback stack of up.sh with 1,000 seed users (SEEDS=N to
# change) and Dovecot tuned for their 2,000 IDLE connections (INBOX + Junk each): high-performance
# imap-login, imap-hibernate for idle clients, client and process limits sized from SEEDS, a
# raised fd limit. The tuning and the reasons for each value: docs/scale.md. Prometheus is off
# unless WITH_PROM=1. Stop with tests/stack/down.sh DIR, restart Dovecot with
# tests/stack/ctl.sh DIR restart dovecot, as for the small stack. Every other knob of up.sh
# applies. Used by bench/scale-idle.sh and bench/scale-restart.sh; the test suite keeps the small
# stack (4 seeds, SCALE=0).
set -euo pipefail
[ $# -ge 1 ] && [ -n "$1" ] || { echo "usage: $0 DIR" >&2; exit 2; }
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SEEDS=${SEEDS:-1000} SCALE=1 WITH_PROM=${WITH_PROM:-0} exec "$HERE/up.sh" "$1"
