//! `[seeds.*]`: seed mailboxes, IMAP (password or OAuth) or Maildir.

use toml::Spanned;

use super::Check;
use crate::config::diag::Source;
use crate::config::load::is_loopback_host;
use crate::config::model::*;
use crate::config::presets::{self, PresetAuth};
use crate::config::raw::{self, RawSeed};
use crate::config::valid_name;

/// The range `max_message_size` may take.
const MAX_MESSAGE_SIZE_RANGE: std::ops::RangeInclusive<u64> = 64 * 1024..=64 * 1024 * 1024;

impl Check<'_> {
    /// A `[SECTION.NAME]` mailbox: `section` is `seeds`, or `reports` and
    /// `bounces` for the app's mailboxes, which take the same settings.
    pub(in crate::config) fn seed(
        &mut self,
        src: &Source,
        section: &str,
        name: &str,
        s: RawSeed,
    ) -> Option<Seed> {
        let k = |f: &str| format!("{section}.{name}.{f}");
        let address = self.address(src, &s.address, &k("address"));
        if !valid_name(s.provider.get_ref()) {
            self.problems.push(src.at_value(&s.provider, &k("provider"), "provider must be 1-64 characters of a-z, 0-9, '-', '_', '.' (it becomes a metric label)"));
        }
        let inbox = match s.kind.get_ref() {
            raw::InboxKind::Imap => {
                Inbox::Imap(self.imap(src, section, name, &s, address.as_deref())?)
            }
            raw::InboxKind::Maildir => {
                self.keys_of_other_kind(
                    src,
                    &s.kind,
                    k,
                    &[
                        (s.host.is_some(), "host"),
                        (s.port.is_some(), "port"),
                        (s.tls.is_some(), "tls"),
                        (s.username.is_some(), "username"),
                        (
                            s.password_file.is_some()
                                || s.password_env.is_some()
                                || s.password.is_some(),
                            "password_file",
                        ),
                        (s.ca_file.is_some(), "ca_file"),
                    ],
                    ("imap", "maildir"),
                );
                let Some(p) = s.path.as_ref() else {
                    self.problems.push(src.at_value(
                        &s.kind,
                        &k("path"),
                        "kind = \"maildir\" needs `path` (the Maildir directory)",
                    ));
                    return None;
                };
                Inbox::Maildir(MaildirInbox {
                    path: self.path(p.get_ref()),
                })
            }
        };
        let spam_folders = presets::find(s.provider.get_ref())
            .filter(|_| matches!(inbox, Inbox::Imap(_)))
            .map(|p| p.spam_folders.iter().map(|f| f.to_string()).collect())
            .unwrap_or_default();
        Some(Seed {
            provider: s.provider.into_inner(),
            address: address?,
            authserv_id: s.authserv_id,
            inbox,
            spam_folder: s.spam_folder,
            cleanup_folder: s.cleanup_folder,
            spam_folders,
        })
    }

    /// An IMAP seed: the seed's own keys, then its provider preset's values,
    /// then the defaults.
    pub(in crate::config) fn imap(
        &mut self,
        src: &Source,
        section: &str,
        name: &str,
        s: &RawSeed,
        address: Option<&str>,
    ) -> Option<ImapInbox> {
        let k = |f: &str| format!("{section}.{name}.{f}");
        let preset = presets::find(s.provider.get_ref());
        if s.path.is_some() {
            self.problems.push(src.at_value(
                s.path.as_ref()?,
                &k("path"),
                "`path` is for kind = \"maildir\"",
            ));
        }
        let host = s.host.clone().or(preset.map(|p| p.host.to_string()));
        if host.is_none() {
            self.problems.push(src.at_value(
                &s.kind,
                &k("host"),
                "kind = \"imap\" needs `host`, or a `provider` with a preset (docs/providers.md, \"Seed providers\")",
            ));
        }
        let tls = s.tls.or(preset.map(|p| p.tls)).unwrap_or(TlsMode::Implicit);
        let port = s
            .port
            .or(preset.filter(|p| p.tls == tls).map(|p| p.port))
            .unwrap_or(if tls == TlsMode::Implicit { 993 } else { 143 });
        // Most providers log in with the whole address; iCloud with the local part.
        let username = s.username.clone().or_else(|| {
            let address = address?;
            match preset {
                Some(p) if !p.username_is_address => address.split('@').next().map(str::to_string),
                _ => Some(address.to_string()),
            }
        });
        let has_password =
            s.password.is_some() || s.password_file.is_some() || s.password_env.is_some();
        // An explicit `auth` wins; an oauth table or a password says which
        // kind is meant; then the preset's method; then LOGIN.
        let kind = match (&s.auth, &s.oauth, has_password, preset.map(|p| p.auth)) {
            (Some(a), ..) => *a.get_ref(),
            (None, Some(_), _, _) => raw::ImapAuthKind::Xoauth2,
            (None, None, true, _) => raw::ImapAuthKind::Login,
            (None, None, false, Some(PresetAuth::OAuth2 { .. })) => raw::ImapAuthKind::Xoauth2,
            _ => raw::ImapAuthKind::Login,
        };
        let auth = match kind {
            raw::ImapAuthKind::Login | raw::ImapAuthKind::Plain => {
                if let Some(o) = &s.oauth {
                    self.problems.push(src.at_value(
                        o,
                        &k("oauth"),
                        "`oauth` is for auth = \"xoauth2\" or \"oauthbearer\"",
                    ));
                }
                let password = self.secret(
                    src,
                    &k("password"),
                    &s.password,
                    &s.password_file,
                    &s.password_env,
                );
                if !has_password {
                    self.problems.push(src.at_value(
                        &s.kind,
                        &k("password_file"),
                        format!(
                            "auth = \"{}\" needs password_file or password_env",
                            if kind == raw::ImapAuthKind::Plain {
                                "plain"
                            } else {
                                "login"
                            }
                        ),
                    ));
                }
                let password = password?;
                if kind == raw::ImapAuthKind::Plain {
                    ImapAuth::Plain(password)
                } else {
                    ImapAuth::Login(password)
                }
            }
            raw::ImapAuthKind::Xoauth2 | raw::ImapAuthKind::Oauthbearer => {
                let mechanism = if kind == raw::ImapAuthKind::Xoauth2 {
                    OAuthMechanism::XOAuth2
                } else {
                    OAuthMechanism::OAuthBearer
                };
                for (set, field) in [
                    (s.password.as_ref().map(|v| v.span()), "password"),
                    (s.password_file.as_ref().map(|v| v.span()), "password_file"),
                    (s.password_env.as_ref().map(|v| v.span()), "password_env"),
                ] {
                    if let Some(span) = set {
                        self.problems.push(src.at(
                            span,
                            &k(field),
                            format!(
                                "`{field}` is for auth = \"login\" or \"plain\", not \"{}\"",
                                mechanism.as_str()
                            ),
                        ));
                    }
                }
                let preset_oauth = match preset.map(|p| p.auth) {
                    Some(PresetAuth::OAuth2 { token_url, scope }) => Some((token_url, scope)),
                    _ => None,
                };
                ImapAuth::OAuth {
                    mechanism,
                    client: self.oauth(src, section, name, s, preset_oauth)?,
                }
            }
        };
        let ca_file = self.ca_file(src, &k("ca_file"), &s.ca_file);
        let max_message_size = match &s.max_message_size {
            None => DEFAULT_MAX_MESSAGE_SIZE,
            Some(n) if MAX_MESSAGE_SIZE_RANGE.contains(n.get_ref()) => *n.get_ref() as usize,
            Some(n) => {
                self.problems.push(src.at_value(
                    n,
                    &k("max_message_size"),
                    "`max_message_size` is in bytes, from 65536 (64 KiB) to 67108864 (64 MiB)",
                ));
                DEFAULT_MAX_MESSAGE_SIZE
            }
        };
        Some(ImapInbox {
            host: host?,
            port,
            tls,
            username: username?,
            auth,
            ca_file,
            imap_id: s.imap_id.unwrap_or(true),
            hint: preset.map(|p| p.hint),
            max_message_size,
        })
    }

    /// `[SECTION.NAME.oauth]`, with the preset's token endpoint and scope as defaults.
    pub(in crate::config) fn oauth(
        &mut self,
        src: &Source,
        section: &str,
        name: &str,
        s: &RawSeed,
        preset: Option<(&'static str, Option<&'static str>)>,
    ) -> Option<OAuthClient> {
        let k = |f: &str| format!("{section}.{name}.oauth.{f}");
        let Some(o) = &s.oauth else {
            self.problems.push(src.at_value(
                &s.kind,
                &format!("{section}.{name}.oauth"),
                format!(
                    "auth = \"{}\" needs a [{section}.{name}.oauth] table with client_id and refresh_token_file (docs/providers.md, \"OAuth2 seeds\")",
                    s.auth.as_ref().map_or("xoauth2", |a| match a.get_ref() {
                        raw::ImapAuthKind::Oauthbearer => "oauthbearer",
                        _ => "xoauth2",
                    })
                ),
            ));
            return None;
        };
        let (span, o) = (o.span(), o.get_ref());
        let token_url = match (&o.token_url, preset) {
            (Some(u), _) => self.token_url(src, &k("token_url"), u),
            (None, Some((url, _))) => Some(url.to_string()),
            (None, None) => {
                self.problems.push(src.at(
                    span.clone(),
                    &k("token_url"),
                    "needs `token_url` (the provider's OAuth 2.0 token endpoint)",
                ));
                None
            }
        };
        let client_id = match &o.client_id {
            Some(id) if !id.get_ref().trim().is_empty() => Some(id.get_ref().trim().to_string()),
            Some(id) => {
                self.problems
                    .push(src.at_value(id, &k("client_id"), "client_id is empty"));
                None
            }
            None => {
                self.problems.push(src.at(
                    span.clone(),
                    &k("client_id"),
                    "needs `client_id` (the OAuth client the refresh token was issued to)",
                ));
                None
            }
        };
        let client_secret = self.secret(
            src,
            &k("client_secret"),
            &o.client_secret,
            &o.client_secret_file,
            &o.client_secret_env,
        );
        let refresh_token = self.secret(
            src,
            &k("refresh_token"),
            &o.refresh_token,
            &o.refresh_token_file,
            &o.refresh_token_env,
        );
        if o.refresh_token.is_none()
            && o.refresh_token_file.is_none()
            && o.refresh_token_env.is_none()
        {
            self.problems.push(src.at(
                span,
                &k("refresh_token_file"),
                "needs refresh_token_file or refresh_token_env",
            ));
        }
        let ca_file = self.ca_file(src, &k("ca_file"), &o.ca_file);
        Some(OAuthClient {
            token_url: token_url?,
            client_id: client_id?,
            client_secret,
            refresh_token: refresh_token?,
            scope: o
                .scope
                .clone()
                .or(preset.and_then(|(_, scope)| scope.map(str::to_string))),
            ca_file,
        })
    }

    /// A token endpoint: https, or plain http to a loopback host only (the
    /// request carries the refresh token and client secret).
    pub(in crate::config) fn token_url(
        &mut self,
        src: &Source,
        key: &str,
        v: &Spanned<String>,
    ) -> Option<String> {
        let problem = match reqwest::Url::parse(v.get_ref()) {
            Err(e) => format!("{:?} is not a URL: {e}", v.get_ref()),
            Ok(u) if u.query().is_some() || !u.username().is_empty() || u.password().is_some() => {
                "the token endpoint URL must not carry a query or credentials (they would show in error messages); put the client secret in client_secret_file".to_string()
            }
            Ok(u) if u.scheme() == "https" => return Some(v.get_ref().clone()),
            Ok(u) if u.scheme() == "http" && is_loopback_host(&u) => {
                return Some(v.get_ref().clone())
            }
            Ok(_) => "the token endpoint must be https:// (plain http only to a loopback address): the request carries the refresh token".to_string(),
        };
        self.problems.push(src.at_value(v, key, problem));
        None
    }
}
