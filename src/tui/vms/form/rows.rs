//! The form's list fields (disks, NICs, VFIO devices) as written in one line, to the TOML
//! tables they stand for; what a row already had (format, id, MAC) is kept.

use super::super::edit::Scalar;
use crate::vm::VmSpec;

pub(super) fn list(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

fn entries(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn str_cell(k: &str, v: impl Into<String>) -> (String, Scalar) {
    (k.to_string(), Scalar::Str(v.into()))
}

/// `PATH` or `PATH:ro`; format and id of a disk already there (same path) are kept.
pub(super) fn disk_rows(text: &str, original: Option<&VmSpec>) -> Vec<Vec<(String, Scalar)>> {
    entries(text)
        .map(|e| {
            let (path, ro) = match e.strip_suffix(":ro") {
                Some(p) => (p.trim(), true),
                None => (e, false),
            };
            let mut row = vec![str_cell("path", path)];
            if ro {
                row.push(("readonly".into(), Scalar::Bool(true)));
            }
            let old = original.and_then(|o| {
                o.disks
                    .iter()
                    .find(|d| d.path == std::path::Path::new(path))
            });
            if let Some(d) = old {
                if let Some(f) = d.format {
                    row.push(str_cell("format", f.as_str()));
                }
                if let Some(id) = &d.id {
                    row.push(str_cell("id", id.as_str()));
                }
            }
            row
        })
        .collect()
}

/// `IFACE` (tap), `macvtap:IFACE`, either with `@MAC`; the id of the same interface is kept.
pub(super) fn net_rows(text: &str, original: Option<&VmSpec>) -> Vec<Vec<(String, Scalar)>> {
    entries(text)
        .map(|e| {
            let (iface, mac) = match e.split_once('@') {
                Some((i, m)) => (i.trim(), Some(m.trim())),
                None => (e, None),
            };
            let (kind, name) = match iface.strip_prefix("macvtap:") {
                Some(n) => ("macvtap", n.trim()),
                None => ("tap", iface.strip_prefix("tap:").unwrap_or(iface).trim()),
            };
            let mut row = vec![str_cell(kind, name)];
            if let Some(m) = mac {
                row.push(str_cell("mac", m));
            }
            let old = original.and_then(|o| o.net.iter().find(|n| n.kind.interface() == name));
            if let Some(id) = old.and_then(|n| n.id.as_ref()) {
                row.push(str_cell("id", id.as_str()));
            }
            row
        })
        .collect()
}

/// PCI addresses; the id of an address already there is kept.
pub(super) fn vfio_rows(text: &str, original: Option<&VmSpec>) -> Vec<Vec<(String, Scalar)>> {
    entries(text)
        .map(|e| {
            let mut row = vec![str_cell("address", e)];
            let old = original.and_then(|o| o.vfio.iter().find(|v| v.address.to_string() == e));
            if let Some(id) = old.and_then(|v| v.id.as_ref()) {
                row.push(str_cell("id", id.as_str()));
            }
            row
        })
        .collect()
}
