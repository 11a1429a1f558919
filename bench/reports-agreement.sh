#!/usr/bin/env bash
# Reads a set of real DMARC aggregate and TLS-RPT reports with both
# `mailcanary reports parse` and parsedmarc and prints, per file, the fields
# on which they differ (kind, reporter, report id, policy domain, message and
# pass counts, TLS session counts), then the totals. The reports stay outside
# the repository (docs/reports.md says which set was used). Not part of
# `cargo test`.
#
#   bench/reports-agreement.sh DIR_OR_FILE...
#
# Uses the same pinned parsedmarc virtualenv as bench/reports-compare.sh
# (made on first use; needs PyPI then). Environment: PARSEDMARC_VENV,
# MAILCANARY (a built binary; default: cargo build, honouring
# CARGO_TARGET_DIR), PYTHON.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
[[ $# -gt 0 ]] || { echo "usage: $0 DIR_OR_FILE..." >&2; exit 2; }

# shellcheck source=bench/parsedmarc-venv.sh
source "$here/parsedmarc-venv.sh"

bin="${MAILCANARY:-}"
if [[ -z "$bin" ]]; then
    (cd "$repo" && cargo build --quiet --bin mailcanary)
    bin="${CARGO_TARGET_DIR:-$repo/target}/debug/mailcanary"
fi

exec "$python" "$here/reports-agreement.py" --mailcanary "$bin" --venv-python "$venv/bin/python" "$@"
