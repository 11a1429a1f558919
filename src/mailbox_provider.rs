//! Which mailbox provider a domain or an MX host belongs to, and which
//! provider a mistyped domain was meant for (`gmial.com` → Gmail).
//!
//! A leaf module: pure tables and functions, no I/O, imported by the bounce
//! classifier and the probe/bounce diagnosis. Labels are a closed enum
//! ([`Provider::ALL`]), so a metric label built from them stays bounded.
//!
//! The domain table lists the consumer domains that hold most of the world's
//! personal mailboxes (and so most verification-code recipients); anything
//! else is [`Provider::Other`]. The MX table lists host-name suffixes of the
//! big hosted services, for domains whose MX points at them (a company on
//! Microsoft 365 or Tencent Exmail).

/// A mailbox provider, as used in metric labels and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Provider {
    /// Gmail (gmail.com, googlemail.com).
    Gmail,
    /// Google Workspace: a company domain whose MX is Google's.
    GoogleWorkspace,
    /// Outlook.com / Hotmail / Live / MSN (consumer Microsoft).
    Outlook,
    /// Microsoft 365 / Exchange Online: a company domain hosted by Microsoft.
    Microsoft365,
    /// Yahoo Mail (and ymail, rocketmail).
    Yahoo,
    /// AOL Mail.
    Aol,
    /// Apple iCloud Mail (icloud.com, me.com, mac.com).
    Icloud,
    /// Tencent QQ Mail (qq.com, foxmail.com).
    Qq,
    /// Tencent Exmail: a company domain hosted by Tencent.
    TencentExmail,
    /// NetEase consumer mail (163.com, 126.com, yeah.net).
    Netease,
    /// NetEase Qiye: a company domain hosted by NetEase.
    NeteaseQiye,
    /// Sina Mail.
    Sina,
    /// Sohu Mail.
    Sohu,
    /// Alibaba Mail (aliyun.com) and Alibaba's hosted company mail.
    Aliyun,
    /// Yandex Mail (and Yandex 360 hosted domains).
    Yandex,
    /// Mail.ru (mail.ru, bk.ru, list.ru, inbox.ru).
    Mailru,
    /// GMX (and mail.com, same operator).
    Gmx,
    /// WEB.DE.
    Webde,
    /// T-Online.
    Tonline,
    /// Zoho Mail (consumer and hosted).
    Zoho,
    /// Proton Mail.
    Proton,
    /// Fastmail (consumer and hosted).
    Fastmail,
    /// Orange / Wanadoo (France).
    Orange,
    /// Free (France).
    Free,
    /// Naver (Korea).
    Naver,
    /// Comcast / Xfinity.
    Comcast,
    /// Any other domain.
    Other,
}

impl Provider {
    /// Every label, in a fixed order (metric label values are defined here once).
    pub const ALL: [Provider; 27] = [
        Provider::Gmail,
        Provider::GoogleWorkspace,
        Provider::Outlook,
        Provider::Microsoft365,
        Provider::Yahoo,
        Provider::Aol,
        Provider::Icloud,
        Provider::Qq,
        Provider::TencentExmail,
        Provider::Netease,
        Provider::NeteaseQiye,
        Provider::Sina,
        Provider::Sohu,
        Provider::Aliyun,
        Provider::Yandex,
        Provider::Mailru,
        Provider::Gmx,
        Provider::Webde,
        Provider::Tonline,
        Provider::Zoho,
        Provider::Proton,
        Provider::Fastmail,
        Provider::Orange,
        Provider::Free,
        Provider::Naver,
        Provider::Comcast,
        Provider::Other,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Gmail => "gmail",
            Provider::GoogleWorkspace => "google_workspace",
            Provider::Outlook => "outlook",
            Provider::Microsoft365 => "microsoft365",
            Provider::Yahoo => "yahoo",
            Provider::Aol => "aol",
            Provider::Icloud => "icloud",
            Provider::Qq => "qq",
            Provider::TencentExmail => "tencent_exmail",
            Provider::Netease => "netease",
            Provider::NeteaseQiye => "netease_qiye",
            Provider::Sina => "sina",
            Provider::Sohu => "sohu",
            Provider::Aliyun => "aliyun",
            Provider::Yandex => "yandex",
            Provider::Mailru => "mailru",
            Provider::Gmx => "gmx",
            Provider::Webde => "webde",
            Provider::Tonline => "tonline",
            Provider::Zoho => "zoho",
            Provider::Proton => "proton",
            Provider::Fastmail => "fastmail",
            Provider::Orange => "orange",
            Provider::Free => "free",
            Provider::Naver => "naver",
            Provider::Comcast => "comcast",
            Provider::Other => "other",
        }
    }
}

impl Provider {
    /// The provider with this label value.
    pub fn parse(label: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|p| p.as_str() == label)
    }

    /// What the provider's own web and app interface calls it and its spam
    /// folder, in English and Chinese: the words a support agent tells a
    /// user to look for.
    pub fn ui_names(self) -> UiNames {
        let n = |name, name_zh, spam, spam_zh| UiNames {
            name,
            name_zh,
            spam,
            spam_zh,
        };
        match self {
            Provider::Gmail => n("Gmail", "Gmail", "Spam", "垃圾邮件"),
            Provider::GoogleWorkspace => {
                n("Google Workspace", "Google Workspace", "Spam", "垃圾邮件")
            }
            Provider::Outlook => n("Outlook.com", "Outlook.com", "Junk Email", "垃圾邮件"),
            Provider::Microsoft365 => n("Microsoft 365", "Microsoft 365", "Junk Email", "垃圾邮件"),
            Provider::Yahoo => n("Yahoo Mail", "雅虎邮箱", "Spam", "垃圾邮件"),
            Provider::Aol => n("AOL Mail", "AOL 邮箱", "Spam", "垃圾邮件"),
            Provider::Icloud => n("iCloud Mail", "iCloud 邮件", "Junk", "垃圾邮件"),
            Provider::Qq => n("QQ Mail", "QQ邮箱", "Spam", "垃圾箱"),
            Provider::TencentExmail => n("Tencent Exmail", "腾讯企业邮箱", "Spam", "垃圾箱"),
            Provider::Netease => n("NetEase Mail", "网易邮箱", "Spam", "垃圾邮件"),
            Provider::NeteaseQiye => n("NetEase Qiye Mail", "网易企业邮箱", "Spam", "垃圾邮件"),
            Provider::Sina => n("Sina Mail", "新浪邮箱", "Spam", "垃圾邮件"),
            Provider::Sohu => n("Sohu Mail", "搜狐邮箱", "Spam", "垃圾邮件"),
            Provider::Aliyun => n("Alibaba Mail", "阿里邮箱", "Spam", "垃圾邮件"),
            Provider::Yandex => n("Yandex Mail", "Yandex 邮箱", "Spam", "垃圾邮件"),
            Provider::Mailru => n("Mail.ru", "Mail.ru", "Spam", "垃圾邮件"),
            Provider::Gmx => n("GMX", "GMX", "Spam", "垃圾邮件"),
            Provider::Webde => n("WEB.DE", "WEB.DE", "Spam", "垃圾邮件"),
            Provider::Tonline => n("T-Online", "T-Online", "Spam", "垃圾邮件"),
            Provider::Zoho => n("Zoho Mail", "Zoho 邮箱", "Spam", "垃圾邮件"),
            Provider::Proton => n("Proton Mail", "Proton Mail", "Spam", "垃圾邮件"),
            Provider::Fastmail => n("Fastmail", "Fastmail", "Spam", "垃圾邮件"),
            Provider::Orange => n("Orange", "Orange", "Spam", "垃圾邮件"),
            Provider::Free => n("Free", "Free", "Spam", "垃圾邮件"),
            Provider::Naver => n("Naver Mail", "Naver 邮箱", "Spam", "垃圾邮件"),
            Provider::Comcast => n("Xfinity (Comcast)", "Xfinity (Comcast)", "Spam", "垃圾邮件"),
            Provider::Other => n(
                "their mail provider",
                "用户的邮箱服务商",
                "Spam or Junk",
                "垃圾邮件",
            ),
        }
    }
}

/// A provider's name and spam folder's name as its users see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UiNames {
    pub name: &'static str,
    pub name_zh: &'static str,
    pub spam: &'static str,
    pub spam_zh: &'static str,
}

/// Serialized as its label.
impl serde::Serialize for Provider {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Consumer mail domains → provider. Exact names (lower case, no trailing dot).
pub const DOMAINS: &[(&str, Provider)] = &[
    ("gmail.com", Provider::Gmail),
    ("googlemail.com", Provider::Gmail),
    ("outlook.com", Provider::Outlook),
    ("hotmail.com", Provider::Outlook),
    ("hotmail.co.uk", Provider::Outlook),
    ("hotmail.fr", Provider::Outlook),
    ("hotmail.de", Provider::Outlook),
    ("hotmail.it", Provider::Outlook),
    ("hotmail.es", Provider::Outlook),
    ("live.com", Provider::Outlook),
    ("live.cn", Provider::Outlook),
    ("live.co.uk", Provider::Outlook),
    ("live.fr", Provider::Outlook),
    ("msn.com", Provider::Outlook),
    ("outlook.fr", Provider::Outlook),
    ("outlook.de", Provider::Outlook),
    ("yahoo.com", Provider::Yahoo),
    ("yahoo.co.uk", Provider::Yahoo),
    ("yahoo.co.jp", Provider::Yahoo),
    ("yahoo.fr", Provider::Yahoo),
    ("yahoo.de", Provider::Yahoo),
    ("yahoo.com.br", Provider::Yahoo),
    ("yahoo.co.in", Provider::Yahoo),
    ("ymail.com", Provider::Yahoo),
    ("rocketmail.com", Provider::Yahoo),
    ("aol.com", Provider::Aol),
    ("icloud.com", Provider::Icloud),
    ("me.com", Provider::Icloud),
    ("mac.com", Provider::Icloud),
    ("qq.com", Provider::Qq),
    ("vip.qq.com", Provider::Qq),
    ("foxmail.com", Provider::Qq),
    ("163.com", Provider::Netease),
    ("126.com", Provider::Netease),
    ("yeah.net", Provider::Netease),
    ("188.com", Provider::Netease),
    ("vip.163.com", Provider::Netease),
    ("sina.com", Provider::Sina),
    ("sina.cn", Provider::Sina),
    ("sohu.com", Provider::Sohu),
    ("aliyun.com", Provider::Aliyun),
    ("yandex.ru", Provider::Yandex),
    ("yandex.com", Provider::Yandex),
    ("yandex.by", Provider::Yandex),
    ("yandex.kz", Provider::Yandex),
    ("yandex.ua", Provider::Yandex),
    ("ya.ru", Provider::Yandex),
    ("mail.ru", Provider::Mailru),
    ("bk.ru", Provider::Mailru),
    ("list.ru", Provider::Mailru),
    ("inbox.ru", Provider::Mailru),
    ("internet.ru", Provider::Mailru),
    ("gmx.de", Provider::Gmx),
    ("gmx.net", Provider::Gmx),
    ("gmx.com", Provider::Gmx),
    ("gmx.at", Provider::Gmx),
    ("gmx.ch", Provider::Gmx),
    ("mail.com", Provider::Gmx),
    ("web.de", Provider::Webde),
    ("t-online.de", Provider::Tonline),
    ("zoho.com", Provider::Zoho),
    ("zohomail.com", Provider::Zoho),
    ("proton.me", Provider::Proton),
    ("protonmail.com", Provider::Proton),
    ("pm.me", Provider::Proton),
    ("fastmail.com", Provider::Fastmail),
    ("orange.fr", Provider::Orange),
    ("wanadoo.fr", Provider::Orange),
    ("free.fr", Provider::Free),
    ("naver.com", Provider::Naver),
    ("comcast.net", Provider::Comcast),
];

/// MX host-name suffixes → provider hosting the domain's mail. A suffix
/// matches at a label boundary (`aspmx.l.google.com` ends with `.google.com`).
/// More specific suffixes come first.
pub const MX_SUFFIXES: &[(&str, Provider)] = &[
    ("olc.protection.outlook.com", Provider::Outlook),
    ("mail.protection.outlook.com", Provider::Microsoft365),
    ("google.com", Provider::GoogleWorkspace),
    ("googlemail.com", Provider::GoogleWorkspace),
    ("yahoodns.net", Provider::Yahoo),
    ("mail.icloud.com", Provider::Icloud),
    ("exmail.qq.com", Provider::TencentExmail),
    ("qq.com", Provider::Qq),
    ("qiye.163.com", Provider::NeteaseQiye),
    ("netease.com", Provider::Netease),
    ("163.com", Provider::Netease),
    ("126.com", Provider::Netease),
    ("qiye.aliyun.com", Provider::Aliyun),
    ("aliyun.com", Provider::Aliyun),
    ("yandex.net", Provider::Yandex),
    ("yandex.ru", Provider::Yandex),
    ("mail.ru", Provider::Mailru),
    ("gmx.net", Provider::Gmx),
    ("web.de", Provider::Webde),
    ("t-online.de", Provider::Tonline),
    ("zoho.com", Provider::Zoho),
    ("zoho.eu", Provider::Zoho),
    ("zoho.in", Provider::Zoho),
    ("protonmail.ch", Provider::Proton),
    ("messagingengine.com", Provider::Fastmail),
    ("naver.com", Provider::Naver),
    ("comcast.net", Provider::Comcast),
];

/// Longest domain considered for a typo match (longer ones are never typos
/// of a table entry and would only cost time).
const MAX_TYPO_LEN: usize = 64;

fn normalize(domain: &str) -> String {
    domain.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// The provider of a mail domain from the consumer table; [`Provider::Other`]
/// when it is not listed (a company domain needs its MX: [`for_mx_host`]).
pub fn for_domain(domain: &str) -> Provider {
    let d = normalize(domain);
    DOMAINS
        .iter()
        .find(|(name, _)| *name == d)
        .map_or(Provider::Other, |&(_, p)| p)
}

/// The provider hosting a domain whose MX is `host`, or [`Provider::Other`].
pub fn for_mx_host(host: &str) -> Provider {
    let h = normalize(host);
    MX_SUFFIXES
        .iter()
        .find(|(suffix, _)| {
            h == *suffix
                || (h.len() > suffix.len()
                    && h.ends_with(suffix)
                    && h.as_bytes()[h.len() - suffix.len() - 1] == b'.')
        })
        .map_or(Provider::Other, |&(_, p)| p)
}

/// A domain that is probably a mistyping of a table domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Typo {
    /// The table domain that was probably meant (`gmail.com`).
    pub meant: &'static str,
    /// Its provider.
    pub provider: Provider,
}

/// When `domain` is not in the table but one or two edits away from exactly
/// one table domain, the domain that was meant.
///
/// Edits are insertions, deletions, substitutions and swaps of neighbours
/// (optimal string alignment distance). To keep real domains from being
/// called typos: the part before the public suffix must be the same and the
/// suffix mistyped (`qq.con`, `163.cm`), or the suffix the same and the name
/// of the meant domain at least five characters long (`gmial.com`,
/// `hotmial.com`), with one edit only for names of up to five characters.
pub fn typo_of(domain: &str) -> Option<Typo> {
    let d = normalize(domain);
    if d.len() > MAX_TYPO_LEN || !d.is_ascii() || for_domain(&d) != Provider::Other {
        return None;
    }
    let (name, tld) = d.split_once('.')?;
    let mut best: Option<(usize, &'static str, Provider)> = None;
    let mut tie = false;
    for &(cand, provider) in DOMAINS {
        let Some((cname, ctld)) = cand.split_once('.') else {
            continue;
        };
        let dist = if name == cname {
            let t = osa_distance(tld.as_bytes(), ctld.as_bytes());
            if t == 0 || t > 2 {
                continue;
            }
            t
        } else if tld == ctld && cname.len() >= 5 {
            let n = osa_distance(name.as_bytes(), cname.as_bytes());
            let max = if cname.len() <= 5 { 1 } else { 2 };
            if n == 0 || n > max {
                continue;
            }
            n
        } else {
            continue;
        };
        match best {
            Some((b, _, _)) if b < dist => {}
            Some((b, m, _)) if b == dist => tie |= m != cand,
            _ => {
                best = Some((dist, cand, provider));
                tie = false;
            }
        }
    }
    match best {
        Some((_, meant, provider)) if !tie => Some(Typo { meant, provider }),
        _ => None,
    }
}

/// Optimal string alignment distance (Levenshtein plus adjacent swaps).
/// Inputs are bounded by [`MAX_TYPO_LEN`], so the table stays small.
fn osa_distance(a: &[u8], b: &[u8]) -> usize {
    let (n, m) = (a.len(), b.len());
    if n.abs_diff(m) > 2 {
        return 3;
    }
    let w = m + 1;
    let mut d = vec![0usize; (n + 1) * w];
    for i in 0..=n {
        d[i * w] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(m + 1) {
        *cell = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[n * w + m]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_unique_and_complete() {
        let mut seen = std::collections::HashSet::new();
        for p in Provider::ALL {
            assert!(seen.insert(p.as_str()), "duplicate label {p}");
        }
        for (d, p) in DOMAINS {
            assert!(Provider::ALL.contains(p), "{d}");
            assert_eq!(normalize(d), *d, "table domains are normalized");
        }
    }

    #[test]
    fn labels_parse_back_and_every_provider_has_names() {
        for p in Provider::ALL {
            assert_eq!(Provider::parse(p.as_str()), Some(p));
            let n = p.ui_names();
            assert!(!n.name.is_empty() && !n.spam.is_empty() && !n.spam_zh.is_empty());
        }
        assert_eq!(Provider::Qq.ui_names().spam_zh, "垃圾箱");
        assert_eq!(Provider::parse("selfhosted"), None);
    }

    #[test]
    fn domains_map_to_providers() {
        assert_eq!(for_domain("Gmail.COM."), Provider::Gmail);
        assert_eq!(for_domain("hotmail.co.uk"), Provider::Outlook);
        assert_eq!(for_domain("foxmail.com"), Provider::Qq);
        assert_eq!(for_domain("126.com"), Provider::Netease);
        assert_eq!(for_domain("bk.ru"), Provider::Mailru);
        assert_eq!(for_domain("example.com"), Provider::Other);
    }

    #[test]
    fn mx_hosts_map_to_hosting_providers() {
        assert_eq!(
            for_mx_host("aspmx.l.google.com."),
            Provider::GoogleWorkspace
        );
        assert_eq!(
            for_mx_host("example-com.mail.protection.outlook.com"),
            Provider::Microsoft365
        );
        assert_eq!(
            for_mx_host("hotmail-com.olc.protection.outlook.com"),
            Provider::Outlook
        );
        assert_eq!(for_mx_host("mxbiz1.exmail.qq.com"), Provider::TencentExmail);
        assert_eq!(for_mx_host("mx1.qq.com"), Provider::Qq);
        assert_eq!(for_mx_host("mx.qiye.163.com"), Provider::NeteaseQiye);
        assert_eq!(for_mx_host("mx.zoho.eu"), Provider::Zoho);
        // A label boundary is required: notgoogle.com is someone else.
        assert_eq!(for_mx_host("mx.notgoogle.com"), Provider::Other);
    }

    #[test]
    fn typos_name_the_domain_meant() {
        for (typo, meant, provider) in [
            ("gmial.com", "gmail.com", Provider::Gmail),
            ("gamil.com", "gmail.com", Provider::Gmail),
            ("gmail.con", "gmail.com", Provider::Gmail),
            ("gmail.co", "gmail.com", Provider::Gmail),
            ("hotmial.com", "hotmail.com", Provider::Outlook),
            ("hotmal.com", "hotmail.com", Provider::Outlook),
            ("yahooo.com", "yahoo.com", Provider::Yahoo),
            ("outlok.com", "outlook.com", Provider::Outlook),
            ("qq.con", "qq.com", Provider::Qq),
            ("163.cm", "163.com", Provider::Netease),
            ("icloud.cm", "icloud.com", Provider::Icloud),
        ] {
            let t = typo_of(typo).unwrap_or_else(|| panic!("{typo} not seen as a typo"));
            assert_eq!((t.meant, t.provider), (meant, provider), "{typo}");
        }
    }

    #[test]
    fn real_domains_are_not_typos() {
        for d in [
            "gmail.com",
            "mi.com",
            "ee.com",
            "example.com",
            "gmaildomain.com",
            "mail.com",
            "qq.cn.example",
            "",
            ".",
            "localhost",
        ] {
            assert_eq!(typo_of(d), None, "{d}");
        }
        let long = "a".repeat(200) + ".com";
        assert_eq!(typo_of(&long), None);
    }

    #[test]
    fn osa_counts_swaps_as_one() {
        assert_eq!(osa_distance(b"gmial", b"gmail"), 1);
        assert_eq!(osa_distance(b"abc", b"abc"), 0);
        assert_eq!(osa_distance(b"", b"ab"), 2);
        assert_eq!(osa_distance(b"a", b"abcd"), 3);
    }
}
