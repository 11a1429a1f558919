//! Questions and their typed answers, kept for code that does no I/O: a pure
//! check names the [`Query`]s it needs, [`super::DnsLookup::answer`] answers
//! each, and the check reads the [`DnsFacts`].

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use super::lookup::{HostAddrs, MxHost};
use super::name::{normalize, reverse_name};
use super::{DnsAnswer, TxtRecords};

/// The kind of answer a query asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QueryKind {
    /// TXT records, each joined with [`super::join_character_strings`].
    Txt,
    /// MX exchange host names (preferences are not needed).
    Mx,
    /// A and AAAA addresses together: `Found` if either has records,
    /// `NotFound` if both are NXDOMAIN/NODATA, `Unknown` if either failed.
    Addr,
    /// MX records with their preferences, sorted.
    MxRecords,
    /// A and AAAA addresses with the CNAME the name is, if it is one.
    Host,
    /// IPv4 addresses only (blocklist answers).
    A,
    /// PTR names; the query's name is the reverse-lookup name.
    Ptr,
    /// DNSKEY count at the name and the apex of the zone that answered.
    Zone,
    /// DNSKEY count.
    Dnskey,
    /// DS count.
    Ds,
}

impl QueryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            QueryKind::Txt => "TXT",
            QueryKind::Mx | QueryKind::MxRecords => "MX",
            QueryKind::Addr | QueryKind::Host => "A/AAAA",
            QueryKind::A => "A",
            QueryKind::Ptr => "PTR",
            QueryKind::Zone | QueryKind::Dnskey => "DNSKEY",
            QueryKind::Ds => "DS",
        }
    }
}

/// A DNS question. `name` is normalised (lower case, no trailing dot).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Query {
    pub kind: QueryKind,
    pub name: String,
}

impl Query {
    /// A question of `kind` at `name`.
    pub fn new(kind: QueryKind, name: &str) -> Self {
        Query {
            kind,
            name: normalize(name),
        }
    }
    pub fn txt(name: &str) -> Self {
        Query::new(QueryKind::Txt, name)
    }
    pub fn mx(name: &str) -> Self {
        Query::new(QueryKind::Mx, name)
    }
    pub fn addr(name: &str) -> Self {
        Query::new(QueryKind::Addr, name)
    }
    /// The PTR question for `ip`, at its reverse-lookup name.
    pub fn ptr(ip: IpAddr) -> Self {
        Query::new(QueryKind::Ptr, &reverse_name(ip))
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.as_str(), self.name)
    }
}

/// An answer to a [`Query`], typed by its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Txt(DnsAnswer<TxtRecords>),
    Mx(DnsAnswer<Vec<String>>),
    Addr(DnsAnswer<Vec<IpAddr>>),
    MxRecords(DnsAnswer<Vec<MxHost>>),
    Host(DnsAnswer<HostAddrs>),
    A(DnsAnswer<Vec<Ipv4Addr>>),
    Ptr(DnsAnswer<Vec<String>>),
    Zone {
        keys: DnsAnswer<usize>,
        apex: DnsAnswer<String>,
    },
    Dnskey(DnsAnswer<usize>),
    Ds(DnsAnswer<usize>),
}

impl Answer {
    /// The kind of query this answers.
    pub fn kind(&self) -> QueryKind {
        match self {
            Answer::Txt(_) => QueryKind::Txt,
            Answer::Mx(_) => QueryKind::Mx,
            Answer::Addr(_) => QueryKind::Addr,
            Answer::MxRecords(_) => QueryKind::MxRecords,
            Answer::Host(_) => QueryKind::Host,
            Answer::A(_) => QueryKind::A,
            Answer::Ptr(_) => QueryKind::Ptr,
            Answer::Zone { .. } => QueryKind::Zone,
            Answer::Dnskey(_) => QueryKind::Dnskey,
            Answer::Ds(_) => QueryKind::Ds,
        }
    }

    /// The unknown answer of `kind`, with why.
    pub fn unknown(kind: QueryKind, why: &str) -> Answer {
        fn u<T>(why: &str) -> DnsAnswer<T> {
            DnsAnswer::Unknown(why.to_owned())
        }
        match kind {
            QueryKind::Txt => Answer::Txt(u(why)),
            QueryKind::Mx => Answer::Mx(u(why)),
            QueryKind::Addr => Answer::Addr(u(why)),
            QueryKind::MxRecords => Answer::MxRecords(u(why)),
            QueryKind::Host => Answer::Host(u(why)),
            QueryKind::A => Answer::A(u(why)),
            QueryKind::Ptr => Answer::Ptr(u(why)),
            QueryKind::Zone => Answer::Zone {
                keys: u(why),
                apex: u(why),
            },
            QueryKind::Dnskey => Answer::Dnskey(u(why)),
            QueryKind::Ds => Answer::Ds(u(why)),
        }
    }

    /// An empty list of records is "not found".
    fn normalized(self) -> Answer {
        match self {
            Answer::Txt(a) => Answer::Txt(empty_is_not_found(a)),
            Answer::Mx(a) => Answer::Mx(empty_is_not_found(a)),
            Answer::Addr(a) => Answer::Addr(empty_is_not_found(a)),
            Answer::MxRecords(a) => Answer::MxRecords(empty_is_not_found(a)),
            Answer::A(a) => Answer::A(empty_is_not_found(a)),
            Answer::Ptr(a) => Answer::Ptr(empty_is_not_found(a)),
            other => other,
        }
    }
}

/// Answers fetched so far, keyed by kind and normalised name. A question
/// that is absent has not been asked yet (different from
/// [`DnsAnswer::NotFound`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsFacts {
    answers: BTreeMap<Query, Answer>,
}

/// Reads the answer stored under `$kind` at `$name` as its variant.
macro_rules! get {
    ($self:ident, $kind:ident, $name:expr) => {
        match $self.answers.get(&Query::new(QueryKind::$kind, $name)) {
            Some(Answer::$kind(a)) => Some(a),
            _ => None,
        }
    };
}

impl DnsFacts {
    /// Stores the answer to `query`. An answer of the wrong kind for the query
    /// is stored under the answer's own kind.
    pub fn insert(&mut self, query: &Query, answer: Answer) {
        let key = Query::new(answer.kind(), &query.name);
        self.answers.insert(key, answer.normalized());
    }
    pub fn insert_txt(&mut self, name: &str, answer: DnsAnswer<TxtRecords>) {
        self.insert(&Query::txt(name), Answer::Txt(answer));
    }
    pub fn insert_mx(&mut self, name: &str, answer: DnsAnswer<Vec<String>>) {
        self.insert(&Query::mx(name), Answer::Mx(answer));
    }
    pub fn insert_addr(&mut self, name: &str, answer: DnsAnswer<Vec<IpAddr>>) {
        self.insert(&Query::addr(name), Answer::Addr(answer));
    }
    /// `None` when `name` has not been looked up.
    pub fn txt(&self, name: &str) -> Option<&DnsAnswer<TxtRecords>> {
        get!(self, Txt, name)
    }
    pub fn mx(&self, name: &str) -> Option<&DnsAnswer<Vec<String>>> {
        get!(self, Mx, name)
    }
    pub fn addr(&self, name: &str) -> Option<&DnsAnswer<Vec<IpAddr>>> {
        get!(self, Addr, name)
    }
    pub fn mx_records(&self, name: &str) -> Option<&DnsAnswer<Vec<MxHost>>> {
        get!(self, MxRecords, name)
    }
    pub fn host(&self, name: &str) -> Option<&DnsAnswer<HostAddrs>> {
        get!(self, Host, name)
    }
    pub fn a(&self, name: &str) -> Option<&DnsAnswer<Vec<Ipv4Addr>>> {
        get!(self, A, name)
    }
    pub fn ptr(&self, ip: IpAddr) -> Option<&DnsAnswer<Vec<String>>> {
        get!(self, Ptr, &reverse_name(ip))
    }
    pub fn dnskey(&self, name: &str) -> Option<&DnsAnswer<usize>> {
        get!(self, Dnskey, name)
    }
    pub fn ds(&self, name: &str) -> Option<&DnsAnswer<usize>> {
        get!(self, Ds, name)
    }
    /// The DNSKEY count at `name` and the apex of its zone.
    pub fn zone(&self, name: &str) -> Option<(&DnsAnswer<usize>, &DnsAnswer<String>)> {
        match self.answers.get(&Query::new(QueryKind::Zone, name)) {
            Some(Answer::Zone { keys, apex }) => Some((keys, apex)),
            _ => None,
        }
    }
    /// True when the answer to `query` is stored.
    pub fn contains(&self, query: &Query) -> bool {
        self.answers
            .contains_key(&Query::new(query.kind, &query.name))
    }
    /// Number of stored answers of all kinds.
    pub fn len(&self) -> usize {
        self.answers.len()
    }
    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }
}

fn empty_is_not_found<T>(answer: DnsAnswer<Vec<T>>) -> DnsAnswer<Vec<T>> {
    match answer {
        DnsAnswer::Found(v) if v.is_empty() => DnsAnswer::NotFound,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_normalise_names_and_empty_answers() {
        let mut facts = DnsFacts::default();
        facts.insert_txt("Example.COM.", DnsAnswer::Found(vec![]));
        assert_eq!(facts.txt("example.com"), Some(&DnsAnswer::NotFound));
        assert!(facts.contains(&Query::txt("EXAMPLE.com")));
        assert!(!facts.contains(&Query::mx("example.com")));
        facts.insert(
            &Query::addr("a.example"),
            Answer::Addr(DnsAnswer::Unknown("timeout".into())),
        );
        assert_eq!(
            facts.addr("A.example."),
            Some(&DnsAnswer::Unknown("timeout".into()))
        );
        assert_eq!(facts.len(), 2);
    }

    #[test]
    fn answers_are_kept_by_kind() {
        let mut facts = DnsFacts::default();
        let ip: IpAddr = "192.0.2.5".parse().unwrap();
        facts.insert(
            &Query::ptr(ip),
            Answer::Ptr(DnsAnswer::Found(vec!["mx.example".into()])),
        );
        facts.insert(&Query::txt("x.example"), Answer::Ds(DnsAnswer::Found(1)));
        assert_eq!(
            facts.ptr(ip),
            Some(&DnsAnswer::Found(vec!["mx.example".into()]))
        );
        assert!(facts.contains(&Query::new(QueryKind::Ptr, "5.2.0.192.IN-ADDR.arpa.")));
        assert_eq!(facts.ds("x.example"), Some(&DnsAnswer::Found(1)));
        assert_eq!(
            facts.txt("x.example"),
            None,
            "stored under the answer's kind"
        );
    }
}
