//! Which major receiver sent a report: a bounded label for metrics, from the
//! report's contact address (its domain or a parent of it) or, failing that,
//! its organization name. Anything not in [`TABLE`] is `other`.

use super::vocabulary;

vocabulary! {
    /// A major mail receiver that sends DMARC aggregate or TLS reports.
    pub enum Reporter fallback Other {
        /// Gmail and Google Workspace.
        Google = "google",
        /// Yahoo, AOL and the mailboxes they host (AT&T, Verizon).
        Yahoo = "yahoo",
        /// Outlook.com and Microsoft 365 (protection.outlook.com).
        Microsoft = "microsoft",
        /// iCloud Mail.
        Apple = "apple",
        /// QQ Mail and Tencent Exmail.
        Qq = "qq",
        /// NetEase: 163.com, 126.com, yeah.net.
        Netease = "netease",
        /// Mail.ru (VK).
        Mailru = "mailru",
        /// Yandex Mail.
        Yandex = "yandex",
        /// Comcast (Xfinity).
        Comcast = "comcast",
        /// GMX, WEB.DE and 1&1 / IONOS (United Internet).
        Gmx = "gmx",
        /// Fastmail.
        Fastmail = "fastmail",
        /// Zoho Mail.
        Zoho = "zoho",
        /// Proton Mail.
        Proton = "proton",
        /// Any other receiver.
        Other = "other",
    }
}

/// Each reporter: the domains its reports come from (a match of the domain
/// or a parent) and the organization names it writes (lower case, whole).
pub const TABLE: &[(Reporter, &[&str], &[&str])] = &[
    (
        Reporter::Google,
        &["google.com", "googlemail.com", "gmail.com"],
        &["google.com", "google inc.", "google llc"],
    ),
    (
        Reporter::Yahoo,
        &[
            "yahoo.com",
            "yahooinc.com",
            "yahoo-inc.com",
            "aol.com",
            "oath.com",
            "verizonmedia.com",
        ],
        &[
            "yahoo",
            "yahoo! inc.",
            "yahoo inc.",
            "aol",
            "aol.com",
            "oath",
        ],
    ),
    (
        Reporter::Microsoft,
        &[
            "microsoft.com",
            "outlook.com",
            "hotmail.com",
            "protection.outlook.com",
        ],
        &[
            "outlook.com",
            "enterprise outlook",
            "microsoft corporation",
            "microsoft",
        ],
    ),
    (
        Reporter::Apple,
        &["icloud.com", "apple.com", "me.com"],
        &["apple inc.", "icloud"],
    ),
    (
        Reporter::Qq,
        &["qq.com", "tencent.com", "exmail.qq.com"],
        &["qq.com", "tencent", "qq"],
    ),
    (
        Reporter::Netease,
        &[
            "163.com",
            "126.com",
            "yeah.net",
            "188.com",
            "netease.com",
            "163.net",
        ],
        &["netease", "netease mail", "163.com", "126.com"],
    ),
    (
        Reporter::Mailru,
        &["mail.ru", "corp.mail.ru", "vk.team"],
        &["mail.ru", "mail.ru llc", "vk"],
    ),
    (
        Reporter::Yandex,
        &["yandex.ru", "yandex.com", "yandex.net", "yandex-team.ru"],
        &["yandex", "yandex llc"],
    ),
    (
        Reporter::Comcast,
        &["comcast.net", "comcast.com", "xfinity.com"],
        &["comcast", "comcast.net"],
    ),
    (
        Reporter::Gmx,
        &[
            "gmx.net",
            "gmx.de",
            "gmx.com",
            "web.de",
            "1und1.de",
            "ionos.com",
            "ionos.de",
            "united-internet.de",
        ],
        &["gmx", "web.de", "1&1", "ionos", "united internet"],
    ),
    (
        Reporter::Fastmail,
        &["fastmail.com", "messagingengine.com", "fastmail.fm"],
        &["fastmail", "fastmail pty ltd"],
    ),
    (
        Reporter::Zoho,
        &["zoho.com", "zohomail.com", "zoho.eu"],
        &["zoho", "zoho corporation"],
    ),
    (
        Reporter::Proton,
        &["proton.me", "protonmail.com", "protonmail.ch"],
        &["proton", "proton ag", "protonmail"],
    ),
];

impl Reporter {
    /// The reporter of a report with this organization name and contact
    /// (an address, a `mailto:` URI or an `https:` URI).
    pub fn identify(org_name: &str, contact: &str) -> Reporter {
        if let Some(domain) = contact_domain(contact) {
            for (reporter, domains, _) in TABLE {
                if domains.iter().any(|d| is_domain_or_parent(&domain, d)) {
                    return *reporter;
                }
            }
        }
        let org = org_name.trim().to_ascii_lowercase();
        TABLE
            .iter()
            .find(|(_, _, orgs)| orgs.contains(&org.as_str()))
            .map_or(Reporter::Other, |(r, _, _)| *r)
    }
}

/// `d` is `parent` or a subdomain of it.
fn is_domain_or_parent(d: &str, parent: &str) -> bool {
    d == parent
        || d.strip_suffix(parent)
            .is_some_and(|rest| rest.ends_with('.'))
}

/// The domain of a contact: after the last `@` of an address, or the host of
/// a URI.
pub(crate) fn contact_domain(contact: &str) -> Option<String> {
    let c = contact.trim();
    let host = if let Some((_, after)) = c.rsplit_once('@') {
        after
    } else if let Some((_, after)) = c.split_once("://") {
        after.split(['/', ':', '?']).next().unwrap_or("")
    } else {
        return None;
    };
    let host = host
        .trim_end_matches(|ch: char| !ch.is_ascii_alphanumeric())
        .to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifies_by_contact_domain_then_org_name() {
        let cases = [
            (
                "google.com",
                "noreply-dmarc-support@google.com",
                Reporter::Google,
            ),
            ("Yahoo", "dmarchelp@yahooinc.com", Reporter::Yahoo),
            ("AOL", "", Reporter::Yahoo),
            (
                "Enterprise Outlook",
                "dmarcreport@microsoft.com",
                Reporter::Microsoft,
            ),
            (
                "x",
                "mailto:tlsrpt@eur.protection.outlook.com",
                Reporter::Microsoft,
            ),
            ("QQ", "postmaster@qq.com", Reporter::Qq),
            ("NetEase", "dmarc@mail.163.com", Reporter::Netease),
            ("Mail.Ru", "dmarc_support@corp.mail.ru", Reporter::Mailru),
            ("Yandex", "dmarc_support@yandex.ru", Reporter::Yandex),
            ("comcast.net", "", Reporter::Comcast),
            (
                "Google Inc.",
                "https://support.google.com/a/answer/x",
                Reporter::Google,
            ),
            ("Example Mail", "dmarc@notgoogle.com", Reporter::Other),
        ];
        for (org, contact, want) in cases {
            assert_eq!(Reporter::identify(org, contact), want, "{org} {contact}");
        }
    }

    #[test]
    fn every_reporter_but_other_has_a_row() {
        for r in Reporter::ALL {
            let rows = TABLE.iter().filter(|(t, _, _)| t == r).count();
            assert_eq!(rows, usize::from(*r != Reporter::Other), "{r}");
        }
    }
}
