//! Cloud Hypervisor's event monitor: the VMM appends one JSON object per event
//! (`{"timestamp":{"secs":..,"nanos":..},"source":"vm","event":"booted","properties":..}`,
//! pretty-printed, so objects span lines) to the file named by `--event-monitor path=`.
//! A regular file rather than a FIFO: with a FIFO the VMM would block or lose events whenever no
//! console is reading, and VMs outlive consoles. We tail it from an offset.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// What happened to a VM, from the VMM's own account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmEvent {
    VmmStarting,
    VmmShutdown,
    Booting,
    Booted,
    Pausing,
    Paused,
    Resuming,
    Resumed,
    Rebooting,
    Rebooted,
    /// The VM stopped (guest power-off or `vm.shutdown`); the VMM still runs.
    Shutdown,
    Deleted,
    GuestPanic,
    DeviceActivated(String),
    DeviceReset(String),
    /// Anything this version does not know, kept for the log.
    Other {
        source: String,
        event: String,
    },
}

/// The VM state an event implies, spelled as `vm.info` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateHint {
    Running,
    Paused,
    Shutdown,
    /// No VM in the VMM any more, or no VMM.
    Stopped,
}

impl VmEvent {
    pub fn state_hint(&self) -> Option<StateHint> {
        match self {
            VmEvent::Booted | VmEvent::Resumed | VmEvent::Rebooted => Some(StateHint::Running),
            VmEvent::Paused => Some(StateHint::Paused),
            VmEvent::Shutdown => Some(StateHint::Shutdown),
            VmEvent::Deleted | VmEvent::VmmShutdown => Some(StateHint::Stopped),
            _ => None,
        }
    }

    fn from_raw(raw: RawEvent) -> Self {
        let id = || {
            raw.properties
                .as_ref()
                .and_then(|p| p.get("id"))
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        match (raw.source.as_str(), raw.event.as_str()) {
            ("vmm", "starting") => VmEvent::VmmStarting,
            ("vmm", "shutdown") => VmEvent::VmmShutdown,
            ("vm", "booting") => VmEvent::Booting,
            ("vm", "booted") => VmEvent::Booted,
            ("vm", "pausing") => VmEvent::Pausing,
            ("vm", "paused") => VmEvent::Paused,
            ("vm", "resuming") => VmEvent::Resuming,
            ("vm", "resumed") => VmEvent::Resumed,
            ("vm", "rebooting") => VmEvent::Rebooting,
            ("vm", "rebooted") => VmEvent::Rebooted,
            ("vm", "shutdown") => VmEvent::Shutdown,
            ("vm", "deleted") => VmEvent::Deleted,
            ("guest", "panic") => VmEvent::GuestPanic,
            ("virtio-device", "activated") => VmEvent::DeviceActivated(id()),
            ("virtio-device", "reset") => VmEvent::DeviceReset(id()),
            _ => VmEvent::Other {
                source: raw.source,
                event: raw.event,
            },
        }
    }
}

#[derive(Debug, Deserialize)]
struct RawEvent {
    #[serde(default)]
    source: String,
    #[serde(default)]
    event: String,
    #[serde(default)]
    properties: Option<serde_json::Value>,
}

/// Splits a byte stream into events. Keeps an incomplete trailing object for the next feed, and
/// skips garbage rather than stalling on it.
#[derive(Debug, Default)]
pub struct EventParser {
    pending: Vec<u8>,
}

impl EventParser {
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<VmEvent> {
        self.pending.extend_from_slice(bytes);
        let mut events = Vec::new();
        let mut consumed = 0;
        loop {
            let rest = &self.pending[consumed..];
            let skip = rest.iter().take_while(|b| b.is_ascii_whitespace()).count();
            if skip == rest.len() {
                consumed = self.pending.len();
                break;
            }
            let rest = &rest[skip..];
            let mut stream =
                serde_json::Deserializer::from_slice(rest).into_iter::<serde_json::Value>();
            match stream.next() {
                Some(Ok(value)) => {
                    consumed += skip + stream.byte_offset();
                    if let Ok(raw) = serde_json::from_value::<RawEvent>(value) {
                        events.push(VmEvent::from_raw(raw));
                    }
                }
                Some(Err(e)) if e.is_eof() => {
                    consumed += skip;
                    break;
                }
                Some(Err(_)) => {
                    // Resynchronise on the next object start.
                    let next = rest[1..].iter().position(|&b| b == b'{').map(|p| p + 1);
                    match next {
                        Some(p) => consumed += skip + p,
                        None => {
                            consumed = self.pending.len();
                            break;
                        }
                    }
                }
                None => break,
            }
        }
        self.pending.drain(..consumed);
        events
    }
}

/// Follows one VM's event log from where it last stopped reading.
#[derive(Debug)]
pub struct EventTail {
    path: PathBuf,
    offset: u64,
    parser: EventParser,
}

impl EventTail {
    /// From the start of the log: replaying a VM's history gives its current state.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            offset: 0,
            parser: EventParser::default(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// New events since the last call; nothing when the file is missing (VM not started yet
    /// or already cleaned up). A file that shrank was recreated by a new VMM: start over.
    pub fn poll(&mut self) -> Vec<VmEvent> {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len < self.offset {
            self.offset = 0;
            self.parser = EventParser::default();
        }
        if len == self.offset || file.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut buf = Vec::new();
        // Cap one read so a runaway log cannot stall the caller.
        let n = file.take(1 << 20).read_to_end(&mut buf).unwrap_or_default();
        self.offset += n as u64;
        self.parser.feed(&buf[..n])
    }

    /// Waits up to `timeout` for an event that satisfies `want`, polling the file every
    /// `interval`. Returns the event, or None on timeout.
    pub async fn wait_for(
        &mut self,
        timeout: Duration,
        interval: Duration,
        mut want: impl FnMut(&VmEvent) -> bool,
    ) -> Option<VmEvent> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(e) = self.poll().into_iter().find(|e| want(e)) {
                return Some(e);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(interval).await;
        }
    }
}

/// The state the whole log implies, for a VM whose VMM runs.
pub fn last_state(events: &[VmEvent]) -> Option<StateHint> {
    events.iter().rev().find_map(VmEvent::state_hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRETTY: &str = r#"{
  "timestamp": {
    "secs": 0,
    "nanos": 29160
  },
  "source": "vmm",
  "event": "starting",
  "properties": null
}

{
  "timestamp": {
    "secs": 0,
    "nanos": 3000
  },
  "source": "vm",
  "event": "booted",
  "properties": null
}
"#;

    #[test]
    fn parses_pretty_printed_stream() {
        let mut p = EventParser::default();
        assert_eq!(
            p.feed(PRETTY.as_bytes()),
            vec![VmEvent::VmmStarting, VmEvent::Booted]
        );
    }

    #[test]
    fn keeps_partial_objects_across_feeds() {
        let mut p = EventParser::default();
        let bytes = PRETTY.as_bytes();
        let mut all = Vec::new();
        for chunk in bytes.chunks(7) {
            all.extend(p.feed(chunk));
        }
        assert_eq!(all, vec![VmEvent::VmmStarting, VmEvent::Booted]);
    }

    #[test]
    fn skips_garbage_and_unknown_events() {
        let mut p = EventParser::default();
        let input = br#"not json {"source":"vm","event":"paused"} ]]
{"source":"x","event":"y"}{"source":"virtio-device","event":"activated","properties":{"id":"_disk0"}}"#;
        assert_eq!(
            p.feed(input),
            vec![
                VmEvent::Paused,
                VmEvent::Other {
                    source: "x".into(),
                    event: "y".into()
                },
                VmEvent::DeviceActivated("_disk0".into()),
            ]
        );
    }

    #[test]
    fn tail_follows_and_restarts_on_truncation() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("events.json");
        let mut tail = EventTail::new(&path);
        assert!(tail.poll().is_empty());
        std::fs::write(&path, r#"{"source":"vm","event":"booted"}"#).unwrap();
        assert_eq!(tail.poll(), vec![VmEvent::Booted]);
        assert!(tail.poll().is_empty());
        std::fs::write(&path, r#"{"source":"vm","event":"paused"}"#).unwrap();
        // Same length as before: a rewrite is seen only when the file shrinks, so append.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut f, br#"{"source":"vm","event":"shutdown"}"#).unwrap();
        assert_eq!(tail.poll(), vec![VmEvent::Shutdown]);
        std::fs::write(&path, r#"{"source":"vm","event":"x"}"#).unwrap();
        assert_eq!(
            last_state(&[VmEvent::Booted, VmEvent::Paused]),
            Some(StateHint::Paused)
        );
        assert_eq!(tail.poll().len(), 1);
    }
}
