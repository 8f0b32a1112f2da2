//! A Cloud Hypervisor test double: takes `cloud-hypervisor`'s command line and serves its REST
//! API on the Unix socket, with CH's state machine and error replies but no VM.
//!
//! Built as `examples/ch_double.rs` (which includes this file), so `cargo test` builds it at
//! `target/<profile>/examples/ch_double`; `tests/it/support/vmm/double.rs` finds and spawns it.
//!
//! Command line: `--api-socket path=P` (or `--api-socket P`), `--event-monitor path=E`,
//! `--serial socket=S|off|null|pty|tty|file=F`, `--console ...`, `--version`; other CH flags are
//! accepted and ignored. As in CH, `--serial`/`--console` only count with a payload on the
//! command line (`--kernel`/`--firmware`); a VM made with `vm.create` gets the serial port of its
//! body (`"serial": {"mode": "Socket", "socket": S}`), whose socket appears at `vm.boot`. Environment knobs for fault injection (routes as `vm.boot`, comma
//! separated lists allowed):
//! - `CH_DOUBLE_HANG=<routes>`: never answer; like a stuck CH API thread, later requests queue.
//! - `CH_DOUBLE_FAIL=<routes>`: answer HTTP 500 with a CH error array.
//! - `CH_DOUBLE_FAIL_MESSAGE=<text>`: the innermost message of those failures (CH's own
//!   messages carry paths and names from the request, so they may hold anything, control
//!   characters included).
//! - `CH_DOUBLE_BOOT_MS=<n>`: `vm.boot` takes n ms and blocks the API meanwhile, as in CH.
//! - `CH_DOUBLE_POWEROFF_MS=<n>`: delay before the guest acts on `vm.power-button` (200).
//! - `CH_DOUBLE_POWEROFF=exit|stay`: on guest power-off the VMM exits (`exit`, what CH does)
//!   or keeps the VM in `Shutdown` (`stay`).
//! - `CH_DOUBLE_REQUEST_LOG=<file>`: append one JSON line per request (`method`, `route`,
//!   `body`, and `fds`: what the descriptors passed with it point to), so tests can check
//!   everything a client sent.
//!
//! `vm.add-net` takes descriptors (macvtap taps) passed with SCM_RIGHTS, as CH does: they are
//! taken from the first message of a connection, so they belong to its first request.
//!
//! Bodies are validated against the real spec (`openapi.rs`): a bad one gets a 400.
#![allow(dead_code)]

#[path = "ch_double_vm.rs"]
mod machine;
#[path = "ch_double_numa.rs"]
mod numa;
#[path = "openapi.rs"]
mod openapi;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, Mutex, Notify};

use machine::{Effect, Machine, Reply};

pub const VERSION: &str = "v54.0-double";
/// Request bodies larger than this are refused (CH's own limit is similar in spirit).
const MAX_BODY: usize = 1 << 20;

#[derive(Debug, Default)]
pub struct Args {
    pub api_socket: Option<PathBuf>,
    pub event_monitor: Option<PathBuf>,
    /// `socket=S` of `--serial`. Like CH, the double uses it only with a payload on the command
    /// line (`--kernel`/`--firmware`): otherwise CH ignores every VM flag and the serial port
    /// is whatever the `vm.create` body says.
    pub serial_socket: Option<PathBuf>,
    /// `--kernel`, `--firmware` or `--igvm` was given.
    pub cli_payload: bool,
    pub serial_file: Option<PathBuf>,
    pub version: bool,
}

/// Options of the VMM itself, taken without a payload.
const VMM_OPTIONS: &[&str] = &[
    "--api-socket",
    "--event-monitor",
    "--log-file",
    "--seccomp",
    "--landlock",
    "--restore",
    "--gdb",
];
/// Flags without a value.
const FLAGS: &[&str] = &["-v", "--landlock", "--version", "-V", "-h", "--help"];
/// Options of the VM: CH puts them in a group that requires a payload on the command line.
const VM_OPTIONS: &[&str] = &[
    "--cpus",
    "--platform",
    "--memory",
    "--memory-zone",
    "--initramfs",
    "--cmdline",
    "--rate-limit-group",
    "--disk",
    "--landlock-rules",
    "--net",
    "--rng",
    "--balloon",
    "--fs",
    "--pmem",
    "--serial",
    "--console",
    "--device",
    "--user-device",
    "--vdpa",
    "--vsock",
    "--pvpanic",
    "--numa",
    "--pci-segment",
    "--watchdog",
    "--tpm",
    "--debug-console",
    "--host-data",
    "--sgx-epc",
];
/// VM options that may be given several times (clap shows them as `<disk>...`).
const REPEATED: &[&str] = &[
    "--memory-zone",
    "--rate-limit-group",
    "--disk",
    "--landlock-rules",
    "--net",
    "--fs",
    "--pmem",
    "--device",
    "--user-device",
    "--vdpa",
    "--numa",
    "--pci-segment",
];
const PAYLOADS: &[&str] = &["--kernel", "--firmware", "--igvm"];

/// clap's refusal, word for word as `cloud-hypervisor` prints it (exit code 2): the recordings
/// in `tests/golden/cloud-hypervisor/command_lines.json` hold the real ones.
fn usage_error(message: &str, given: &[String], missing_payload: bool) -> String {
    let mut usage = String::from("cloud-hypervisor");
    for flag in given {
        let name = flag.trim_start_matches('-');
        usage.push_str(&format!(" {flag} <{name}>"));
        if REPEATED.contains(&flag.as_str()) {
            usage.push_str("...");
        }
    }
    if missing_payload {
        usage.push_str(" <--firmware <firmware>|--kernel <kernel>>");
    }
    let usage = if given.is_empty() && !missing_payload {
        String::new()
    } else {
        format!("Usage: {usage}\n\n")
    };
    format!("error: {message}\n\n{usage}For more information, try '--help'.\n")
}

/// Parses CH's command line as CH does: VMM options alone start a VMM that waits for
/// `vm.create`; a VM option without a payload, an unknown option or an option without its
/// value is refused with clap's message.
pub fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut out = Args::default();
    let mut given: Vec<String> = Vec::new();
    let mut vm_option = false;
    let mut i = 0;
    while i < args.len() {
        let (flag, inline) = match args[i].split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (args[i].clone(), None),
        };
        i += 1;
        if flag == "--version" || flag == "-V" {
            out.version = true;
            continue;
        }
        if FLAGS.contains(&flag.as_str()) {
            continue;
        }
        let known = VMM_OPTIONS.contains(&flag.as_str())
            || VM_OPTIONS.contains(&flag.as_str())
            || PAYLOADS.contains(&flag.as_str());
        if !known {
            let what = format!("unexpected argument '{flag}' found");
            return Err(usage_error(&what, &given, false));
        }
        let value = match inline {
            Some(v) => v,
            None if i < args.len() && !args[i].starts_with("--") => {
                i += 1;
                args[i - 1].clone()
            }
            None => {
                let name = flag.trim_start_matches('-');
                return Err(usage_error(
                    &format!("a value is required for '{flag} <{name}>' but none was supplied"),
                    &[],
                    false,
                ));
            }
        };
        if !given.contains(&flag) {
            given.push(flag.clone());
        }
        vm_option |= VM_OPTIONS.contains(&flag.as_str());
        match flag.as_str() {
            "--kernel" | "--firmware" | "--igvm" => out.cli_payload = true,
            "--api-socket" => out.api_socket = Some(path_option(&value, "path")?),
            "--event-monitor" => out.event_monitor = Some(path_option(&value, "path")?),
            "--serial" => {
                if let Some(s) = value.strip_prefix("socket=") {
                    out.serial_socket = Some(PathBuf::from(s));
                } else if let Some(f) = value.strip_prefix("file=") {
                    out.serial_file = Some(PathBuf::from(f));
                }
            }
            _ => {}
        }
    }
    if vm_option && !out.cli_payload {
        given.retain(|f| !PAYLOADS.contains(&f.as_str()));
        return Err(usage_error(
            "the following required arguments were not provided:\n  <--firmware <firmware>|--kernel <kernel>>",
            &given,
            true,
        ));
    }
    Ok(out)
}

/// `path=P` (with other `k=v` options) or a bare `P`.
fn path_option(v: &str, key: &str) -> Result<PathBuf, String> {
    if !v.contains('=') {
        return Ok(PathBuf::from(v));
    }
    v.split(',')
        .find_map(|kv| kv.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .map(PathBuf::from)
        .ok_or_else(|| format!("ch_double: {v}: no {key}= (file descriptors are not supported)\n"))
}

struct Faults {
    hang: Vec<String>,
    fail: Vec<String>,
    boot: Duration,
    poweroff_after: Duration,
    poweroff_exits: bool,
    /// `CH_DOUBLE_GUEST=stuck`: a guest that makes no progress, as on nested KVM where the
    /// recordings of the real binary come from: it prints nothing, ignores the power button
    /// and never acknowledges an eject.
    stuck_guest: bool,
}

impl Faults {
    fn from_env() -> Faults {
        let routes = |k: &str| -> Vec<String> {
            std::env::var(k)
                .unwrap_or_default()
                .split(',')
                .map(|r| {
                    openapi::normalize_route(r.trim())
                        .trim_start_matches('/')
                        .to_owned()
                })
                .filter(|r| !r.is_empty())
                .collect()
        };
        let ms = |k: &str, default: u64| {
            let v = std::env::var(k).ok().and_then(|v| v.trim().parse().ok());
            Duration::from_millis(v.unwrap_or(default))
        };
        Faults {
            hang: routes("CH_DOUBLE_HANG"),
            fail: routes("CH_DOUBLE_FAIL"),
            boot: ms("CH_DOUBLE_BOOT_MS", 0),
            poweroff_after: ms("CH_DOUBLE_POWEROFF_MS", 200),
            poweroff_exits: std::env::var("CH_DOUBLE_POWEROFF").as_deref() != Ok("stay"),
            stuck_guest: std::env::var("CH_DOUBLE_GUEST").as_deref() == Ok("stuck"),
        }
    }
}

struct Vmm {
    /// One lock for the whole API: CH serves one request at a time on its API thread.
    machine: Mutex<Machine>,
    faults: Faults,
    start: Instant,
    events: Option<std::sync::Mutex<std::fs::File>>,
    request_log: Option<std::sync::Mutex<std::fs::File>>,
    serial: broadcast::Sender<Bytes>,
    /// Output the guest printed before the first client connected; CH keeps it for that
    /// client (its socket console buffers up to 1 MiB) rather than dropping it.
    serial_pending: std::sync::Mutex<Option<Vec<u8>>>,
    /// Bumped on each connection: as in CH, a new client shuts down the previous one.
    serial_client: tokio::sync::watch::Sender<u64>,
    serial_file: std::sync::Mutex<Option<PathBuf>>,
    exit: Notify,
    /// Sockets this process created, removed again on exit.
    created: std::sync::Mutex<Vec<PathBuf>>,
}

impl Vmm {
    /// Appends a CH-style event: pretty JSON followed by a blank line, as CH writes them.
    fn event(&self, source: &str, event: &str) {
        let Some(file) = &self.events else { return };
        let t = self.start.elapsed();
        let ev = json!({
            "timestamp": {"secs": t.as_secs(), "nanos": t.subsec_nanos()},
            "source": source,
            "event": event,
            "properties": null,
        });
        let text = serde_json::to_string_pretty(&ev).unwrap_or_default();
        if let Ok(mut f) = file.lock() {
            let _ = f.write_all(format!("{text}\n\n").as_bytes());
        }
    }

    fn log_request(&self, method: &str, route: &str, body: &[u8], fds: &[String]) {
        let Some(file) = &self.request_log else {
            return;
        };
        let body: Value = serde_json::from_slice(body).unwrap_or_else(|_| {
            if body.is_empty() {
                Value::Null
            } else {
                Value::String(String::from_utf8_lossy(body).into_owned())
            }
        });
        let mut line = json!({"method": method, "route": route, "body": body});
        if !fds.is_empty() {
            line["fds"] = json!(fds);
        }
        if let Ok(mut f) = file.lock() {
            let _ = writeln!(f, "{line}");
        }
    }
}

pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse_args(&args) {
        Ok(a) => a,
        Err(e) => {
            eprint!("{e}");
            return ExitCode::from(2);
        }
    };
    if args.version {
        println!("cloud-hypervisor {VERSION}");
        return ExitCode::SUCCESS;
    }
    let Some(socket) = args.api_socket.clone() else {
        eprintln!("ch_double: --api-socket is required");
        return ExitCode::from(2);
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ch_double: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args, socket)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ch_double: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args, socket: PathBuf) -> Result<(), String> {
    let open_append = |p: &Path| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .map_err(|e| format!("{}: {e}", p.display()))
    };
    let events = args.event_monitor.as_deref().map(open_append).transpose()?;
    let log_path = std::env::var_os("CH_DOUBLE_REQUEST_LOG").map(PathBuf::from);
    let request_log = log_path.as_deref().map(open_append).transpose()?;
    // Before the socket appears: a client that sees it may SIGTERM us at once.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("SIGTERM handler: {e}"))?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| format!("SIGINT handler: {e}"))?;
    let listener = bind(&socket)?;
    let faults = Faults::from_env();
    let vmm = Arc::new(Vmm {
        machine: Mutex::new(Machine::new(faults.stuck_guest)),
        faults,
        start: Instant::now(),
        events: events.map(std::sync::Mutex::new),
        request_log: request_log.map(std::sync::Mutex::new),
        serial: broadcast::channel(256).0,
        serial_pending: std::sync::Mutex::new(Some(Vec::new())),
        serial_client: tokio::sync::watch::channel(0).0,
        serial_file: std::sync::Mutex::new(args.serial_file.clone().filter(|_| args.cli_payload)),
        exit: Notify::new(),
        created: std::sync::Mutex::new(vec![socket.clone()]),
    });
    vmm.event("vmm", "starting");
    if let Some(s) = args.serial_socket.as_ref().filter(|_| args.cli_payload) {
        serve_serial(&vmm, s)?;
    }

    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(serve_connection(vmm.clone(), stream));
                }
                Err(e) => eprintln!("ch_double: accept: {e}"),
            },
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = vmm.exit.notified() => break,
        }
    }
    let created = vmm.created.lock().map(|c| c.clone()).unwrap_or_default();
    for path in created {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// Binds a Unix socket, replacing a stale socket file (as CH does) but never another file.
fn bind(path: &Path) -> Result<UnixListener, String> {
    use std::os::unix::fs::FileTypeExt;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(format!("{}: exists and is not a socket", path.display()));
        }
        let _ = std::fs::remove_file(path);
    }
    // Bound under a temporary name and renamed once listening: a client that sees the path
    // can connect (between bind and listen a connect is refused).
    let tmp = path.with_file_name(format!(".{}.bind", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(listener)
}

async fn serve_connection(vmm: Arc<Vmm>, stream: UnixStream) {
    // hyper reads the socket with plain reads, which drop ancillary data: descriptors sent
    // with the request are peeked at first (MSG_PEEK leaves the bytes for hyper).
    let fds = Arc::new(std::sync::Mutex::new(peek_fds(&stream).await));
    let service = hyper::service::service_fn(move |req| {
        let vmm = vmm.clone();
        let fds = fds.clone();
        async move {
            let fds = fds
                .lock()
                .map(|mut f| std::mem::take(&mut *f))
                .unwrap_or_default();
            Ok::<_, std::convert::Infallible>(handle(vmm, req, fds).await)
        }
    });
    // Malformed HTTP gets hyper's own 400 and the connection ends; nothing else to do.
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// The descriptors passed (SCM_RIGHTS) with the first bytes of a connection, if any.
async fn peek_fds(stream: &UnixStream) -> Vec<std::os::fd::OwnedFd> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    use std::mem::MaybeUninit;
    loop {
        if stream.readable().await.is_err() {
            return Vec::new();
        }
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(16))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let mut byte = [0u8; 1];
        let peeked = stream.try_io(tokio::io::Interest::READABLE, || {
            rustix::net::recvmsg(
                stream,
                &mut [std::io::IoSliceMut::new(&mut byte)],
                &mut control,
                RecvFlags::PEEK | RecvFlags::CMSG_CLOEXEC | RecvFlags::DONTWAIT,
            )
            .map_err(std::io::Error::from)
        });
        match peeked {
            Ok(_) => {
                let mut fds = Vec::new();
                for msg in control.drain() {
                    if let RecvAncillaryMessage::ScmRights(rights) = msg {
                        fds.extend(rights);
                    }
                }
                return fds;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return Vec::new(),
        }
    }
}

/// What a received descriptor points to (`/dev/tap42`, or a fixture file), for the log.
fn fd_target(fd: &std::os::fd::OwnedFd) -> String {
    use std::os::fd::AsRawFd;
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "?".to_string())
}

fn respond(status: u16, body: Option<&Value>) -> Response<Full<Bytes>> {
    let bytes = body.map(|b| b.to_string()).unwrap_or_default();
    let mut r = Response::builder().status(status);
    if body.is_some() {
        r = r.header("Content-Type", "application/json");
    }
    r.body(Full::new(Bytes::from(bytes)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

async fn handle(
    vmm: Arc<Vmm>,
    req: Request<Incoming>,
    fds: Vec<std::os::fd::OwnedFd>,
) -> Response<Full<Bytes>> {
    let method = req.method().as_str().to_ascii_lowercase();
    let path = req.uri().path().to_owned();
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            let e = json!(["Error from API", "Cannot read the request body"]);
            return respond(400, Some(&e));
        }
    };
    let Some(route) = path.strip_prefix("/api/v1/").map(str::to_owned) else {
        return respond(404, Some(&json!(["Not Found"])));
    };
    let targets: Vec<String> = fds.iter().map(fd_target).collect();
    vmm.log_request(&method, &route, &body, &targets);
    match openapi::spec().method(&route) {
        None => return respond(404, Some(&json!(["Not Found"]))),
        // CH answers a wrong method as it does a request it cannot parse.
        Some(m) if m != method => return respond(400, Some(&json!(["Bad Request"]))),
        Some(_) => {}
    }
    // In a task of its own: a client that gives up (timeout) must not cancel the work, just as
    // CH's API thread carries on with a boot whose caller went away.
    // Only vm.add-net takes descriptors; like CH, other routes ignore them (they close here).
    let nfds = if route == "vm.add-net" { fds.len() } else { 0 };
    drop(fds);
    let work = tokio::spawn(process(vmm, route, body, nfds));
    work.await.unwrap_or_else(|_| respond(500, None))
}

async fn process(vmm: Arc<Vmm>, route: String, body: Bytes, fds: usize) -> Response<Full<Bytes>> {
    let mut machine = vmm.machine.lock().await;
    if vmm.faults.hang.contains(&route) {
        // Holding the API lock forever: like CH's API thread stuck on this request.
        std::future::pending::<()>().await;
    }
    if vmm.faults.fail.contains(&route) {
        let why = std::env::var("CH_DOUBLE_FAIL_MESSAGE")
            .unwrap_or_else(|_| format!("Injected failure of {route}"));
        let r = Reply::error(500, "Error from API", &why);
        return respond(r.status, r.body.as_ref());
    }
    if route == "vm.boot" && machine.state() == Some(machine::State::Created) {
        match machine.config().and_then(numa::pin_fault) {
            // As CH's API thread, waiting forever on the vCPU that never started.
            Some(numa::PinFault::Hang) => std::future::pending::<()>().await,
            Some(numa::PinFault::Abort) => std::process::abort(),
            None => {}
        }
    }
    if route == "vm.boot" && !vmm.faults.boot.is_zero() {
        tokio::time::sleep(vmm.faults.boot).await;
    }
    let mut reply = machine.handle_with_fds(&route, &body, Instant::now(), fds);
    if reply.status < 300 {
        if let Err(e) = snapshot_files(&mut machine, &route, &body, &mut reply) {
            reply = Reply::error(500, "The VM could not be snapshotted or restored", &e);
        }
    }
    drop(machine);

    for (source, event) in &reply.events {
        vmm.event(source, event);
    }
    match &reply.effect {
        Effect::None => {}
        Effect::Booted {
            serial_socket,
            serial_file,
        } => on_boot(&vmm, serial_socket.as_deref(), serial_file.as_deref()),
        Effect::GuestPowerOff { .. } if vmm.faults.stuck_guest => {}
        Effect::GuestPowerOff { boot } => {
            tokio::spawn(guest_poweroff(vmm.clone(), *boot));
        }
        Effect::ExitVmm => {
            let mut r = respond(reply.status, reply.body.as_ref());
            // The exit waits for this reply to be written: see the spawned task.
            r.headers_mut().insert(
                "Connection",
                hyper::header::HeaderValue::from_static("close"),
            );
            let v = vmm.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                v.exit.notify_one();
            });
            return r;
        }
    }
    if let Some(fail) = invalid_reply(&route, &reply) {
        let e = json!([
            "Error from API",
            "The double's reply does not match the spec",
            fail
        ]);
        return respond(500, Some(&e));
    }
    respond(reply.status, reply.body.as_ref())
}

/// The double checks its own replies too, so a test can trust what it reads. Not
/// `vm.counters`: real CH reports latencies of u64::MAX there, beyond the spec's int64, and
/// the double answers as CH does (see the recordings).
fn invalid_reply(route: &str, reply: &Reply) -> Option<String> {
    let schema = match route {
        "vm.info" => "VmInfo",
        "vmm.ping" => "VmmPingResponse",
        "vm.add-device" | "vm.add-net" => "PciDeviceInfo",
        _ => return None,
    };
    let body = reply.body.as_ref().filter(|_| reply.status == 200)?;
    openapi::validate_reply(schema, body, openapi::Mode::Request).err()
}

/// `vm.snapshot` writes what CH's snapshot holds (`config.json`, `state.json`,
/// `memory-ranges`) into the destination directory, which must exist, as CH wants it;
/// `vm.restore` reads them back.
fn snapshot_files(
    m: &mut Machine,
    route: &str,
    body: &[u8],
    reply: &mut Reply,
) -> Result<(), String> {
    let req: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let dir = |key: &str| -> Result<PathBuf, String> {
        let url = req.get(key).and_then(Value::as_str).unwrap_or_default();
        url.strip_prefix("file://")
            .map(PathBuf::from)
            .ok_or_else(|| format!("{url}: only file:// URLs are supported"))
    };
    match route {
        "vm.snapshot" => {
            let dir = dir("destination_url")?;
            let config = reply.body.take().and_then(|b| b.get("config").cloned());
            let text =
                serde_json::to_string_pretty(&config.unwrap_or(Value::Null)).unwrap_or_default();
            if !dir.is_dir() {
                return Err("Destination is not a directory".into());
            }
            let state = json!({ "id": "vm", "snapshot_data": {} }).to_string();
            // Guest memory: a token amount, enough that the files have a size.
            let memory = vec![0u8; 64 * 1024];
            let files: [(&str, &[u8]); 3] = [
                ("config.json", text.as_bytes()),
                ("state.json", state.as_bytes()),
                ("memory-ranges", &memory),
            ];
            for (name, bytes) in files {
                std::fs::write(dir.join(name), bytes)
                    .map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            reply.status = 204;
        }
        "vm.restore" => {
            let dir = dir("source_url")?;
            let state = dir.join("state.json");
            std::fs::metadata(&state).map_err(|e| format!("{}: {e}", state.display()))?;
            let path = dir.join("config.json");
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let config: Value =
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            let resume = req.get("resume").and_then(Value::as_bool).unwrap_or(false);
            m.restored(config, resume, Instant::now());
            reply.events.push(("vm", "restored"));
        }
        _ => {}
    }
    Ok(())
}

async fn guest_poweroff(vmm: Arc<Vmm>, boot: u64) {
    tokio::time::sleep(vmm.faults.poweroff_after).await;
    let mut machine = vmm.machine.lock().await;
    if !machine.guest_poweroff(boot, Instant::now()) {
        return;
    }
    vmm.event("vm", "shutdown");
    if vmm.faults.poweroff_exits {
        // CH exits when its guest powers off: the VM is deleted and the VMM shuts down.
        vmm.event("vm", "deleted");
        vmm.event("vmm", "shutdown");
        vmm.exit.notify_one();
    }
}

fn on_boot(vmm: &Arc<Vmm>, serial_socket: Option<&str>, serial_file: Option<&str>) {
    if let (Some(f), Ok(mut current)) = (serial_file, vmm.serial_file.lock()) {
        *current = Some(PathBuf::from(f));
    }
    if let Some(s) = serial_socket {
        let path = PathBuf::from(s);
        let already = vmm
            .created
            .lock()
            .map(|c| c.contains(&path))
            .unwrap_or(true);
        if !already {
            if let Err(e) = serve_serial(vmm, &path) {
                eprintln!("ch_double: serial socket: {e}");
            }
        }
    }
    if vmm.faults.stuck_guest {
        return;
    }
    let banner = [
        "Linux version 6.1.0-double (phyllome test double) #1 SMP",
        "Command line: console=ttyS0",
        "Run /sbin/init as init process",
        "",
        "double login: ",
    ]
    .join("\r\n");
    serial_out(vmm, banner.as_bytes());
}

/// Sends bytes to every client of the serial socket and to the serial file.
fn serial_out(vmm: &Vmm, bytes: &[u8]) {
    match vmm.serial_pending.lock() {
        Ok(mut pending) => match pending.as_mut() {
            Some(buf) => {
                if buf.len() + bytes.len() <= 1 << 20 {
                    buf.extend_from_slice(bytes);
                }
            }
            None => {
                let _ = vmm.serial.send(Bytes::copy_from_slice(bytes));
            }
        },
        Err(_) => {
            let _ = vmm.serial.send(Bytes::copy_from_slice(bytes));
        }
    }
    let file = vmm.serial_file.lock().ok().and_then(|f| f.clone());
    if let Some(p) = file {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
        {
            let _ = f.write_all(bytes);
        }
    }
}

/// Listens on the serial socket: clients get the guest's output (a boot banner, then a line a
/// second while it runs) and their input is echoed, as by a getty.
fn serve_serial(vmm: &Arc<Vmm>, path: &Path) -> Result<(), String> {
    let listener = bind(path)?;
    if let Ok(mut c) = vmm.created.lock() {
        c.push(path.to_owned());
    }
    let v = vmm.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(serial_client(v.clone(), stream));
        }
    });
    let v = vmm.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut n = 0u64;
        loop {
            tick.tick().await;
            let running = !v.faults.stuck_guest
                && v.machine.lock().await.state() == Some(machine::State::Running);
            if running {
                n += 1;
                let secs = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                serial_out(
                    &v,
                    format!("\r\n[{n:>6}] double: heartbeat at {secs}").as_bytes(),
                );
            }
        }
    });
    Ok(())
}

/// What the guest prints when it reads this line: every kind of sequence a guest must not get
/// through to the host's terminal, between markers the tests look for.
pub const HOSTILE_COMMAND: &str = "hostile";
const HOSTILE: &[u8] = b"\r\nhostile-begin\x1b]52;c;cm0gLXJmIC8K\x07\x1b]0;owned-title\x1b\\\x1b[6n\x1b[c\x1b[21t\x1bP1$qm\x1b\\\x9b6n\xc2\x9d0;x\x07\x1b[?1000h\x1b[31mred\x1b[0m hostile-end\r\n";

async fn serial_client(vmm: Arc<Vmm>, stream: UnixStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut kicked = vmm.serial_client.subscribe();
    vmm.serial_client.send_modify(|n| *n += 1);
    kicked.mark_unchanged();
    let (mut r, mut w) = stream.into_split();
    let (mut rx, pending) = match vmm.serial_pending.lock() {
        Ok(mut p) => (vmm.serial.subscribe(), p.take()),
        Err(_) => (vmm.serial.subscribe(), None),
    };
    if let Some(p) = pending {
        if w.write_all(&p).await.is_err() {
            return;
        }
    }
    let mut buf = [0u8; 256];
    let mut line = Vec::new();
    loop {
        tokio::select! {
            _ = kicked.changed() => return,
            out = rx.recv() => match out {
                Ok(bytes) => if w.write_all(&bytes).await.is_err() { return },
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return,
            },
            n = r.read(&mut buf) => match n {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if w.write_all(&buf[..n]).await.is_err() { return }
                    for &b in &buf[..n] {
                        if b == b'\r' {
                            if line == HOSTILE_COMMAND.as_bytes() {
                                serial_out(&vmm, HOSTILE);
                            }
                            line.clear();
                        } else if line.len() < 64 {
                            line.push(b);
                        }
                    }
                }
            },
        }
    }
}
