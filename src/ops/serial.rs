//! The guest's serial line, for both front ends: where a VM's serial sockets and log are, the
//! log's last lines, and the keeper that `vm serial-keeper` runs.

use std::path::PathBuf;

use super::{HostPaths, PathsError};
use crate::serial::keeper::KeeperConfig;
use crate::serial::{log, SerialError, SerialPaths};
use crate::vm::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum SerialOpsError {
    #[error("{0}")]
    Paths(#[from] PathsError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Serial(#[from] SerialError),
    #[error("{0}")]
    Runtime(#[from] crate::vmm::runtime::RuntimeError),
}

/// A defined VM's serial sockets (they exist only while it runs).
pub fn sockets(paths: &HostPaths, name: &str) -> Result<SerialPaths, SerialOpsError> {
    defined(paths, name)?;
    let rt = paths.run_root()?.vm(name)?;
    Ok(SerialPaths::of(&rt))
}

/// A defined VM's serial log file (it may not exist yet).
pub fn log_file(paths: &HostPaths, name: &str) -> Result<PathBuf, SerialOpsError> {
    defined(paths, name)?;
    Ok(log::log_path(paths.state_dir.as_deref(), name)?)
}

/// The log's last `lines` lines (all with None), raw: filter them before they reach a
/// terminal. With `follow`, a missing log is no error, and the follower picks up after the
/// last byte returned.
pub fn log_tail(
    paths: &HostPaths,
    name: &str,
    lines: Option<usize>,
    follow: bool,
) -> Result<(Vec<u8>, log::Follower), SerialOpsError> {
    let path = log_file(paths, name)?;
    match log::tail_and_follow(&path, lines)? {
        Some(found) => Ok(found),
        None if follow => Ok((Vec::new(), log::Follower::at_start(path))),
        None => Err(SerialError::NoLog {
            vm: name.to_string(),
            path: path.display().to_string(),
        }
        .into()),
    }
}

/// What the keeper of VM `name` needs; the VM need not be defined any more (it runs).
pub fn keeper_config(
    paths: &HostPaths,
    name: &str,
    log_max: Option<u64>,
) -> Result<KeeperConfig, SerialOpsError> {
    let rt = paths.run_root()?.vm(name)?;
    let log_max = log_max
        .or_else(|| std::env::var(log::MAX_ENV).ok()?.parse().ok())
        .unwrap_or(log::DEFAULT_MAX);
    Ok(KeeperConfig {
        vm: name.to_string(),
        sockets: SerialPaths::of(&rt),
        run_dir: rt.dir.clone(),
        api_socket: rt.api_socket.clone(),
        log: log::log_path(paths.state_dir.as_deref(), name)?,
        log_max,
    })
}

fn defined(paths: &HostPaths, name: &str) -> Result<(), SerialOpsError> {
    paths.store()?.get_text(name)?;
    Ok(())
}
