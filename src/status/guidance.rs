//! What a support agent tells the user, in English and Chinese: one text per
//! state and per what the user saw ([`UserSees`]), the questions to ask and
//! the ones never to ask. Texts name providers and folders as the provider's
//! own interface does ([`crate::mailbox_provider::Provider::ui_names`]) and
//! never carry an address, a code or server text: only the bounded values
//! passed in here.

use serde::Serialize;

use super::state::State;
use super::{words_zh, Unknown};
use crate::bounce::Reason as BounceReason;
use crate::probe::outcome::UserSees;
use crate::probe::send::SendReason;
use crate::probe::Outcome;

/// The page's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    En,
    Zh,
}

impl Lang {
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }

    /// `en` or `zh` (and `zh-CN`, `zh-Hans`, ...).
    pub fn parse(s: &str) -> Option<Lang> {
        let s = s.trim().to_ascii_lowercase();
        let primary = s.split(['-', '_']).next().unwrap_or("");
        match primary {
            "en" => Some(Lang::En),
            "zh" => Some(Lang::Zh),
            _ => None,
        }
    }

    /// The preferred supported language of an `Accept-Language` header
    /// (RFC 9110 §12.5.4): the highest q among `en*` and `zh*`; English
    /// when neither is there.
    pub fn from_accept_language(header: &str) -> Lang {
        let mut best: Option<(f32, Lang)> = None;
        for item in header.split(',').take(32) {
            let mut parts = item.split(';');
            let Some(lang) = parts.next().and_then(Lang::parse) else {
                continue;
            };
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::En, |(_, l)| l)
    }
}

/// The words a state is shown with (the page shows them next to the colour).
pub fn state_text(state: State, lang: Lang) -> &'static str {
    match (lang, state) {
        (Lang::En, State::Ok) => "OK: codes arrive in the inbox",
        (Lang::En, State::Degraded) => "Degraded: some codes are late or misplaced",
        (Lang::En, State::Failing) => "Failing: most codes do not reach users",
        (Lang::En, State::Unknown) => "Unknown: no usable probe result in the last hour",
        (Lang::Zh, State::Ok) => "正常：验证码送达收件箱",
        (Lang::Zh, State::Degraded) => "部分异常：部分验证码延迟或未进收件箱",
        (Lang::Zh, State::Failing) => "故障：大部分验证码未送达用户",
        (Lang::Zh, State::Unknown) => "未知：最近一小时没有可用的探测结果",
    }
}

/// A state in one word (the timeline's label).
pub fn state_label(state: State, lang: Lang) -> &'static str {
    match (lang, state) {
        (Lang::En, State::Ok) => "ok",
        (Lang::En, State::Degraded) => "degraded",
        (Lang::En, State::Failing) => "failing",
        (Lang::En, State::Unknown) => "unknown",
        (Lang::Zh, State::Ok) => "正常",
        (Lang::Zh, State::Degraded) => "部分异常",
        (Lang::Zh, State::Failing) => "故障",
        (Lang::Zh, State::Unknown) => "未知",
    }
}

/// An outcome in a word or two (the counts on the page).
pub fn outcome_label(o: Outcome, lang: Lang) -> &'static str {
    match lang {
        Lang::En => o.as_str(),
        Lang::Zh => match o {
            Outcome::Inbox => "收件箱",
            Outcome::Spam => "垃圾邮件",
            Outcome::Tab => "分类标签页",
            Outcome::Expired => "验证码已过期",
            Outcome::Missing => "未送达",
            Outcome::Late => "超时后送达",
            Outcome::Bounced => "被退信",
            Outcome::SendFailed => "发送失败",
        },
    }
}

/// A run's bounded reason (`timeout`, `blocked`) as the page shows it: the
/// id in English, plain words in Chinese (an id this build does not know
/// stays as it is).
pub fn reason_words(outcome: Outcome, reason: &str, lang: Lang) -> &str {
    if lang == Lang::En {
        return reason;
    }
    let words = match outcome {
        Outcome::SendFailed => SendReason::parse(reason).map(words_zh::send_reason),
        Outcome::Bounced => BounceReason::ALL
            .into_iter()
            .find(|r| r.as_str() == reason)
            .map(words_zh::bounce_reason),
        _ => None,
    };
    words.unwrap_or(reason)
}

/// A DNS audit finding in plain words.
pub fn finding_text(id: &str, lang: Lang) -> &'static str {
    let text = match lang {
        Lang::En => crate::audit::findings::catalogue_meaning(id),
        Lang::Zh => words_zh::finding(id),
    };
    text.unwrap_or(match lang {
        Lang::En => "a check failed (see mailcanary check)",
        Lang::Zh => "某项检查未通过（详见 mailcanary check）",
    })
}

/// A domain's audit status (`ok`, `warning`, `error`, `unknown`,
/// `not_audited`) in words.
pub fn audit_status_label(status: &str, lang: Lang) -> &str {
    match (lang, status) {
        (Lang::En, "not_audited") => "not audited yet",
        (Lang::En, s) => s,
        (Lang::Zh, "ok") => "正常",
        (Lang::Zh, "warning") => "警告",
        (Lang::Zh, "error") => "错误",
        (Lang::Zh, "unknown") => "未知",
        (Lang::Zh, "not_audited") => "尚未检查",
        (Lang::Zh, s) => s,
    }
}

/// A duration in seconds, short: `1m 05s`, `42s` (`1分05秒`, `42秒`).
pub fn duration(seconds: f64, lang: Lang) -> String {
    let whole = seconds.max(0.0).round() as u64;
    match (lang, whole >= 60) {
        (Lang::En, true) => format!("{}m {:02}s", whole / 60, whole % 60),
        (Lang::En, false) => format!("{whole}s"),
        (Lang::Zh, true) => format!("{}分{:02}秒", whole / 60, whole % 60),
        (Lang::Zh, false) => format!("{whole}秒"),
    }
}

/// Why a state is unknown, in words.
pub fn unknown_text(why: Unknown, lang: Lang) -> &'static str {
    match (lang, why) {
        (Lang::En, Unknown::NoResults) => "no probe result in the last hour",
        (Lang::En, Unknown::SeedUnwatched) => "the seed mailbox could not be watched",
        (Lang::Zh, Unknown::NoResults) => "最近一小时没有探测结果",
        (Lang::Zh, Unknown::SeedUnwatched) => "探测邮箱无法监控",
    }
}

/// Short words for what the user saw (the "main reason").
pub fn sees_text(what: UserSees, lang: Lang) -> &'static str {
    match (lang, what) {
        (Lang::En, UserSees::Inbox) => "inbox",
        (Lang::En, UserSees::Tab) => "a category tab",
        (Lang::En, UserSees::Spam) => "spam folder",
        (Lang::En, UserSees::TooLate) => "arrived too late",
        (Lang::En, UserSees::Nothing) => "did not arrive",
        (Lang::En, UserSees::NotSent) => "not sent by us",
        (Lang::En, UserSees::Refused) => "refused by the provider",
        (Lang::Zh, UserSees::Inbox) => "收件箱",
        (Lang::Zh, UserSees::Tab) => "分类标签页",
        (Lang::Zh, UserSees::Spam) => "垃圾邮件",
        (Lang::Zh, UserSees::TooLate) => "送达太晚",
        (Lang::Zh, UserSees::Nothing) => "未送达",
        (Lang::Zh, UserSees::NotSent) => "我方未发出",
        (Lang::Zh, UserSees::Refused) => "被对方邮箱拒收",
    }
}

/// The facts that shape an answer; all bounded values.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The provider's name as its users know it.
    pub provider: &'a str,
    /// Its spam folder's name in the page's language.
    pub spam_folder: &'a str,
    /// What most failed runs showed, when any failed.
    pub worst: Option<UserSees>,
    /// The bounded reason of the failed runs (`timeout`, `blocked`, ...).
    pub reason: Option<&'a str>,
    /// Typical delivery time now, in minutes (rounded up), if known.
    pub minutes: Option<u64>,
    /// With state `unknown`: runs there were, but their seed's mailbox
    /// could not be watched.
    pub unwatched: bool,
}

/// What to tell the user, given the state and what the probes saw.
pub fn advice(state: State, f: &Facts<'_>, lang: Lang) -> String {
    let (p, spam) = (f.provider, f.spam_folder);
    let reason = f.reason.unwrap_or("-");
    let main = match (lang, state, f.worst) {
        (Lang::En, State::Unknown, _) if f.unwatched => format!(
            "mailcanary cannot tell how mail to {p} is doing: the seed mailbox could not be watched, so its probes show nothing (tell the mail team). Follow the usual steps (check the spelling of the address, look in {spam}, wait a few minutes)."
        ),
        (Lang::Zh, State::Unknown, _) if f.unwatched => format!(
            "mailcanary 目前无法判断发往 {p} 的邮件情况：探测邮箱无法监控，探测没有结果（请通知邮件团队）。请按常规步骤处理（核对邮箱地址拼写，查看「{spam}」，稍等几分钟）。"
        ),
        (Lang::En, State::Unknown, _) => format!(
            "mailcanary has no recent probe result for {p}: follow the usual steps (check the spelling of the address, look in {spam}, wait a few minutes)."
        ),
        (Lang::Zh, State::Unknown, _) => format!(
            "mailcanary 最近没有 {p} 的探测结果：请按常规步骤处理（核对邮箱地址拼写，查看「{spam}」，稍等几分钟）。"
        ),
        (Lang::En, _, None | Some(UserSees::Inbox | UserSees::Tab)) => format!(
            "Codes to {p} are arriving: ask the user to check the spelling of the address, look in {spam} and in other tabs, and wait a few minutes."
        ),
        (Lang::Zh, _, None | Some(UserSees::Inbox | UserSees::Tab)) => format!(
            "发往 {p} 的验证码正常送达：请用户核对邮箱地址拼写，查看「{spam}」和其他分类，并稍等几分钟。"
        ),
        (Lang::En, _, Some(UserSees::Spam)) => format!(
            "Codes to {p} are landing in the spam folder ({spam}): ask the user to look there and mark the message as not spam."
        ),
        (Lang::Zh, _, Some(UserSees::Spam)) => format!(
            "发往 {p} 的验证码进了垃圾邮件文件夹（{spam}）：请用户到那里查找，并标记为「非垃圾邮件」。"
        ),
        (Lang::En, _, Some(UserSees::TooLate)) => format!(
            "Codes to {p} are arriving late: ask the user to wait a few minutes and use only the newest code."
        ),
        (Lang::Zh, _, Some(UserSees::TooLate)) => format!(
            "发往 {p} 的验证码送达较慢：请用户稍等几分钟，并只使用最新的验证码。"
        ),
        (Lang::En, _, Some(UserSees::Nothing)) => format!(
            "Codes to {p} are not arriving: ask the user to check the spelling of the address and look in {spam}; pressing resend will not help now. Tell the mail team."
        ),
        (Lang::Zh, _, Some(UserSees::Nothing)) => format!(
            "发往 {p} 的验证码没有送达：请用户核对邮箱地址拼写并查看「{spam}」；现在重复发送也无济于事。请通知邮件团队。"
        ),
        (Lang::En, _, Some(UserSees::NotSent)) => format!(
            "Our side is not sending codes (reason: {reason}): pressing resend will not help. Tell the mail team."
        ),
        (Lang::Zh, _, Some(UserSees::NotSent)) => format!(
            "我方发送验证码失败（原因：{reason}）：重复发送无济于事。请通知邮件团队。"
        ),
        (Lang::En, _, Some(UserSees::Refused)) => format!(
            "{p} is refusing our codes (reason: {reason}): ask the user to check the spelling of the address. Tell the mail team."
        ),
        (Lang::Zh, _, Some(UserSees::Refused)) => format!(
            "{p} 拒收了我们的验证码（原因：{reason}）：请用户核对邮箱地址拼写。请通知邮件团队。"
        ),
    };
    let mut out = main;
    if let Some(m) = f.minutes {
        out.push(' ');
        out.push_str(&match lang {
            Lang::En => format!("Delivery takes about {m} minute{} now.", plural(m)),
            Lang::Zh => format!("目前送达大约需要 {m} 分钟。"),
        });
    }
    out.push(' ');
    out.push_str(newest_code(lang));
    out
}

/// The answer to a lookup: what the probes saw around the time the code
/// was requested, between `from` and `until` (already formatted times).
pub fn lookup_answer(state: State, f: &Facts<'_>, from: &str, until: &str, lang: Lang) -> String {
    let (p, spam) = (f.provider, f.spam_folder);
    let saw = match (lang, state, f.worst) {
        (Lang::En, State::Unknown, _) if f.unwatched => {
            format!("There were no usable probe results for {p} between {from} and {until}: the seed mailbox could not be watched. Follow the usual steps (check the spelling of the address, look in {spam}).")
        }
        (Lang::Zh, State::Unknown, _) if f.unwatched => {
            format!("{from} 至 {until} 之间没有 {p} 的可用探测结果：探测邮箱无法监控。请按常规步骤处理（核对邮箱地址拼写，查看「{spam}」）。")
        }
        (Lang::En, State::Unknown, _) => {
            format!("There were no probe results for {p} between {from} and {until}.")
        }
        (Lang::Zh, State::Unknown, _) => {
            format!("{from} 至 {until} 之间没有 {p} 的探测结果。")
        }
        (Lang::En, _, None | Some(UserSees::Inbox | UserSees::Tab)) => {
            format!("Codes to {p} were arriving in the inbox between {from} and {until}: ask the user to check the spelling of the address and look in {spam}.")
        }
        (Lang::Zh, _, None | Some(UserSees::Inbox | UserSees::Tab)) => {
            format!("{from} 至 {until} 之间，发往 {p} 的验证码正常送达收件箱：请用户核对邮箱地址拼写，并查看「{spam}」。")
        }
        (Lang::En, _, Some(UserSees::Spam)) => {
            format!("Codes to {p} were landing in the spam folder ({spam}) between {from} and {until}: ask the user to look there.")
        }
        (Lang::Zh, _, Some(UserSees::Spam)) => {
            format!("{from} 至 {until} 之间，发往 {p} 的验证码进了「{spam}」：请用户到那里查找。")
        }
        (Lang::En, _, Some(UserSees::TooLate)) => {
            format!("Codes to {p} were arriving late between {from} and {until}: ask the user to use only the newest code.")
        }
        (Lang::Zh, _, Some(UserSees::TooLate)) => {
            format!("{from} 至 {until} 之间，发往 {p} 的验证码送达较慢：请用户只使用最新的验证码。")
        }
        (Lang::En, _, Some(UserSees::Nothing)) => {
            format!("Codes to {p} were not arriving between {from} and {until}: the code the user asked for probably never came. Tell the mail team.")
        }
        (Lang::Zh, _, Some(UserSees::Nothing)) => {
            format!("{from} 至 {until} 之间，发往 {p} 的验证码没有送达：用户请求的验证码很可能没有收到。请通知邮件团队。")
        }
        (Lang::En, _, Some(UserSees::NotSent)) => {
            format!("Our side was not sending codes between {from} and {until} (reason: {}). Tell the mail team.", f.reason.unwrap_or("-"))
        }
        (Lang::Zh, _, Some(UserSees::NotSent)) => {
            format!(
                "{from} 至 {until} 之间我方发送验证码失败（原因：{}）。请通知邮件团队。",
                f.reason.unwrap_or("-")
            )
        }
        (Lang::En, _, Some(UserSees::Refused)) => {
            format!("{p} was refusing our codes between {from} and {until} (reason: {}): ask the user to check the spelling of the address. Tell the mail team.", f.reason.unwrap_or("-"))
        }
        (Lang::Zh, _, Some(UserSees::Refused)) => {
            format!("{from} 至 {until} 之间，{p} 拒收了我们的验证码（原因：{}）：请用户核对邮箱地址拼写。请通知邮件团队。", f.reason.unwrap_or("-"))
        }
    };
    let mut out = saw;
    if let Some(m) = f.minutes {
        out.push(' ');
        out.push_str(&match lang {
            Lang::En => format!("Delivery takes about {m} minute{} now.", plural(m)),
            Lang::Zh => format!("目前送达大约需要 {m} 分钟。"),
        });
    }
    out.push(' ');
    out.push_str(newest_code(lang));
    out
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn newest_code(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "If they resend, only the newest code works.",
        Lang::Zh => "如果重新发送，只有最新的验证码有效。",
    }
}

/// What to ask the user for: facts that help and reveal nothing secret.
pub fn ask_for(lang: Lang) -> &'static [&'static str] {
    match lang {
        Lang::En => &[
            "which mail provider the account uses (the part after @ is enough)",
            "when they asked for the code (date, time and time zone)",
            "what the page said after they asked",
            "whether they pressed resend, and how often",
            "whether they looked in the spam or junk folder and in other tabs",
        ],
        Lang::Zh => &[
            "账号使用哪家邮箱（@ 后面的部分即可）",
            "什么时候请求的验证码（日期、时间和时区）",
            "请求后页面显示了什么",
            "是否点击了重新发送，点了几次",
            "是否查看过垃圾邮件文件夹和其他分类",
        ],
    }
}

/// What never to ask for.
pub fn never_ask_for(lang: Lang) -> &'static [&'static str] {
    match lang {
        Lang::En => &[
            "the password of the account or of the mailbox",
            "the full verification code",
            "full message headers or the message source",
            "screenshots of their mailbox",
        ],
        Lang::Zh => &[
            "账号或邮箱的密码",
            "完整的验证码",
            "完整的邮件头或邮件原文",
            "邮箱界面的截图",
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_preferred_supported_language() {
        assert_eq!(
            Lang::from_accept_language("zh-CN,zh;q=0.9,en;q=0.8"),
            Lang::Zh
        );
        assert_eq!(
            Lang::from_accept_language("en-US,en;q=0.9,zh;q=0.5"),
            Lang::En
        );
        assert_eq!(Lang::from_accept_language("fr-FR, zh-Hans;q=0.3"), Lang::Zh);
        assert_eq!(Lang::from_accept_language("de"), Lang::En);
        assert_eq!(Lang::from_accept_language("zh;q=0, en;q=0.1"), Lang::En);
        assert_eq!(Lang::from_accept_language(""), Lang::En);
        assert_eq!(Lang::parse("ZH_tw"), Some(Lang::Zh));
    }

    #[test]
    fn the_spam_answer_names_the_providers_folder() {
        let f = Facts {
            provider: "QQ Mail",
            spam_folder: "垃圾箱",
            worst: Some(UserSees::Spam),
            reason: None,
            minutes: Some(2),
            unwatched: false,
        };
        let a = lookup_answer(State::Failing, &f, "10:40", "11:20", Lang::En);
        assert_eq!(
            a,
            "Codes to QQ Mail were landing in the spam folder (垃圾箱) between 10:40 and 11:20: ask the user to look there. Delivery takes about 2 minutes now. If they resend, only the newest code works."
        );
        let zh = advice(State::Failing, &f, Lang::Zh);
        assert!(zh.contains("垃圾箱") && zh.contains("最新"), "{zh}");
    }

    #[test]
    fn every_state_and_sight_has_words_in_both_languages() {
        let all = [
            UserSees::Inbox,
            UserSees::Tab,
            UserSees::Spam,
            UserSees::TooLate,
            UserSees::Nothing,
            UserSees::NotSent,
            UserSees::Refused,
        ];
        for lang in [Lang::En, Lang::Zh] {
            for s in State::ALL {
                assert!(!state_text(s, lang).is_empty());
                assert!(!state_label(s, lang).is_empty());
                for w in all {
                    assert!(!sees_text(w, lang).is_empty());
                    let f = Facts {
                        provider: "P",
                        spam_folder: "S",
                        worst: Some(w),
                        reason: Some("timeout"),
                        minutes: None,
                        unwatched: false,
                    };
                    assert!(advice(s, &f, lang).contains("P") || w == UserSees::NotSent);
                    let blind = Facts {
                        unwatched: true,
                        ..f
                    };
                    if s == State::Unknown {
                        let a = advice(s, &blind, lang);
                        let l = lookup_answer(s, &blind, "10:40", "11:40", lang);
                        let why = unknown_text(Unknown::SeedUnwatched, lang);
                        assert!(a.contains(why) && l.contains(why), "{a} / {l}");
                    }
                }
            }
            assert!(ask_for(lang).len() >= 4 && never_ask_for(lang).len() >= 4);
        }
    }
}
