#!/usr/bin/env bash
# test.sh - the whole test suite against a real loopback mail stack (run as root).
# Installs missing Debian packages, brings up a private stack on free ports,
# runs `cargo test`, and stops the stack by PID however the run ends.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
STACK=${MAILCANARY_STACK:-/tmp/mailcanary-test-$$}
cleanup() { tests/stack/down.sh "$STACK" >/dev/null 2>&1 || true; rm -rf "$STACK"; }
trap cleanup EXIT
tests/stack/up.sh "$STACK"
export MAILCANARY_STACK=$STACK
cargo test --locked "$@"
