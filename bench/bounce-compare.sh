#!/usr/bin/env bash
# Compares `mailcanary bounce` with Sisimai (Debian's libsisimai-perl, 4.25)
# on a set of bounce messages: throughput of each (messages/s, median of
# RUNS runs of ROUNDS passes over the files) with the ratio in wall-clock
# and in CPU time (user + system, steadier on a shared machine), then where
# their reason and status agree. Not part of `cargo test`.
#
#   bench/bounce-compare.sh [FILE_OR_DIR...]     (default: tests/fixtures/bounce)
#
# Environment: MAILCANARY (a built binary; default: cargo build --release,
# honouring CARGO_TARGET_DIR), ROUNDS (default 20), RUNS (default 5).
# Needs: perl with libsisimai-perl (apt-get install libsisimai-perl), python3.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"

perl -MSisimai -e1 2>/dev/null || { echo "Sisimai not found: apt-get install libsisimai-perl" >&2; exit 2; }

bin="${MAILCANARY:-}"
if [[ -z "$bin" ]]; then
    (cd "$repo" && cargo build --release --quiet --bin mailcanary)
    bin="${CARGO_TARGET_DIR:-$repo/target}/release/mailcanary"
fi

args=("$@")
[[ ${#args[@]} -gt 0 ]] || args=("$repo/tests/fixtures/bounce")
files=()
for a in "${args[@]}"; do
    if [[ -d "$a" ]]; then
        while IFS= read -r -d '' f; do files+=("$f"); done < <(find "$a" -type f -name '*.eml' -print0 | sort -z)
    else
        files+=("$a")
    fi
done
[[ ${#files[@]} -gt 0 ]] || { echo "no message files" >&2; exit 2; }

exec python3 "$here/bounce-compare.py" "$bin" "$here/sisimai-dump.pl" "${files[@]}"
