//! OAuth 2.0 access tokens for IMAP seeds (SASL XOAUTH2 / OAUTHBEARER).
//!
//! One [`TokenSource`] per seed, shared by the seed's folder watchers. It
//! trades the refresh token for access tokens at the provider's token
//! endpoint (RFC 6749 §6), hands out the current one while it is fresh,
//! refreshes it ahead of expiry ([`TokenSource::keep_fresh`]) and at once
//! when a server refuses it. A refused refresh token or client
//! (`invalid_grant`, `invalid_client`) is a decision by the provider, not a
//! glitch: the source then answers with the same actionable error, without
//! asking again, for [`REFUSED_HOLD`] or until a reload builds a new source.
//!
//! Providers that rotate refresh tokens (Microsoft) return a new one with
//! each access token; the newest is kept in `state_dir/oauth/SEED.json`
//! (mode 0600) and used across restarts as long as the configured refresh
//! token is still the one it descends from.
//!
//! Tokens are [`Secret`]s: never logged, never in errors or metrics.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex as SyncMutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, Mutex};
use tokio_util::sync::CancellationToken;

use super::WatchEvent;
use crate::config::{OAuthClient, Secret};
use crate::text;

/// Longest wait for the token endpoint.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a refused refresh token or client is not asked about again.
pub const REFUSED_HOLD: Duration = Duration::from_secs(3600);
/// Backoff bounds for transient refresh failures.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// Lifetime assumed when the endpoint does not say (`expires_in` is only
/// RECOMMENDED, RFC 6749 §5.1); Google and Microsoft issue one hour.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);
/// Lifetimes are held to this range: a hostile or broken endpoint can
/// neither make the source ask every second nor overflow a clock.
const LIFETIME_MIN: Duration = Duration::from_secs(10);
const LIFETIME_MAX: Duration = Duration::from_secs(86_400);
/// Error descriptions from the endpoint are cut to this many characters.
const DETAIL_MAX: usize = 200;
/// Largest token endpoint answer read: a token response is a few KiB.
const MAX_BODY: usize = 64 * 1024;

/// Why no access token could be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    /// `invalid_grant`: the refresh token expired or was revoked.
    #[error("the token endpoint refused the refresh token ({detail}): it expired or was revoked. Create a new refresh token (README, \"OAuth2 seeds\"), write it to the seed's refresh_token_file, then reload mailcanary")]
    Revoked { detail: String },
    /// `invalid_client` / `unauthorized_client`: wrong client id or secret.
    #[error("the token endpoint refused the OAuth client ({detail}). Check the seed's oauth.client_id and client_secret_file against the provider's app registration, then reload mailcanary")]
    InvalidClient { detail: String },
    /// Anything that may pass: network, timeouts, 5xx, garbage answers.
    #[error("token refresh failed ({}): {detail}", reason.as_str())]
    Transient { reason: Transient, detail: String },
}

/// Why a refresh failed for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transient {
    /// Another 4xx error (`invalid_scope`, `invalid_request`, ...).
    Http4xx,
    Http5xx,
    /// A status the grant never answers with (1xx, 3xx).
    HttpOther,
    Timeout,
    Connect,
    /// Any other transport failure (TLS, a body cut short).
    Network,
    /// A 2xx that is not a token response.
    Malformed,
    /// The endpoint broke HTTP: an answer larger than 64 KiB, or one cut
    /// short or garbled in mid-body.
    Protocol,
}

impl Transient {
    pub fn as_str(self) -> &'static str {
        match self {
            Transient::Http4xx => "http_4xx",
            Transient::Http5xx => "http_5xx",
            Transient::HttpOther => "http_other",
            Transient::Timeout => "timeout",
            Transient::Connect => "connect",
            Transient::Network => "network",
            Transient::Malformed => "malformed",
            Transient::Protocol => "protocol",
        }
    }
}

impl TokenError {
    /// Bounded label for `mailcanary_oauth_refresh_failures_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            TokenError::Revoked { .. } => "revoked",
            TokenError::InvalidClient { .. } => "invalid_client",
            TokenError::Transient { reason, .. } => reason.as_str(),
        }
    }

    /// Whether asking again cannot help until the operator acts.
    pub fn permanent(&self) -> bool {
        !matches!(self, TokenError::Transient { .. })
    }

    /// Every reason label, for creating the series at start.
    pub const REASONS: &'static [&'static str] = &[
        "revoked",
        "invalid_client",
        "http_4xx",
        "http_5xx",
        "http_other",
        "timeout",
        "connect",
        "network",
        "malformed",
        "protocol",
    ];
}

/// Why a token source could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot use CA file {path}: {message}")]
    CaFile { path: String, message: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// What the source tells the recorder (which owns metrics and logs).
#[derive(Debug)]
pub enum TokenOutcome {
    /// A new access token, valid until `expires`.
    Refreshed { expires: SystemTime },
    /// The refresh failed.
    Failed(TokenError),
}

/// An access token and when to replace it.
#[derive(Clone)]
struct Fresh {
    token: Secret,
    /// Replace after this (a fifth of the lifetime before expiry).
    renew_at: Instant,
}

struct State {
    access: Option<Fresh>,
    /// A refusal, repeated without asking until the instant.
    refused: Option<(Instant, TokenError)>,
}

impl State {
    /// When the refusal stops holding, if one holds now.
    fn refused_until(&self) -> Option<Instant> {
        self.refused
            .as_ref()
            .map(|(until, _)| *until)
            .filter(|until| *until > Instant::now())
    }
}

/// Access tokens for one seed.
pub struct TokenSource {
    seed: String,
    client: OAuthClient,
    http: reqwest::Client,
    /// Held across a refresh, so concurrent callers wait for one request.
    state: Mutex<State>,
    /// The refresh token in use. Apart from `state`: a rotated token is
    /// taken in by the request task even when its caller was cancelled.
    refresh_token: SyncMutex<Secret>,
    /// Where a rotated refresh token is kept; `None` keeps it in memory only.
    keep: Option<Kept>,
    events: mpsc::Sender<WatchEvent>,
}

impl TokenSource {
    /// Build the source for `seed`. A rotated refresh token kept under
    /// `state_dir` is used when it descends from the configured one.
    pub fn new(
        seed: &str,
        client: &OAuthClient,
        state_dir: Option<&Path>,
        events: mpsc::Sender<WatchEvent>,
    ) -> Result<Arc<TokenSource>, SetupError> {
        use crate::tls::HttpClientError;
        let http = crate::tls::http_client(REQUEST_TIMEOUT, client.ca_file.as_deref()).map_err(
            |e| match e {
                HttpClientError::ReadCa { path, source } => SetupError::CaFile {
                    path,
                    message: source.to_string(),
                },
                HttpClientError::BadCa { path, message } => SetupError::CaFile { path, message },
                HttpClientError::Build(message) => SetupError::Client(message),
            },
        )?;
        let keep = state_dir.map(|d| Kept::new(d, seed, &client.refresh_token));
        let refresh_token = keep
            .as_ref()
            .and_then(Kept::load)
            .unwrap_or_else(|| client.refresh_token.clone());
        // What the grant sends, so an endpoint quoting it back is redacted.
        text::register(client.refresh_token.expose(), text::Kept::Always);
        text::register(refresh_token.expose(), text::Kept::Always);
        if let Some(secret) = &client.client_secret {
            text::register(secret.expose(), text::Kept::Always);
        }
        Ok(Arc::new(TokenSource {
            seed: seed.to_string(),
            client: client.clone(),
            http,
            state: Mutex::new(State {
                access: None,
                refused: None,
            }),
            refresh_token: SyncMutex::new(refresh_token),
            keep,
            events,
        }))
    }

    /// The current access token, refreshed first when due. With `rejected`
    /// (a token a server just refused), a new one is fetched unless another
    /// watcher has already replaced it.
    pub async fn token(self: &Arc<Self>, rejected: Option<&Secret>) -> Result<Secret, TokenError> {
        self.fresh(rejected).await.map(|f| f.token)
    }

    async fn fresh(self: &Arc<Self>, rejected: Option<&Secret>) -> Result<Fresh, TokenError> {
        let mut st = self.state.lock().await;
        if let Some((until, e)) = &st.refused {
            if Instant::now() < *until {
                return Err(e.clone());
            }
        }
        if let Some(f) = &st.access {
            let refused_this = rejected.is_some_and(|r| *r == f.token);
            if !refused_this && Instant::now() < f.renew_at {
                return Ok(f.clone());
            }
        }
        // The request runs in its own task: a caller cancelled by a reload
        // or a timeout must not lose a refresh token the endpoint rotated.
        let this = Arc::clone(self);
        let result = tokio::spawn(async move { this.exchange().await })
            .await
            .unwrap_or_else(|e| {
                Err(TokenError::Transient {
                    reason: Transient::Network,
                    detail: format!("refresh task ended: {e}"),
                })
            });
        let outcome = match result {
            Ok((token, lifetime)) => {
                // `lifetime` is clamped, so these sums cannot overflow.
                let fresh = Fresh {
                    token,
                    renew_at: Instant::now() + lifetime - lifetime / 5,
                };
                st.access = Some(fresh.clone());
                st.refused = None;
                Ok((fresh, SystemTime::now() + lifetime))
            }
            Err(e) => {
                if e.permanent() {
                    st.access = None;
                    st.refused = Some((Instant::now() + REFUSED_HOLD, e.clone()));
                }
                Err(e)
            }
        };
        // The recorder is told without holding the lock.
        drop(st);
        match outcome {
            Ok((fresh, expires)) => {
                self.tell(TokenOutcome::Refreshed { expires }).await;
                Ok(fresh)
            }
            Err(e) => {
                self.tell(TokenOutcome::Failed(e.clone())).await;
                Err(e)
            }
        }
    }

    /// One grant, and a rotated refresh token taken in and kept.
    async fn exchange(&self) -> Result<(Secret, Duration), TokenError> {
        let current = self
            .refresh_token
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let grant = self.refresh(&current).await?;
        if let Some(rotated) = grant.refresh_token.filter(|r| *r != current) {
            text::register(rotated.expose(), text::Kept::Rotating);
            *self.refresh_token.lock().unwrap_or_else(|p| p.into_inner()) = rotated.clone();
            if let Some(k) = &self.keep {
                let k = k.clone();
                let _ = tokio::task::spawn_blocking(move || k.store(&rotated)).await;
            }
        }
        Ok((grant.access_token, grant.lifetime))
    }

    /// When a refusal stops holding, if one holds now.
    pub async fn refused_until(&self) -> Option<Instant> {
        self.state.lock().await.refused_until()
    }

    /// Whether a reload can keep this source for `client`: the same
    /// endpoint, client, secret, refresh token, scope and CA file, and no
    /// refusal being waited out (a reload is how an operator says "try again",
    /// so a refused source is rebuilt and asks at once). Keeping it keeps its
    /// access token: a reload costs no refresh.
    pub fn reusable_for(&self, client: &OAuthClient) -> bool {
        // A refresh in progress holds the lock: not a refusal.
        let refused = self
            .state
            .try_lock()
            .is_ok_and(|st| st.refused_until().is_some());
        self.client == *client && !refused
    }

    /// Keep a fresh token at hand until `stop`: refresh at four fifths of
    /// each token's lifetime, back off on transient failures, and wait out
    /// refusals. This keeps the expiry metric true while IDLE sessions run
    /// for hours on one login, and finds a revoked refresh token early.
    pub async fn keep_fresh(self: Arc<Self>, stop: CancellationToken) {
        let mut backoff = BACKOFF_MIN;
        loop {
            let result = tokio::select! {
                r = self.fresh(None) => r,
                _ = stop.cancelled() => return,
            };
            let wait = match result {
                Ok(f) => {
                    backoff = BACKOFF_MIN;
                    f.renew_at.saturating_duration_since(Instant::now())
                }
                Err(e) if e.permanent() => REFUSED_HOLD,
                Err(_) => {
                    let b = backoff;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    b
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait.max(BACKOFF_MIN)) => {}
                _ = stop.cancelled() => return,
            }
        }
    }

    async fn tell(&self, outcome: TokenOutcome) {
        let _ = self
            .events
            .send(WatchEvent::OAuth {
                seed: self.seed.clone(),
                outcome,
            })
            .await;
    }

    /// One refresh-token grant (RFC 6749 §6).
    async fn refresh(&self, refresh_token: &Secret) -> Result<Grant, TokenError> {
        let c = &self.client;
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
            ("client_id", &c.client_id),
        ];
        if let Some(s) = &c.client_secret {
            form.push(("client_secret", s.expose()));
        }
        if let Some(scope) = &c.scope {
            form.push(("scope", scope));
        }
        let response = self
            .http
            .post(&c.token_url)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| transient_from(&e))?;
        let status = response.status();
        let body = read_body(response).await?;
        parse_grant(status.as_u16(), &body)
    }
}

/// The answer's body, refused past [`MAX_BODY`]: nothing beyond is read,
/// so an endless answer costs no memory.
async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, TokenError> {
    let too_large = || TokenError::Transient {
        reason: Transient::Protocol,
        detail: format!("the token endpoint's answer is larger than {MAX_BODY} bytes"),
    };
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| {
        let mut t = transient_from(&e);
        // The status line and headers came: what broke is the body.
        if let TokenError::Transient { reason, .. } = &mut t {
            if *reason == Transient::Network {
                *reason = Transient::Protocol;
            }
        }
        t
    })? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A successful token response.
#[derive(Debug)]
struct Grant {
    access_token: Secret,
    lifetime: Duration,
    refresh_token: Option<Secret>,
}

fn transient_from(e: &reqwest::Error) -> TokenError {
    let reason = if e.is_timeout() {
        Transient::Timeout
    } else if e.is_connect() {
        Transient::Connect
    } else if broke_http(e) {
        Transient::Protocol
    } else {
        Transient::Network
    };
    // reqwest's message names the URL, never the form body.
    TokenError::Transient {
        reason,
        detail: text::error_chain(e),
    }
}

/// Whether hyper found the endpoint's answer garbled or cut short (not a
/// network or TLS failure).
fn broke_http(e: &reqwest::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(h) = err.downcast_ref::<hyper::Error>() {
            return h.is_parse() || h.is_parse_too_large() || h.is_incomplete_message();
        }
        cur = err.source();
    }
    false
}

/// Read a token endpoint's answer (RFC 6749 §5.1, §5.2).
fn parse_grant(status: u16, body: &[u8]) -> Result<Grant, TokenError> {
    #[derive(serde::Deserialize)]
    struct Success {
        access_token: String,
        #[serde(default)]
        expires_in: Option<serde_json::Value>,
        #[serde(default)]
        refresh_token: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Failure {
        error: String,
        #[serde(default)]
        error_description: Option<String>,
    }
    if (200..300).contains(&status) {
        // serde's message is left out: it may quote the body.
        let ok: Success = serde_json::from_slice(body).map_err(|_| TokenError::Transient {
            reason: Transient::Malformed,
            detail: format!("HTTP {status} but not a token response"),
        })?;
        if ok.access_token.is_empty() {
            return Err(TokenError::Transient {
                reason: Transient::Malformed,
                detail: format!("HTTP {status} with an empty access_token"),
            });
        }
        // Some endpoints send the number as a string.
        let secs = match ok.expires_in {
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        text::register(&ok.access_token, text::Kept::Rotating);
        return Ok(Grant {
            access_token: Secret::new(ok.access_token),
            lifetime: secs
                .map_or(DEFAULT_LIFETIME, Duration::from_secs)
                .clamp(LIFETIME_MIN, LIFETIME_MAX),
            refresh_token: ok.refresh_token.filter(|t| !t.is_empty()).map(Secret::new),
        });
    }
    let failure: Option<Failure> = serde_json::from_slice(body).ok();
    let detail = match &failure {
        Some(f) => {
            let mut d = f.error.clone();
            if let Some(desc) = f.error_description.as_deref().filter(|d| !d.is_empty()) {
                d.push_str(": ");
                d.push_str(desc);
            }
            text::server(&d).chars().take(DETAIL_MAX).collect()
        }
        None => format!("HTTP {status}"),
    };
    match failure.as_ref().map(|f| f.error.as_str()) {
        Some("invalid_grant") => Err(TokenError::Revoked { detail }),
        Some("invalid_client" | "unauthorized_client") => Err(TokenError::InvalidClient { detail }),
        _ => Err(TokenError::Transient {
            reason: match status {
                400..=499 => Transient::Http4xx,
                500..=599 => Transient::Http5xx,
                _ => Transient::HttpOther,
            },
            detail,
        }),
    }
}

/// The rotated refresh token on disk, with a fingerprint of the configured
/// token it descends from: a new token in the config wins over the kept one.
#[derive(Clone)]
struct Kept {
    path: PathBuf,
    origin: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct KeptFile {
    origin: String,
    refresh_token: String,
}

impl Kept {
    fn new(state_dir: &Path, seed: &str, configured: &Secret) -> Kept {
        Kept {
            path: state_dir.join("oauth").join(format!("{seed}.json")),
            origin: fingerprint(configured),
        }
    }

    fn load(&self) -> Option<Secret> {
        let text = std::fs::read(&self.path).ok()?;
        let Ok(kept) = serde_json::from_slice::<KeptFile>(&text) else {
            tracing::warn!(path = %self.path.display(), "kept refresh token unreadable; using the configured one");
            return None;
        };
        (kept.origin == self.origin && !kept.refresh_token.is_empty())
            .then(|| Secret::new(kept.refresh_token))
    }

    /// Write atomically with mode 0600; a failure is logged, not fatal (the
    /// token in memory still works until a restart).
    fn store(&self, token: &Secret) {
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
            let dir = self.path.parent().unwrap_or(Path::new("."));
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
            // A name of its own: two sources (around a reload) never share it.
            let tmp = self
                .path
                .with_extension(format!("json.{:016x}.tmp", rand::random::<u64>()));
            let body = serde_json::to_vec(&KeptFile {
                origin: self.origin.clone(),
                refresh_token: token.expose().to_string(),
            })?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&body)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        if let Err(e) = write() {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot keep the rotated refresh token; it is used until the next restart only");
        }
    }
}

/// SHA-256 of a secret, hex: tells kept tokens apart without storing the
/// configured one twice.
fn fingerprint(s: &Secret) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s.expose().as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_responses_are_read_by_the_rfc() {
        let g = parse_grant(
            200,
            br#"{"access_token":"ya29.a","expires_in":3599,"token_type":"Bearer"}"#,
        )
        .unwrap();
        assert_eq!(g.access_token.expose(), "ya29.a");
        assert_eq!(g.lifetime, Duration::from_secs(3599));
        assert!(g.refresh_token.is_none());

        let g = parse_grant(
            200,
            br#"{"access_token":"t","expires_in":"60","refresh_token":"r2"}"#,
        )
        .unwrap();
        assert_eq!(g.lifetime, Duration::from_secs(60));
        assert_eq!(
            g.refresh_token.map(|t| t.expose().to_string()),
            Some("r2".into())
        );

        let g = parse_grant(200, br#"{"access_token":"t"}"#).unwrap();
        assert_eq!(g.lifetime, DEFAULT_LIFETIME);

        for (status, body, reason) in [
            (400, &br#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#[..], "revoked"),
            (401, br#"{"error":"invalid_client"}"#, "invalid_client"),
            (400, br#"{"error":"unauthorized_client"}"#, "invalid_client"),
            (400, br#"{"error":"invalid_scope"}"#, "http_4xx"),
            (503, b"<html>busy</html>", "http_5xx"),
            (200, b"{\"token\":1}", "malformed"),
            (200, br#"{"access_token":""}"#, "malformed"),
            (200, &[0xff, 0x00][..], "malformed"),
        ] {
            let e = parse_grant(status, body).unwrap_err();
            assert_eq!(e.reason(), reason, "{status} {body:?}");
        }
        let e = parse_grant(400, br#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#).unwrap_err();
        assert!(e.permanent());
        let msg = e.to_string();
        assert!(
            msg.contains("expired or revoked") && msg.contains("reload"),
            "{msg}"
        );
        assert!(!parse_grant(503, b"").unwrap_err().permanent());
    }

    #[test]
    fn long_or_multiline_error_descriptions_are_cut() {
        let body = format!(
            r#"{{"error":"invalid_grant","error_description":"{}\nsecond line"}}"#,
            "x".repeat(500)
        );
        let e = parse_grant(400, body.as_bytes()).unwrap_err();
        let TokenError::Revoked { detail } = e else {
            panic!("not revoked")
        };
        assert!(detail.chars().count() <= DETAIL_MAX && !detail.contains('\n'));
    }

    #[test]
    fn a_kept_token_is_used_only_while_the_configured_one_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let configured = Secret::new("r1".into());
        let k = Kept::new(dir.path(), "gmail1", &configured);
        assert!(k.load().is_none());
        k.store(&Secret::new("r2".into()));
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join("oauth/gmail1.json"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(k.load().map(|t| t.expose().to_string()), Some("r2".into()));
        let replaced = Kept::new(dir.path(), "gmail1", &Secret::new("r9".into()));
        assert!(replaced.load().is_none(), "a new configured token wins");
    }
}
