#!/usr/bin/env bash
# Compares `mailcanary check` with checkdmarc on >= 1,000 generated zones
# served by a private knotd on 127.0.0.1 (a free port, stopped by PID at the
# end). Prints where their SPF and DMARC verdicts agree or differ, with example
# domains, and both wall times with their ratio. Not part of `cargo test`.
#
#   bench/checkdmarc-compare.sh [--domains N] [--runs R] [--seed S] [--workdir DIR] [--pin]
#
# --pin runs knotd on CPU 0 and each audited tool on CPU 1 (taskset), so the
# server and the tool under test do not compete for one core; without it the
# scheduler places them.
#
# Needs: knotd (Debian package `knot`), python3.11 (or python3 >= 3.10), and
# network access to PyPI the first time (the virtualenv is cached).
# Environment: CHECKDMARC_VENV (default ~/.cache/mailcanary-bench/checkdmarc-6.0.4),
# MAILCANARY (a built binary; default: cargo build --release, honouring
# CARGO_TARGET_DIR), PYTHON (interpreter for the virtualenv).
#
# checkdmarc is pinned to 6.0.4, the newest release on PyPI when this was
# written (it installs on Python 3.11); bench/requirements-checkdmarc.txt pins
# its dependencies too. The default run (1,000 domains, 3 runs of each tool)
# takes about 1.5 minutes on 2 cores once the virtualenv and the release
# binary exist.
set -euo pipefail

CHECKDMARC_VERSION=6.0.4
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"

command -v knotd >/dev/null || { echo "knotd not found: apt-get install knot" >&2; exit 2; }

python="${PYTHON:-}"
if [[ -z "$python" ]]; then
    for p in python3.11 python3; do
        if command -v "$p" >/dev/null; then python="$p"; break; fi
    done
fi
[[ -n "$python" ]] || { echo "python3 not found" >&2; exit 2; }

venv="${CHECKDMARC_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/mailcanary-bench/checkdmarc-$CHECKDMARC_VERSION}"
if ! "$venv/bin/python" -c "import checkdmarc, sys; sys.exit(checkdmarc.__version__ != '$CHECKDMARC_VERSION')" 2>/dev/null; then
    echo "creating $venv with checkdmarc==$CHECKDMARC_VERSION" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        -r "$here/requirements-checkdmarc.txt"
fi

bin="${MAILCANARY:-}"
if [[ -z "$bin" ]]; then
    (cd "$repo" && cargo build --release --quiet --bin mailcanary)
    bin="${CARGO_TARGET_DIR:-$repo/target}/release/mailcanary"
fi

exec "$venv/bin/python" "$here/compare.py" --mailcanary "$bin" "$@"
