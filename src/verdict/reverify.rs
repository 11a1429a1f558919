//! Local DKIM re-verification of the delivered copy (mail-auth).
//!
//! The receiver's Authentication-Results say what it saw at the border; a
//! gateway or list manager that rewrote the message afterwards breaks the
//! signature, and re-verifying the copy in the mailbox shows it.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mail_auth::{
    AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters, ResolverCache, Txt,
};

/// The delivered copy's DKIM as mailcanary re-verifies it; the values of
/// `mailcanary_delivered_dkim_result`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LocalDkim {
    // Declared in rank order: with several signatures, the highest wins.
    /// No signature.
    None,
    /// A signature could not be evaluated (malformed, unsupported).
    PermError,
    /// A signature no longer verifies: the message changed after signing.
    Fail,
    /// The key could not be fetched (DNS timeout, SERVFAIL).
    TempError,
    /// A signature verifies.
    Pass,
}

impl LocalDkim {
    pub const ALL: [LocalDkim; 5] = [
        LocalDkim::Pass,
        LocalDkim::Fail,
        LocalDkim::None,
        LocalDkim::TempError,
        LocalDkim::PermError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LocalDkim::Pass => "pass",
            LocalDkim::Fail => "fail",
            LocalDkim::None => "none",
            LocalDkim::TempError => "temperror",
            LocalDkim::PermError => "permerror",
        }
    }
}

impl serde::Serialize for LocalDkim {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Verify every DKIM signature of `raw`; any passing signature wins.
pub async fn dkim(auth: &MessageAuthenticator, keys: &KeyCache, raw: &[u8]) -> LocalDkim {
    let Some(msg) = AuthenticatedMessage::parse(raw) else {
        return LocalDkim::PermError;
    };
    let outputs = auth
        .verify_dkim(Parameters::new(&msg).with_txt_cache(keys))
        .await;
    label(outputs.iter().map(|o| o.result()))
}

/// The DKIM key records fetched, kept for their TTL as a receiver keeps
/// them (at most an hour, whatever the TTL says). Without it every arrival
/// asked the resolver for its signer's key again: 4 % of the daemon's CPU
/// at 100 probes a second, and a query per probe to the operator's
/// resolver. A rotated key is seen once the old record's TTL runs out, as
/// receivers see it. A failed lookup (timeout, SERVFAIL) is not kept.
#[derive(Default)]
pub struct KeyCache(Mutex<HashMap<Box<str>, (Txt, Instant)>>);

/// Records kept at most; past it the expired go, then all if need be.
const KEY_CACHE_MAX: usize = 1024;
const KEY_CACHE_TTL_MAX: Duration = Duration::from_secs(3600);

impl ResolverCache<Box<str>, Txt> for KeyCache {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let keys = self.0.lock().unwrap_or_else(|e| e.into_inner());
        keys.get(name)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(txt, _)| txt.clone())
    }

    fn remove<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut keys = self.0.lock().unwrap_or_else(|e| e.into_inner());
        keys.remove(name).map(|(txt, _)| txt)
    }

    fn insert(&self, key: Box<str>, value: Txt, valid_until: Instant) {
        let now = Instant::now();
        let until = valid_until.min(now + KEY_CACHE_TTL_MAX);
        let mut keys = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if keys.len() >= KEY_CACHE_MAX {
            keys.retain(|_, (_, u)| *u > now);
            if keys.len() >= KEY_CACHE_MAX {
                keys.clear();
            }
        }
        keys.insert(key, (value, until));
    }
}

/// One result for several signatures: pass > temperror > fail > permerror > none.
fn label<'a>(results: impl Iterator<Item = &'a DkimResult>) -> LocalDkim {
    results
        .map(|r| match r {
            DkimResult::Pass => LocalDkim::Pass,
            // mail-auth 0.13 reports a body that no longer matches its hash
            // as Neutral (body hash mismatch): the signature is broken.
            DkimResult::Fail(_) | DkimResult::Neutral(_) => LocalDkim::Fail,
            DkimResult::TempError(_) => LocalDkim::TempError,
            DkimResult::PermError(_) => LocalDkim::PermError,
            DkimResult::None => LocalDkim::None,
        })
        .max()
        .unwrap_or(LocalDkim::None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_keys_expire_and_the_cache_stays_bounded() {
        let cache = KeyCache::default();
        let txt = || Txt::Error(mail_auth::Error::ParseError);
        let later = Instant::now() + Duration::from_secs(60);
        cache.insert("a._domainkey.x".into(), txt(), later);
        assert!(cache.get("a._domainkey.x").is_some());
        cache.insert("b._domainkey.x".into(), txt(), Instant::now());
        assert!(cache.get("b._domainkey.x").is_none(), "expired");
        // A TTL of years is held to an hour.
        cache.insert(
            "c._domainkey.x".into(),
            txt(),
            Instant::now() + Duration::from_secs(10 * 365 * 86_400),
        );
        let until = cache.0.lock().unwrap()["c._domainkey.x"].1;
        assert!(until <= Instant::now() + KEY_CACHE_TTL_MAX);
        for i in 0..2 * KEY_CACHE_MAX {
            cache.insert(format!("k{i}").into(), txt(), later);
        }
        assert!(cache.0.lock().unwrap().len() <= KEY_CACHE_MAX);
        cache.insert("d._domainkey.x".into(), txt(), later);
        assert!(cache.remove("d._domainkey.x").is_some());
        assert!(cache.get("d._domainkey.x").is_none());
    }

    #[test]
    fn a_passing_signature_wins_and_no_signature_is_none() {
        let e = || mail_auth::Error::ParseError;
        assert_eq!(
            label([DkimResult::Neutral(e()), DkimResult::Pass].iter()).as_str(),
            "pass"
        );
        assert_eq!(label([DkimResult::Neutral(e())].iter()).as_str(), "fail");
        assert_eq!(
            label([DkimResult::PermError(e()), DkimResult::TempError(e())].iter()).as_str(),
            "temperror"
        );
        assert_eq!(label(std::iter::empty()).as_str(), "none");
    }
}
