//! Test support: the fixture format, a fake resolver that answers from a
//! fixture, and a small deterministic fuzzer. The format is described in
//! `tests/fixtures/audit/README.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use super::spf::Count;
use super::{CheckResult, CATALOGUE};
use crate::dns::{Answer, DnsAnswer, DnsFacts, Query, QueryKind};

/// Where the fixtures live, relative to the crate root (works in the project
/// and in any crate that mounts this module with `#[path]`, given a `tests`
/// link).
pub fn fixture_dir(check: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/audit")
        .join(check)
}

/// One fixture file.
#[derive(Debug, Default)]
pub struct Case {
    pub domain: String,
    pub selector: String,
    pub suffixes: Vec<String>,
    pub facts: FixtureDns,
    pub expect: Option<Vec<String>>,
    pub status: Option<String>,
    pub values: BTreeMap<String, String>,
    pub messages: Vec<String>,
}

/// The DNS a fixture describes. Unlisted names answer like a friendly zone:
/// TXT → not found, MX → one host `mx1.<name>`, A/AAAA → `192.0.2.1`.
#[derive(Debug, Default, Clone)]
pub struct FixtureDns {
    answers: BTreeMap<(QueryKind, String), Answer>,
}

impl FixtureDns {
    pub fn answer(&self, q: &Query) -> Answer {
        if let Some(a) = self.answers.get(&(q.kind, q.name.clone())) {
            return a.clone();
        }
        match q.kind {
            QueryKind::Txt => Answer::Txt(DnsAnswer::NotFound),
            QueryKind::Mx => Answer::Mx(DnsAnswer::Found(vec![format!("mx1.{}", q.name)])),
            QueryKind::Addr => Answer::Addr(DnsAnswer::Found(vec![IpAddr::from([192, 0, 2, 1])])),
            // Fixtures describe what SPF, DKIM and DMARC read; nothing else.
            other => Answer::unknown(other, "not in the fixture"),
        }
    }

    /// All TXT record values in the fixture.
    pub fn txt_records(&self) -> Vec<Vec<u8>> {
        self.answers
            .values()
            .filter_map(|a| match a {
                Answer::Txt(DnsAnswer::Found(r)) => Some(r.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    fn add(&mut self, kind: QueryKind, name: &str, value: &str) -> Result<(), String> {
        let key = (kind, super::domain::normalize(name));
        let special = match value.split_once(' ').map_or(value, |(a, _)| a) {
            "NXDOMAIN" | "NODATA" => Some(None),
            "UNKNOWN" => Some(Some(
                value
                    .split_once(' ')
                    .map_or("timeout", |(_, r)| r)
                    .to_owned(),
            )),
            _ => None,
        };
        if let Some(special) = special {
            if self.answers.contains_key(&key) {
                return Err(format!("{name}: special answer mixed with records"));
            }
            let base: DnsAnswer<()> = match special {
                None => DnsAnswer::NotFound,
                Some(why) => DnsAnswer::Unknown(why),
            };
            let a = match kind {
                QueryKind::Txt => Answer::Txt(base.map(|_| vec![])),
                QueryKind::Mx => Answer::Mx(base.map(|_| vec![])),
                QueryKind::Addr => Answer::Addr(base.map(|_| vec![])),
                _ => return Err(format!("{name}: only TXT, MX and A records")),
            };
            self.answers.insert(key, a);
            return Ok(());
        }
        let entry = self.answers.entry(key).or_insert_with(|| match kind {
            QueryKind::Txt => Answer::Txt(DnsAnswer::Found(vec![])),
            QueryKind::Mx => Answer::Mx(DnsAnswer::Found(vec![])),
            _ => Answer::Addr(DnsAnswer::Found(vec![])),
        });
        match entry {
            Answer::Txt(DnsAnswer::Found(records)) => records.push(parse_txt_value(value)?),
            Answer::Mx(DnsAnswer::Found(hosts)) => {
                hosts.extend(value.split_whitespace().map(str::to_owned))
            }
            Answer::Addr(DnsAnswer::Found(addrs)) => {
                for a in value.split_whitespace() {
                    addrs.push(a.parse().map_err(|_| format!("bad address {a}"))?);
                }
            }
            _ => return Err(format!("{name}: records mixed with a special answer")),
        }
        Ok(())
    }
}

/// A TXT value: either raw text to the end of the line, or one or more
/// `"quoted"` character-strings (zone-file escapes `\"`, `\\`, `\DDD`), joined.
fn parse_txt_value(value: &str) -> Result<Vec<u8>, String> {
    if !value.starts_with('"') {
        return Ok(value.as_bytes().to_vec());
    }
    let mut strings: Vec<Vec<u8>> = Vec::new();
    let bytes = value.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b' ' | b'\t' => i += 1,
            b'"' => {
                let mut s = Vec::new();
                i += 1;
                loop {
                    match bytes.get(i) {
                        None => return Err("unterminated quoted string".into()),
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') => {
                            let next = bytes.get(i + 1).copied();
                            if next.is_some_and(|c| c.is_ascii_digit()) {
                                let digits = value.get(i + 1..i + 4).ok_or("short \\DDD")?;
                                s.push(digits.parse::<u8>().map_err(|_| "bad \\DDD")?);
                                i += 4;
                            } else {
                                s.push(next.ok_or("dangling backslash")?);
                                i += 2;
                            }
                        }
                        Some(&c) => {
                            s.push(c);
                            i += 1;
                        }
                    }
                }
                strings.push(s);
            }
            _ => return Err(format!("text outside quotes: {value}")),
        }
    }
    Ok(crate::dns::join_character_strings(&strings))
}

pub fn parse_case(file: &str, text: &str) -> Result<Case, String> {
    let mut case = Case::default();
    for (n, line) in text.lines().enumerate() {
        let at = |e: String| format!("{file}:{}: {e}", n + 1);
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (head, rest) = line.split_once(' ').unwrap_or((line, ""));
        let kind = match head {
            "txt" => Some(QueryKind::Txt),
            "mx" => Some(QueryKind::Mx),
            "addr" => Some(QueryKind::Addr),
            _ => None,
        };
        if let Some(kind) = kind {
            let (name, value) = rest
                .split_once(' ')
                .ok_or_else(|| at("expected `<type> <name> <value>`".into()))?;
            case.facts.add(kind, name, value).map_err(at)?;
            continue;
        }
        let (key, value) = line
            .split_once(':')
            .ok_or_else(|| at(format!("unknown line `{line}`")))?;
        let value = value.trim();
        match key {
            "domain" => case.domain = value.to_owned(),
            "selector" => case.selector = value.to_owned(),
            "suffix" => case.suffixes.push(value.to_owned()),
            "expect" => {
                let mut ids: Vec<String> = value.split_whitespace().map(str::to_owned).collect();
                ids.sort();
                case.expect = Some(ids);
            }
            "status" => case.status = Some(value.to_owned()),
            "message" => case.messages.push(value.to_owned()),
            _ => {
                case.values.insert(key.to_owned(), value.to_owned());
            }
        }
    }
    if case.domain.is_empty() {
        return Err(format!("{file}: no `domain:` line"));
    }
    if case.expect.is_none() {
        return Err(format!("{file}: no `expect:` line"));
    }
    Ok(case)
}

fn load_dir(check: &str) -> Vec<(String, String)> {
    let dir = fixture_dir(check);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let text = std::fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
            (name, text)
        })
        .collect()
}

/// All TXT records from the fixtures of one check (fuzz seeds, differential tests).
pub fn fixture_records(check: &str) -> Vec<Vec<u8>> {
    load_dir(check)
        .iter()
        .filter_map(|(f, t)| parse_case(f, t).ok())
        .flat_map(|c| c.facts.txt_records())
        .collect()
}

/// Answers `pending` from the fixture until nothing is pending.
pub fn resolve_until_done(dns: &FixtureDns, pending: impl Fn(&DnsFacts) -> Vec<Query>) -> DnsFacts {
    let mut facts = DnsFacts::default();
    for _ in 0..500 {
        let queries = pending(&facts);
        if queries.is_empty() {
            return facts;
        }
        for q in queries {
            assert!(!facts.contains(&q), "pending asked again for {q}");
            facts.insert(&q, dns.answer(&q));
        }
    }
    panic!("pending_queries did not converge");
}

pub fn count_text(c: Count) -> String {
    if c.exact {
        c.value.to_string()
    } else {
        format!(">={}", c.value)
    }
}

/// Runs every fixture of `check` through `run` and compares. `run` returns the
/// check result and named values (compared with `key: value` lines). Fails
/// listing every mismatch; also fails when a catalogue id of this check is
/// exercised by no fixture (except those in `not_in_fixtures`).
pub fn run_fixture_dir(
    check: &str,
    not_in_fixtures: &[&str],
    run: impl Fn(&Case) -> (CheckResult, Vec<(&'static str, String)>),
) {
    let mut failures = Vec::new();
    let mut seen_ids = BTreeSet::new();
    let files = load_dir(check);
    assert!(!files.is_empty(), "no fixtures for {check}");
    for (file, text) in &files {
        let case = match parse_case(file, text) {
            Ok(c) => c,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        let (result, values) = run(&case);
        let mut got: Vec<String> = result.findings.iter().map(|f| f.id.to_owned()).collect();
        got.sort();
        for f in &result.findings {
            seen_ids.insert(f.id);
            if !CATALOGUE.iter().any(|(id, _, _)| *id == f.id) {
                failures.push(format!("{file}: id {} not in CATALOGUE", f.id));
            }
            if !f.id.starts_with(&format!("{check}.")) {
                failures.push(format!("{file}: id {} in the {check} check", f.id));
            }
            if f.message.is_empty() || f.hint.is_empty() {
                failures.push(format!("{file}: {} has an empty message or hint", f.id));
            }
        }
        let describe = || {
            result
                .findings
                .iter()
                .map(|f| format!("\n    {} [{}] {} — {}", f.id, f.severity, f.message, f.hint))
                .collect::<String>()
        };
        if std::env::var_os("AUDIT_FIXTURE_VERBOSE").is_some() {
            eprintln!("{check}/{file}: {}{}", result.status.as_str(), describe());
        }
        if Some(&got) != case.expect.as_ref() {
            failures.push(format!(
                "{file}: expected {:?}, got {:?}{}",
                case.expect.clone().unwrap_or_default(),
                got,
                describe()
            ));
        }
        if let Some(status) = &case.status {
            if status != result.status.as_str() {
                failures.push(format!(
                    "{file}: expected status {status}, got {}",
                    result.status.as_str()
                ));
            }
        }
        for m in &case.messages {
            if !result
                .findings
                .iter()
                .any(|f| f.message.contains(m.as_str()))
            {
                failures.push(format!("{file}: no message contains `{m}`{}", describe()));
            }
        }
        for (key, want) in &case.values {
            match values.iter().find(|(k, _)| k == key) {
                Some((_, got)) if got == want => {}
                Some((_, got)) => {
                    failures.push(format!("{file}: {key}: expected {want}, got {got}"))
                }
                None => failures.push(format!("{file}: unknown key `{key}`")),
            }
        }
    }
    for (id, _, _) in CATALOGUE {
        if id.starts_with(&format!("{check}."))
            && !seen_ids.contains(id)
            && !not_in_fixtures.contains(id)
        {
            failures.push(format!("no {check} fixture produces {id}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} fixture failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// xorshift64*: small, deterministic, good enough to drive a fuzzer.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        let i = self.below(items.len());
        items.get(i)
    }
}

/// Calls `f` on `iterations` inputs: random bytes, random strings over
/// `alphabet`, and `seeds` mutated by flips, inserts, deletes, duplication,
/// truncation and splicing. A panic is re-raised with the input that caused it.
/// `AUDIT_FUZZ_ITERATIONS` overrides the count for a longer run.
pub fn fuzz(iterations: usize, seeds: &[Vec<u8>], alphabet: &[u8], f: impl Fn(&[u8])) {
    let iterations = std::env::var("AUDIT_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(iterations);
    let mut rng = Rng::new(0x5eed);
    for n in 0..iterations {
        let input = match n % 4 {
            0 => (0..rng.below(300)).map(|_| rng.next() as u8).collect(),
            1 => (0..rng.below(200))
                .map(|_| rng.pick(alphabet).copied().unwrap_or(b'x'))
                .collect(),
            _ => {
                let mut v = rng.pick(seeds).cloned().unwrap_or_default();
                for _ in 0..1 + rng.below(6) {
                    mutate(&mut rng, &mut v, alphabet, seeds);
                }
                v
            }
        };
        let result = catch_unwind(AssertUnwindSafe(|| f(&input)));
        if let Err(panic) = result {
            eprintln!(
                "fuzz input that panicked: {:?}",
                String::from_utf8_lossy(&input)
            );
            std::panic::resume_unwind(panic);
        }
    }
}

fn mutate(rng: &mut Rng, v: &mut Vec<u8>, alphabet: &[u8], seeds: &[Vec<u8>]) {
    let len = v.len();
    match rng.below(7) {
        0 if len > 0 => {
            let i = rng.below(len);
            if let Some(b) = v.get_mut(i) {
                *b ^= 1 << rng.below(8);
            }
        }
        1 => {
            let i = rng.below(len + 1);
            v.insert(i, rng.pick(alphabet).copied().unwrap_or(b' '));
        }
        2 if len > 0 => {
            let a = rng.below(len);
            let b = (a + 1 + rng.below(8)).min(len);
            v.drain(a..b);
        }
        3 if len > 0 => {
            let a = rng.below(len);
            let b = (a + 1 + rng.below(40)).min(len);
            let piece: Vec<u8> = v.get(a..b).unwrap_or_default().to_vec();
            let at = rng.below(v.len() + 1);
            v.splice(at..at, piece);
        }
        4 => v.truncate(rng.below(len + 1)),
        5 => {
            if let Some(other) = rng.pick(seeds) {
                let cut = rng.below(other.len() + 1);
                v.extend_from_slice(other.get(cut..).unwrap_or_default());
            }
        }
        _ => {
            let i = rng.below(len + 1);
            v.insert(i, rng.next() as u8);
        }
    }
}

/// A random answer for the walk-termination test: SPF-ish records that
/// include more random names, MX sets of random size, missing and failing names.
pub fn random_answer(rng: &mut Rng, q: &Query) -> Answer {
    match q.kind {
        QueryKind::Txt => match rng.below(20) {
            0..=2 => Answer::Txt(DnsAnswer::NotFound),
            3 => Answer::Txt(DnsAnswer::Unknown("timeout".into())),
            _ => {
                let n_records = 1 + usize::from(rng.below(10) == 0);
                let records = (0..n_records)
                    .map(|_| {
                        let mut r = String::from("v=spf1");
                        for _ in 0..rng.below(8) {
                            let n = rng.below(40);
                            let term = match rng.below(9) {
                                0..=2 => format!(" include:n{n}.example"),
                                3 => format!(" a:n{n}.example"),
                                4 => format!(" mx:n{n}.example"),
                                5 => format!(" redirect=n{n}.example"),
                                6 => " exists:%{i}.x.example".to_owned(),
                                7 => " ptr".to_owned(),
                                _ => " ?foo:bar".to_owned(),
                            };
                            r.push_str(&term);
                        }
                        if rng.below(2) == 0 {
                            r.push_str(" -all");
                        }
                        r.into_bytes()
                    })
                    .collect();
                Answer::Txt(DnsAnswer::Found(records))
            }
        },
        QueryKind::Mx => Answer::Mx(match rng.below(4) {
            0 => DnsAnswer::NotFound,
            _ => DnsAnswer::Found(
                (0..rng.below(15))
                    .map(|i| format!("mx{i}.example"))
                    .collect(),
            ),
        }),
        QueryKind::Addr => Answer::Addr(match rng.below(3) {
            0 => DnsAnswer::NotFound,
            1 => DnsAnswer::Unknown("servfail".into()),
            _ => DnsAnswer::Found(vec![IpAddr::from([192, 0, 2, 1])]),
        }),
        other => Answer::unknown(other, "not asked by SPF"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txt_values() {
        assert_eq!(parse_txt_value("v=spf1 -all").unwrap(), b"v=spf1 -all");
        assert_eq!(
            parse_txt_value(r#""v=spf1 " "-all""#).unwrap(),
            b"v=spf1 -all"
        );
        assert_eq!(parse_txt_value(r#""a\"b\\c\233""#).unwrap(), b"a\"b\\c\xe9");
        assert!(parse_txt_value(r#""open"#).is_err());
    }

    #[test]
    fn fixture_dns_answers() {
        let case = parse_case(
            "t",
            "domain: x.example\ntxt x.example a\ntxt X.example. \"b\"\ntxt y.example NXDOMAIN\n\
             txt z.example UNKNOWN servfail\nmx x.example m1 m2\naddr h.example 192.0.2.9\nexpect:\n",
        )
        .unwrap();
        assert_eq!(
            case.facts.answer(&Query::txt("x.example")),
            Answer::Txt(DnsAnswer::Found(vec![b"a".to_vec(), b"b".to_vec()]))
        );
        assert_eq!(
            case.facts.answer(&Query::txt("y.example")),
            Answer::Txt(DnsAnswer::NotFound)
        );
        assert_eq!(
            case.facts.answer(&Query::txt("z.example")),
            Answer::Txt(DnsAnswer::Unknown("servfail".into()))
        );
        assert_eq!(
            case.facts.answer(&Query::mx("x.example")),
            Answer::Mx(DnsAnswer::Found(vec!["m1".into(), "m2".into()]))
        );
        assert_eq!(
            case.facts.answer(&Query::addr("other.example")),
            Answer::Addr(DnsAnswer::Found(vec![IpAddr::from([192, 0, 2, 1])]))
        );
        assert!(parse_case("t", "domain: x\n").is_err());
        assert!(parse_case("t", "expect:\n").is_err());
    }
}
