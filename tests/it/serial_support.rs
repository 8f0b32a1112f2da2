//! What the serial tests share beyond `support::pty`: a raw viewer of a VM's keeper socket.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

pub use crate::support::pty::{wait_exit, Pty};

/// A viewer on the keeper's socket: its hello line, then the stream.
pub struct Viewer {
    pub stream: UnixStream,
    pub hello: String,
    pub seen: Vec<u8>,
}

impl Viewer {
    pub fn attach(vm_dir: &Path) -> Viewer {
        let path = vm_dir.join("viewers.sock");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !path.exists() {
            assert!(Instant::now() < deadline, "no {}", path.display());
            thread::sleep(Duration::from_millis(10));
        }
        let stream = UnixStream::connect(&path).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut v = Viewer {
            stream,
            hello: String::new(),
            seen: Vec::new(),
        };
        v.wait_for("\n");
        let end = v.seen.iter().position(|&b| b == b'\n').unwrap();
        v.hello = String::from_utf8_lossy(&v.seen[..end]).into_owned();
        v.seen.drain(..=end);
        v
    }

    pub fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&self.seen).contains(needle) {
            assert!(
                Instant::now() < deadline,
                "never saw {needle:?}; so far {:?}",
                String::from_utf8_lossy(&self.seen)
            );
            match self.stream.read(&mut buf) {
                Ok(0) => panic!("the keeper closed the stream before {needle:?}"),
                Ok(n) => self.seen.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
        }
        String::from_utf8_lossy(&self.seen).into_owned()
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }
}
