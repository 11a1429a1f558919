#!/usr/bin/env bash
# Benchmark 1: the daemon idle with 1,000 IMAP seeds, each watched in INBOX and Junk (2,000 IDLE
# connections to Dovecot on the scale stack, IMAPS). Generates the config (1,000 [seeds.*], one
# probe using them all whose round fires once at start), starts the daemon, waits until every
# watcher is connected and the first round is recorded, settles, then over 60 s reads VmRSS /
# VmHWM (/proc/PID/status), utime+stime (/proc/PID/stat, as % of one core), open fds and threads.
# Targets: RSS < 64 MiB, CPU < 2 % of a core. Figures: docs/scale.md.
#
#   bench/scale-idle.sh [--seeds N] [--tls implicit|none] [--windows W] [--window SECONDS]
#                       [--settle SECONDS] [--profile SECONDS] [--keep]
#
# --profile N runs `perf record -g` on the idle daemon for N s afterwards and prints the top
# symbols. As root. Without MAILCANARY_SCALE_STACK a scale stack (tests/stack/scale-up.sh) is
# brought up in /tmp and stopped afterwards; see bench/scale-lib.sh for the environment.
set -euo pipefail
# shellcheck source=bench/scale-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/scale-lib.sh"
scale_bench idle "$@"
