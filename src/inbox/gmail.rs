//! Gmail's IMAP extensions (capability `X-GM-EXT-1`): which category tab
//! of the inbox a message landed in.
//!
//! Gmail files inbox mail under Primary, Promotions, Social, Updates or
//! Forums. A code in Promotions is as good as lost for many users, so it is
//! its own placement, `tab`, with the tab as a bounded label. Gmail's
//! documented way to tell is its own search syntax through `X-GM-RAW`
//! (`category:promotions`, see
//! <https://developers.google.com/gmail/imap/imap-extensions>); a label in
//! `X-GM-LABELS` that names a tab (`CATEGORY_PROMOTIONS`, the Gmail API's
//! id, which IMAP is not documented to show) is believed first and saves
//! the searches.

use std::borrow::Cow;

/// The capability that announces the extensions.
pub const CAPABILITY: &str = "X-GM-EXT-1";

/// The `X-GM-RAW` search that finds mail in Primary.
pub const PRIMARY_QUERY: &str = "X-GM-RAW \"category:primary\"";

/// A Gmail inbox category other than Primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tab {
    Promotions,
    Social,
    Updates,
    Forums,
}

impl Tab {
    pub const ALL: [Tab; 4] = [Tab::Promotions, Tab::Social, Tab::Updates, Tab::Forums];

    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Tab::Promotions => "promotions",
            Tab::Social => "social",
            Tab::Updates => "updates",
            Tab::Forums => "forums",
        }
    }

    /// The `X-GM-RAW` search that finds mail in this tab.
    pub fn raw_query(self) -> String {
        format!("X-GM-RAW \"category:{}\"", self.as_str())
    }

    /// The tab a label names: `CATEGORY_PROMOTIONS` (the Gmail API's label
    /// id) or a `\Promotions`-style system label, any case. A user label
    /// that merely reads "Promotions" is not a tab.
    fn from_label(label: &str) -> Option<Tab> {
        let l = label.to_ascii_lowercase();
        let name = l
            .strip_prefix('\\')
            .or_else(|| l.strip_prefix("category_"))?;
        Tab::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// The tab among a message's `X-GM-LABELS`; `None` for Primary or when the
/// labels do not say.
pub fn tab_from_labels(labels: &[Cow<'_, str>]) -> Option<Tab> {
    labels.iter().find_map(|l| Tab::from_label(l))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_tabs_in_either_form_and_primary_has_none() {
        let l = |v: &[&'static str]| v.iter().map(|s| Cow::Borrowed(*s)).collect::<Vec<_>>();
        assert_eq!(
            tab_from_labels(&l(&["\\Inbox", "CATEGORY_PROMOTIONS"])),
            Some(Tab::Promotions)
        );
        assert_eq!(
            tab_from_labels(&l(&["\\Important", "category_social"])),
            Some(Tab::Social)
        );
        assert_eq!(tab_from_labels(&l(&["\\Updates"])), Some(Tab::Updates));
        assert_eq!(tab_from_labels(&l(&["\\Inbox", "\\Important"])), None);
        assert_eq!(
            tab_from_labels(&l(&["Promotions 2026", "Promotions"])),
            None
        );
        assert_eq!(tab_from_labels(&l(&[])), None);
        assert_eq!(Tab::Forums.raw_query(), "X-GM-RAW \"category:forums\"");
    }
}
