//! A viewer's side of the serial line: connect to the VM's keeper (or, when no keeper runs,
//! to Cloud Hypervisor's socket directly) and learn whether our keys reach the guest.

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::UnixStream;

use super::{SerialError, SerialPaths, HELLO_KEYS, HELLO_WATCH};

/// Whether this viewer's keys go to the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Keys,
    Watch,
}

/// An attached viewer: the stream, its role, and output that came with the hello.
#[derive(Debug)]
pub struct Viewer {
    pub stream: UnixStream,
    pub role: Role,
    /// Bytes read past the hello line (the start of the backlog).
    pub first: Vec<u8>,
    /// No keeper: attached to Cloud Hypervisor's socket itself (nothing is logged meanwhile).
    pub direct: bool,
}

/// Connects as a viewer of VM `vm`.
pub async fn connect(vm: &str, paths: &SerialPaths) -> Result<Viewer, SerialError> {
    let err = |path: &std::path::Path| {
        let path = path.display().to_string();
        move |source| SerialError::Connect { path, source }
    };
    // A keeper was started (its log is made before it runs): wait for its socket rather than
    // take CH's, which would cut the keeper off (CH keeps one client, the newest).
    if paths.keeper_log.exists() {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !paths.viewers.exists() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    if paths.viewers.exists() {
        let mut stream = UnixStream::connect(&paths.viewers)
            .await
            .map_err(err(&paths.viewers))?;
        let (role, first) = tokio::time::timeout(Duration::from_secs(5), hello(&mut stream))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))
            .and_then(|r| r)
            .map_err(err(&paths.viewers))?;
        return Ok(Viewer {
            stream,
            role,
            first,
            direct: false,
        });
    }
    if !paths.guest.exists() {
        return Err(SerialError::NotRunning(vm.to_string()));
    }
    let stream = UnixStream::connect(&paths.guest)
        .await
        .map_err(err(&paths.guest))?;
    Ok(Viewer {
        stream,
        role: Role::Keys,
        first: Vec::new(),
        direct: true,
    })
}

/// Reads the keeper's hello line; what follows it is returned as the first output.
async fn hello(stream: &mut UnixStream) -> Result<(Role, Vec<u8>), std::io::Error> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = got.iter().position(|&b| b == b'\n') {
            let line = &got[..=end];
            let role = if line == HELLO_KEYS {
                Role::Keys
            } else if line == HELLO_WATCH {
                Role::Watch
            } else {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "not a phyllome serial keeper",
                ));
            };
            return Ok((role, got.split_off(end + 1)));
        }
        if got.len() > 64 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "not a phyllome serial keeper",
            ));
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        got.extend_from_slice(&buf[..n]);
    }
}

/// Splits typed bytes at the detach key: what goes to the guest, and whether it was pressed.
pub fn split_detach(keys: &[u8]) -> (&[u8], bool) {
    match keys.iter().position(|&b| b == super::DETACH_BYTE) {
        Some(i) => (&keys[..i], true),
        None => (keys, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_detach_key_ends_what_is_sent() {
        assert_eq!(split_detach(b"ls\r"), (&b"ls\r"[..], false));
        assert_eq!(split_detach(b"ab\x1dcd"), (&b"ab"[..], true));
    }
}
