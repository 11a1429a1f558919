//! Provider presets for IMAP seeds: `provider = "gmail"` fills the host,
//! port, TLS mode, authentication and spam-folder names a seed at that
//! provider needs. Every value can still be set in the seed itself, which
//! wins. The values come from the providers' own help pages;
//! `docs/providers.md` ("Seed providers") lists each source.

use super::TlsMode;

/// How a provider lets IMAP clients in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresetAuth {
    /// A password: an app password or authorisation code, never the account
    /// password (the providers refuse or discourage that).
    Password,
    /// OAuth 2.0 with SASL XOAUTH2: tokens from `token_url`.
    OAuth2 {
        token_url: &'static str,
        /// The scope to ask for when refreshing; `None` asks for none (the
        /// refresh token's own scope applies).
        scope: Option<&'static str>,
    },
}

/// One provider's documented IMAP settings.
#[derive(Debug)]
pub struct Preset {
    /// The `provider` value that selects it; also the metric label.
    pub name: &'static str,
    pub host: &'static str,
    pub port: u16,
    pub tls: TlsMode,
    pub auth: PresetAuth,
    /// The spam folder's names at this provider, in UTF-8, tried in order
    /// after SPECIAL-USE `\Junk`. Encoded to modified UTF-7 on the wire.
    pub spam_folders: &'static [&'static str],
    /// Whether the IMAP login name is the whole address (else the local part).
    pub username_is_address: bool,
    /// What an operator must do at the provider first, shown when login fails.
    pub hint: &'static str,
}

/// The presets, by `provider` name. Every host is the provider's documented
/// IMAP server with implicit TLS on 993 (RFC 8314 §3.3); `docs/providers.md`
/// ("Seed providers") lists the source of each value and which ones no provider
/// page confirms (spam-folder names mostly: SPECIAL-USE `\Junk` is tried
/// first, so a wrong name here only costs a LIST).
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "gmail",
        host: "imap.gmail.com",
        port: 993,
        tls: TlsMode::Implicit,
        auth: PresetAuth::OAuth2 {
            token_url: "https://oauth2.googleapis.com/token",
            scope: None,
        },
        // Gmail localises these by the account's language; it also marks
        // the folder `\Junk`, which is what finds it in other languages.
        spam_folders: &["[Gmail]/Spam", "[Google Mail]/Spam"],
        username_is_address: true,
        hint: "Gmail needs OAuth2 (auth = \"xoauth2\" with a refresh token for the scope https://mail.google.com/; docs/providers.md, \"OAuth2 seeds\") or an app password (auth = \"login\", 2-Step Verification on)",
    },
    Preset {
        name: "outlook",
        host: "outlook.office365.com",
        port: 993,
        tls: TlsMode::Implicit,
        auth: PresetAuth::OAuth2 {
            token_url: "https://login.microsoftonline.com/common/oauth2/v2.0/token",
            scope: Some("https://outlook.office.com/IMAP.AccessAsUser.All offline_access"),
        },
        spam_folders: &["Junk Email", "Junk"],
        username_is_address: true,
        hint: "Outlook.com and Microsoft 365 accept only OAuth2 over IMAP (auth = \"xoauth2\", scope IMAP.AccessAsUser.All offline_access; docs/providers.md, \"OAuth2 seeds\"); Outlook.com also needs \"Let devices and apps use IMAP\" on (Settings > Mail > Forwarding and IMAP), Microsoft 365 needs IMAP enabled for the mailbox",
    },
    Preset {
        name: "yahoo",
        host: "imap.mail.yahoo.com",
        port: 993,
        tls: TlsMode::Implicit,
        auth: PresetAuth::Password,
        spam_folders: &["Bulk", "Bulk Mail"],
        username_is_address: true,
        hint: "Yahoo refuses the account password over IMAP: generate an app password (Account security > Generate app password) and put it in password_file",
    },
    Preset {
        name: "aol",
        host: "imap.aol.com",
        port: 993,
        tls: TlsMode::Implicit,
        auth: PresetAuth::Password,
        spam_folders: &["Bulk", "Bulk Mail", "Spam"],
        username_is_address: true,
        hint: "AOL refuses the account password over IMAP: generate an app password (Account security > Generate app password) and put it in password_file",
    },
    Preset {
        name: "icloud",
        host: "imap.mail.me.com",
        port: 993,
        tls: TlsMode::Implicit,
        auth: PresetAuth::Password,
        spam_folders: &["Junk"],
        // Apple: "usually the name part of your iCloud Mail email address";
        // custom-domain addresses log in with the iCloud address instead.
        username_is_address: false,
        hint: "iCloud needs an app-specific password (account.apple.com > Sign-In and Security, two-factor authentication on); the login name is the part of the iCloud address before the @: set username to the whole iCloud address if that is refused, or for a custom-domain address",
    },
    Preset {
        name: "fastmail",
        host: "imap.fastmail.com",
        port: 993,
        tls: TlsMode::Implicit,
        auth: PresetAuth::Password,
        spam_folders: &["Spam"],
        username_is_address: true,
        hint: "Fastmail accepts only app passwords over IMAP, never the account password: create one under Settings > Privacy & Security > Manage app passwords",
    },
    Preset {
        name: "zoho",
        host: "imap.zoho.com",
        port: 993,
        tls: TlsMode::Implicit,
        auth: PresetAuth::Password,
        spam_folders: &["Spam"],
        username_is_address: true,
        hint: "Turn on IMAP Access in Zoho Mail (Settings > Mail Accounts > IMAP) and, with two-factor authentication, use an application-specific password; imap.zoho.com serves personal accounts in the US data centre: set host to imap.zoho.eu, imap.zoho.in or imap.zoho.com.au for other regions, imappro.zoho.* for organisation (custom-domain) accounts",
    },
    Preset {
        name: "gmx",
        host: "imap.gmx.net",
        port: 993,
        tls: TlsMode::Implicit,
        auth: PresetAuth::Password,
        spam_folders: &["Spamverdacht", "Spam"],
        username_is_address: true,
        hint: "GMX (gmx.net, gmx.de, gmx.at, gmx.ch): allow POP3/IMAP access once in the GMX mail settings, then log in with the whole address; international GMX addresses (gmx.com, gmx.co.uk, ...) use provider = \"gmx-com\"",
    },
    Preset {
        name: "gmx-com",
        host: "imap.gmx.com",
        port: 993,
        tls: TlsMode::Implicit,
        auth: PresetAuth::Password,
        spam_folders: &["Spam", "Spamverdacht"],
        username_is_address: true,
        hint: "GMX.com (international addresses): allow POP3/IMAP access once in the GMX mail settings, then log in with the whole address; gmx.net/.de/.at/.ch addresses use provider = \"gmx\"",
    },
    Preset {
        name: "yandex",
        host: "imap.yandex.com",
        port: 993,
        tls: TlsMode::Implicit,
        auth: PresetAuth::Password,
        spam_folders: &["Spam", "Спам"],
        username_is_address: true,
        hint: "Turn on IMAP in Yandex Mail (All settings > Mail clients) and create an app password for Mail in Yandex ID; Yandex also offers OAuth (auth = \"xoauth2\" with token_url https://oauth.yandex.com/token), but an app password is the simpler path",
    },
    Preset {
        name: "mailru",
        host: "imap.mail.ru",
        port: 993,
        tls: TlsMode::Implicit,
        auth: PresetAuth::Password,
        spam_folders: &["Спам", "Spam"],
        username_is_address: true,
        hint: "Mail.ru refuses the account password in mail clients: create a password for external applications (Security settings) with IMAP access and put it in password_file; Mail.ru also offers OAuth, but the app password is the simpler path",
    },
    Preset {
        name: "qq",
        host: "imap.qq.com",
        port: 993,
        tls: TlsMode::Implicit,
        auth: PresetAuth::Password,
        // QQ names its system folders in English over IMAP; 垃圾箱 is the
        // web interface's name.
        spam_folders: &["Junk", "垃圾箱"],
        username_is_address: true,
        hint: "Turn on the IMAP/SMTP service in QQ Mail (Settings > Account) and use the 16-character authorisation code (授权码) it issues, not the QQ password",
    },
    Preset {
        name: "163",
        host: "imap.163.com",
        port: 993,
        tls: TlsMode::Implicit,
        auth: PresetAuth::Password,
        spam_folders: &["垃圾邮件"],
        username_is_address: true,
        hint: NETEASE_HINT,
    },
    Preset {
        name: "126",
        host: "imap.126.com",
        port: 993,
        tls: TlsMode::Implicit,
        auth: PresetAuth::Password,
        spam_folders: &["垃圾邮件"],
        username_is_address: true,
        hint: NETEASE_HINT,
    },
    Preset {
        name: "yeah",
        host: "imap.yeah.net",
        port: 993,
        tls: TlsMode::Implicit,
        auth: PresetAuth::Password,
        spam_folders: &["垃圾邮件"],
        username_is_address: true,
        hint: NETEASE_HINT,
    },
];

/// NetEase's three free domains share one platform and one rule set.
const NETEASE_HINT: &str = "Turn on IMAP/SMTP in the NetEase mail settings (POP3/SMTP/IMAP) and use the client authorisation code (客户端授权码), not the web password; keep imap_id on: NetEase answers \"Unsafe Login\" to clients that send no IMAP ID (RFC 2971)";

/// The preset for a `provider` value, if there is one.
pub fn find(provider: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == provider)
}

/// The preset names, for error messages.
pub fn names() -> String {
    PRESETS
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_valid_labels_and_values_are_sane() {
        let mut seen = std::collections::BTreeSet::new();
        for p in PRESETS {
            assert!(seen.insert(p.name), "duplicate preset {}", p.name);
            assert!(
                p.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{} is not a bounded label",
                p.name
            );
            assert!(p.host.contains('.') && !p.host.contains(' '), "{}", p.name);
            assert!(
                p.host.bytes().all(|b| b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b == b'.'
                    || b == b'-'),
                "{}: host {:?} is not a lower-case DNS name",
                p.name,
                p.host
            );
            // Every provider here documents implicit TLS on 993 (RFC 8314 §3.3).
            assert_eq!((p.port, p.tls), (993, TlsMode::Implicit), "{}", p.name);
            assert!(!p.spam_folders.is_empty(), "{} has no spam folder", p.name);
            let mut folders = std::collections::BTreeSet::new();
            for f in p.spam_folders {
                assert!(
                    !f.trim().is_empty() && !f.chars().any(char::is_control),
                    "{}: spam folder {f:?}",
                    p.name
                );
                assert!(folders.insert(f), "{}: {f:?} listed twice", p.name);
            }
            assert!(!p.hint.is_empty(), "{} has no hint", p.name);
            if let PresetAuth::OAuth2 { token_url, scope } = p.auth {
                assert!(token_url.starts_with("https://"), "{}", p.name);
                assert!(scope.is_none_or(|s| !s.trim().is_empty()), "{}", p.name);
            }
            assert_eq!(find(p.name).map(|f| f.host), Some(p.host), "{}", p.name);
        }
        assert_eq!(find("gmail").map(|p| p.host), Some("imap.gmail.com"));
        assert!(find("selfhosted").is_none());
        assert!(find("Gmail").is_none(), "names match exactly");
    }

    #[test]
    fn the_providers_the_project_targets_have_presets() {
        for name in [
            "gmail", "outlook", "yahoo", "icloud", "qq", "163", "126", "yandex", "mailru", "zoho",
            "fastmail", "gmx", "aol",
        ] {
            assert!(find(name).is_some(), "no preset for {name}");
            assert!(
                names().split(", ").any(|n| n == name),
                "{name} not in names()"
            );
        }
    }

    #[test]
    fn login_names_and_auth_follow_the_providers_docs() {
        // iCloud logs in with the local part; everyone else with the address.
        for p in PRESETS {
            assert_eq!(p.username_is_address, p.name != "icloud", "{}", p.name);
        }
        // Only Google and Microsoft need OAuth2 by default.
        let oauth: Vec<&str> = PRESETS
            .iter()
            .filter(|p| matches!(p.auth, PresetAuth::OAuth2 { .. }))
            .map(|p| p.name)
            .collect();
        assert_eq!(oauth, ["gmail", "outlook"]);
        // NetEase requires IMAP ID; its hint says so.
        for name in ["163", "126", "yeah"] {
            assert!(find(name).unwrap().hint.contains("IMAP ID"), "{name}");
        }
    }
}
