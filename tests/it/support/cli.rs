//! The `phyllome` binary run as a user would: one temporary directory per test holding the
//! VM definitions (`state/`), the runtime directory (`run/`) and, when asked, a fixture host
//! tree (`host/`), so tests never share a path and never touch this machine's own.
//!
//! Every command gets `--state-dir` and `--run-dir` (and `--host-root`, `--ch-bin` when set),
//! the process supervisor (`PHYLLOME_SUPERVISOR=process`: a systemd on the machine running the
//! tests is not the one under test), a 10 s VMM timeout and no backtraces. Settings travel to
//! the child only: nothing here changes this process's environment.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use phyllome::fixture::HostSpec;
use serde_json::Value;

use super::vmm::double;

/// The variables a developer's shell may hold that would point a command elsewhere.
const PATH_VARS: [&str; 5] = [
    "PHYLLOME_HOST_ROOT",
    "PHYLLOME_CH_BIN",
    "PHYLLOME_STATE_DIR",
    "PHYLLOME_RUN_DIR",
    "PHYLLOME_SIMULATE",
];

pub struct Cli {
    pub tmp: tempfile::TempDir,
    pub state: PathBuf,
    pub run: PathBuf,
    pub host_root: Option<PathBuf>,
    pub ch_bin: Option<PathBuf>,
    /// What every command's environment gets on top of this process's: `Some` sets, `None`
    /// removes.
    env: Vec<(String, Option<String>)>,
}

impl Cli {
    pub fn new() -> Cli {
        let tmp = tempfile::tempdir().expect("tempdir");
        let env = [
            ("PHYLLOME_SUPERVISOR", "process"),
            ("PHYLLOME_VMM_TIMEOUT", "10"),
            ("RUST_BACKTRACE", "0"),
        ];
        Cli {
            state: tmp.path().join("state"),
            run: tmp.path().join("run"),
            tmp,
            host_root: None,
            ch_bin: None,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), Some(v.to_string())))
                .collect(),
        }
    }

    /// Runs VMs on the test double (`examples/ch_double`).
    pub fn double() -> Cli {
        Cli::new().ch_bin(double::ch_double_path())
    }

    /// Writes `spec` as the host tree `host/` and passes it as `--host-root`, its writes going
    /// through the tree's simulated kernel (`PHYLLOME_SIMULATE`).
    pub fn host(mut self, spec: HostSpec) -> Cli {
        let root = self.tmp.path().join("host");
        spec.write(&root).expect("fixture host tree");
        self.host_root = Some(root);
        self.env
            .push(("PHYLLOME_SIMULATE".to_string(), Some("1".to_string())));
        self
    }

    pub fn ch_bin(mut self, bin: impl Into<PathBuf>) -> Cli {
        self.ch_bin = Some(bin.into());
        self
    }

    /// The temporary directory everything of this test lives in.
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// The fixture host tree; panics when there is none.
    pub fn root(&self) -> &Path {
        self.host_root
            .as_deref()
            .expect("a fixture host (Cli::host)")
    }

    /// The driver a PCI device of the fixture host is bound to.
    pub fn driver(&self, address: &str) -> Option<String> {
        let link = self
            .root()
            .join("sys/bus/pci/devices")
            .join(address)
            .join("driver");
        std::fs::read_link(link)
            .ok()
            .and_then(|t| Some(t.file_name()?.to_string_lossy().into_owned()))
    }

    /// The fixture host's framebuffer console binding (`1`: the console is on the GPU).
    pub fn fbcon(&self) -> String {
        std::fs::read_to_string(self.root().join("sys/class/vtconsole/vtcon1/bind"))
            .expect("vtcon1/bind")
            .trim()
            .to_owned()
    }

    /// Sets `key` in every later command's environment.
    pub fn set(&mut self, key: &str, value: &str) {
        self.env.push((key.into(), Some(value.into())));
    }

    /// Removes `key` from every later command's environment (also one this process has).
    pub fn unset(&mut self, key: &str) {
        self.env.push((key.into(), None));
    }

    /// A file that stands in for a kernel: the double never reads it, phyllome only checks
    /// that it exists.
    pub fn fake_kernel(&self) -> PathBuf {
        let path = self.tmp.path().join("vmlinuz");
        if !path.exists() {
            std::fs::write(&path, b"not a kernel").expect("fake kernel");
        }
        path
    }

    /// Writes the definition `state/vms/NAME.toml`.
    pub fn define_toml(&self, name: &str, text: &str) {
        let dir = self.state.join("vms");
        std::fs::create_dir_all(&dir).expect("state/vms");
        std::fs::write(dir.join(format!("{name}.toml")), text).expect("definition");
    }

    /// The command, output captured; `spawn` or `output` it.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_phyllome"));
        c.arg("--state-dir").arg(&self.state);
        c.arg("--run-dir").arg(&self.run);
        if let Some(root) = &self.host_root {
            c.arg("--host-root").arg(root);
        }
        if let Some(bin) = &self.ch_bin {
            c.arg("--ch-bin").arg(bin);
        }
        c.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for var in PATH_VARS {
            c.env_remove(var);
        }
        for (k, v) in &self.env {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run phyllome")
    }

    /// Succeeds; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        succeeded(args, &self.run(args))
    }

    /// Fails; returns stdout followed by stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "phyllome {args:?} should fail:\n{}",
            text(&out.stdout)
        );
        format!("{}{}", text(&out.stdout), text(&out.stderr))
    }

    /// Succeeds and prints JSON.
    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
    }

    /// `vm info NAME --json`.
    pub fn info(&self, name: &str) -> Value {
        self.json(&["vm", "info", name, "--json"])
    }

    /// The state `vm info` reports.
    pub fn state(&self, name: &str) -> String {
        self.info(name)["state"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// `vm list --json`.
    pub fn list(&self) -> Vec<Value> {
        self.json(&["vm", "list", "--json"])["vms"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The state `vm list` reports for `name`, if it lists it.
    pub fn list_state(&self, name: &str) -> Option<String> {
        self.list()
            .into_iter()
            .find(|r| r["name"] == name)
            .map(|r| r["state"].as_str().unwrap_or_default().to_string())
    }

    /// A VM's runtime directory, `run/vms/NAME`.
    pub fn vm_dir(&self, name: &str) -> PathBuf {
        self.run.join("vms").join(name)
    }

    /// The VMM pid a VM's pidfile records.
    pub fn pid(&self, name: &str) -> Option<u32> {
        double::vmm_pid(&self.run, name)
    }

    /// Live VMMs of this test: processes naming `run/vms/`, but for phyllome's own (the
    /// device supervisors).
    pub fn vmm_pids(&self) -> Vec<u32> {
        double::processes_naming(&self.run.join("vms"))
            .into_iter()
            .filter(|pid| {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                !text(&cmdline).contains("phyllome") && phyllome::vmm::launch::pid_running(*pid)
            })
            .collect()
    }

    /// A VM's `meta.json`: how it was launched.
    pub fn meta(&self, name: &str) -> Value {
        let text = std::fs::read_to_string(self.vm_dir(name).join("meta.json")).expect("meta");
        serde_json::from_str(&text).expect("meta.json")
    }
}

/// Nothing a test started may outlive it: its VMMs all name its own run directory.
impl Drop for Cli {
    fn drop(&mut self) {
        double::kill_vmms(&self.run);
    }
}

/// The stdout of `phyllome ARGS`, which must have succeeded.
pub fn succeeded(args: &[&str], out: &Output) -> String {
    assert!(
        out.status.success(),
        "phyllome {args:?} failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
