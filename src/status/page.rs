//! The view's two renderings of a [`StatusReport`]: the HTML page (askama,
//! `templates/status.html`: compile-time checked, every value escaped) and
//! the CLI's plain text. The JSON is the report serialized as it is.

use std::fmt::Write as _;

use askama::Template;

use super::guidance::{self, Lang};
use super::state::State;
use super::{Group, Reason, StatusReport, Unknown};
use crate::probe::Outcome;

/// Seconds between the page's own reloads.
pub const REFRESH_SECONDS: u32 = 60;

/// The page's fixed words.
pub struct Words {
    pub title: &'static str,
    pub providers: &'static str,
    pub senders: &'static str,
    pub provider: &'static str,
    pub sender: &'static str,
    pub state: &'static str,
    pub since: &'static str,
    pub last: &'static str,
    pub counts: &'static str,
    pub latency: &'static str,
    pub reason: &'static str,
    pub advice: &'static str,
    pub domains: &'static str,
    pub domain: &'static str,
    pub checked: &'static str,
    pub errors: &'static str,
    pub none: &'static str,
    pub timeline: &'static str,
    pub lookup: &'static str,
    pub lookup_domain: &'static str,
    pub lookup_at: &'static str,
    pub lookup_button: &'static str,
    pub lookup_hint: &'static str,
    pub ask: &'static str,
    pub never: &'static str,
    pub still: &'static str,
    pub generated: &'static str,
    pub other_lang: &'static str,
    pub other_lang_code: &'static str,
    pub times_utc: &'static str,
    pub window: &'static str,
    /// Runs left out of the counts (their seed's mailbox was not watched).
    pub not_counted: &'static str,
}

impl Words {
    pub fn of(lang: Lang) -> &'static Words {
        match lang {
            Lang::En => &EN,
            Lang::Zh => &ZH,
        }
    }
}

static EN: Words = Words {
    title: "Verification mail status",
    providers: "By mailbox provider",
    senders: "By sender",
    provider: "Provider",
    sender: "Sender",
    state: "State",
    since: "Since",
    last: "Last probe",
    counts: "Probes in the last hour",
    latency: "Delivery time p50 / p95",
    reason: "Main reason",
    advice: "What to tell the user",
    domains: "Sending domains (DNS audit)",
    domain: "Domain",
    checked: "Checked",
    errors: "Problems",
    none: "none",
    timeline: "State changes, last 7 days",
    lookup: "Look up a user's provider",
    lookup_domain: "The user's mail domain (the part after @)",
    lookup_at: "When they asked for the code (UTC)",
    lookup_button: "Look up",
    lookup_hint: "Only the domain is used; the part before @ is never kept or shown.",
    ask: "Ask the user for",
    never: "Never ask for",
    still: "now",
    generated: "Generated",
    other_lang: "中文",
    other_lang_code: "zh",
    times_utc: "All times are UTC.",
    window: "States are judged over the last hour of probes (six 10-minute slices).",
    not_counted: "not counted",
};

static ZH: Words = Words {
    title: "验证码邮件送达状态",
    providers: "按邮箱服务商",
    senders: "按发件身份",
    provider: "邮箱服务商",
    sender: "发件身份",
    state: "状态",
    since: "开始于",
    last: "最近探测",
    counts: "最近一小时的探测",
    latency: "送达时间（中位数 / 95% 分位）",
    reason: "主要原因",
    advice: "如何答复用户",
    domains: "发件域名（DNS 检查）",
    domain: "域名",
    checked: "检查时间",
    errors: "问题",
    none: "无",
    timeline: "状态变化（最近 7 天）",
    lookup: "查询用户的邮箱服务商",
    lookup_domain: "用户的邮箱域名（@ 后面的部分）",
    lookup_at: "用户请求验证码的时间（UTC）",
    lookup_button: "查询",
    lookup_hint: "只使用域名；@ 前面的部分不会被保存或显示。",
    ask: "可以向用户询问",
    never: "切勿向用户索取",
    still: "现在",
    generated: "生成时间",
    other_lang: "English",
    other_lang_code: "en",
    times_utc: "所有时间均为 UTC。",
    window: "状态按最近一小时（六个 10 分钟时段）的探测结果判断。",
    not_counted: "未计入",
};

/// The HTML page.
#[derive(Template)]
#[template(path = "status.html")]
pub struct Page<'a> {
    pub r: &'a StatusReport,
    pub w: &'a Words,
    pub refresh: u32,
    /// A problem with the question asked (bad domain or time).
    pub error: Option<String>,
    /// The form's values: the looked-up domain (normalized) and time.
    pub domain: String,
    pub at: String,
}

impl Page<'_> {
    /// `2026-12-02T10:40:00Z` → `2026-12-02 10:40`.
    pub fn hm(&self, rfc3339: &str) -> String {
        let s = rfc3339.trim_end_matches('Z');
        match s.split_once('T') {
            Some((d, t)) => format!("{d} {}", t.get(..5).unwrap_or(t)),
            None => s.to_string(),
        }
    }

    /// The outcomes that happened, with their counts (`inbox 5, spam 2`),
    /// and the runs not counted.
    pub fn counts(&self, g: &Group) -> String {
        counts_line(g, self.r.lang)
    }

    /// Seconds → `1m 05s` / `42s`.
    pub fn dur(&self, seconds: &Option<f64>) -> String {
        match seconds {
            Some(s) => guidance::duration(*s, self.r.lang),
            None => "-".into(),
        }
    }

    /// A state in one word, in the page's language.
    pub fn label(&self, state: &State) -> &'static str {
        guidance::state_label(*state, self.r.lang)
    }

    /// The main reason: what the failed runs showed and why, or why the
    /// state is unknown.
    pub fn why(&self, g: &Group) -> String {
        why_line(g, self.r.lang).unwrap_or_else(|| "-".into())
    }

    /// A domain's audit status in words.
    pub fn audit_status<'s>(&self, status: &'s str) -> &'s str {
        guidance::audit_status_label(status, self.r.lang)
    }
}

/// `inbox 5, spam 2` (`收件箱 5，垃圾邮件 2`), and the runs not counted.
fn counts_line(g: &Group, lang: Lang) -> String {
    let w = Words::of(lang);
    let mut parts: Vec<String> = g
        .counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| {
            let label = Outcome::parse(k).map_or(*k, |o| guidance::outcome_label(o, lang));
            format!("{label} {n}")
        })
        .collect();
    if g.unwatched > 0 {
        let why = guidance::unknown_text(Unknown::SeedUnwatched, lang);
        parts.push(match lang {
            Lang::En => format!("{} {} ({why})", w.not_counted, g.unwatched),
            Lang::Zh => format!("{} {}（{why}）", w.not_counted, g.unwatched),
        });
    }
    if parts.is_empty() {
        w.none.to_string()
    } else {
        parts.join(match lang {
            Lang::En => ", ",
            Lang::Zh => "，",
        })
    }
}

/// `spam folder`, `not sent by us (timeout)`, or why the state is unknown.
fn why_line(g: &Group, lang: Lang) -> Option<String> {
    match (&g.reason, &g.unknown_reason) {
        (Some(r), _) => Some(reason_line(r, lang)),
        (None, Some(u)) => Some(u.text.to_string()),
        (None, None) => None,
    }
}

fn reason_line(r: &Reason, lang: Lang) -> String {
    match (&r.reason, lang) {
        (None, _) => r.text.to_string(),
        (Some(why), Lang::En) => format!("{} ({why})", r.text),
        (Some(why), Lang::Zh) => format!(
            "{}（{}）",
            r.text,
            guidance::reason_words(r.outcome, why, lang)
        ),
    }
}

/// The page for `r`, with an optional problem to show above it.
pub fn html(r: &StatusReport, error: Option<String>) -> Result<String, askama::Error> {
    let (domain, at) = match &r.lookup {
        Some(l) => (l.domain.clone(), l.at.get(..16).unwrap_or("").to_string()),
        None => (String::new(), String::new()),
    };
    Page {
        r,
        w: Words::of(r.lang),
        refresh: REFRESH_SECONDS,
        error,
        domain,
        at,
    }
    .render()
}

/// The CLI's text rendering.
pub fn text(r: &StatusReport) -> String {
    let w = Words::of(r.lang);
    let mut o = String::new();
    let _ = writeln!(o, "{} ({} {})", w.title, w.generated, r.generated_at);
    if let Some(l) = &r.lookup {
        let _ = writeln!(
            o,
            "\n{}: {} → {} ({})",
            w.lookup, l.domain, l.display_name, l.state_text
        );
        let _ = writeln!(o, "  {}", l.answer);
    }
    for (title, groups) in [(w.providers, &r.providers), (w.senders, &r.senders)] {
        let _ = writeln!(o, "\n{title}:");
        if groups.is_empty() {
            let _ = writeln!(o, "  {}", w.none);
        }
        for g in groups {
            let _ = writeln!(
                o,
                "  {:<20} {:<9} {}",
                g.display_name,
                guidance::state_label(g.state, r.lang),
                counts_line(g, r.lang)
            );
            let _ = writeln!(o, "    {}", g.state_text);
            if let Some(since) = &g.since {
                let _ = writeln!(o, "    {}: {since}", w.since);
            }
            if let Some(p50) = g.latency_p50_seconds {
                let _ = writeln!(
                    o,
                    "    {}: {} / {}",
                    w.latency,
                    guidance::duration(p50, r.lang),
                    guidance::duration(g.latency_p95_seconds.unwrap_or(p50), r.lang)
                );
            }
            if let Some(why) = why_line(g, r.lang) {
                let _ = writeln!(o, "    {}: {why}", w.reason);
            }
            let _ = writeln!(o, "    {}", g.advice);
        }
    }
    let _ = writeln!(o, "\n{}:", w.domains);
    if r.domains.is_empty() {
        let _ = writeln!(o, "  {}", w.none);
    }
    for d in &r.domains {
        let _ = writeln!(
            o,
            "  {:<30} {}",
            d.domain,
            guidance::audit_status_label(&d.status, r.lang)
        );
        for e in &d.errors {
            let _ = writeln!(o, "    - {} ({})", e.text, e.id);
        }
    }
    let _ = writeln!(o, "\n{}:", w.timeline);
    for c in &r.timeline {
        let _ = writeln!(
            o,
            "  {} {:<20} {}",
            c.from,
            c.display_name,
            guidance::state_label(c.state, r.lang)
        );
    }
    let _ = writeln!(o, "\n{}:", w.ask);
    for a in r.ask_for {
        let _ = writeln!(o, "  - {a}");
    }
    let _ = writeln!(o, "{}:", w.never);
    for a in r.never_ask_for {
        let _ = writeln!(o, "  - {a}");
    }
    o
}
