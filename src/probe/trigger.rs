//! The `http` sender: call the operator's own "send verification code"
//! endpoint, the production path through the real template, queue and ESP.
//!
//! A refusal is typed with a bounded reason: `rate_limited` (429; its
//! Retry-After is honoured by the scheduler), `quota` (the configured
//! pattern, e.g. `SendTokenQuotaExceeded`, in the response), `http_4xx`,
//! `http_5xx`, `timeout`, `connect`, `tls`. The response body stays in the
//! detail (bounded, one line); it never becomes a label.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderName, HeaderValue, RETRY_AFTER};

use super::send::{tls_in_chain, SendFailure, SendReason, Sent, SetupError};
use crate::config::HttpSender;
use crate::text::{self, error_chain, Kept};

/// Most of a response body read for classification.
const MAX_BODY: usize = 64 * 1024;

/// A configured app endpoint.
#[derive(Clone)]
pub struct HttpTrigger {
    client: reqwest::Client,
    cfg: HttpSender,
}

impl HttpTrigger {
    pub fn new(cfg: &HttpSender) -> Result<HttpTrigger, SetupError> {
        use crate::tls::HttpClientError;
        let client =
            crate::tls::http_client(cfg.timeout, cfg.ca_file.as_deref()).map_err(|e| match e {
                HttpClientError::ReadCa { path, source } => SetupError::CaFile { path, source },
                HttpClientError::BadCa { message, .. } | HttpClientError::Build(message) => {
                    SetupError::Tls {
                        host: cfg.url.clone(),
                        message,
                    }
                }
            })?;
        if let Some((_, token)) = &cfg.token {
            // The header value, and the token alone after a scheme ("Bearer x").
            text::register(token.expose(), Kept::Always);
            if let Some((_, bare)) = token.expose().rsplit_once(' ') {
                text::register(bare, Kept::Always);
            }
        }
        Ok(HttpTrigger {
            client,
            cfg: cfg.clone(),
        })
    }

    /// Ask the app to send a code to `address`. A panic on the way is
    /// contained ([`crate::contain`]) and ends the send as `local`.
    pub async fn trigger(&self, address: &str) -> Result<Sent, SendFailure> {
        crate::contain::contained(
            crate::contain::Task::Sender,
            &self.cfg.url,
            self.call(address),
        )
        .await
        .unwrap_or_else(|p| {
            Err(SendFailure {
                reason: SendReason::Local,
                detail: p.to_string(),
                attempts: 1,
                retry_after: None,
            })
        })
    }

    async fn call(&self, address: &str) -> Result<Sent, SendFailure> {
        let fail = |reason, detail: String, retry_after| SendFailure {
            reason,
            detail: text::server(&detail),
            attempts: 1,
            retry_after,
        };
        let mut req = self.client.request(self.cfg.method.clone(), &self.cfg.url);
        for (k, v) in &self.cfg.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        if let Some((name, value)) = &self.cfg.token {
            let (Ok(name), Ok(mut value)) = (
                HeaderName::try_from(name.as_str()),
                HeaderValue::try_from(value.expose()),
            ) else {
                return Err(fail(
                    SendReason::Local,
                    "the token header is not a valid HTTP header".into(),
                    None,
                ));
            };
            value.set_sensitive(true);
            req = req.header(name, value);
        }
        if let Some(body) = &self.cfg.body {
            req = req.body(body.replace("{address}", address));
        }
        // The user's click: latency is measured from here.
        let submitted = SystemTime::now();
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                let reason = if e.is_timeout() {
                    SendReason::Timeout
                } else if tls_in_chain(&e) {
                    SendReason::Tls
                } else {
                    SendReason::Connect
                };
                return Err(fail(reason, error_chain(&e), None));
            }
        };
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let body = match read_body(resp).await {
            Ok(b) => b,
            Err(e) if e.is_timeout() => {
                return Err(fail(SendReason::Timeout, error_chain(&e), None))
            }
            // The app answered and then broke off or sent garbage.
            Err(e) => return Err(fail(SendReason::Protocol, error_chain(&e), None)),
        };
        let status_ok = if self.cfg.success_status.is_empty() {
            status.is_success()
        } else {
            self.cfg.success_status.contains(&status.as_u16())
        };
        let json_ok = self.cfg.success_json.as_ref().is_none_or(|ptr| {
            serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.pointer(ptr).cloned())
                .is_some_and(|v| {
                    !matches!(v, serde_json::Value::Null | serde_json::Value::Bool(false))
                })
        });
        if status_ok && json_ok {
            return Ok(Sent {
                submitted,
                reply: text::server(&format!("{} {}", status.as_u16(), body)),
                queue_id: None,
            });
        }
        let detail = format!("{} {}", status.as_u16(), body);
        let reason = if self.cfg.quota_pattern.is_match(&body) {
            SendReason::Quota
        } else if status.as_u16() == 429 {
            SendReason::RateLimited
        } else if status.is_server_error() {
            SendReason::Http5xx
        } else {
            SendReason::Http4xx
        };
        Err(fail(
            reason,
            detail,
            if reason == SendReason::RateLimited {
                retry_after
            } else {
                None
            },
        ))
    }
}

async fn read_body(mut resp: reqwest::Response) -> Result<String, reqwest::Error> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        out.extend_from_slice(&chunk);
        if out.len() >= MAX_BODY {
            out.truncate(MAX_BODY);
            break;
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Retry-After: delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
fn parse_retry_after(v: &str) -> Option<Duration> {
    if let Ok(secs) = v.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v.trim()).ok()?;
    let now = chrono::Utc::now();
    (when.with_timezone(&chrono::Utc) - now).to_std().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_and_as_a_date() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            None,
            "in the past"
        );
        let later = (chrono::Utc::now() + chrono::Duration::seconds(90)).to_rfc2822();
        let d = parse_retry_after(&later).unwrap();
        assert!(
            d > Duration::from_secs(80) && d <= Duration::from_secs(90),
            "{d:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
