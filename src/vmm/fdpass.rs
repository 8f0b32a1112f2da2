//! macvtap NICs: Cloud Hypervisor takes them as open `/dev/tapN` descriptors, passed with
//! SCM_RIGHTS on its API socket in the same message as a `PUT /api/v1/vm.add-net` request
//! (CH's HTTP server reads the ancillary data; the descriptors become the NetConfig's `fds`).
//!
//! A JSON body cannot carry a descriptor, and hyper never sees the socket's ancillary data, so
//! this one request is written by hand: one `sendmsg` with the whole request and the
//! descriptors, then a plain HTTP/1.1 reply is read back. The NetConfig sent has no `fds` key:
//! CH ignores numbers sent in the body (they mean nothing in its process) and attaches the
//! received descriptors in their place; Cloud Hypervisor's API spec does not list the key.
//!
//! Descriptors are opened before the VMM is launched, so a missing interface fails the start
//! with nothing left running.

use std::fs::File;
use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::UnixStream;

use crate::vm::chconfig::net_config;
use crate::vm::spec::NetKind;
use crate::vm::VmSpec;

/// The largest reply accepted (CH's replies to add-net are a few hundred bytes).
const MAX_REPLY: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum FdPassError {
    #[error(
        "net[{index}].macvtap: there is no interface {iface} ({} is missing); create it before \
         starting the VM, e.g. `ip link add link eth0 name {iface} type macvtap mode bridge && \
         ip link set {iface} up`, or change the VM with `phyllome vm edit`",
        path.display()
    )]
    NoInterface {
        index: usize,
        iface: String,
        path: PathBuf,
    },
    #[error("net[{index}].macvtap: {} does not hold an interface index: {text:?}", path.display())]
    BadIfindex {
        index: usize,
        path: PathBuf,
        text: String,
    },
    #[error(
        "net[{index}].macvtap: cannot open {} for interface {iface}; is {iface} a macvtap \
         interface, and does phyllome run as root?",
        path.display()
    )]
    OpenTap {
        index: usize,
        iface: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Cannot connect to the VMM at {}", socket.display())]
    Connect {
        socket: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("vm.add-net of {iface}: the exchange with the VMM failed")]
    Io {
        iface: String,
        #[source]
        source: std::io::Error,
    },
    #[error("vm.add-net of {iface} timed out after {after:?}")]
    Timeout { iface: String, after: Duration },
    #[error("vm.add-net of {iface}: the VMM's reply is not HTTP: {why}")]
    BadReply { iface: String, why: String },
    #[error("vm.add-net of {iface} failed: {}", headline(causes))]
    Refused {
        iface: String,
        status: u16,
        causes: Vec<String>,
        /// The same messages as the error's cause chain.
        #[source]
        reply: Option<crate::error::Remote>,
    },
}

impl FdPassError {
    /// The VMM's messages, outermost first, when it refused the interface.
    pub fn causes(&self) -> &[String] {
        match self {
            FdPassError::Refused { causes, .. } => causes,
            _ => &[],
        }
    }
}

/// CH's outermost message is the generic "Error from API": the next one says more.
fn headline(causes: &[String]) -> String {
    causes
        .iter()
        .find(|c| c.as_str() != "Error from API")
        .or(causes.first())
        .cloned()
        .unwrap_or_else(|| "no message".to_string())
}

/// One macvtap NIC of a VM with its open tap device, ready for `vm.add-net`.
#[derive(Debug)]
pub struct MacvtapNic {
    /// Position in the definition's `net` list (for messages: `net[1].macvtap`).
    pub index: usize,
    pub iface: String,
    /// The NetConfig sent (mac and id; no tap name, no fds).
    pub config: Value,
    /// One descriptor per queue pair; CH's default of two queues takes one.
    pub files: Vec<File>,
}

/// Opens `/dev/tapIFINDEX` of every macvtap NIC of `spec`, in definition order; paths are
/// read under `host_root` (`/`, or a fixture tree in tests).
pub fn open_macvtaps(spec: &VmSpec, host_root: &Path) -> Result<Vec<MacvtapNic>, FdPassError> {
    let mut out = Vec::new();
    for (index, net) in spec.net.iter().enumerate() {
        let NetKind::Macvtap(iface) = &net.kind else {
            continue;
        };
        let ifindex = ifindex(host_root, index, iface)?;
        let path = host_root.join(format!("dev/tap{ifindex}"));
        let file = File::options()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|source| FdPassError::OpenTap {
                index,
                iface: iface.clone(),
                path: path.clone(),
                source,
            })?;
        out.push(MacvtapNic {
            index,
            iface: iface.clone(),
            config: net_config(net),
            files: vec![file],
        });
    }
    Ok(out)
}

/// The interface's index from `sys/class/net/IFACE/ifindex`; the tap device is named after it.
fn ifindex(host_root: &Path, index: usize, iface: &str) -> Result<u32, FdPassError> {
    // An interface name never holds '/' (the kernel refuses it), but the definition is user
    // input: never let it walk out of sys/class/net.
    let path = host_root.join("sys/class/net").join(iface).join("ifindex");
    if iface.is_empty() || iface.contains('/') || iface == "." || iface == ".." {
        return Err(FdPassError::NoInterface {
            index,
            iface: iface.to_string(),
            path,
        });
    }
    let text = std::fs::read_to_string(&path).map_err(|_| FdPassError::NoInterface {
        index,
        iface: iface.to_string(),
        path: path.clone(),
    })?;
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or(FdPassError::BadIfindex { index, path, text })
}

/// Adds every NIC to the VM (after `vm.create`, before `vm.boot`: CH then cold-plugs them).
pub async fn attach_macvtaps(
    socket: &Path,
    nics: &[MacvtapNic],
    timeout: Duration,
) -> Result<(), FdPassError> {
    for nic in nics {
        add_net_with_fds(socket, &nic.iface, &nic.config, &nic.files, timeout).await?;
    }
    Ok(())
}

/// `PUT /api/v1/vm.add-net` with `body` (a NetConfig) and `fds` passed with SCM_RIGHTS.
/// Returns the reply body when there is one (200 with PciDeviceInfo after boot; 204 before).
pub async fn add_net_with_fds(
    socket: &Path,
    iface: &str,
    body: &Value,
    fds: &[File],
    timeout: Duration,
) -> Result<Option<Value>, FdPassError> {
    let exchange = async {
        let mut stream =
            UnixStream::connect(socket)
                .await
                .map_err(|source| FdPassError::Connect {
                    socket: socket.to_path_buf(),
                    source,
                })?;
        let io = |source| FdPassError::Io {
            iface: iface.to_string(),
            source,
        };
        let request = http_request(body);
        let sent = send_with_fds(&stream, &request, fds).await.map_err(io)?;
        // The descriptors went with the first byte; whatever did not fit follows plainly.
        stream.write_all(&request[sent..]).await.map_err(io)?;
        let reply = read_reply(&mut stream).await.map_err(io)?;
        parse_reply(iface, &reply)
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| FdPassError::Timeout {
            iface: iface.to_string(),
            after: timeout,
        })?
}

fn http_request(body: &Value) -> Vec<u8> {
    let body = body.to_string();
    // `Connection: close`: one request per connection, the descriptors belong to this one.
    let mut req = format!(
        "PUT /api/v1/vm.add-net HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body.as_bytes());
    req
}

/// One `sendmsg` carrying the descriptors and as much of `data` as the socket takes.
async fn send_with_fds(stream: &UnixStream, data: &[u8], fds: &[File]) -> std::io::Result<usize> {
    let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(|f| f.as_fd()).collect();
    loop {
        stream.writable().await?;
        let sent = stream.try_io(Interest::WRITABLE, || {
            let mut space =
                vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(borrowed.len()))];
            let mut control = SendAncillaryBuffer::new(&mut space);
            if !borrowed.is_empty() && !control.push(SendAncillaryMessage::ScmRights(&borrowed)) {
                return Err(std::io::Error::other(
                    "too many descriptors for one message",
                ));
            }
            rustix::net::sendmsg(
                stream,
                &[IoSlice::new(data)],
                &mut control,
                SendFlags::NOSIGNAL,
            )
            .map_err(std::io::Error::from)
        });
        match sent {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Reads the head and, by `Content-Length`, the body (or up to EOF without one).
async fn read_reply(stream: &mut UnixStream) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = head_end(&buf) {
            let len = content_length(&buf[..end]);
            if len.is_some_and(|l| buf.len() >= end + l) {
                return Ok(buf);
            }
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(buf);
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_REPLY {
            return Err(std::io::Error::other("reply larger than 1 MiB"));
        }
    }
}

fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

fn content_length(head: &[u8]) -> Option<usize> {
    String::from_utf8_lossy(head).lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())?
    })
}

fn parse_reply(iface: &str, reply: &[u8]) -> Result<Option<Value>, FdPassError> {
    let bad = |why: &str| FdPassError::BadReply {
        iface: iface.to_string(),
        why: why.to_string(),
    };
    let end = head_end(reply).ok_or_else(|| bad("no complete header"))?;
    let head = String::from_utf8_lossy(&reply[..end]);
    let status: u16 = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let body = match content_length(&reply[..end]) {
        Some(len) => reply.get(end..end + len).ok_or_else(|| bad("short body"))?,
        None => &reply[end..],
    };
    let json: Option<Value> = if body.is_empty() {
        None
    } else {
        serde_json::from_slice(body).ok()
    };
    if (200..300).contains(&status) {
        return Ok(json);
    }
    let causes = match json {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .collect(),
        Some(other) => vec![other.to_string()],
        None => vec![String::from_utf8_lossy(body).into_owned()],
    };
    let reply = crate::error::Remote::from_messages(
        super::error::specific(&causes).cloned().collect::<Vec<_>>(),
    );
    Err(FdPassError::Refused {
        iface: iface.to_string(),
        status,
        causes,
        reply,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_http_with_a_json_body() {
        let req = http_request(&serde_json::json!({"mac": "52:54:00:00:00:01"}));
        let text = String::from_utf8(req).unwrap();
        assert!(text.starts_with("PUT /api/v1/vm.add-net HTTP/1.1\r\n"));
        assert!(text.contains("Content-Length: 27\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\n{\"mac\":\"52:54:00:00:00:01\"}"));
    }

    #[test]
    fn replies_are_parsed_leniently_and_errors_keep_causes() {
        assert_eq!(
            parse_reply("mv0", b"HTTP/1.1 204 No Content\r\n\r\n").unwrap(),
            None
        );
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n{\"id\":\"net\"}x";
        assert_eq!(
            parse_reply("mv0", ok).unwrap(),
            Some(serde_json::json!({"id": "net"}))
        );
        let err = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 35\r\n\r\n[\"Error from API\",\"no such device\"]";
        let e = parse_reply("mv0", err).unwrap_err();
        assert_eq!(e.causes(), ["Error from API", "no such device"]);
        assert!(e.to_string().contains("no such device"), "{e}");
        assert!(matches!(
            parse_reply("mv0", b"garbage"),
            Err(FdPassError::BadReply { .. })
        ));
    }

    #[test]
    fn a_missing_interface_names_it_and_the_fix() {
        let root = tempfile::tempdir().unwrap();
        let e = ifindex(root.path(), 2, "mv9").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("net[2].macvtap"), "{text}");
        assert!(text.contains("mv9"), "{text}");
        assert!(text.contains("ip link add"), "{text}");
        assert!(matches!(
            ifindex(root.path(), 0, "../x"),
            Err(FdPassError::NoInterface { .. })
        ));
        let dir = root.path().join("sys/class/net/mv1");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ifindex"), "zz\n").unwrap();
        assert!(matches!(
            ifindex(root.path(), 0, "mv1"),
            Err(FdPassError::BadIfindex { .. })
        ));
        std::fs::write(dir.join("ifindex"), "42\n").unwrap();
        assert_eq!(ifindex(root.path(), 0, "mv1").unwrap(), 42);
    }
}
