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

PARSEDMARC_VERSION=11.1.0
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"

python="${PYTHON:-}"
if [[ -z "$python" ]]; then
    for p in python3.11 python3; do
        if command -v "$p" >/dev/null; then python="$p"; break; fi
    done
fi
[[ -n "$python" ]] || { echo "python3 not found" >&2; exit 2; }

venv="${PARSEDMARC_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/mailcanary-bench/parsedmarc-$PARSEDMARC_VERSION}"
if ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('parsedmarc') != '$PARSEDMARC_VERSION')" 2>/dev/null; then
    echo "creating $venv with parsedmarc==$PARSEDMARC_VERSION" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        -r "$here/requirements-parsedmarc.txt"
fi

bin="${MAILCANARY:-}"
if [[ -z "$bin" ]]; then
    (cd "$repo" && cargo build --release --quiet --bin mailcanary)
    bin="${CARGO_TARGET_DIR:-$repo/target}/release/mailcanary"
fi

exec "$python" "$here/reports_compare.py" --mailcanary "$bin" --venv-python "$venv/bin/python" "$@"
