//! The report's header: what machine and which broker builds the numbers come from.

use std::fmt::Write;
use std::process::Command;

use crate::broker::{Kind, Spec};

pub fn describe(specs: &[Spec]) -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim())
        .to_owned();
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let kib: f64 = m.lines().next()?.split_whitespace().nth(1)?.parse().ok()?;
            Some(format!("{:.1} GiB", kib / 1024.0 / 1024.0))
        })
        .unwrap_or_else(|| "?".to_owned());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| k.trim().to_owned())
        .unwrap_or_default();
    let mut out = format!(
        "- machine: {model}, {} cores, {memory} RAM, Linux {kernel}\n",
        crate::proc::cores()
    );
    for spec in specs {
        let _ = writeln!(
            out,
            "- {}: {} ({})",
            spec.kind,
            spec.bin.display(),
            version(spec)
        );
    }
    out
}

/// The broker's own version line.
fn version(spec: &Spec) -> String {
    let flag = match spec.kind {
        Kind::Midge => "--version",
        // Mosquitto has no --version; -h prints it first (and exits non-zero).
        Kind::Mosquitto => "-h",
    };
    Command::new(&spec.bin)
        .arg(flag)
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned()
                + &String::from_utf8_lossy(&o.stderr);
            text.lines()
                .find(|l| !l.trim().is_empty())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "version unknown".to_owned())
}
