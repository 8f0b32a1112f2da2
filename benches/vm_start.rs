//! Start latency: `VmManager::start` (lock, runtime dir, detached launch, wait for the API
//! socket, `vm.create`, `vm.boot`) next to the bare sequence a script would run against the
//! Cloud Hypervisor test double (launch it, wait for its socket, `vm.create` + `vm.boot` with
//! the client). Prints medians over RUNS starts and the overhead ratio; asserts nothing.
//!
//! Needs the double: `cargo build --release --example ch_double` (or a debug build).
// A benchmark prints its figures and stops at the first failure.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::string_slice,
    clippy::exit
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use phyllome::vmm::client::ChClient;
use phyllome::vmm::manager::{ManagerConfig, StopMode, VmManager};
use phyllome::vmm::runtime::RunRoot;

const RUNS: usize = 20;

fn double_path() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let target = exe.parent()?.parent()?.parent()?;
    ["release", "debug"]
        .iter()
        .map(|p| target.join(p).join("examples").join("ch_double"))
        .find(|p| p.is_file())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let Some(double) = double_path() else {
        eprintln!("vm_start: build the double first: cargo build --release --example ch_double");
        return;
    };
    std::env::set_var("PHYLLOME_SUPERVISOR", "process");
    let tmp = tempfile::tempdir().expect("tempdir");
    let kernel = tmp.path().join("vmlinuz");
    std::fs::write(&kernel, b"x").expect("kernel");
    let vms = tmp.path().join("state/vms");
    std::fs::create_dir_all(&vms).expect("state dir");
    std::fs::write(
        vms.join("bench.toml"),
        format!("[cpus]\nboot = 2\n[memory]\nsize = \"1G\"\n[boot]\nkernel = {kernel:?}\n"),
    )
    .expect("definition");
    let config = {
        let spec = phyllome::vm::Store::open(&vms)
            .and_then(|s| s.get("bench"))
            .expect("definition loads");
        phyllome::vm::to_vm_config(&spec, &phyllome::vm::RuntimePaths::in_dir(tmp.path()))
    };

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut cfg = ManagerConfig::new(
        Some(tmp.path().join("state")),
        RunRoot::new(tmp.path().join("run")),
        Some(double.clone()),
    );
    cfg.api_timeout = Duration::from_secs(5);
    let manager = VmManager::new(cfg);

    let mut through = Vec::new();
    let mut direct = Vec::new();
    let mut calls_only = Vec::new();
    for i in 0..RUNS + 2 {
        let t = Instant::now();
        rt.block_on(manager.start("bench")).expect("start");
        let took = t.elapsed();
        rt.block_on(manager.stop("bench", StopMode::Force))
            .expect("stop");

        let (launch_and_calls, calls) = rt.block_on(direct_start(&double, tmp.path(), &config));
        // The first two runs warm caches (binary pages, allocator) for both paths.
        if i >= 2 {
            through.push(took);
            direct.push(launch_and_calls);
            calls_only.push(calls);
        }
    }
    let (p, d, c) = (median(through), median(direct), median(calls_only));
    println!("vm_start: {RUNS} runs against {}", double.display());
    println!(
        "  phyllome start (launch + ready + create + boot): median {}",
        ms(p)
    );
    println!(
        "  direct launch + ready + create + boot:           median {}",
        ms(d)
    );
    println!(
        "  direct create + boot only (VMM already up):      median {}",
        ms(c)
    );
    println!(
        "  overhead ratio phyllome / direct: {:.2} (target < 1.2)",
        p.as_secs_f64() / d.as_secs_f64()
    );
}

/// Launches the double by hand, waits for its socket, then `vm.create` + `vm.boot`.
async fn direct_start(
    double: &Path,
    dir: &Path,
    config: &serde_json::Value,
) -> (Duration, Duration) {
    let d = dir.join("direct");
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("dir");
    let socket = d.join("api.sock");
    let t = Instant::now();
    let mut child = Command::new(double)
        .arg("--api-socket")
        .arg(format!("path={}", socket.display()))
        .arg("--event-monitor")
        .arg(format!("path={}", d.join("events.json").display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn double");
    let client = ChClient::new(socket.clone(), Duration::from_secs(5));
    loop {
        if socket.exists() && client.ping().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let t_calls = Instant::now();
    client.create(config).await.expect("create");
    client.boot().await.expect("boot");
    let (all, calls) = (t.elapsed(), t_calls.elapsed());
    let _ = client.vmm_shutdown().await;
    let _ = child.kill();
    let _ = child.wait();
    (all, calls)
}
