//! `memory::limit_arenas` caps glibc's malloc arenas: threads that contend
//! for the allocator share two arenas instead of getting one each (each
//! arena keeps its own free chunks resident). Its own process, so that no
//! other test's threads made arenas first.

/// The arenas malloc has made, as `malloc_info` reports them (one `<heap`
/// element each).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn arenas() -> usize {
    let path = std::env::temp_dir().join(format!("malloc-info-{}.xml", std::process::id()));
    let c_path = std::ffi::CString::new(path.to_str().expect("utf-8 temp path")).unwrap();
    // SAFETY: a file opened for writing, handed to malloc_info and closed
    // here; both pointers are valid for the calls.
    unsafe {
        let f = libc::fopen(c_path.as_ptr(), c"w".as_ptr());
        assert!(!f.is_null(), "cannot open {}", path.display());
        assert_eq!(libc::malloc_info(0, f), 0, "malloc_info failed");
        libc::fclose(f);
    }
    let xml = std::fs::read_to_string(&path).expect("malloc_info output");
    let _ = std::fs::remove_file(&path);
    xml.matches("<heap nr=").count()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn contending_threads_share_two_arenas() {
    let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() || tunables.contains("arena_max") {
        eprintln!("glibc's arena limit is set: the operator's value stands, nothing to test");
        return;
    }
    mailcanary::memory::limit_arenas();
    // 16 threads allocating at once, past their per-thread caches (64 KiB
    // chunks): without the cap glibc gives each new thread an arena of its
    // own, up to 8 per core.
    let start = std::sync::Arc::new(std::sync::Barrier::new(16));
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                let mut keep = Vec::new();
                for i in 0..2_000 {
                    keep.push(vec![(t + i) as u8; 64 * 1024]);
                    if keep.len() > 8 {
                        keep.remove(0);
                    }
                }
                std::hint::black_box(keep.len())
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let n = arenas();
    assert!((1..=2).contains(&n), "{n} malloc arenas, want at most 2");
}
