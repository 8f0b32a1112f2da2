//! The two VMMs a test can run: the test double (`examples/ch_double`) and the real Cloud
//! Hypervisor in `../shared/cloud-hypervisor/bin/` (or `CH_BIN`), with the Debian kernel that
//! `host-image/test-kernel/prepare.sh` fetches as its payload (or `CH_TEST_KERNEL`).
//!
//! The real one runs whenever its binary is there and `/dev/kvm` opens; otherwise a test says
//! `SKIPPED` with the reason. Under `CI`, a present binary with a usable `/dev/kvm` that still
//! cannot run (no payload kernel, say) fails instead of skipping.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A real Cloud Hypervisor this machine can run VMs with.
#[derive(Debug, Clone)]
pub struct RealCh {
    pub bin: PathBuf,
    pub ch_remote: PathBuf,
    /// A kernel CH can boot (`--kernel`/`payload.kernel`): Debian's bzImage. Guests make no
    /// progress on these machines' nested KVM, but create, boot and the API all answer.
    pub kernel: PathBuf,
}

/// The real binary: `CH_BIN`, else the one shipped beside the checkout.
pub fn real_ch_bin() -> PathBuf {
    std::env::var_os("CH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../shared/cloud-hypervisor/bin/cloud-hypervisor")
        })
}

fn payload_kernel() -> PathBuf {
    if let Some(k) = std::env::var_os("CH_TEST_KERNEL") {
        return PathBuf::from(k);
    }
    let dir = std::env::var_os("PHYLLOME_TEST_KERNEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/test-kernel"));
    dir.join("vmlinuz")
}

/// The real Cloud Hypervisor, or why it cannot run here and whether that is only a skip.
pub fn real_ch() -> Result<RealCh, (String, bool)> {
    let bin = real_ch_bin();
    if !bin.is_file() {
        return Err((
            format!("no Cloud Hypervisor binary at {}", bin.display()),
            true,
        ));
    }
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        return Err((format!("/dev/kvm does not open: {e}"), true));
    }
    // From here on the machine can run it: anything missing is a broken setup, not a skip.
    let kernel = payload_kernel();
    if !kernel.is_file() {
        return Err((
            format!(
                "no payload kernel at {} (run host-image/test-kernel/prepare.sh)",
                kernel.display()
            ),
            false,
        ));
    }
    let ch_remote = bin.with_file_name("ch-remote");
    Ok(RealCh {
        bin,
        ch_remote,
        kernel,
    })
}

/// The real Cloud Hypervisor for `test`, or `None` after printing `SKIPPED` and the reason.
/// Under `CI` only a missing binary or an unusable `/dev/kvm` may skip.
pub fn real_or_skip(test: &str) -> Option<RealCh> {
    match real_ch() {
        Ok(ch) => Some(ch),
        Err((why, may_skip)) => {
            if !may_skip && std::env::var_os("CI").is_some() {
                panic!("{test}: the real Cloud Hypervisor can run here but the test cannot: {why}");
            }
            // Straight to stderr: libtest hides eprintln! of passing tests, and a skip must show.
            let line = format!("SKIPPED: {test} (real Cloud Hypervisor): {why}\n");
            let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
            None
        }
    }
}

/// A VMM process (either kind) in a directory of its own, killed on drop: on every exit path
/// of a test, a failed assertion's unwinding included.
pub struct VmmProcess {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub api_socket: PathBuf,
    pub events: PathBuf,
    pub log: PathBuf,
    /// A real VMM's guest spins on these machines' nested KVM.
    _cpu: super::super::CpuBusy,
}

impl VmmProcess {
    /// Runs `bin` with `--api-socket path=<dir>/api.sock --event-monitor path=<dir>/events.json`
    /// and `extra` arguments, stdout and stderr to `<dir>/vmm.log`.
    pub fn spawn(bin: &Path, extra: &[&str], env: &[(&str, &str)]) -> VmmProcess {
        VmmProcess::spawn_via(&[], bin, extra, env)
    }

    /// [`VmmProcess::spawn`] through a wrapper that execs it in place (`unshare --net --`, so
    /// the tap devices a VMM creates live in a network namespace of its own, never the host's).
    pub fn spawn_via(
        wrapper: &[&str],
        bin: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> VmmProcess {
        let cpu = super::super::cpu_busy();
        let dir = tempfile::Builder::new()
            .prefix("vmm")
            .tempdir()
            .expect("tempdir");
        let api_socket = dir.path().join("api.sock");
        let events = dir.path().join("events.json");
        let log = dir.path().join("vmm.log");
        let out = std::fs::File::create(&log).expect("vmm log");
        let err = out.try_clone().expect("vmm log");
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.arg("--api-socket")
            .arg(format!("path={}", api_socket.display()))
            .arg("--event-monitor")
            .arg(format!("path={}", events.display()))
            .args(extra)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let mut p = VmmProcess {
            child,
            dir,
            api_socket,
            events,
            log,
            _cpu: cpu,
        };
        p.wait_listening(Duration::from_secs(10));
        p
    }

    /// Waits until the API socket accepts a connection; panics with the VMM's log otherwise.
    fn wait_listening(&mut self, limit: Duration) {
        let start = Instant::now();
        loop {
            if std::os::unix::net::UnixStream::connect(&self.api_socket).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the VMM exited ({status}) before listening: {}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            assert!(
                start.elapsed() < limit,
                "the VMM did not listen within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for the process to exit by itself; `None` if it still runs after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if start.elapsed() > limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for VmmProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 exchange on the API socket, read by its `Content-Length` (CH keeps the
/// connection open). Returns the status and the body, without any client logic between.
pub fn http(socket: &Path, method: &str, route: &str, body: Option<&str>) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket)
        .unwrap_or_else(|e| panic!("connect {}: {e}", socket.display()));
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("{method} /api/v1/{route} HTTP/1.1\r\nHost: localhost\r\n");
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body.unwrap_or_default());
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    let head_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = s.read(&mut buf).expect("read the reply head");
        assert!(n > 0, "connection closed before a reply: {raw:?}");
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut body = raw[head_end + 4..].to_vec();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())
                .flatten()
        })
        .unwrap_or(0);
    while body.len() < length {
        let n = s.read(&mut buf).expect("read the reply body");
        assert!(n > 0, "connection closed in the body");
        body.extend_from_slice(&buf[..n]);
    }
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The event monitor's events so far, as `source:event`.
pub fn events(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    serde_json::Deserializer::from_str(&text)
        .into_iter::<serde_json::Value>()
        .map_while(Result::ok)
        .map(|v| {
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
            format!("{}:{}", s("source"), s("event"))
        })
        .collect()
}
