//! The disks section of a VM's detail: each image as `disk inspect` reads it (format,
//! partition table, each partition's filesystem), shown while the VM is stopped.

use ratatui::text::{Line, Span};

use crate::disk::{Filesystem, Inspection};
use crate::fmt::size;

use super::super::state::State;
use super::common::wrapped;

pub fn lines(state: &State, width: usize, out: &mut Vec<Line<'static>>) {
    let p = &state.theme.palette;
    let vms = &state.vms;
    let Some(name) = vms.detail_of.as_deref() else {
        return;
    };
    // Nothing until the first inspection arrives (a few milliseconds after the detail).
    let Some(disks) = vms.disks.as_ref().filter(|d| d.name == name) else {
        return;
    };
    out.push(Line::raw(""));
    out.push(Line::styled(" Disks", p.title));
    let Some(views) = &disks.inspected else {
        let why = "Shown when the VM is stopped: its VMM holds the images now.";
        out.extend(wrapped(why, 3, width, p.dim));
        return;
    };
    if views.is_empty() {
        out.push(Line::raw("   none"));
    }
    for v in views {
        out.extend(wrapped(&v.path.display().to_string(), 3, width, p.title));
        match &v.inspection {
            Err(e) => out.extend(wrapped(e, 5, width, p.bad)),
            Ok(ins) => image(state, ins, width, out),
        }
    }
}

fn image(state: &State, ins: &Inspection, width: usize, out: &mut Vec<Line<'static>>) {
    let p = &state.theme.palette;
    let mut head = format!(
        "{}, {} ({} on disk)",
        ins.format.as_str(),
        size(ins.virtual_size),
        size(ins.file_size)
    );
    if let Some(b) = &ins.backing_file {
        head.push_str(&format!(", backing {b}"));
    }
    match ins.partition_table {
        Some(t) => head.push_str(&format!(", table {}", t.as_str())),
        None => head.push_str(", table unreadable"),
    }
    out.extend(wrapped(&head, 5, width, p.normal));
    if let Some(f) = &ins.filesystem {
        out.extend(wrapped(
            &format!("whole disk: {}", fs(f)),
            5,
            width,
            p.normal,
        ));
    }
    for part in &ins.partitions {
        let what = match &part.filesystem {
            Some(f) => fs(f),
            None if part.container => "extended".into(),
            None => "no filesystem recognised".into(),
        };
        out.push(Line::from(vec![
            Span::raw(format!("   {:>5} {:>7}  ", part.number, size(part.size))),
            Span::styled(format!("{:<18} ", clip(&part.kind, 18)), p.dim),
            Span::raw(what),
        ]));
    }
    for w in &ins.warnings {
        out.extend(wrapped(&format!("warning: {w}"), 5, width, p.warn));
    }
    if let Some(e) = &ins.error {
        out.extend(wrapped(&format!("cannot read: {e}"), 5, width, p.bad));
    }
}

fn fs(f: &Filesystem) -> String {
    let mut s = f.kind.clone();
    if let Some(v) = f.version.as_deref().filter(|_| f.kind == "vfat") {
        s.push_str(&format!(" {v}"));
    }
    if let Some(l) = &f.label {
        s.push_str(&format!(" \"{l}\""));
    }
    s
}

fn clip(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}
