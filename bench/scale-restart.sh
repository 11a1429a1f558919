#!/usr/bin/env bash
# Benchmark 2: Dovecot restarted under the load of bench/scale-idle.sh (1,000 seeds, 2,000 IDLE
# connections). With every watcher up, and a probe to 10 of the seeds firing every 2 s, Dovecot is
# restarted the way the stack does it (tests/stack/ctl.sh DIR restart dovecot: stop by PID, start
# again) and the script prints: the time until every watcher is back, reconnects per second as
# Dovecot logged the logins and as the daemon logged its connections (histograms), the peak
# connect rate, logins refused by Dovecot's own limits (its log) or seen refused by the daemon,
# failed reconnect attempts and the reconnect delays drawn, and the outcome of every probe created
# from 10 s before the restart to 10 s after the last watcher returned (all must be delivered).
# Targets: all back < 60 s, no login refused, no probe lost, reconnects spread over many seconds.
# Figures: docs/scale.md.
#
#   bench/scale-restart.sh [--seeds N] [--tls implicit|none] [--inflight K] [--inflight-every D]
#                          [--settle SECONDS] [--keep]
#
# As root; see bench/scale-lib.sh for the environment.
set -euo pipefail
# shellcheck source=bench/scale-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/scale-lib.sh"
scale_bench restart "$@"
