//! Edits on the TOML document itself (`toml_edit`), so comments and layout written by hand
//! survive changes made by the console, and [`to_document`] for definitions made from data
//! (import, `vm define` without a file).

use toml_edit::{value, ArrayOfTables, DocumentMut, InlineTable, Item, Table};

use super::grace::StopTimeout;
use super::spec::*;

#[derive(Debug, thiserror::Error)]
pub enum DocError {
    #[error("Not valid TOML")]
    Syntax(#[source] toml_edit::TomlError),
    #[error("{0} is not a table, so {1} cannot be set in it")]
    NotATable(String, String),
}

pub fn parse(text: &str) -> Result<DocumentMut, DocError> {
    text.parse().map_err(DocError::Syntax)
}

/// Sets the dotted `path` (`memory.size`) to `item`, creating the tables on the way and
/// keeping the key's position and comments when it already exists.
pub fn set(doc: &mut DocumentMut, path: &str, item: Item) -> Result<(), DocError> {
    let mut keys: Vec<&str> = path.split('.').collect();
    let leaf = keys.pop().unwrap_or(path);
    let mut table: &mut dyn toml_edit::TableLike = doc.as_table_mut();
    let mut walked = String::new();
    for key in keys {
        if !walked.is_empty() {
            walked.push('.');
        }
        walked.push_str(key);
        if table.get(key).is_none() {
            table.insert(key, Item::Table(Table::new()));
        }
        table = table
            .get_mut(key)
            .and_then(Item::as_table_like_mut)
            .ok_or_else(|| DocError::NotATable(walked.clone(), path.to_string()))?;
    }
    match (table.get_mut(leaf), item) {
        // Keep the decoration (trailing comment) of an existing value.
        (Some(Item::Value(old)), Item::Value(mut new)) => {
            *new.decor_mut() = old.decor().clone();
            *old = new;
        }
        (_, item) => {
            table.insert(leaf, item);
        }
    }
    Ok(())
}

/// Removes the dotted `path` if it is there.
pub fn remove(doc: &mut DocumentMut, path: &str) {
    let mut keys: Vec<&str> = path.split('.').collect();
    let leaf = keys.pop().unwrap_or(path);
    let mut table: &mut dyn toml_edit::TableLike = doc.as_table_mut();
    for key in keys {
        match table.get_mut(key).and_then(Item::as_table_like_mut) {
            Some(t) => table = t,
            None => return,
        }
    }
    table.remove(leaf);
}

/// A list of tables (`[[disks]]`) in place of what was there.
pub fn tables(rows: Vec<Table>) -> Item {
    let mut aot = ArrayOfTables::new();
    for row in rows {
        aot.push(row);
    }
    Item::ArrayOfTables(aot)
}

pub fn disk_table(d: &Disk) -> Table {
    let mut t = Table::new();
    t["path"] = value(d.path.display().to_string());
    if d.readonly {
        t["readonly"] = value(true);
    }
    if let Some(f) = d.format {
        t["format"] = value(f.as_str());
    }
    if let Some(id) = &d.id {
        t["id"] = value(id.as_str());
    }
    t
}

pub fn net_table(n: &Net) -> Table {
    let mut t = Table::new();
    match &n.kind {
        NetKind::Tap(name) => t["tap"] = value(name.as_str()),
        NetKind::Macvtap(name) => t["macvtap"] = value(name.as_str()),
    }
    if let Some(mac) = n.mac {
        t["mac"] = value(mac.to_string());
    }
    if let Some(id) = &n.id {
        t["id"] = value(id.as_str());
    }
    t
}

pub fn vfio_table(v: &Vfio) -> Table {
    let mut t = Table::new();
    t["address"] = value(v.address.to_string());
    if let Some(id) = &v.id {
        t["id"] = value(id.as_str());
    }
    t
}

/// The definition as a fresh document, with only the fields that differ from the defaults.
pub fn to_document(spec: &VmSpec) -> DocumentMut {
    let mut doc = DocumentMut::new();
    doc["name"] = value(spec.name.as_str());
    if spec.autostart {
        doc["autostart"] = value(true);
    }
    if spec.stop_timeout != StopTimeout::DEFAULT {
        doc["stop_timeout"] = value(spec.stop_timeout.to_string());
    }
    if spec.serial != SerialMode::default() {
        doc["serial"] = value(spec.serial.to_string());
    }
    if spec.console != ConsoleMode::default() {
        doc["console"] = value(spec.console.to_string());
    }
    let mut cpus = Table::new();
    cpus["boot"] = value(i64::from(spec.cpus.boot));
    if let Some(max) = spec.cpus.max {
        cpus["max"] = value(i64::from(max));
    }
    if spec.cpus.kvm_hyperv {
        cpus["kvm_hyperv"] = value(true);
    }
    if let Some(pin) = &spec.cpus.pin {
        cpus["pin"] = value(pin.to_string());
    }
    if let Some(t) = spec.cpus.topology {
        let mut it = InlineTable::new();
        it.insert("threads_per_core", i64::from(t.threads_per_core).into());
        it.insert("cores_per_die", i64::from(t.cores_per_die).into());
        it.insert("dies_per_package", i64::from(t.dies_per_package).into());
        it.insert("packages", i64::from(t.packages).into());
        cpus["topology"] = value(it);
    }
    doc["cpus"] = Item::Table(cpus);
    let m = &spec.memory;
    let mut mem = Table::new();
    mem["size"] = value(m.size.to_string());
    if m.hugepages {
        mem["hugepages"] = value(true);
    }
    if let Some(h) = m.hugepage_size {
        mem["hugepage_size"] = value(h.to_string());
    }
    if m.shared {
        mem["shared"] = value(true);
    }
    if let Some(n) = m.host_numa_node {
        mem["host_numa_node"] = value(i64::from(n));
    }
    if let Some(b) = &m.balloon {
        let mut it = InlineTable::new();
        it.insert("size", b.size.to_string().into());
        it.insert("deflate_on_oom", b.deflate_on_oom.into());
        mem["balloon"] = value(it);
    }
    doc["memory"] = Item::Table(mem);
    let mut boot = Table::new();
    let b = &spec.boot;
    for (key, path) in [
        ("firmware", &b.firmware),
        ("kernel", &b.kernel),
        ("initramfs", &b.initramfs),
    ] {
        if let Some(p) = path {
            boot[key] = value(p.display().to_string());
        }
    }
    if let Some(c) = &b.cmdline {
        boot["cmdline"] = value(c.as_str());
    }
    doc["boot"] = Item::Table(boot);
    if !spec.disks.is_empty() {
        doc["disks"] = tables(spec.disks.iter().map(disk_table).collect());
    }
    if !spec.net.is_empty() {
        doc["net"] = tables(spec.net.iter().map(net_table).collect());
    }
    if !spec.vfio.is_empty() {
        doc["vfio"] = tables(spec.vfio.iter().map(vfio_table).collect());
    }
    let p = &spec.platform;
    if p.uuid.is_some() || p.serial_number.is_some() {
        let mut t = Table::new();
        if let Some(u) = &p.uuid {
            t["uuid"] = value(u.as_str());
        }
        if let Some(s) = &p.serial_number {
            t["serial_number"] = value(s.as_str());
        }
        doc["platform"] = Item::Table(t);
    }
    doc
}
