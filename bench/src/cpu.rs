//! Where a service run's processor time went: each process's user + system time from
//! `/proc/PID/stat` (its own and its reaped children's, plus its live children's), and the
//! machine's idle time from `/proc/stat`, read before and after a run.

use std::process::Command;
use std::sync::OnceLock;

/// Seconds per clock tick of `/proc`'s counters (`getconf CLK_TCK`; 100 on x86 Linux).
fn tick() -> f64 {
    static TICK: OnceLock<f64> = OnceLock::new();
    *TICK.get_or_init(|| {
        let out = Command::new("getconf").arg("CLK_TCK").output().ok();
        let hz = out.and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<f64>().ok());
        1.0 / hz.filter(|hz| *hz > 0.0).unwrap_or(100.0)
    })
}

/// The fields of `/proc/PID/stat` after the command name (which may hold spaces): field 3
/// (state) is the first.
fn stat_fields(pid: u32) -> Option<Vec<u64>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = text.get(text.rfind(')')? + 2..)?;
    // The state is a letter; number it 0 so the indices stay the man page's minus 3.
    Some(rest.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect())
}

/// A process's parent and its user + system seconds (fields 14 and 15), with those of the
/// children it waited for (16 and 17) if `reaped`.
fn process(pid: u32, reaped: bool) -> Option<(u32, f64)> {
    let f = stat_fields(pid)?;
    let ppid = *f.get(1)? as u32;
    let ticks: u64 = f.get(11..if reaped { 15 } else { 13 })?.iter().sum();
    Some((ppid, ticks as f64 * tick()))
}

/// The processor seconds `pid` and its live children have used so far (the children that
/// ended are in its own count once it waited for them, as PostgreSQL's postmaster does).
pub fn tree_seconds(pid: u32) -> f64 {
    let own = process(pid, true).map_or(0.0, |(_, s)| s);
    let children: f64 = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|child| process(child, true))
        .filter(|(ppid, _)| *ppid == pid)
        .map(|(_, s)| s)
        .sum();
    own + children
}

/// This process's own seconds, without its children's (the benchmark's clients are its
/// threads; the services it started are counted by their own ids).
pub fn own_seconds() -> f64 {
    process(std::process::id(), false).map_or(0.0, |(_, s)| s)
}

/// The machine's idle seconds over all cores so far (`/proc/stat`'s idle and iowait).
pub fn idle_seconds() -> f64 {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpu = text.lines().next().unwrap_or_default();
    let f: Vec<u64> = cpu.split_whitespace().skip(1).map(|f| f.parse().unwrap_or(0)).collect();
    (f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0)) as f64 * tick()
}
