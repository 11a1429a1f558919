//! Name syntax: normalisation, valid query names, host names, and the
//! reverse-lookup names of addresses. No I/O.

use std::net::IpAddr;

/// Lower-cases ASCII letters and drops one trailing dot. Input that is not a
/// valid name is returned normalised the same way (callers check validity with
/// [`is_valid_name`]).
pub fn normalize(name: &str) -> String {
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    trimmed.to_ascii_lowercase()
}

/// True for a DNS name usable in a query: 1..=253 octets (without the
/// trailing dot), labels of 1..=63 octets (RFC 1035 §2.3.4), printable ASCII
/// without spaces. Underscores are allowed (`_dmarc`, `_spf`).
pub fn is_valid_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    name.split('.').all(|label| {
        !label.is_empty() && label.len() <= 63 && label.bytes().all(|b| b.is_ascii_graphic())
    })
}

/// True for a host name in the "LDH" sense (letters, digits, hyphens, and
/// underscores for service labels), with a non-numeric last label, as
/// required of a mail domain.
pub fn is_host_name(name: &str) -> bool {
    if !is_valid_name(name) {
        return false;
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    let labels_ok = name.split('.').all(|l| {
        l.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !l.starts_with('-')
            && !l.ends_with('-')
    });
    let tld_ok = name
        .rsplit('.')
        .next()
        .is_some_and(|tld| !tld.bytes().all(|b| b.is_ascii_digit()));
    labels_ok && tld_ok
}

/// The reverse-lookup name of `ip`: `4.3.2.1.in-addr.arpa` (RFC 1035 §3.5) or
/// the nibble form under `ip6.arpa` (RFC 3596 §2.5).
pub fn reverse_name(ip: IpAddr) -> String {
    format!(
        "{}.{}",
        reversed_labels(ip),
        match ip {
            IpAddr::V4(_) => "in-addr.arpa",
            IpAddr::V6(_) => "ip6.arpa",
        }
    )
}

/// The address labels in reverse order, without a suffix: `4.3.2.1` for
/// 1.2.3.4, 32 nibbles for IPv6 (DNSBL names, RFC 5782 §2.1 and §2.4).
pub fn reversed_labels(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut labels = Vec::with_capacity(32);
            for byte in v6.octets().iter().rev() {
                labels.push(format!("{:x}", byte & 0x0f));
                labels.push(format!("{:x}", byte >> 4));
            }
            labels.join(".")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_lowercases_and_drops_dot() {
        assert_eq!(normalize("Mail.Example.COM."), "mail.example.com");
        assert_eq!(normalize("."), "");
    }

    #[test]
    fn name_validity() {
        assert!(is_valid_name("_dmarc.example.com"));
        assert!(is_valid_name("example.com."));
        assert!(!is_valid_name("a..b"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name(&format!("{}.com", "a".repeat(64))));
        assert!(is_valid_name(&"a.".repeat(127)));
        assert!(!is_valid_name(&"a.".repeat(128)));
        assert!(!is_valid_name("a b.com"));
        assert!(is_host_name("mail-1.example.com"));
        assert!(!is_host_name("192.0.2.1"));
        assert!(!is_host_name("-a.example"));
        assert!(!is_host_name("a!.example"));
    }

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse_name("192.0.2.5".parse().unwrap()),
            "5.2.0.192.in-addr.arpa"
        );
        assert_eq!(
            reverse_name("2001:db8::567:89ab".parse().unwrap()),
            "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
        assert_eq!(reversed_labels("127.0.0.2".parse().unwrap()), "2.0.0.127");
    }
}
