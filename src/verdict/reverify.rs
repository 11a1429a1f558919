//! Local DKIM re-verification of the delivered copy (mail-auth).
//!
//! The receiver's Authentication-Results say what it saw at the border; a
//! gateway or list manager that rewrote the message afterwards breaks the
//! signature, and re-verifying the copy in the mailbox shows it.

use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator};

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
pub async fn dkim(auth: &MessageAuthenticator, raw: &[u8]) -> LocalDkim {
    let Some(msg) = AuthenticatedMessage::parse(raw) else {
        return LocalDkim::PermError;
    };
    let outputs = auth.verify_dkim(&msg).await;
    label(outputs.iter().map(|o| o.result()))
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
