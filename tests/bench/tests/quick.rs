//! The harness must not rot: every scenario, tiny, against both real brokers, with its
//! loss accounting on. Needs the debug `midge` binary (tests/run builds it) and Debian's
//! Mosquitto (tests/run installs it).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn quick_mode_runs_every_scenario_against_both_brokers() {
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_midge-bench"));
    let midge = bench.with_file_name("midge");
    assert!(
        midge.exists(),
        "{} is missing: run `cargo build -p midge` first (tests/run does)",
        midge.display()
    );
    let start = Instant::now();
    let out = Command::new(&bench)
        .args(["all", "--quick", "--rounds", "1", "--midge"])
        .arg(&midge)
        .output()
        .expect("run midge-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "midge-bench failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "quick mode took {:?}",
        start.elapsed()
    );
    for scenario in [
        "fanin-q0",
        "fanin-q1",
        "fanout-q0",
        "fanout-q1",
        "pairs-q0",
        "pairs-q1",
        "slow-sub",
        "conns",
        "latency",
        "startup",
    ] {
        assert!(
            stdout.contains(&format!("### {scenario}\n")),
            "{scenario} missing:\n{stdout}"
        );
    }
    // Both brokers measured in every row, and nothing lost at QoS 1 (a failure above).
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| metric"))
        .collect();
    assert!(rows.len() > 40, "{stdout}");
    for row in rows {
        let cells: Vec<&str> = row.split(" | ").collect();
        assert!(
            cells.len() == 4 && cells[1] != "–" && cells[2] != "–",
            "row {row:?}"
        );
    }
    for row in [
        "| throughput [msg/s] |",
        "| RSS per idle connection [B] |",
        "| latency p99 [ms] |",
    ] {
        assert!(stdout.contains(row), "{row} missing:\n{stdout}");
    }
}
