//! The DNS client, shared by the audit and the probe's DKIM re-verification.
//! A leaf module: it imports no stage.
//!
//! Every outcome of a query is a [`DnsAnswer`]: [`DnsAnswer::Found`],
//! [`DnsAnswer::NotFound`] (NXDOMAIN, or NOERROR without records of the type:
//! NODATA) or [`DnsAnswer::Unknown`] (timeout, SERVFAIL, REFUSED, network
//! error). An answer that could not be obtained never reads as "missing".
//!
//! # Layout
//!
//! - this file: [`DnsAnswer`], [`TxtRecords`] and [`join_character_strings`].
//! - [`name`]: name syntax (normalisation, valid names, host names) and the
//!   reverse-lookup names of addresses (RFC 1035 §3.5, RFC 3596 §2.5).
//! - [`facts`]: a [`Query`] (kind and name), its typed [`Answer`], and
//!   [`DnsFacts`], the answers fetched so far, which pure code reads.
//! - [`lookup`]: [`DnsLookup`], the resolver: no cache, a timeout per query,
//!   a bound on queries in flight, and [`DnsLookup::for_run`], a handle that
//!   asks each (name, type) once per run. [`DnsLookup::answer`] answers a
//!   [`Query`].
//! - [`wire`]: the client under it: hickory's multiplexer on one UDP socket
//!   per run, TCP for truncated answers, CNAMEs followed, answers checked
//!   against the server and the question.

pub mod facts;
pub mod lookup;
pub mod name;
pub mod wire;

pub use facts::{Answer, DnsFacts, Query, QueryKind};
pub use lookup::{
    DnsLookup, HostAddrs, LookupSetupError, MxHost, ResolverSettings, DEFAULT_MAX_IN_FLIGHT,
};

/// The outcome of one DNS query, as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsAnswer<T> {
    /// The server answered with records. An empty `T` is read as [`DnsAnswer::NotFound`].
    Found(T),
    /// NXDOMAIN, or NOERROR with no records of the type (NODATA). Both are
    /// "void lookups" in RFC 7208 §4.6.4.
    NotFound,
    /// No usable answer (timeout, SERVFAIL, REFUSED, network error). Never
    /// treated as "missing"; the string says why, for a finding's message.
    Unknown(String),
}

impl<T> DnsAnswer<T> {
    /// Borrows the found value.
    pub fn as_ref(&self) -> DnsAnswer<&T> {
        match self {
            DnsAnswer::Found(v) => DnsAnswer::Found(v),
            DnsAnswer::NotFound => DnsAnswer::NotFound,
            DnsAnswer::Unknown(e) => DnsAnswer::Unknown(e.clone()),
        }
    }

    /// Maps the found value.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> DnsAnswer<U> {
        match self {
            DnsAnswer::Found(v) => DnsAnswer::Found(f(v)),
            DnsAnswer::NotFound => DnsAnswer::NotFound,
            DnsAnswer::Unknown(e) => DnsAnswer::Unknown(e),
        }
    }
}

/// TXT records of one name: one entry per record, each already joined from
/// its character-strings with [`join_character_strings`].
pub type TxtRecords = Vec<Vec<u8>>;

/// Joins the character-strings of one TXT record without separators, as
/// RFC 7208 §3.3 (and RFC 6376 §3.6.2.2, RFC 7489 §6.1) require:
/// `"v=spf1 ip4:192.0.2.0/24" " -all"` is the record `v=spf1 ip4:192.0.2.0/24 -all`.
pub fn join_character_strings<S: AsRef<[u8]>>(strings: &[S]) -> Vec<u8> {
    let mut out = Vec::with_capacity(strings.iter().map(|s| s.as_ref().len()).sum());
    for s in strings {
        out.extend_from_slice(s.as_ref());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_without_separator() {
        assert_eq!(
            join_character_strings(&["v=spf1 ip4:192.0.2.0/24", " -all"]),
            b"v=spf1 ip4:192.0.2.0/24 -all"
        );
        let none: [&[u8]; 0] = [];
        assert!(join_character_strings(&none).is_empty());
    }
}
