//! The HTTP endpoint: `/metrics`, `/-/healthy`, `/-/ready`, and the
//! support view `/status` (HTML) and `/api/v1/status` (JSON,
//! [`crate::status`]) on hyper 1.
//!
//! Paths follow Prometheus' own conventions so existing probes and load
//! balancer checks fit. Only GET and HEAD are served.
//!
//! With a web-config file ([`crate::config::web`], the exporter toolkit's `web.yml`
//! format) the endpoint speaks TLS and/or asks for Basic auth
//! ([`auth`]). As in the toolkit, auth covers every path, `/-/healthy`
//! included. The web config is read per connection (TLS) and per request
//! (auth, headers), so a reload that changes it applies to the next
//! connection without a restart.

pub mod auth;

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{
    HeaderValue, ACCEPT_LANGUAGE, ALLOW, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE,
    WWW_AUTHENTICATE,
};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::config::web::WebConfig;
use crate::metrics::Metrics;
use crate::status::{self, guidance::Lang, StatusError};
use auth::Authenticator;

/// Content type of the Prometheus text exposition format.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the endpoint serves from.
pub struct HttpState {
    pub metrics: Arc<Metrics>,
    /// Set once the daemon has loaded its config and opened its store.
    pub ready: AtomicBool,
    /// TLS, users and headers from `http.web_config_file`; replaced on reload.
    web: RwLock<Option<Arc<WebConfig>>>,
    auth: Authenticator,
    /// The store and config the support view reads; `None` until the
    /// daemon has opened its store.
    status: RwLock<Option<status::Source>>,
}

impl HttpState {
    pub fn new(metrics: Arc<Metrics>, web: Option<Arc<WebConfig>>) -> HttpState {
        HttpState {
            metrics,
            ready: false.into(),
            web: RwLock::new(web),
            auth: Authenticator::default(),
            status: RwLock::new(None),
        }
    }

    /// Serve the support view from this store and config (replaced on reload).
    pub fn set_status(&self, source: status::Source) {
        *self.status.write().unwrap_or_else(|e| e.into_inner()) = Some(source);
    }

    fn status(&self) -> Option<status::Source> {
        self.status
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Serve with this web config from the next connection / request on.
    pub fn set_web(&self, web: Option<Arc<WebConfig>>) {
        *self.web.write().unwrap_or_else(|e| e.into_inner()) = web;
    }

    fn web(&self) -> Option<Arc<WebConfig>> {
        self.web.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// How long a client has for its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serve until `shutdown` is cancelled, then let open requests finish
/// (at most `grace`).
pub async fn serve(
    listener: TcpListener,
    state: Arc<HttpState>,
    shutdown: CancellationToken,
    grace: Duration,
) {
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let tls = state.web().and_then(|w| w.tls.clone());
        let state = state.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let result = match tls {
                None => connection(stream, state, watcher).await,
                Some(tls) => match accept_tls(stream, tls).await {
                    Some(stream) => connection(stream, state, watcher).await,
                    None => return,
                },
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "http connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("http connections still open after the shutdown grace period");
    }
}

/// Serve one HTTP/1.1 connection over a plain or TLS stream.
async fn connection<S>(stream: S, state: Arc<HttpState>, watcher: Watcher) -> hyper::Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let conn = http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .serve_connection(
            TokioIo::new(stream),
            service_fn(move |req| route(req, state.clone())),
        );
    watcher.watch(conn).await
}

/// The TLS handshake; `None` if it fails (logged at debug: scanners and
/// clients with the wrong CA are routine). A client speaking plain HTTP to
/// the TLS port gets a plain-text 400 that says so, as Go servers answer.
async fn accept_tls(
    stream: TcpStream,
    tls: Arc<rustls::ServerConfig>,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let peer = stream.peer_addr().ok();
    let mut first = [0u8; 1];
    let looks_like_tls =
        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, stream.peek(&mut first)).await {
            Ok(Ok(1)) => first[0] == 0x16, // TLS handshake record
            _ => return None,
        };
    if !looks_like_tls {
        let mut stream = stream;
        let _ = stream
            .write_all(
                b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n\
                  Client sent an HTTP request to an HTTPS server.\n",
            )
            .await;
        let _ = stream.shutdown().await;
        return None;
    }
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => {
            tracing::debug!(?peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(?peer, "TLS handshake timed out");
            None
        }
    }
}

async fn route(
    req: Request<Incoming>,
    state: Arc<HttpState>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let web = state.web();
    let mut resp = match &web {
        Some(w) if !state.auth.check(w, req.headers().get(AUTHORIZATION)).await => {
            let mut r = text(StatusCode::UNAUTHORIZED, "Unauthorized\n");
            r.headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
            r
        }
        _ if is_status_path(req.uri().path())
            && (req.method() == Method::GET || req.method() == Method::HEAD) =>
        {
            support_view(&req, &state).await
        }
        _ => respond(&req, &state),
    };
    if let Some(w) = &web {
        for (name, value) in &w.headers {
            resp.headers_mut().insert(name.clone(), value.clone());
        }
    }
    Ok(resp)
}

fn respond(req: &Request<Incoming>, state: &HttpState) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match req.uri().path() {
        "/metrics" => {
            let mut r = Response::new(Full::new(Bytes::from(state.metrics.render())));
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(METRICS_CONTENT_TYPE));
            r
        }
        "/-/healthy" => text(StatusCode::OK, "mailcanary is healthy\n"),
        "/-/ready" if state.ready.load(Ordering::Acquire) => {
            text(StatusCode::OK, "mailcanary is ready\n")
        }
        "/-/ready" => text(StatusCode::SERVICE_UNAVAILABLE, "mailcanary is not ready\n"),
        "/" => {
            let mut r = Response::new(Full::new(Bytes::from_static(
                b"<html><head><title>mailcanary</title></head><body><h1>mailcanary</h1>\
                  <p><a href=\"/status\">status</a> &middot; <a href=\"/metrics\">metrics</a> &middot; <a href=\"/-/healthy\">healthy</a> \
                  &middot; <a href=\"/-/ready\">ready</a></p></body></html>\n",
            )));
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            r
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn is_status_path(path: &str) -> bool {
    matches!(path, "/status" | "/api/v1/status")
}

/// `/status` and `/api/v1/status`: `?domain=…&at=…&lang=…`; the language
/// comes from `lang`, else `Accept-Language`.
async fn support_view(req: &Request<Incoming>, state: &HttpState) -> Response<Full<Bytes>> {
    let api = req.uri().path() == "/api/v1/status";
    let mut q = status::Query::default();
    let mut lang = None;
    for (k, v) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()).take(16) {
        match &*k {
            "domain" if !v.trim().is_empty() => q.domain = Some(v.chars().take(300).collect()),
            "at" if !v.trim().is_empty() => q.at = Some(v.chars().take(64).collect()),
            "lang" => lang = Lang::parse(&v),
            _ => {}
        }
    }
    q.lang = lang.unwrap_or_else(|| {
        req.headers()
            .get(ACCEPT_LANGUAGE)
            .and_then(|h| h.to_str().ok())
            .map_or(Lang::En, Lang::from_accept_language)
    });
    let Some(source) = state.status() else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "mailcanary is not ready\n");
    };
    let now = status::now_ms();
    let (code, report, problem) = match status::compute(&source, &q, now).await {
        Ok(r) => (StatusCode::OK, Ok(r), None),
        Err(e @ (StatusError::Time | StatusError::Future(_) | StatusError::Domain(_))) => {
            // Show the view without the lookup, and the problem with it.
            let plain = status::Query {
                lang: q.lang,
                ..Default::default()
            };
            (
                StatusCode::BAD_REQUEST,
                status::compute(&source, &plain, now).await,
                Some((e.to_string(), e.message(q.lang))),
            )
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, Err(e), None),
    };
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "status view failed");
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the store could not be read\n",
            );
        }
    };
    let (body, content_type) = if api {
        let body = match &problem {
            Some((p, _)) => serde_json::json!({ "error": p }).to_string(),
            None => serde_json::to_string(&report).unwrap_or_default(),
        };
        (body, "application/json")
    } else {
        match status::page::html(&report, problem.map(|(_, words)| words)) {
            Ok(html) => (html, "text/html; charset=utf-8"),
            Err(e) => {
                tracing::error!(error = %e, "status page failed to render");
                return text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the page could not be rendered\n",
                );
            }
        }
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = code;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
