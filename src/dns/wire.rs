//! The DNS client on the wire: hickory-net's multiplexed exchange on one UDP
//! socket per server, TCP (one multiplexed connection) for truncated answers.
//!
//! Why not `TokioResolver::lookup` for every query: the resolver opens, binds,
//! registers and closes a fresh UDP socket per query (the right default for a
//! caching resolver, where a spoofed answer would be served for its TTL) and
//! runs each query through its name-server pool, retry and caching layers.
//! For an audit of many domains that is two thirds of the CPU time
//! (`bench/checkdmarc-compare.sh`). Here hickory's own `DnsMultiplexer`
//! matches answers to queries by id on one long-lived socket, and this module
//! adds what the resolver did that the audit needs: the answer must come from
//! the server and match the question, a truncated answer is asked again over
//! TCP, CNAMEs are followed (RFC 1034 §3.6.2), and every outcome is records,
//! "no such records" (NXDOMAIN or NODATA) or unknown.
//!
//! The socket lives as long as the [`Wire`] (one `check` run, one scheduled
//! audit run), so answers are never cached across runs and the source port
//! changes each run. Datagrams from anyone but the server are dropped, and
//! the query id and question are checked. (The socket is not connected: on a
//! connected one every query to a stopped server would make hickory log a
//! warning for the ICMP error.)

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::stream::FuturesUnordered;
use futures_util::{Stream, StreamExt};
use hickory_resolver::net::runtime::{TokioRuntimeProvider, TokioTime};
use hickory_resolver::net::tcp::TcpClientStream;
use hickory_resolver::net::udp::UdpStream;
use hickory_resolver::net::xfer::{DnsClientStream, DnsExchange, DnsHandle, DnsMultiplexer};
use hickory_resolver::net::NetError;
use hickory_resolver::proto::op::{
    DnsRequestOptions, DnsResponse, Query, ResponseCode, SerialMessage,
};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

/// Queries outstanding on one server's exchanges at most: hickory queues a
/// multiplexer's messages to its socket in a channel of 32 and refuses the
/// 34th while they wait (`channel is full`; they do in a run's first burst,
/// before tokio's I/O driver has seen the new socket writable), which would
/// turn a busy moment into unknown answers.
const PER_SERVER_IN_FLIGHT: usize = 32;

/// Sends of one question over UDP within one timeout (hickory's UDP client
/// sends up to three too).
const UDP_SENDS: usize = 3;

/// The shortest wait before a question is sent again over UDP.
const RESEND_FLOOR: Duration = Duration::from_millis(500);

/// CNAME hops followed before the answer is unknown (hickory's resolver
/// allows a similar depth; real chains are one or two long).
const MAX_CNAME_HOPS: usize = 8;

/// What a query found.
#[derive(Debug, Clone)]
pub enum Resolved {
    /// Records of the asked type, with the CNAMEs that led to them first.
    Records(Vec<Record>),
    /// NXDOMAIN, or NOERROR without records of the type (NODATA). `soa` is the
    /// owner of the SOA in the authority section (the zone's apex), if any.
    Empty { soa: Option<Name> },
}

/// Why an answer could not be obtained; the text is support-safe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unknown(pub String);

impl Unknown {
    fn new(why: impl Into<String>) -> Self {
        Unknown(why.into())
    }
}

/// Which transport a query goes over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Udp,
    Tcp,
}

/// A DNS client for one audit run: one UDP socket and, when needed, one TCP
/// connection per server, connected on first use.
pub struct Wire {
    servers: Vec<Server>,
    timeout: Duration,
    attempts: usize,
}

struct Server {
    addr: SocketAddr,
    in_flight: tokio::sync::Semaphore,
    udp: Mutex<Slot>,
    tcp: Mutex<Slot>,
}

/// One transport's exchange to one server.
#[derive(Default)]
struct Slot {
    /// The exchange and its background task; the exchange is dead once the
    /// task has ended (the server closed the connection, the socket failed).
    live: Option<(DnsExchange<TokioRuntimeProvider>, JoinHandle<()>)>,
    /// A failed connect, remembered for one timeout so the queries waiting
    /// behind it fail at once instead of each trying again in turn.
    failed: Option<(Instant, Unknown)>,
}

impl Wire {
    /// A client asking `servers` in order (the next only when one cannot
    /// answer). Nothing is connected until the first query.
    pub fn new(servers: Vec<SocketAddr>, timeout: Duration, attempts: usize) -> Self {
        Wire {
            servers: servers
                .into_iter()
                .map(|addr| Server {
                    addr,
                    in_flight: tokio::sync::Semaphore::new(PER_SERVER_IN_FLIGHT),
                    udp: Mutex::default(),
                    tcp: Mutex::default(),
                })
                .collect(),
            timeout,
            attempts: attempts.max(1),
        }
    }

    /// A client on the same servers with the same settings and nothing
    /// connected: the next run's, with a socket (and source port) of its own.
    pub fn renewed(&self) -> Wire {
        Wire::new(
            self.servers.iter().map(|s| s.addr).collect(),
            self.timeout,
            self.attempts,
        )
    }

    /// Resolves `name`/`rtype`, following CNAMEs.
    pub async fn resolve(&self, name: &Name, rtype: RecordType) -> Result<Resolved, Unknown> {
        let mut chain = Vec::new();
        let mut current = name.clone();
        for _ in 0..=MAX_CNAME_HOPS {
            let response = self.ask(&current, rtype).await?;
            match response.metadata.response_code {
                ResponseCode::NoError | ResponseCode::NXDomain => {}
                code => return Err(Unknown(rcode_name(code))),
            }
            let answers = &response.answers;
            if answers.iter().any(|r| r.record_type() == rtype) {
                chain.extend(answers.iter().cloned());
                return Ok(Resolved::Records(chain));
            }
            // Follow the CNAME chain inside this answer and ask for where it
            // ends, even after NXDOMAIN or NODATA: an authoritative server
            // answers for the target only as far as its own zones go (knot
            // says NXDOMAIN for a name in a zone of its that failed to load,
            // which answers SERVFAIL when asked directly).
            let mut target = current.clone();
            let mut hops = Vec::new();
            while let Some(r) = answers
                .iter()
                .find(|r| r.name == target && r.record_type() == RecordType::CNAME)
            {
                let RData::CNAME(c) = &r.data else { break };
                hops.push(r.clone());
                target = c.0.clone();
                if hops.len() > MAX_CNAME_HOPS {
                    return Err(Unknown::new("CNAME chain too long"));
                }
            }
            if hops.is_empty() {
                if !answers.is_empty() {
                    // Records, but neither of the type asked nor a CNAME of
                    // the name: not an answer to trust as "none".
                    return Err(Unknown::new("answer without records of the type asked"));
                }
                if is_referral(&response) {
                    return Err(Unknown::new(
                        "referral: the server does not resolve recursively",
                    ));
                }
                return Ok(Resolved::Empty {
                    soa: authority_soa(&response),
                });
            }
            chain.extend(hops);
            current = target;
        }
        Err(Unknown::new("CNAME chain too long"))
    }

    /// One question: each attempt asks every server in turn (as the system
    /// resolver does), so one dead server costs one timeout per attempt, not
    /// every attempt. The first answer that is not unknown wins.
    async fn ask(&self, name: &Name, rtype: RecordType) -> Result<DnsResponse, Unknown> {
        let mut last = Unknown::new("no name server configured");
        for _ in 0..self.attempts {
            for server in &self.servers {
                match self.ask_server(server, name, rtype).await {
                    Ok(r) if is_server_failure(&r) && self.servers.len() > 1 => {
                        last = Unknown(rcode_name(r.metadata.response_code));
                    }
                    Ok(r) => return Ok(r),
                    Err(e) => last = e,
                }
            }
        }
        Err(last)
    }

    /// One attempt at one server: UDP, then TCP if the answer is truncated
    /// (RFC 7766 §5).
    async fn ask_server(
        &self,
        server: &Server,
        name: &Name,
        rtype: RecordType,
    ) -> Result<DnsResponse, Unknown> {
        let response = self
            .exchange_once(server, Transport::Udp, name, rtype)
            .await?;
        if !response.metadata.truncation {
            return Ok(response);
        }
        let response = self
            .exchange_once(server, Transport::Tcp, name, rtype)
            .await?;
        if response.metadata.truncation {
            return Err(Unknown::new("truncated answer over TCP"));
        }
        Ok(response)
    }

    /// One question over one transport within one timeout. Over UDP the
    /// question is sent again every third of the timeout while no answer
    /// has come (a lost datagram then costs a resend, not the attempt), and
    /// the first answer to any of the sends is taken.
    async fn exchange_once(
        &self,
        server: &Server,
        transport: Transport,
        name: &Name,
        rtype: RecordType,
    ) -> Result<DnsResponse, Unknown> {
        let exchange = self.exchange(server, transport).await?;
        let Ok(_permit) = server.in_flight.acquire().await else {
            return Err(Unknown::new("resolver shut down"));
        };
        let sends = match transport {
            Transport::Udp => UDP_SENDS,
            Transport::Tcp => 1,
        };
        let resend = (self.timeout / 3).max(RESEND_FLOOR);
        let asking = async {
            let mut pending = FuturesUnordered::new();
            let mut sent = 0;
            loop {
                if sent < sends {
                    pending.push(one_request(&exchange, name, rtype));
                    sent += 1;
                }
                tokio::select! {
                    Some(outcome) = pending.next() => match outcome {
                        Ok(response) => return Ok(response),
                        // Another send may still be answered.
                        Err(e) if pending.is_empty() && sent >= sends => return Err(e),
                        Err(_) => {}
                    },
                    _ = tokio::time::sleep(resend), if sent < sends => {}
                    else => return Err(Unknown::new("timed out")),
                }
            }
        };
        tokio::time::timeout(self.timeout, asking)
            .await
            .unwrap_or_else(|_| Err(Unknown::new("timed out")))
    }

    /// The exchange for `transport` to `server`, connecting it if there is
    /// none or its background task has ended.
    async fn exchange(
        &self,
        server: &Server,
        transport: Transport,
    ) -> Result<DnsExchange<TokioRuntimeProvider>, Unknown> {
        // Held while connecting, so the queries of a run's first moments
        // wait for one socket instead of each opening their own.
        let mut slot = server.slot(transport).lock().await;
        if let Some((e, task)) = &slot.live {
            if !task.is_finished() {
                return Ok(e.clone());
            }
        }
        if let Some((at, e)) = &slot.failed {
            if at.elapsed() < self.timeout {
                return Err(e.clone());
            }
        }
        let made = match transport {
            Transport::Udp => self.connect_udp(server.addr).await,
            Transport::Tcp => self.connect_tcp(server.addr).await,
        };
        match made {
            Ok((exchange, task)) => {
                *slot = Slot {
                    live: Some((exchange.clone(), task)),
                    failed: None,
                };
                Ok(exchange)
            }
            Err(e) => {
                *slot = Slot {
                    live: None,
                    failed: Some((Instant::now(), e.clone())),
                };
                Err(e)
            }
        }
    }

    /// One TCP connection, multiplexed. (`TcpClientStream::exchange` would
    /// tie its background task to a runtime handle dropped on return.)
    async fn connect_tcp(&self, addr: SocketAddr) -> Result<Connected, Unknown> {
        let (connect, handle) = TcpClientStream::new(
            addr,
            None,
            Some(self.timeout),
            TokioRuntimeProvider::default(),
        );
        let stream = connect.await.map_err(|e| net_error(&e))?;
        Ok(self.spawn_exchange(DnsMultiplexer::new(stream, handle)))
    }

    /// Starts the multiplexer's background task; the exchange ends with it.
    fn spawn_exchange<S: DnsClientStream>(&self, multiplexer: DnsMultiplexer<S>) -> Connected {
        let multiplexer = multiplexer
            .with_timeout(self.timeout)
            .with_max_active_requests(PER_SERVER_IN_FLIGHT * UDP_SENDS + 8);
        let (exchange, background) = DnsExchange::from_stream(multiplexer);
        let task = tokio::spawn(background);
        (exchange, task)
    }

    async fn connect_udp(&self, addr: SocketAddr) -> Result<Connected, Unknown> {
        let local: SocketAddr = match addr {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = tokio::net::UdpSocket::bind(local)
            .await
            .map_err(|e| io_error(&e))?;
        let (stream, handle) = UdpStream::<TokioRuntimeProvider>::with_bound(socket, addr);
        let link = UdpLink { stream, addr };
        Ok(self.spawn_exchange(DnsMultiplexer::new(link, handle)))
    }
}

/// An exchange and the task that drives it.
type Connected = (DnsExchange<TokioRuntimeProvider>, JoinHandle<()>);

/// One request on an exchange: the first answer to this question, waiting
/// past answers to another (a late or forged reply) until the timeout.
async fn one_request(
    exchange: &DnsExchange<TokioRuntimeProvider>,
    name: &Name,
    rtype: RecordType,
) -> Result<DnsResponse, Unknown> {
    let mut options = DnsRequestOptions::default();
    options.recursion_desired = true;
    let mut stream = exchange.lookup(Query::query(name.clone(), rtype), options);
    // hickory ends the stream without an item when the multiplexer's timer
    // fires.
    let mut last = Unknown::new("timed out");
    while let Some(outcome) = stream.next().await {
        match outcome {
            Ok(response) if answers_question(&response, name, rtype) => return Ok(response),
            Ok(_) => last = Unknown::new("answer does not match the question"),
            Err(e) => return Err(net_error(&e)),
        }
    }
    Err(last)
}

impl Server {
    fn slot(&self, transport: Transport) -> &Mutex<Slot> {
        match transport {
            Transport::Udp => &self.udp,
            Transport::Tcp => &self.tcp,
        }
    }
}

/// The UDP socket as hickory's multiplexer wants it, taking datagrams from
/// the server only. Receive errors and stray datagrams are logged and
/// skipped, never the end of the stream: the queries waiting then time out
/// one by one and the socket stays usable.
struct UdpLink {
    stream: UdpStream<TokioRuntimeProvider>,
    addr: SocketAddr,
}

impl Stream for UdpLink {
    type Item = Result<SerialMessage, NetError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // A bounded number of skips per poll, then yield to other tasks.
        for _ in 0..64 {
            match self.stream.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(message))) if same_peer(message.addr(), self.addr) => {
                    return Poll::Ready(Some(Ok(message)))
                }
                Poll::Ready(Some(Ok(_))) => continue,
                Poll::Ready(Some(Err(e))) => {
                    tracing::debug!(server = %self.addr, error = %e, "DNS socket receive error");
                    continue;
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl DnsClientStream for UdpLink {
    type Time = TokioTime;

    fn name_server_addr(&self) -> SocketAddr {
        self.addr
    }
}

/// The same address and port, an IPv4-mapped IPv6 address counting as its
/// IPv4 one.
fn same_peer(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && a.ip().to_canonical() == b.ip().to_canonical()
}

/// RFC 5452 §9.1: an answer is accepted only for the question asked.
fn answers_question(response: &DnsResponse, name: &Name, rtype: RecordType) -> bool {
    match response.queries.as_slice() {
        [q] => q.name() == name && q.query_type() == rtype,
        _ => false,
    }
}

/// SERVFAIL, REFUSED, NOTIMP, FORMERR: worth asking the next server.
fn is_server_failure(response: &DnsResponse) -> bool {
    !matches!(
        response.metadata.response_code,
        ResponseCode::NoError | ResponseCode::NXDomain
    )
}

/// A delegation instead of an answer: no answer, no SOA, name servers in
/// the authority section, not authoritative (RFC 1034 §4.3.1). What a
/// non-recursive server says for a name it does not serve.
fn is_referral(response: &DnsResponse) -> bool {
    response.answers.is_empty()
        && !response.metadata.authoritative
        && authority_soa(response).is_none()
        && response
            .authorities
            .iter()
            .any(|r| r.record_type() == RecordType::NS)
}

/// The owner of the SOA in a negative answer's authority section.
fn authority_soa(response: &DnsResponse) -> Option<Name> {
    response
        .authorities
        .iter()
        .find(|r| r.record_type() == RecordType::SOA)
        .map(|r| r.name.clone())
}

/// A transport error as an unknown outcome's reason.
fn net_error(err: &NetError) -> Unknown {
    match err {
        NetError::Timeout => Unknown::new("timed out"),
        NetError::Io(e) => io_error(e),
        NetError::Busy => Unknown::new("too many queries in flight"),
        other => Unknown(crate::text::excerpt(&other.to_string(), 100)),
    }
}

/// A socket error as an unknown outcome's reason (its kind, never an address).
fn io_error(e: &std::io::Error) -> Unknown {
    Unknown(format!("network error: {}", e.kind()))
}

/// `SERVFAIL`, `REFUSED`, … as in dig's output.
fn rcode_name(code: ResponseCode) -> String {
    match code {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        other => format!("response code {}", u16::from(other)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use hickory_resolver::proto::op::{Message, MessageType, OpCode};
    use hickory_resolver::proto::rr::rdata::{A, CNAME, SOA, TXT};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    type Handler = dyn Fn(&Message, Transport) -> Option<Message> + Send + Sync;

    /// A DNS server on a free loopback port, UDP and TCP, answering with
    /// `handler` (None: stay silent) and counting queries per transport.
    struct TestServer {
        addr: SocketAddr,
        udp: Arc<AtomicUsize>,
        tcp: Arc<AtomicUsize>,
        /// Source ports the UDP queries came from.
        ports: Arc<std::sync::Mutex<std::collections::BTreeSet<u16>>>,
    }

    impl TestServer {
        async fn start(handler: Arc<Handler>) -> TestServer {
            let (udp_sock, tcp_listener) = loop {
                let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
                let port = udp.local_addr().unwrap().port();
                if let Ok(tcp) = tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
                    break (udp, tcp);
                }
            };
            let addr = udp_sock.local_addr().unwrap();
            let (udp, tcp) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
            let ports = Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
            let (h, n, seen) = (handler.clone(), udp.clone(), ports.clone());
            tokio::spawn(async move {
                let mut buf = [0u8; 1500];
                while let Ok((len, from)) = udp_sock.recv_from(&mut buf).await {
                    let Ok(q) = Message::from_vec(&buf[..len]) else {
                        continue;
                    };
                    n.fetch_add(1, Ordering::SeqCst);
                    seen.lock().unwrap().insert(from.port());
                    if let Some(r) = h(&q, Transport::Udp) {
                        let _ = udp_sock.send_to(&r.to_vec().unwrap(), from).await;
                    }
                }
            });
            let n = tcp.clone();
            tokio::spawn(async move {
                while let Ok((mut conn, _)) = tcp_listener.accept().await {
                    let (h, n) = (handler.clone(), n.clone());
                    tokio::spawn(async move {
                        loop {
                            let Ok(len) = conn.read_u16().await else {
                                return;
                            };
                            let mut buf = vec![0u8; usize::from(len)];
                            if conn.read_exact(&mut buf).await.is_err() {
                                return;
                            }
                            let Ok(q) = Message::from_vec(&buf) else {
                                return;
                            };
                            n.fetch_add(1, Ordering::SeqCst);
                            if let Some(r) = h(&q, Transport::Tcp) {
                                let bytes = r.to_vec().unwrap();
                                let _ = conn.write_u16(bytes.len() as u16).await;
                                let _ = conn.write_all(&bytes).await;
                            }
                        }
                    });
                }
            });
            TestServer {
                addr,
                udp,
                tcp,
                ports,
            }
        }

        fn wire(&self, attempts: usize) -> Wire {
            Wire::new(vec![self.addr], Duration::from_millis(300), attempts)
        }
    }

    fn reply(q: &Message, code: ResponseCode) -> Message {
        let mut r = Message::error_msg(q.metadata.id, OpCode::Query, code);
        r.metadata.message_type = MessageType::Response;
        r.add_queries(q.queries.iter().cloned());
        r
    }

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn asked(q: &Message) -> (String, RecordType) {
        let q = &q.queries[0];
        (q.name().to_ascii().to_lowercase(), q.query_type())
    }

    fn soa_at(apex: &str) -> Record {
        let soa = SOA::new(
            name(apex),
            name("hostmaster.test."),
            1,
            3600,
            600,
            86400,
            300,
        );
        Record::from_rdata(name(apex), 300, RData::SOA(soa))
    }

    #[tokio::test]
    async fn a_truncated_answer_is_asked_again_over_tcp() {
        let server = TestServer::start(Arc::new(|q: &Message, t: Transport| {
            let mut r = reply(q, ResponseCode::NoError);
            match t {
                Transport::Udp => r.metadata.truncation = true,
                Transport::Tcp => {
                    r.add_answer(Record::from_rdata(
                        q.queries[0].name().clone(),
                        300,
                        RData::TXT(TXT::new(vec!["v=spf1 -all".into()])),
                    ));
                }
            }
            Some(r)
        }))
        .await;
        let wire = server.wire(1);
        for _ in 0..2 {
            let got = wire.resolve(&name("big.test."), RecordType::TXT).await;
            assert!(
                matches!(&got, Ok(Resolved::Records(r)) if r.len() == 1),
                "{got:?}"
            );
        }
        assert_eq!(server.udp.load(Ordering::SeqCst), 2);
        assert_eq!(
            server.tcp.load(Ordering::SeqCst),
            2,
            "one TCP query per truncated answer"
        );
    }

    #[tokio::test]
    async fn a_first_burst_of_queries_shares_one_socket_and_loses_none() {
        let server = TestServer::start(Arc::new(|q: &Message, _| {
            Some(reply(q, ResponseCode::NXDomain))
        }))
        .await;
        let wire = Wire::new(vec![server.addr], Duration::from_secs(2), 1);
        let names: Vec<Name> = (0..64).map(|i| name(&format!("n{i}.test."))).collect();
        let answers =
            futures_util::future::join_all(names.iter().map(|n| wire.resolve(n, RecordType::TXT)))
                .await;
        let failed: Vec<_> = answers.iter().filter(|a| a.is_err()).collect();
        assert!(failed.is_empty(), "{failed:?}");
        assert_eq!(server.udp.load(Ordering::SeqCst), 64);
        assert_eq!(
            server.ports.lock().unwrap().len(),
            1,
            "one socket for the run"
        );
    }

    #[tokio::test]
    async fn cnames_are_followed_to_the_records() {
        let server = TestServer::start(Arc::new(|q: &Message, _| {
            let mut r = reply(q, ResponseCode::NoError);
            let qname = q.queries[0].name().clone();
            match asked(q).0.as_str() {
                "alias.test." => r.add_answer(Record::from_rdata(
                    qname,
                    300,
                    RData::CNAME(CNAME(name("mid.test."))),
                )),
                "mid.test." => r.add_answer(Record::from_rdata(
                    qname,
                    300,
                    RData::CNAME(CNAME(name("host.test."))),
                )),
                // NXDOMAIN for the target, from a server that does not
                // serve it: the target is asked anyway.
                "partial.test." => {
                    r.metadata.response_code = ResponseCode::NXDomain;
                    r.add_answer(Record::from_rdata(
                        qname,
                        300,
                        RData::CNAME(CNAME(name("host.test."))),
                    ))
                }
                "host.test." => r.add_answer(Record::from_rdata(
                    qname,
                    300,
                    RData::A(A::new(192, 0, 2, 1)),
                )),
                // A CNAME to itself: a loop.
                _ => r.add_answer(Record::from_rdata(
                    qname.clone(),
                    300,
                    RData::CNAME(CNAME(qname)),
                )),
            };
            Some(r)
        }))
        .await;
        let wire = server.wire(1);
        let Ok(Resolved::Records(records)) =
            wire.resolve(&name("alias.test."), RecordType::A).await
        else {
            panic!("alias.test. did not resolve");
        };
        let types: Vec<RecordType> = records.iter().map(|r| r.record_type()).collect();
        assert_eq!(types, [RecordType::CNAME, RecordType::CNAME, RecordType::A]);
        assert_eq!(server.udp.load(Ordering::SeqCst), 3);
        let got = wire.resolve(&name("partial.test."), RecordType::A).await;
        assert!(
            matches!(&got, Ok(Resolved::Records(r)) if r.len() == 2),
            "{got:?}"
        );
        assert_eq!(
            wire.resolve(&name("loop.test."), RecordType::A)
                .await
                .unwrap_err(),
            Unknown::new("CNAME chain too long")
        );
    }

    #[tokio::test]
    async fn nxdomain_and_nodata_are_empty_and_name_the_apex_other_codes_are_unknown() {
        let server = TestServer::start(Arc::new(|q: &Message, _| {
            let code = match asked(q).0.as_str() {
                "gone.zone.test." => ResponseCode::NXDomain,
                "empty.zone.test." => ResponseCode::NoError,
                "broken.test." => ResponseCode::ServFail,
                _ => ResponseCode::Refused,
            };
            let mut r = reply(q, code);
            if code == ResponseCode::NXDomain || code == ResponseCode::NoError {
                r.add_authority(soa_at("zone.test."));
            }
            Some(r)
        }))
        .await;
        let wire = server.wire(2);
        for n in ["gone.zone.test.", "empty.zone.test."] {
            match wire.resolve(&name(n), RecordType::MX).await {
                Ok(Resolved::Empty { soa: Some(apex) }) => assert_eq!(apex, name("zone.test.")),
                other => panic!("{n}: {other:?}"),
            }
        }
        assert_eq!(
            wire.resolve(&name("broken.test."), RecordType::MX)
                .await
                .unwrap_err(),
            Unknown::new("SERVFAIL")
        );
        assert_eq!(
            wire.resolve(&name("other.test."), RecordType::MX)
                .await
                .unwrap_err(),
            Unknown::new("REFUSED")
        );
        assert_eq!(
            server.udp.load(Ordering::SeqCst),
            4,
            "an answer is not retried"
        );
    }

    #[tokio::test]
    async fn an_answer_to_another_question_is_not_taken() {
        let server = TestServer::start(Arc::new(|q: &Message, _| {
            let mut r = reply(q, ResponseCode::NoError);
            r.queries.clear();
            let forged = Query::query(name("other.test."), RecordType::TXT);
            r.add_query(forged.clone());
            r.add_answer(Record::from_rdata(
                name("other.test."),
                300,
                RData::TXT(TXT::new(vec!["forged".into()])),
            ));
            Some(r)
        }))
        .await;
        let wire = server.wire(2);
        assert_eq!(
            wire.resolve(&name("asked.test."), RecordType::TXT)
                .await
                .unwrap_err(),
            Unknown::new("timed out"),
            "the forged answer is not taken; the real one never came"
        );
        assert_eq!(
            server.udp.load(Ordering::SeqCst),
            2,
            "each attempt asks once"
        );
    }

    #[tokio::test]
    async fn a_silent_server_is_unknown_after_every_attempt_and_the_socket_stays_usable() {
        let answer = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let on = answer.clone();
        let server = TestServer::start(Arc::new(move |q: &Message, _| {
            on.load(Ordering::SeqCst)
                .then(|| reply(q, ResponseCode::NXDomain))
        }))
        .await;
        let wire = server.wire(2);
        assert_eq!(
            wire.resolve(&name("quiet.test."), RecordType::A)
                .await
                .unwrap_err(),
            Unknown::new("timed out")
        );
        assert_eq!(server.udp.load(Ordering::SeqCst), 2);
        answer.store(true, Ordering::SeqCst);
        assert!(matches!(
            wire.resolve(&name("quiet.test."), RecordType::A).await,
            Ok(Resolved::Empty { soa: None })
        ));
    }

    #[tokio::test]
    async fn an_answer_from_another_address_is_not_taken() {
        let asked = Arc::new(std::sync::Mutex::new(None::<Message>));
        let keep = asked.clone();
        let server = TestServer::start(Arc::new(move |q: &Message, _| {
            *keep.lock().unwrap() = Some(q.clone());
            None
        }))
        .await;
        let wire = Wire::new(vec![server.addr], Duration::from_millis(500), 1);
        let spoofer = async {
            let forger = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let q = asked.lock().unwrap().clone();
                let port = server.ports.lock().unwrap().first().copied();
                if let (Some(q), Some(port)) = (q, port) {
                    let mut r = reply(&q, ResponseCode::NoError);
                    r.add_answer(Record::from_rdata(
                        q.queries[0].name().clone(),
                        300,
                        RData::TXT(TXT::new(vec!["forged".into()])),
                    ));
                    let to = SocketAddr::from(([127, 0, 0, 1], port));
                    forger.send_to(&r.to_vec().unwrap(), to).await.unwrap();
                    return;
                }
            }
        };
        let asked_name = name("x.test.");
        let (got, ()) = tokio::join!(wire.resolve(&asked_name, RecordType::TXT), spoofer);
        assert_eq!(got.unwrap_err(), Unknown::new("timed out"));
    }

    #[tokio::test]
    async fn a_dropped_client_closes_its_socket() {
        let server = TestServer::start(Arc::new(|q: &Message, _| {
            Some(reply(q, ResponseCode::NXDomain))
        }))
        .await;
        let tasks = || {
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks()
        };
        let before = tasks();
        for _ in 0..5 {
            let wire = server.wire(1);
            assert!(wire
                .resolve(&name("x.test."), RecordType::TXT)
                .await
                .is_ok());
            assert!(tasks() > before, "the client runs a background task");
            drop(wire);
        }
        for _ in 0..100 {
            if tasks() == before {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            tasks(),
            before,
            "the exchanges (and their sockets) end with the client"
        );
        assert_eq!(server.ports.lock().unwrap().len(), 5);
    }

    #[tokio::test]
    async fn the_next_server_answers_when_the_first_is_silent() {
        let silent = TestServer::start(Arc::new(|_: &Message, _| None)).await;
        let good = TestServer::start(Arc::new(|q: &Message, _| {
            Some(reply(q, ResponseCode::NXDomain))
        }))
        .await;
        let wire = Wire::new(vec![silent.addr, good.addr], Duration::from_millis(300), 2);
        assert!(matches!(
            wire.resolve(&name("x.test."), RecordType::TXT).await,
            Ok(Resolved::Empty { .. })
        ));
        assert_eq!(silent.udp.load(Ordering::SeqCst), 1);
        assert_eq!(good.udp.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_lost_datagram_is_sent_again_and_stray_ones_do_not_end_the_socket() {
        let seen = Arc::new(AtomicUsize::new(0));
        let count = seen.clone();
        // Drops the first query, as a lossy path would; answers the next.
        let server = TestServer::start(Arc::new(move |q: &Message, _| {
            (count.fetch_add(1, Ordering::SeqCst) > 0).then(|| reply(q, ResponseCode::NXDomain))
        }))
        .await;
        let wire = Wire::new(vec![server.addr], Duration::from_secs(3), 1);
        let flood = async {
            // Junk from another address while the question is outstanding.
            while server.ports.lock().unwrap().is_empty() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let port = *server.ports.lock().unwrap().first().unwrap();
            let junk = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            for _ in 0..300 {
                let _ = junk.send_to(b"not dns", ("127.0.0.1", port)).await;
            }
        };
        let started = std::time::Instant::now();
        let asked = name("x.test.");
        let (got, ()) = tokio::join!(wire.resolve(&asked, RecordType::TXT), flood);
        assert!(matches!(got, Ok(Resolved::Empty { .. })), "{got:?}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "answered within the attempt"
        );
        assert_eq!(server.udp.load(Ordering::SeqCst), 2, "sent again once");
        assert_eq!(server.ports.lock().unwrap().len(), 1, "the same socket");
    }

    #[tokio::test]
    async fn a_referral_or_an_answer_of_another_type_is_unknown_not_missing() {
        let server = TestServer::start(Arc::new(|q: &Message, _| {
            let mut r = reply(q, ResponseCode::NoError);
            match asked(q).0.as_str() {
                "referred.test." => {
                    r.metadata.authoritative = false;
                    r.add_authority(Record::from_rdata(
                        name("test."),
                        300,
                        RData::NS(hickory_resolver::proto::rr::rdata::NS(name("ns.test."))),
                    ));
                }
                _ => {
                    r.add_answer(Record::from_rdata(
                        q.queries[0].name().clone(),
                        300,
                        RData::A(A::new(192, 0, 2, 1)),
                    ));
                }
            }
            Some(r)
        }))
        .await;
        let wire = server.wire(1);
        assert_eq!(
            wire.resolve(&name("referred.test."), RecordType::TXT)
                .await
                .unwrap_err(),
            Unknown::new("referral: the server does not resolve recursively")
        );
        assert_eq!(
            wire.resolve(&name("odd.test."), RecordType::TXT)
                .await
                .unwrap_err(),
            Unknown::new("answer without records of the type asked")
        );
    }

    #[tokio::test]
    async fn a_stopped_server_is_unknown_not_missing() {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        drop(sock);
        let wire = Wire::new(vec![addr], Duration::from_millis(200), 2);
        assert!(wire
            .resolve(&name("x.test."), RecordType::TXT)
            .await
            .is_err());
    }
}
