//! `--json` everywhere: every command that reports takes it (checked on the clap tree), and
//! each prints ONE JSON object on stdout whose first key is `"schema_version": 1`, also when
//! it fails (then with `error` and the usual exit code). The documents of the VM commands run
//! on the VMM test double (`json_docs/vm.rs`), the GPU steps on the fixture's fake kernel
//! (`json_docs/gpu.rs`).

mod gpu;
mod vm;

use std::process::Output;

use clap::CommandFactory;
use serde_json::{Map, Value};

use crate::support::cli::{text, Cli};

/// Commands that print no document of phyllome's, reviewed one by one: documentation for
/// shells and `man`, the interactive serial console, the export in Cloud Hypervisor's formats.
/// (`top` and `vm log` take `--json` for their JSON Lines streams.)
const NO_JSON: &[&str] = &["completions", "man", "vm console", "vm export"];

/// Every visible leaf command, as its words after `phyllome`, with whether it takes `--json`.
fn leaves(cmd: &clap::Command, path: &str, out: &mut Vec<(String, bool)>) {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = if path.is_empty() {
            sub.get_name().to_string()
        } else {
            format!("{path} {}", sub.get_name())
        };
        if sub.has_subcommands() {
            leaves(sub, &name, out);
        } else {
            let json = sub.get_arguments().any(|a| a.get_long() == Some("json"));
            out.push((name, json));
        }
    }
}

#[test]
fn every_command_that_reports_takes_json() {
    let mut all = Vec::new();
    leaves(&phyllome::cli::Cli::command(), "", &mut all);
    let missing: Vec<&str> = all
        .iter()
        .filter(|(name, json)| !json && !NO_JSON.contains(&name.as_str()))
        .map(|(name, _)| name.as_str())
        .collect();
    assert!(missing.is_empty(), "no --json: {missing:?}");
    // The exceptions are real commands without the flag: a stale entry is a defect.
    for name in NO_JSON {
        let found = all.iter().find(|(n, _)| n == name);
        assert_eq!(found.map(|(_, j)| *j), Some(false), "{name}");
    }
    // The walk sees the nested ones too.
    for name in [
        "vm snapshot create",
        "gpu detach",
        "disk umount",
        "autostart",
        "vm log",
    ] {
        assert!(all.iter().any(|(n, j)| n == name && *j), "{name}: {all:?}");
    }
}

/// A parsed document with its top-level keys in the order printed (a `Map` sorts them).
pub(crate) struct Doc {
    map: Map<String, Value>,
    order: Vec<String>,
}

impl std::ops::Deref for Doc {
    type Target = Map<String, Value>;
    fn deref(&self) -> &Map<String, Value> {
        &self.map
    }
}

impl std::fmt::Debug for Doc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", Value::Object(self.map.clone()))
    }
}

/// stdout as one document: an object whose first key is `schema_version` 1, nothing after it.
pub(crate) fn doc(stdout: &str) -> Doc {
    assert!(
        stdout.starts_with("{\n  \"schema_version\": 1,"),
        "schema_version is not the first key:\n{stdout}"
    );
    let map = match serde_json::from_str(stdout) {
        Ok(Value::Object(map)) => map,
        other => panic!("not one JSON object ({other:?}):\n{stdout}"),
    };
    // Pretty printing puts each top-level key at the start of a line, two spaces in.
    let order = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("  \""))
        .filter_map(|l| l.split('"').next())
        .map(str::to_string)
        .collect();
    Doc { map, order }
}

/// A command that must fail with `code`, its document carrying `error`; returns the document.
pub(crate) fn failed(cli: &Cli, args: &[&str], code: i32) -> Doc {
    let out: Output = cli.run(args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{args:?}\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let d = doc(&text(&out.stdout));
    let error = d["error"].as_object().expect("error");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{d:?}"
    );
    assert!(error["causes"].is_array(), "{d:?}");
    // stderr still tells it, for people.
    assert!(
        text(&out.stderr).contains("error:"),
        "{}",
        text(&out.stderr)
    );
    d
}

/// Top-level keys in the order the document has them.
pub(crate) fn keys(d: &Doc) -> Vec<&str> {
    d.order.iter().map(String::as_str).collect()
}

#[test]
fn host_and_disk_documents_are_versioned_and_keep_their_keys() {
    let cli = Cli::new().host(phyllome::fixture::presets::desktop());
    let host = doc(&cli.ok(&["host", "--json"]));
    for key in ["gpus", "pci_devices"] {
        assert!(host.contains_key(key), "{key}: {:?}", keys(&host));
    }
    let gpus = doc(&cli.ok(&["gpu", "list", "--json"]));
    assert_eq!(keys(&gpus), ["schema_version", "gpus"]);
    assert_eq!(gpus["gpus"][0]["address"], "0000:0b:00.0");

    let image = cli.path().join("blank.img");
    std::fs::write(&image, vec![0u8; 1 << 20]).unwrap();
    let ins = doc(&cli.ok(&["disk", "inspect", image.to_str().unwrap(), "--json"]));
    assert_eq!(ins["format"], "raw", "{ins:?}");
    // Not root here, or no mount: either way a document that says why.
    let d = failed(
        &cli,
        &["disk", "umount", "/nonexistent/phyllome", "--json"],
        1,
    );
    assert_eq!(d["action"], "umount");
}

/// `host status --json` is written like every other document: `schema_version` first, once,
/// and a document with `error` when the read fails, its exit code kept.
#[test]
fn host_status_is_a_document_that_fails_as_one() {
    let cli = Cli::new();
    let d = failed(
        &cli,
        &[
            "host",
            "status",
            "--json",
            "--host-root",
            "/nonexistent/phyllome",
        ],
        2,
    );
    assert_eq!(keys(&d), ["schema_version", "error"]);
    assert!(
        d["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("/nonexistent/phyllome")),
        "{d:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let ok = doc(&cli.ok(&[
        "host",
        "status",
        "--json",
        "--lines",
        "1",
        "--host-root",
        root,
    ]));
    assert_eq!(
        keys(&ok),
        [
            "schema_version",
            "hostname",
            "kernel",
            "uptime_seconds",
            "load",
            "links",
            "default_routes",
            "time",
            "journal",
            "warnings"
        ]
    );
}

#[test]
fn top_batch_json_lines_each_carry_the_version() {
    let cli = Cli::double();
    let out = cli.ok(&["top", "--batch", "-n", "2", "--interval", "0.2", "--json"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    for line in lines {
        assert!(line.starts_with("{\"schema_version\":1,"), "{line}");
        let v: Value = serde_json::from_str(line).expect("one object per line");
        assert!(v["vms"].is_array(), "{line}");
    }
}

#[test]
fn top_batch_json_fails_with_one_line_holding_the_error() {
    let cli = Cli::double();
    let out = cli.run(&[
        "--host-root",
        "/nonexistent/phyllome",
        "top",
        "--batch",
        "-n",
        "1",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert!(lines[0].starts_with("{\"schema_version\":1,"), "{stdout}");
    let v: Value = serde_json::from_str(lines[0]).expect("one object");
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("/nonexistent/phyllome"), "{stdout}");
}
