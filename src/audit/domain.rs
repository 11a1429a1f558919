//! The organizational domain of RFC 7489 §3.2. Name syntax
//! (normalisation, validity) lives with the DNS client in [`crate::dns::name`]
//! and is re-exported here for the record modules.
//!
//! The organizational domain needs the Public Suffix List. Callers pass a
//! [`PublicSuffix`]; [`Psl`] is the `psl` crate's compiled-in list
//! (republished whenever the list changes), what `mailcanary check` uses.
//!
//! [`LastLabel`] is the dependency-free fallback: it treats only the last
//! label as public, which is wrong for multi-label suffixes (`co.uk`,
//! `com.au`, `github.io`): there it names `co.uk` as the organizational
//! domain of `example.co.uk`.

pub use crate::dns::name::{is_host_name, is_valid_name, normalize};

/// Where the public part of a name ends (RFC 7489 §3.2 step 3).
pub trait PublicSuffix {
    /// Number of labels at the end of `name` (normalised) that form its public
    /// suffix: 1 for `example.com`, 2 for `example.co.uk`. A result of 0 is
    /// read as 1.
    fn suffix_labels(&self, name: &str) -> usize;
}

/// The Public Suffix List compiled into the `psl` crate. A name under an
/// unknown top-level domain (`.test`) gets the list's default rule `*`: its
/// last label is public.
#[derive(Debug, Clone, Copy, Default)]
pub struct Psl;

impl PublicSuffix for Psl {
    fn suffix_labels(&self, name: &str) -> usize {
        psl::suffix(name.as_bytes())
            .map(|s| s.as_bytes().split(|b| *b == b'.').count())
            .unwrap_or(1)
    }
}

/// Treats the last label as the public suffix. Wrong for multi-label
/// suffixes; see the module documentation.
#[derive(Debug, Clone, Copy, Default)]
pub struct LastLabel;

impl PublicSuffix for LastLabel {
    fn suffix_labels(&self, _name: &str) -> usize {
        1
    }
}

/// A fixed list of public suffixes (plus every single label). For tests and
/// for operators who configure their own suffixes.
#[derive(Debug, Clone, Default)]
pub struct SuffixList(pub Vec<String>);

impl PublicSuffix for SuffixList {
    fn suffix_labels(&self, name: &str) -> usize {
        let name = normalize(name);
        self.0
            .iter()
            .map(|s| normalize(s))
            .filter(|s| name == *s || name.ends_with(&format!(".{s}")))
            .map(|s| s.split('.').count())
            .max()
            .unwrap_or(1)
    }
}

/// The organizational domain of `name` (RFC 7489 §3.2): its public suffix plus
/// one label. `None` when `name` is itself a public suffix or not a valid name.
pub fn organizational_domain(name: &str, psl: &dyn PublicSuffix) -> Option<String> {
    let name = normalize(name);
    if !is_valid_name(&name) {
        return None;
    }
    let labels: Vec<&str> = name.split('.').collect();
    let keep = psl.suffix_labels(&name).max(1).saturating_add(1);
    if labels.len() < keep {
        return None;
    }
    let start = labels.len() - keep;
    labels.get(start..).map(|l| l.join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_domain_with_last_label() {
        let psl = LastLabel;
        assert_eq!(
            organizational_domain("a.b.Example.com.", &psl).as_deref(),
            Some("example.com")
        );
        assert_eq!(
            organizational_domain("example.com", &psl).as_deref(),
            Some("example.com")
        );
        assert_eq!(organizational_domain("com", &psl), None);
        assert_eq!(organizational_domain("", &psl), None);
        // The documented limitation:
        assert_eq!(
            organizational_domain("mail.example.co.uk", &psl).as_deref(),
            Some("co.uk")
        );
    }

    #[test]
    fn org_domain_with_psl() {
        assert_eq!(
            organizational_domain("mail.example.co.uk", &Psl).as_deref(),
            Some("example.co.uk")
        );
        assert_eq!(
            organizational_domain("a.b.sender.test", &Psl).as_deref(),
            Some("sender.test")
        );
        assert_eq!(organizational_domain("co.uk", &Psl), None);
    }

    #[test]
    fn org_domain_with_suffix_list() {
        let psl = SuffixList(vec!["co.uk".into(), "github.io".into()]);
        assert_eq!(
            organizational_domain("mail.example.co.uk", &psl).as_deref(),
            Some("example.co.uk")
        );
        assert_eq!(organizational_domain("co.uk", &psl), None);
        assert_eq!(
            organizational_domain("x.y.github.io", &psl).as_deref(),
            Some("y.github.io")
        );
        assert_eq!(
            organizational_domain("a.example.com", &psl).as_deref(),
            Some("example.com")
        );
    }
}
