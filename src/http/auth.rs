//! HTTP Basic authentication against bcrypt hashes, as the Prometheus
//! exporter toolkit does it.
//!
//! A bcrypt check costs tens of milliseconds by design; Prometheus sends the
//! same credentials every scrape. So results are cached, keyed by a SHA-256
//! of user, hash and password (the password itself is never kept), and at
//! most one bcrypt runs at a time, off the async threads. An unknown user
//! costs a bcrypt too (against a fixed hash), so response times do not tell
//! which users exist. bcrypt's own comparison is constant-time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use base64::Engine;
use hyper::header::HeaderValue;

use crate::config::web::WebConfig;

/// Entries kept; when full, one is dropped at random (as the toolkit does).
const CACHE_SIZE: usize = 100;

/// Checked in place of a missing user's hash: bcrypt (cost 10) of a random
/// string nobody knows, so that a wrong user name costs as much as a wrong
/// password.
const UNKNOWN_USER_HASH: &str = "$2b$10$nxthJiCFDHX4R/A0gdism.UdblABaOYb1WE51yBHQ9khWBEin7MNW";

/// Cached verification results and the bcrypt serializer.
#[derive(Default)]
pub struct Authenticator {
    cache: Mutex<HashMap<[u8; 32], bool>>,
    /// One bcrypt at a time, as the toolkit does, so a flood of bad
    /// credentials costs one core, not all of them.
    bcrypt: tokio::sync::Mutex<()>,
    /// bcrypt verifications run so far (for tests and the curious).
    verifications: AtomicU64,
}

impl Authenticator {
    /// Whether the `Authorization` header holds credentials of a configured
    /// user. With no users configured everything passes.
    pub async fn check(&self, web: &WebConfig, header: Option<&HeaderValue>) -> bool {
        if web.users.is_empty() {
            return true;
        }
        let Some((user, password)) = header.and_then(parse_basic) else {
            return false;
        };
        // Go's bcrypt refuses passwords over 72 bytes; the Rust crate would
        // silently truncate them. Refuse them too.
        if password.len() > 72 {
            return false;
        }
        let known = web.users.get(&user);
        let hash = known.map_or(UNKNOWN_USER_HASH, String::as_str).to_string();
        let key = cache_key(&user, &hash, &password);
        if let Some(&ok) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return ok;
        }
        let _one_at_a_time = self.bcrypt.lock().await;
        self.verifications.fetch_add(1, Ordering::Relaxed);
        let matches = tokio::task::spawn_blocking(move || {
            bcrypt::verify(password.as_bytes(), &hash).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        let ok = known.is_some() && matches;
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_SIZE {
            // HashMap iteration order is randomly seeded per process.
            if let Some(evict) = cache.keys().next().copied() {
                cache.remove(&evict);
            }
        }
        cache.insert(key, ok);
        ok
    }

    /// How many bcrypt verifications have run.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }
}

/// `Basic base64(user:password)` → (user, password).
fn parse_basic(value: &HeaderValue) -> Option<(String, String)> {
    let value = value.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

fn cache_key(user: &str, hash: &str, password: &str) -> [u8; 32] {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for part in [user.as_bytes(), hash.as_bytes(), password.as_bytes()] {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(ctx.finish().as_ref());
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    fn web(users: &[(&str, &str)]) -> WebConfig {
        WebConfig {
            path: PathBuf::from("web.yml"),
            tls: None,
            users: users
                .iter()
                .map(|(u, p)| (u.to_string(), bcrypt::hash(p, 4).unwrap()))
                .collect::<BTreeMap<_, _>>(),
            headers: Vec::new(),
        }
    }

    fn basic(user: &str, password: &str) -> HeaderValue {
        let enc = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {enc}")).unwrap()
    }

    #[test]
    fn the_unknown_user_hash_is_a_cost_10_bcrypt_hash() {
        let parts: bcrypt::HashParts = UNKNOWN_USER_HASH.parse().unwrap();
        assert_eq!(parts.get_cost(), 10);
    }

    #[tokio::test]
    async fn right_wrong_and_missing_credentials() {
        let a = Authenticator::default();
        let w = web(&[("prom", "s3cret:with colon")]);
        assert!(a.check(&w, Some(&basic("prom", "s3cret:with colon"))).await);
        assert!(!a.check(&w, Some(&basic("prom", "wrong"))).await);
        assert!(
            !a.check(&w, Some(&basic("nobody", "s3cret:with colon")))
                .await
        );
        assert!(!a.check(&w, None).await);
        assert!(
            !a.check(&w, Some(&HeaderValue::from_static("Bearer x")))
                .await
        );
        assert!(
            !a.check(&w, Some(&HeaderValue::from_static("Basic !!!")))
                .await
        );
        assert!(a.check(&web(&[]), None).await, "no users: open");
    }

    #[tokio::test]
    async fn repeated_credentials_cost_one_bcrypt() {
        let a = Authenticator::default();
        let w = web(&[("prom", "pw")]);
        for _ in 0..5 {
            assert!(a.check(&w, Some(&basic("prom", "pw"))).await);
            assert!(!a.check(&w, Some(&basic("prom", "nope"))).await);
        }
        assert_eq!(a.verifications(), 2, "one per distinct credential pair");
        // A changed hash (a reload with a new password) is not served from the cache.
        let w2 = web(&[("prom", "new")]);
        assert!(!a.check(&w2, Some(&basic("prom", "pw"))).await);
        assert!(a.check(&w2, Some(&basic("prom", "new"))).await);
        assert_eq!(a.verifications(), 4);
    }

    #[tokio::test]
    async fn the_cache_stays_bounded() {
        let a = Authenticator::default();
        let w = web(&[("prom", "pw")]);
        for i in 0..(CACHE_SIZE + 20) {
            assert!(
                !a.check(&w, Some(&basic("prom", &format!("guess{i}"))))
                    .await
            );
        }
        assert!(a.cache.lock().unwrap().len() <= CACHE_SIZE);
    }

    #[tokio::test]
    async fn passwords_over_72_bytes_are_refused() {
        let a = Authenticator::default();
        let long = "x".repeat(73);
        let w = web(&[("prom", &long[..72])]);
        assert!(a.check(&w, Some(&basic("prom", &long[..72]))).await);
        assert!(!a.check(&w, Some(&basic("prom", &long))).await);
    }
}
