//! What a report's bytes are and how to unwrap them: receivers send the XML
//! or JSON plain, gzipped, zipped, or attached to a message (RFC 7489 §7.2.1.1
//! names gzip and zip; RFC 8460 §5.3 `application/tlsrpt+gzip` and
//! `+json`). The form is sniffed from the bytes, not trusted from a file
//! name or a Content-Type.

use std::io::{Cursor, Read};

use mail_parser::{MessageParser, MimeHeaders, PartType};

use super::{dmarc, tlsrpt, Limits, Report, ReportError};

/// Entries of a zip archive looked at, at most.
const MAX_ZIP_ENTRIES: usize = 16;
/// Parts of a message looked at, at most.
const MAX_MIME_PARTS: usize = 64;

/// The form of a report's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// gzip (RFC 1952 magic `1f 8b`).
    Gzip,
    /// zip (local file header `PK\x03\x04`, or an empty archive).
    Zip,
    /// XML (first non-blank character `<`, after an optional BOM).
    Xml,
    /// XML encoded as UTF-16 (a UTF-16 BOM).
    Utf16Xml,
    /// JSON (first non-blank character `{`).
    Json,
    /// An RFC 5322 message (a header line first).
    Mime,
    /// None of those.
    Unknown,
}

/// Sniffs the form of `bytes`.
pub fn sniff(bytes: &[u8]) -> Form {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        return Form::Gzip;
    }
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        return Form::Zip;
    }
    if bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]) {
        return Form::Utf16Xml;
    }
    let text = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    match text.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'<') => return Form::Xml,
        Some(b'{') => return Form::Json,
        _ => {}
    }
    if looks_like_header(bytes) {
        Form::Mime
    } else {
        Form::Unknown
    }
}

/// RFC 5322 §2.2: a header field name is printable ASCII but `:`, followed by
/// `:`. An mbox `From ` line is accepted too.
fn looks_like_header(bytes: &[u8]) -> bool {
    if bytes.starts_with(b"From ") {
        return true;
    }
    let name_len = bytes
        .iter()
        .take(256)
        .take_while(|&&b| (33..=126).contains(&b) && b != b':')
        .count();
    name_len > 0 && bytes.get(name_len) == Some(&b':')
}

/// Reads a report from bytes of any form, unwrapping at most
/// `limits.max_depth` containers.
pub(crate) fn parse_any(
    bytes: &[u8],
    limits: &Limits,
    depth: usize,
) -> Result<Report, ReportError> {
    if bytes.len() > limits.max_input {
        return Err(ReportError::TooLarge {
            size: bytes.len(),
            limit: limits.max_input,
        });
    }
    if depth > limits.max_depth {
        return Err(ReportError::TooDeep {
            limit: limits.max_depth,
        });
    }
    match sniff(bytes) {
        Form::Gzip => parse_any(&gunzip(bytes, limits.max_inflated)?, limits, depth + 1),
        Form::Zip => unzip_and_parse(bytes, limits, depth),
        Form::Xml => dmarc::parse(bytes, limits).map(Report::Aggregate),
        Form::Utf16Xml => {
            let xml = decode_utf16(bytes);
            dmarc::parse(xml.as_bytes(), limits).map(Report::Aggregate)
        }
        Form::Json => tlsrpt::parse(bytes, limits).map(Report::Tls),
        Form::Mime => parse_message(bytes, limits, depth),
        Form::Unknown => Err(ReportError::Unrecognized),
    }
}

/// Inflates gzip data of one or more members (RFC 1952 §2.2: a file may hold
/// several, and some reporters write their XML in several). Bytes after the
/// last member that do not start a new one (padding, a signature) are ignored;
/// a corrupt first member is an error. Output stops at `cap` + 1 bytes.
pub fn gunzip(bytes: &[u8], cap: usize) -> Result<Vec<u8>, ReportError> {
    let mut out = Vec::with_capacity(bytes.len().saturating_mul(4).min(cap).min(1 << 20));
    let mut rest = bytes;
    let mut first = true;
    while rest.starts_with(&[0x1f, 0x8b]) {
        let mut member = flate2::bufread::GzDecoder::new(rest);
        let budget = (cap + 1 - out.len()) as u64;
        let before = out.len();
        let read = (&mut member).take(budget).read_to_end(&mut out);
        if out.len() > cap {
            return Err(ReportError::InflatedTooLarge { limit: cap });
        }
        if let Err(e) = read {
            if first {
                return Err(ReportError::Gzip(e.to_string()));
            }
            // A broken member after a good one: trailing garbage.
            out.truncate(before);
            break;
        }
        let after = member.into_inner();
        if after.len() == rest.len() {
            break;
        }
        rest = after;
        first = false;
    }
    Ok(out)
}

/// Reads `reader` to its end, refusing more than `cap` bytes.
fn read_capped(reader: impl Read, cap: usize) -> Result<Vec<u8>, ReportError> {
    let mut out = Vec::new();
    reader
        .take(cap as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ReportError::Zip(e.to_string()))?;
    if out.len() > cap {
        return Err(ReportError::InflatedTooLarge { limit: cap });
    }
    Ok(out)
}

/// Reads the first report in a zip archive: the entries named `.xml`,
/// `.json` or `.gz`, or, when none is so named, every file entry.
fn unzip_and_parse(bytes: &[u8], limits: &Limits, depth: usize) -> Result<Report, ReportError> {
    check_zip_directory(bytes)?;
    let mut archive =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| ReportError::Zip(e.to_string()))?;
    let names: Vec<(usize, bool)> = (0..archive.len().min(MAX_ZIP_ENTRIES))
        .filter_map(|i| {
            let entry = archive.by_index_raw(i).ok()?;
            if entry.is_dir() {
                return None;
            }
            let name = entry.name().to_ascii_lowercase();
            let named = [".xml", ".json", ".gz"].iter().any(|e| name.ends_with(e));
            Some((i, named))
        })
        .collect();
    let any_named = names.iter().any(|(_, named)| *named);
    let mut error = ReportError::EmptyArchive;
    for (i, named) in names {
        if any_named && !named {
            continue;
        }
        let data = {
            let entry = archive
                .by_index(i)
                .map_err(|e| ReportError::Zip(e.to_string()))?;
            if entry.size() > limits.max_inflated as u64 {
                return Err(ReportError::InflatedTooLarge {
                    limit: limits.max_inflated,
                });
            }
            read_capped(entry, limits.max_inflated)?
        };
        match parse_any(&data, limits, depth + 1) {
            Ok(report) => return Ok(report),
            Err(e) => error = e,
        }
    }
    Err(error)
}

/// The zip crate reserves room for as many entries as the end of central
/// directory record claims (bounded only by the directory's offset), so a
/// few hostile bytes could ask for gigabytes. Every such record in the tail
/// (PKWARE APPNOTE 4.3.16) must claim no more entries than the archive has
/// room for (a central header is at least 46 bytes), and ZIP64 (4.3.14, never
/// needed for a report) is refused.
fn check_zip_directory(bytes: &[u8]) -> Result<(), ReportError> {
    const EOCD: &[u8] = b"PK\x05\x06";
    const ZIP64_LOCATOR: &[u8] = b"PK\x06\x07";
    let tail = &bytes[bytes.len().saturating_sub(22 + usize::from(u16::MAX))..];
    let mut found = false;
    for (i, w) in tail.windows(4).enumerate() {
        if w == ZIP64_LOCATOR {
            return Err(ReportError::Zip("ZIP64 archives are not read".into()));
        }
        if w != EOCD {
            continue;
        }
        let Some(record) = tail.get(i..i + 22) else {
            continue;
        };
        found = true;
        let entries = u16::from_le_bytes([record[10], record[11]]);
        if entries == u16::MAX || usize::from(entries) * 46 > bytes.len() {
            return Err(ReportError::Zip(format!(
                "the directory claims {entries} entries, more than the archive holds"
            )));
        }
    }
    if found {
        Ok(())
    } else {
        Err(ReportError::Zip(
            "no end of central directory record".into(),
        ))
    }
}

/// Reads the first report attached to a message. Text meant for people
/// (`text/plain`, `text/html`) is skipped; every other leaf part is sniffed.
fn parse_message(bytes: &[u8], limits: &Limits, depth: usize) -> Result<Report, ReportError> {
    let message = MessageParser::default()
        .parse(bytes)
        .ok_or(ReportError::NoReportInMessage)?;
    let mut error = ReportError::NoReportInMessage;
    for part in message.parts.iter().take(MAX_MIME_PARTS) {
        let body: &[u8] = match &part.body {
            PartType::Binary(b) | PartType::InlineBinary(b) => b,
            PartType::Text(t) => {
                let plain = part.content_type().is_some_and(|ct| {
                    ct.ctype().eq_ignore_ascii_case("text")
                        && ct
                            .subtype()
                            .is_some_and(|s| s.eq_ignore_ascii_case("plain"))
                });
                if plain && part.attachment_name().is_none() {
                    continue;
                }
                t.as_bytes()
            }
            PartType::Message(inner) => inner.raw_message(),
            PartType::Html(_) | PartType::Multipart(_) => continue,
        };
        if body.is_empty() {
            continue;
        }
        match parse_any(body, limits, depth + 1) {
            Ok(report) => return Ok(report),
            // A part that is none of the forms (a logo, a signature) says
            // less than one that was a broken report.
            Err(ReportError::Unrecognized) => {}
            Err(e) => error = e,
        }
    }
    Err(error)
}

/// UTF-16 (either byte order, by its BOM) to a UTF-8 string; unpaired
/// surrogates become U+FFFD.
fn decode_utf16(bytes: &[u8]) -> String {
    let big_endian = bytes.starts_with(&[0xfe, 0xff]);
    let units = bytes[2..].chunks_exact(2).map(|c| {
        if big_endian {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_le_bytes([c[0], c[1]])
        }
    });
    char::decode_utf16(units)
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn sniffs_each_form() {
        assert_eq!(sniff(&gz(b"x")), Form::Gzip);
        assert_eq!(sniff(b"PK\x03\x04...."), Form::Zip);
        assert_eq!(sniff(b"\xef\xbb\xbf  <?xml"), Form::Xml);
        assert_eq!(sniff(b"\n{\"policies\":[]}"), Form::Json);
        assert_eq!(sniff(b"Return-Path: <a@b>\r\n"), Form::Mime);
        assert_eq!(sniff(b"\xff\xfe<\0"), Form::Utf16Xml);
        assert_eq!(sniff(b"hello world"), Form::Unknown);
        assert_eq!(sniff(b""), Form::Unknown);
    }

    #[test]
    fn gunzip_reads_concatenated_members_and_ignores_trailing_garbage() {
        let mut data = gz(b"<feedback>");
        data.extend(gz(b"</feedback>"));
        data.extend(b"\0\0\0garbage");
        assert_eq!(gunzip(&data, 1 << 20).unwrap(), b"<feedback></feedback>");
    }

    #[test]
    fn gunzip_stops_at_the_cap() {
        let data = gz(&vec![b'a'; 100_000]);
        assert_eq!(
            gunzip(&data, 99_999),
            Err(ReportError::InflatedTooLarge { limit: 99_999 })
        );
        assert_eq!(gunzip(&data, 100_000).unwrap().len(), 100_000);
    }

    #[test]
    fn gunzip_refuses_a_corrupt_first_member() {
        let mut data = gz(b"<feedback></feedback>");
        let n = data.len();
        data.truncate(n - 12);
        assert!(matches!(gunzip(&data, 1 << 20), Err(ReportError::Gzip(_))));
    }

    #[test]
    fn a_zip_claiming_more_entries_than_it_holds_is_refused() {
        let mut data = b"PK\x05\x06".to_vec();
        data.extend([0u8; 18]);
        assert!(check_zip_directory(&data).is_ok());
        data[10] = 0xfe;
        assert!(matches!(
            check_zip_directory(&data),
            Err(ReportError::Zip(_))
        ));
        let mut zip64 = b"PK\x06\x07".to_vec();
        zip64.extend([0u8; 16]);
        zip64.extend(b"PK\x05\x06");
        zip64.extend([0u8; 18]);
        assert!(matches!(
            check_zip_directory(&zip64),
            Err(ReportError::Zip(_))
        ));
    }

    #[test]
    fn nesting_is_bounded() {
        let mut data = b"<feedback/>".to_vec();
        for _ in 0..6 {
            data = gz(&data);
        }
        assert_eq!(
            parse_any(&data, &Limits::default(), 0),
            Err(ReportError::TooDeep { limit: 4 })
        );
    }

    #[test]
    fn utf16_is_decoded() {
        let mut bytes = vec![0xff, 0xfe];
        for u in "<a/>".encode_utf16() {
            bytes.extend(u.to_le_bytes());
        }
        assert_eq!(decode_utf16(&bytes), "<a/>");
    }
}
