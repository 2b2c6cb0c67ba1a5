//! Linux process figures (`/proc`, `getrusage`, `wait4`), CPU pinning and
//! the file-descriptor limit.

use std::io;
use std::time::Duration;

/// Clock ticks per second of `/proc/<pid>/stat` times.
fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// User + system CPU seconds of process `pid` (all its threads), from
/// `/proc/<pid>/stat` (fields 14 and 15, in clock ticks).
pub(crate) fn cpu_seconds(pid: u32) -> io::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces: count from its closing `)`.
    let after = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or_else(|| io::Error::other("bad /proc stat"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| -> io::Result<f64> {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .map(|v| v as f64)
            .ok_or_else(|| io::Error::other("bad /proc stat field"))
    };
    // `after` starts at field 3 (state): utime is field 14, stime field 15.
    Ok((field(11)? + field(12)?) / clock_ticks())
}

/// CPU seconds of process `pid` with nanosecond resolution: the sum of the
/// run time of its threads (first field of `/proc/<pid>/task/*/schedstat`).
/// Threads that exited are not counted, so it is read for long-lived
/// servers only; `None` where schedstat is missing.
pub(crate) fn run_time_seconds(pid: u32) -> Option<f64> {
    let mut total_ns: u64 = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let text = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
        total_ns += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    (total_ns > 0).then(|| total_ns as f64 / 1e9)
}

/// Resident set size of process `pid` in bytes (`VmRSS` of `/proc/<pid>/status`).
pub(crate) fn rss_bytes(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| io::Error::other("no VmRSS"))
}

fn timeval_seconds(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 / 1e6
}

/// CPU seconds (user + system) this process has used so far.
pub(crate) fn self_cpu_seconds() -> f64 {
    // SAFETY: an all-zero rusage is valid; getrusage only writes into it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    timeval_seconds(usage.ru_utime) + timeval_seconds(usage.ru_stime)
}

/// What one child process used, from `wait4`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChildUsage {
    /// Whether it exited with status 0.
    pub(crate) success: bool,
    /// User + system CPU seconds.
    pub(crate) cpu_seconds: f64,
    /// Peak resident set size in bytes.
    pub(crate) max_rss_bytes: u64,
}

/// Waits for child `pid` (spawned and not yet waited for) and returns its usage.
pub(crate) fn wait_child(pid: u32) -> io::Result<ChildUsage> {
    let pid = libc::pid_t::try_from(pid).map_err(io::Error::other)?;
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is valid; wait4 only writes into it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to a c_int and a rusage.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    Ok(ChildUsage {
        success: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        cpu_seconds: timeval_seconds(usage.ru_utime) + timeval_seconds(usage.ru_stime),
        max_rss_bytes: u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024,
    })
}

/// Raises the soft file-descriptor limit to the hard one (what `ulimit -n`
/// would do in a script); children inherit it. Returns the new soft limit.
pub(crate) fn raise_fd_limit() -> u64 {
    // SAFETY: an all-zero rlimit is valid; getrlimit only writes into it.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to an rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 0;
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: valid pointer to an rlimit.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return raised.rlim_cur;
        }
    }
    lim.rlim_cur
}

/// Pins this process (the threads created from now on) to CPU `core`.
pub(crate) fn pin_self(core: usize) -> io::Result<()> {
    // SAFETY: an all-zero cpu_set_t is the empty set; CPU_SET writes within it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `core` is checked by the caller against the CPU count (< CPU_SETSIZE).
    unsafe { libc::CPU_SET(core, &mut set) };
    // SAFETY: valid pointer to a cpu_set_t of the size given.
    let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sends `signal` to process `pid`.
pub(crate) fn kill(pid: u32, signal: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(pid, signal) };
    }
}

/// `/proc/loadavg` (1, 5, 15 minutes, running/total, last pid).
pub(crate) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// Sleeps without blocking the runtime.
pub(crate) async fn sleep(d: Duration) {
    tokio::time::sleep(d).await;
}

/// A command running `program`, under `taskset -c <cpus>` when `pin` gives
/// the taskset binary and the CPU list.
pub(crate) fn pinned_command(
    pin: Option<(&std::path::Path, &str)>,
    program: &std::path::Path,
) -> std::process::Command {
    match pin {
        Some((taskset, cpus)) => {
            let mut cmd = std::process::Command::new(taskset);
            cmd.arg("-c").arg(cpus).arg(program);
            cmd
        }
        None => std::process::Command::new(program),
    }
}

/// Raises this process's open-file limit to at least `want` (the servers it
/// starts inherit it): the soft limit up to the hard one, and the hard one
/// too where the system allows (root). Returns the limit now in force, or
/// why it could not reach `want`.
pub(crate) fn raise_open_files(want: u64) -> Result<u64, String> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(format!("getrlimit: {}", io::Error::last_os_error()));
    }
    if lim.rlim_cur >= want {
        return Ok(lim.rlim_cur);
    }
    let wanted = libc::rlimit {
        rlim_cur: want,
        rlim_max: lim.rlim_max.max(want),
    };
    // SAFETY: setrlimit reads the struct we own.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) } == 0 {
        return Ok(want);
    }
    let refused = io::Error::last_os_error();
    let capped = libc::rlimit {
        rlim_cur: lim.rlim_max,
        rlim_max: lim.rlim_max,
    };
    // SAFETY: as above.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &capped) };
    Err(format!(
        "the open-file limit is {} (hard {}) and the system refused {want}: {refused}; \
         raise it (`ulimit -Hn`, /etc/security/limits.conf, or run the benchmark as root)",
        lim.rlim_cur, lim.rlim_max
    ))
}

/// This process's open-file limit (soft).
pub(crate) fn open_files_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 0;
    }
    lim.rlim_cur
}
