//! SASL initial responses for the bearer-token mechanisms, in one place
//! with their specifications.

use crate::config::{OAuthMechanism, Secret};

/// The initial client response carrying `token` for `user`.
pub fn bearer_response(
    mechanism: OAuthMechanism,
    user: &str,
    token: &Secret,
    host: &str,
    port: u16,
) -> String {
    match mechanism {
        // https://developers.google.com/gmail/imap/xoauth2-protocol
        OAuthMechanism::XOAuth2 => {
            format!("user={user}\x01auth=Bearer {}\x01\x01", token.expose())
        }
        // RFC 7628 §3.1: a gs2-header (RFC 5801 §4, with `=` and `,` in the
        // authzid escaped), then key=value pairs.
        OAuthMechanism::OAuthBearer => format!(
            "n,a={},\x01host={host}\x01port={port}\x01auth=Bearer {}\x01\x01",
            user.replace('=', "=3D").replace(',', "=2C"),
            token.expose()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_follow_the_mechanisms() {
        let t = Secret::new("tok".into());
        assert_eq!(
            bearer_response(OAuthMechanism::XOAuth2, "a@b.test", &t, "imap.b.test", 993),
            "user=a@b.test\x01auth=Bearer tok\x01\x01"
        );
        assert_eq!(
            bearer_response(OAuthMechanism::OAuthBearer, "a,b=c@d.test", &t, "h", 143),
            "n,a=a=2Cb=3Dc@d.test,\x01host=h\x01port=143\x01auth=Bearer tok\x01\x01"
        );
    }
}
