# bench/scale-lib.sh - sourced by bench/scale-idle.sh and bench/scale-restart.sh: finds or builds
# the binary and runs bench/scale.py BENCH with the caller's arguments.
#
# Environment: MAILCANARY (a built binary; default: cargo build --release, honouring
# CARGO_TARGET_DIR), MAILCANARY_SCALE_STACK (a running tests/stack/scale-up.sh DIR to use instead
# of bringing one up and down), PYTHON (default python3).
scale_bench() {
    local bench=$1; shift
    local here repo bin
    here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
    repo="$(dirname "$here")"
    [ "$(id -u)" = 0 ] || { echo "$0: must run as root (the loopback stack does)" >&2; exit 1; }
    bin="${MAILCANARY:-}"
    if [[ -z "$bin" ]]; then
        (cd "$repo" && cargo build --release --quiet --bin mailcanary)
        bin="${CARGO_TARGET_DIR:-$repo/target}/release/mailcanary"
    fi
    local stack=()
    [[ -n "${MAILCANARY_SCALE_STACK:-}" ]] && stack=(--stack "$MAILCANARY_SCALE_STACK")
    local cmd="$0${*:+ $*}"
    [[ -n "${MAILCANARY:-}" ]] && cmd="MAILCANARY=$MAILCANARY $cmd"
    [[ -n "${MAILCANARY_SCALE_STACK:-}" ]] && cmd="MAILCANARY_SCALE_STACK=$MAILCANARY_SCALE_STACK $cmd"
    exec "${PYTHON:-python3}" "$here/scale.py" "$bench" --mailcanary "$bin" "${stack[@]}" --command "$cmd" "$@"
}
