//! Secrets: passwords, tokens and keys read from `*_file` / `*_env` config
//! keys or obtained at run time. A leaf module: every stage may hold a
//! [`Secret`], and nothing prints one by accident.

use std::fmt;

/// A secret read from a file or the environment. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A secret obtained at run time (e.g. an OAuth access token) or read
    /// from the config.
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    /// A secret built in code rather than read from the config (tests, tools).
    pub fn from_test_value(value: String) -> Secret {
        Secret(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(s.expose(), "hunter2");
    }
}
