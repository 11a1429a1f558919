//! The support view: "I never got my code" answered in one look, for
//! support agents rather than SREs. `/status` (HTML), `/api/v1/status`
//! (JSON) and `mailcanary status` all show one [`StatusReport`], computed
//! from the store and the config by [`compute`].
//!
//! A stage after [`crate::probe`] and [`crate::audit`]: it reads their
//! records and never writes. The HTTP endpoint serves it.
//!
//! # Layout
//! - [`state`]: the state rule (pure), slices and windows.
//! - [`guidance`]: what to tell the user, English and Chinese; the page's
//!   words for states, outcomes, reasons and findings ([`words_zh`]: the
//!   Chinese ones of the bounded values).
//! - [`lookup`]: the user's domain → provider (tables, typo, MX).
//! - [`read`]: the store queries.
//! - [`page`]: the HTML page (askama) and the CLI's text.
//! - [`cli`]: `mailcanary status`.
//!
//! Nothing from a run but its seed's provider label, its sender's config
//! name, its outcome, its bounded reason and its times reaches the report:
//! never an address, code, token, Message-ID or server text.

pub mod cli;
pub mod guidance;
pub mod lookup;
pub mod page;
pub mod read;
pub mod state;
pub mod words_zh;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::config::Config;
use crate::dns::{DnsLookup, ResolverSettings};
use crate::mailbox_provider::Provider;
use crate::probe::Outcome;
use crate::store::{Store, StoreError};
use guidance::{Facts, Lang};
use read::{GroupKey, Raw};
use state::{Segment, State, SLICE_MS, UNWATCHED, WINDOW_MS, WINDOW_SLICES};

/// Days of state changes in the timeline.
pub const TIMELINE_DAYS: i64 = 7;
/// How far after the asked time a lookup follows the state (to say "until").
const LOOKUP_AFTER_MS: i64 = 6 * 3600 * 1000;
/// How far before the asked time a lookup looks for the state's start.
const LOOKUP_BEFORE_MS: i64 = 24 * 3600 * 1000;

/// Why the view could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The asked time is not one of the accepted forms.
    #[error("cannot read the time: use RFC 3339 (2026-12-02T10:40:00Z), YYYY-MM-DD HH:MM or HH:MM (UTC)")]
    Time,
    /// The asked time is in the future.
    #[error("the time {0} is in the future")]
    Future(String),
    /// The typed domain is not a mail domain.
    #[error(transparent)]
    Domain(#[from] lookup::DomainError),
}

impl StatusError {
    /// The problem in the page's language (the API and the CLI say it in
    /// English, as [`std::fmt::Display`] does).
    pub fn message(&self, lang: Lang) -> String {
        match (lang, self) {
            (Lang::En, e) => e.to_string(),
            (Lang::Zh, StatusError::Store(_)) => "无法读取存储".to_string(),
            (Lang::Zh, StatusError::Time) => {
                "无法识别时间：请使用 RFC 3339（2026-12-02T10:40:00Z）、YYYY-MM-DD HH:MM 或 HH:MM（UTC）".to_string()
            }
            (Lang::Zh, StatusError::Future(t)) => format!("时间 {t} 还未到"),
            (Lang::Zh, StatusError::Domain(_)) => {
                "不是邮箱域名：请输入 @ 后面的部分（例如 qq.com）".to_string()
            }
        }
    }
}

/// What the store and config are read from; cheap to clone.
#[derive(Clone)]
pub struct Source {
    pub store: Store,
    pub config: Arc<Config>,
    /// Settled slice counts of earlier requests.
    cache: Arc<read::Cache>,
}

impl Source {
    pub fn new(store: Store, config: Arc<Config>) -> Source {
        Source {
            store,
            config,
            cache: Arc::default(),
        }
    }

    /// How long after its creation a run's slice may still change: the
    /// longest probe timeout and half an hour for retries and the recorder.
    fn settle_ms(&self) -> i64 {
        let longest = self
            .config
            .probes
            .values()
            .map(|p| p.timeout.as_millis() as i64)
            .max()
            .unwrap_or(0);
        longest + 30 * 60 * 1000
    }
}

/// What was asked.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// The user's mail domain (or address: only its domain is used).
    pub domain: Option<String>,
    /// When the user asked for the code (see [`parse_time`]).
    pub at: Option<String>,
    pub lang: Lang,
}

/// The whole view.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// When this was computed (RFC 3339, UTC).
    pub generated_at: String,
    pub lang: Lang,
    /// The window a state is judged over, in seconds.
    pub window_seconds: i64,
    /// One row per provider that a configured probe sends to.
    pub providers: Vec<Group>,
    /// One row per configured sender identity (by its config name).
    pub senders: Vec<Group>,
    /// The audited sending domains.
    pub domains: Vec<DomainAudit>,
    /// State changes per provider over the last [`TIMELINE_DAYS`] days, newest first.
    pub timeline: Vec<Change>,
    pub lookup: Option<LookupAnswer>,
    /// What to ask the user for, and what never.
    pub ask_for: &'static [&'static str],
    pub never_ask_for: &'static [&'static str],
}

/// The state of a provider or a sender over the last hour.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    /// `"provider": "qq"` or `"sender": "noreply"`.
    #[serde(flatten)]
    pub who: Who,
    /// The provider's name as its users know it (the sender name for senders).
    pub display_name: String,
    pub state: State,
    pub state_text: &'static str,
    /// Since when the state holds (RFC 3339); `None` when it held through
    /// the whole timeline.
    pub since: Option<String>,
    /// When the last probe with a result was sent (RFC 3339).
    pub last_result_at: Option<String>,
    /// Final runs in the window, by outcome (every outcome listed).
    pub counts: BTreeMap<&'static str, u64>,
    /// The runs counted (the sum of `counts`).
    pub runs: u64,
    /// Runs in the window not counted: they went missing (or late) while
    /// their seed's mailbox was not watched at their deadline
    /// ([`state::unwatched`]).
    pub unwatched: u64,
    pub latency_p50_seconds: Option<f64>,
    pub latency_p95_seconds: Option<f64>,
    /// The most frequent failure in the window.
    pub reason: Option<Reason>,
    /// Why the state is `unknown` (`None` when it is not).
    pub unknown_reason: Option<UnknownReason>,
    /// What to tell the user.
    pub advice: String,
}

/// Why a state is `unknown`.
#[derive(Debug, Clone, Serialize)]
pub struct UnknownReason {
    pub id: Unknown,
    /// In words, in the page's language.
    pub text: &'static str,
}

/// Why a state is `unknown`, as an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unknown {
    /// No probe run became final in the window.
    NoResults,
    /// Runs did, but only while their seed's mailbox could not be watched.
    SeedUnwatched,
}

impl Unknown {
    /// Why a window with these counts is unknown, if it is.
    fn of(counts: &state::Counts) -> Option<Unknown> {
        if counts[..state::N].iter().any(|&n| n > 0) {
            None
        } else if counts[UNWATCHED] > 0 {
            Some(Unknown::SeedUnwatched)
        } else {
            Some(Unknown::NoResults)
        }
    }
}

/// Whom a row is about: a provider label (`qq`, `gmail`) or a sender's
/// configuration name.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Who {
    Provider(String),
    Sender(String),
}

impl Who {
    pub fn name(&self) -> &str {
        match self {
            Who::Provider(n) | Who::Sender(n) => n,
        }
    }
}

/// The main reason: the outcome most failed runs had, and its bounded
/// reason (send failure or bounce reason) when it has one.
#[derive(Debug, Clone, Serialize)]
pub struct Reason {
    pub outcome: Outcome,
    /// What the user saw, in words.
    pub text: &'static str,
    pub reason: Option<String>,
}

/// The latest DNS audit of a sending domain.
#[derive(Debug, Clone, Serialize)]
pub struct DomainAudit {
    pub domain: String,
    /// `ok`, `warning`, `error`, `unknown`, or `not_audited` yet.
    pub status: String,
    pub checked_at: Option<String>,
    /// Error findings in plain words.
    pub errors: Vec<AuditError>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditError {
    pub id: String,
    pub text: &'static str,
}

/// A provider's state from `from` on (to `until`, or still).
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub provider: String,
    pub display_name: String,
    pub state: State,
    pub state_text: &'static str,
    pub from: String,
    /// `None`: the state still holds.
    pub until: Option<String>,
}

/// The answer for one user's domain and time.
#[derive(Debug, Clone, Serialize)]
pub struct LookupAnswer {
    pub domain: String,
    pub provider: Provider,
    pub display_name: &'static str,
    pub via: lookup::Via,
    /// The domain probably meant, when the typed one looks like a typo.
    pub meant: Option<&'static str>,
    /// The provider's spam folder, as its interface names it.
    pub spam_folder: &'static str,
    /// The time asked about (RFC 3339).
    pub at: String,
    /// The state in the hour before `at`, and the stretch it held.
    pub state: State,
    pub state_text: &'static str,
    pub from: Option<String>,
    pub until: Option<String>,
    /// Whether mailcanary probes this provider at all.
    pub probed: bool,
    pub answer: String,
}

/// Now, in Unix ms.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// RFC 3339 in UTC, seconds.
pub fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `HH:MM` when `ms` is on the same UTC day as `now`, else `YYYY-MM-DD HH:MM`.
pub fn short_time(ms: i64, now: i64) -> String {
    let t = DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
    let n = DateTime::<Utc>::from_timestamp_millis(now).unwrap_or_default();
    if t.date_naive() == n.date_naive() {
        t.format("%H:%M").to_string()
    } else {
        t.format("%Y-%m-%d %H:%M").to_string()
    }
}

/// A time an agent typed: RFC 3339, `YYYY-MM-DD HH:MM` / `YYYY-MM-DDTHH:MM`
/// (the HTML form's datetime-local, read as UTC), `HH:MM` (today, UTC; the
/// day before when that is still to come), or `now`.
pub fn parse_time(s: &str, now: i64) -> Result<i64, StatusError> {
    let s = s.trim();
    let ms = if s.eq_ignore_ascii_case("now") || s.is_empty() {
        now
    } else if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        t.timestamp_millis()
    } else if let Some(t) = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
    {
        t.and_utc().timestamp_millis()
    } else if let Ok(t) = NaiveTime::parse_from_str(s, "%H:%M") {
        let today: NaiveDate = DateTime::<Utc>::from_timestamp_millis(now)
            .unwrap_or_default()
            .date_naive();
        let ms = today.and_time(t).and_utc().timestamp_millis();
        if ms > now {
            ms - 24 * 3600 * 1000
        } else {
            ms
        }
    } else {
        return Err(StatusError::Time);
    };
    // A minute of clock difference between the agent and the server is fine.
    if ms > now + 60_000 {
        return Err(StatusError::Future(rfc3339(ms)));
    }
    Ok(ms.min(now))
}

/// Who is probed: provider label of every seed some probe uses, and the
/// senders probes send from.
struct Plan {
    seeds: read::Seeds,
    providers: BTreeSet<String>,
    senders: BTreeSet<String>,
}

impl Plan {
    fn of(config: &Config) -> Plan {
        let mut plan = Plan {
            seeds: BTreeMap::new(),
            providers: BTreeSet::new(),
            senders: BTreeSet::new(),
        };
        for p in config.probes.values() {
            plan.senders.insert(p.sender.clone());
            for s in &p.seeds {
                if let Some(seed) = config.seeds.get(s) {
                    plan.seeds.insert(s.clone(), seed.provider.clone());
                    plan.providers.insert(seed.provider.clone());
                }
            }
        }
        plan
    }
}

/// Display names of a provider label (a seed's provider may be a label
/// outside [`Provider`], e.g. `selfhosted`: shown as written).
fn names(label: &str, lang: Lang) -> (String, String) {
    match Provider::parse(label) {
        Some(p) => {
            let n = p.ui_names();
            match lang {
                Lang::En => (n.name.to_string(), n.spam.to_string()),
                Lang::Zh => (n.name_zh.to_string(), n.spam_zh.to_string()),
            }
        }
        None => {
            let n = Provider::Other.ui_names();
            let spam = match lang {
                Lang::En => n.spam,
                Lang::Zh => n.spam_zh,
            };
            (label.to_string(), spam.to_string())
        }
    }
}

/// Compute the view at `now` (Unix ms).
pub async fn compute(src: &Source, q: &Query, now: i64) -> Result<StatusReport, StatusError> {
    let lang = q.lang;
    // Check the question before any work.
    let asked = match &q.domain {
        Some(d) if !d.trim().is_empty() => Some((
            lookup::normalize(d)?,
            parse_time(q.at.as_deref().unwrap_or(""), now)?,
        )),
        _ => None,
    };
    let plan = Plan::of(&src.config);
    // Slices are aligned to multiples of SLICE_MS; the last one holds now.
    let n_slices = (TIMELINE_DAYS * 24 * 3600 * 1000 / SLICE_MS) as usize + WINDOW_SLICES;
    let start = (now.div_euclid(SLICE_MS) + 1 - n_slices as i64) * SLICE_MS;
    let seeds = plan.seeds.clone();
    let (cache, settle) = (src.cache.clone(), src.settle_ms());
    let raw: Raw = src
        .store
        .call(move |c| cache.read(c, &seeds, start, n_slices, now, settle))
        .await?;
    let audits = {
        let domains: Vec<String> = src.config.domains.keys().cloned().collect();
        src.store.call(move |c| read::audits(c, &domains)).await?
    };

    let mut providers = Vec::new();
    let mut timeline = Vec::new();
    for label in &plan.providers {
        let key = GroupKey::Provider(label.clone());
        let (display, spam) = names(label, lang);
        let g = group(&raw, &key, &display, &spam, now, lang);
        let segs = raw
            .slices
            .get(&key)
            .map(|s| state::segments(&s.states()))
            .unwrap_or_default();
        for (i, s) in segs.iter().enumerate() {
            timeline.push(Change {
                provider: label.clone(),
                display_name: display.clone(),
                state: s.state,
                state_text: guidance::state_text(s.state, lang),
                from: rfc3339(s.from_ms),
                until: (i + 1 < segs.len()).then(|| rfc3339(s.until_ms)),
            });
        }
        providers.push(g);
    }
    // Newest first: the agent's question is about now.
    timeline.sort_by(|a, b| b.from.cmp(&a.from).then(a.provider.cmp(&b.provider)));
    let senders = plan
        .senders
        .iter()
        .map(|name| {
            let (_, spam) = names("other", lang);
            group(
                &raw,
                &GroupKey::Sender(name.clone()),
                name,
                &spam,
                now,
                lang,
            )
        })
        .collect();
    let domains = audits
        .into_iter()
        .map(|a| DomainAudit {
            domain: a.domain,
            status: a.status,
            checked_at: a.checked_ms.map(rfc3339),
            errors: a
                .errors
                .into_iter()
                .map(|id| AuditError {
                    text: guidance::finding_text(&id, lang),
                    id,
                })
                .collect(),
        })
        .collect();

    let lookup = match asked {
        Some((domain, at)) => Some(answer(src, &plan, &raw, domain, at, now, lang).await?),
        None => None,
    };
    Ok(StatusReport {
        generated_at: rfc3339(now),
        lang,
        window_seconds: WINDOW_MS / 1000,
        providers,
        senders,
        domains,
        timeline,
        lookup,
        ask_for: guidance::ask_for(lang),
        never_ask_for: guidance::never_ask_for(lang),
    })
}

/// One row: the current window's counts, latency and reason, and since when.
fn group(raw: &Raw, key: &GroupKey, display: &str, spam: &str, now: i64, lang: Lang) -> Group {
    let empty = state::Slices::new(now.div_euclid(SLICE_MS) * SLICE_MS, WINDOW_SLICES);
    let slices = raw.slices.get(key).unwrap_or(&empty);
    let last = slices.counts.len() - 1;
    let counts = slices.window(last);
    let (st, worst) = state::judge(&counts);
    let unknown = Unknown::of(&counts);
    let segs = state::segments(&slices.states());
    let since = segs
        .last()
        .filter(|_| segs.len() > 1)
        .map(|s: &Segment| rfc3339(s.from_ms));
    let detail = raw.window.get(key);
    let mut lat: Vec<f64> = detail.map(|d| d.latencies.clone()).unwrap_or_default();
    lat.sort_by(f64::total_cmp);
    let p50 = state::percentile(&lat, 0.5);
    let reason = worst.map(|o| Reason {
        outcome: o,
        text: guidance::sees_text(o.user_sees(), lang),
        reason: detail.and_then(|d| d.top_reason(o)),
    });
    let facts = Facts {
        provider: display,
        spam_folder: spam,
        worst: worst.map(Outcome::user_sees),
        reason: reason.as_ref().and_then(|r| {
            r.reason
                .as_deref()
                .map(|c| guidance::reason_words(r.outcome, c, lang))
        }),
        minutes: p50.map(minutes),
        unwatched: unknown == Some(Unknown::SeedUnwatched),
    };
    Group {
        who: match key {
            GroupKey::Provider(n) => Who::Provider(n.clone()),
            GroupKey::Sender(n) => Who::Sender(n.clone()),
        },
        display_name: display.to_string(),
        state: st,
        state_text: guidance::state_text(st, lang),
        since,
        last_result_at: raw.last_created.get(key).copied().map(rfc3339),
        counts: Outcome::ALL
            .iter()
            .map(|o| (o.as_str(), counts[state::index(*o)]))
            .collect(),
        runs: counts[..state::N].iter().sum(),
        unwatched: counts[UNWATCHED],
        latency_p50_seconds: p50,
        latency_p95_seconds: state::percentile(&lat, 0.95),
        advice: guidance::advice(st, &facts, lang),
        reason,
        unknown_reason: unknown.map(|id| UnknownReason {
            id,
            text: guidance::unknown_text(id, lang),
        }),
    }
}

/// Whole minutes, rounded up, at least one.
fn minutes(seconds: f64) -> u64 {
    ((seconds / 60.0).ceil() as u64).max(1)
}

async fn answer(
    src: &Source,
    plan: &Plan,
    now_raw: &Raw,
    domain: String,
    at: i64,
    now: i64,
    lang: Lang,
) -> Result<LookupAnswer, StatusError> {
    let resolved = match lookup::by_table(&domain) {
        Some(r) => r,
        None => {
            let settings = ResolverSettings {
                server: src.config.dns.resolver,
                timeout: src.config.dns.timeout,
                ..Default::default()
            };
            match DnsLookup::new(&settings) {
                Ok(dns) => lookup::resolve(&domain, &dns).await,
                Err(e) => {
                    tracing::warn!(error = %e, "status lookup: no DNS resolver");
                    lookup::Resolved {
                        domain: domain.clone(),
                        provider: Provider::Other,
                        via: lookup::Via::DnsUnknown,
                        meant: None,
                    }
                }
            }
        }
    };
    let label = resolved.provider.as_str().to_string();
    let ui = resolved.provider.ui_names();
    let (display, spam) = match lang {
        Lang::En => (ui.name, ui.spam),
        Lang::Zh => (ui.name_zh, ui.spam_zh),
    };
    let probed = plan.providers.contains(&label);
    // The slices around `at`: from a day before (for "since") to a few
    // hours after (for "until"), never past now.
    let end = (at + LOOKUP_AFTER_MS).min(now);
    let first = (at - LOOKUP_BEFORE_MS).div_euclid(SLICE_MS) - (WINDOW_SLICES as i64 - 1);
    let n = (end.div_euclid(SLICE_MS) - first + 1) as usize;
    let start = first * SLICE_MS;
    // The slice that holds `at`; the window that ends with it is the answer.
    let at_end = (at.div_euclid(SLICE_MS) - first) as usize;
    let seeds: read::Seeds = plan
        .seeds
        .iter()
        .filter(|(_, p)| **p == label)
        .map(|(s, p)| (s.clone(), p.clone()))
        .collect();
    let key = GroupKey::Provider(label.clone());
    // The overview's 7 days of slices already hold a recent `at`: take them
    // from there and read only the details (reasons) of the window at `at`.
    let overview = now_raw
        .slices
        .get(&key)
        .filter(|o| o.start_ms <= start && end <= now);
    let at_from = start + (at_end + 1 - WINDOW_SLICES) as i64 * SLICE_MS;
    let at_to = (start + (at_end as i64 + 1) * SLICE_MS).min(now);
    let (slices, detail) = match (probed, overview) {
        (false, _) => (state::Slices::new(start, n), None),
        (true, Some(o)) => {
            let offset = ((start - o.start_ms) / SLICE_MS) as usize;
            let mut counts = o.counts.get(offset..).unwrap_or(&[]).to_vec();
            counts.resize(n, state::ZERO);
            counts.truncate(n);
            let detail = src
                .store
                .call(move |c| read::detail(c, &seeds, at_from, at_to))
                .await?;
            (
                state::Slices {
                    start_ms: start,
                    counts,
                },
                detail.get(&key).cloned(),
            )
        }
        (true, None) => {
            let mut raw = src
                .store
                .call(move |c| {
                    let mut raw = read::count(c, &seeds, start, n, start, end)?;
                    raw.window = read::detail(c, &seeds, at_from, at_to)?;
                    Ok(raw)
                })
                .await?;
            let detail = raw.window.remove(&key);
            let slices = raw
                .slices
                .remove(&key)
                .unwrap_or_else(|| state::Slices::new(start, n));
            (slices, detail)
        }
    };
    let at_counts = slices.window(at_end);
    let (st, worst) = state::judge(&at_counts);
    let states = slices.states();
    // `states[i]` is the window ending with slice `i + WINDOW_SLICES - 1`.
    let idx = at_end + 1 - WINDOW_SLICES;
    let mut from_i = idx;
    while from_i > 0 && states[from_i - 1].1 == st {
        from_i -= 1;
    }
    let mut until_i = idx;
    while until_i + 1 < states.len() && states[until_i + 1].1 == st {
        until_i += 1;
    }
    let from_ms = states[from_i].0 - SLICE_MS;
    let until_ms = states[until_i].0;
    let still = until_i + 1 == states.len() && end == now;
    let now_p50 = raw_p50(now_raw, &key);
    let reason = worst.and_then(|o| detail.as_ref().and_then(|d| d.top_reason(o)));
    let facts = Facts {
        provider: display,
        spam_folder: spam,
        worst: worst.map(Outcome::user_sees),
        reason: reason
            .as_deref()
            .zip(worst)
            .map(|(c, o)| guidance::reason_words(o, c, lang)),
        minutes: now_p50.map(minutes),
        unwatched: Unknown::of(&at_counts) == Some(Unknown::SeedUnwatched),
    };
    let from_s = short_time(from_ms, now);
    let until_s = if still {
        match lang {
            Lang::En => "now".to_string(),
            Lang::Zh => "现在".to_string(),
        }
    } else {
        short_time(until_ms, now)
    };
    let mut text = guidance::lookup_answer(st, &facts, &from_s, &until_s, lang);
    if !probed {
        text = match lang {
            Lang::En => format!("mailcanary does not probe {display}, so it cannot tell how mail to it is doing: follow the usual steps (check the spelling of the address, look in {spam}, wait a few minutes)."),
            Lang::Zh => format!("mailcanary 没有探测 {display}，无法判断其送达情况：请按常规步骤处理（核对邮箱地址拼写，查看「{spam}」，稍等几分钟）。"),
        };
    }
    if let Some(meant) = resolved.meant {
        let note = match lang {
            Lang::En => format!("The domain looks like a typo of {meant}: confirm the spelling with the user first. "),
            Lang::Zh => format!("该域名疑似 {meant} 的拼写错误：请先与用户确认拼写。"),
        };
        text = note + &text;
    }
    Ok(LookupAnswer {
        domain: resolved.domain,
        provider: resolved.provider,
        display_name: display,
        via: resolved.via,
        meant: resolved.meant,
        spam_folder: spam,
        at: rfc3339(at),
        state: st,
        state_text: guidance::state_text(st, lang),
        from: probed.then(|| rfc3339(from_ms)),
        until: (probed && !still).then(|| rfc3339(until_ms)),
        probed,
        answer: text,
    })
}

fn raw_p50(raw: &Raw, key: &GroupKey) -> Option<f64> {
    let mut lat = raw.window.get(key)?.latencies.clone();
    lat.sort_by(f64::total_cmp);
    state::percentile(&lat, 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_an_agent_types() {
        let now = DateTime::parse_from_rfc3339("2026-12-02T11:30:00Z")
            .unwrap()
            .timestamp_millis();
        let t = |s| parse_time(s, now).map(rfc3339);
        assert_eq!(t("2026-12-02T10:40:00Z").unwrap(), "2026-12-02T10:40:00Z");
        assert_eq!(
            t("2026-12-02T18:40:00+08:00").unwrap(),
            "2026-12-02T10:40:00Z"
        );
        assert_eq!(t("2026-12-02T10:40").unwrap(), "2026-12-02T10:40:00Z");
        assert_eq!(t("2026-12-02 10:40").unwrap(), "2026-12-02T10:40:00Z");
        assert_eq!(t("10:40").unwrap(), "2026-12-02T10:40:00Z");
        assert_eq!(t("23:10").unwrap(), "2026-12-01T23:10:00Z");
        assert_eq!(t("now").unwrap(), "2026-12-02T11:30:00Z");
        assert!(matches!(
            t("2027-01-01T00:00:00Z"),
            Err(StatusError::Future(_))
        ));
        assert!(matches!(t("yesterday"), Err(StatusError::Time)));
        assert_eq!(short_time(now - 3_600_000, now), "10:30");
        assert_eq!(short_time(now - 86_400_000, now), "2026-12-01 11:30");
    }
}
