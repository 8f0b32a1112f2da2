//! The samplers against real processes with known behaviour: a CPU burner, a memory holder
//! and a process with threads named like Cloud Hypervisor's vCPUs. The children are this test
//! binary run again with `MONITOR_CHILD` set (see `child_main`).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use phyllome::host::SysRoot;
use phyllome::monitor::history::Model;
use phyllome::monitor::process::{ticks_per_sec, ProcReader, ProcSample};
use phyllome::monitor::sample::{Snapshot, VmRaw};

const CHILD: &str = "MONITOR_CHILD";
const HOLD_MIB: usize = 64;

/// Not a test of its own: the body of the child processes.
#[test]
fn child_main() {
    let Ok(role) = std::env::var(CHILD) else {
        return;
    };
    let ready = || println!("ready");
    match role.as_str() {
        "burn" => {
            ready();
            let mut x = 0u64;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        "hold" => {
            let mut v = vec![0u8; HOLD_MIB << 20];
            // Touch every page so it is resident, not just reserved.
            for i in (0..v.len()).step_by(4096) {
                v[i] = 1;
            }
            std::hint::black_box(&v);
            ready();
            std::thread::sleep(Duration::from_secs(60));
        }
        "vcpus" => {
            let busy = std::thread::Builder::new().name("vcpu0".into()).spawn(|| {
                let mut x = 0u64;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            });
            let idle = std::thread::Builder::new()
                .name("vcpu1".into())
                .spawn(|| std::thread::sleep(Duration::from_secs(60)));
            assert!(busy.is_ok() && idle.is_ok());
            std::thread::sleep(Duration::from_millis(100));
            ready();
            std::thread::sleep(Duration::from_secs(60));
        }
        _ => {}
    }
}

struct Kid(Child);

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(role: &str) -> Kid {
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "monitor_samplers::child_main",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, role)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Owned first, so a failed start below still kills the child.
    let mut kid = Kid(child);
    let out = kid.0.stdout.take().unwrap();
    let mut lines = BufReader::new(out).lines();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match lines.next() {
            // libtest may print "test child_main ... " on the same line first.
            Some(Ok(l)) if l.trim_end().ends_with("ready") => break,
            Some(Ok(_)) => {}
            _ => panic!("child {role} did not start"),
        }
        assert!(Instant::now() < deadline, "child {role} too slow");
    }
    kid
}

/// utime + stime of /proc/<pid>/stat, parsed here independently of the sampler.
fn kernel_ticks(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest: Vec<&str> = text[text.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .collect();
    rest[11].parse::<u64>().unwrap() + rest[12].parse::<u64>().unwrap()
}

fn status_rss(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = text.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

fn raw(name: &str, s: ProcSample) -> VmRaw {
    let mut r = VmRaw::stopped(name, "Running");
    r.proc_sample = Some(s);
    r
}

fn snapshot(at: f64, vm: VmRaw) -> Snapshot {
    Snapshot {
        at,
        unix_secs: 0.0,
        host: None,
        vms: vec![vm],
    }
}

#[test]
fn cpu_percent_matches_the_kernels_accounting() {
    let _alone = crate::support::cpu_alone();
    let kid = spawn("burn");
    let pid = kid.0.id();
    let mut reader = ProcReader::new(SysRoot::host());
    let mut model = Model::new(10);
    let t0 = Instant::now();
    let k0 = kernel_ticks(pid);
    model.apply(snapshot(0.0, raw("burn", reader.sample(pid).unwrap())));
    std::thread::sleep(Duration::from_millis(1500));
    let s1 = reader.sample(pid).unwrap();
    let secs = t0.elapsed().as_secs_f64();
    let k1 = kernel_ticks(pid);
    model.apply(snapshot(secs, raw("burn", s1)));
    let ours = model.vms["burn"].stats.cpu_percent.unwrap();
    let kernel = (k1 - k0) as f64 / ticks_per_sec() as f64 / secs * 100.0;
    assert!(
        (ours - kernel).abs() <= 5.0,
        "sampler {ours:.1}% vs kernel {kernel:.1}%"
    );
    // A busy loop on a shared machine still gets a good part of a core.
    assert!(ours > 30.0, "burner at {ours:.1}%");
}

#[test]
fn rss_is_exact() {
    let kid = spawn("hold");
    let pid = kid.0.id();
    let mut reader = ProcReader::new(SysRoot::host());
    let s = reader.sample(pid).unwrap();
    let rss = s.rss_bytes.unwrap();
    assert_eq!(rss, status_rss(pid));
    assert!(
        rss >= (HOLD_MIB as u64) << 20,
        "rss {rss} below the {HOLD_MIB} MiB touched"
    );
    // Not a systemd unit of ours: no MemoryCurrent.
    assert!(s.cgroup_bytes.is_none() || s.cgroup_bytes.unwrap() > 0);
}

#[test]
fn vcpu_threads_are_found_and_measured() {
    let _alone = crate::support::cpu_alone();
    let kid = spawn("vcpus");
    let pid = kid.0.id();
    let mut reader = ProcReader::new(SysRoot::host());
    let mut model = Model::new(10);
    let t0 = Instant::now();
    let s0 = reader.sample(pid).unwrap();
    assert_eq!(s0.vcpus.iter().map(|v| v.index).collect::<Vec<_>>(), [0, 1]);
    model.apply(snapshot(0.0, raw("vm", s0)));
    std::thread::sleep(Duration::from_millis(1500));
    let s1 = reader.sample(pid).unwrap();
    model.apply(snapshot(t0.elapsed().as_secs_f64(), raw("vm", s1)));
    let stats = &model.vms["vm"].stats;
    assert_eq!(stats.vcpus.len(), 2);
    assert!(
        stats.vcpus[0] > 30.0,
        "busy vcpu0 at {:.1}%",
        stats.vcpus[0]
    );
    assert!(stats.vcpus[1] < 5.0, "idle vcpu1 at {:.1}%", stats.vcpus[1]);
    // The process total includes the busy vCPU.
    assert!(stats.cpu_percent.unwrap() + 5.0 >= stats.vcpus[0]);
    assert_eq!(stats.vcpus_wait.len(), 2);
}

#[test]
fn a_dead_pid_is_an_error_not_a_panic() {
    let mut reader = ProcReader::new(SysRoot::host());
    assert!(reader.sample(u32::MAX - 1).is_err());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("proc/77");
    std::fs::create_dir_all(dir.join("task/78")).unwrap();
    std::fs::write(dir.join("stat"), "77 (x) R garbage").unwrap();
    let mut fixture = ProcReader::new(SysRoot::new(tmp.path()));
    assert!(fixture.sample(77).is_err());
    std::fs::write(
        dir.join("stat"),
        "77 (x) R 1 1 1 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 99 0 0\n",
    )
    .unwrap();
    std::fs::write(dir.join("status"), "VmRSS: lots\n").unwrap();
    std::fs::write(dir.join("task/78/comm"), "vcpu0\n").unwrap();
    std::fs::write(dir.join("task/78/schedstat"), "nonsense\n").unwrap();
    let s = fixture.sample(77).unwrap();
    assert_eq!(s.cpu_ticks, 11);
    assert_eq!(s.rss_bytes, None);
    assert!(s.vcpus.is_empty());
}

/// `stat` line of a thread that last ran on `cpu` (field 39), with `ticks` of user time.
fn thread_stat(tid: u32, comm: &str, ticks: u64, cpu: u32) -> String {
    // Fields 3..=52 after "(comm)"; field n is at index n - 3.
    let mut f: Vec<String> = (3..=52).map(|_| "0".to_string()).collect();
    f[0] = "R".into();
    f[14 - 3] = ticks.to_string();
    f[20 - 3] = "1".into();
    f[22 - 3] = "99".into();
    f[39 - 3] = cpu.to_string();
    format!("{tid} ({comm}) {}\n", f.join(" "))
}

#[test]
fn each_vcpus_host_cpu_comes_from_its_threads_stat() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("proc/500");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("stat"), thread_stat(500, "cloud-hyperviso", 40, 0)).unwrap();
    // vCPUs listed out of order, a VMM thread between them, vcpu1 without schedstats.
    for (tid, comm, cpu) in [(503, "vcpu1", 6), (501, "vmm", 2), (502, "vcpu0", 11)] {
        let t = dir.join(format!("task/{tid}"));
        std::fs::create_dir_all(&t).unwrap();
        std::fs::write(t.join("comm"), format!("{comm}\n")).unwrap();
        std::fs::write(t.join("stat"), thread_stat(tid, comm, 10, cpu)).unwrap();
    }
    std::fs::write(dir.join("task/502/schedstat"), "1000 20 3\n").unwrap();
    let mut reader = ProcReader::new(SysRoot::new(tmp.path()));
    let s = reader.sample(500).unwrap();
    let on: Vec<(usize, Option<u32>)> = s.vcpus.iter().map(|v| (v.index, v.host_cpu)).collect();
    assert_eq!(on, [(0, Some(11)), (1, Some(6))]);
    let mut model = Model::new(10);
    model.apply(snapshot(0.0, raw("vm", s)));
    // Known from the first sample: no rate needed.
    assert_eq!(model.vms["vm"].stats.vcpu_host_cpus, [Some(11), Some(6)]);
    let json = serde_json::to_value(&model.vms["vm"].stats).unwrap();
    assert_eq!(json["vcpu_host_cpus"], serde_json::json!([11, 6]));
    // A stat cut before field 39 (an old kernel, a short read): unknown, not a wrong CPU.
    std::fs::write(
        dir.join("task/503/stat"),
        "503 (vcpu1) R 1 1 1 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 99 0 0\n",
    )
    .unwrap();
    let s = reader.sample(500).unwrap();
    assert_eq!(s.vcpus[1].host_cpu, None);
    assert_eq!(
        s.vcpus[1].run_ns,
        11 * phyllome::monitor::process::tick_ns()
    );
}
