# Sourced by the bench scripts that run parsedmarc: picks a python3 ($PYTHON,
# else python3.11, else python3), and makes (once; PyPI needed then) or
# reuses the virtualenv with the pinned parsedmarc. Sets $python and $venv.
# Needs $here (the bench directory). Environment: PYTHON, PARSEDMARC_VENV.

PARSEDMARC_VERSION=11.1.0

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
