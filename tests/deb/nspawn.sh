#!/usr/bin/env bash
# nspawn.sh DEB - install DEB in a minimal Debian booted under a real systemd
# (systemd-nspawn) and check the service from outside with nsenter.
#
# Run by tests/deb_package.rs (as root, with the loopback stack of
# tests/stack/up.sh in $MAILCANARY_STACK: a sender authenticates to its
# Postfix with a password handed over by LoadCredential=).
#
# The root is made once by `debootstrap --variant=minbase` (the machine's own
# release and apt mirror) and cached as a tarball in $MAILCANARY_NSPAWN_CACHE
# (/var/cache/mailcanary-test); each run unpacks a fresh copy (~4 s), boots
# it (~1 s to `running`) and deletes it. Building the cache takes ~2.5 min.
#
# Exit: 0 all checks passed, 1 a check failed, 77 this machine cannot make or
# boot a container (the caller decides whether that may be skipped). The
# daemon listens on 127.0.0.1:10580 (the default config's address) in the
# host's network namespace, so runs are serialised with a lock.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DEB" >&2; exit 2; }
DEB=$(realpath "$1")
CACHE=${MAILCANARY_NSPAWN_CACHE:-/var/cache/mailcanary-test}
CANNOT=77
say() { printf 'nspawn: %s\n' "$*" >&2; }
cannot() { say "CANNOT BOOT A CONTAINER HERE: $*"; exit $CANNOT; }
fail() { say "FAIL: $*"; exit 1; }
ok() { say "ok: $*"; }
trap 'say "FAIL: line $LINENO: $BASH_COMMAND"' ERR

[ "$(id -u)" = 0 ] || cannot "needs root"
for t in debootstrap systemd-nspawn nsenter tar flock; do
  command -v "$t" >/dev/null || cannot "$t missing (scripts/deps.sh installs it)"
done
[ -n "${MAILCANARY_STACK:-}" ] && [ -f "$MAILCANARY_STACK/env" ] ||
  fail "MAILCANARY_STACK is not a running stack (scripts/test.sh brings one up)"
stackvar() { sed -n "s/^$1=//p" "$MAILCANARY_STACK/env" | head -n1; }

mkdir -p "$CACHE"
exec 9>"$CACHE/nspawn.lock"
flock 9

# --- the cached root: this machine's release, from the mirror apt uses here.
. /etc/os-release
SUITE=${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}
MIRROR=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)
[ -n "$MIRROR" ] || MIRROR=$(awk '$1 == "deb" { print $2; exit }' /etc/apt/sources.list 2>/dev/null)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
# procps is in the package's Depends (the unit's /bin/kill): preinstalled, so
# installing the package needs no download.
INCLUDE=systemd,systemd-sysv,dbus,procps
KEY=$SUITE-minbase-$(printf '%s %s' "$MIRROR" "$INCLUDE" | md5sum | cut -c1-8)
TARBALL=$CACHE/$KEY.tar.gz
if [ ! -s "$TARBALL" ]; then
  say "making $TARBALL: debootstrap --variant=minbase --include=$INCLUDE $SUITE $MIRROR"
  rm -rf "$CACHE/$KEY.tmp"
  debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$CACHE/$KEY.tmp" "$MIRROR" \
    > "$CACHE/$KEY.log" 2>&1 || { tail -n 20 "$CACHE/$KEY.log" >&2; cannot "debootstrap failed (log: $CACHE/$KEY.log)"; }
  rm -f "$CACHE/$KEY.tmp"/var/cache/apt/archives/*.deb
  tar -C "$CACHE/$KEY.tmp" -czf "$TARBALL.part" . && mv "$TARBALL.part" "$TARBALL"
  rm -rf "$CACHE/$KEY.tmp"
fi

# --- boot a fresh copy.
WORK=$(mktemp -d /var/tmp/mailcanary-nspawn.XXXXXX)
ROOT=$WORK/root
NSPAWN= CPID=
finish() {
  local rc=$?
  if [ "$rc" != 0 ] && [ -n "$CPID" ]; then
    say "--- journal of mailcanary.service (last 60 lines)"
    inside journalctl -u mailcanary --no-pager -n 60 >&2 2>&1 || true
  fi
  if [ -n "$NSPAWN" ]; then
    kill -TERM "$NSPAWN" 2>/dev/null || true      # nspawn halts the container
    for _ in $(seq 100); do kill -0 "$NSPAWN" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$NSPAWN" 2>/dev/null || true
    wait "$NSPAWN" 2>/dev/null || true
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap finish EXIT
mkdir "$ROOT"
tar -C "$ROOT" -xzf "$TARBALL"
cp "$DEB" "$ROOT/root/"
PKG=/root/$(basename "$DEB")

# Everything inside runs with a clean environment (nsenter passes ours on).
inside() {
  nsenter -t "$CPID" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 TERM=dumb "$@"
}
sh_inside() { inside bash -c "$1"; }

# The default config's address is in the host's network namespace too.
if (exec 3<>/dev/tcp/127.0.0.1/10580) 2>/dev/null; then
  fail "something on this host already listens on 127.0.0.1:10580 (the default config's address)"
fi

systemd-nspawn --register=no --keep-unit --quiet --machine="mctest$$" -D "$ROOT" -b \
  > "$WORK/console.log" 2>&1 < /dev/null &
NSPAWN=$!
for _ in $(seq 100); do
  # The container's init: nspawn's child once it has exec'd systemd (an
  # intermediate child exists before that).
  CPID=$(ps --ppid "$NSPAWN" -o pid=,comm= | awk '$2 == "systemd" { print $1; exit }' || true)
  [ -n "$CPID" ] && break
  kill -0 "$NSPAWN" 2>/dev/null || break
  sleep 0.1
done
[ -n "$CPID" ] || { tail -n 20 "$WORK/console.log" >&2; cannot "systemd-nspawn started no container"; }
# Until the manager's socket exists systemctl prints nothing; then it waits.
state=
for _ in $(seq 120); do
  state=$(timeout 60 nsenter -t "$CPID" -a systemctl is-system-running --wait 2>/dev/null || true)
  [ -n "$state" ] && break
  sleep 0.5
done
case "$state" in
  running) ok "container booted (systemd $(inside systemctl --version | head -n1 | cut -d' ' -f2), state $state)" ;;
  *) tail -n 20 "$WORK/console.log" >&2; cannot "the container's systemd did not reach running (state '$state')" ;;
esac

show() { inside systemctl show mailcanary -P "$1"; }
metrics() {
  sh_inside 'exec 3<>/dev/tcp/127.0.0.1/10580 && printf "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n" >&3 && cat <&3' | tr -d '\r'
}
# A line of /metrics, whole.
# The body is read whole first: with pipefail, `metrics | grep -q` fails
# whenever grep stops early and the reader gets SIGPIPE on a large body.
metrics_have() { local body; body=$(metrics); grep -qxF "$1" <<<"$body"; }
restarted_from() { [ "$(show MainPID)" != "$1" ] && [ "$(show ActiveState)" = active ]; }
journal_since() { inside journalctl -u mailcanary --no-pager -o cat --since "@$1"; }
# journald writes a line a moment after systemd acts on it: wait for it, do not sample once.
journal_has() { journal_since "$1" | grep -qE "$2"; }
wait_for() { # wait_for SECONDS WHAT COMMAND...
  local limit=$1 what=$2; shift 2
  for _ in $(seq $((limit * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  fail "$what (after ${limit}s)"
}

# --- install with apt: postinst makes the user and directories, enables and starts.
out=$(inside env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$PKG" 2>&1) ||
  { printf '%s\n' "$out" >&2; fail "apt-get install $PKG"; }
ok "apt-get install $(basename "$DEB")"
[ "$(inside systemctl is-enabled mailcanary)" = enabled ] || fail "the unit is not enabled after install"
inside getent passwd mailcanary | grep -q ':/var/lib/mailcanary:/usr/sbin/nologin$' ||
  fail "no mailcanary system user: $(inside getent passwd mailcanary)"
for want in "/etc/mailcanary 750 root:mailcanary" "/etc/mailcanary/probes.d 750 root:mailcanary" \
  "/etc/mailcanary/credentials 700 root:root"; do
  got=$(inside stat -c '%n %a %U:%G' "${want%% *}")
  [ "$got" = "$want" ] || fail "directory: want '$want', got '$got'"
done
ok "user mailcanary and /etc/mailcanary{,/probes.d,/credentials} with their modes"

# Type=notify: systemd reports active/running only after READY=1.
is_active() { [ "$(show ActiveState)" = active ]; }
wait_for 20 "mailcanary.service active after install" is_active
[ "$(show Type)" = notify ] && [ "$(show SubState)" = running ] ||
  fail "Type=$(show Type) SubState=$(show SubState)"
status="serving http://127.0.0.1:10580/metrics; 0 probes, 0 seeds, 0 domains"
[ "$(show StatusText)" = "$status" ] || fail "STATUS is '$(show StatusText)', want '$status'"
inside systemctl status mailcanary --no-pager > "$WORK/status" 2>&1 || true
grep -qF "Status: \"$status\"" "$WORK/status" || { cat "$WORK/status" >&2; fail "systemctl status lacks the STATUS line"; }
ok "active (running) through READY=1; systemctl status shows Status: \"$status\""

m=$(metrics) || fail "/metrics does not answer inside the container"
grep -qE '^HTTP/1\.[01] 200' <<<"$m" && grep -q '^mailcanary_build_info{version="' <<<"$m" ||
  fail "/metrics answered without build info: $(head -c 400 <<<"$m")"
ok "/metrics answers inside on 127.0.0.1:10580 with the default config"

# --- a sender reads its SMTP password through LoadCredential=: the stack's
# submission port (STARTTLS, AUTH required) accepts the probe only with it.
install -m 0600 /dev/null "$ROOT/etc/mailcanary/credentials/relay-password"
stackvar RELAY_PASS > "$ROOT/etc/mailcanary/credentials/relay-password"
install -m 0644 "$(stackvar CA_CERT)" "$ROOT/etc/mailcanary/ca.pem"
cp "$ROOT/etc/mailcanary/mailcanary.toml" "$WORK/default.toml"
cat > "$ROOT/etc/mailcanary/mailcanary.toml" <<EOF
[daemon]
state_dir = "/var/lib/mailcanary"
probes_dir = "probes.d"
shutdown_grace = "15s"

[http]
listen = "127.0.0.1:10580"

[dns]
resolver = "$(stackvar DNS)"

[senders.submission]
kind = "smtp"
host = "127.0.0.1"
port = $(stackvar SUBMISSION | sed 's/.*://')
tls = "starttls"
ca_file = "/etc/mailcanary/ca.pem"
username = "$(stackvar RELAY_USER)"
password_file = "/run/credentials/mailcanary.service/mailcanary_relay-password"
from = "no-reply@sender.test"

# Mail to the void user is discarded; the Maildir is the watcher's, empty.
[seeds.void]
provider = "void"
address = "$(stackvar VOID_USER)"
kind = "maildir"
path = "/var/lib/mailcanary/void"

[probes.canary]
sender = "submission"
seeds = ["void"]
every = "1h"
timeout = "10m"
template = "/usr/share/mailcanary/templates/verification-en.toml"
EOF
sh_inside 'mkdir -p /var/lib/mailcanary/void/cur /var/lib/mailcanary/void/new /var/lib/mailcanary/void/tmp &&
  chown -R mailcanary:mailcanary /var/lib/mailcanary/void'
inside mailcanary config check /etc/mailcanary/mailcanary.toml >/dev/null 2>&1 &&
  fail "config check passed outside the service, where the credential does not exist"
inside systemctl restart mailcanary || fail "restart with the sender config"
sh_inside 'test -r /run/credentials/mailcanary.service/mailcanary_relay-password' ||
  fail "LoadCredential= handed over no mailcanary_relay-password"
sent='mailcanary_probe_sent_total{probe="canary",seed="void",sender="submission"} 1'
wait_for 30 "the probe was not sent" metrics_have "$sent"
metrics | grep -E '^mailcanary_probe_send_failures_total\{.*\} [1-9]' && fail "a send failure was counted"
ok "the sender authenticated with the password from LoadCredential=: $sent"

# --- reload with a broken config: the unit's ExecReload check fails the
# reload, the daemon keeps running the old config, the journal has file:line:col.
pid=$(show MainPID)
cp "$ROOT/etc/mailcanary/mailcanary.toml" "$WORK/good.toml"
sed -i 's/^shutdown_grace = "15s"$/shutdown_grace = "15 parsecs"/' "$ROOT/etc/mailcanary/mailcanary.toml"
line=$(grep -n '^shutdown_grace' "$ROOT/etc/mailcanary/mailcanary.toml" | cut -d: -f1)
since=$(date +%s)
inside systemctl reload mailcanary >/dev/null 2>&1 && fail "systemctl reload succeeded with a broken config"
[ "$(show ActiveState)" = active ] && [ "$(show MainPID)" = "$pid" ] ||
  fail "the daemon did not keep running after the refused reload"
journal_since "$since" | grep -qE "/etc/mailcanary/mailcanary.toml:$line:[0-9]+" ||
  { journal_since "$since" >&2; fail "the journal does not name /etc/mailcanary/mailcanary.toml:$line:COL"; }
metrics_have "$sent" || fail "the previous config's series are gone"
# SIGHUP straight to the daemon (no ExecReload check): it refuses too.
inside systemctl kill -s HUP --kill-whom=main mailcanary
wait_for 10 "the daemon's own refusal" metrics_have 'mailcanary_config_last_reload_successful 0'
[ "$(show MainPID)" = "$pid" ] || fail "SIGHUP with a broken config restarted the daemon"
ok "reload with a broken config refused, journal names mailcanary.toml:$line:COL, old config kept"
cp "$WORK/good.toml" "$ROOT/etc/mailcanary/mailcanary.toml"
inside systemctl reload mailcanary || fail "reload with the good config"
wait_for 10 "reload success" metrics_have 'mailcanary_config_last_reload_successful 1'

# --- the watchdog restarts a frozen daemon (WatchdogSec shortened by a drop-in).
mkdir -p "$ROOT/etc/systemd/system/mailcanary.service.d"
printf '[Service]\nWatchdogSec=2s\nRestartSec=1s\n' > "$ROOT/etc/systemd/system/mailcanary.service.d/test-watchdog.conf"
inside systemctl daemon-reload
inside systemctl restart mailcanary
pid=$(show MainPID); restarts=$(show NRestarts)
since=$(date +%s)
inside kill -STOP "$pid"
wait_for 60 "the watchdog did not restart the SIGSTOPped daemon" restarted_from "$pid"
wait_for 10 "no watchdog timeout in the journal" journal_has "$since" 'Watchdog timeout'
[ "$(show NRestarts)" -gt "$restarts" ] || fail "NRestarts did not grow"
ok "SIGSTOPped daemon (pid $pid) killed by the watchdog after 2s and restarted (pid $(show MainPID))"
rm -r "$ROOT/etc/systemd/system/mailcanary.service.d"
inside systemctl daemon-reload
inside systemctl restart mailcanary

# --- systemd-analyze security on the installed, loaded unit.
sec=$(inside systemd-analyze security mailcanary.service --no-pager 2>&1 | grep 'Overall exposure level for mailcanary.service' || true)
level=$(sed -n 's/.*: \([0-9.]*\) .*/\1/p' <<<"$sec")
[ -n "$level" ] || fail "no exposure level from systemd-analyze security"
awk -v l="$level" 'BEGIN { exit !(l <= 1.5) }' || fail "exposure $level > 1.5"
ok "systemd-analyze security: exposure $level (at most 1.5)"

# --- systemctl stop drains and exits 0.
wait_for 20 "active before stop" is_active
since=$(date +%s)
inside systemctl stop mailcanary || fail "systemctl stop"
result="$(show Result) $(show ExecMainCode) $(show ExecMainStatus)"
[ "$result" = "success 1 0" ] || fail "stop: Result ExecMainCode ExecMainStatus = '$result', want 'success 1 0' (exited, status 0)"
journal_since "$since" | grep -q 'shutting down' && journal_since "$since" | grep -q 'stopped' ||
  { journal_since "$since" >&2; fail "no drain in the journal"; }
ok "systemctl stop: drained ('shutting down' … 'stopped'), exit status 0"

# --- remove keeps configuration and state; purge leaves nothing.
inside systemctl start mailcanary
out=$(inside env DEBIAN_FRONTEND=noninteractive apt-get remove -y mailcanary 2>&1) ||
  { printf '%s\n' "$out" >&2; fail "apt-get remove"; }
[ "$(show ActiveState)" = inactive ] || fail "the service still runs after remove"
for kept in /etc/mailcanary/mailcanary.toml /etc/mailcanary/credentials/relay-password \
  /var/lib/mailcanary/mailcanary.sqlite3; do
  [ -e "$ROOT$kept" ] || fail "remove deleted $kept"
done
[ -e "$ROOT/usr/bin/mailcanary" ] && fail "remove left /usr/bin/mailcanary"
ok "apt-get remove: stopped, binary gone, config, credentials and store kept"
out=$(inside env DEBIAN_FRONTEND=noninteractive apt-get purge -y mailcanary 2>&1) ||
  { printf '%s\n' "$out" >&2; fail "apt-get purge"; }
rm -f "$ROOT$PKG"
left=$(sh_inside 'find / \( -path /proc -o -path /sys -o -path /dev \) -prune -o -iname "*mailcanary*" -print' || true)
[ -z "$left" ] || fail "apt-get purge left files behind: $left"
inside dpkg-query -W mailcanary >/dev/null 2>&1 && fail "dpkg still knows mailcanary after purge"
ok "apt-get purge: no file named mailcanary anywhere (the system user stays, as Debian keeps system users)"
say "all checks passed"
