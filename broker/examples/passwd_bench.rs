//! Cost of checking a password, per hash format and parameter set: median time of 20
//! verifications and peak memory.
//!
//! ```text
//! cargo run --release -p midge --example passwd_bench
//! ```
//!
//! Each set runs in a child process of its own, so that its peak resident memory
//! (`VmHWM` in /proc/self/status, Linux only) is its own.

use std::process::Command;
use std::time::{Duration, Instant};

use midge::security::password::{
    Algorithm, Argon2Params, DEFAULT_ARGON2, PBKDF2_ITERATIONS, PasswordFile, PasswordHash,
};

const RUNS: usize = 20;

fn sets() -> Vec<(String, Algorithm)> {
    let argon2 = |m_mib: u32, t: u32, note: &str| {
        (
            format!("argon2id m={m_mib} MiB t={t} p=1{note}"),
            Algorithm::Argon2id(Argon2Params {
                m_kib: m_mib * 1024,
                t,
                p: 1,
            }),
        )
    };
    let pbkdf2 = |iterations: u32, note: &str| {
        (
            format!("$7$ PBKDF2-SHA512 {iterations} iterations{note}"),
            Algorithm::Sha512Pbkdf2 { iterations },
        )
    };
    let default_note = format!(
        " (midge default: m={} KiB t={})",
        DEFAULT_ARGON2.m_kib, DEFAULT_ARGON2.t
    );
    vec![
        ("$6$ SHA-512 (Mosquitto 1.6)".to_string(), Algorithm::Sha512),
        pbkdf2(101, " (Mosquitto 2.0)"),
        pbkdf2(1000, " (Mosquitto 2.1)"),
        pbkdf2(PBKDF2_ITERATIONS, " (midge -H sha512-pbkdf2)"),
        argon2(4, 1, ""),
        argon2(8, 1, ""),
        argon2(
            8,
            2,
            if DEFAULT_ARGON2.m_kib == 8192 && DEFAULT_ARGON2.t == 2 {
                &default_note
            } else {
                ""
            },
        ),
        argon2(12, 1, ""),
        argon2(19, 2, " (OWASP minimum)"),
        argon2(46, 1, " (Mosquitto 2.1 default)"),
    ]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.get(2).filter(|_| args[1] == "--one") {
        let i: usize = i.parse().expect("set index");
        let (name, algorithm) = sets().swap_remove(i);
        one(&name, algorithm);
        return;
    }
    if args.get(1).map(String::as_str) == Some("--cache") {
        cache();
        return;
    }

    println!(
        "{:<60} {:>12} {:>12} {:>14}",
        "format", "median", "min", "peak memory"
    );
    let exe = std::env::current_exe().expect("current exe");
    for i in 0..sets().len() {
        let status = Command::new(&exe)
            .args(["--one", &i.to_string()])
            .status()
            .expect("run child");
        assert!(status.success(), "set {i} failed");
    }
    let status = Command::new(&exe)
        .arg("--cache")
        .status()
        .expect("run child");
    assert!(status.success(), "cache run failed");
}

/// One parameter set, in this process.
fn one(name: &str, algorithm: Algorithm) {
    let before = status_kib("VmRSS");
    let hash = PasswordHash::create(algorithm, b"correct horse battery staple").expect("hash");
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            assert!(hash.verify(b"correct horse battery staple"));
            start.elapsed()
        })
        .collect();
    times.sort();
    let peak = status_kib("VmHWM").saturating_sub(before);
    println!(
        "{name:<60} {:>12} {:>12} {:>10} KiB",
        time(times[RUNS / 2]),
        time(times[0]),
        peak
    );
}

/// A cache hit through `PasswordFile::verify`, with midge's default hash.
fn cache() {
    let mut file = PasswordFile::new("/nonexistent/bench");
    file.set("user", b"pw").expect("set");
    let start = Instant::now();
    assert!(file.verify("user", b"pw"));
    let miss = start.elapsed();
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            assert!(file.verify("user", b"pw"));
            start.elapsed()
        })
        .collect();
    times.sort();
    assert_eq!(file.hashes_computed(), 1);
    println!(
        "{:<60} {:>12} {:>12}   (first verification, uncached: {})",
        "PasswordFile::verify, cache hit (default hash)",
        time(times[RUNS / 2]),
        time(times[0]),
        time(miss)
    );
}

fn time(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1.0 {
        format!("{:.1} µs", ms * 1000.0)
    } else {
        format!("{ms:.2} ms")
    }
}

/// A `kB` field of /proc/self/status (0 where there is none).
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
