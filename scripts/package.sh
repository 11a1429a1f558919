#!/usr/bin/env bash
# package.sh - build dist/mailcanary_VERSION_ARCH.deb (Debian 12) and lint it.
#
#   scripts/package.sh                      cargo build --release, then package
#   scripts/package.sh --binary PATH        package an already built binary (the tests
#                                           package the debug build cargo test made)
#   scripts/package.sh --out DIR            write the .deb into DIR (default dist/)
#   scripts/package.sh --no-lint            skip lintian
#   scripts/package.sh --compress gzip      dpkg-deb compression (default xz; gzip is ~10x
#                                           faster, for tests)
#
# Built with dpkg-deb from a staged tree: it needs only dpkg-dev and binutils, where
# cargo-deb would first be compiled here by `cargo install` (minutes on 2 cores), and
# the maintainer scripts are the ones debhelper generates (packaging/deb/), written
# out. The man pages and completions come from the binary's own CLI definition
# (`mailcanary generate-manual`). Prints the path of the .deb on the last line.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
BIN= OUT=dist LINT=1 COMPRESS=xz
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) BIN=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --no-lint) LINT=0; shift ;;
    --compress) COMPRESS=$2; shift 2 ;;
    *) echo "package.sh: unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
for tool in dpkg-deb dpkg-shlibdeps strip gzip; do
  command -v "$tool" >/dev/null || { echo "package.sh: $tool missing; run scripts/deps.sh" >&2; exit 1; }
done
if [ -z "$BIN" ]; then
  cargo build --release --locked >&2
  BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/mailcanary
fi
[ -x "$BIN" ] || { echo "package.sh: no executable at $BIN" >&2; exit 1; }

VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
ARCH=$(dpkg --print-architecture)
P=packaging/deb
# The binary, the changelog and Cargo.toml must agree on the version.
[ "$("$BIN" --version)" = "mailcanary $VERSION" ] ||
  { echo "package.sh: $BIN says '$("$BIN" --version)', Cargo.toml says $VERSION" >&2; exit 1; }
head -n1 "$P/changelog" | grep -q "^mailcanary ($VERSION) " ||
  { echo "package.sh: $P/changelog does not start with version $VERSION" >&2; exit 1; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
S=$WORK/stage
DOC=$S/usr/share/doc/mailcanary
SHARE=$S/usr/share/mailcanary
d() { install -d -m 0755 "$@"; }
f() { install -m 0644 "$@"; }

d "$S/DEBIAN" "$S/usr/bin" "$S/etc/mailcanary" "$S/lib/systemd/system" "$S/usr/lib/sysusers.d" \
  "$S/usr/lib/tmpfiles.d" "$S/usr/share/man/man1" "$S/usr/share/bash-completion/completions" \
  "$S/usr/share/zsh/vendor-completions" "$S/usr/share/fish/vendor_completions.d" \
  "$DOC/examples/example.d" "$SHARE/dashboards" "$SHARE/templates"

# What dh_strip does: no debug sections, no .comment/.note.
strip --strip-unneeded --remove-section=.comment --remove-section=.note \
  -o "$S/usr/bin/mailcanary" "$BIN"
chmod 0755 "$S/usr/bin/mailcanary"

# The unit in the repo names /usr/bin/mailcanary already; Debian 12 keeps units in /lib.
f systemd/mailcanary.service "$S/lib/systemd/system/mailcanary.service"
f systemd/mailcanary.sysusers.conf "$S/usr/lib/sysusers.d/mailcanary.conf"
f systemd/mailcanary.tmpfiles.conf "$S/usr/lib/tmpfiles.d/mailcanary.conf"
f "$P/mailcanary.toml" "$S/etc/mailcanary/mailcanary.toml"
# It must validate as installed, beside the (empty) probes.d tmpfiles makes.
mkdir -p "$WORK/check/probes.d" && cp "$P/mailcanary.toml" "$WORK/check/"
"$BIN" config check "$WORK/check/mailcanary.toml" >&2 ||
  { echo "package.sh: the default config does not validate" >&2; exit 1; }

# Man pages and completions from the CLI definition.
"$BIN" generate-manual "$WORK/manual" >/dev/null
for page in "$WORK"/manual/man/*.1; do
  gzip -9n -c "$page" > "$S/usr/share/man/man1/$(basename "$page").gz"
done
f "$WORK/manual/completions/mailcanary.bash" "$S/usr/share/bash-completion/completions/mailcanary"
f "$WORK/manual/completions/_mailcanary" "$S/usr/share/zsh/vendor-completions/_mailcanary"
f "$WORK/manual/completions/mailcanary.fish" "$S/usr/share/fish/vendor_completions.d/mailcanary.fish"

# Dashboards, alert rules (with their promtool tests), runbook, templates.
f dashboards/mailcanary.json dashboards/alerts.yml dashboards/alerts_test.yml dashboards/alerts_ingest_test.yml \
  dashboards/runbook.md "$SHARE/dashboards/"
f probes/templates/*.toml "$SHARE/templates/"

# Examples: the production-shaped config and its drop-ins; their relative template
# paths (../templates/) resolve through a link to the shipped templates.
f probes/example.toml probes/providers.toml "$DOC/examples/"
f probes/example.d/*.toml "$DOC/examples/example.d/"
ln -s ../../../mailcanary/templates "$DOC/examples/templates"
f "$P/copyright" "$DOC/copyright"
gzip -9n -c "$P/changelog" > "$DOC/changelog.gz"
chmod 0644 "$DOC/changelog.gz"

for s in postinst prerm postrm; do install -m 0755 "$P/$s" "$S/DEBIAN/$s"; done
(cd "$S" && find etc -type f -printf '/%p\n') > "$S/DEBIAN/conffiles"
chmod 0644 "$S/DEBIAN/conffiles"

# Library dependencies as dh_shlibdeps finds them (it wants a debian/control).
mkdir -p "$WORK/shlibs/debian"
printf 'Source: mailcanary\n\nPackage: mailcanary\nArchitecture: any\n' > "$WORK/shlibs/debian/control"
SHLIBS=$(cd "$WORK/shlibs" && dpkg-shlibdeps -O "$S/usr/bin/mailcanary" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$SHLIBS" ] || { echo "package.sh: dpkg-shlibdeps found no dependencies" >&2; exit 1; }

SIZE=$(du -sk --exclude=DEBIAN "$S" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@INSTALLED_SIZE@/$SIZE/" \
  -e "s/@SHLIBS@/$SHLIBS/" "$P/control.in" > "$S/DEBIAN/control"
(cd "$S" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z |
  xargs -0 md5sum) > "$S/DEBIAN/md5sums"
chmod 0644 "$S/DEBIAN/control" "$S/DEBIAN/md5sums"

mkdir -p "$OUT"
DEB=$(cd "$OUT" && pwd)/mailcanary_${VERSION}_${ARCH}.deb
dpkg-deb --root-owner-group -Z"$COMPRESS" --build "$S" "$DEB" >&2

if [ "$LINT" = 1 ]; then
  command -v lintian >/dev/null || { echo "package.sh: lintian missing; run scripts/deps.sh" >&2; exit 1; }
  # Errors and warnings fail; overrides (if any) are in the package and say why.
  lintian --fail-on error,warning --info "$DEB" >&2
fi
echo "$DEB"
