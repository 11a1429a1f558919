#!/usr/bin/env bash
# deps.sh - install the Debian packages mailcanary's local stack and tests need (idempotent, root).
# Installs only what is missing, so a second run costs one dpkg query.
set -euo pipefail
PKGS=(knot knot-dnsutils postfix dovecot-imapd dovecot-lmtpd dovecot-sieve rspamd prometheus
      swaks libnet-ssleay-perl openssl ca-certificates curl python3 systemd
      # the Debian package and its test under a real systemd (scripts/package.sh, tests/deb/)
      dpkg-dev binutils lintian debootstrap systemd-container util-linux
      # the support view's browser test (tests/status_page.rs; a CJK font for the Chinese screenshot)
      chromium chromium-driver fonts-wqy-microhei)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
[ "$(id -u)" = 0 ] || { echo "deps.sh: missing packages (${missing[*]}); run as root" >&2; exit 1; }
# The packages must not start their own daemons on 25/53/143: the stack runs its own copies on loopback.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps.sh: installed ${missing[*]}"
