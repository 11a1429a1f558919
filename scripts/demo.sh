#!/usr/bin/env bash
# demo.sh - the main job: mailcanary probing a real local mail stack (run as root).
# Installs missing Debian packages, builds, brings up the loopback stack under
# /tmp/mailcanary-demo, and runs the daemon in the foreground on probes/local.toml.
# Ctrl-C stops the daemon and the stack.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release --locked
# cargo puts the binary under CARGO_TARGET_DIR (or CARGO_BUILD_TARGET_DIR)
# when set, as on shared build machines.
bin="${CARGO_TARGET_DIR:-${CARGO_BUILD_TARGET_DIR:-target}}/release/mailcanary"
STACK=/tmp/mailcanary-demo
trap 'tests/stack/down.sh "$STACK" >/dev/null 2>&1 || true' EXIT
# probes/local.toml names the stack's default ports, so they must be free.
AUTO_PORTS=0 tests/stack/up.sh "$STACK" >/dev/null
printf '%s\n' "$(. "$STACK/env"; echo "$SEED_PASS")" > "$STACK/seed-password"
chmod 600 "$STACK/seed-password"
echo "demo: stack up under $STACK; metrics at http://127.0.0.1:10580/metrics"
"$bin" config check probes/local.toml
"$bin" run --config probes/local.toml
