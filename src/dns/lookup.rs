//! The resolver: the "look up" step between pure code that names the
//! answers it needs and pure code that judges them.
//!
//! [`DnsLookup`] asks any `HOST:PORT` (UDP, TCP when an answer is
//! truncated) or the servers of the system configuration, with no cache
//! (every run sees the DNS as it is now), a per-query timeout and a bound
//! on queries in flight, so many domains can be audited at once without
//! flooding the resolver. The queries go through [`super::wire`], hickory's
//! multiplexed client on one socket per run; a hickory-resolver on the same
//! servers serves mail-auth ([`DnsLookup::authenticator`]).
//!
//! One run (one audit of many domains) asks through [`DnsLookup::for_run`],
//! which answers a query asked again in the same run (an SPF include shared
//! by many domains, the MX that both SPF and the MX check ask for) from the
//! first answer instead of the network. The memo and the socket live as long
//! as the run: the next run asks the DNS again, from another source port.
//!
//! Every outcome is one of [`DnsAnswer::Found`], [`DnsAnswer::NotFound`]
//! (NXDOMAIN, or NOERROR without records of the type: NODATA) or
//! [`DnsAnswer::Unknown`] (timeout, SERVFAIL, REFUSED, network error). Only
//! NXDOMAIN and NODATA are ever "not found" ([`super::wire::Resolved`]).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ProtocolConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use hickory_resolver::TokioResolver;
use tokio::sync::{OnceCell, Semaphore};

use super::facts::{Answer, Query, QueryKind};
use super::name::{is_valid_name, normalize, reverse_name};
use super::wire::{Resolved, Wire};
use super::{join_character_strings, DnsAnswer, TxtRecords};

/// Default bound on DNS queries in flight across everything sharing a resolver.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;

/// Where and how to ask.
#[derive(Debug, Clone)]
pub struct ResolverSettings {
    /// The server to ask; `None` reads the system configuration
    /// (`/etc/resolv.conf`).
    pub server: Option<SocketAddr>,
    /// Time allowed for one attempt of one query.
    pub timeout: Duration,
    /// Attempts per query before the answer is unknown.
    pub attempts: usize,
    /// Queries in flight at most, across everything sharing this resolver.
    pub max_in_flight: usize,
}

impl Default for ResolverSettings {
    fn default() -> Self {
        ResolverSettings {
            server: None,
            timeout: Duration::from_secs(5),
            attempts: 2,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        }
    }
}

/// Why the resolver could not be built.
#[derive(Debug, thiserror::Error)]
pub enum LookupSetupError {
    /// `/etc/resolv.conf` is missing or unreadable; pass a resolver explicitly.
    #[error("cannot read the system resolver configuration: {0}; pass --resolver HOST:PORT")]
    SystemConfig(String),
    /// hickory refused the configuration.
    #[error("cannot build the DNS resolver: {0}")]
    Build(String),
}

/// One MX record (RFC 1035 §3.3.9). `exchange` is normalised (lower case, no
/// trailing dot); the null MX of RFC 7505 (`0 .`) has an empty exchange.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MxHost {
    pub preference: u16,
    pub exchange: String,
}

/// The addresses of a host, and the name its first record was an alias of.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostAddrs {
    pub addrs: Vec<IpAddr>,
    /// `Some(target)` when the queried name is a CNAME (RFC 2181 §10.3: an MX
    /// target must not be one).
    pub cname: Option<String>,
}

/// The outcome of one query (the answer's records, CNAMEs first), shared by
/// everyone in the run who asks it.
type Outcome = Arc<Result<Vec<Record>, Negative>>;

/// Answers obtained so far in one run, by name and type. A query in
/// flight is shared too: the second asker waits for the first's answer.
type Memo = Mutex<HashMap<(Name, RecordType), Arc<OnceCell<Outcome>>>>;

/// The resolver. Cheap to clone; clones share the bound on
/// queries in flight (and the memo, for a [`DnsLookup::for_run`] handle).
#[derive(Clone)]
pub struct DnsLookup {
    /// For mail-auth only; every other query goes through `wire`.
    inner: TokioResolver,
    wire: Arc<Wire>,
    permits: Arc<Semaphore>,
    deadline: Duration,
    /// `Some` only on a [`DnsLookup::for_run`] handle.
    memo: Option<Arc<Memo>>,
}

impl DnsLookup {
    /// Builds the resolver. Must be called inside a tokio runtime.
    pub fn new(settings: &ResolverSettings) -> Result<Self, LookupSetupError> {
        let provider = TokioRuntimeProvider::default();
        let (mut builder, servers) = match settings.server {
            Some(addr) => {
                let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                for conn in &mut ns.connections {
                    conn.port = addr.port();
                }
                let config = ResolverConfig::from_parts(None, vec![], vec![ns]);
                let builder = TokioResolver::builder_with_config(config, provider)
                    .with_options(ResolverOpts::default());
                (builder, vec![addr])
            }
            None => {
                let (config, opts) = hickory_resolver::system_conf::read_system_conf()
                    .map_err(|e| LookupSetupError::SystemConfig(e.to_string()))?;
                let servers = udp_servers(&config);
                if servers.is_empty() {
                    return Err(LookupSetupError::SystemConfig(
                        "no name server in it".into(),
                    ));
                }
                let builder =
                    TokioResolver::builder_with_config(config, provider).with_options(opts);
                (builder, servers)
            }
        };
        // hickory builds a DNS-over-TLS client configuration when the
        // resolver is built, reading the system's CA certificates (~5 ms,
        // most of a one-domain `check`'s start), although the audit asks only
        // over UDP and TCP and opportunistic encryption is off. One without
        // roots skips that; `TlsClient` reads the store for STARTTLS and
        // MTA-STS.
        let tls = unused_tls_config().map_err(|e| LookupSetupError::Build(e.to_string()))?;
        builder = builder.with_tls_config(tls);
        let opts = builder.options_mut();
        opts.cache_size = 0;
        opts.timeout = settings.timeout;
        opts.attempts = settings.attempts.max(1);
        opts.ndots = 0;
        // A CNAME in an answer is kept, so MX targets that are aliases show.
        opts.preserve_intermediates = true;
        let inner = builder
            .build()
            .map_err(|e| LookupSetupError::Build(e.to_string()))?;
        // Each attempt asks each server, over UDP and (truncated) TCP.
        let tries = settings
            .attempts
            .max(1)
            .saturating_mul(servers.len().max(1));
        let tries = u32::try_from(tries).unwrap_or(u32::MAX);
        Ok(DnsLookup {
            inner,
            wire: Arc::new(Wire::new(servers, settings.timeout, settings.attempts)),
            permits: Arc::new(Semaphore::new(settings.max_in_flight.max(1))),
            // A safety net above the client's own timeouts (one per attempt,
            // server and transport, plus CNAME chasing).
            deadline: settings
                .timeout
                .saturating_mul(tries.saturating_mul(2).saturating_add(2)),
            memo: None,
        })
    }

    /// A handle for one run: a query asked again through it (or its
    /// clones) is answered from the first answer, found, not found or
    /// unknown alike. Dropping the handle forgets every answer, so each run
    /// sees the DNS as it is then.
    pub fn for_run(&self) -> DnsLookup {
        DnsLookup {
            memo: Some(Arc::default()),
            wire: Arc::new(self.wire.renewed()),
            ..self.clone()
        }
    }

    /// A mail-auth authenticator that asks the same server (for SPF
    /// evaluation of sending IPs).
    pub fn authenticator(&self) -> mail_auth::MessageAuthenticator {
        mail_auth::MessageAuthenticator(self.inner.clone())
    }

    /// Runs one query of `rtype` at `name`, or, on a run handle, takes the
    /// answer the run already has.
    async fn raw(&self, name: &str, rtype: RecordType) -> Outcome {
        let fqdn = match to_fqdn(name) {
            Some(n) => n,
            None => return Arc::new(Err(Negative::Unknown("not a valid DNS name".into()))),
        };
        let Some(memo) = &self.memo else {
            return Arc::new(self.query(fqdn, rtype).await);
        };
        let cell = {
            let mut seen = memo.lock().unwrap_or_else(|e| e.into_inner());
            seen.entry((fqdn.clone(), rtype)).or_default().clone()
        };
        cell.get_or_init(|| async { Arc::new(self.query(fqdn, rtype).await) })
            .await
            .clone()
    }

    /// Asks the server, within the bound on queries in flight.
    async fn query(&self, fqdn: Name, rtype: RecordType) -> Result<Vec<Record>, Negative> {
        match self.resolve(&fqdn, rtype).await? {
            Resolved::Records(records) => Ok(records),
            Resolved::Empty { .. } => Err(Negative::NotFound),
        }
    }

    /// One resolution through the wire client, within the bound on queries
    /// in flight and the overall deadline.
    async fn resolve(&self, fqdn: &Name, rtype: RecordType) -> Result<Resolved, Negative> {
        let Ok(_permit) = self.permits.acquire().await else {
            return Err(Negative::Unknown("resolver shut down".into()));
        };
        match tokio::time::timeout(self.deadline, self.wire.resolve(fqdn, rtype)).await {
            Ok(Ok(resolved)) => Ok(resolved),
            Ok(Err(unknown)) => Err(Negative::Unknown(unknown.0)),
            Err(_) => Err(Negative::Unknown("timed out".into())),
        }
    }

    /// Runs a query and collects what `pick` extracts from each answer record.
    async fn collect<T>(
        &self,
        name: &str,
        rtype: RecordType,
        pick: impl Fn(&RData) -> Option<T>,
    ) -> DnsAnswer<Vec<T>> {
        match &*self.raw(name, rtype).await {
            Ok(records) => {
                let items: Vec<T> = records.iter().filter_map(|r| pick(&r.data)).collect();
                if items.is_empty() {
                    DnsAnswer::NotFound
                } else {
                    DnsAnswer::Found(items)
                }
            }
            Err(n) => n.clone().into_answer(),
        }
    }

    /// TXT records at `name`, each joined from its character-strings.
    pub async fn txt(&self, name: &str) -> DnsAnswer<TxtRecords> {
        self.collect(name, RecordType::TXT, |d| match d {
            RData::TXT(t) => Some(join_character_strings(&t.txt_data)),
            _ => None,
        })
        .await
    }

    /// MX records at `name`, sorted by preference.
    pub async fn mx(&self, name: &str) -> DnsAnswer<Vec<MxHost>> {
        self.collect(name, RecordType::MX, |d| match d {
            RData::MX(mx) => Some(MxHost {
                preference: mx.preference,
                exchange: normalize(&mx.exchange.to_ascii()),
            }),
            _ => None,
        })
        .await
        .map(|mut v| {
            v.sort();
            v
        })
    }

    /// IPv4 addresses at `name` (A only; DNSBL answers).
    pub async fn a(&self, name: &str) -> DnsAnswer<Vec<Ipv4Addr>> {
        self.collect(name, RecordType::A, |d| match d {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .await
    }

    /// A and AAAA together: found when either has records, not found when
    /// both are NXDOMAIN/NODATA, unknown when neither has records and either
    /// failed. Also reports whether `name` is a CNAME.
    pub async fn host(&self, name: &str) -> DnsAnswer<HostAddrs> {
        let (v4, v6) = tokio::join!(
            self.raw(name, RecordType::A),
            self.raw(name, RecordType::AAAA)
        );
        let mut out = HostAddrs::default();
        let mut unknown = None;
        let want = normalize(name);
        for result in [v4, v6] {
            match &*result {
                Ok(records) => {
                    for r in records {
                        match &r.data {
                            RData::A(a) => out.addrs.push(IpAddr::V4(a.0)),
                            RData::AAAA(a) => out.addrs.push(IpAddr::V6(a.0)),
                            RData::CNAME(c) if normalize(&r.name.to_ascii()) == want => {
                                out.cname.get_or_insert_with(|| normalize(&c.0.to_ascii()));
                            }
                            _ => {}
                        }
                    }
                }
                Err(Negative::NotFound) => {}
                Err(Negative::Unknown(why)) => {
                    unknown.get_or_insert_with(|| why.clone());
                }
            }
        }
        out.addrs.sort();
        out.addrs.dedup();
        match (out.addrs.is_empty(), unknown) {
            (false, _) => DnsAnswer::Found(out),
            (true, Some(why)) => DnsAnswer::Unknown(why),
            (true, None) => DnsAnswer::NotFound,
        }
    }

    /// A and AAAA addresses of `name` (the [`QueryKind::Addr`] answer).
    pub async fn addrs(&self, name: &str) -> DnsAnswer<Vec<IpAddr>> {
        self.host(name).await.map(|h| h.addrs)
    }

    /// PTR names of `ip` (RFC 1035 §3.5, RFC 3596 §2.5), normalised.
    pub async fn ptr(&self, ip: IpAddr) -> DnsAnswer<Vec<String>> {
        self.ptr_at(&reverse_name(ip)).await
    }

    /// PTR names at a reverse-lookup name.
    async fn ptr_at(&self, name: &str) -> DnsAnswer<Vec<String>> {
        self.collect(name, RecordType::PTR, |d| match d {
            RData::PTR(p) => Some(normalize(&p.0.to_ascii())),
            _ => None,
        })
        .await
    }

    /// How many DNSKEY records are at `name`, and the apex of the zone the
    /// answer came from: `name` itself when it has keys, else the owner of
    /// the SOA in the negative answer's authority section (not found when
    /// the server sent none). One query where a separate SOA lookup would
    /// take two.
    pub async fn dnskeys_and_apex(&self, name: &str) -> (DnsAnswer<usize>, DnsAnswer<String>) {
        let fqdn = match to_fqdn(name) {
            Some(n) => n,
            None => {
                let why = "not a valid DNS name";
                return (
                    DnsAnswer::Unknown(why.into()),
                    DnsAnswer::Unknown(why.into()),
                );
            }
        };
        match self.resolve(&fqdn, RecordType::DNSKEY).await {
            Ok(Resolved::Records(records)) => {
                let keys: Vec<&Record> = records
                    .iter()
                    .filter(|r| r.record_type() == RecordType::DNSKEY)
                    .collect();
                match keys.first() {
                    Some(k) => (
                        DnsAnswer::Found(keys.len()),
                        DnsAnswer::Found(normalize(&k.name.to_ascii())),
                    ),
                    None => (DnsAnswer::NotFound, DnsAnswer::NotFound),
                }
            }
            Ok(Resolved::Empty { soa }) => (
                DnsAnswer::NotFound,
                soa.map(|apex| DnsAnswer::Found(normalize(&apex.to_ascii())))
                    .unwrap_or(DnsAnswer::NotFound),
            ),
            Err(n) => (n.clone().into_answer(), n.into_answer()),
        }
    }

    /// How many records of `rtype` are at `name` (DNSKEY, DS).
    pub async fn count(&self, name: &str, rtype: RecordType) -> DnsAnswer<usize> {
        match &*self.raw(name, rtype).await {
            Ok(records) => {
                let n = records.iter().filter(|r| r.record_type() == rtype).count();
                if n == 0 {
                    DnsAnswer::NotFound
                } else {
                    DnsAnswer::Found(n)
                }
            }
            Err(n) => n.clone().into_answer(),
        }
    }

    /// Answers one [`Query`].
    pub async fn answer(&self, q: &Query) -> Answer {
        let name = q.name.as_str();
        match q.kind {
            QueryKind::Txt => Answer::Txt(self.txt(name).await),
            QueryKind::Mx => Answer::Mx(
                self.mx(name)
                    .await
                    .map(|v| v.into_iter().map(|m| m.exchange).collect()),
            ),
            QueryKind::Addr => Answer::Addr(self.addrs(name).await),
            QueryKind::MxRecords => Answer::MxRecords(self.mx(name).await),
            QueryKind::Host => Answer::Host(self.host(name).await),
            QueryKind::A => Answer::A(self.a(name).await),
            QueryKind::Ptr => Answer::Ptr(self.ptr_at(name).await),
            QueryKind::Zone => {
                let (keys, apex) = self.dnskeys_and_apex(name).await;
                Answer::Zone { keys, apex }
            }
            QueryKind::Dnskey => Answer::Dnskey(self.count(name, RecordType::DNSKEY).await),
            QueryKind::Ds => Answer::Ds(self.count(name, RecordType::DS).await),
        }
    }
}

/// The servers of a system configuration, each at its UDP port.
fn udp_servers(config: &ResolverConfig) -> Vec<SocketAddr> {
    config
        .name_servers
        .iter()
        .filter_map(|ns| {
            ns.connections
                .iter()
                .find(|c| c.protocol == ProtocolConfig::Udp)
                .map(|c| SocketAddr::new(ns.ip, c.port))
        })
        .collect()
}

/// A TLS client configuration that trusts no one, for the resolver's DNS
/// over TLS, which the audit never uses.
fn unused_tls_config() -> Result<rustls::ClientConfig, rustls::Error> {
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth())
}

/// A query's result without records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Negative {
    /// NXDOMAIN or NODATA.
    NotFound,
    /// Anything else: the answer could not be obtained.
    Unknown(String),
}

impl Negative {
    fn into_answer<T>(self) -> DnsAnswer<T> {
        match self {
            Negative::NotFound => DnsAnswer::NotFound,
            Negative::Unknown(why) => DnsAnswer::Unknown(why),
        }
    }
}

/// The absolute name to ask for: a valid name with a trailing dot, so no
/// search list applies.
fn to_fqdn(name: &str) -> Option<Name> {
    let name = normalize(name);
    if !is_valid_name(&name) {
        return None;
    }
    Name::from_ascii(format!("{name}.")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DNS server on port 0 that answers NXDOMAIN to everything and
    /// counts the queries it gets.
    async fn counting_server() -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
        use hickory_resolver::proto::op::{Message, ResponseCode};
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = count.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            while let Ok((n, from)) = sock.recv_from(&mut buf).await {
                let Ok(q) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut r =
                    Message::error_msg(q.metadata.id, q.metadata.op_code, ResponseCode::NXDomain);
                r.add_queries(q.queries.iter().cloned());
                let _ = sock.send_to(&r.to_vec().unwrap(), from).await;
            }
        });
        (addr, count)
    }

    #[tokio::test]
    async fn a_run_asks_each_query_once_and_the_next_run_asks_again() {
        let (addr, count) = counting_server().await;
        let asked = || count.load(std::sync::atomic::Ordering::SeqCst);
        let lookup = DnsLookup::new(&ResolverSettings {
            server: Some(addr),
            timeout: Duration::from_secs(2),
            attempts: 1,
            max_in_flight: 8,
        })
        .unwrap();

        let run = lookup.for_run();
        let clone = run.clone();
        let (a, b) = tokio::join!(run.txt("x.test"), clone.txt("X.test."));
        assert_eq!((a, b), (DnsAnswer::NotFound, DnsAnswer::NotFound));
        assert_eq!(run.txt("x.test").await, DnsAnswer::NotFound);
        assert_eq!(asked(), 1, "one query for the same name and type in a run");
        assert_eq!(run.mx("x.test").await, DnsAnswer::NotFound);
        assert_eq!(asked(), 2, "another type is another query");

        assert_eq!(lookup.for_run().txt("x.test").await, DnsAnswer::NotFound);
        assert_eq!(asked(), 3, "the next run asks again");
        lookup.txt("x.test").await;
        lookup.txt("x.test").await;
        assert_eq!(asked(), 5, "without a run handle every ask is a query");
    }

    #[test]
    fn invalid_names_are_not_queried() {
        assert!(to_fqdn("a..b").is_none());
        assert!(to_fqdn("").is_none());
        assert_eq!(
            to_fqdn("Example.COM.").map(|n| n.to_ascii()),
            Some("example.com.".into())
        );
    }
}
