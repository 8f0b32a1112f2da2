//! The last lines of the journal, read with `journalctl -o json` (its stable export format).
//! A host without a journal, or without `journalctl`, says why instead of failing.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::host::SysRoot;

/// Lines shown when none are asked for.
pub const DEFAULT_LINES: usize = 20;
/// More than this is cut to it (a status page, not a log viewer).
pub const MAX_LINES: usize = 1000;
/// `journalctl -n` reads from the end and answers fast; a stuck one is not waited for.
const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Journal {
    pub available: bool,
    /// Why not, when it is not available: `journal not available: …`.
    pub reason: Option<String>,
    /// Oldest first, as `journalctl` prints them.
    pub lines: Vec<JournalLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JournalLine {
    /// When it was logged, in UTC: `2026-11-30T04:47:27Z`.
    pub time: Option<String>,
    /// The systemd unit, else the program's identifier.
    pub unit: Option<String>,
    /// syslog priority: 0 emergency … 3 error, 4 warning, 6 info, 7 debug.
    pub priority: Option<u8>,
    pub message: String,
}

impl Journal {
    pub fn unavailable(why: impl std::fmt::Display) -> Self {
        Journal {
            available: false,
            reason: Some(format!("journal not available: {why}")),
            lines: Vec::new(),
        }
    }
}

pub fn read(root: &SysRoot, lines: usize) -> Journal {
    // `journalctl -o json` prints nothing and succeeds without journal files: say so.
    if !has_journal_files(root) {
        return Journal::unavailable(format!(
            "no journal files in {} or {}",
            root.lexical(PERSISTENT).display(),
            root.lexical(VOLATILE).display()
        ));
    }
    let n = lines.clamp(1, MAX_LINES);
    let mut cmd = Command::new("journalctl");
    cmd.args(["--no-pager", "-o", "json", "-n", &n.to_string()]);
    // Another host's journal: the files under its root, not this machine's.
    if !root.is_host() {
        cmd.arg("--root").arg(root.root());
    }
    match run(cmd) {
        Ok((true, stdout, stderr)) => {
            let lines = parse(&stdout);
            if lines.is_empty() && !stderr.trim().is_empty() {
                // "No journal files were found." comes with success and no output.
                return Journal::unavailable(first_line(&stderr));
            }
            Journal {
                available: true,
                reason: None,
                lines,
            }
        }
        Ok((false, _, stderr)) => {
            Journal::unavailable(format!("journalctl failed: {}", first_line(&stderr)))
        }
        Err(why) => Journal::unavailable(why),
    }
}

const PERSISTENT: &str = "var/log/journal";
const VOLATILE: &str = "run/log/journal";

/// journald keeps `*.journal` files in a directory per machine ID under either place.
fn has_journal_files(root: &SysRoot) -> bool {
    let is_journal = |p: &Path| {
        p.extension()
            .is_some_and(|e| e == "journal" || e == "journal~")
    };
    // Resolved inside the root: a link there (`/var/log/journal -> /data/journal`) names
    // the root's own directory, never this machine's.
    let entries_of = |rel: &Path| {
        root.resolve(rel)
            .ok()
            .and_then(|dir| std::fs::read_dir(dir).ok())
    };
    [PERSISTENT, VOLATILE].iter().any(|dir| {
        let Some(entries) = entries_of(Path::new(dir)) else {
            return false;
        };
        entries.flatten().any(|e| {
            let name = e.file_name();
            is_journal(Path::new(&name))
                || entries_of(&Path::new(dir).join(&name))
                    .is_some_and(|mut inner| inner.any(|f| f.is_ok_and(|f| is_journal(&f.path()))))
        })
    })
}

fn first_line(text: &str) -> String {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty());
    line.unwrap_or("no output")
        .trim_end_matches('.')
        .to_string()
}

/// Runs `journalctl`, killing it after [`TIMEOUT`]: (success, stdout, stderr).
fn run(mut cmd: Command) -> Result<(bool, String, String), String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => "journalctl not found".to_string(),
            _ => format!("cannot run journalctl: {e}"),
        })?;
    // Readers on their own threads, so a full pipe never stalls the child.
    let pipe = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut s);
            }
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = pipe(child.stdout.take().map(|r| Box::new(r) as _));
    let err = pipe(child.stderr.take().map(|r| Box::new(r) as _));
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if start.elapsed() < TIMEOUT => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "journalctl did not answer within {}s",
                    TIMEOUT.as_secs()
                ));
            }
            Err(e) => return Err(format!("cannot wait for journalctl: {e}")),
        }
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    Ok((status.success(), stdout, stderr))
}

/// One JSON object a line; lines that are not are skipped.
pub fn parse(text: &str) -> Vec<JournalLine> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| entry(&v))
        .collect()
}

fn entry(v: &serde_json::Value) -> Option<JournalLine> {
    let obj = v.as_object()?;
    let text = |k: &str| field_text(obj.get(k)?);
    let time = text("__REALTIME_TIMESTAMP")
        .and_then(|us| us.parse::<i64>().ok())
        .and_then(|us| jiff::Timestamp::from_second(us.div_euclid(1_000_000)).ok())
        .map(|t| t.to_string());
    let unit = text("_SYSTEMD_UNIT")
        .or_else(|| text("SYSLOG_IDENTIFIER"))
        .or_else(|| text("_COMM"));
    Some(JournalLine {
        time,
        unit,
        priority: text("PRIORITY")
            .and_then(|p| p.parse().ok())
            .filter(|p| *p <= 7),
        message: text("MESSAGE").unwrap_or_default(),
    })
}

/// A field is a string, or an array of bytes when it is not valid UTF-8 (or has control
/// characters); several values of one field come as an array of those.
fn field_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(items) if items.iter().all(|i| i.is_u64()) => {
            let bytes: Vec<u8> = items
                .iter()
                .filter_map(|i| i.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect();
            Some(String::from_utf8_lossy(&bytes).into_owned())
        }
        serde_json::Value::Array(items) => items.first().and_then(field_text),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse() {
        let text = concat!(
            r#"{"__REALTIME_TIMESTAMP":"1764477647123456","_SYSTEMD_UNIT":"ssh.service","PRIORITY":"6","MESSAGE":"Server listening on :: port 22."}"#,
            "\n",
            r#"{"__REALTIME_TIMESTAMP":"1764477648000000","SYSLOG_IDENTIFIER":"kernel","PRIORITY":"3","MESSAGE":[104,105,10,255]}"#,
            "\n",
            "not json\n",
            r#"{"MESSAGE":null,"PRIORITY":"12"}"#,
            "\n",
        );
        let got = parse(text);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].time.as_deref(), Some("2025-11-30T04:40:47Z"));
        assert_eq!(got[0].unit.as_deref(), Some("ssh.service"));
        assert_eq!(got[0].priority, Some(6));
        assert_eq!(got[0].message, "Server listening on :: port 22.");
        assert_eq!(got[1].unit.as_deref(), Some("kernel"));
        assert_eq!(got[1].message, "hi\n\u{fffd}");
        assert_eq!(got[2].priority, None);
        assert_eq!(got[2].message, "");
        assert_eq!(got[2].time, None);
    }

    #[test]
    fn a_missing_journalctl_is_said() {
        let j = match run(Command::new("/nonexistent/journalctl")) {
            Err(why) => Journal::unavailable(why),
            Ok(_) => panic!("ran a program that does not exist"),
        };
        assert!(!j.available);
        assert_eq!(
            j.reason.as_deref(),
            Some("journal not available: journalctl not found")
        );
    }

    #[test]
    fn a_root_without_journal_files_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let root = SysRoot::new(dir.path());
        let j = read(&root, 10);
        assert!(!j.available);
        let why = j.reason.unwrap();
        assert!(
            why.starts_with("journal not available: no journal files in "),
            "{why}"
        );
        std::fs::create_dir_all(dir.path().join("run/log/journal/0123abcd")).unwrap();
        std::fs::write(
            dir.path().join("run/log/journal/0123abcd/system.journal"),
            "",
        )
        .unwrap();
        assert!(has_journal_files(&root));
    }

    /// `var/log -> /data/log` names the root's `data/log`, not this machine's.
    #[test]
    fn journal_links_are_followed_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let inside = dir.path().join("data/log/journal/0123abcd");
        std::fs::create_dir_all(&inside).unwrap();
        std::fs::write(inside.join("system.journal"), "").unwrap();
        std::fs::create_dir_all(dir.path().join("var")).unwrap();
        std::os::unix::fs::symlink("/data/log", dir.path().join("var/log")).unwrap();
        assert!(has_journal_files(&SysRoot::new(dir.path())));
    }

    #[test]
    fn reasons_are_the_first_line() {
        assert_eq!(
            first_line("\nNo journal files were found.\n"),
            "No journal files were found"
        );
        assert_eq!(first_line(""), "no output");
    }
}
