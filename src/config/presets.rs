//! Provider presets for IMAP seeds: `provider = "gmail"` fills the host,
//! port, TLS mode, authentication and spam-folder names a seed at that
//! provider needs. Every value can still be set in the seed itself, which
//! wins. The values come from the providers' own help pages; the README
//! ("Seed providers") lists each source.

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

/// The presets, by `provider` name.
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
        spam_folders: &["[Gmail]/Spam", "[Google Mail]/Spam"],
        username_is_address: true,
        hint: "Gmail needs OAuth2 (auth = \"xoauth2\" with a refresh token for the scope https://mail.google.com/) or an app password (auth = \"login\", 2-Step Verification on)",
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
        hint: "Outlook.com and Microsoft 365 accept only OAuth2 over IMAP (auth = \"xoauth2\", scope IMAP.AccessAsUser.All offline_access)",
    },
];

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
            assert!(p.port > 0, "{}", p.name);
            assert!(!p.spam_folders.is_empty(), "{} has no spam folder", p.name);
            assert!(!p.hint.is_empty(), "{} has no hint", p.name);
            if let PresetAuth::OAuth2 { token_url, .. } = p.auth {
                assert!(token_url.starts_with("https://"), "{}", p.name);
            }
        }
        assert_eq!(find("gmail").map(|p| p.host), Some("imap.gmail.com"));
        assert!(find("selfhosted").is_none());
    }
}
