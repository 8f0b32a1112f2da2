//! Parsers of the procfs files the samplers read. Pure functions over text, so garbage (a
//! truncated read, a kernel with other fields) is an error value, never a panic.

use super::MonitorError;

fn bad(file: &'static str, why: &str) -> MonitorError {
    MonitorError::Parse {
        file,
        why: why.to_string(),
    }
}

/// What `/proc/<pid>/stat` (or `task/<tid>/stat`) says about CPU time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PidStat {
    /// User + system time in clock ticks (`USER_HZ`), all threads for a process.
    pub cpu_ticks: u64,
    /// Start time after boot, in ticks: with the pid it identifies the process.
    pub start_ticks: u64,
    pub threads: u64,
    /// The CPU it last ran on (field 39, `processor`); `None` on kernels without it.
    pub last_cpu: Option<u32>,
}

pub fn parse_pid_stat(text: &str) -> Result<PidStat, MonitorError> {
    const F: &str = "stat";
    // The command name is in parentheses and may itself hold spaces and parentheses.
    let close = text
        .rfind(')')
        .ok_or_else(|| bad(F, "no ')' after the command"))?;
    let rest: Vec<&str> = text
        .get(close + 1..)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    // rest[0] is field 3 (state); field n is rest[n - 3].
    let field = |n: usize| -> Result<u64, MonitorError> {
        rest.get(n - 3)
            .ok_or_else(|| bad(F, "too few fields"))?
            .parse::<u64>()
            .map_err(|_| bad(F, "a field is not a number"))
    };
    Ok(PidStat {
        cpu_ticks: field(14)?.saturating_add(field(15)?),
        threads: field(20)?,
        start_ticks: field(22)?,
        last_cpu: rest.get(39 - 3).and_then(|f| f.parse().ok()),
    })
}

/// `/proc/<pid>/schedstat`: time on a CPU and time spent runnable but waiting for one (run
/// delay), in nanoseconds. The wait is what a guest sees as steal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SchedStat {
    pub run_ns: u64,
    pub wait_ns: u64,
}

pub fn parse_schedstat(text: &str) -> Result<SchedStat, MonitorError> {
    let mut it = text.split_whitespace().map(str::parse::<u64>);
    match (it.next(), it.next()) {
        (Some(Ok(run_ns)), Some(Ok(wait_ns))) => Ok(SchedStat { run_ns, wait_ns }),
        _ => Err(bad("schedstat", "expected two numbers")),
    }
}

/// `VmRSS` of `/proc/<pid>/status`, in bytes. A kernel thread or zombie has none: `None`.
pub fn parse_status_rss(text: &str) -> Result<Option<u64>, MonitorError> {
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("VmRSS:") {
            return kib(v)
                .map(Some)
                .ok_or_else(|| bad("status", "VmRSS is not 'N kB'"));
        }
    }
    Ok(None)
}

/// `N kB` → bytes.
fn kib(v: &str) -> Option<u64> {
    let v = v.trim();
    let n = v
        .strip_suffix("kB")
        .unwrap_or(v)
        .trim()
        .parse::<u64>()
        .ok()?;
    n.checked_mul(1024)
}

/// The unified cgroup of a process from `/proc/<pid>/cgroup` (`0::/system.slice/x.service`).
pub fn parse_cgroup_v2(text: &str) -> Option<&str> {
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::trim)
        .filter(|p| p.starts_with('/'))
}

/// One `cpu` line of `/proc/stat`, in ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTicks {
    pub busy: u64,
    pub iowait: u64,
    pub steal: u64,
    pub total: u64,
}

/// The aggregate line and one line per core, in the file's order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProcStat {
    pub all: CpuTicks,
    pub cores: Vec<CpuTicks>,
}

pub fn parse_proc_stat(text: &str) -> Result<ProcStat, MonitorError> {
    let mut out = ProcStat::default();
    let mut seen_all = false;
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some(name) = words.next() else { continue };
        if !name.starts_with("cpu") {
            continue;
        }
        let v: Vec<u64> = words.map(|w| w.parse::<u64>().unwrap_or(0)).collect();
        if v.len() < 4 {
            return Err(bad("stat", "a cpu line has fewer than 4 fields"));
        }
        let get = |i: usize| v.get(i).copied().unwrap_or(0);
        // user nice system idle iowait irq softirq steal; guest time is already in user.
        let total = (0..8).map(get).fold(0u64, u64::saturating_add);
        let idle = get(3).saturating_add(get(4));
        let t = CpuTicks {
            busy: total.saturating_sub(idle),
            iowait: get(4),
            steal: get(7),
            total,
        };
        if name == "cpu" {
            out.all = t;
            seen_all = true;
        } else {
            out.cores.push(t);
        }
    }
    if !seen_all {
        return Err(bad("stat", "no cpu line"));
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemInfo {
    pub total: u64,
    pub available: u64,
    pub hugepages_total: u64,
    pub hugepages_free: u64,
    pub hugepage_size: u64,
}

pub fn parse_meminfo(text: &str) -> Result<MemInfo, MonitorError> {
    let mut m = MemInfo::default();
    let mut found = false;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let count = || value.trim().parse::<u64>().ok();
        match key {
            "MemTotal" => {
                m.total = kib(value).ok_or_else(|| bad("meminfo", "MemTotal is not 'N kB'"))?;
                found = true;
            }
            "MemAvailable" => m.available = kib(value).unwrap_or(0),
            "HugePages_Total" => m.hugepages_total = count().unwrap_or(0),
            "HugePages_Free" => m.hugepages_free = count().unwrap_or(0),
            "Hugepagesize" => m.hugepage_size = kib(value).unwrap_or(0),
            _ => {}
        }
    }
    if !found {
        return Err(bad("meminfo", "no MemTotal"));
    }
    Ok(m)
}

pub fn parse_loadavg(text: &str) -> Result<[f64; 3], MonitorError> {
    let mut it = text.split_whitespace().map(str::parse::<f64>);
    match (it.next(), it.next(), it.next()) {
        (Some(Ok(a)), Some(Ok(b)), Some(Ok(c)))
            if a.is_finite() && b.is_finite() && c.is_finite() =>
        {
            Ok([a, b, c])
        }
        _ => Err(bad("loadavg", "expected three numbers")),
    }
}

/// `vcpu3` → 3: Cloud Hypervisor names each vCPU thread `vcpuN`.
pub fn vcpu_index(comm: &str) -> Option<usize> {
    comm.trim().strip_prefix("vcpu")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const STAT: &str = "4242 (cloud hyper) v) S 1 4242 4242 0 -1 4194560 5000 0 0 0 \
        1234 567 0 0 20 0 9 0 98765 1000000 2500 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 3 0 0 0 0 0\n";

    #[test]
    fn pid_stat_survives_odd_command_names() {
        let s = parse_pid_stat(STAT).unwrap();
        assert_eq!(s.cpu_ticks, 1234 + 567);
        assert_eq!(s.threads, 9);
        assert_eq!(s.start_ticks, 98765);
    }

    #[test]
    fn status_rss_in_bytes() {
        let text = "Name:\tx\nVmPeak:\t  9 kB\nVmRSS:\t    2048 kB\n";
        assert_eq!(parse_status_rss(text).unwrap(), Some(2048 * 1024));
        assert_eq!(parse_status_rss("Name:\tkthreadd\n").unwrap(), None);
        assert!(parse_status_rss("VmRSS: lots\n").is_err());
    }

    #[test]
    fn proc_stat_totals_and_cores() {
        let text = "cpu  100 0 50 800 20 0 0 30 0 0\ncpu0 60 0 20 400 10 0 0 10 0 0\n\
                    cpu1 40 0 30 400 10 0 0 20 0 0\nintr 1 2 3\n";
        let s = parse_proc_stat(text).unwrap();
        assert_eq!(s.all.total, 1000);
        assert_eq!(s.all.busy, 180);
        assert_eq!(s.all.steal, 30);
        assert_eq!(s.cores.len(), 2);
        assert_eq!(s.cores[1].busy, 90);
    }

    #[test]
    fn meminfo_and_hugepages() {
        let text = "MemTotal:       16000000 kB\nMemFree: 1 kB\nMemAvailable:    8000000 kB\n\
                    HugePages_Total:     512\nHugePages_Free:      256\nHugepagesize:       2048 kB\n";
        let m = parse_meminfo(text).unwrap();
        assert_eq!(m.total, 16_000_000 * 1024);
        assert_eq!(m.available, 8_000_000 * 1024);
        assert_eq!((m.hugepages_total, m.hugepages_free), (512, 256));
        assert_eq!(m.hugepage_size, 2 << 20);
    }

    #[test]
    fn small_files() {
        assert_eq!(
            parse_loadavg("0.50 1.00 2.25 3/456 789\n").unwrap(),
            [0.5, 1.0, 2.25]
        );
        assert!(parse_loadavg("nan 1 2").is_err());
        assert_eq!(
            parse_schedstat("123 456 7\n").unwrap(),
            SchedStat {
                run_ns: 123,
                wait_ns: 456
            }
        );
        assert_eq!(
            parse_cgroup_v2("0::/system.slice/phyllome-vm-a.service\n"),
            Some("/system.slice/phyllome-vm-a.service")
        );
        assert_eq!(parse_cgroup_v2("1:name=systemd:/x\n"), None);
        assert_eq!(vcpu_index("vcpu12\n"), Some(12));
        assert_eq!(vcpu_index("vmm"), None);
    }

    proptest! {
        #[test]
        fn garbage_never_panics(text in "\\PC{0,200}") {
            let _ = parse_pid_stat(&text);
            let _ = parse_schedstat(&text);
            let _ = parse_status_rss(&text);
            let _ = parse_proc_stat(&text);
            let _ = parse_meminfo(&text);
            let _ = parse_loadavg(&text);
            let _ = parse_cgroup_v2(&text);
        }

        #[test]
        fn truncated_stat_is_an_error_not_a_panic(cut in 0usize..STAT.len()) {
            let _ = parse_pid_stat(STAT.get(..cut).unwrap_or_default());
        }
    }
}
