//! DMARC aggregate (RFC 7489 appendix C, DMARCbis) and SMTP TLS (RFC 8460)
//! reports: bytes in, typed values out. No I/O, and no import of any stage,
//! so the daemon's ingestion and the CLI use the same values.
//!
//! - [`container`] — what the bytes are: plain XML or JSON, gzip (any member
//!   framing), zip, or a MIME message carrying one of those; every inflation
//!   is streamed against a byte cap ([`Limits`]).
//! - [`dmarc`] — the aggregate XML, read leniently (upper-case values, the old
//!   draft's `identities`, DMARCbis elements, unknown elements skipped) but
//!   never resolving an entity.
//! - [`tlsrpt`] — the TLS-RPT JSON.
//! - [`reporter`] — which major receiver sent a report (a bounded label).
//! - [`cli`] — `mailcanary reports parse`.
//!
//! mail-auth 0.13's `report` module was tried first on these fixtures and is
//! not used: values are matched case-sensitively (`PASS` reads as
//! "unspecified", so pass counts go wrong); invalid UTF-8 or a Latin-1 byte
//! fails the whole report (quick-xml 0.42 checks UTF-8); only the first gzip
//! member is read, so a report in several members is cut short; the old
//! draft's `<identities>` is dropped; an undeclared entity such as `&lol9;`
//! is kept as its name (`lol9`) rather than refused; records are not capped;
//! and one unparsable `sending-mta-ip` fails a whole TLS report.
//! docs/reports.md has the table.

pub mod cli;
pub mod container;
pub mod dmarc;
pub mod reporter;
pub mod tlsrpt;

pub use dmarc::{AggregateReport, DkimAuth, PolicyPublished, Record, SpfAuth};
pub use reporter::Reporter;
pub use tlsrpt::{FailureDetail, TlsPolicy, TlsReport};

/// Defines a closed vocabulary: the enum, `ALL` in declaration order and
/// `as_str` (the value used in JSON and as a metric label), plus `parse`, which
/// matches ASCII case-insensitively after trimming and falls back to the
/// given variant for anything else.
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        pub enum $name:ident fallback $fallback:ident {
            $($(#[$vmeta:meta])* $var:ident = $s:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $var,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$var,)+];

            /// The value's name in JSON and metric labels.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$var => $s,)+
                }
            }

            /// Reads a report's value: trimmed, any ASCII case; anything
            /// unknown is the fallback.
            pub fn parse(s: &str) -> Self {
                let s = s.trim();
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str().eq_ignore_ascii_case(s))
                    .unwrap_or($name::$fallback)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use vocabulary;

vocabulary! {
    /// The two kinds of report this module reads.
    pub enum ReportKind fallback DmarcAggregate {
        /// A DMARC aggregate (`rua`) report.
        DmarcAggregate = "dmarc_aggregate",
        /// An SMTP TLS report (RFC 8460).
        TlsRpt = "tls_rpt",
    }
}

/// A parsed report of either kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    /// A DMARC aggregate report.
    Aggregate(AggregateReport),
    /// An SMTP TLS report.
    Tls(TlsReport),
}

impl Report {
    /// Which kind of report this is.
    pub fn kind(&self) -> ReportKind {
        match self {
            Report::Aggregate(_) => ReportKind::DmarcAggregate,
            Report::Tls(_) => ReportKind::TlsRpt,
        }
    }

    /// The receiver that sent it.
    pub fn reporter(&self) -> Reporter {
        match self {
            Report::Aggregate(r) => r.reporter,
            Report::Tls(r) => r.reporter,
        }
    }

    /// The report id as the reporter wrote it (with the reporter, the
    /// de-duplication key).
    pub fn report_id(&self) -> &str {
        match self {
            Report::Aggregate(r) => &r.report_id,
            Report::Tls(r) => &r.report_id,
        }
    }
}

/// Caps on what one report may cost. Decompression is streamed and stops at
/// `max_inflated`, so a bomb costs at most that much memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest input accepted, in bytes.
    pub max_input: usize,
    /// Largest output of one decompression (gzip member chain or zip entry), in bytes.
    pub max_inflated: usize,
    /// Most DMARC records, or TLS policies plus failure details, in one report.
    pub max_records: usize,
    /// Most containers nested in each other (message → zip → gzip …).
    pub max_depth: usize,
}

/// 64 MiB: a report with 10,000 records is about 6 MB of XML; the largest
/// daily reports of big senders stay well under this.
pub const DEFAULT_MAX_BYTES: usize = 64 << 20;
/// Records per report: 10× the benchmark's large report.
pub const DEFAULT_MAX_RECORDS: usize = 250_000;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_input: DEFAULT_MAX_BYTES,
            max_inflated: DEFAULT_MAX_BYTES,
            max_records: DEFAULT_MAX_RECORDS,
            max_depth: 4,
        }
    }
}

/// Why bytes could not be read as a report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// The input itself is over the size limit.
    #[error("input is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// Bytes given.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Decompressing would pass the limit: a decompression bomb or an oversized report.
    #[error("decompresses to more than {limit} bytes (refused as a decompression bomb)")]
    InflatedTooLarge {
        /// The limit.
        limit: usize,
    },
    /// More records (or TLS policies and failure details) than the limit.
    #[error("more than {limit} records (refused)")]
    TooManyRecords {
        /// The limit.
        limit: usize,
    },
    /// Containers nested deeper than the limit.
    #[error("containers nested more than {limit} deep")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// The gzip data is corrupt or truncated.
    #[error("gzip: {0}")]
    Gzip(String),
    /// The zip archive cannot be read.
    #[error("zip: {0}")]
    Zip(String),
    /// The zip archive holds no `.xml`, `.json` or `.gz` file.
    #[error("zip archive holds no report file")]
    EmptyArchive,
    /// The MIME message has no part that reads as a report.
    #[error("message carries no report attachment")]
    NoReportInMessage,
    /// The bytes are none of XML, JSON, gzip, zip or a MIME message.
    #[error("not a report: neither XML, JSON, gzip, zip nor a MIME message")]
    Unrecognized,
    /// The XML is not well formed.
    #[error("XML at byte {position}: {message}")]
    Xml {
        /// Byte offset in the (decompressed) XML.
        position: u64,
        /// What the XML reader found.
        message: String,
    },
    /// The XML uses an entity other than the five predefined ones; entities are never expanded.
    #[error("XML entity `&{0};` is not expanded (entities are refused)")]
    Entity(String),
    /// Well-formed XML whose root is not `<feedback>`.
    #[error("XML root is <{0}>, not a DMARC aggregate report's <feedback>")]
    NotAggregate(String),
    /// A required element or member is missing.
    #[error("missing {0}")]
    Missing(&'static str),
    /// A value that must be a number or date is not one.
    #[error("{field}: `{value}` is not valid")]
    BadValue {
        /// Where the value is.
        field: &'static str,
        /// The value, shortened.
        value: String,
    },
    /// The JSON is not well formed.
    #[error("JSON: {0}")]
    Json(String),
}

impl ReportError {
    /// A bad value, quoting at most 64 characters of it.
    pub(crate) fn bad_value(field: &'static str, value: &str) -> Self {
        let value = match value.char_indices().nth(64) {
            Some((i, _)) => format!("{}…", &value[..i]),
            None => value.to_owned(),
        };
        ReportError::BadValue { field, value }
    }
}

/// Reads one report from bytes in any form it arrives in: `.xml`, `.xml.gz`,
/// `.zip`, `.json`, `.json.gz`, or a MIME message carrying one.
pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Report, ReportError> {
    container::parse_any(bytes, limits, 0)
}

/// Sums counts without wrapping: a hostile report cannot overflow a total.
pub(crate) fn sum(counts: impl Iterator<Item = u64>) -> u64 {
    counts.fold(0u64, u64::saturating_add)
}
