//! `[senders.*]`: SMTP relays and app endpoints, and the DKIM key mailcanary signs with.

use std::time::Duration;

use super::Check;
use crate::config::diag::Source;
use crate::config::model::*;
use crate::config::raw::{self, RawSender};

impl Check<'_> {
    /// `bounce_mailbox` must name a seed.
    fn bounce_mailbox(
        &mut self,
        src: &Source,
        name: &str,
        s: &RawSender,
        seeds: &[String],
    ) -> Option<String> {
        let b = s.bounce_mailbox.as_ref()?;
        if !seeds.contains(b.get_ref()) {
            self.problems.push(src.at_value(
                b,
                &format!("senders.{name}.bounce_mailbox"),
                format!(
                    "unknown seed {:?}; defined seeds: {}",
                    b.get_ref(),
                    crate::config::list(seeds)
                ),
            ));
            return None;
        }
        Some(b.get_ref().clone())
    }

    pub(in crate::config) fn http_sender(
        &mut self,
        src: &Source,
        name: &str,
        s: RawSender,
        seeds: &[String],
    ) -> Option<Sender> {
        let k = |f: &str| format!("senders.{name}.{f}");
        let bounce_mailbox = self.bounce_mailbox(src, name, &s, seeds);
        let from = self.address(src, &s.from, &k("from"));
        self.keys_of_other_kind(
            src,
            &s.kind,
            k,
            &[
                (s.host.is_some(), "host"),
                (s.return_path.is_some(), "return_path"),
                (s.port.is_some(), "port"),
                (s.tls.is_some(), "tls"),
                (s.username.is_some(), "username"),
                (
                    s.password.is_some() || s.password_file.is_some() || s.password_env.is_some(),
                    "password_file",
                ),
                (
                    s.dkim_selector.is_some() || s.dkim_key_file.is_some(),
                    "dkim_selector",
                ),
            ],
            ("smtp", "http"),
        );
        let Some(url) = &s.url else {
            self.problems
                .push(src.at_value(&s.kind, &k("url"), "kind = \"http\" needs `url`"));
            return None;
        };
        if !(url.get_ref().starts_with("https://") || url.get_ref().starts_with("http://")) {
            self.problems.push(src.at_value(
                url,
                &k("url"),
                "url must start with https:// (or http:// on loopback)",
            ));
        }
        let method = match &s.method {
            None => reqwest::Method::POST,
            Some(m) => {
                match reqwest::Method::from_bytes(m.get_ref().to_ascii_uppercase().as_bytes()) {
                    Ok(m) => m,
                    Err(_) => {
                        self.problems.push(src.at_value(
                            m,
                            &k("method"),
                            format!("{:?} is not an HTTP method", m.get_ref()),
                        ));
                        reqwest::Method::POST
                    }
                }
            }
        };
        let token = self
            .secret(src, &k("token"), &s.token, &s.token_file, &s.token_env)
            .map(|t| {
                let header = s
                    .token_header
                    .clone()
                    .unwrap_or_else(|| "Authorization".into());
                let prefix = s.token_prefix.clone().unwrap_or_else(|| "Bearer ".into());
                (header, Secret::new(format!("{prefix}{}", t.expose())))
            });
        let quota_pattern = self.regex(src, &k("quota_pattern"), &s.quota_pattern, r"(?i)quota")?;
        let subject_pattern = match &s.subject_pattern {
            Some(_) => Some(self.regex(src, &k("subject_pattern"), &s.subject_pattern, "")?),
            None => None,
        };
        let code_pattern =
            self.regex(src, &k("code_pattern"), &s.code_pattern, r"\b(\d{4,8})\b")?;
        if code_pattern.captures_len() < 2 {
            let at = s.code_pattern.as_ref().map_or(0..0, |p| p.span());
            self.problems.push(src.at(
                at,
                &k("code_pattern"),
                "code_pattern needs a capture group around the code, e.g. \"code: (\\d{6})\"",
            ));
        }
        Some(Sender::Http(HttpSender {
            url: url.get_ref().clone(),
            method,
            headers: s.headers.clone(),
            body: s.body.clone(),
            token,
            ca_file: self.ca_file(src, &k("ca_file"), &s.ca_file),
            timeout: s
                .timeout
                .map_or(Duration::from_secs(30), |t| t.into_inner().0),
            success_status: s.success_status.clone().unwrap_or_default(),
            success_json: s.success_json.clone(),
            quota_pattern,
            from: from?,
            bounce_mailbox,
            subject_pattern,
            code_pattern,
        }))
    }

    pub(in crate::config) fn sender(
        &mut self,
        src: &Source,
        name: &str,
        s: RawSender,
        seeds: &[String],
    ) -> Option<Sender> {
        if *s.kind.get_ref() == raw::SenderKind::Http {
            return self.http_sender(src, name, s, seeds);
        }
        let k = |f: &str| format!("senders.{name}.{f}");
        let bounce_mailbox = self.bounce_mailbox(src, name, &s, seeds);
        self.keys_of_other_kind(
            src,
            &s.kind,
            k,
            &[
                (s.url.is_some(), "url"),
                (s.method.is_some(), "method"),
                (!s.headers.is_empty(), "headers"),
                (s.body.is_some(), "body"),
                (
                    s.token.is_some() || s.token_file.is_some() || s.token_env.is_some(),
                    "token_file",
                ),
                (
                    s.success_status.is_some() || s.success_json.is_some(),
                    "success_status",
                ),
                (
                    s.quota_pattern.is_some()
                        || s.subject_pattern.is_some()
                        || s.code_pattern.is_some(),
                    "code_pattern",
                ),
            ],
            ("http", "smtp"),
        );
        let Some(host) = s.host.clone() else {
            self.problems
                .push(src.at_value(&s.kind, &k("host"), "kind = \"smtp\" needs `host`"));
            return None;
        };
        let from = self.address(src, &s.from, &k("from"));
        let dkim = self.dkim(src, name, &s, from.as_deref());
        let reply_to = s
            .reply_to
            .as_ref()
            .and_then(|r| self.address(src, r, &k("reply_to")));
        let return_path = s
            .return_path
            .as_ref()
            .and_then(|r| self.address(src, r, &k("return_path")));
        let password = self.secret(
            src,
            &k("password"),
            &s.password,
            &s.password_file,
            &s.password_env,
        );
        if password.is_some() && s.username.is_none() {
            let at = s
                .password_file
                .as_ref()
                .map(|f| f.span())
                .or(s.password_env.as_ref().map(|e| e.span()))
                .unwrap_or(0..0);
            self.problems.push(src.at(
                at,
                &k("username"),
                "a password is set but no username to log in with",
            ));
        }
        let ca_file = self.ca_file(src, &k("ca_file"), &s.ca_file);
        let tls = s.tls.unwrap_or(TlsMode::Starttls);
        let port = s.port.unwrap_or(match tls {
            TlsMode::Implicit => 465,
            TlsMode::Starttls => 587,
            TlsMode::None => 25,
        });
        Some(Sender::Smtp(SmtpSender {
            host: host.into_inner(),
            port,
            tls,
            username: s.username,
            password,
            ca_file,
            from: from?,
            reply_to,
            return_path,
            bounce_mailbox,
            timeout: s
                .timeout
                .map_or(Duration::from_secs(60), |t| t.into_inner().0),
            dkim,
            retries_4xx: s.retries_4xx.unwrap_or(2),
            retry_backoff: s.retry_backoff.map_or(Duration::from_secs(30), |d| d.0),
        }))
    }

    /// DKIM signing settings: all of selector and key file, or none.
    pub(in crate::config) fn dkim(
        &mut self,
        src: &Source,
        name: &str,
        s: &RawSender,
        from: Option<&str>,
    ) -> Option<DkimKey> {
        let k = |f: &str| format!("senders.{name}.{f}");
        let (selector, key_file) = match (&s.dkim_selector, &s.dkim_key_file) {
            (None, None) => {
                if s.dkim_domain.is_some() {
                    self.problems.push(src.at_value(
                        &s.from,
                        &k("dkim_selector"),
                        "dkim_domain is set but dkim_selector and dkim_key_file are not",
                    ));
                }
                return None;
            }
            (Some(sel), Some(f)) => (sel, f),
            (None, Some(f)) => {
                self.problems.push(src.at_value(
                    f,
                    &k("dkim_selector"),
                    "dkim_key_file needs dkim_selector",
                ));
                return None;
            }
            (Some(_), None) => {
                self.problems.push(src.at_value(
                    &s.from,
                    &k("dkim_key_file"),
                    "dkim_selector needs dkim_key_file",
                ));
                return None;
            }
        };
        let path = self.path(key_file.get_ref());
        let pem = match std::fs::read_to_string(&path) {
            Ok(p) => p,
            Err(e) => {
                self.problems.push(src.at_value(
                    key_file,
                    &k("dkim_key_file"),
                    format!("cannot read DKIM key {}: {e}", path.display()),
                ));
                return None;
            }
        };
        // Without a domain (an invalid From, reported already) the key is
        // still checked, so both problems are named at once.
        let domain = s.dkim_domain.clone().or_else(|| {
            from.and_then(|f| f.rsplit_once('@'))
                .map(|(_, d)| d.to_string())
        });
        match DkimKey::new(selector, domain.as_deref().unwrap_or("invalid"), &pem) {
            Ok(key) => domain.is_some().then_some(key),
            Err(e) => {
                self.problems.push(src.at_value(
                    key_file,
                    &k("dkim_key_file"),
                    format!("{}: {e}", path.display()),
                ));
                None
            }
        }
    }
}
