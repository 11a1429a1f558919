//! Hostile input never panics the report parser: every fixture, and XML and
//! JSON reports re-wrapped in gzip, zip-like and MIME framing, with bytes
//! flipped, cut, inserted or repeated. Small limits make the caps trip too.

use std::io::Write;
use std::path::PathBuf;

use mailcanary::reports::{parse, Limits, Report};
use proptest::prelude::*;

fn fixture_bytes() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reports");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n != "make.py" && n != "expected.json" && !n.contains("bomb")
        })
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Small caps, so that limits are reached by ordinary inputs.
const SMALL: Limits = Limits {
    max_input: 1 << 20,
    max_inflated: 64 << 10,
    max_records: 3,
    max_depth: 3,
};

#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Cut(usize),
    Insert(usize, Vec<u8>),
    Repeat(usize, usize),
}

fn apply(mut data: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let len = data.len().max(1);
        match e {
            Edit::Flip(at, mask) => {
                if !data.is_empty() {
                    let i = at % len;
                    data[i] ^= mask;
                }
            }
            Edit::Cut(at) => data.truncate(at % len),
            Edit::Insert(at, bytes) => {
                let i = at % len.min(data.len() + 1).max(1);
                let i = i.min(data.len());
                data.splice(i..i, bytes.iter().copied());
            }
            Edit::Repeat(at, n) => {
                if !data.is_empty() {
                    let i = at % len;
                    let end = (i + 64).min(data.len());
                    let chunk = data[i..end].to_vec();
                    for _ in 0..*n {
                        data.splice(i..i, chunk.iter().copied());
                    }
                }
            }
        }
    }
    data
}

fn edit() -> impl Strategy<Value = Edit> {
    let tokens = prop_oneof![
        Just(b"<record>".to_vec()),
        Just(b"</".to_vec()),
        Just(b"&lol;".to_vec()),
        Just(b"<![CDATA[".to_vec()),
        Just(b"<!DOCTYPE x [<!ENTITY a \"b\">]>".to_vec()),
        Just(b"\"policies\":[".to_vec()),
        Just(vec![0x1f, 0x8b, 8, 0]),
        Just(b"PK\x03\x04".to_vec()),
        Just(b"\xff\xfe\xc3".to_vec()),
        Just(b"18446744073709551616".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..16),
    ];
    prop_oneof![
        (any::<usize>(), 1u8..).prop_map(|(a, m)| Edit::Flip(a, m)),
        any::<usize>().prop_map(Edit::Cut),
        (any::<usize>(), tokens).prop_map(|(a, t)| Edit::Insert(a, t)),
        (any::<usize>(), 1usize..50).prop_map(|(a, n)| Edit::Repeat(a, n)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn mutated_fixtures_never_panic(
        which in any::<prop::sample::Index>(),
        edits in proptest::collection::vec(edit(), 1..6),
        wrap in 0u8..3,
    ) {
        let fixtures = fixture_bytes();
        let data = apply(which.get(&fixtures).clone(), &edits);
        let data = match wrap {
            0 => data,
            1 => gz(&data),
            _ => {
                let mut m = b"From: a@b.example\r\nContent-Type: application/gzip\r\nContent-Transfer-Encoding: base64\r\n\r\n".to_vec();
                use base64::Engine;
                m.extend(base64::engine::general_purpose::STANDARD.encode(gz(&data)).into_bytes());
                m
            }
        };
        for limits in [Limits::default(), SMALL] {
            if let Ok(Report::Aggregate(r)) = parse(&data, &limits) {
                prop_assert!(r.records.len() <= limits.max_records);
                prop_assert_eq!(r.dmarc_pass() + r.dmarc_fail(), r.messages());
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse(&data, &SMALL);
        let _ = parse(&gz(&data), &SMALL);
    }
}
