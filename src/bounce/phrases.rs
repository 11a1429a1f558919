//! Tables of lower-case phrases, searched in one pass over a text
//! (Aho-Corasick) instead of once per phrase: the reason table alone has
//! hundreds of phrases, and text bounces are searched with several tables.

use aho_corasick::{AhoCorasick, MatchKind};

/// Groups of phrases, in the order the table gives them.
pub struct Phrases {
    /// Every phrase, reporting overlapping matches (for [`Phrases::first_group`]).
    all: AhoCorasick,
    /// The same phrases, leftmost match first (for [`Phrases::leftmost`]).
    leftmost: AhoCorasick,
    /// The group of each phrase, by pattern index.
    group: Vec<usize>,
}

impl Phrases {
    /// A table of groups of phrases; group `i` is the `i`th item.
    pub fn new<'a>(groups: impl IntoIterator<Item = &'a [&'a str]>) -> Phrases {
        let mut phrases = Vec::new();
        let mut group = Vec::new();
        for (i, g) in groups.into_iter().enumerate() {
            for p in g {
                phrases.push(*p);
                group.push(i);
            }
        }
        // The tables are constants of a few KiB: building cannot fail.
        let build = |kind| {
            AhoCorasick::builder()
                .match_kind(kind)
                .build(&phrases)
                .expect("phrase table")
        };
        Phrases {
            all: build(MatchKind::Standard),
            leftmost: build(MatchKind::LeftmostFirst),
            group,
        }
    }

    /// The first group, in table order, that has a phrase in `text`.
    pub fn first_group(&self, text: &str) -> Option<usize> {
        self.all
            .find_overlapping_iter(text)
            .map(|m| self.group[m.pattern().as_usize()])
            .min()
    }

    /// For each group with a phrase in `text`, in table order, where its
    /// leftmost phrase starts.
    pub fn first_of_each(&self, text: &str) -> Vec<(usize, usize)> {
        let mut first: Vec<(usize, usize)> = Vec::new();
        for m in self.all.find_overlapping_iter(text) {
            let g = self.group[m.pattern().as_usize()];
            match first.iter_mut().find(|(h, _)| *h == g) {
                Some((_, at)) => *at = (*at).min(m.start()),
                None => first.push((g, m.start())),
            }
        }
        first.sort_unstable();
        first
    }

    /// Whether any phrase occurs in `text`.
    pub fn any(&self, text: &str) -> bool {
        self.leftmost.is_match(text)
    }

    /// The group of the leftmost phrase in `text` (of phrases starting at
    /// the same place, the first in table order).
    pub fn leftmost_group(&self, text: &str) -> Option<usize> {
        self.leftmost
            .find(text)
            .map(|m| self.group[m.pattern().as_usize()])
    }

    /// Where the leftmost phrase in `text` starts.
    pub fn leftmost(&self, text: &str) -> Option<usize> {
        self.leftmost.find(text).map(|m| m.start())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_group_wins_whatever_comes_first_in_the_text() {
        let p = Phrases::new([&["quota"][..], &["unknown", "no such user"][..]]);
        assert_eq!(p.first_group("no such user, over quota"), Some(0));
        assert_eq!(p.first_group("no such user"), Some(1));
        assert_eq!(p.first_group("fine"), None);
        assert!(p.any("user unknown here"));
        assert_eq!(p.leftmost("an unknown user over quota"), Some(3));
        assert_eq!(p.leftmost_group("an unknown user over quota"), Some(1));
        assert_eq!(p.leftmost_group("fine"), None);
        assert_eq!(
            p.first_of_each("no such user, unknown, quota, unknown"),
            vec![(0, 23), (1, 0)]
        );
        // Overlapping phrases: the shorter inside the longer still counts.
        let q = Phrases::new([&["mailbox full"][..], &["box"][..]]);
        assert_eq!(q.first_group("the mailbox full"), Some(0));
    }
}
