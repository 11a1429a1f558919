//! Checks of meaning, one file per config section. [`Check`] collects the
//! problems (each naming `file:line:col` and the key) while raw values are
//! resolved into the model.

mod domains;
mod mailboxes;
mod probes;
mod seeds;
mod senders;

use std::path::{Path, PathBuf};

use toml::Spanned;

use crate::config::diag::{Diagnostic, Source};
use crate::config::model::*;
use crate::config::valid_name;

/// Secrets shorter than this get a warning ([`Check::short_secret`]).
const SHORT_SECRET: usize = 8;

/// Collects problems while resolving raw values.
pub(in crate::config) struct Check<'a> {
    pub(in crate::config) base: &'a Path,
    pub(in crate::config) problems: &'a mut Vec<Diagnostic>,
    pub(in crate::config) warnings: Vec<Diagnostic>,
}

impl Check<'_> {
    pub(in crate::config) fn path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    pub(in crate::config) fn name<T>(
        &mut self,
        src: &Source,
        at: &Spanned<T>,
        section: &str,
        name: &str,
    ) {
        if !valid_name(name) {
            self.problems.push(src.at_value(at, &format!("{section}.{name}"), format!(
                "name {name:?} must be 1-64 characters of a-z, 0-9, '-', '_', '.' (it becomes a metric label)"
            )));
        }
    }

    pub(in crate::config) fn address(
        &mut self,
        src: &Source,
        v: &Spanned<String>,
        key: &str,
    ) -> Option<String> {
        match v.get_ref().parse::<lettre::Address>() {
            Ok(a) => Some(a.to_string()),
            Err(e) => {
                self.problems.push(src.at_value(
                    v,
                    key,
                    format!("{:?} is not a mail address: {e}", v.get_ref()),
                ));
                None
            }
        }
    }

    /// Resolve a secret from exactly one of `<name>_file` / `<name>_env`.
    pub(in crate::config) fn secret(
        &mut self,
        src: &Source,
        key: &str,
        inline: &Option<Spanned<toml::Value>>,
        file: &Option<Spanned<PathBuf>>,
        env: &Option<Spanned<String>>,
    ) -> Option<Secret> {
        if let Some(v) = inline {
            let field = key.rsplit('.').next().unwrap_or(key);
            self.problems.push(src.at_value(v, key, format!(
                "inline secrets are not accepted; use {field}_file (e.g. with systemd LoadCredential=) or {field}_env"
            )));
            return None;
        }
        match (file, env) {
            (Some(f), Some(_)) => {
                self.problems.push(src.at_value(
                    f,
                    &format!("{key}_file"),
                    format!(
                        "set only one of {0}_file and {0}_env",
                        key.rsplit('.').next().unwrap_or(key)
                    ),
                ));
                None
            }
            (Some(f), None) => {
                let path = self.path(f.get_ref());
                match std::fs::read_to_string(&path) {
                    Ok(s) => {
                        let s = s
                            .strip_suffix('\n')
                            .map(|s| s.strip_suffix('\r').unwrap_or(s))
                            .unwrap_or(&s);
                        if s.is_empty() {
                            self.problems.push(src.at_value(
                                f,
                                &format!("{key}_file"),
                                format!("secret file {} is empty", path.display()),
                            ));
                            None
                        } else {
                            self.short_secret(src, f, &format!("{key}_file"), s);
                            Some(Secret::new(s.to_string()))
                        }
                    }
                    Err(e) => {
                        self.problems.push(src.at_value(
                            f,
                            &format!("{key}_file"),
                            format!("cannot read secret file {}: {e}", path.display()),
                        ));
                        None
                    }
                }
            }
            (None, Some(v)) => match std::env::var(v.get_ref()) {
                Ok(s) if !s.is_empty() => {
                    self.short_secret(src, v, &format!("{key}_env"), &s);
                    Some(Secret::new(s))
                }
                _ => {
                    self.problems.push(src.at_value(
                        v,
                        &format!("{key}_env"),
                        format!("environment variable {} is not set or empty", v.get_ref()),
                    ));
                    None
                }
            },
            (None, None) => None,
        }
    }

    /// Warns of a secret so short that redacting it (every occurrence is
    /// cut out of the server text mailcanary logs, `text::register`) would
    /// also cut those characters out of unrelated words.
    fn short_secret<T>(&mut self, src: &Source, at: &Spanned<T>, key: &str, secret: &str) {
        let n = secret.chars().count();
        if n < SHORT_SECRET {
            self.warnings.push(src.at_value(at, key, format!(
                "the secret is only {n} characters long: mailcanary cuts every occurrence of it out of the server text it logs, so it would also cut those characters out of other words; use at least {SHORT_SECRET}"
            )));
        }
    }

    pub(in crate::config) fn ca_file(
        &mut self,
        src: &Source,
        key: &str,
        v: &Option<Spanned<PathBuf>>,
    ) -> Option<PathBuf> {
        let v = v.as_ref()?;
        let path = self.path(v.get_ref());
        if let Err(e) = std::fs::File::open(&path) {
            self.problems.push(src.at_value(
                v,
                key,
                format!("cannot read CA file {}: {e}", path.display()),
            ));
        }
        Some(path)
    }

    pub(in crate::config) fn regex(
        &mut self,
        src: &Source,
        key: &str,
        v: &Option<Spanned<String>>,
        default: &str,
    ) -> Option<regex::Regex> {
        let pattern = v.as_ref().map_or(default, |p| p.get_ref().as_str());
        match regex::Regex::new(pattern) {
            Ok(r) => Some(r),
            Err(e) => {
                let at = v.as_ref().map_or(0..0, |p| p.span());
                // regex errors span lines (pattern, caret, reason): keep the reason.
                let text = e.to_string();
                let reason = text
                    .lines()
                    .last()
                    .unwrap_or("")
                    .trim_start_matches("error: ");
                self.problems.push(src.at(
                    at,
                    key,
                    format!("invalid regular expression {pattern:?}: {reason}"),
                ));
                None
            }
        }
    }

    /// One problem per key in `keys` that is set although it belongs to
    /// kind `belongs` and the section is kind `is` (reported at `kind`).
    pub(in crate::config) fn keys_of_other_kind<T>(
        &mut self,
        src: &Source,
        kind: &Spanned<T>,
        key: impl Fn(&str) -> String,
        keys: &[(bool, &str)],
        (belongs, is): (&str, &str),
    ) {
        for (set, field) in keys {
            if *set {
                self.problems.push(src.at_value(
                    kind,
                    &key(field),
                    format!("`{field}` is for kind = \"{belongs}\", not \"{is}\""),
                ));
            }
        }
    }
}
