//! Rates and history from made-up samples: counters growing, wrapping, reset by a reboot into
//! a new VMM, devices appearing; host CPU from /proc/stat ticks.

use std::collections::BTreeMap;

use phyllome::monitor::history::Model;
use phyllome::monitor::host::HostRaw;
use phyllome::monitor::process::ProcSample;
use phyllome::monitor::procfs::{parse_meminfo, parse_proc_stat};
use phyllome::monitor::sample::{Snapshot, VmRaw};
use phyllome::vmm::api::VmCounters;

fn counters(disk_read: u64, net_rx: u64) -> VmCounters {
    let mut c = BTreeMap::new();
    c.insert(
        "_disk0".to_string(),
        BTreeMap::from([
            ("read_bytes".to_string(), disk_read),
            ("write_bytes".to_string(), disk_read / 2),
            ("read_ops".to_string(), disk_read / 4096),
            ("write_ops".to_string(), 0),
        ]),
    );
    c.insert(
        "_net0".to_string(),
        BTreeMap::from([
            ("rx_bytes".to_string(), net_rx),
            ("tx_bytes".to_string(), net_rx / 2),
            ("rx_frames".to_string(), net_rx / 1000),
            ("tx_frames".to_string(), 0),
        ]),
    );
    c
}

fn proc_sample(pid: u32, ticks: u64) -> ProcSample {
    ProcSample {
        pid,
        start_ticks: 1000 + pid as u64,
        cpu_ticks: ticks,
        rss_bytes: Some(1 << 30),
        cgroup_bytes: None,
        vcpus: Vec::new(),
    }
}

fn vm(pid: u32, ticks: u64, at: f64, c: VmCounters) -> VmRaw {
    let mut r = VmRaw::stopped("vm", "Running");
    r.proc_sample = Some(proc_sample(pid, ticks));
    r.counters = Some((at, c));
    r
}

fn snap(at: f64, vms: Vec<VmRaw>) -> Snapshot {
    Snapshot {
        at,
        unix_secs: 0.0,
        host: None,
        vms,
    }
}

#[test]
fn rates_over_the_window() {
    let mut m = Model::new(600);
    m.apply(snap(0.0, vec![vm(10, 0, 0.0, counters(0, 0))]));
    let s = &m.vms["vm"].stats;
    assert_eq!(s.cpu_percent, None, "no rate from one sample");
    assert_eq!(s.disk_read_bps, None);
    m.apply(snap(
        2.0,
        vec![vm(10, 300, 2.0, counters(2 << 20, 250_000))],
    ));
    let s = &m.vms["vm"].stats;
    assert_eq!(s.cpu_percent, Some(150.0));
    assert_eq!(s.disk_read_bps, Some(1_048_576.0));
    assert_eq!(s.disk_write_bps, Some(524_288.0));
    assert_eq!(s.disk_read_iops, Some(256.0));
    assert_eq!(s.net_rx_bps, Some(125_000.0));
    assert_eq!(s.net_rx_pps, Some(125.0));
    assert_eq!(m.vms["vm"].cpu.len(), 2);
    assert!(m.vms["vm"].cpu.iter().next().unwrap().is_nan());
}

#[test]
fn a_reboot_into_a_new_vmm_resets_without_a_spike() {
    let mut m = Model::new(600);
    m.apply(snap(
        0.0,
        vec![vm(10, 5000, 0.0, counters(9 << 30, 1 << 30))],
    ));
    // New pid, counters from zero; the counters are below the old ones.
    m.apply(snap(1.0, vec![vm(20, 10, 1.0, counters(4096, 1000))]));
    let s = &m.vms["vm"].stats;
    assert_eq!(s.cpu_percent, None, "another process: no CPU rate yet");
    assert_eq!(s.disk_read_bps, Some(4096.0));
    assert_eq!(s.net_rx_bps, Some(1000.0));
    // Same pid but counters larger than before the reboot: still counted from zero.
    let mut m = Model::new(600);
    m.apply(snap(0.0, vec![vm(10, 0, 0.0, counters(100, 100))]));
    m.apply(snap(1.0, vec![vm(11, 0, 1.0, counters(5000, 5000))]));
    assert_eq!(m.vms["vm"].stats.disk_read_bps, Some(5000.0));
}

#[test]
fn counters_that_wrap_or_reset_in_place() {
    let mut m = Model::new(600);
    m.apply(snap(
        0.0,
        vec![vm(10, 0, 0.0, counters(u64::MAX - 999, 50))],
    ));
    m.apply(snap(1.0, vec![vm(10, 0, 1.0, counters(1000, 40))]));
    let s = &m.vms["vm"].stats;
    assert_eq!(s.disk_read_bps, Some(2000.0), "wrapped: exact");
    assert_eq!(s.net_rx_bps, Some(40.0), "reset in place: counted since");
}

#[test]
fn a_hot_plugged_device_counts_from_zero_and_a_removed_one_is_no_drop() {
    let mut m = Model::new(600);
    m.apply(snap(0.0, vec![vm(10, 0, 0.0, counters(1000, 0))]));
    let mut c = counters(2000, 0);
    c.insert(
        "_disk1".into(),
        BTreeMap::from([("read_bytes".to_string(), 500)]),
    );
    m.apply(snap(1.0, vec![vm(10, 0, 1.0, c)]));
    assert_eq!(m.vms["vm"].stats.disk_read_bps, Some(1500.0));
    m.apply(snap(2.0, vec![vm(10, 0, 2.0, counters(3000, 0))]));
    assert_eq!(m.vms["vm"].stats.disk_read_bps, Some(1000.0));
}

#[test]
fn an_unanswered_counters_call_spans_the_gap() {
    let mut m = Model::new(600);
    m.apply(snap(0.0, vec![vm(10, 0, 0.0, counters(0, 0))]));
    let mut slow = vm(10, 0, 1.0, counters(0, 0));
    slow.counters = None;
    slow.state = "Unresponsive".into();
    m.apply(snap(1.0, vec![slow]));
    assert_eq!(m.vms["vm"].stats.disk_read_bps, None);
    m.apply(snap(2.0, vec![vm(10, 0, 2.0, counters(2000, 0))]));
    assert_eq!(m.vms["vm"].stats.disk_read_bps, Some(1000.0));
}

#[test]
fn vms_that_vanish_are_dropped_and_history_is_bounded() {
    let mut m = Model::new(5);
    for i in 0..20 {
        m.apply(snap(
            i as f64,
            vec![vm(10, i * 50, i as f64, counters(i * 10, 0))],
        ));
    }
    assert_eq!(m.vms["vm"].cpu.len(), 5);
    assert_eq!(m.vms["vm"].pushed, 20);
    assert!(m.vms["vm"].cpu.iter().all(|v| (v - 50.0).abs() < 1e-3));
    m.apply(snap(21.0, vec![]));
    assert!(m.vms.is_empty());
}

#[test]
fn host_cpu_memory_and_hugepages() {
    let mem = parse_meminfo(
        "MemTotal: 1000 kB\nMemAvailable: 250 kB\nHugePages_Total: 8\nHugePages_Free: 2\nHugepagesize: 2048 kB\n",
    )
    .unwrap();
    let at = |busy: u64, idle: u64| {
        HostRaw {
        stat: parse_proc_stat(&format!(
            "cpu {busy} 0 0 {idle} 0 0 0 0 0 0\ncpu0 {busy} 0 0 {i2} 0 0 0 0 0 0\ncpu1 0 0 0 {i2} 0 0 0 0 0 0\n",
            i2 = idle / 2
        ))
        .unwrap(),
        mem,
        load: [1.0, 0.5, 0.25],
    }
    };
    let mut m = Model::new(10);
    let mut s = snap(0.0, vec![]);
    s.host = Some(at(100, 100));
    m.apply(s);
    let mut s = snap(1.0, vec![]);
    s.host = Some(at(150, 200));
    m.apply(s);
    let h = m.host.stats.as_ref().unwrap();
    assert!((h.cpu_percent.unwrap() - 100.0 * 50.0 / 150.0).abs() < 1e-9);
    assert!((h.cpus[0] - 50.0).abs() < 1e-9);
    assert_eq!(h.cpus[1], 0.0);
    assert_eq!(h.memory_used_bytes, 750 * 1024);
    assert_eq!((h.hugepages_total, h.hugepages_free), (8, 2));
}
