#!/usr/bin/env bash
# Benchmark 3: sustained probing through the Maildir path. For each rate R (default 25, 50, 100,
# 200, 300, 400 a second; two misses in a row end the run) the daemon runs with R Maildir seeds
# of the scale stack in one probe firing every second, so every second R messages are composed,
# DKIM-signed and submitted to the relay, relayed to the MX (rspamd milter), delivered by Dovecot
# LMTP into the seeds' Maildirs, seen by inotify, evaluated and recorded, and /metrics is scraped
# every 5 s. After a 10 s warm-up it measures a 60 s window: the daemon's CPU (utime+stime) per
# probe seen, the rest of the machine's CPU per probe (the mail stack), detection latency (seen −
# the Maildir file's mtime) and delivery latency (seen − accepted by the relay) percentiles, and
# whether the rate was held (≥ 95 % seen in the window, every run of the window arrived, detection
# p99 < 50 ms). --profile 1 then runs the highest rate held once more under perf and prints its
# profile (a window of its own: perf's work stays out of the measured ones). --via direct submits
# to the stack's DIRECT listener (Postfix's virtual(8) straight into the Maildirs) instead of the
# relay. Targets: CPU per probe < 5 ms. Figures: docs/benchmarks.md.
#
#   bench/scale-rate.sh [--via relay|direct] [--rates 25,50,...] [--step SECONDS] [--warmup SECONDS]
#                       [--profile 1] [--keep]
#
# As root; see bench/scale-lib.sh for the environment (the stack needs as many seed users as the
# highest rate).
set -euo pipefail
# shellcheck source=bench/scale-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/scale-lib.sh"
scale_bench rate "$@"
