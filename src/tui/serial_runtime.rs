//! The serial pane's line: one task per open pane, reading the VM's keeper (or its log) and
//! sending what it reads back as actions; keys go to it on a channel. Closing the pane, or
//! the console, ends the task.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::action::Action;
use super::serial::PaneMode;
use crate::ops::HostPaths;

/// Lines of the log the pane starts with.
const LOG_LINES: usize = 2000;

pub struct SerialBackend {
    paths: HostPaths,
    tx: mpsc::UnboundedSender<Action>,
    session: Option<Session>,
}

struct Session {
    task: tokio::task::JoinHandle<()>,
    keys: mpsc::UnboundedSender<Vec<u8>>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SerialBackend {
    pub fn new(paths: HostPaths, tx: mpsc::UnboundedSender<Action>) -> Self {
        SerialBackend {
            paths,
            tx,
            session: None,
        }
    }

    pub fn open(&mut self, vm: String, mode: PaneMode) {
        let (keys, rx) = mpsc::unbounded_channel();
        let (paths, tx) = (self.paths.clone(), self.tx.clone());
        let task = tokio::spawn(async move {
            match mode {
                PaneMode::Console => console(&paths, &vm, &tx, rx).await,
                PaneMode::Log => follow_log(&paths, &vm, &tx).await,
            }
        });
        self.session = Some(Session { task, keys });
    }

    pub fn send(&self, bytes: Vec<u8>) {
        if let Some(s) = &self.session {
            let _ = s.keys.send(bytes);
        }
    }

    pub fn close(&mut self) {
        self.session = None;
    }
}

async fn console(
    paths: &HostPaths,
    vm: &str,
    tx: &mpsc::UnboundedSender<Action>,
    mut keys: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    let closed = |reason: String| Action::SerialClosed {
        vm: vm.to_string(),
        reason,
    };
    let viewer = match crate::ops::serial::sockets(paths, vm) {
        Ok(sockets) => crate::serial::attach::connect(vm, &sockets)
            .await
            .map_err(|e| crate::error::Chain(&e).to_string()),
        Err(e) => Err(crate::error::Chain(&e).to_string()),
    };
    let viewer = match viewer {
        Ok(v) => v,
        Err(why) => {
            // Not running: what it printed last is the next best thing.
            let _ = tx.send(closed(format!("{why}; showing its serial log")));
            if let Ok((text, _)) = crate::ops::serial::log_tail(paths, vm, Some(LOG_LINES), false) {
                let _ = tx.send(output(vm, text));
            }
            return;
        }
    };
    let _ = tx.send(Action::SerialAttached {
        vm: vm.to_string(),
        role: viewer.role,
        direct: viewer.direct,
    });
    if !viewer.first.is_empty() {
        let _ = tx.send(output(vm, viewer.first));
    }
    let (mut r, mut w) = viewer.stream.into_split();
    let mut buf = vec![0u8; 8192];
    loop {
        tokio::select! {
            n = r.read(&mut buf) => match n {
                Ok(n) if n > 0 => {
                    if tx.send(output(vm, buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
                _ => break,
            },
            Some(k) = keys.recv() => {
                if w.write_all(&k).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = tx.send(closed(
        "the serial line closed (the VM stopped); Ctrl+] leaves".into(),
    ));
}

async fn follow_log(paths: &HostPaths, vm: &str, tx: &mpsc::UnboundedSender<Action>) {
    let mut follower = match crate::ops::serial::log_tail(paths, vm, Some(LOG_LINES), true) {
        Ok((text, follower)) => {
            let _ = tx.send(Action::SerialAttached {
                vm: vm.to_string(),
                role: crate::serial::attach::Role::Watch,
                direct: false,
            });
            let _ = tx.send(output(vm, text));
            follower
        }
        Err(e) => {
            let _ = tx.send(Action::SerialClosed {
                vm: vm.to_string(),
                reason: crate::error::Chain(&e).to_string(),
            });
            return;
        }
    };
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        match follower.poll() {
            Ok(new) if new.is_empty() => {}
            Ok(new) => {
                if tx.send(output(vm, new)).is_err() {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

fn output(vm: &str, bytes: Vec<u8>) -> Action {
    Action::SerialOutput {
        vm: vm.to_string(),
        bytes,
    }
}
