//! `phyllome vm define|edit|export|import|history|rollback`: VM definitions for scripts.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use eyre::{bail, eyre, WrapErr};
use toml_edit::{value, DocumentMut};

use super::vm::DefineArgs;
use super::vm_docs;
use super::CliError;
use crate::host::PciAddress;
use crate::ops::define::check as guard;
use crate::ops::HostPaths;
use crate::vm::spec::{Disk, MacAddr, Net, NetKind, Vfio};
use crate::vm::{doc, ByteSize, Problem, SaveMode, Store, StoreError, VmSpec};

pub(super) fn open_store(paths: &HostPaths) -> eyre::Result<Store> {
    Ok(paths.store()?)
}

/// Warnings go to stderr: a definition may name a disk that is created later, so they never
/// stop a save (starting the VM is where they matter).
pub(super) fn print_warnings(warnings: &[Problem]) {
    for p in warnings {
        crate::noteln!("warning: {p}");
    }
}

/// A flag's value that does not parse: a usage error that keeps why.
fn bad_flag(flag: &'static str, e: impl std::error::Error + Send + Sync + 'static) -> CliError {
    CliError::BadFlag {
        flag,
        source: Box::new(e),
    }
}

pub(super) fn problems_text(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("  {p}\n")).collect()
}

pub fn define(paths: &HostPaths, args: DefineArgs) -> eyre::Result<()> {
    let name = args.name.as_str();
    vm_docs::begin(args.json, name, "define");
    crate::vm::check_name(name).map_err(CliError::Usage)?;
    let (source, text) = match &args.from {
        Some(file) => {
            let text = crate::files::read_input(file, crate::files::TEXT_CAP)?;
            (file.display().to_string(), text)
        }
        None => {
            let mut doc = doc::to_document(&VmSpec::new(name));
            doc.decor_mut()
                .set_prefix("# Defined by `phyllome vm define`; see `phyllome vm edit`.\n");
            ("the flags".to_string(), doc.to_string())
        }
    };
    let mut doc: DocumentMut =
        doc::parse(&text).map_err(|e| eyre!("{source} is not valid TOML: {}", e_source(&e)))?;
    apply_flags(&mut doc, name, &args)?;
    let text = doc.to_string();
    let spec = crate::vm::load(&text, name).map_err(|p| {
        eyre!(
            "{source} is not a valid VM definition:\n{}",
            problems_text(&p.0)
        )
    })?;
    let store = open_store(paths)?;
    let mode = if args.replace {
        SaveMode::Any
    } else {
        SaveMode::Create
    };
    let replaced = store.exists(name);
    if replaced && !args.replace {
        // Said before any host check: that is the first thing to fix.
        return Err(StoreError::Exists(name.into()).into());
    }
    let warnings = guard(paths, &store, &spec, args.force)?;
    store.save(name, &text, mode)?;
    if args.json {
        return vm_docs::done(&store, name, &[("replaced", replaced.into())], &warnings);
    }
    let verb = if replaced { "Replaced" } else { "Defined" };
    crate::outln!("{verb} VM {name} ({})", store.path(name).display())?;
    print_warnings(&warnings);
    Ok(())
}

fn e_source(e: &doc::DocError) -> String {
    match e {
        doc::DocError::Syntax(t) => t.to_string().trim().to_string(),
        other => other.to_string(),
    }
}

/// Merges the flags over the document: each flag given replaces its field (a list flag
/// replaces the whole list); everything else, comments included, stays as written.
fn apply_flags(doc: &mut DocumentMut, name: &str, a: &DefineArgs) -> eyre::Result<()> {
    if doc.get("name").is_some() {
        doc::set(doc, "name", value(name))?;
    }
    if let Some(n) = a.vcpus {
        doc::set(doc, "cpus.boot", value(i64::from(n)))?;
    }
    if let Some(p) = &a.pin {
        let pin: crate::vm::spec::CpuList = p.parse().map_err(|e| bad_flag("--pin", e))?;
        doc::set(doc, "cpus.pin", value(pin.to_string()))?;
    }
    if let Some(n) = a.numa_node {
        doc::set(doc, "memory.host_numa_node", value(i64::from(n)))?;
    }
    if let Some(m) = &a.memory {
        let size: ByteSize = m.parse().map_err(|e| bad_flag("--memory", e))?;
        doc::set(doc, "memory.size", value(size.to_string()))?;
    }
    if !a.disks.is_empty() {
        let disks = a
            .disks
            .iter()
            .map(|d| parse_disk_flag(d))
            .collect::<Result<Vec<_>, _>>()?;
        doc::set(
            doc,
            "disks",
            doc::tables(disks.iter().map(doc::disk_table).collect()),
        )?;
    }
    if let Some(f) = &a.firmware {
        doc::set(doc, "boot.firmware", value(abs(f)?))?;
        for key in ["boot.kernel", "boot.initramfs", "boot.cmdline"] {
            doc::remove(doc, key);
        }
    }
    if let Some(k) = &a.kernel {
        doc::set(doc, "boot.kernel", value(abs(k)?))?;
        doc::remove(doc, "boot.firmware");
    }
    if let Some(i) = &a.initramfs {
        doc::set(doc, "boot.initramfs", value(abs(i)?))?;
    }
    if let Some(c) = &a.cmdline {
        doc::set(doc, "boot.cmdline", value(c.as_str()))?;
    }
    if !a.nets.is_empty() {
        let nets = a
            .nets
            .iter()
            .map(|n| parse_net_flag(n))
            .collect::<Result<Vec<_>, _>>()?;
        doc::set(
            doc,
            "net",
            doc::tables(nets.iter().map(doc::net_table).collect()),
        )?;
    }
    if !a.vfio.is_empty() {
        let devs = a
            .vfio
            .iter()
            .map(|v| {
                v.parse::<PciAddress>()
                    .map(|address| Vfio { address, id: None })
                    .map_err(|e| bad_flag("--vfio", e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        doc::set(
            doc,
            "vfio",
            doc::tables(devs.iter().map(doc::vfio_table).collect()),
        )?;
    }
    if a.kvm_hyperv {
        doc::set(doc, "cpus.kvm_hyperv", value(true))?;
    }
    if a.autostart {
        doc::set(doc, "autostart", value(true))?;
    }
    Ok(())
}

/// Definitions outlive the shell they were written in, so relative paths are made absolute.
fn abs(p: &Path) -> eyre::Result<String> {
    let p = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    };
    Ok(p.display().to_string())
}

/// `PATH[,readonly]`
fn parse_disk_flag(s: &str) -> eyre::Result<Disk> {
    let (path, readonly) = match s.strip_suffix(",readonly") {
        Some(p) => (p, true),
        None => (s, false),
    };
    if path.is_empty() {
        let why = format!("--disk {s:?}: give a path, e.g. --disk /var/lib/images/vm.img,readonly");
        return Err(CliError::Usage(why).into());
    }
    Ok(Disk {
        path: PathBuf::from(abs(Path::new(path))?),
        readonly,
        format: None,
        id: None,
    })
}

/// `tap=NAME[,mac=MAC][,id=ID]` or `macvtap=NAME[,...]`
fn parse_net_flag(s: &str) -> eyre::Result<Net> {
    let mut kind = None;
    let mut mac = None;
    let mut id = None;
    for part in s.split(',') {
        match part.split_once('=') {
            Some(("tap", n)) => kind = Some(NetKind::Tap(n.to_string())),
            Some(("macvtap", n)) => kind = Some(NetKind::Macvtap(n.to_string())),
            Some(("mac", m)) => mac = Some(m.parse::<MacAddr>().map_err(|e| bad_flag("--net", e))?),
            Some(("id", i)) => id = Some(i.to_string()),
            _ => return Err(CliError::Usage(format!("--net {s:?}: {part:?} is not understood; write tap=NAME[,mac=MAC] or macvtap=NAME[,mac=MAC]")).into()),
        }
    }
    let kind =
        kind.ok_or_else(|| CliError::Usage(format!("--net {s:?}: give tap=NAME or macvtap=NAME")))?;
    Ok(Net { kind, mac, id })
}

pub fn edit(paths: &HostPaths, name: &str, force: bool, json: bool) -> eyre::Result<()> {
    vm_docs::begin(json, name, "edit");
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        bail!(
            "vm edit needs a terminal for the editor; in scripts use `phyllome vm define {name} --from FILE.toml --replace`"
        );
    }
    let store = open_store(paths)?;
    let original = store.get_text(name)?;
    let tmp = EditFile::create(name, &original)?;
    loop {
        run_editor(&tmp.path)?;
        let text = crate::files::read_input(&tmp.path, crate::files::TEXT_CAP)?;
        if text == original {
            crate::outln!("No change to VM {name}")?;
            tmp.remove();
            if json {
                return vm_docs::done(&store, name, &[("changed", false.into())], &[]);
            }
            return Ok(());
        }
        // Checked against the host as a define is: a refusal saves nothing.
        let checked = crate::vm::load(&text, name).map(|spec| guard(paths, &store, &spec, force));
        match checked {
            Ok(Err(refused)) => {
                crate::noteln!("{}", crate::error::Chain(&refused));
                if !ask_yes_default("Edit again") {
                    return Err(eyre::Report::new(refused).wrap_err(format!(
                        "Not saved; your text is kept in {}",
                        tmp.path.display()
                    )));
                }
            }
            Ok(Ok(warnings)) => {
                // Someone else saved meanwhile: do not overwrite their change.
                if store.get_text(name)? != original {
                    bail!(
                        "VM {name} was changed by someone else while you edited; your text is kept in {}",
                        tmp.path.display()
                    );
                }
                store.save(name, &text, SaveMode::Update)?;
                tmp.remove();
                if json {
                    return vm_docs::done(&store, name, &[("changed", true.into())], &warnings);
                }
                crate::outln!("Saved VM {name}")?;
                print_warnings(&warnings);
                return Ok(());
            }
            Err(problems) => {
                crate::noteln!(
                    "The definition is not valid:\n{}",
                    problems_text(&problems.0)
                );
                if !ask_yes_default("Edit again") {
                    bail!("Not saved; your text is kept in {}", tmp.path.display());
                }
            }
        }
    }
}

fn ask_yes_default(what: &str) -> bool {
    use std::io::{BufRead, Write};
    crate::cli::output::note(&format!("{what}? [Y/n] "));
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    !matches!(answer.trim(), "n" | "N" | "no" | "NO")
}

/// The user's text while they edit: private to them, kept whenever it was not saved.
struct EditFile {
    path: PathBuf,
}

impl EditFile {
    fn create(name: &str, text: &str) -> eyre::Result<Self> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path =
            std::env::temp_dir().join(format!("phyllome-{name}-{}.toml", std::process::id()));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .wrap_err_with(|| format!("Cannot create {}", path.display()))?;
        f.write_all(text.as_bytes())?;
        Ok(EditFile { path })
    }

    fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `$VISUAL`, else `$EDITOR`, else `vi`, run through the shell so `EDITOR="code --wait"` works.
fn run_editor(path: &Path) -> eyre::Result<()> {
    let editor = ["VISUAL", "EDITOR"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|e| !e.trim().is_empty())
        .unwrap_or_else(|| "vi".to_string());
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(path)
        .status()
        .wrap_err_with(|| format!("Cannot run the editor {editor:?}"))?;
    if !status.success() {
        bail!(
            "The editor {editor:?} failed ({status}); your text is kept in {}",
            path.display()
        );
    }
    Ok(())
}

/// `vm autostart NAME on|off`: one field of the definition, comments and layout kept.
pub fn autostart(paths: &HostPaths, name: &str, on: bool, json: bool) -> eyre::Result<()> {
    vm_docs::begin(json, name, "autostart");
    let store = open_store(paths)?;
    store
        .edit(name, |doc| doc::set(doc, "autostart", value(on)))
        .wrap_err_with(|| format!("Cannot change VM {name}"))?;
    if json {
        return vm_docs::done(&store, name, &[("autostart", on.into())], &[]);
    }
    let word = if on { "on" } else { "off" };
    crate::outln!("VM {name}: autostart {word}")?;
    Ok(())
}
