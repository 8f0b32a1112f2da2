//! The one way a `--json` command writes its document: one JSON object on standard output whose
//! first key is `schema_version`, then the keys the command fills in as it goes, then its
//! result. A command that fails after [`begin`] still prints its document, with what it had
//! done and an `error` ({message, causes}), so a script always reads one object; the exit code
//! stays the one [`super::exit`] gives. While a document is pending, text for people on
//! standard output is dropped (see [`super::output::out`]): stdout carries the document alone.
//!
//! Versions: one constant per document kind in [`version`]; an incompatible change to a
//! document (a key removed, renamed or retyped) bumps its constant, new keys do not.

use std::sync::Mutex;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::output::{self, OutputError};

/// The schema version of each document kind; README "JSON documents" describes each.
pub mod version {
    /// `host --json`.
    pub const HOST: u32 = 1;
    /// `vm list --json`.
    pub const VM_LIST: u32 = 1;
    /// `vm info --json`.
    pub const VM_INFO: u32 = 1;
    /// The result of `vm start|stop|reset|pause|resume|delete|nmi|unlock|rescue`.
    pub const VM_ACTION: u32 = 1;
    /// The result of `vm define|edit|import|rollback|autostart`.
    pub const VM_DEFINITION: u32 = 1;
    /// `vm history --json` and `vm history --diff --json`.
    pub const VM_HISTORY: u32 = 1;
    /// `vm snapshot NAME list|create|restore|delete --json`.
    pub const VM_SNAPSHOT: u32 = 1;
    /// `host status --json`: name, kernel, uptime, links, time, journal, warnings.
    pub const HOST_STATUS: u32 = 1;
    /// `host reboot|poweroff --json`: the plan, each VM's stop, whether logind was asked.
    pub const HOST_POWER: u32 = 1;
    /// `gpu list --json`.
    pub const GPU_LIST: u32 = 1;
    /// `gpu detach|reattach|assign|unassign --json`: the steps and their results.
    pub const GPU_MOVE: u32 = 1;
    /// `gpu boot-config --json`.
    pub const GPU_BOOT_CONFIG: u32 = 1;
    /// `autostart --json`.
    pub const AUTOSTART: u32 = 1;
    /// `disk inspect --json`.
    pub const DISK_INSPECT: u32 = 1;
    /// `disk mount|umount|fsck --json`.
    pub const DISK_ACTION: u32 = 1;
    /// Each line of `top --batch --json`.
    pub const TOP_SAMPLE: u32 = 1;
    /// Each line of `vm log --json`.
    pub const VM_LOG_LINE: u32 = 1;
}

/// A key's value, kept as encoded JSON so that the order of its own keys stays as written.
enum Field {
    One(Box<RawValue>),
    /// Items appended one at a time ([`push`]).
    Many(Vec<Box<RawValue>>),
}

impl Serialize for Field {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Field::One(v) => v.serialize(s),
            Field::Many(items) => items.serialize(s),
        }
    }
}

/// The document a `--json` command has begun and not yet printed.
struct Pending {
    version: u32,
    fields: Vec<(String, Field)>,
    /// A JSON Lines stream: a failure is told on one line too.
    lines: bool,
}

static PENDING: Mutex<Option<Pending>> = Mutex::new(None);

fn pending() -> std::sync::MutexGuard<'static, Option<Pending>> {
    // A panic while holding it leaves plain data behind, still usable.
    PENDING.lock().unwrap_or_else(|e| e.into_inner())
}

/// `value` encoded; a value that cannot be (a map with non-string keys) becomes null.
fn raw(value: &impl Serialize) -> Box<RawValue> {
    serde_json::value::to_raw_value(value)
        .or_else(|_| RawValue::from_string("null".into()))
        .unwrap_or_default()
}

/// Starts the document of a `--json` command with the keys that say what it is about (`vm`,
/// `action`, …), in order. Does nothing when `json` is false, so callers pass their flag.
pub fn begin(json: bool, version: u32, fields: &[(&str, Value)]) {
    start(json, version, fields, false);
}

/// [`begin`] for a JSON Lines stream (`vm log --json`): the command writes its lines with
/// [`line`]; a failure is one more line, `fields` and `error`.
pub fn begin_lines(json: bool, version: u32, fields: &[(&str, Value)]) {
    start(json, version, fields, true);
}

fn start(json: bool, version: u32, fields: &[(&str, Value)], lines: bool) {
    if json {
        *pending() = Some(Pending {
            version,
            fields: fields
                .iter()
                .map(|(k, v)| ((*k).to_string(), Field::One(raw(v))))
                .collect(),
            lines,
        });
    }
}

/// One line of a stream begun with [`begin_lines`]: `schema_version`, its keys, `body`'s.
pub fn line(body: &(impl Serialize + ?Sized)) -> Result<(), OutputError> {
    let text = {
        let p = pending();
        let Some(p) = p.as_ref() else {
            return Ok(());
        };
        encode(
            &Doc {
                schema_version: p.version,
                fields: Fields(&p.fields),
                body,
                error: None,
            },
            false,
        )?
    };
    output::write_to(&mut std::io::stdout().lock(), &text)
}

/// Whether a `--json` document is pending: text for people must then stay off stdout.
pub fn active() -> bool {
    pending().is_some()
}

/// Sets `key` of the pending document (kept in its place when it was there).
pub fn set(key: &str, value: &impl Serialize) {
    if let Some(p) = pending().as_mut() {
        let value = Field::One(raw(value));
        match p.fields.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => p.fields.push((key.to_string(), value)),
        }
    }
}

/// Appends `value` to the array `key` of the pending document (made when missing).
pub fn push(key: &str, value: &impl Serialize) {
    if let Some(p) = pending().as_mut() {
        let value = raw(value);
        match p.fields.iter_mut().find(|(k, _)| k == key) {
            Some((_, Field::Many(items))) => items.push(value),
            Some((_, other)) => *other = Field::Many(vec![value]),
            None => p.fields.push((key.to_string(), Field::Many(vec![value]))),
        }
    }
}

/// Keys in the order they were set.
struct Fields<'a>(&'a [(String, Field)]);

impl Serialize for Fields<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// A failure as scripts read it: the message, then each cause, outermost first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorDoc {
    pub message: String,
    pub causes: Vec<String>,
}

impl ErrorDoc {
    pub fn of(error: &(dyn std::error::Error + 'static)) -> Self {
        let mut all = crate::error::messages(error);
        let message = if all.is_empty() {
            String::new()
        } else {
            all.remove(0)
        };
        ErrorDoc {
            message,
            causes: all,
        }
    }
}

/// `schema_version`, the keys set along the way, the body's keys, and `error` on failure.
#[derive(Serialize)]
struct Doc<'a, B: Serialize + ?Sized> {
    schema_version: u32,
    #[serde(flatten)]
    fields: Fields<'a>,
    #[serde(flatten)]
    body: &'a B,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorDoc>,
}

/// Nothing more: the body of a document that ended in a failure.
#[derive(Serialize)]
struct Empty {}

fn encode(doc: &impl Serialize, pretty: bool) -> Result<String, OutputError> {
    let mut text = if pretty {
        serde_json::to_string_pretty(doc)
    } else {
        serde_json::to_string(doc)
    }
    .map_err(OutputError::Encode)?;
    text.push('\n');
    Ok(text)
}

/// A versioned document as one pretty JSON object: `schema_version`, then `body`'s keys.
/// `body` must serialize as an object (a struct or map); arrays go under a plural key.
pub fn to_text(version: u32, body: &(impl Serialize + ?Sized)) -> Result<String, OutputError> {
    versioned(version, body, true)
}

/// The same on one line, for JSON Lines streams (`top --batch --json`).
pub fn to_line(version: u32, body: &(impl Serialize + ?Sized)) -> Result<String, OutputError> {
    versioned(version, body, false)
}

fn versioned(
    version: u32,
    body: &(impl Serialize + ?Sized),
    pretty: bool,
) -> Result<String, OutputError> {
    let doc = Doc {
        schema_version: version,
        fields: Fields(&[]),
        body,
        error: None,
    };
    encode(&doc, pretty)
}

/// Prints the command's document: the pending keys (when [`begin`] was called) then `body`'s.
/// Without a pending document it prints `body` under `version` alone.
pub fn finish(version: u32, body: &(impl Serialize + ?Sized)) -> Result<(), OutputError> {
    let taken = pending().take();
    let (version, fields) = match &taken {
        Some(p) => (p.version, p.fields.as_slice()),
        None => (version, &[][..]),
    };
    let text = encode(
        &Doc {
            schema_version: version,
            fields: Fields(fields),
            body,
            error: None,
        },
        true,
    )?;
    output::write_to(&mut std::io::stdout().lock(), &text)
}

/// Prints the pending document as its keys were set (see [`set`], [`push`]).
pub fn finish_pending() -> Result<(), OutputError> {
    finish(0, &Empty {})
}

/// On failure: prints the pending document with `error`, when one is pending. The write's
/// own failure has nowhere to go (the error is told on stderr as well).
pub fn fail(error: &(dyn std::error::Error + 'static)) {
    let Some(p) = pending().take() else {
        return;
    };
    if let Ok(text) = encode(
        &Doc {
            schema_version: p.version,
            fields: Fields(&p.fields),
            body: &Empty {},
            error: Some(ErrorDoc::of(error)),
        },
        !p.lines,
    ) {
        let _ = output::write_to(&mut std::io::stdout().lock(), &text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Body {
        zebra: u32,
        apple: &'static str,
    }

    #[test]
    fn the_version_comes_first_and_the_body_keeps_its_order() {
        let text = to_text(
            3,
            &Body {
                zebra: 1,
                apple: "a",
            },
        )
        .expect("encodes");
        let keys: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix('"'))
            .filter_map(|l| l.split('"').next())
            .collect();
        assert_eq!(keys, ["schema_version", "zebra", "apple"]);
        let line = to_line(
            1,
            &Body {
                zebra: 2,
                apple: "b",
            },
        )
        .expect("encodes");
        assert_eq!(line, "{\"schema_version\":1,\"zebra\":2,\"apple\":\"b\"}\n");
    }

    #[test]
    fn a_failure_keeps_what_was_done_and_tells_the_causes() {
        #[derive(Debug, thiserror::Error)]
        #[error("Cannot stop VM web")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::other("the socket is gone"));
        let d = ErrorDoc::of(&e);
        assert_eq!(d.message, "Cannot stop VM web");
        assert_eq!(d.causes, ["the socket is gone"]);
        let fields = vec![
            ("vm".to_string(), Field::One(raw(&"web"))),
            ("steps".to_string(), Field::Many(vec![raw(&1)])),
        ];
        let text = encode(
            &Doc {
                schema_version: 1,
                fields: Fields(&fields),
                body: &Empty {},
                error: Some(d),
            },
            false,
        )
        .expect("encodes");
        assert_eq!(
            text,
            "{\"schema_version\":1,\"vm\":\"web\",\"steps\":[1],\"error\":\
             {\"message\":\"Cannot stop VM web\",\"causes\":[\"the socket is gone\"]}}\n"
        );
    }
}
