//! What the kernel says about a process: CPU time and memory from `/proc`, and the two
//! process settings the harness changes (open-file limit, CPU affinity).

use std::time::Instant;

/// CPU time and wall time of one process at one moment.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    /// User plus system CPU seconds of every thread so far.
    cpu_s: f64,
    at: Instant,
}

impl CpuSample {
    /// `pid`'s CPU time now (`None`: this process).
    pub fn take(pid: Option<u32>) -> std::io::Result<Self> {
        let at = Instant::now();
        Ok(Self {
            cpu_s: cpu_seconds(pid)?,
            at,
        })
    }

    /// CPU seconds and wall seconds from `self` to `later`.
    pub fn until(&self, later: &CpuSample) -> CpuUse {
        CpuUse {
            cpu_s: later.cpu_s - self.cpu_s,
            wall_s: later.at.duration_since(self.at).as_secs_f64(),
        }
    }
}

/// CPU used over an interval.
#[derive(Debug, Clone, Copy)]
pub struct CpuUse {
    pub cpu_s: f64,
    pub wall_s: f64,
}

impl CpuUse {
    /// Share of one core, in percent (200 % = both cores of this machine busy).
    pub fn percent(&self) -> f64 {
        100.0 * self.cpu_s / self.wall_s.max(1e-9)
    }
}

/// utime + stime of a whole process (all threads), from `/proc/PID/stat`.
fn cpu_seconds(pid: Option<u32>) -> std::io::Result<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path)?;
    // The command name (field 2) is in parentheses and may hold spaces: count fields from
    // the last ')'. utime and stime are fields 14 and 15, i.e. the 12th and 13th after it.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| bad_data("no ')' in /proc/PID/stat"))?;
    let mut fields = after.split_whitespace().skip(11);
    let mut tick_field = || -> std::io::Result<u64> {
        fields
            .next()
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| bad_data("utime/stime missing in /proc/PID/stat"))
    };
    let ticks = tick_field()? + tick_field()?;
    Ok(ticks as f64 / rustix::param::clock_ticks_per_second() as f64)
}

/// Resident and peak resident memory of a process, in KiB (`VmRSS`, `VmHWM`).
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    pub rss_kib: u64,
    pub peak_kib: u64,
}

impl Memory {
    pub fn of(pid: u32) -> std::io::Result<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let field = |name: &str| -> std::io::Result<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .ok_or_else(|| bad_data(&format!("{name} missing in /proc/{pid}/status")))
        };
        Ok(Self {
            rss_kib: field("VmRSS:")?,
            peak_kib: field("VmHWM:")?,
        })
    }
}

fn bad_data(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned())
}

/// Raises the soft open-file limit to the hard limit; returns the new soft limit. Brokers
/// started afterwards inherit it.
pub fn raise_nofile_limit() -> std::io::Result<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    setrlimit(Resource::Nofile, limit)?;
    Ok(limit.current.unwrap_or(u64::MAX))
}

/// The soft open-file limit now.
pub fn nofile_limit() -> u64 {
    rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX)
}

/// Pins the calling thread, and every thread it starts later, to `core`.
pub fn pin_to_core(core: usize) -> std::io::Result<()> {
    let mut set = rustix::thread::CpuSet::new();
    set.set(core);
    rustix::thread::sched_setaffinity(None, &set)?;
    Ok(())
}

/// Number of online cores.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The 1-minute load average, for the report header.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| {
            let mut f = l.split_whitespace();
            Some(format!("{} {} {}", f.next()?, f.next()?, f.next()?))
        })
        .unwrap_or_else(|| "?".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_cpu_and_memory() {
        let before = CpuSample::take(None).unwrap();
        // Burn a little CPU so the counters move.
        let mut x = 0u64;
        let start = Instant::now();
        while start.elapsed().as_millis() < 50 {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let used = before.until(&CpuSample::take(None).unwrap());
        assert!(used.cpu_s > 0.0 && used.wall_s >= 0.05, "{used:?}");
        let mem = Memory::of(std::process::id()).unwrap();
        assert!(mem.rss_kib > 0 && mem.peak_kib >= mem.rss_kib, "{mem:?}");
    }
}
