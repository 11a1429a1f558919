#!/usr/bin/env bash
# tests/stack/up.sh DIR - mailcanary's loopback mail stack under DIR (absolute path <= 60 chars).
#
#   knot (authoritative DNS: sender.test, seed.test, corp.test)
#   postfix: SMTP  = seed MX (milter rspamd -> LMTP dovecot), the only listener with a milter
#            RELAY_OK / RELAY_BAD = operator's outbound relay, no AUTH from 127/8, forwards to SMTP
#                     from SENDER_IP (in sender.test's SPF) / BAD_SENDER_IP (not in it)
#            SUBMISSION (STARTTLS + AUTH required) / SUBMISSIONS (implicit TLS + AUTH) relay like RELAY_OK
#            DIRECT = straight into the seeds' Maildirs by Postfix's virtual(8): no relay hop, no
#                     milter, no Dovecot (the cheapest real delivery; bench/scale-rate.sh --via direct)
#   rspamd  (milter: SPF/DKIM/DMARC, Authentication-Results by AUTHSERV_ID, X-Spam / X-Spam-Status)
#   dovecot (LMTP + sieve_before: spam -> "Junk" (\Junk), IMAP/IMAPS with IDLE, Maildir)
#   prometheus (WITH_PROM=1, default): file_sd over PROM_TARGETS_DIR/*.json, rules PROM_RULES_DIR/*.yml
# Writes DIR/env (KEY=VALUE, no quotes/spaces). Stop: tests/stack/down.sh DIR; one service:
# tests/stack/ctl.sh DIR stop|start|restart|pause|cont SERVICE, ctl.sh DIR flush (postfix queue).
#
# Environment knobs: AUTO_PORTS=1 (default: a busy port is replaced by a free one below the
#   ephemeral range; 0 = fail), WITH_PROM=1, STACK_ADDR=127.0.0.1 (listen address, in 127/8),
#   SENDER_IP=127.0.0.2, BAD_SENDER_IP=127.0.0.3, SEED_PASS, RELAY_USER, RELAY_PASS,
#   HS_CACHE=/var/cache/mailcanary-stack/rspamd-hs (rspamd hyperscan cache, kept between runs),
#   STACK_LOCK=/tmp/mailcanary-stack.lock (serialises port choice between concurrent runs), and
#   each *_PORT default: DNS 10053 SMTP 10025 RELAY_OK 10026 RELAY_BAD 10027 DIRECT 10028 SUBMISSION 10587
#   SUBMISSIONS 10465 LMTP 10024 IMAP 10143 IMAPS 10993 RSPAMD_MILTER/NORMAL/CONTROLLER 11332-11334
#   PROM 19090.
#   SEEDS=4: seed users seed1..seedN@seed.test (password SEED_PASS, each its own Maildir);
#   SCALE=0: 1 = Dovecot tuned for thousands of IDLE connections (tests/stack/scale-up.sh sets
#   SEEDS=1000 SCALE=1; the tuning and why: docs/scale.md). The test suite uses the defaults.
#
# DIR/env keys (host:port unless said): STACK_DIR STACK_ADDR DNS (knot, udp+tcp) SMTP (seed MX)
#   RELAY_OK RELAY_BAD DIRECT SUBMISSION SUBMISSIONS RELAY_USER RELAY_PASS IMAP IMAPS LMTP RSPAMD_MILTER
#   RSPAMD_NORMAL RSPAMD_CONTROLLER (no password from 127/8) PROMETHEUS (empty if WITH_PROM=0)
#   PROM_TARGETS_DIR PROM_RULES_DIR PROM_TLS_TARGETS_DIR (file_sd of job mailcanary-tls: https,
#   trusting CA_CERT, basic auth PROM_SCRAPE_USER / the password in PROM_SCRAPE_PASSWORD_FILE)
#   TLS_CERT TLS_KEY (a server cert for localhost and the listen IP, signed by CA_CERT) SENDER_DOMAIN SENDER_IP BAD_SENDER_IP DKIM_KEY (PEM, RSA 2048,
#   new each run) DKIM_SELECTOR SEED_DOMAIN SEED_USERS OAUTH_USERS OAUTH_URL DOVECOT_LOG SEED_PASS VOID_USER TEMPFAIL_USER AUTHSERV_ID SPAM_PATTERN
#   BOUNCE_USER APP_BOUNCE_USER REPORTS_USER (mailboxes at sender.test, password SEED_PASS, Maildir
#   SENDER_MAILDIR_PATTERN) POLICY_USER UNKNOWN_USER FULL_USER GREYLIST_USER GREYLIST_MAP (recipients
#   the seed MX refuses; the relays accept them and bounce to the envelope sender; delay notices
#   after delay_warning_time = 4s) RELAY_REFUSED_USER (the relays refuse it at RCPT: 550 5.1.1)
#   (GTUBE "add header" string: mail lands in Junk) REJECT_PATTERN (GTUBE "reject" string: the MX
#   answers 554 5.7.1 at end of DATA) TLS_SERVER_NAME CA_CERT MAILDIR_ROOT (seedN's INBOX is
#   MAILDIR_ROOT/seedN/Maildir/{new,cur}, Junk is .../Maildir/.Junk/{new,cur}) MAILDIR_PATTERN
#   ({user} = local part) JUNK_FOLDER JUNK_MAILDIR KNOT_SOCKET ZONE_DIR POSTFIX_CONFIG
#   DOVECOT_CONFIG LOG_DIR SEED_COUNT (N of SEEDS) SCALE.
#
# Timings measured on the 2-core dev machine (Debian 12: rspamd 3.4, knot 3.2, postfix 3.7,
# dovecot 2.3.19, prometheus 2.42):
#   cold start (empty HS_CACHE): 20-21 s  (rspamd listens after 14-15 s: TLD suffix hyperscan;
#                                          its hs_helper then compiles the regexps for ~6 s more,
#                                          up.sh waits for that so the stack is quiet)
#   warm start (HS_CACHE kept):  2.8-3.1 s on an idle machine, up to ~6 s while other stacks start
#                                (postfix's start-up checks are the long pole, ~2 s)
#   second run on the same DIR:  ~5 s (of which ~2 s stopping the old stack)
#   down.sh: ~2 s (dovecot ~1.2 s). Prometheus discovers a new PROM_TARGETS_DIR/*.json file after
#   2-5 s (its discovery manager batches updates every 5 s; POST /-/reload does not speed it up),
#   first scrape <= 1 s later: allow ~7 s. scrape_interval = evaluation_interval = 1 s works.
#   Rules: drop PROM_RULES_DIR/x.yml, then POST /-/reload (evaluated within ~1 s).
#
# Live DNS changes: both methods checked; rspamd sees the change on the very next message (its
# SPF/DKIM caches are disabled below, it has no resolver cache, TTLs are 5 s):
#   a) knotc -s DIR/knot/knot.sock zone-begin sender.test
#      knotc -s DIR/knot/knot.sock zone-unset sender.test @ TXT
#      knotc -s DIR/knot/knot.sock zone-set   sender.test @ 5 TXT '"v=spf1 ip4:127.0.0.9 -all"'
#      knotc -s DIR/knot/knot.sock zone-commit sender.test          (knot bumps the SOA serial)
#   b) rewrite DIR/zones/sender.test.zone, then knotc -b -s DIR/knot/knot.sock zone-reload sender.test
#      (-b waits until loaded; zonefile-load: whole, so the serial need not change, even go down;
#       knot never writes the file back, so a) and b) mix: zone-reload returns to the file).
#   Both answer the new data as soon as knotc returns. A rotated sel._domainkey key also takes
#   effect at once (dkim=fail for mail signed with the old key).
#
# Behaviour worth knowing: Authentication-Results lists dkim/dmarc/spf in no fixed order (rspamd
# walks a Lua table), match each method separately. With knot stopped (or paused) rspamd's lookups
# time out: the mail is delayed ~4.3 s at the MX and gets spf=temperror, dmarc=temperror, INBOX.
# With dovecot stopped, postfix defers (4.4.1) and retries every 2 s: the mail arrives 0.06-1 s
# after 'ctl.sh DIR start dovecot' (measured; ctl.sh DIR flush retries at once). void@seed.test discards
# everything, spam included (its userdb overrides sieve_before). GTUBE mail carries no
# Authentication-Results/X-Spamd-Result (rspamd skips all rules for it), only X-Spam: Yes.
#
# Pitfalls handled here: postfix cannot use a non-53 DNS port, so it needs no DNS (IP-literal
# next hops, no peername lookups); postfix's smtp client refuses to talk to a server announcing
# its own myhostname ("loops back to myself"), so the relay transports use another myhostname;
# rspamd's authserv-id is the milter macro {daemon_name} (postfix milter_macro_daemon_name), pinned
# to mx.seed.test on the MX listener; rspamd's SPF module caches records for min_cache_ttl (5 min)
# regardless of the TTL, so caches are off; rspamd's "reject" and "greylist" actions are disabled
# (they would make the milter answer 5xx/4xx) - only GTUBE's own reject pattern still rejects;
# postfix's data_directory must belong to postfix; passwd-file userdb extra fields need the
# userdb_ prefix; dovecot's master needs ~9 s to end an imap process in IDLE, so ctl.sh also
# signals the children; daemons must not inherit the port-allocation lock fd; a daemon removes
# its pidfile by path when it exits, so never rm -rf a DIR whose stack still runs.
set -Eeuo pipefail
trap '' PIPE                     # 'up.sh | head' must not kill the script halfway

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# -ge 1 ] && [ -n "$1" ] || { echo "usage: $0 DIR" >&2; exit 2; }
D=$(realpath -m "$1")
[ "$(id -u)" = 0 ] || { echo "up.sh: must run as root" >&2; exit 1; }
[ ${#D} -le 60 ] || { echo "up.sh: DIR $D is longer than 60 chars (unix socket paths)" >&2; exit 1; }
case "$D" in *[[:space:]:=\'\"\\%]*) echo "up.sh: DIR must not contain spaces or :=%'\"\\" >&2; exit 1;; esac

ADDR=${STACK_ADDR:-127.0.0.1}
SENDER_IP=${SENDER_IP:-127.0.0.2}          # the only IP sender.test's SPF allows
BAD_SENDER_IP=${BAD_SENDER_IP:-127.0.0.3}  # an IP sender.test's SPF does not allow
for a in "$ADDR" "$SENDER_IP" "$BAD_SENDER_IP"; do
  [[ $a =~ ^127\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "up.sh: $a is not in 127.0.0.0/8" >&2; exit 1; }
done
AUTO_PORTS=${AUTO_PORTS:-1}
WITH_PROM=${WITH_PROM:-1}
HS_CACHE=${HS_CACHE:-/var/cache/mailcanary-stack/rspamd-hs}
STACK_LOCK=${STACK_LOCK:-/tmp/mailcanary-stack.lock}
SEED_PASS=${SEED_PASS:-seedpass}
RELAY_USER=${RELAY_USER:-relay@sender.test}
RELAY_PASS=${RELAY_PASS:-relaypass}
AUTHSERV_ID=mx.seed.test
SEEDS=${SEEDS:-4}
SCALE=${SCALE:-0}
[[ $SEEDS =~ ^[1-9][0-9]{0,4}$ ]] && [ "$SEEDS" -ge 4 ] || { echo "up.sh: SEEDS must be 4..99999" >&2; exit 1; }
[[ $SCALE =~ ^[01]$ ]] || { echo "up.sh: SCALE must be 0 or 1" >&2; exit 1; }
SEED_USERS=$(seq -f 'seed%g@seed.test' -s, 1 "$SEEDS")   # seed1..seed4 by default
VOID_USER=void@seed.test
TEMPFAIL_USER=tempfail@seed.test
OAUTH_USERS=oauth1@seed.test,oauth2@seed.test,oauth3@seed.test,oauth4@seed.test,oauth5@seed.test
# The operator's own mailboxes at sender.test: the probes' return path, the app's real return path,
# and the DMARC/TLS-RPT report address.
BOUNCE_USER=bounces@sender.test
APP_BOUNCE_USER=appbounces@sender.test
REPORTS_USER=reports@sender.test
# Recipients the seed MX refuses (the relay accepts them and bounces, as an ESP would):
POLICY_USER=policy@seed.test          # 550 5.7.1 at the end of DATA
UNKNOWN_USER=nobody@seed.test         # no such mailbox: 550 5.1.1 at RCPT
FULL_USER=full@seed.test              # 1 KiB Dovecot quota: 552 5.2.2 from LMTP
GREYLIST_USER=greylist@seed.test      # 450 4.7.1 at RCPT while listed in GREYLIST_MAP
RELAY_REFUSED_USER=unlisted@seed.test # refused by the relays themselves: 550 5.1.1 at RCPT (a send failure)
for v in "$SEED_PASS" "$RELAY_USER" "$RELAY_PASS"; do
  [[ $v =~ ^[A-Za-z0-9._@+-]+$ ]] || { echo "up.sh: '$v' must match [A-Za-z0-9._@+-]+" >&2; exit 1; }
done

# name default (udp = needs the UDP port too)
PORTS="DNS_PORT ${DNS_PORT:-10053} udp
SMTP_PORT ${SMTP_PORT:-10025}
RELAY_OK_PORT ${RELAY_OK_PORT:-10026}
RELAY_BAD_PORT ${RELAY_BAD_PORT:-10027}
DIRECT_PORT ${DIRECT_PORT:-10028}
SUBMISSION_PORT ${SUBMISSION_PORT:-10587}
SUBMISSIONS_PORT ${SUBMISSIONS_PORT:-10465}
LMTP_PORT ${LMTP_PORT:-10024}
IMAP_PORT ${IMAP_PORT:-10143}
IMAPS_PORT ${IMAPS_PORT:-10993}
RSPAMD_MILTER_PORT ${RSPAMD_MILTER_PORT:-11332}
RSPAMD_NORMAL_PORT ${RSPAMD_NORMAL_PORT:-11333}
RSPAMD_CONTROLLER_PORT ${RSPAMD_CONTROLLER_PORT:-11334}
OAUTH_PORT ${OAUTH_PORT:-10880}"
[ "$WITH_PROM" = 1 ] && PORTS="$PORTS
PROM_PORT ${PROM_PORT:-19090}"

T0=$(date +%s%N)
say() { local ms=$(( ($(date +%s%N) - T0) / 1000000 )); printf '%3d.%03ds  %s\n' $((ms/1000)) $((ms%1000)) "$*" 2>/dev/null || true; }

# ---------- replace an old stack in DIR (only one this script made) ----------
exec 9>>"$STACK_LOCK"            # serialises port choice + binding between concurrent up.sh runs
flock 9
if [ -e "$D" ]; then
  if [ -e "$D/.mailcanary-stack" ]; then
    "$HERE/down.sh" "$D" >/dev/null || { echo "up.sh: could not stop the old stack in $D" >&2; exit 1; }
    rm -rf "$D"
  elif [ -d "$D" ] && [ -z "$(ls -A "$D")" ]; then
    rmdir "$D"
  else
    echo "up.sh: $D exists and was not made by up.sh; refusing to wipe it" >&2; exit 1
  fi
fi
mkdir -p "$D"
touch "$D/.mailcanary-stack"
chmod 755 "$D"
if ! runuser -u mail -- test -x "$D"; then
  echo "up.sh: $D is not reachable by user mail (a parent dir lacks o+x); use e.g. /tmp/..." >&2
  rm -rf "$D"; exit 1
fi
mkdir -p "$D"/{log,svc,tls,zones,knot/db,postfix/etc,postfix/spool,postfix/data,dovecot/run,dovecot/sieve} \
         "$D"/{mail,rspamd/conf/local.d,rspamd/conf/override.d,rspamd/db,rspamd/run,prom/data,prom/targets,prom/targets-tls,prom/rules} \
         "$HS_CACHE"
chown mail:mail "$D/mail"
chown postfix:postfix "$D/postfix/data"; chmod 700 "$D/postfix/data"

failed() {
  [ "$BASHPID" = "$$" ] || exit 1   # an ERR inside $(...) is handled once, by the main shell
  trap - ERR INT TERM
  echo "up.sh: failed at line $1; logs in $D/log; stopping what was started" >&2
  wait 2>/dev/null                 # starters still running (rspamd, postfix) must finish first:
  "$HERE/down.sh" "$D" >&2 || true # their pidfiles appear only when they are done
  exit 1
}
trap 'failed $LINENO' ERR
trap 'failed "$LINENO (signal)"' INT TERM

# ---------- ports: defaults, or free ones when busy ----------
PICKED=$(printf '%s\n' "$PORTS" | python3 -c '
import random, socket, sys
host, auto = sys.argv[1], sys.argv[2] == "1"
held, out = [], []
def grab(port, udp):
    """bind TCP (and UDP) on host:port; return the sockets or None if busy."""
    socks = []
    try:
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        socks.append(t)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # ignore TIME_WAIT, not listeners
        t.bind((host, port))
        t.listen(1)
        if udp:
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)   # no SO_REUSEADDR: that would share
            socks.append(u)
            u.bind((host, t.getsockname()[1]))
        return socks
    except OSError:
        for s in socks: s.close()
        return None
for line in sys.stdin:
    f = line.split()
    if not f: continue
    name, port, udp = f[0], int(f[1]), len(f) > 2
    s = grab(port, udp)
    if s is None:
        if not auto:
            sys.exit("up.sh: %s:%d (%s) is busy and AUTO_PORTS=0" % (host, port, name))
        # a random port below the ephemeral range (no outgoing connection can hold it when a
        # service is restarted by ctl.sh later), else one the kernel picks
        try:
            lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
        except (OSError, ValueError, IndexError):
            lo = 32768
        cands = [random.randrange(20000, lo) for _ in range(200)] if lo > 21000 else []
        for c in cands + [0] * 20:
            s = grab(c, udp)
            if s: break
        else:
            sys.exit("up.sh: no free port for " + name)
    held += s
    out.append("%s=%d" % (name, s[0].getsockname()[1]))
print("\n".join(out))
' "$ADDR" "$AUTO_PORTS")
eval "$PICKED"
PROMETHEUS=
[ "$WITH_PROM" = 1 ] && PROMETHEUS=$ADDR:$PROM_PORT

cat > "$D/env" <<EOF
STACK_DIR=$D
STACK_ADDR=$ADDR
DNS=$ADDR:$DNS_PORT
SMTP=$ADDR:$SMTP_PORT
RELAY_OK=$ADDR:$RELAY_OK_PORT
RELAY_BAD=$ADDR:$RELAY_BAD_PORT
DIRECT=$ADDR:$DIRECT_PORT
SUBMISSION=$ADDR:$SUBMISSION_PORT
SUBMISSIONS=$ADDR:$SUBMISSIONS_PORT
RELAY_USER=$RELAY_USER
RELAY_PASS=$RELAY_PASS
IMAP=$ADDR:$IMAP_PORT
IMAPS=$ADDR:$IMAPS_PORT
LMTP=$ADDR:$LMTP_PORT
RSPAMD_MILTER=$ADDR:$RSPAMD_MILTER_PORT
RSPAMD_NORMAL=$ADDR:$RSPAMD_NORMAL_PORT
RSPAMD_CONTROLLER=$ADDR:$RSPAMD_CONTROLLER_PORT
OAUTH_URL=http://$ADDR:$OAUTH_PORT
OAUTH_USERS=$OAUTH_USERS
DOVECOT_LOG=$D/log/dovecot.log
PROMETHEUS=$PROMETHEUS
PROM_TARGETS_DIR=$D/prom/targets
PROM_RULES_DIR=$D/prom/rules
PROM_TLS_TARGETS_DIR=$D/prom/targets-tls
PROM_SCRAPE_USER=prometheus
PROM_SCRAPE_PASSWORD_FILE=$D/prom/scrape-password
TLS_CERT=$D/tls/cert.pem
TLS_KEY=$D/tls/key.pem
SENDER_DOMAIN=sender.test
SENDER_IP=$SENDER_IP
BAD_SENDER_IP=$BAD_SENDER_IP
DKIM_KEY=$D/tls/dkim-sel.sender.test.key
DKIM_SELECTOR=sel
SEED_DOMAIN=seed.test
SEED_USERS=$SEED_USERS
SEED_PASS=$SEED_PASS
VOID_USER=$VOID_USER
TEMPFAIL_USER=$TEMPFAIL_USER
BOUNCE_USER=$BOUNCE_USER
APP_BOUNCE_USER=$APP_BOUNCE_USER
REPORTS_USER=$REPORTS_USER
SENDER_MAILDIR_PATTERN=$D/mail/sender.test/{user}/Maildir
POLICY_USER=$POLICY_USER
UNKNOWN_USER=$UNKNOWN_USER
FULL_USER=$FULL_USER
GREYLIST_USER=$GREYLIST_USER
RELAY_REFUSED_USER=$RELAY_REFUSED_USER
GREYLIST_MAP=$D/postfix/etc/greylist
AUTHSERV_ID=$AUTHSERV_ID
SPAM_PATTERN=YJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X
REJECT_PATTERN=XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X
TLS_SERVER_NAME=mx.seed.test
CA_CERT=$D/tls/ca.pem
MAILDIR_ROOT=$D/mail/seed.test
MAILDIR_PATTERN=$D/mail/seed.test/{user}/Maildir
JUNK_FOLDER=Junk
JUNK_MAILDIR=.Junk
KNOT_SOCKET=$D/knot/knot.sock
ZONE_DIR=$D/zones
POSTFIX_CONFIG=$D/postfix/etc
DOVECOT_CONFIG=$D/dovecot/dovecot.conf
LOG_DIR=$D/log
SEED_COUNT=$SEEDS
SCALE=$SCALE
EOF

# ---------- keys: a CA + server cert (mx.seed.test, localhost, the listen IP) and the DKIM key ----------
T=$D/tls
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
  -subj "/CN=mailcanary test CA $(basename "$D")" -keyout "$T/ca.key" -out "$T/ca.pem" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=mx.seed.test \
  -keyout "$T/key.pem" -out "$T/server.csr" 2>/dev/null
printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
  "extendedKeyUsage=serverAuth" "subjectAltName=DNS:mx.seed.test,DNS:localhost,IP:$ADDR" > "$T/server.ext"
openssl x509 -req -in "$T/server.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial -days 3650 \
  -extfile "$T/server.ext" -out "$T/cert.pem" 2>/dev/null
cat "$T/cert.pem" "$T/ca.pem" > "$T/chain.pem"
chmod 644 "$T"/*.pem
openssl genrsa -out "$T/dkim-sel.sender.test.key" 2048 2>/dev/null
chmod 644 "$T/dkim-sel.sender.test.key"       # tests (any user) sign with it
DKIM_P=$(openssl rsa -in "$T/dkim-sel.sender.test.key" -pubout -outform DER 2>/dev/null | base64 -w0)
DKIM_TXT=$(printf 'v=DKIM1; k=rsa; p=%s' "$DKIM_P" | fold -w 250 | sed 's/.*/"&"/' | tr '\n' ' ')

# ---------- service start scripts (ctl.sh reuses them; fd 9 = lock must not leak into daemons) ----------
svc() {  # svc NAME PIDFILE "HOST:PORT ..." <<< start-script body
  printf '%s\n' "$2" > "$D/svc/$1.pidfile"
  printf '%s\n' "$3" > "$D/svc/$1.addr"
  { echo '#!/usr/bin/env bash'; echo 'exec 9>&- </dev/null'; cat; } > "$D/svc/$1.start"
  chmod +x "$D/svc/$1.start"
}
wait_up() {  # wait_up NAME SECONDS: until every address of NAME accepts TCP; fail fast if it died
  local a pf pid n=$(( $2 * 10 ))
  pf=$(cat "$D/svc/$1.pidfile")
  for a in $(cat "$D/svc/$1.addr"); do
    while ! (exec 3<>"/dev/tcp/${a%:*}/${a##*:}") 2>/dev/null; do
      n=$((n-1)); [ $n -gt 0 ] || { echo "up.sh: $1 not listening on $a after $2 s" >&2; return 1; }
      if [ -s "$pf" ]; then
        pid=$(tr -dc 0-9 < "$pf"); [ -z "$pid" ] || kill -0 "$pid" 2>/dev/null ||
          { echo "up.sh: $1 died (see $D/log)" >&2; return 1; }
      fi
      sleep 0.1
    done
  done
}

# ---------- knot ----------
cat > "$D/zones/sender.test.zone" <<EOF
\$ORIGIN sender.test.
\$TTL 5
@      SOA ns.sender.test. hostmaster.sender.test. 1 3600 600 86400 5
@      NS  ns
ns     A   $ADDR
@      MX  10 mx
mx     A   $SENDER_IP
relay  A   $SENDER_IP
@      A   $SENDER_IP
@      TXT "v=spf1 ip4:$SENDER_IP -all"
sel._domainkey TXT $DKIM_TXT
_dmarc TXT "v=DMARC1; p=reject; rua=mailto:dmarc@seed.test"
EOF
cat > "$D/zones/seed.test.zone" <<EOF
\$ORIGIN seed.test.
\$TTL 5
@      SOA ns.seed.test. hostmaster.seed.test. 1 3600 600 86400 5
@      NS  ns
ns     A   $ADDR
@      MX  10 mx
mx     A   $ADDR
@      TXT "v=spf1 -all"
sender.test._report._dmarc TXT "v=DMARC1"
EOF
# a company whose mail Google Workspace hosts (the support view's MX lookup,
# tests/status_page.rs); the MX targets are outside the stack and never asked
cat > "$D/zones/corp.test.zone" <<EOF
\$ORIGIN corp.test.
\$TTL 5
@      SOA ns.seed.test. hostmaster.seed.test. 1 3600 600 86400 5
@      NS  ns.seed.test.
@      MX  1 aspmx.l.google.com.
@      MX  5 alt1.aspmx.l.google.com.
EOF
# reverse zone for the relay's source IPs: SENDER_IP has a PTR (forward-confirmed relay.sender.test),
# BAD_SENDER_IP has none (rspamd: RDNS_NONE), the listen address is mx.seed.test
REV=$(echo "$SENDER_IP" | awk -F. '{print $3"."$2"."$1".in-addr.arpa"}')
{ printf '$ORIGIN %s.\n$TTL 5\n@ SOA ns.seed.test. hostmaster.seed.test. 1 3600 600 86400 5\n@ NS ns.seed.test.\n' "$REV"
  printf '%s PTR relay.sender.test.\n' "${SENDER_IP##*.}"
  [ "${ADDR%.*}" != "${SENDER_IP%.*}" ] || [ "$ADDR" = "$SENDER_IP" ] || printf '%s PTR mx.seed.test.\n' "${ADDR##*.}"
} > "$D/zones/$REV.zone"
cat > "$D/knot/knot.conf" <<EOF
server:
    rundir: "$D/knot"
    pidfile: "$D/knot/knot.pid"
    listen: $ADDR@$DNS_PORT
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: "$D/log/knot.log"
    any: info
database:
    storage: "$D/knot/db"
control:
    listen: "$D/knot/knot.sock"
template:
  - id: default
    storage: "$D/zones"
    file: "%s.zone"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    serial-policy: increment
zone:
  - domain: sender.test
  - domain: seed.test
  - domain: corp.test
  - domain: $REV
EOF
knotc -c "$D/knot/knot.conf" conf-check >/dev/null
svc knot "$D/knot/knot.pid" "$ADDR:$DNS_PORT" <<EOF
exec knotd -c "$D/knot/knot.conf" -d >>"$D/log/knot.out" 2>&1
EOF

# ---------- dovecot ----------
{ for u in ${SEED_USERS//,/ }; do echo "$u:{PLAIN}$SEED_PASS::::::"; done
  # OAuth users log in with tokens only (the oauth2 passdb); their password is unusable.
  for u in ${OAUTH_USERS//,/ }; do echo "$u:{PLAIN}$(head -c 24 /dev/urandom | base64 | tr -d '/+=')::::::"; done
  echo "$VOID_USER:{PLAIN}$SEED_PASS::::::userdb_sieve=$D/dovecot/sieve/void.sieve userdb_sieve_before=$D/dovecot/sieve/empty.sieve"
  echo "$RELAY_USER:{PLAIN}$RELAY_PASS::::::"
  for u in "$BOUNCE_USER" "$APP_BOUNCE_USER" "$REPORTS_USER" "$POLICY_USER" "$GREYLIST_USER"; do
    echo "$u:{PLAIN}$SEED_PASS::::::"
  done
  echo "$FULL_USER:{PLAIN}$SEED_PASS::::::userdb_quota_rule=*:storage=1K"
} > "$D/dovecot/users"
chmod 644 "$D/dovecot/users"               # the auth process runs as user dovecot
cat > "$D/dovecot/sieve/before.sieve" <<'EOF'
require ["fileinto", "mailbox"];
if anyof (header :is "X-Spam" "Yes", header :matches "X-Spam-Status" "Yes*") {
  fileinto :create "Junk";
  stop;
}
EOF
printf 'discard;\nstop;\n' > "$D/dovecot/sieve/void.sieve"   # void@ loses everything, spam included
printf '# void@seed.test: no global spam filing, its own script discards\n' > "$D/dovecot/sieve/empty.sieve"
cat > "$D/dovecot/dovecot.conf" <<EOF
base_dir = $D/dovecot/run
state_dir = $D/dovecot/run/state
instance_name = mcs-$(basename "$D")-$(printf %s "$D" | md5sum | cut -c1-6)
hostname = mx.seed.test
log_path = $D/log/dovecot.log
protocols = imap lmtp
listen = $ADDR
ssl = yes
ssl_cert = <$D/tls/chain.pem
ssl_key = <$D/tls/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2 oauthbearer
first_valid_uid = 8
mail_uid = mail
mail_gid = mail
mail_location = maildir:~/Maildir
# Quota only where a user sets a rule (FULL_USER); checked at RCPT, so LMTP answers 552 5.2.2.
mail_plugins = quota
lmtp_rcpt_check_quota = yes
passdb {
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%u $D/dovecot/users
}
# Tokens are checked against tests/oauth/provider.py (RFC 7662 introspection).
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = $D/dovecot/oauth2.conf.ext
}
userdb {
  driver = passwd-file
  args = username_format=%u $D/dovecot/users
  default_fields = uid=mail gid=mail home=$D/mail/%d/%n
}
namespace inbox {
  inbox = yes
  separator = /
  mailbox Junk {
    special_use = \\Junk
    auto = subscribe
  }
  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }
  mailbox Trash {
    special_use = \\Trash
    auto = subscribe
  }
}
service imap-login {
  inet_listener imap {
    port = $IMAP_PORT
  }
  inet_listener imaps {
    port = $IMAPS_PORT
    ssl = yes
  }
}
service lmtp {
  unix_listener lmtp {
    mode = 0666
  }
  inet_listener lmtp {
    port = $LMTP_PORT
  }
}
service auth {
  unix_listener auth-postfix {
    mode = 0666
  }
}
protocol imap {
  mail_max_userip_connections = $([ "$SCALE" = 1 ] && echo 10 || echo 100)
  # Logs the ID fields clients send (tests read what mailcanary sends).
  imap_id_log = *
}
protocol lmtp {
  mail_plugins = \$mail_plugins sieve
  postmaster_address = postmaster@seed.test
}
lmtp_save_to_detail_mailbox = no
recipient_delimiter = +
plugin {
  sieve_before = $D/dovecot/sieve/before.sieve
  quota = maildir:User quota
}
EOF
if [ "$SCALE" = 1 ]; then
  # Tuned as a provider would for thousands of IDLE clients; the reasons are in docs/scale.md.
  cat >> "$D/dovecot/dovecot.conf" <<EOF
# ---- scale (SCALE=1): $SEEDS seeds x INBOX+Junk = $((SEEDS * 2)) IDLE connections ----
default_client_limit = $((SEEDS * 5 + 1000))
service imap-login {
  service_count = 0
  process_min_avail = 2
  process_limit = 8
  client_limit = $((SEEDS + 500))
  vsz_limit = 1G
}
service imap {
  client_limit = 1
  service_count = 100
  process_min_avail = 16
  process_limit = $((SEEDS * 2 + 1000))
  unix_listener imap-master {
    user = \$default_internal_user
  }
}
imap_hibernate_timeout = 5s
service imap-hibernate {
  process_limit = 4
  client_limit = $((SEEDS * 2 + 1000))
}
EOF
  # Dovecot's IDLE watches each mailbox with inotify, one instance per imap process or
  # hibernated client, all counted against the mail UID; past the kernel's default of 128 it
  # falls back to polling every 30 s. A host-wide setting: only ever raised here.
  want=$((SEEDS * 4 + 1024))
  have=$(cat /proc/sys/fs/inotify/max_user_instances)
  if [ "$have" -lt "$want" ]; then
    echo "$want" > /proc/sys/fs/inotify/max_user_instances
    say "sysctl      fs.inotify.max_user_instances raised from $have to $want (Dovecot IDLE)"
  fi
fi
cat > "$D/dovecot/oauth2.conf.ext" <<EOF
introspection_mode = post
introspection_url = http://$ADDR:$OAUTH_PORT/introspect
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
EOF
chmod 644 "$D/dovecot/oauth2.conf.ext"
for s in before void empty; do sievec -c "$D/dovecot/dovecot.conf" "$D/dovecot/sieve/$s.sieve"; done
chmod 644 "$D/dovecot/sieve"/*
svc dovecot "$D/dovecot/run/master.pid" "$ADDR:$IMAP_PORT $ADDR:$IMAPS_PORT $ADDR:$LMTP_PORT" <<EOF
$([ "$SCALE" = 1 ] && echo "ulimit -n $((SEEDS * 8 + 4096))  # the master and its clients; docs/scale.md")
exec dovecot -c "$D/dovecot/dovecot.conf" >>"$D/log/dovecot.out" 2>&1
EOF

# ---------- rspamd ----------
R=$D/rspamd/conf/local.d O=$D/rspamd/conf/override.d
cat > "$R/options.inc" <<EOF
dns {
  nameserver = ["$ADDR:$DNS_PORT"];
  timeout = 1s;
  retransmits = 2;
}
upstream {
  error_time = 1;
  max_errors = 100;
  revive_time = 1;
}
check_local = true;
check_authed = true;
local_addrs = [];
hs_cache_dir = "$HS_CACHE";
enable_test_patterns = true;
EOF
cat > "$R/milter_headers.conf" <<'EOF'
use = ["authentication-results", "x-spam-status", "x-spamd-result"];
skip_local = false;
skip_authenticated = false;
EOF
cat > "$R/actions.conf" <<'EOF'
greylist = null;   # a greylist action would make the milter answer 4xx
reject = null;     # spam is marked (X-Spam), never refused: it must reach Junk
EOF
cat > "$R/dmarc.conf" <<'EOF'
actions {
  quarantine = "add header";
  reject = "add header";
}
EOF
printf 'spf_cache_size = 0;\nmin_cache_ttl = 0;\n' > "$R/spf.conf"
printf 'dkim_cache_size = 0;\n' > "$R/dkim.conf"
for m in rbl fuzzy_check phishing rspamd_update asn dkim_signing arc multimap hfilter whitelist \
         neural ratelimit greylist reputation url_redirector replies; do
  echo 'enabled = false;' > "$R/$m.conf"         # internet lookups, outbound signing, redis-only
done
cat > "$O/worker-proxy.inc" <<EOF
bind_socket = "$ADDR:$RSPAMD_MILTER_PORT";
upstream "local" {
  default = yes;
  self_scan = yes;
}
EOF
printf 'bind_socket = "%s";\ncount = 1;\n' "$ADDR:$RSPAMD_NORMAL_PORT" > "$O/worker-normal.inc"
printf 'bind_socket = "%s";\ncount = 1;\nsecure_ip = "127.0.0.0/8";\n' "$ADDR:$RSPAMD_CONTROLLER_PORT" > "$O/worker-controller.inc"
svc rspamd "$D/rspamd/run/rspamd.pid" "$ADDR:$RSPAMD_MILTER_PORT $ADDR:$RSPAMD_NORMAL_PORT $ADDR:$RSPAMD_CONTROLLER_PORT" <<EOF
exec rspamd -c /etc/rspamd/rspamd.conf -i --var="LOCAL_CONFDIR=$D/rspamd/conf" --var="DBDIR=$D/rspamd/db" \\
  --var="RUNDIR=$D/rspamd/run" --var="LOGDIR=$D/log" >>"$D/log/rspamd.out" 2>&1
EOF

# ---------- postfix ----------
P=$D/postfix/etc                           # must not contain the queue dir (postfix-script ownership checks)
printf '%s OK\n' ${SEED_USERS//,/ } ${OAUTH_USERS//,/ } "$VOID_USER" "$BOUNCE_USER" "$APP_BOUNCE_USER" \
  "$REPORTS_USER" "$POLICY_USER" "$FULL_USER" "$GREYLIST_USER" > "$P/vmailbox"
# POLICY_USER's mail is refused at the end of DATA by the MX's own cleanup (header_checks), as a
# content or policy filter would.
printf '/^To:.*%s/ REJECT 5.7.1 Message refused by local policy (mailcanary stack test)\n' "${POLICY_USER//./\\.}" > "$P/header-checks"
# GREYLIST_MAP: the test empties it and runs 'postfix -c POSTFIX_CONFIG reload' to end the greylisting.
printf '%s 450 4.7.1 Greylisted, try again later (mailcanary stack test)\n' "$GREYLIST_USER" > "$P/greylist"
# TEMPFAIL_USER is answered 450 at RCPT on every listener: a temporary refusal for retry tests.
printf '%s 450 4.2.1 Mailbox temporarily unavailable (mailcanary stack test)\n' "$TEMPFAIL_USER" > "$P/tempfail"
printf '%s 550 5.1.1 Recipient address rejected: User unknown (mailcanary stack test relay)\n' "$RELAY_REFUSED_USER" > "$P/relay-refused"
# DIRECT's virtual(8) writes seedN's mail where Dovecot keeps seedN's INBOX.
for u in ${SEED_USERS//,/ }; do printf '%s seed.test/%s/Maildir/\n' "$u" "${u%@*}"; done > "$P/vmailbox-direct"
cat > "$P/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $D/postfix/spool
data_directory = $D/postfix/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = $D/log/postfix.log
maillog_file_prefixes = $D/log
myhostname = mx.seed.test
mydomain = seed.test
myorigin = seed.test
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
alias_maps =
alias_database =
biff = no
smtpd_banner = \$myhostname ESMTP mailcanary-stack
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
lmtp_host_lookup = native
smtputf8_enable = no
recipient_delimiter = +
virtual_mailbox_domains = seed.test sender.test
virtual_mailbox_maps = texthash:$P/vmailbox
virtual_transport = lmtp:unix:$D/dovecot/run/lmtp
default_transport = error:outbound mail disabled in test stack
relay_transport = error:outbound mail disabled in test stack
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions = check_recipient_access texthash:$P/tempfail check_recipient_access texthash:$P/relay-refused
smtpd_milters =
non_smtpd_milters =
milter_default_action = tempfail
smtpd_tls_cert_file = $D/tls/chain.pem
smtpd_tls_key_file = $D/tls/key.pem
smtpd_tls_security_level = may
smtp_tls_security_level = may
smtpd_error_sleep_time = 0
queue_run_delay = 2s
minimal_backoff_time = 2s
maximal_backoff_time = 10s
# Delay notices (RFC 3464 action: delayed) after a few seconds, so tests see one quickly.
delay_warning_time = 4s
EOF
# The relay does not know the seed MX's users (as an ESP would not): it accepts every recipient
# and bounces what the MX refuses to the envelope sender.
RELAY_COMMON="-o myhostname=relay.sender.test -o smtpd_milters= -o mynetworks=127.0.0.0/8
  -o smtpd_reject_unlisted_recipient=no"
SUBM_COMMON="$RELAY_COMMON -o smtpd_sasl_auth_enable=yes -o smtpd_sasl_type=dovecot
  -o smtpd_sasl_path=$D/dovecot/run/auth-postfix -o smtpd_tls_auth_only=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
  -o content_filter=relayok:[$ADDR]:$SMTP_PORT"
cat > "$P/master.cf" <<EOF
# seed MX: the only listener with the rspamd milter
$ADDR:$SMTP_PORT inet n - n - - smtpd
  -o syslog_name=postfix/mx
  -o smtpd_milters=inet:$ADDR:$RSPAMD_MILTER_PORT
  -o milter_macro_daemon_name=$AUTHSERV_ID
  -o smtpd_recipient_restrictions=check_recipient_access,texthash:$P/tempfail,check_recipient_access,texthash:$P/greylist
  -o cleanup_service_name=cleanup-mx
# operator's outbound relay: no AUTH from 127/8, everything goes to the MX from SENDER_IP
$ADDR:$RELAY_OK_PORT inet n - n - - smtpd
  -o syslog_name=postfix/relay-ok $RELAY_COMMON
  -o smtpd_client_restrictions=permit_mynetworks,reject
  -o smtpd_relay_restrictions=permit_mynetworks,reject
  -o content_filter=relayok:[$ADDR]:$SMTP_PORT
# same, but the MX sees BAD_SENDER_IP (not in sender.test's SPF)
$ADDR:$RELAY_BAD_PORT inet n - n - - smtpd
  -o syslog_name=postfix/relay-bad $RELAY_COMMON
  -o smtpd_client_restrictions=permit_mynetworks,reject
  -o smtpd_relay_restrictions=permit_mynetworks,reject
  -o content_filter=relaybad:[$ADDR]:$SMTP_PORT
# straight into the seed's Maildir by virtual(8): no relay hop, no milter, no Dovecot
$ADDR:$DIRECT_PORT inet n - n - - smtpd
  -o syslog_name=postfix/direct
  -o smtpd_client_restrictions=permit_mynetworks,reject
  -o content_filter=direct-maildir:
# submission: STARTTLS + AUTH (dovecot) required, relays like RELAY_OK
$ADDR:$SUBMISSION_PORT inet n - n - - smtpd
  -o syslog_name=postfix/submission $SUBM_COMMON
  -o smtpd_tls_security_level=encrypt
# submissions: implicit TLS + AUTH required
$ADDR:$SUBMISSIONS_PORT inet n - n - - smtpd
  -o syslog_name=postfix/submissions $SUBM_COMMON
  -o smtpd_tls_wrappermode=yes
relayok   unix - - n - - smtp
  -o syslog_name=postfix/relayok-out -o smtp_bind_address=$SENDER_IP
  -o myhostname=relay.sender.test -o smtp_helo_name=relay.sender.test
relaybad  unix - - n - - smtp
  -o syslog_name=postfix/relaybad-out -o smtp_bind_address=$BAD_SENDER_IP
  -o myhostname=rogue.sender.test -o smtp_helo_name=rogue.sender.test
direct-maildir unix - n n - - virtual
  -o virtual_mailbox_base=$D/mail -o virtual_mailbox_maps=texthash:$P/vmailbox-direct
  -o virtual_uid_maps=static:$(id -u mail) -o virtual_gid_maps=static:$(id -g mail)
  -o virtual_minimum_uid=1
pickup    unix n - n 60 1 pickup
cleanup   unix n - n - 0 cleanup
cleanup-mx unix n - n - 0 cleanup
  -o header_checks=regexp:$P/header-checks
qmgr      unix n - n 300 1 qmgr
tlsmgr    unix - - n 1000? 1 tlsmgr
rewrite   unix - - n - - trivial-rewrite
bounce    unix - - n - 0 bounce
defer     unix - - n - 0 bounce
trace     unix - - n - 0 bounce
verify    unix - - n - 1 verify
flush     unix n - n 1000? 0 flush
proxymap  unix - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp      unix - - n - - smtp
relay     unix - - n - - smtp
showq     unix n - n - - showq
error     unix - - n - - error
retry     unix - - n - - error
discard   unix - - n - - discard
lmtp      unix - - n - - lmtp
anvil     unix - - n - 1 anvil
scache    unix - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
EOF
svc postfix "$D/postfix/spool/pid/master.pid" "$ADDR:$SMTP_PORT $ADDR:$RELAY_OK_PORT $ADDR:$RELAY_BAD_PORT $ADDR:$DIRECT_PORT $ADDR:$SUBMISSION_PORT $ADDR:$SUBMISSIONS_PORT" <<EOF
# postfix prints its errors only on a tty: script -qc 'postfix -c $P check' /dev/null
exec postfix -c "$P" start >>"$D/log/postfix.out" 2>&1
EOF

# ---------- prometheus ----------
if [ "$WITH_PROM" = 1 ]; then
  cat > "$D/prom/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: ["$D/prom/rules/*.yml"]
scrape_configs:
  - job_name: prometheus
    static_configs: [{targets: ["$ADDR:$PROM_PORT"]}]
  - job_name: mailcanary
    file_sd_configs: [{files: ["$D/prom/targets/*.json"], refresh_interval: 2s}]
  - job_name: mailcanary-tls
    scheme: https
    tls_config: {ca_file: "$D/tls/ca.pem"}
    basic_auth: {username: prometheus, password_file: "$D/prom/scrape-password"}
    file_sd_configs: [{files: ["$D/prom/targets-tls/*.json"], refresh_interval: 2s}]
EOF
  head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$D/prom/scrape-password"
  svc prometheus "$D/prom/prometheus.pid" "$ADDR:$PROM_PORT" <<EOF
setsid prometheus --config.file="$D/prom/prometheus.yml" --storage.tsdb.path="$D/prom/data" \\
  --web.listen-address="$ADDR:$PROM_PORT" --web.enable-lifecycle >>"$D/log/prometheus.log" 2>&1 &
echo \$! > "$D/prom/prometheus.pid"
EOF
fi

# ---------- OAuth provider stand-in (token endpoint + introspection) ----------
svc oauth "$D/oauth.pid" "$ADDR:$OAUTH_PORT" <<EOF
setsid python3 "$HERE/../oauth/provider.py" "$ADDR" "$OAUTH_PORT" "$D" >>"$D/log/oauth.log" 2>&1 &
echo \$! > "$D/oauth.pid"
EOF

# ---------- start everything at once, then wait ----------
# rspamd's start command returns once its config is loaded (~12 s cold: TLD suffix hyperscan), postfix's
# after its integrity checks (~2 s): all starters run in parallel.
SERVICES="rspamd postfix knot oauth dovecot"; [ "$WITH_PROM" = 1 ] && SERVICES="$SERVICES prometheus"
declare -A STARTER
for s in $SERVICES; do "$D/svc/$s.start" & STARTER[$s]=$!; done
up() {  # up NAME SECONDS LINE
  wait "${STARTER[$1]}" || { echo "up.sh: starting $1 failed; see $D/log" >&2; return 1; }
  wait_up "$1" "$2"
  local pf n; pf=$(cat "$D/svc/$1.pidfile")
  for n in $(seq 50); do [ -s "$pf" ] && break; sleep 0.1; done
  { tr -dc 0-9 < "$pf"; echo; } > "$D/svc/$1.pid"   # ctl.sh's fallback should the pidfile vanish
  say "$3"
}
up knot 30       "knot        dns         $ADDR:$DNS_PORT (udp+tcp)  control $D/knot/knot.sock"
up oauth 30      "oauth       http        $ADDR:$OAUTH_PORT  (token endpoint, introspection)"
up dovecot 30    "dovecot     imap        $ADDR:$IMAP_PORT  imaps $ADDR:$IMAPS_PORT  lmtp $ADDR:$LMTP_PORT"
[ "$WITH_PROM" != 1 ] || up prometheus 60 "prometheus  http        $ADDR:$PROM_PORT"
up postfix 30    "postfix     mx          $ADDR:$SMTP_PORT  relay-ok $ADDR:$RELAY_OK_PORT  relay-bad $ADDR:$RELAY_BAD_PORT  direct $ADDR:$DIRECT_PORT  submission $ADDR:$SUBMISSION_PORT  submissions $ADDR:$SUBMISSIONS_PORT"
up rspamd 120    "rspamd      milter      $ADDR:$RSPAMD_MILTER_PORT  normal $ADDR:$RSPAMD_NORMAL_PORT  controller $ADDR:$RSPAMD_CONTROLLER_PORT"
flock -u 9; exec 9>&-            # every port is bound: other up.sh runs may choose theirs now
# With a cold HS_CACHE, rspamd's hs_helper compiles the regexp databases (~6 s of CPU) after the
# workers started (they scan with PCRE meanwhile, same results): wait for it so the stack is quiet.
for _ in $(seq 600); do
  grep -qE '\((main|rspamd_proxy)\).*full hyperscan database of [0-9]+ regexps has been loaded' "$D/log/rspamd.log" && break
  sleep 0.1
done || true
grep -qE '\((main|rspamd_proxy)\).*full hyperscan database' "$D/log/rspamd.log" &&
  say "rspamd      hyperscan databases loaded (cache $HS_CACHE)" ||
  say "rspamd      warning: hyperscan databases not loaded yet (scans use PCRE meanwhile)"
trap - ERR INT TERM                  # from here on a failure (e.g. SIGPIPE) must not stop the stack
say "stack ready in $D; stop with $HERE/down.sh $D"
cat "$D/env" 2>/dev/null || true
