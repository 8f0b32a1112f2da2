//! `phyllome vm export|import`: a VM as Cloud Hypervisor's VmConfig JSON or command line, and
//! a definition made from a VmConfig.

use std::path::Path;

use eyre::{bail, eyre, WrapErr};

use super::vm::ExportFormat;
use super::vm_def::{open_store, print_warnings, problems_text};
use super::vm_docs;
use super::CliError;
use crate::ops::define::check as guard;
use crate::ops::HostPaths;
use crate::vm::{doc, SaveMode, StoreError};

/// Where the supervisor will put VM `name`'s sockets: its runtime directory under the run
/// root the VM manager resolves, so an exported config names the same files.
fn runtime_paths(paths: &HostPaths, name: &str) -> eyre::Result<crate::vm::RuntimePaths> {
    Ok(paths.run_root()?.vm(name)?.config_paths())
}

pub fn export(paths: &HostPaths, name: &str, format: ExportFormat) -> eyre::Result<()> {
    let store = open_store(paths)?;
    let spec = store.get(name)?;
    let rt = runtime_paths(paths, name)?;
    let macvtaps = crate::vm::macvtap_nets(&spec);
    match format {
        ExportFormat::Json => {
            let config = crate::vm::to_vm_config(&spec, &rt);
            super::output::json(&config)?;
            for n in &macvtaps {
                crate::noteln!(
                    "note: macvtap {} is not in the JSON (a file cannot carry its descriptor); add it after create: ch-remote add-net fd=N{} with /dev/tapN open",
                    n.kind.interface(),
                    n.mac.map(|m| format!(",mac={m}")).unwrap_or_default()
                );
            }
        }
        ExportFormat::Cli => {
            let args = crate::vm::to_cli_args(&spec, &rt);
            if let Some(a) = args.iter().find(|a| a.contains('\0')) {
                bail!(
                    "VM {name} cannot be written as a command line: {} holds a NUL character, which no argument can carry; remove it from the definition (or use --format json)",
                    crate::fmt::printable(a)
                );
            }
            let mut line = String::from("cloud-hypervisor");
            for pair in args.chunks(2) {
                line.push_str(" \\\n  ");
                line.push_str(
                    &pair
                        .iter()
                        .map(|a| shell_quote(a))
                        .collect::<Vec<_>>()
                        .join(" "),
                );
            }
            for (i, n) in macvtaps.iter().enumerate() {
                let ifname = n.kind.interface();
                line.push_str(&format!(
                    " \\\n  {}<>/dev/tap$(cat /sys/class/net/{}/ifindex)",
                    i + 3,
                    shell_quote(ifname)
                ));
            }
            crate::outln!("{line}")?;
        }
    }
    Ok(())
}

/// A word the shell reads back as `s`: bare when plain, in single quotes, or in `$'...'`
/// with escapes when it holds a control character (which must never reach the terminal
/// raw). A NUL cannot be in any argument, so it is refused before this.
fn shell_quote(s: &str) -> String {
    use std::fmt::Write as _;
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=,@+%".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        return s.to_string();
    }
    if !s.chars().any(char::is_control) {
        return format!("'{}'", s.replace('\'', "'\\''"));
    }
    let mut out = String::from("$'");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\u{1b}' => out.push_str("\\e"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    let _ = write!(out, "\\x{b:02x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

pub fn import(
    paths: &HostPaths,
    file: &Path,
    name: Option<&str>,
    force: bool,
    json: bool,
) -> eyre::Result<()> {
    let name = match name {
        Some(n) => n.to_string(),
        None => {
            let stem = file
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            stem.strip_suffix(".json").unwrap_or(stem).to_string()
        }
    };
    vm_docs::begin(json, &name, "import");
    crate::vm::check_name(&name)
        .map_err(|e| CliError::Usage(format!("{e}; give another with --name")))?;
    let text = crate::files::read_input(file, crate::files::TEXT_CAP)?;
    let config: serde_json::Value =
        serde_json::from_str(&text).wrap_err_with(|| format!("{} is not JSON", file.display()))?;
    let imported = crate::vm::from_vm_config(&config, &name).map_err(|p| {
        eyre!(
            "{} cannot be imported:\n{}",
            file.display(),
            problems_text(&p.0)
        )
    })?;
    // The conversion's own warnings (what CH settings have no field here) go to stderr, as
    // the command line tells them; the document lists the host checks' warnings.
    for w in &imported.warnings {
        crate::noteln!("warning: {w}");
    }
    let mut doc = doc::to_document(&imported.spec);
    doc.decor_mut().set_prefix(format!(
        "# Imported from {} by `phyllome vm import`.\n",
        file.display()
    ));
    let store = open_store(paths)?;
    if store.exists(&name) {
        bail!(
            "VM {name:?} already exists; import under another name with --name, or delete it first"
        );
    }
    let warnings = guard(paths, &store, &imported.spec, force)?;
    match store.save(&name, &doc.to_string(), SaveMode::Create) {
        Err(StoreError::Exists(n)) => bail!(
            "VM {n:?} already exists; import under another name with --name, or delete it first"
        ),
        r => {
            r?;
        }
    }
    if json {
        return vm_docs::done(&store, &name, &[], &warnings);
    }
    crate::outln!("Imported VM {name} ({})", store.path(&name).display())?;
    print_warnings(&warnings);
    Ok(())
}
