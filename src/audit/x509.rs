//! Just enough X.509 (RFC 5280 §4.1) to read a certificate's expiry, for
//! `mx.cert_expiring`. No I/O; hostile input yields an error, never a panic.
//!
//! ```text
//! Certificate  ::=  SEQUENCE  { tbsCertificate TBSCertificate, ... }
//! TBSCertificate  ::=  SEQUENCE  {
//!      version         [0]  EXPLICIT Version DEFAULT v1,
//!      serialNumber         CertificateSerialNumber,
//!      signature            AlgorithmIdentifier,
//!      issuer               Name,
//!      validity             Validity, ... }
//! Validity ::= SEQUENCE { notBefore Time, notAfter Time }
//! Time ::= CHOICE { utcTime UTCTime, generalTime GeneralizedTime }
//! ```

/// Why the expiry could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum X509Error {
    /// The DER structure ends early or a length is malformed.
    #[error("truncated or malformed DER")]
    Malformed,
    /// An element has another tag than the grammar requires.
    #[error("unexpected DER tag {0:#04x}")]
    UnexpectedTag(u8),
    /// The time is not `YYMMDDHHMMSSZ` / `YYYYMMDDHHMMSSZ`.
    #[error("invalid certificate time")]
    BadTime,
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const CONTEXT_0: u8 = 0xa0;

/// Reads one TLV: (tag, content, rest).
fn tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), X509Error> {
    let (&tag, rest) = input.split_first().ok_or(X509Error::Malformed)?;
    let (&first, mut rest) = rest.split_first().ok_or(X509Error::Malformed)?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return Err(X509Error::Malformed);
        }
        let (bytes, tail) = (rest.get(..n), rest.get(n..));
        let (Some(bytes), Some(tail)) = (bytes, tail) else {
            return Err(X509Error::Malformed);
        };
        rest = tail;
        bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    let content = rest.get(..len).ok_or(X509Error::Malformed)?;
    let after = rest.get(len..).ok_or(X509Error::Malformed)?;
    Ok((tag, content, after))
}

fn expect(input: &[u8], want: u8) -> Result<(&[u8], &[u8]), X509Error> {
    let (tag, content, rest) = tlv(input)?;
    if tag != want {
        return Err(X509Error::UnexpectedTag(tag));
    }
    Ok((content, rest))
}

/// The `notAfter` of a DER certificate, in Unix seconds.
pub fn not_after(der: &[u8]) -> Result<i64, X509Error> {
    let (cert, _) = expect(der, SEQUENCE)?;
    let (tbs, _) = expect(cert, SEQUENCE)?;
    let mut rest = tbs;
    if rest.first() == Some(&CONTEXT_0) {
        rest = tlv(rest)?.2;
    }
    rest = expect(rest, INTEGER)?.1; // serialNumber
    rest = expect(rest, SEQUENCE)?.1; // signature
    rest = expect(rest, SEQUENCE)?.1; // issuer
    let (validity, _) = expect(rest, SEQUENCE)?;
    let (_, _, after_not_before) = tlv(validity)?;
    let (tag, time, _) = tlv(after_not_before)?;
    parse_time(tag, time)
}

fn digits(s: &[u8]) -> Result<i64, X509Error> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return Err(X509Error::BadTime);
    }
    Ok(s.iter().fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')))
}

fn parse_time(tag: u8, t: &[u8]) -> Result<i64, X509Error> {
    let (year, rest) = match tag {
        // RFC 5280 §4.1.2.5.1: YY >= 50 is 19YY, else 20YY.
        UTC_TIME if t.len() == 13 => {
            let yy = digits(t.get(..2).ok_or(X509Error::BadTime)?)?;
            (
                if yy >= 50 { 1900 + yy } else { 2000 + yy },
                t.get(2..).ok_or(X509Error::BadTime)?,
            )
        }
        GENERALIZED_TIME if t.len() == 15 => (
            digits(t.get(..4).ok_or(X509Error::BadTime)?)?,
            t.get(4..).ok_or(X509Error::BadTime)?,
        ),
        UTC_TIME | GENERALIZED_TIME => return Err(X509Error::BadTime),
        other => return Err(X509Error::UnexpectedTag(other)),
    };
    if rest.last() != Some(&b'Z') {
        return Err(X509Error::BadTime);
    }
    let field = |i: usize| digits(rest.get(i..i + 2).ok_or(X509Error::BadTime)?);
    let (month, day, hour, min, sec) = (field(0)?, field(2)?, field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return Err(X509Error::BadTime);
    }
    Ok(days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2026-01-31` for Unix seconds (the inverse of `days_from_civil`).
pub fn format_time(unix: i64) -> String {
    let z = unix.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes
    /// -subj /CN=mx.example -days 30` made on 2026-11-22 (notAfter
    /// 2026-12-22T03:35:40Z), DER, base64.
    const CERT_B64: &str = "MIIBfzCCASWgAwIBAgIUMELGgCwTmv+gzDzJiPgzyUhQiwgwCgYIKoZIzj0EAwIwFTETMBEGA1UEAwwKbXguZXhhbXBsZTAeFw0yNjExMjIwMzM1NDBaFw0yNjEyMjIwMzM1NDBaMBUxEzARBgNVBAMMCm14LmV4YW1wbGUwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAASEzHwjkb16u2Cxl186oNnf2Z8C8UnoK5l0/Qg8PPAd6g9RrtQ1SGSZjpyGFa/FLEq3Uxs1uxOQmE3bvVWvJECFo1MwUTAdBgNVHQ4EFgQUTdX0i36Wwn9J3+mMBCY4Ocp1nxYwHwYDVR0jBBgwFoAUTdX0i36Wwn9J3+mMBCY4Ocp1nxYwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiAGFS9u06ojwuH862U/iIjGAd7JLJ2ilUMT10aGMyMR7AIhAISHiMLkOspbHIfezl4QU0IN+WrQ9xtQfAJ5R6jrSOLa";

    #[test]
    fn reads_not_after() {
        let der = crate::audit::dkim::decode_base64(CERT_B64).unwrap();
        let t = not_after(&der).unwrap();
        assert_eq!(format_time(t), "2026-12-22");
        assert_eq!(t % 86_400, 3 * 3600 + 35 * 60 + 40);
    }

    #[test]
    fn times() {
        assert_eq!(parse_time(UTC_TIME, b"700101000000Z"), Ok(0));
        assert_eq!(parse_time(UTC_TIME, b"491231235959Z"), Ok(2_524_607_999));
        assert_eq!(
            parse_time(GENERALIZED_TIME, b"20380119031408Z"),
            Ok(2_147_483_648)
        );
        assert_eq!(
            parse_time(UTC_TIME, b"701301000000Z"),
            Err(X509Error::BadTime)
        );
        assert_eq!(
            parse_time(UTC_TIME, b"7001010000Z"),
            Err(X509Error::BadTime)
        );
        assert_eq!(format_time(0), "1970-01-01");
        assert_eq!(format_time(951_782_400), "2000-02-29");
    }

    #[test]
    fn hostile_der_never_panics() {
        let der = crate::audit::dkim::decode_base64(CERT_B64).unwrap();
        for cut in 0..der.len() {
            let _ = not_after(&der[..cut]);
        }
        let mut rng = crate::audit::testkit::Rng::new(7);
        for _ in 0..2000 {
            let mut d = der.clone();
            for _ in 0..4 {
                let i = rng.below(d.len());
                if let Some(b) = d.get_mut(i) {
                    *b = rng.next() as u8;
                }
            }
            let _ = not_after(&d);
        }
        assert!(not_after(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(not_after(&[]).is_err());
    }
}
