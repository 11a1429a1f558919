//! Property test of the IMAP response path: random server output (nested
//! lists to 400 levels, literals announced larger or smaller than what
//! follows, quoted strings full of parentheses and braces, junk) goes
//! through the framing layer into async-imap's real parser, in random chunk
//! sizes. Seeded, so a failure names its case; `IMAP_FUZZ_CASES` runs more.
//!
//! Properties: nothing panics or overflows a stack (a failure aborts this
//! process); an input within the bounds passes the layer byte for byte; an
//! input that breaks a bound is refused with its typed [`Overrun`], and
//! nothing past the bound reached the parser.

use mailcanary::inbox::imap_frame::{overrun_in, Framed, Limits, Overrun, Scanner};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LIMITS: Limits = Limits {
    max_depth: 48,
    max_line: 4096,
    max_literal: 2048,
    max_response: 16 * 1024,
};

/// One random response item.
fn item(rng: &mut StdRng, out: &mut Vec<u8>, depth: usize) {
    match rng.random_range(0..10) {
        0..=2 if depth < 400 => {
            // A list, sometimes very deep.
            let deep = if rng.random_bool(0.05) {
                rng.random_range(40..400)
            } else {
                1
            };
            for _ in 0..deep {
                out.push(b'(');
            }
            for _ in 0..rng.random_range(0..4) {
                item(rng, out, depth + deep);
                out.push(b' ');
            }
            for _ in 0..deep {
                out.push(b')');
            }
        }
        3 => {
            // A literal whose announcement may not match its bytes.
            let real = rng.random_range(0..64);
            let announced = match rng.random_range(0..8) {
                0 => rng.random_range(0..5000),
                1 => u64::MAX as usize / 2,
                _ => real,
            };
            out.extend_from_slice(format!("{{{announced}}}\r\n").as_bytes());
            for _ in 0..real {
                out.push(*b"()\"{}\r\nab".get(rng.random_range(0..9)).unwrap());
            }
        }
        4 => {
            out.push(b'"');
            for _ in 0..rng.random_range(0..20) {
                out.push(*b"(){}\\\"ab ".get(rng.random_range(0..9)).unwrap());
            }
            out.push(b'"');
        }
        5 => out.extend_from_slice(b"NIL"),
        6 => out.extend_from_slice(rng.random_range(0..u32::MAX).to_string().as_bytes()),
        7 => {
            for _ in 0..rng.random_range(0..8) {
                out.push(rng.random());
            }
        }
        _ => out.extend_from_slice(b"BODY[]"),
    }
}

fn response(rng: &mut StdRng) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..rng.random_range(1..4) {
        out.extend_from_slice(match rng.random_range(0..4) {
            0 => b"* 1 FETCH (".as_slice(),
            1 => b"* OK [ALERT] ".as_slice(),
            2 => b"a1 OK ".as_slice(),
            _ => b"* SEARCH ".as_slice(),
        });
        for _ in 0..rng.random_range(0..6) {
            item(rng, &mut out, 1);
            out.push(b' ');
        }
        out.extend_from_slice(b")\r\n");
    }
    if rng.random_bool(0.02) {
        out.extend(std::iter::repeat_n(b'x', 5000));
    }
    out
}

/// What the scanner says of `input`: the first bound it breaks, if any.
fn verdict(input: &[u8]) -> Option<Overrun> {
    let mut s = Scanner::new(LIMITS);
    input.iter().find_map(|&b| s.push(b).err())
}

/// `input` through the layer in random chunks, read both raw and by async-imap.
async fn run(rng: &mut StdRng, input: Vec<u8>) {
    let expected = verdict(&input);

    // 1. Raw: what the layer passes on.
    let (mut server, client) = tokio::io::duplex(1 << 20);
    let chunks: Vec<usize> = (0..input.len()).map(|_| rng.random_range(1..300)).collect();
    let feed = input.clone();
    let writer = tokio::spawn(async move {
        let mut at = 0;
        for c in chunks {
            if at >= feed.len() {
                break;
            }
            let end = (at + c).min(feed.len());
            if server.write_all(&feed[at..end]).await.is_err() {
                return;
            }
            at = end;
        }
    });
    let mut framed = Framed::new(client, LIMITS);
    let mut passed = Vec::new();
    let result = framed.read_to_end(&mut passed).await;
    writer.abort();
    match expected {
        None => {
            result.expect("within the bounds: no error");
            assert_eq!(passed, input, "the layer changed the bytes");
        }
        Some(o) => {
            let e = result.expect_err("a bound was broken");
            assert_eq!(overrun_in(&e), Some(o));
            assert!(passed.len() <= input.len());
            // Nothing past the bound went on: what passed is a prefix that
            // breaks no bound itself.
            assert_eq!(&input[..passed.len()], &passed[..]);
            assert_eq!(verdict(&passed), None);
        }
    }

    // 2. Through async-imap's parser: never a panic or an overflow.
    let (mut server, client) = tokio::io::duplex(1 << 20);
    let feed = input.clone();
    let writer = tokio::spawn(async move {
        let _ = server.write_all(&feed).await;
    });
    let mut imap = async_imap::Client::new(Framed::new(client, LIMITS));
    for _ in 0..16 {
        match imap.read_response().await {
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => break,
        }
    }
    writer.abort();
}

#[test]
fn random_server_output_through_the_framing_layer_and_the_parser() {
    let cases: u64 = std::env::var("IMAP_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500);
    // The parser runs on a thread with a tokio worker's stack size.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let handle = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let mut refused = 0;
            for seed in 0..cases {
                let mut rng = StdRng::seed_from_u64(seed);
                let input = response(&mut rng);
                if verdict(&input).is_some() {
                    refused += 1;
                }
                rt.block_on(run(&mut rng, input));
            }
            refused
        })
        .unwrap();
    let refused = handle.join().expect("no case panicked");
    // The generator reaches both sides of the bounds.
    assert!(
        refused > 0 && refused < cases,
        "refused {refused} of {cases}"
    );
}
