//! `memory::trim` gives freed heap back to the system: the daemon calls it
//! because glibc keeps freed chunks between live ones resident. This test
//! runs in its own process so that its RSS is its own.

/// Anonymous resident memory of this process, in KiB.
fn rss_anon_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("RssAnon in /proc/self/status")
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn freed_chunks_between_live_ones_are_given_back() {
    // 8,000 chunks of 8 KiB, written so their pages are resident; every
    // other one freed. The freed half (31 MiB) lies between live chunks,
    // where glibc's own trimming (only an arena's top) cannot return it.
    const CHUNK: usize = 8 * 1024;
    let mut chunks: Vec<Option<Vec<u8>>> = (0..8_000).map(|i| Some(vec![i as u8; CHUNK])).collect();
    for c in chunks.iter_mut().step_by(2) {
        *c = None;
    }
    std::hint::black_box(&chunks);
    let before = rss_anon_kib();
    assert!(mailcanary::memory::trim(), "malloc_trim released nothing");
    let after = rss_anon_kib();
    let released = before.saturating_sub(after);
    assert!(
        released >= 12 * 1024,
        "only {released} KiB of ~31 MiB freed was given back ({before} -> {after} KiB)"
    );
    // The live half is untouched.
    for (i, c) in chunks.iter().enumerate() {
        if let Some(c) = c {
            assert!(c.iter().all(|&b| b == i as u8));
        }
    }
}
