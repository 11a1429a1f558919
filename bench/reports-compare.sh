#!/usr/bin/env bash
# Times `mailcanary reports parse` against parsedmarc on one generated DMARC
# aggregate report (>= 10,000 records, bench/gen-aggregate.py) and prints
# both medians and the ratio (target: >= 50x), then what both read from every
# fixture in tests/fixtures/reports (kind, reporter, report id, policy domain,
# message and pass counts, TLS session counts). Not part of `cargo test`.
#
#   bench/reports-compare.sh [--records N] [--runs R] [--workdir DIR]
#
# Needs python3 (>= 3.10) and network access to PyPI the first time (the
# virtualenv is cached). Environment: PARSEDMARC_VENV (default
# ~/.cache/mailcanary-bench/parsedmarc-11.1.0), MAILCANARY (a built binary;
# default: cargo build --release, honouring CARGO_TARGET_DIR), PYTHON.
#
# parsedmarc is pinned to 11.1.0, the newest release on PyPI when this was
# written; bench/requirements-parsedmarc.txt pins its dependencies too. It
# runs with offline=True (no DNS; its bundled IP database is still used).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"

# shellcheck source=bench/parsedmarc-venv.sh
source "$here/parsedmarc-venv.sh"

bin="${MAILCANARY:-}"
if [[ -z "$bin" ]]; then
    (cd "$repo" && cargo build --release --quiet --bin mailcanary)
    bin="${CARGO_TARGET_DIR:-$repo/target}/release/mailcanary"
fi

exec "$python" "$here/reports_compare.py" --mailcanary "$bin" --venv-python "$venv/bin/python" "$@"
