//! Authentication-Results header fields (RFC 8601, read compatibly with RFC
//! 7601 and RFC 5451): parse one field, then pick the receiver's.
//!
//! ```text
//! authres-payload = [CFWS] authserv-id [ CFWS authres-version ]
//!                   ( no-result / 1*resinfo ) [CFWS] CRLF
//! authserv-id     = value                    ; token or quoted-string
//! no-result       = [CFWS] ";" [CFWS] "none"
//! resinfo         = [CFWS] ";" methodspec [ CFWS reasonspec ] [ CFWS 1*propspec ]
//! methodspec      = [CFWS] method [CFWS] "=" [CFWS] result
//! method          = Keyword [ [CFWS] "/" [CFWS] method-version ]
//! reasonspec      = "reason" [CFWS] "=" [CFWS] value
//! propspec        = ptype [CFWS] "." [CFWS] property [CFWS] "=" pvalue
//! ```
//! (RFC 8601 §2.2.) The parser is lenient where real receivers are: comments
//! anywhere, `reason=` after the properties (rspamd), bare `key=value` pairs
//! such as Microsoft's `action=none`, and Microsoft 365's fields that have no
//! authserv-id at all (`Authentication-Results: spf=pass ...`). What it cannot
//! read is kept in [`AuthResults::unparseable`]; it never fails or panics.
//!
//! # Which header counts: the trust rule
//!
//! A receiver adds its field at the top of the header section, as a trace
//! field (RFC 8601 §4); everything a sender wrote sits below everything the
//! receiver added. A sender can still write a field that claims the seed's
//! authserv-id, and although RFC 8601 §5 asks receivers to delete such
//! fields, many do not (rspamd 3.4's `milter_headers` does by default: its
//! `remove = 0` drops every existing field before adding its own). Nor does
//! position tell which of several matching fields are genuine: Gmail and
//! milter-based receivers (rspamd, OpenDKIM) put their field *below* their
//! own `Received` line, so a forged field at the top of the sender's header
//! lands directly under the real one, with nothing the receiver wrote in
//! between. Merging per method (topmost `spf`, topmost `dmarc`, ...) would let
//! a forger add any method the receiver did not report.
//!
//! So [`select`] counts **only the topmost field whose authserv-id matches**
//! the seed's configured one ([`TrustedId`], compared case-insensitively as
//! domain names are). Lower matching fields are never merged in, only counted
//! ([`AuthVerdict::ignored_below`]): they are either forgeries or, for
//! receivers that write one field per milter, results this rule deliberately
//! gives up. Without a configured authserv-id nothing is trusted
//! ([`AuthSource::NotConfigured`]). The residual risk: a receiver that writes
//! no field at all but keeps a forged one is reported as the forger wrote it.

use serde::{Serialize, Serializer};

use crate::text::truncate;

/// Longest text kept from a field (ids, values, comments, reasons), in bytes.
pub const MAX_TEXT: usize = 256;
/// Most resinfo entries kept from one field; later ones are counted, not kept.
pub const MAX_RESULTS: usize = 64;
/// Most properties kept per result.
const MAX_PROPS: usize = 16;
/// Most comments kept per result.
const MAX_COMMENTS: usize = 4;
/// Most unparseable fragments kept per field.
const MAX_UNPARSEABLE: usize = 8;
/// Longest method, result or property keyword accepted.
const MAX_KEYWORD: usize = 64;
/// Most distinct authserv-ids remembered in [`AuthVerdict::authserv_ids_seen`].
const MAX_IDS_SEEN: usize = 8;

/// The metric labels a method's result can take (`mailcanary_auth_result{result}`).
pub const RESULT_LABELS: [&str; 9] = [
    "pass",
    "fail",
    "softfail",
    "neutral",
    "none",
    "temperror",
    "permerror",
    "policy",
    "missing",
];

/// The methods exported as metrics; others are kept in [`AuthVerdict::results`] only.
pub const EXPORTED_METHODS: [Method; 4] = [Method::Spf, Method::Dkim, Method::Dmarc, Method::Arc];

/// A result value (RFC 8601 §2.7 and the IANA "Email Authentication Result Names" registry).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AuthResult {
    /// `pass`.
    Pass,
    /// `fail`; also RFC 5451's `hardfail`, the old name of SPF `fail` (RFC 5451 §2.4.2).
    Fail,
    /// `softfail` (SPF, RFC 7208 §2.6.5).
    SoftFail,
    /// `neutral`.
    Neutral,
    /// `none`: nothing to evaluate (unsigned, no record).
    None,
    /// `temperror`: a transient error, usually DNS.
    TempError,
    /// `permerror`: a permanent error, usually a broken record.
    PermError,
    /// `policy`: the check passed but local policy rejected the result.
    Policy,
    /// Any other keyword, lower-cased: registered names (`unknown`, `discard`,
    /// `nxdomain`, `declined`, `skipped`) or a receiver's own (Microsoft's `bestguesspass`).
    Other(String),
}

impl AuthResult {
    /// Reads a result keyword, case-insensitively.
    pub fn from_keyword(keyword: &str) -> AuthResult {
        let lower = keyword.to_ascii_lowercase();
        match lower.as_str() {
            "pass" => AuthResult::Pass,
            "fail" | "hardfail" => AuthResult::Fail,
            "softfail" => AuthResult::SoftFail,
            "neutral" => AuthResult::Neutral,
            "none" => AuthResult::None,
            "temperror" => AuthResult::TempError,
            "permerror" => AuthResult::PermError,
            "policy" => AuthResult::Policy,
            _ => AuthResult::Other(lower),
        }
    }

    /// The keyword as written in the field (lower-case).
    pub fn as_str(&self) -> &str {
        match self {
            AuthResult::Pass => "pass",
            AuthResult::Fail => "fail",
            AuthResult::SoftFail => "softfail",
            AuthResult::Neutral => "neutral",
            AuthResult::None => "none",
            AuthResult::TempError => "temperror",
            AuthResult::PermError => "permerror",
            AuthResult::Policy => "policy",
            AuthResult::Other(s) => s,
        }
    }

    /// The bounded metric label (one of [`RESULT_LABELS`] but `missing`).
    ///
    /// Other keywords map by meaning: DKIM-ADSP's `discard` and `nxdomain`
    /// (RFC 5617) are failures; anything else (`unknown`, BIMI's
    /// `declined`/`skipped`, unregistered words) states no usable result: `none`.
    pub fn label(&self) -> &'static str {
        match self {
            AuthResult::Pass => "pass",
            AuthResult::Fail => "fail",
            AuthResult::SoftFail => "softfail",
            AuthResult::Neutral => "neutral",
            AuthResult::None => "none",
            AuthResult::TempError => "temperror",
            AuthResult::PermError => "permerror",
            AuthResult::Policy => "policy",
            AuthResult::Other(s) => match s.as_str() {
                "discard" | "nxdomain" => "fail",
                _ => "none",
            },
        }
    }
}

impl Serialize for AuthResult {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// An authentication method (RFC 8601 §2.7; IANA "Email Authentication Methods").
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// SPF, RFC 7208.
    Spf,
    /// DKIM, RFC 6376; one entry per signature.
    Dkim,
    /// DMARC, RFC 7489.
    Dmarc,
    /// ARC, RFC 8617.
    Arc,
    /// Any other method keyword, lower-cased (`iprev`, `auth`, `compauth`, `bimi`, ...).
    Other(String),
}

impl Method {
    /// Reads a method keyword, case-insensitively.
    pub fn from_keyword(keyword: &str) -> Method {
        let lower = keyword.to_ascii_lowercase();
        match lower.as_str() {
            "spf" => Method::Spf,
            "dkim" => Method::Dkim,
            "dmarc" => Method::Dmarc,
            "arc" => Method::Arc,
            _ => Method::Other(lower),
        }
    }

    /// The lower-case keyword; the `method` label for the exported ones.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Spf => "spf",
            Method::Dkim => "dkim",
            Method::Dmarc => "dmarc",
            Method::Arc => "arc",
            Method::Other(s) => s,
        }
    }
}

impl Serialize for Method {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One `ptype.property=value` (RFC 8601 §2.3), or a bare `key=value` as Microsoft writes (`action=none`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Property {
    /// Lower-cased key: `smtp.mailfrom`, `header.d`, `header.from`, `header.b`, `action`.
    pub key: String,
    /// The value as written, quotes removed.
    pub value: String,
}

/// One method's result from a field (a resinfo, RFC 8601 §2.2).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MethodResult {
    /// The method.
    pub method: Method,
    /// Method version, `dkim/1` → 1 (RFC 8601 §2.2 method-version).
    pub version: Option<u32>,
    /// The result.
    pub result: AuthResult,
    /// `reason=` text (RFC 8601 §2.2 reasonspec).
    pub reason: Option<String>,
    /// Properties in field order.
    pub props: Vec<Property>,
    /// Comments around the result, parentheses removed: `sender IP is 192.0.2.1`.
    pub comments: Vec<String>,
}

impl MethodResult {
    /// The first property with this key (ASCII case-insensitive), e.g. `header.d`.
    pub fn prop(&self, key: &str) -> Option<&str> {
        self.props
            .iter()
            .find(|p| p.key.eq_ignore_ascii_case(key))
            .map(|p| p.value.as_str())
    }
}

/// One parsed Authentication-Results field.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AuthResults {
    /// The authserv-id (RFC 8601 §2.5); `None` when absent (Microsoft 365) or unreadable.
    pub authserv_id: Option<String>,
    /// `authres-version` after the authserv-id, if any (RFC 8601 §2.2).
    pub version: Option<u32>,
    /// Results in field order; several `dkim` entries when there are several signatures.
    pub results: Vec<MethodResult>,
    /// Fragments that could not be read, shortened; empty for a well-formed field.
    pub unparseable: Vec<String>,
}

/// The authserv-id a seed trusts, from its configuration (RFC 8601 §2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustedId {
    /// This authserv-id, compared ASCII case-insensitively (`mx.google.com`).
    Exact(String),
    /// This domain and its subdomains, configured with a leading dot
    /// (`.yahoo.com`): for receivers whose authserv-id names the MX host.
    Subdomains(String),
    /// Fields without an authserv-id, configured as the empty string:
    /// Microsoft 365 and Outlook.com write them that way.
    Absent,
}

impl TrustedId {
    /// Reads the configured string: `""` → [`TrustedId::Absent`], `.domain` →
    /// [`TrustedId::Subdomains`], anything else → [`TrustedId::Exact`].
    pub fn new(configured: &str) -> TrustedId {
        let c = configured.trim();
        if c.is_empty() {
            TrustedId::Absent
        } else if let Some(domain) = c.strip_prefix('.') {
            TrustedId::Subdomains(domain.to_ascii_lowercase())
        } else {
            TrustedId::Exact(c.to_ascii_lowercase())
        }
    }

    /// Whether a field's authserv-id (`None` when absent) is the trusted one.
    fn matches(&self, head: &Head) -> bool {
        match (self, head) {
            (TrustedId::Absent, Head::Absent) => true,
            (TrustedId::Exact(want), Head::Id(id)) => id.eq_ignore_ascii_case(want),
            (TrustedId::Subdomains(want), Head::Id(id)) => {
                let id = id.to_ascii_lowercase();
                id == *want
                    || id
                        .strip_suffix(want.as_str())
                        .is_some_and(|rest| rest.ends_with('.'))
            }
            _ => false,
        }
    }
}

/// Where the verdicts came from, or why there are none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum AuthSource {
    /// The topmost field with the trusted authserv-id.
    Trusted {
        /// Its authserv-id as written (`None` for Microsoft's id-less form).
        authserv_id: Option<String>,
    },
    /// No field carries the trusted authserv-id: every method is `missing`.
    Missing,
    /// The seed has no authserv-id configured, so no field is trusted: every method is `missing`.
    NotConfigured,
}

/// The receiver's authentication verdicts on one message, after the trust rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuthVerdict {
    /// Which field the results come from, or why there is none.
    pub source: AuthSource,
    /// The trusted field's results in field order; empty unless [`AuthSource::Trusted`].
    pub results: Vec<MethodResult>,
    /// What could not be read in the trusted field.
    pub unparseable: Vec<String>,
    /// Fields with the trusted authserv-id below the one used: ignored (possible forgeries, RFC 8601 §5).
    pub ignored_below: usize,
    /// Authentication-Results fields in the message, trusted or not.
    pub headers_seen: usize,
    /// Distinct authserv-ids seen, topmost first (`None`: absent); a hint for configuring the seed.
    pub authserv_ids_seen: Vec<Option<String>>,
}

impl AuthVerdict {
    /// The trusted results for one method, in field order.
    pub fn results_for<'a>(&'a self, method: &'a Method) -> impl Iterator<Item = &'a MethodResult> {
        self.results.iter().filter(move |r| r.method == *method)
    }

    /// The metric label for one method, one of [`RESULT_LABELS`].
    ///
    /// `missing` when no field is trusted; `none` when the trusted field does
    /// not mention the method. With several results (one per DKIM signature)
    /// any `pass` wins, as one valid signature is enough (RFC 6376 §4.2);
    /// otherwise the most severe is shown (fail, permerror, temperror,
    /// softfail, policy, neutral, none).
    pub fn label(&self, method: &Method) -> &'static str {
        if !matches!(self.source, AuthSource::Trusted { .. }) {
            return "missing";
        }
        const SEVERITY: [&str; 8] = [
            "pass",
            "fail",
            "permerror",
            "temperror",
            "softfail",
            "policy",
            "neutral",
            "none",
        ];
        self.results_for(method)
            .map(|r| r.result.label())
            .min_by_key(|l| {
                SEVERITY
                    .iter()
                    .position(|s| s == l)
                    .unwrap_or(SEVERITY.len())
            })
            .unwrap_or("none")
    }
}

/// Picks the receiver's verdicts from a message's Authentication-Results
/// values, given top to bottom as they appear in the message (see the module
/// doc for the rule). `trusted` is the seed's configured authserv-id.
pub fn select<'a, I>(values: I, trusted: Option<&TrustedId>) -> AuthVerdict
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut headers_seen = 0usize;
    let mut ids: Vec<Option<String>> = Vec::new();
    let mut chosen: Option<&[u8]> = None;
    let mut ignored_below = 0usize;
    for value in values {
        headers_seen += 1;
        let head = read_head(&mut Cursor::new(value));
        let id = match &head {
            Head::Id(id) => Some(id.clone()),
            Head::Absent => None,
            Head::Unreadable => continue,
        };
        if ids.len() < MAX_IDS_SEEN && !ids.iter().any(|seen| eq_id(seen, &id)) {
            ids.push(id);
        }
        if trusted.is_some_and(|t| t.matches(&head)) {
            if chosen.is_none() {
                chosen = Some(value);
            } else {
                ignored_below += 1;
            }
        }
    }
    let (source, results, unparseable) = match (trusted, chosen) {
        (None, _) => (AuthSource::NotConfigured, Vec::new(), Vec::new()),
        (Some(_), None) => (AuthSource::Missing, Vec::new(), Vec::new()),
        (Some(_), Some(value)) => {
            let parsed = parse(value);
            let source = AuthSource::Trusted {
                authserv_id: parsed.authserv_id,
            };
            (source, parsed.results, parsed.unparseable)
        }
    };
    AuthVerdict {
        source,
        results,
        unparseable,
        ignored_below,
        headers_seen,
        authserv_ids_seen: ids,
    }
}

/// Compares two optional authserv-ids case-insensitively.
fn eq_id(a: &Option<String>, b: &Option<String>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        (None, None) => true,
        _ => false,
    }
}

/// Parses one field value (the bytes after `Authentication-Results:`, folded or not).
pub fn parse(value: &[u8]) -> AuthResults {
    let mut c = Cursor::new(value);
    let mut out = AuthResults::default();
    let mut bare_first = false;
    match read_head(&mut c) {
        Head::Id(id) => {
            out.authserv_id = Some(id);
            c.cfws(None);
            if c.peek().is_some_and(|b| b.is_ascii_digit()) {
                let digits = c.word(b";");
                out.version = parse_u32(digits);
                if out.version.is_none() {
                    note(&mut out.unparseable, digits);
                }
            }
        }
        Head::Absent => bare_first = true,
        Head::Unreadable => out.unparseable.push("no authserv-id".to_string()),
    }
    let mut dropped = 0usize;
    loop {
        c.cfws(None);
        match c.peek() {
            None => break,
            Some(b';') => c.bump(),
            Some(_) if bare_first => {}
            Some(_) => {
                let start = c.pos;
                c.skip_resinfo();
                note(&mut out.unparseable, &value[start..c.pos]);
                continue;
            }
        }
        bare_first = false;
        if out.results.len() >= MAX_RESULTS {
            let start = c.pos;
            c.skip_resinfo();
            if !is_blank(&value[start..c.pos]) {
                dropped += 1;
            }
            continue;
        }
        match resinfo(&mut c) {
            Resinfo::Empty | Resinfo::NoResult => {}
            Resinfo::Result(r) => out.results.push(r),
            Resinfo::Unparseable(start) => {
                c.skip_resinfo();
                note(&mut out.unparseable, &value[start..c.pos]);
            }
        }
    }
    if dropped > 0 {
        out.unparseable.push(format!(
            "{dropped} more results not kept (limit {MAX_RESULTS})"
        ));
    }
    out
}

/// What precedes the first resinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Head {
    /// An authserv-id.
    Id(String),
    /// None: the field starts with a resinfo (Microsoft 365's form).
    Absent,
    /// Neither: empty, or nothing readable before the first `;`.
    Unreadable,
}

/// Reads the authserv-id, leaving the cursor after it; for [`Head::Absent`]
/// the cursor is left at the start of the first resinfo.
fn read_head(c: &mut Cursor<'_>) -> Head {
    c.cfws(None);
    let start = c.pos;
    let id = match c.peek() {
        Some(b'"') => c.quoted(),
        _ => text(c.word(b";=")),
    };
    c.cfws(None);
    if c.peek() == Some(b'=') {
        if id.is_empty() {
            return Head::Unreadable;
        }
        c.pos = start;
        return Head::Absent;
    }
    if id.is_empty() {
        Head::Unreadable
    } else {
        Head::Id(id)
    }
}

/// The outcome of reading one resinfo.
enum Resinfo {
    /// Nothing between two semicolons.
    Empty,
    /// `none`: the receiver applied no method (RFC 8601 §2.2 no-result).
    NoResult,
    /// A method's result.
    Result(MethodResult),
    /// Unreadable from this offset; the caller skips to the next `;`.
    Unparseable(usize),
}

/// Reads one resinfo after its `;` (or at the start, for Microsoft's id-less form).
fn resinfo(c: &mut Cursor<'_>) -> Resinfo {
    let start = c.pos;
    let mut comments = Vec::new();
    c.cfws(Some(&mut comments));
    let method = c.word(b"=/;");
    if method.is_empty() {
        return match c.peek() {
            None | Some(b';') => Resinfo::Empty,
            _ => Resinfo::Unparseable(start),
        };
    }
    c.cfws(Some(&mut comments));
    if method.eq_ignore_ascii_case(b"none") && matches!(c.peek(), None | Some(b';')) {
        return Resinfo::NoResult;
    }
    let Some(method) = keyword(method) else {
        return Resinfo::Unparseable(start);
    };
    let mut version = None;
    if c.peek() == Some(b'/') {
        c.bump();
        c.cfws(Some(&mut comments));
        version = parse_u32(c.word(b"=;/"));
        if version.is_none() {
            return Resinfo::Unparseable(start);
        }
        c.cfws(Some(&mut comments));
    }
    if c.peek() != Some(b'=') {
        return Resinfo::Unparseable(start);
    }
    c.bump();
    c.cfws(Some(&mut comments));
    let Some(result) = keyword(c.word(b";=")) else {
        return Resinfo::Unparseable(start);
    };
    let mut out = MethodResult {
        method: Method::from_keyword(&method),
        version,
        result: AuthResult::from_keyword(&result),
        reason: None,
        props: Vec::new(),
        comments: Vec::new(),
    };
    loop {
        c.cfws(Some(&mut comments));
        match c.peek() {
            None | Some(b';') => break,
            Some(b'"') => {
                // A stray quoted string where a key should be: skip it.
                c.quoted();
                continue;
            }
            Some(b'=') => {
                c.bump();
                continue;
            }
            Some(_) => {}
        }
        let key = c.word(b"=;");
        c.cfws(Some(&mut comments));
        if c.peek() != Some(b'=') {
            // A stray word without `=`: not a property; skip it.
            continue;
        }
        c.bump();
        c.cfws(Some(&mut comments));
        let value = match c.peek() {
            Some(b'"') => c.quoted(),
            _ => text(c.word(b";")),
        };
        let Some(key) = keyword(key) else { continue };
        let key = key.to_ascii_lowercase();
        if key == "reason" {
            out.reason.get_or_insert(value);
        } else if out.props.len() < MAX_PROPS {
            out.props.push(Property { key, value });
        }
    }
    comments.truncate(MAX_COMMENTS);
    out.comments = comments;
    Resinfo::Result(out)
}

/// A byte cursor over a field value.
struct Cursor<'a> {
    /// The value.
    b: &'a [u8],
    /// Offset of the next byte to read.
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// Starts at the beginning of `b`.
    fn new(b: &'a [u8]) -> Self {
        Cursor { b, pos: 0 }
    }

    /// The byte under the cursor.
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    /// Advances one byte (never past the end).
    fn bump(&mut self) {
        self.pos = (self.pos + 1).min(self.b.len());
    }

    /// Skips white space, line folds and comments (RFC 5322 §3.2.2 CFWS),
    /// keeping each comment's text when `comments` is given.
    fn cfws(&mut self, mut comments: Option<&mut Vec<String>>) {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\r' | b'\n') => self.bump(),
                Some(b'(') => {
                    let comment = self.comment();
                    if let Some(list) = comments.as_deref_mut() {
                        if list.len() < MAX_COMMENTS && !comment.is_empty() {
                            list.push(comment);
                        }
                    }
                }
                _ => return,
            }
        }
    }

    /// Reads a comment at `(` up to its matching `)`, nested, with quoted-pairs;
    /// an unterminated comment runs to the end of the value.
    fn comment(&mut self) -> String {
        let start = self.pos + 1;
        let mut depth = 0usize;
        while let Some(b) = self.peek() {
            self.bump();
            match b {
                b'\\' => self.bump(),
                b'(' => depth += 1,
                b')' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return text(self.b.get(start..self.pos - 1).unwrap_or_default());
                    }
                }
                _ => {}
            }
        }
        text(self.b.get(start..).unwrap_or_default())
    }

    /// Reads a quoted-string at `"` (RFC 5322 §3.2.4), unescaping quoted-pairs;
    /// an unterminated one runs to the end of the value.
    fn quoted(&mut self) -> String {
        self.bump();
        let mut raw = Vec::new();
        while let Some(b) = self.peek() {
            self.bump();
            match b {
                b'"' => break,
                b'\\' => {
                    if let Some(next) = self.peek() {
                        raw.push(next);
                        self.bump();
                    }
                }
                _ => {
                    if raw.len() <= MAX_TEXT * 4 {
                        raw.push(b);
                    }
                }
            }
        }
        text(&raw)
    }

    /// Reads a run of bytes up to white space, `(`, `"` or any byte in `stop`.
    fn word(&mut self, stop: &[u8]) -> &'a [u8] {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'(' | b'"') || stop.contains(&b) {
                break;
            }
            self.bump();
        }
        &self.b[start..self.pos]
    }

    /// Skips to the next `;` outside comments and quoted strings (not consumed).
    fn skip_resinfo(&mut self) {
        while let Some(b) = self.peek() {
            match b {
                b';' => return,
                b'(' => {
                    self.comment();
                }
                b'"' => {
                    self.quoted();
                }
                _ => self.bump(),
            }
        }
    }
}

/// A Keyword (RFC 8601 §2.2: an RFC 5321 ldh-str; `_` and `.` tolerated), or `None`.
fn keyword(b: &[u8]) -> Option<String> {
    let ok = !b.is_empty()
        && b.len() <= MAX_KEYWORD
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    // All bytes are ASCII here, so the conversion is lossless.
    ok.then(|| String::from_utf8_lossy(b).into_owned())
}

/// Reads 1*DIGIT as a `u32`.
fn parse_u32(b: &[u8]) -> Option<u32> {
    if b.is_empty() || b.len() > 9 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// Whether the bytes are only white space and semicolons.
fn is_blank(b: &[u8]) -> bool {
    b.iter().all(|c| c.is_ascii_whitespace() || *c == b';')
}

/// Records an unreadable fragment, shortened, up to [`MAX_UNPARSEABLE`].
fn note(list: &mut Vec<String>, fragment: &[u8]) {
    let t = text(fragment);
    if list.len() < MAX_UNPARSEABLE && !t.is_empty() {
        list.push(t);
    }
}

/// Bytes as display text: invalid UTF-8 replaced, folding white space
/// collapsed to single spaces, trimmed, cut to [`MAX_TEXT`] bytes.
fn text(b: &[u8]) -> String {
    let cut = &b[..b.len().min(MAX_TEXT * 4)];
    let s = String::from_utf8_lossy(cut);
    let mut out = String::with_capacity(s.len().min(MAX_TEXT));
    for word in s.split(|c: char| c.is_ascii_whitespace()) {
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
        if out.len() >= MAX_TEXT {
            break;
        }
    }
    truncate(&mut out, MAX_TEXT);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::testkit::{fixture, header_values};

    fn one(value: &str) -> AuthResults {
        parse(value.as_bytes())
    }

    fn trusted(id: &str) -> TrustedId {
        TrustedId::new(id)
    }

    #[test]
    fn rspamd_stack_field() {
        let r = one(concat!(
            " mx.seed.test;\n\tdkim=pass header.d=sender.test header.s=sel header.b=\"Qp5r/x1a\";\n",
            "\tspf=pass (mx.seed.test: domain of no-reply@sender.test designates 127.0.0.2 as permitted sender)",
            " smtp.mailfrom=no-reply@sender.test;\n\tdmarc=pass (policy=reject) header.from=sender.test\n"
        ));
        assert_eq!(r.authserv_id.as_deref(), Some("mx.seed.test"));
        assert!(r.unparseable.is_empty(), "{:?}", r.unparseable);
        assert_eq!(r.results.len(), 3);
        let dkim = &r.results[0];
        assert_eq!(
            (&dkim.method, &dkim.result),
            (&Method::Dkim, &AuthResult::Pass)
        );
        assert_eq!(dkim.prop("header.d"), Some("sender.test"));
        assert_eq!(dkim.prop("header.b"), Some("Qp5r/x1a"));
        let spf = &r.results[1];
        assert_eq!(spf.prop("smtp.mailfrom"), Some("no-reply@sender.test"));
        assert!(spf.comments[0].starts_with("mx.seed.test: domain of"));
        assert_eq!(r.results[2].comments, vec!["policy=reject".to_string()]);
        assert_eq!(r.results[2].prop("HEADER.FROM"), Some("sender.test"));
    }

    #[test]
    fn microsoft_field_without_authserv_id() {
        let r = one(concat!(
            " spf=pass (sender IP is 203.0.113.25)\r\n smtp.mailfrom=mail.sender.example; dkim=pass",
            " (signature was verified)\r\n header.d=sender.example;dmarc=pass action=none\r\n",
            " header.from=sender.example;compauth=pass reason=100\r\n"
        ));
        assert_eq!(r.authserv_id, None);
        assert!(r.unparseable.is_empty(), "{:?}", r.unparseable);
        let methods: Vec<_> = r.results.iter().map(|m| m.method.as_str()).collect();
        assert_eq!(methods, ["spf", "dkim", "dmarc", "compauth"]);
        assert_eq!(r.results[0].comments, ["sender IP is 203.0.113.25"]);
        assert_eq!(r.results[2].prop("action"), Some("none"));
        assert_eq!(r.results[3].reason.as_deref(), Some("100"));
    }

    #[test]
    fn versions_none_and_quoted_id() {
        let r = one("\"mx.example.org\" 1; none");
        assert_eq!(r.authserv_id.as_deref(), Some("mx.example.org"));
        assert_eq!(r.version, Some(1));
        assert!(r.results.is_empty() && r.unparseable.is_empty());

        let r = one(
            "example.com; dkim/1 = pass (good) reason=\"sig ok; really\" header.i=@example.com",
        );
        assert_eq!(r.results[0].version, Some(1));
        assert_eq!(r.results[0].reason.as_deref(), Some("sig ok; really"));
        assert_eq!(r.results[0].prop("header.i"), Some("@example.com"));
        assert_eq!(r.results[0].comments, ["good"]);
    }

    #[test]
    fn rfc5451_hardfail_and_other_results() {
        let r = one(
            "mx.example.net; spf=hardfail smtp.mailfrom=a@b; dmarc=bestguesspass; x-foo=unknown",
        );
        assert_eq!(r.results[0].result, AuthResult::Fail);
        assert_eq!(
            r.results[1].result,
            AuthResult::Other("bestguesspass".into())
        );
        assert_eq!(r.results[1].result.label(), "none");
        assert_eq!(AuthResult::from_keyword("NXDOMAIN").label(), "fail");
        assert_eq!(r.results[2].method, Method::Other("x-foo".into()));
    }

    #[test]
    fn comments_nest_and_hide_semicolons() {
        let r = one("mx (a (b; c) d); spf=pass (x; (y)) smtp.mailfrom=a@b.test; dkim=none");
        assert_eq!(r.authserv_id.as_deref(), Some("mx"));
        assert_eq!(r.results.len(), 2);
        assert_eq!(r.results[0].comments, ["x; (y)"]);
    }

    #[test]
    fn unterminated_comment_and_quote_do_not_panic() {
        let r = one("mx; spf=pass (never closed; dkim=pass");
        assert_eq!(r.results.len(), 1);
        assert_eq!(r.results[0].comments, ["never closed; dkim=pass"]);
        let r = one("mx; dkim=pass header.b=\"never closed; spf=pass");
        assert_eq!(r.results.len(), 1);
        assert_eq!(
            r.results[0].prop("header.b"),
            Some("never closed; spf=pass")
        );
    }

    #[test]
    fn garbage_resinfo_is_kept_as_unparseable() {
        let r = one("mx; spf pass; ;; dkim=; =x; dmarc=fail header.from=a.test");
        assert_eq!(r.results.len(), 1);
        assert_eq!(r.results[0].method, Method::Dmarc);
        assert_eq!(r.unparseable, ["spf pass", "dkim=", "=x"]);
        assert_eq!(parse(b"").authserv_id, None);
        assert_eq!(parse(b"(((").unparseable.len(), 1);
    }

    #[test]
    fn non_utf8_is_replaced_not_rejected() {
        let r = parse(b"mx.s\xffeed.test; spf=pass smtp.mailfrom=\xfe@\xff");
        assert_eq!(r.authserv_id.as_deref(), Some("mx.s\u{fffd}eed.test"));
        assert_eq!(
            r.results[0].prop("smtp.mailfrom"),
            Some("\u{fffd}@\u{fffd}")
        );
    }

    #[test]
    fn huge_field_is_bounded() {
        let mut v = b"mx;".to_vec();
        for i in 0..10_000 {
            v.extend_from_slice(format!(" dkim=pass header.d=d{i}.test (c{i});").as_bytes());
        }
        v.extend(std::iter::repeat_n(b'x', 1 << 20));
        let r = parse(&v);
        assert_eq!(r.results.len(), MAX_RESULTS);
        assert!(r.unparseable.len() <= MAX_UNPARSEABLE + 1);
        assert!(r.unparseable.iter().all(|u| u.len() <= MAX_TEXT + 64));
    }

    #[test]
    fn trusted_id_forms() {
        let id = |s: &str| Head::Id(s.into());
        assert!(trusted("MX.Google.com").matches(&id("mx.google.COM")));
        assert!(!trusted("mx.google.com").matches(&id("mx.google.com.evil.test")));
        assert!(trusted(".yahoo.com").matches(&id("atlas-baf-g2-29.mail.bf1.yahoo.com")));
        assert!(trusted(".yahoo.com").matches(&id("yahoo.com")));
        assert!(!trusted(".yahoo.com").matches(&id("notyahoo.com")));
        assert!(trusted("").matches(&Head::Absent));
        assert!(!trusted("").matches(&id("mx.google.com")));
        assert!(!trusted("mx").matches(&Head::Absent));
    }

    #[test]
    fn gmail_fixture() {
        let raw = fixture("gmail.eml");
        let v = select(
            header_values(&raw, "Authentication-Results"),
            Some(&trusted("mx.google.com")),
        );
        assert_eq!(
            v.source,
            AuthSource::Trusted {
                authserv_id: Some("mx.google.com".into())
            }
        );
        let dkim: Vec<_> = v.results_for(&Method::Dkim).collect();
        assert_eq!(dkim.len(), 2, "one entry per signature");
        assert_eq!(dkim[1].prop("header.i"), Some("@esp.example"));
        assert_eq!(dkim[1].prop("header.b"), Some("hT7/k+2Q"));
        for m in &EXPORTED_METHODS {
            assert_eq!(v.label(m), "pass", "{m:?}");
        }
        let dmarc = v.results_for(&Method::Dmarc).next().unwrap();
        assert_eq!(dmarc.comments, ["p=REJECT sp=REJECT dis=NONE"]);
        assert_eq!(dmarc.prop("header.from"), Some("sender.example"));
        assert_eq!(v.ignored_below, 0);
        // ARC-Authentication-Results is a different field and is not counted.
        assert_eq!(v.headers_seen, 1);
    }

    #[test]
    fn outlook_fixture_needs_the_absent_id() {
        let raw = fixture("outlook.eml");
        let values = || header_values(&raw, "Authentication-Results");
        let v = select(values(), Some(&trusted("")));
        assert_eq!(v.source, AuthSource::Trusted { authserv_id: None });
        assert_eq!(v.label(&Method::Dmarc), "pass");
        assert_eq!(v.label(&Method::Arc), "none");
        assert_eq!(v.label(&Method::Other("compauth".into())), "pass");
        let v = select(values(), Some(&trusted("protection.outlook.com")));
        assert_eq!(v.source, AuthSource::Missing);
        assert_eq!(v.label(&Method::Spf), "missing");
        assert_eq!(v.authserv_ids_seen, [None]);
    }

    #[test]
    fn forged_field_below_the_real_one_does_not_count() {
        let raw = fixture("forged.eml");
        let t = trusted("mx.seed.test");
        let v = select(header_values(&raw, "Authentication-Results"), Some(&t));
        assert_eq!(v.label(&Method::Spf), "softfail");
        assert_eq!(v.label(&Method::Dkim), "none");
        assert_eq!(v.label(&Method::Dmarc), "fail");
        assert_eq!(v.ignored_below, 1);
        let dmarc = v.results_for(&Method::Dmarc).next().unwrap();
        assert_eq!(dmarc.reason.as_deref(), Some("No valid SPF, No valid DKIM"));

        // Same verdict with the forged field removed.
        let text = String::from_utf8(raw.clone()).unwrap();
        let start = text
            .find("Authentication-Results: mx.seed.test;\n\tdkim=pass")
            .unwrap();
        let end = text[start..].find("X-Spam-Status").unwrap() + start;
        let clean = format!("{}{}", &text[..start], &text[end..]);
        let w = select(
            header_values(clean.as_bytes(), "Authentication-Results"),
            Some(&t),
        );
        assert_eq!(w.results, v.results);
        assert_eq!(w.ignored_below, 0);
    }

    #[test]
    fn no_header_and_no_config() {
        let raw = fixture("no-ar.eml");
        let v = select(
            header_values(&raw, "Authentication-Results"),
            Some(&trusted("mx.163.com")),
        );
        assert_eq!(v.source, AuthSource::Missing);
        assert_eq!(v.headers_seen, 0);
        for m in &EXPORTED_METHODS {
            assert_eq!(v.label(m), "missing");
        }
        let raw = fixture("rspamd.eml");
        let v = select(header_values(&raw, "Authentication-Results"), None);
        assert_eq!(v.source, AuthSource::NotConfigured);
        assert_eq!(v.label(&Method::Spf), "missing");
        assert_eq!(v.authserv_ids_seen, [Some("mx.seed.test".to_string())]);
    }

    #[test]
    fn rspamd_spam_fixture_reason_before_comment() {
        let raw = fixture("rspamd-spam.eml");
        let v = select(
            header_values(&raw, "Authentication-Results"),
            Some(&trusted("mx.seed.test")),
        );
        assert_eq!(v.label(&Method::Dkim), "fail");
        assert_eq!(v.label(&Method::Spf), "fail");
        let dmarc = v.results_for(&Method::Dmarc).next().unwrap();
        assert_eq!(dmarc.result, AuthResult::Fail);
        assert_eq!(dmarc.comments, ["policy=reject"]);
        assert_eq!(dmarc.prop("header.from"), Some("sender.test"));
        let dkim = v.results_for(&Method::Dkim).next().unwrap();
        assert_eq!(dkim.comments, ["body hash did not verify"]);
    }

    #[test]
    fn hostile_fixture_topmost_match_is_read_leniently() {
        let raw = fixture("hostile.eml");
        let v = select(
            header_values(&raw, "Authentication-Results"),
            Some(&trusted("mx.seed.test")),
        );
        assert_eq!(
            v.source,
            AuthSource::Trusted {
                authserv_id: Some("MX.SEED.TEST".into())
            }
        );
        assert_eq!(v.label(&Method::Spf), "pass");
        assert_eq!(v.label(&Method::Dkim), "fail");
        assert_eq!(v.label(&Method::Arc), "pass");
        assert_eq!(v.label(&Method::Dmarc), "none");
        let spf = v.results_for(&Method::Spf).next().unwrap();
        assert_eq!(spf.prop("smtp.mailfrom"), Some("a@b.test"));
        let dkim = v.results_for(&Method::Dkim).next().unwrap();
        assert_eq!(dkim.version, Some(1));
        assert_eq!(dkim.reason.as_deref(), Some("bad;sig \"quoted\""));
        assert_eq!(dkim.prop("header.b"), Some("abc/def="));
        assert!(!v.unparseable.is_empty());
        assert!(v.ignored_below >= 3);
    }

    #[test]
    fn labels_aggregate_multiple_signatures() {
        let v = |s: &str| select([s.as_bytes()], Some(&trusted("mx")));
        assert_eq!(v("mx; dkim=fail; dkim=pass").label(&Method::Dkim), "pass");
        assert_eq!(
            v("mx; dkim=neutral; dkim=temperror").label(&Method::Dkim),
            "temperror"
        );
        assert_eq!(
            v("mx; dkim=none; dkim=policy").label(&Method::Dkim),
            "policy"
        );
        assert_eq!(v("mx; none").label(&Method::Dkim), "none");
        for m in &EXPORTED_METHODS {
            assert!(RESULT_LABELS.contains(&v("mx; spf=weird").label(m)));
        }
    }
}
