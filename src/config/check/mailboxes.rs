//! `[reports.*]` and `[bounces.*]`: the app's mailboxes, read with the
//! settings of a seed (IMAP with password or OAuth, or Maildir).

use std::collections::BTreeMap;

use toml::Spanned;

use super::Check;
use crate::config::diag::Source;
use crate::config::model::*;
use crate::config::raw::RawSeed;

impl Check<'_> {
    /// Both sections, checked as seeds; one namespace, since a name becomes
    /// the `mailbox` label.
    pub(in crate::config) fn app_mailboxes(
        &mut self,
        src: &Source,
        reports: BTreeMap<String, Spanned<RawSeed>>,
        bounces: BTreeMap<String, Spanned<RawSeed>>,
    ) -> BTreeMap<String, AppMailbox> {
        let mut out = BTreeMap::new();
        // Declared names, so a clash is found even when the first has problems.
        let mut declared = std::collections::BTreeSet::new();
        for (kind, table) in [
            (AppMailboxKind::Reports, reports),
            (AppMailboxKind::Bounces, bounces),
        ] {
            let section = kind.section();
            for (name, s) in table {
                self.name(src, &s, section, &name);
                if !declared.insert(name.clone()) {
                    self.problems.push(src.at_value(
                        &s,
                        &format!("{section}.{name}"),
                        format!("{name:?} is already a [reports.{name}] mailbox: names of reports and bounces mailboxes must differ (the name is the `mailbox` label)"),
                    ));
                    continue;
                }
                if let Some(inbox) = self.seed(src, section, &name, s.into_inner()) {
                    out.insert(name, AppMailbox { kind, inbox });
                }
            }
        }
        out
    }
}
