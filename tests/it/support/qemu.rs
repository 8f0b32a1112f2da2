//! Boots a real Debian kernel under qemu (TCG) with the phyllome binary inside, so tests see
//! real IOMMU groups, real PCI drivers (bochs-drm, snd-hda-intel, vfio-pci) and a real serial tty.
//!
//! Guest layout:
//! - `ttyS0`: kernel console, then an interactive root shell (prompt [`PROMPT`]) that owns the line
//!   as its controlling tty. The test plays the terminal on it through [`Console`]: it renders the
//!   output with `vt100` and answers size queries, as a serial terminal emulator would.
//! - `ttyS1`: a non-interactive root shell for commands, driven by [`Guest::run`] with markers.
//!
//! Both lines are unix sockets in the guest's temp dir. qemu waits until the test has connected to
//! both before it starts the machine, so no output is lost.
//!
//! The kernel, its modules and a static busybox come from `host-image/test-kernel/prepare.sh`.
// A harness for guests of all kinds: some of its accessors serve the tests still to come.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Prompt of the interactive shell on ttyS0.
pub const PROMPT: &str = "guest# ";
/// Where [`GuestOptions::with_phyllome`] puts the binary in the guest (on `PATH`).
pub const PHYLLOME_IN_GUEST: &str = "/bin/phyllome";

/// What a guest's command channel on ttyS1 prints once it serves commands.
pub const GUEST_READY_MARKER: &str = "__PHYLLOME_GUEST_READY__";
const READY_MARKER: &str = GUEST_READY_MARKER;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

fn error(msg: impl Into<String>) -> Error {
    Error(msg.into())
}

fn io_context(what: impl fmt::Display) -> impl FnOnce(io::Error) -> Error {
    move |e| error(format!("{what}: {e}"))
}

/// Locks a mutex even if a panicking test poisoned it: the data is a log and a screen.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The kernel, modules and busybox prepared by `host-image/test-kernel/prepare.sh`.
#[derive(Debug, Clone)]
pub struct KernelCache {
    pub dir: PathBuf,
    pub version: String,
    pub vmlinuz: PathBuf,
    pub busybox: PathBuf,
    /// Module files in load order (dependencies first).
    pub modules: Vec<PathBuf>,
}

impl KernelCache {
    /// `PHYLLOME_TEST_KERNEL_DIR`, else `.cache/test-kernel` in the repository.
    pub fn default_dir() -> PathBuf {
        match std::env::var_os("PHYLLOME_TEST_KERNEL_DIR") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/test-kernel"),
        }
    }

    pub fn open(dir: &Path) -> Result<Self> {
        let missing = |what: &str| error(format!("no {what} in {}", dir.display()));
        let version = fs::read_to_string(dir.join("KERNEL_VERSION"))
            .map_err(|_| missing("KERNEL_VERSION"))?
            .trim()
            .to_owned();
        let vmlinuz = dir.join("vmlinuz");
        let busybox = dir.join("busybox");
        for (path, what) in [(&vmlinuz, "vmlinuz"), (&busybox, "busybox")] {
            if !path.is_file() {
                return Err(missing(what));
            }
        }
        let order =
            fs::read_to_string(dir.join("modules.order")).map_err(|_| missing("modules.order"))?;
        let modules: Vec<PathBuf> = order
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| dir.join("modules").join(l.trim()))
            .collect();
        if let Some(m) = modules.iter().find(|m| !m.is_file()) {
            return Err(error(format!("module {} is missing", m.display())));
        }
        let qemu = Command::new("qemu-system-x86_64")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !matches!(qemu, Ok(s) if s.success()) {
            return Err(error("qemu-system-x86_64 is not installed"));
        }
        Ok(Self {
            dir: dir.to_owned(),
            version,
            vmlinuz,
            busybox,
            modules,
        })
    }

    /// The prepared kernel, or `None` after a loud skip notice. Under `CI` a missing kernel is a
    /// failure: a skipped suite there would hide regressions.
    pub fn require() -> Option<Self> {
        let dir = Self::default_dir();
        match Self::open(&dir) {
            Ok(cache) => Some(cache),
            Err(e) if std::env::var_os("CI").is_some() => {
                panic!("real-kernel test kernel unavailable under CI: {e}; run host-image/test-kernel/prepare.sh")
            }
            Err(e) => {
                // Straight to the process's stderr: libtest captures eprintln! of passing tests,
                // and a skip must not go unnoticed.
                let _ = writeln!(
                    io::stderr(),
                    "\n==========\nSKIPPED: real-kernel test: {e}\n\
                     run host-image/test-kernel/prepare.sh (or set PHYLLOME_TEST_KERNEL_DIR)\n==========\n"
                );
                None
            }
        }
    }
}

/// What to boot. `Default` is the desktop-like topology with nothing of ours inside;
/// [`GuestOptions::with_phyllome`] adds the binary under test.
#[derive(Debug, Clone)]
pub struct GuestOptions {
    pub memory_mib: u32,
    pub cpus: u32,
    /// A `pcie-root-port` with `VGA` (bochs-drm) at function 0 and `ich9-intel-hda` at
    /// function 1, so the GPU and its audio share one IOMMU group as on a real desktop.
    pub gpu: bool,
    /// Appended to the kernel command line.
    pub kernel_args: Vec<String>,
    /// Appended to the qemu command line (more devices, for instance).
    pub qemu_args: Vec<String>,
    /// Executables copied in (debug info stripped) with the shared libraries `ldd` lists:
    /// (host path, guest path).
    pub binaries: Vec<(PathBuf, String)>,
    /// Extra files: (contents, guest path, mode).
    pub files: Vec<(Vec<u8>, String, u32)>,
    /// Size the test terminal on ttyS0 reports when asked (rows, cols).
    pub terminal_size: (u16, u16),
    pub boot_timeout: Duration,
}

impl Default for GuestOptions {
    fn default() -> Self {
        Self {
            memory_mib: 1024,
            cpus: 2,
            gpu: true,
            kernel_args: Vec::new(),
            qemu_args: Vec::new(),
            binaries: Vec::new(),
            files: Vec::new(),
            terminal_size: (24, 80),
            // TCG boots in ~5-20 s depending on load; two parallel guests on two cores are slower.
            boot_timeout: Duration::from_secs(120),
        }
    }
}

impl GuestOptions {
    pub fn with_phyllome() -> Self {
        let mut opts = Self::default();
        opts.binaries.push((
            PathBuf::from(env!("CARGO_BIN_EXE_phyllome")),
            PHYLLOME_IN_GUEST.to_owned(),
        ));
        opts
    }
}

/// Result of a command run on the guest's ttyS1 shell.
#[derive(Debug, Clone)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// A running guest. qemu is killed when it is dropped.
pub struct Guest {
    qemu: Child,
    console: Console,
    shell: Shell,
    dir: tempfile::TempDir,
    /// How long from spawning qemu until the guest's init reported ready.
    pub boot_time: Duration,
    /// TCG keeps a core busy while the guest lives.
    _cpu: super::CpuBusy,
}

impl Guest {
    pub fn boot(kernel: &KernelCache, opts: &GuestOptions) -> Result<Self> {
        let dir = guest_dir()?;
        let initrd = dir.path().join("initrd.cpio");
        fs::write(&initrd, build_initramfs(kernel, opts, dir.path())?)
            .map_err(io_context("writing the initramfs"))?;
        let append = format!(
            "console=ttyS0,115200 intel_iommu=on iommu=pt panic=-1 loglevel=4 {}",
            opts.kernel_args.join(" ")
        );
        Self::launch(
            dir,
            Some((&kernel.vmlinuz, &initrd, append.trim_end())),
            opts,
        )
    }

    /// Boots a prepared kernel and initrd (the host image) with `cmdline` plus
    /// `opts.kernel_args`. The image itself must serve the ttyS1 command channel: raw, no echo,
    /// the ready marker ([`GUEST_READY_MARKER`]) first, then `sh` reading commands from a pipe.
    pub fn boot_image(
        vmlinuz: &Path,
        initrd: &Path,
        cmdline: &str,
        opts: &GuestOptions,
    ) -> Result<Self> {
        let append = format!("{cmdline} {}", opts.kernel_args.join(" "));
        Self::launch(
            guest_dir()?,
            Some((vmlinuz, initrd, append.trim_end())),
            opts,
        )
    }

    /// Boots what `opts.qemu_args` give the firmware (a `-cdrom`, OVMF's pflash drives), as
    /// a machine boots: no `-kernel`. The booted system must serve the ttyS1 command channel as
    /// for [`Guest::boot_image`].
    pub fn boot_media(opts: &GuestOptions) -> Result<Self> {
        Self::launch(guest_dir()?, None, opts)
    }

    /// Starts qemu with `kernel` (vmlinuz, initrd, command line) given to it directly, or with
    /// none: the firmware boots what `opts.qemu_args` attach.
    fn launch(
        dir: tempfile::TempDir,
        kernel: Option<(&Path, &Path, &str)>,
        opts: &GuestOptions,
    ) -> Result<Self> {
        let cpu = super::cpu_busy();
        let s0 = dir.path().join("ttyS0.sock");
        let s1 = dir.path().join("ttyS1.sock");
        let log_path = dir.path().join("qemu.log");
        let log = fs::File::create(&log_path).map_err(io_context("creating qemu.log"))?;

        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args(["-accel", "tcg", "-cpu", "max", "-nodefaults", "-no-reboot"])
            .args(["-machine", "q35,kernel-irqchip=split"])
            .args(["-device", "intel-iommu,intremap=on"])
            .args(["-m", &opts.memory_mib.to_string()])
            .args(["-smp", &opts.cpus.to_string()])
            .args(["-display", "none", "-monitor", "none"])
            .arg("-chardev")
            .arg(format!(
                "socket,id=s0,path={},server=on,wait=on",
                s0.display()
            ))
            .args(["-serial", "chardev:s0"])
            .arg("-chardev")
            .arg(format!(
                "socket,id=s1,path={},server=on,wait=on",
                s1.display()
            ))
            .args(["-serial", "chardev:s1"]);
        if let Some((vmlinuz, initrd, append)) = kernel {
            cmd.arg("-kernel")
                .arg(vmlinuz)
                .arg("-initrd")
                .arg(initrd)
                .args(["-append", append]);
        }
        if opts.gpu {
            cmd.args([
                "-device",
                "pcie-root-port,id=rp1,bus=pcie.0,chassis=1,slot=1",
            ])
            .args(["-device", "VGA,bus=rp1,addr=00.0,multifunction=on"])
            .args(["-device", "ich9-intel-hda,id=hda,bus=rp1,addr=00.1"])
            // A codec, so snd-hda-intel binds fully instead of logging "no codecs found".
            .args(["-audiodev", "none,id=noaudio"])
            .args(["-device", "hda-duplex,bus=hda.0,audiodev=noaudio"]);
        }
        cmd.args(&opts.qemu_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(io_context("qemu.log"))?)
            .stderr(log);

        let start = Instant::now();
        let mut qemu = cmd
            .spawn()
            .map_err(io_context("starting qemu-system-x86_64"))?;
        let streams = connect(&mut qemu, &s0, &log_path)
            .and_then(|a| connect(&mut qemu, &s1, &log_path).map(|b| (a, b)));
        let (c0, c1) = match streams {
            Ok(s) => s,
            Err(e) => {
                let _ = qemu.kill();
                let _ = qemu.wait();
                return Err(e);
            }
        };
        let console = Console::start(c0, opts.terminal_size)?;
        let mut guest = Self {
            qemu,
            console,
            shell: Shell::new(c1)?,
            dir,
            boot_time: Duration::ZERO,
            _cpu: cpu,
        };
        let deadline = start + opts.boot_timeout;
        if let Err(e) = guest
            .shell
            .read_until(READY_MARKER, deadline, &mut guest.qemu)
        {
            return Err(error(format!(
                "guest did not become ready: {e}\n{}",
                guest.diagnostics()
            )));
        }
        guest.boot_time = start.elapsed();
        Ok(guest)
    }

    /// Runs `cmd` in a fresh subshell on ttyS1 (so `exit` or `cd` do not leak), stdin from
    /// /dev/null, with a 60 s timeout.
    pub fn run(&mut self, cmd: &str) -> Result<Output> {
        self.run_timeout(cmd, Duration::from_secs(60))
    }

    pub fn run_timeout(&mut self, cmd: &str, timeout: Duration) -> Result<Output> {
        self.shell
            .run(cmd, Instant::now() + timeout, &mut self.qemu)
            .map_err(|e| error(format!("`{cmd}` in the guest: {e}")))
    }

    /// Runs `cmd` and returns its stdout; a non-zero exit is an error carrying stderr.
    pub fn run_ok(&mut self, cmd: &str) -> Result<String> {
        let out = self.run(cmd)?;
        if out.code != 0 {
            return Err(error(format!(
                "`{cmd}` in the guest exited with {}\nstdout:\n{}\nstderr:\n{}",
                out.code, out.stdout, out.stderr
            )));
        }
        Ok(out.stdout)
    }

    /// How often the command channel needed an empty line to push input through (see
    /// `Shell::read_until`).
    pub fn shell_nudges(&self) -> u64 {
        self.shell.nudges
    }

    /// Waits up to `timeout` for qemu to exit by itself (the guest powered off); its status,
    /// or None if it still runs.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.qemu.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// The terminal on ttyS0 (kernel console, then the interactive shell).
    pub fn console(&self) -> &Console {
        &self.console
    }

    /// qemu's own messages and the tail of the console transcript, for failure messages.
    pub fn diagnostics(&self) -> String {
        let log = fs::read_to_string(self.dir.path().join("qemu.log")).unwrap_or_default();
        format!(
            "--- qemu log ---\n{}\n--- ttyS0 transcript (tail) ---\n{}\n--- end ---",
            log.trim_end(),
            self.console.transcript_tail(4000)
        )
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = self.qemu.kill();
        let _ = self.qemu.wait();
    }
}

/// One guest shared by the tests of a test binary that run concurrently, so they pay for one
/// boot. The guest lives while any test holds it; a later test boots a new one.
pub struct SharedGuest {
    slot: Mutex<Weak<Mutex<Guest>>>,
}

impl SharedGuest {
    pub const fn new() -> Self {
        Self {
            slot: Mutex::new(Weak::new()),
        }
    }

    /// The shared guest, booting it with `opts` if no test holds one. Lock the returned mutex
    /// only around a test's own steps; a poisoned lock still hands out the guest.
    pub fn get(&self, kernel: &KernelCache, opts: &GuestOptions) -> Result<Arc<Mutex<Guest>>> {
        // Held across the boot so concurrent callers wait for it rather than boot their own.
        let mut slot = lock(&self.slot);
        if let Some(guest) = slot.upgrade() {
            return Ok(guest);
        }
        let guest = Arc::new(Mutex::new(Guest::boot(kernel, opts)?));
        *slot = Arc::downgrade(&guest);
        Ok(guest)
    }
}

impl Default for SharedGuest {
    fn default() -> Self {
        Self::new()
    }
}

/// Locks a shared guest, ignoring poisoning by an earlier failed test.
pub fn lock_guest(guest: &Mutex<Guest>) -> MutexGuard<'_, Guest> {
    lock(guest)
}

fn guest_dir() -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("phyllome-guest-")
        .tempdir()
        .map_err(io_context("creating a temp dir"))
}

fn connect(qemu: &mut Child, path: &Path, log: &Path) -> Result<UnixStream> {
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    loop {
        if let Ok(stream) = UnixStream::connect(path) {
            return Ok(stream);
        }
        if let Ok(Some(status)) = qemu.try_wait() {
            return Err(error(format!(
                "qemu exited ({status}) before {} was up:\n{}",
                path.display(),
                fs::read_to_string(log).unwrap_or_default()
            )));
        }
        if Instant::now() > deadline {
            return Err(error(format!("qemu never opened {}", path.display())));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn check_alive(qemu: &mut Child) -> Result<()> {
    match qemu.try_wait() {
        Ok(Some(status)) => Err(error(format!("qemu exited ({status})"))),
        _ => Ok(()),
    }
}

/// The ttyS1 command channel.
struct Shell {
    stream: UnixStream,
    buf: Vec<u8>,
    seq: u64,
    /// A command was sent and its markers have not all come back.
    awaiting: bool,
    quiet_reads: u32,
    nudges: u64,
}

impl Shell {
    fn new(stream: UnixStream) -> Result<Self> {
        // Short reads so deadlines and qemu's death are noticed promptly.
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .map_err(io_context("ttyS1 socket"))?;
        Ok(Self {
            stream,
            buf: Vec::new(),
            seq: 0,
            awaiting: false,
            quiet_reads: 0,
            nudges: 0,
        })
    }

    /// Reads until `marker` has arrived; returns everything before it and drops it from the
    /// buffer.
    fn read_until(&mut self, marker: &str, deadline: Instant, qemu: &mut Child) -> Result<Vec<u8>> {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(pos) = find(&self.buf, marker.as_bytes()) {
                let before = self.buf[..pos].to_vec();
                self.buf.drain(..pos + marker.len());
                return Ok(before);
            }
            check_alive(qemu)?;
            if Instant::now() > deadline {
                return Err(error(format!(
                    "timed out waiting for {marker}; ttyS1 so far: {:?}",
                    String::from_utf8_lossy(&self.buf)
                )));
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(error("ttyS1 closed")),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    self.quiet_reads = 0;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    // Under TCG the emulated 16550 sometimes holds the tail of what we sent
                    // until more input arrives. An empty line is a no-op for the shell and
                    // pushes the rest through.
                    self.quiet_reads += 1;
                    if self.awaiting && self.quiet_reads.is_multiple_of(2) {
                        self.stream
                            .write_all(b"\n")
                            .map_err(io_context("writing to ttyS1"))?;
                        self.nudges += 1;
                    }
                }
                Err(e) => return Err(error(format!("reading ttyS1: {e}"))),
            }
        }
    }

    fn run(&mut self, cmd: &str, deadline: Instant, qemu: &mut Child) -> Result<Output> {
        self.seq += 1;
        let n = self.seq;
        // The line is raw and does not echo (see INIT), so only the markers come back. stdout
        // and stderr go through files so they stay apart and arrive whole after the exit code.
        let script = format!(
            "( {cmd}\n) </dev/null >/tmp/.run.out 2>/tmp/.run.err; \
             printf '<<RC:{n}:%d>>\\n' $?; cat /tmp/.run.out; printf '\\n<<ERR:{n}>>\\n'; \
             cat /tmp/.run.err; printf '\\n<<END:{n}>>\\n'\n"
        );
        self.stream
            .write_all(script.as_bytes())
            .map_err(io_context("writing to ttyS1"))?;
        self.awaiting = true;
        self.quiet_reads = 0;
        self.read_until(&format!("<<RC:{n}:"), deadline, qemu)?;
        let code = String::from_utf8_lossy(&self.read_until(">>\n", deadline, qemu)?)
            .parse::<i32>()
            .map_err(|e| error(format!("bad exit code marker: {e}")))?;
        let stdout = self.read_until(&format!("\n<<ERR:{n}>>\n"), deadline, qemu)?;
        let stderr = self.read_until(&format!("\n<<END:{n}>>\n"), deadline, qemu)?;
        self.awaiting = false;
        Ok(Output {
            code,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Queries a terminal answers, with the reply for a screen of `rows` x `cols` and the cursor
/// at (`row`, `col`), 1-based.
const QUERIES: &[&[u8]] = &[b"\x1b[6n", b"\x1b[18t"];

fn reply(query: &[u8], (row, col): (u16, u16), (rows, cols): (u16, u16)) -> Vec<u8> {
    match query {
        b"\x1b[6n" => format!("\x1b[{row};{col}R").into_bytes(),
        _ => format!("\x1b[8;{rows};{cols}t").into_bytes(),
    }
}

struct Term {
    transcript: Vec<u8>,
    parser: vt100::Parser,
    /// Bytes that may start a query split across reads; parsed once the next read decides.
    pending: Vec<u8>,
    closed: bool,
}

/// The test's terminal on ttyS0: keeps the raw transcript and a `vt100` screen, and answers
/// cursor-position (`CSI 6 n`) and text-area-size (`CSI 18 t`) queries like a real terminal, since
/// a serial tty reports 0x0 and the console asks the terminal instead.
pub struct Console {
    state: Arc<(Mutex<Term>, Condvar)>,
    writer: Arc<Mutex<UnixStream>>,
    reader: Option<JoinHandle<()>>,
    size: (u16, u16),
}

impl Console {
    fn start(stream: UnixStream, size: (u16, u16)) -> Result<Self> {
        let state = Arc::new((
            Mutex::new(Term {
                transcript: Vec::new(),
                parser: vt100::Parser::new(size.0, size.1, 0),
                pending: Vec::new(),
                closed: false,
            }),
            Condvar::new(),
        ));
        let writer = Arc::new(Mutex::new(
            stream.try_clone().map_err(io_context("ttyS0 socket"))?,
        ));
        let reader = {
            let state = Arc::clone(&state);
            let writer = Arc::clone(&writer);
            thread::Builder::new()
                .name("ttyS0-reader".into())
                .spawn(move || read_terminal(stream, &state, &writer, size))
                .map_err(io_context("spawning the ttyS0 reader"))?
        };
        Ok(Self {
            state,
            writer,
            reader: Some(reader),
            size,
        })
    }

    /// Sends bytes as if typed.
    pub fn send(&self, bytes: &[u8]) -> Result<()> {
        lock(&self.writer)
            .write_all(bytes)
            .map_err(io_context("writing to ttyS0"))
    }

    /// Types a line and presses Enter (a terminal sends CR).
    pub fn send_line(&self, line: &str) -> Result<()> {
        self.send(format!("{line}\r").as_bytes())
    }

    /// Current length of the transcript; pass it to [`Console::wait_for`] to look only at what
    /// arrives afterwards.
    pub fn mark(&self) -> usize {
        lock(&self.state.0).transcript.len()
    }

    /// Waits until `needle` appears in the raw output after `since`.
    pub fn wait_for(&self, since: usize, needle: &str, timeout: Duration) -> Result<()> {
        self.wait(timeout, |t| {
            let from = since.min(t.transcript.len());
            find(&t.transcript[from..], needle.as_bytes()).is_some()
        })
        .map_err(|e| error(format!("waiting for {needle:?} on ttyS0: {e}")))
    }

    /// Waits until the rendered screen satisfies `pred`; returns that screen.
    pub fn wait_screen(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Result<String> {
        let mut screen = String::new();
        self.wait(timeout, |t| {
            screen = t.parser.screen().contents();
            pred(&screen)
        })
        .map(|()| screen)
        .map_err(|e| error(format!("waiting for the screen on ttyS0: {e}")))
    }

    /// The rendered screen as text, one line per row.
    pub fn screen(&self) -> String {
        lock(&self.state.0).parser.screen().contents()
    }

    /// The last `max` bytes of raw output, escapes made visible.
    pub fn transcript_tail(&self, max: usize) -> String {
        let t = lock(&self.state.0);
        let from = t.transcript.len().saturating_sub(max);
        String::from_utf8_lossy(&t.transcript[from..]).replace('\x1b', "^[")
    }

    /// The raw output after `since` (see [`Console::mark`]), escapes made visible as `^[`.
    pub fn transcript_since(&self, since: usize) -> String {
        let t = lock(&self.state.0);
        let from = since.min(t.transcript.len());
        String::from_utf8_lossy(&t.transcript[from..]).replace('\x1b', "^[")
    }

    /// (rows, cols) this terminal reports.
    pub fn size(&self) -> (u16, u16) {
        self.size
    }

    fn wait(&self, timeout: Duration, mut done: impl FnMut(&Term) -> bool) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let (m, cv) = &*self.state;
        let mut t = lock(m);
        loop {
            if done(&t) {
                return Ok(());
            }
            if t.closed {
                return Err(error(format!(
                    "ttyS0 closed; screen:\n{}",
                    t.parser.screen().contents()
                )));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(error(format!(
                    "timed out after {timeout:?}; screen:\n{}",
                    t.parser.screen().contents()
                )));
            }
            t = cv
                .wait_timeout(t, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        // Unblocks the reader thread's read().
        let _ = lock(&self.writer).shutdown(std::net::Shutdown::Both);
        if let Some(h) = self.reader.take() {
            let _ = h.join();
        }
    }
}

fn read_terminal(
    mut stream: UnixStream,
    state: &(Mutex<Term>, Condvar),
    writer: &Mutex<UnixStream>,
    size: (u16, u16),
) {
    let (m, cv) = state;
    let mut chunk = [0u8; 4096];
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut replies = Vec::new();
        {
            let mut t = lock(m);
            t.transcript.extend_from_slice(&chunk[..n]);
            let mut data = std::mem::take(&mut t.pending);
            data.extend_from_slice(&chunk[..n]);
            let mut rest = &data[..];
            // Parse up to each query so the cursor position in the reply is the real one.
            while let Some((pos, q)) = QUERIES
                .iter()
                .filter_map(|q| find(rest, q).map(|p| (p, *q)))
                .min_by_key(|(p, _)| *p)
            {
                t.parser.process(&rest[..pos + q.len()]);
                let (row, col) = t.parser.screen().cursor_position();
                replies.push(reply(q, (row + 1, col + 1), size));
                rest = &rest[pos + q.len()..];
            }
            // Hold back a tail that could be the start of a query split across reads.
            let keep = (1..=rest.len().min(8))
                .rev()
                .find(|&k| {
                    QUERIES
                        .iter()
                        .any(|q| q.len() > k && q.starts_with(&rest[rest.len() - k..]))
                })
                .unwrap_or(0);
            t.parser.process(&rest[..rest.len() - keep]);
            t.pending = rest[rest.len() - keep..].to_vec();
        }
        cv.notify_all();
        for r in replies {
            if lock(writer).write_all(&r).is_err() {
                break;
            }
        }
    }
    lock(m).closed = true;
    cv.notify_all();
}

/// The guest's /init. Loads the modules, keeps kernel messages off the console under test,
/// starts an interactive shell owning ttyS0, and serves commands on a raw, echo-less ttyS1.
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
for m in $(cat /lib/modules/load.order); do
    insmod "/lib/modules/$m" || echo "init: insmod $m failed"
done
# Kernel messages would scribble over the screen under test; dmesg still has them.
echo 1 >/proc/sys/kernel/printk
# Interrupt on every received byte: the UART's receive-timeout interrupt is unreliable under
# TCG, which leaves the tail of a command (or a single key) in the FIFO until more input arrives.
for t in ttyS0 ttyS1; do echo 1 >/sys/class/tty/$t/rx_trig_bytes; done
# The ttyS0 line is left as the kernel made it (0x0 size, like a fresh serial console).
export PS1='guest# '
( while true; do setsid -c sh -i </dev/ttyS0 >/dev/ttyS0 2>&1; done ) &
# init keeps ttyS1 open from here on: a tty drops its input whenever nobody has it open.
exec </dev/ttyS1 >/dev/ttyS1 2>&1
stty raw -echo
echo __PHYLLOME_GUEST_READY__
# Through a pipe, so this shell is not interactive: no prompts, no line editing.
while true; do cat | sh; done
"#;

fn build_initramfs(kernel: &KernelCache, opts: &GuestOptions, scratch: &Path) -> Result<Vec<u8>> {
    let read = |p: &Path| fs::read(p).map_err(io_context(p.display()));
    let mut cpio = Cpio::default();
    for d in [
        "bin",
        "dev",
        "proc",
        "sys",
        "tmp",
        "run",
        "root",
        "etc",
        "lib/modules",
    ] {
        cpio.dir(d);
    }
    cpio.file("init", INIT.as_bytes(), 0o755);
    cpio.file("bin/busybox", &read(&kernel.busybox)?, 0o755);
    cpio.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o644);
    cpio.file("etc/group", b"root:x:0:\n", 0o644);
    let mut order = String::new();
    for m in &kernel.modules {
        let name = m.file_name().unwrap_or_default().to_string_lossy();
        cpio.file(&format!("lib/modules/{name}"), &read(m)?, 0o644);
        order.push_str(&name);
        order.push('\n');
    }
    cpio.file("lib/modules/load.order", order.as_bytes(), 0o644);

    let mut libs = BTreeSet::new();
    for (i, (host, guest)) in opts.binaries.iter().enumerate() {
        // Debug builds are mostly debug info; the guest gets its RAM from the same budget.
        let stripped = scratch.join(format!("bin{i}"));
        let status = Command::new("objcopy")
            .arg("--strip-debug")
            .arg(host)
            .arg(&stripped)
            .status()
            .map_err(io_context("running objcopy"))?;
        if !status.success() {
            return Err(error(format!(
                "objcopy --strip-debug {} failed",
                host.display()
            )));
        }
        cpio.file(guest, &read(&stripped)?, 0o755);
        libs.extend(shared_libraries(&stripped)?);
    }
    for lib in &libs {
        cpio.file(&lib.to_string_lossy(), &read(lib)?, 0o755);
    }
    for (data, path, mode) in &opts.files {
        cpio.file(path, data, *mode);
    }
    Ok(cpio.finish())
}

/// Shared libraries (and the loader) `ldd` lists for `bin`; none for a static binary.
fn shared_libraries(bin: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(bin)
        .output()
        .map_err(io_context("running ldd"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut libs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let path = match line.split_once("=>") {
            Some((name, target)) => {
                let target = target.trim();
                if target.starts_with("not found") {
                    return Err(error(format!("ldd {}: {name} not found", bin.display())));
                }
                target.split(" (").next().unwrap_or("")
            }
            None => line.split(" (").next().unwrap_or(""),
        };
        // linux-vdso has no file; anything else must be an absolute path.
        if path.starts_with('/') {
            libs.push(PathBuf::from(path));
        }
    }
    Ok(libs)
}

/// A `newc` cpio archive, the format the kernel unpacks as an initramfs. Written here so the
/// harness needs no cpio tool and parent directories are created automatically.
#[derive(Default)]
struct Cpio {
    buf: Vec<u8>,
    dirs: BTreeSet<String>,
    ino: u32,
}

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.ino += 1;
        let fields = [
            self.ino,
            mode,
            0,                     // uid
            0,                     // gid
            1,                     // nlink
            0,                     // mtime
            data.len() as u32,     // filesize
            0,                     // devmajor
            0,                     // devminor
            0,                     // rdevmajor
            0,                     // rdevminor
            name.len() as u32 + 1, // namesize, with the NUL
            0,                     // check
        ];
        self.buf.extend_from_slice(b"070701");
        for f in fields {
            self.buf.extend_from_slice(format!("{f:08X}").as_bytes());
        }
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(0);
        self.pad();
        self.buf.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    fn dir(&mut self, path: &str) {
        let path = path.trim_matches('/');
        if path.is_empty() || self.dirs.contains(path) {
            return;
        }
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent);
        }
        self.dirs.insert(path.to_owned());
        self.entry(path, 0o040_755, &[]);
    }

    fn file(&mut self, path: &str, data: &[u8], mode: u32) {
        let path = path.trim_start_matches('/');
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent);
        }
        self.entry(path, 0o100_000 | (mode & 0o7777), data);
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[]);
        self.buf
    }
}
