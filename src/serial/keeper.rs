//! `phyllome vm serial-keeper NAME` (hidden; launched by `vm start`): the one client of Cloud
//! Hypervisor's serial socket for the VM's whole run. It appends what the guest prints to the
//! VM's serial log and serves viewers on `viewers.sock`: each gets a hello line saying whether
//! its keys go to the guest, the recent output, then the live stream. A viewer that attaches
//! while nobody types gets the keyboard; the others watch (their keys are dropped) until they
//! attach again after it left. A reboot gives CH a new serial socket: the keeper reconnects
//! while the VM's API socket is there, and exits once the runtime directory is gone.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc};

use super::log::LogWriter;
use super::{SerialError, SerialPaths, HELLO_KEYS, HELLO_WATCH};

/// Output a new viewer gets before the live stream: enough for a screen or two.
const BACKLOG: usize = 16 * 1024;
/// How long the keeper waits for CH's serial socket (booting, or after a reboot).
const CONNECT_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct KeeperConfig {
    pub vm: String,
    pub sockets: SerialPaths,
    /// The VM's runtime directory: gone means the VM stopped.
    pub run_dir: PathBuf,
    pub api_socket: PathBuf,
    pub log: PathBuf,
    pub log_max: u64,
}

enum FromViewer {
    Keys(u64, Vec<u8>),
    Left(u64),
}

/// Runs until the VM is gone. Errors are for what stops it from starting at all.
pub async fn run(cfg: KeeperConfig) -> Result<(), SerialError> {
    let mut log = LogWriter::open(cfg.log.clone(), cfg.log_max)?;
    let run = RunDir::now(&cfg.run_dir);
    let viewers = &cfg.sockets.viewers;
    // Bound under another name and renamed into place once it listens: a viewer that finds
    // the socket can connect at once.
    let mut staging = viewers.as_os_str().to_owned();
    staging.push(".new");
    let staging = PathBuf::from(staging);
    let listen_err = |source| SerialError::Listen {
        path: viewers.display().to_string(),
        source,
    };
    let _ = std::fs::remove_file(&staging);
    let listener = UnixListener::bind(&staging).map_err(listen_err)?;
    // Viewers type into the guest: the socket is its owner's alone, whatever the umask.
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o600));
    }
    std::fs::rename(&staging, viewers).map_err(listen_err)?;
    let (out_tx, _) = broadcast::channel::<Arc<Vec<u8>>>(1024);
    let (in_tx, mut in_rx) = mpsc::channel::<FromViewer>(64);
    let mut backlog: VecDeque<u8> = VecDeque::with_capacity(BACKLOG);
    let mut typist: Option<u64> = None;
    let mut next_id = 0u64;
    let mut guest = match connect(&cfg, &run).await {
        Some(s) => s,
        None => return Ok(()),
    };
    let mut buf = vec![0u8; 8192];
    let mut watch = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            n = guest.read(&mut buf) => match n {
                Ok(n) if n > 0 => {
                    let bytes = &buf[..n];
                    if let Err(e) = log.write(bytes) {
                        tracing::warn!(vm = %cfg.vm, error = %crate::error::Chain(&e), "serial log");
                    }
                    backlog.extend(bytes);
                    let extra = backlog.len().saturating_sub(BACKLOG);
                    backlog.drain(..extra);
                    let _ = out_tx.send(Arc::new(bytes.to_vec()));
                }
                _ => match connect(&cfg, &run).await {
                    Some(s) => guest = s,
                    None => break,
                },
            },
            conn = listener.accept() => {
                if let Ok((stream, _)) = conn {
                    next_id += 1;
                    let keys = typist.is_none();
                    if keys {
                        typist = Some(next_id);
                    }
                    let (front, back) = backlog.as_slices();
                    let hello = [if keys { HELLO_KEYS } else { HELLO_WATCH }, front, back].concat();
                    tokio::spawn(viewer(next_id, stream, hello, out_tx.subscribe(), in_tx.clone()));
                }
            }
            Some(msg) = in_rx.recv() => match msg {
                FromViewer::Keys(id, keys) if typist == Some(id) => {
                    if guest.write_all(&keys).await.is_err() {
                        match connect(&cfg, &run).await {
                            Some(s) => guest = s,
                            None => break,
                        }
                    }
                }
                FromViewer::Keys(..) => {}
                FromViewer::Left(id) => if typist == Some(id) { typist = None },
            },
            _ = watch.tick() => if !run.same() { break },
        }
    }
    let _ = std::fs::remove_file(viewers);
    Ok(())
}

/// The VM's runtime directory as the keeper found it: a stop removes it, and the next start
/// makes a new one (with a keeper of its own), so "the same directory" means the same inode.
struct RunDir {
    path: PathBuf,
    inode: Option<u64>,
}

impl RunDir {
    fn now(path: &Path) -> Self {
        use std::os::unix::fs::MetadataExt;
        RunDir {
            path: path.to_path_buf(),
            inode: std::fs::metadata(path).ok().map(|m| m.ino()),
        }
    }

    fn same(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        self.inode.is_some() && std::fs::metadata(&self.path).ok().map(|m| m.ino()) == self.inode
    }
}

/// Connects to CH's serial socket, waiting while the VM is there; None once it is gone.
async fn connect(cfg: &KeeperConfig, run: &RunDir) -> Option<UnixStream> {
    let deadline = tokio::time::Instant::now() + CONNECT_WAIT;
    loop {
        if let Ok(s) = UnixStream::connect(&cfg.sockets.guest).await {
            return Some(s);
        }
        let gone = !run.same() || !cfg.api_socket.exists();
        if gone || tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn viewer(
    id: u64,
    stream: UnixStream,
    hello: Vec<u8>,
    mut out: broadcast::Receiver<Arc<Vec<u8>>>,
    keys: mpsc::Sender<FromViewer>,
) {
    let (mut r, mut w) = stream.into_split();
    if w.write_all(&hello).await.is_ok() {
        let mut buf = [0u8; 1024];
        loop {
            tokio::select! {
                o = out.recv() => match o {
                    Ok(bytes) => if w.write_all(&bytes).await.is_err() { break },
                    // A viewer too slow to keep up misses output rather than holding the guest.
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => break,
                },
                n = r.read(&mut buf) => match n {
                    Ok(n) if n > 0 => {
                        if keys.send(FromViewer::Keys(id, buf[..n].to_vec())).await.is_err() {
                            break;
                        }
                    }
                    _ => break,
                },
            }
        }
    }
    let _ = keys.send(FromViewer::Left(id)).await;
}

/// The keeper's command line: this program with the same directories.
pub fn argv(
    self_exe: &Path,
    run_root: &Path,
    state_dir: Option<&Path>,
    vm: &str,
    log_max: Option<u64>,
) -> Vec<std::ffi::OsString> {
    let mut argv: Vec<std::ffi::OsString> = vec![
        self_exe.as_os_str().to_owned(),
        "--run-dir".into(),
        run_root.as_os_str().to_owned(),
    ];
    if let Some(d) = state_dir {
        argv.push("--state-dir".into());
        argv.push(d.as_os_str().to_owned());
    }
    argv.extend(["vm".into(), "serial-keeper".into(), vm.into()]);
    // Passed on the command line: a systemd unit does not get our environment.
    if let Some(max) = log_max {
        argv.extend(["--log-max".into(), max.to_string().into()]);
    }
    argv
}

/// Starts the keeper detached (its own session, as the VMM; output on `serial-keeper.log` in the runtime
/// directory), so it outlives the command that started the VM as the VMM does.
pub fn spawn(argv: &[std::ffi::OsString], run_dir: &Path) -> Result<u32, std::io::Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let log = std::fs::File::options()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(run_dir.join(super::KEEPER_LOG))?;
    let log2 = log.try_clone()?;
    crate::vmm::launch::spawn_in_session(argv, (log, log2), run_dir)
}
