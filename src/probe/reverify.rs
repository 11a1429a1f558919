//! Local DKIM re-verification of the delivered copy (mail-auth).
//!
//! The receiver's Authentication-Results say what it saw at the border; a
//! gateway or list manager that rewrote the message afterwards breaks the
//! signature, and re-verifying the copy in the mailbox shows it.

use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator};

/// Values of `mailcanary_delivered_dkim_result`.
pub const RESULTS: [&str; 5] = ["pass", "fail", "none", "temperror", "permerror"];

/// Verify every DKIM signature of `raw`; any passing signature wins.
pub async fn dkim(auth: &MessageAuthenticator, raw: &[u8]) -> &'static str {
    let Some(msg) = AuthenticatedMessage::parse(raw) else {
        return "permerror";
    };
    let outputs = auth.verify_dkim(&msg).await;
    label(outputs.iter().map(|o| o.result()))
}

/// One label for several signatures: pass > temperror > fail > permerror > none.
fn label<'a>(results: impl Iterator<Item = &'a DkimResult>) -> &'static str {
    let mut best = "none";
    let rank = |l: &str| match l {
        "pass" => 4,
        "temperror" => 3,
        "fail" => 2,
        "permerror" => 1,
        _ => 0,
    };
    for r in results {
        let l = match r {
            DkimResult::Pass => "pass",
            // mail-auth 0.13 reports a body that no longer matches its hash
            // as Neutral (body hash mismatch): the signature is broken.
            DkimResult::Fail(_) | DkimResult::Neutral(_) => "fail",
            DkimResult::TempError(_) => "temperror",
            DkimResult::PermError(_) => "permerror",
            DkimResult::None => "none",
        };
        if rank(l) > rank(best) {
            best = l;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passing_signature_wins_and_no_signature_is_none() {
        let e = || mail_auth::Error::ParseError;
        assert_eq!(
            label([DkimResult::Neutral(e()), DkimResult::Pass].iter()),
            "pass"
        );
        assert_eq!(label([DkimResult::Neutral(e())].iter()), "fail");
        assert_eq!(
            label([DkimResult::PermError(e()), DkimResult::TempError(e())].iter()),
            "temperror"
        );
        assert_eq!(label(std::iter::empty()), "none");
    }
}
