//! The `tag=value; tag=value` syntax of DKIM key records (RFC 6376 §3.2),
//! which DMARC records reuse (RFC 7489 §6.4).
//!
//! ```text
//! tag-list  =  tag-spec *( ";" tag-spec ) [ ";" ]
//! tag-spec  =  [FWS] tag-name [FWS] "=" [FWS] tag-value [FWS]
//! tag-name  =  ALPHA *ALNUMPUNC                ; ALNUMPUNC = ALPHA / DIGIT / "_"
//! tag-value =  [ tval *( 1*(WSP / FWS) tval ) ]
//! tval      =  1*VALCHAR                       ; VALCHAR = %x21-3A / %x3C-7E
//! ```
//!
//! Deviation, on purpose: empty tag-specs (`;;`, or whitespace between
//! semicolons) are skipped rather than rejected, as every receiver we know does.

/// One `name=value` pair. `value` has surrounding whitespace removed; inner
/// whitespace is kept (callers that need it removed, like `p=`, strip it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub name: String,
    pub value: String,
    /// Byte offset of the tag-spec in the record.
    pub offset: usize,
}

/// Why a tag-spec could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    /// No `=` in the tag-spec.
    #[error("`{text}` at offset {offset} is not tag=value")]
    MissingEquals { offset: usize, text: String },
    /// The name is empty or has characters outside ALPHA *(ALPHA / DIGIT / "_").
    #[error("invalid tag name `{name}` at offset {offset}")]
    InvalidName { offset: usize, name: String },
    /// The value has a byte outside printable ASCII and whitespace.
    #[error("tag `{name}` has an invalid character {byte:#04x} in its value")]
    InvalidValue { name: String, byte: u8 },
    /// The same tag appears twice: RFC 6376 §3.2 makes the whole list invalid.
    #[error("tag `{name}` appears more than once")]
    Duplicate { name: String },
}

/// Whether tag names are compared case-sensitively when looking for duplicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameCase {
    /// DKIM: "Tags MUST be interpreted in a case-sensitive manner" (RFC 6376 §3.2).
    Sensitive,
    /// DMARC: names are ABNF literals, which are case-insensitive (RFC 5234 §2.3).
    Insensitive,
}

/// Splits `input` into tags. Tags that cannot be read are reported in the
/// error list and left out; later tags are still read. A duplicated tag keeps
/// its first occurrence.
pub fn parse(input: &[u8], case: NameCase) -> (Vec<Tag>, Vec<TagError>) {
    let mut tags: Vec<Tag> = Vec::new();
    let mut errors = Vec::new();
    let mut offset = 0usize;
    for spec in input.split(|b| *b == b';') {
        let spec_offset = offset;
        offset = offset.saturating_add(spec.len() + 1);
        let lead = spec.iter().take_while(|b| is_fws(**b)).count();
        let trimmed = trim_fws(spec);
        if trimmed.is_empty() {
            continue;
        }
        let at = spec_offset + lead;
        let Some(eq) = trimmed.iter().position(|b| *b == b'=') else {
            errors.push(TagError::MissingEquals {
                offset: at,
                text: crate::text::excerpt(&super::lossy(trimmed), 40),
            });
            continue;
        };
        let (raw_name, rest) = trimmed.split_at(eq);
        let name_bytes = trim_fws(raw_name);
        let raw_value = rest.get(1..).unwrap_or_default();
        let name_ok = name_bytes.first().is_some_and(u8::is_ascii_alphabetic)
            && name_bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'_');
        if !name_ok {
            errors.push(TagError::InvalidName {
                offset: at,
                name: crate::text::excerpt(&super::lossy(name_bytes), 40),
            });
            continue;
        }
        let name = super::lossy(name_bytes);
        let value_bytes = trim_fws(raw_value);
        if let Some(&byte) = value_bytes
            .iter()
            .find(|b| !(b.is_ascii_graphic() || is_fws(**b)))
        {
            errors.push(TagError::InvalidValue { name, byte });
            continue;
        }
        let duplicate = tags.iter().any(|t| match case {
            NameCase::Sensitive => t.name == name,
            NameCase::Insensitive => t.name.eq_ignore_ascii_case(&name),
        });
        if duplicate {
            errors.push(TagError::Duplicate { name });
            continue;
        }
        tags.push(Tag {
            name,
            value: super::lossy(value_bytes),
            offset: at,
        });
    }
    (tags, errors)
}

/// Folding white space and WSP: space, tab, CR, LF (RFC 5322 §3.2.2).
fn is_fws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn trim_fws(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if is_fws(*first) {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if is_fws(*last) {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// Removes all folding white space (for base64 values such as DKIM `p=`).
pub fn strip_fws(value: &str) -> String {
    value.chars().filter(|c| !c.is_ascii_whitespace()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(tags: &[Tag]) -> Vec<(&str, &str)> {
        tags.iter()
            .map(|t| (t.name.as_str(), t.value.as_str()))
            .collect()
    }

    #[test]
    fn parses_tags_with_whitespace_and_trailing_semicolon() {
        let (tags, errs) = parse(
            b" v = DKIM1 ;\tk=rsa; p=AB CD\r\n EF ;",
            NameCase::Sensitive,
        );
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(
            names(&tags),
            [("v", "DKIM1"), ("k", "rsa"), ("p", "AB CD\r\n EF")]
        );
        assert_eq!(tags[0].offset, 1);
        assert_eq!(tags[1].offset, 13);
    }

    #[test]
    fn empty_specs_are_skipped_and_empty_values_kept() {
        let (tags, errs) = parse(b"v=DKIM1;; p=", NameCase::Sensitive);
        assert!(errs.is_empty());
        assert_eq!(names(&tags), [("v", "DKIM1"), ("p", "")]);
    }

    #[test]
    fn reports_bad_specs_and_keeps_going() {
        let (tags, errs) = parse(
            "novalue; 1x=2; p=\u{e9}; a=b; a=c; A=d".as_bytes(),
            NameCase::Sensitive,
        );
        assert_eq!(names(&tags), [("a", "b"), ("A", "d")]);
        assert!(matches!(errs[0], TagError::MissingEquals { .. }));
        assert!(matches!(errs[1], TagError::InvalidName { .. }));
        assert!(matches!(errs[2], TagError::InvalidValue { .. }));
        assert!(matches!(errs[3], TagError::Duplicate { .. }));
        assert_eq!(errs.len(), 4);

        let (tags, errs) = parse(b"a=b; A=d", NameCase::Insensitive);
        assert_eq!(names(&tags), [("a", "b")]);
        assert_eq!(errs.len(), 1);
    }

    #[test]
    fn strip_fws_removes_all_whitespace() {
        assert_eq!(strip_fws("AB CD\r\n\tEF"), "ABCDEF");
    }
}
