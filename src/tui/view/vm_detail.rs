//! One VM: what it runs as now (`vm.info` when it runs) and its definition.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::Frame;

use crate::vm::spec::{DiskFormat, NetKind, VmSpec};

use super::super::state::State;
use super::common::{field, scrolled, wrapped};
use super::vms::state_style;
use crate::fmt::{self, countdown, uptime, yes_no};

const W: usize = 15;

pub fn render(state: &State, frame: &mut Frame, area: Rect) {
    let name = state.vms.detail_of.as_deref().unwrap_or("");
    let lines = lines(state, area.width.saturating_sub(2) as usize);
    let title = format!("VM {name}");
    scrolled(
        frame,
        area,
        &title,
        lines,
        state.vms.detail_scroll,
        &state.theme,
    );
}

fn text(s: impl Into<String>) -> Vec<Span<'static>> {
    vec![Span::raw(s.into())]
}

pub fn lines(state: &State, width: usize) -> Vec<Line<'static>> {
    let t = &state.theme;
    let p = &t.palette;
    let vms = &state.vms;
    let Some(name) = vms.detail_of.as_deref() else {
        return Vec::new();
    };
    let row = vms.rows.iter().find(|r| r.name == name);
    let detail = vms.detail.as_ref().filter(|d| d.name == name);
    let mut out = Vec::new();

    let live = detail.and_then(|d| d.info.as_ref());
    let run_state = match live {
        Some(Ok(i)) => Some(i.state),
        _ => row.map(|r| r.state),
    };
    let state_spans = match (vms.pending.get(name), run_state) {
        (Some(&op), _) => vec![Span::styled(vms.progress(name, op), p.warn)],
        (None, Some(s)) => vec![Span::styled(s.as_str(), state_style(s, t))],
        (None, None) => text("unknown"),
    };
    out.push(field("state", W, state_spans, t));
    if let Some(g) = vms.grace.get(name) {
        let text = if g.left > 0 {
            format!(
                "vm.shutdown in {} if still running; X forces off now",
                countdown(g.left)
            )
        } else {
            "over: forcing off with vm.shutdown".to_string()
        };
        let mut lines = wrapped(&text, W + 2, width, p.warn).into_iter();
        if let Some(first) = lines.next() {
            // Its first span is the indent, which the label takes the place of.
            out.push(field(
                "grace period",
                W,
                first.spans.into_iter().skip(1).collect(),
                t,
            ));
        }
        out.extend(lines);
    }
    let up = match live {
        Some(Ok(i)) => i.uptime_secs,
        _ => row.and_then(|r| r.uptime_secs),
    };
    if let Some(u) = up {
        out.push(field("uptime", W, text(uptime(u)), t));
    }
    match live {
        Some(Ok(i)) => {
            if let Some(m) = i.memory_actual {
                out.push(field("memory in use", W, text(fmt::size(m)), t));
            }
        }
        Some(Err(e)) => out.push(field("vm.info", W, vec![Span::styled(e.clone(), p.bad)], t)),
        None => {}
    }
    let last = vms.results.get(name).cloned().unwrap_or_else(|| "-".into());
    out.push(field("last action", W, text(last), t));
    if let Some(r) = detail.and_then(|d| d.rescue.as_ref()) {
        let booted = [&r.kernel, &r.iso]
            .into_iter()
            .flatten()
            .map(|p| p.display().to_string())
            .next()
            .unwrap_or_default();
        let disks = if r.rw { "writable" } else { "read-only" };
        let text = format!("{booted}, disks {disks}, no PCI devices; the next start is normal");
        let mut lines = wrapped(&text, W + 2, width, p.warn).into_iter();
        if let Some(first) = lines.next() {
            out.push(field(
                "rescue boot",
                W,
                first.spans.into_iter().skip(1).collect(),
                t,
            ));
        }
        out.extend(lines);
    }
    out.push(Line::raw(""));
    out.push(Line::styled(" Definition", p.title));
    match detail.map(|d| &d.spec) {
        None => out.push(Line::raw("   Reading...")),
        Some(Err(e)) => {
            out.push(field("invalid", W, Vec::new(), t));
            for l in e.lines() {
                out.extend(wrapped(l.trim(), 3, width, p.bad));
            }
        }
        Some(Ok(spec)) => {
            definition(state, spec, &mut out);
            super::vm_disks::lines(state, width, &mut out);
        }
    }
    if let Some(d) = detail {
        snapshots(state, &d.snapshots, &mut out);
    }
    out
}

/// The VM's snapshots, the selected one marked (`[`/`]` move, `T` restores, `d` deletes).
fn snapshots(
    state: &State,
    list: &[crate::vmm::manager::SnapshotInfo],
    out: &mut Vec<Line<'static>>,
) {
    let p = &state.theme.palette;
    out.push(Line::raw(""));
    out.push(Line::styled(" Snapshots", p.title));
    if list.is_empty() {
        out.push(Line::raw("   none; S takes one"));
        return;
    }
    for (i, s) in list.iter().enumerate() {
        let chosen = i == state.vms.snapshot_sel;
        let line = format!(
            " {} {:<4} {}  {:<7} {:>9}",
            if chosen { ">" } else { " " },
            s.id,
            fmt::utc(s.created_at),
            s.state,
            fmt::size(s.size_bytes)
        );
        out.push(Line::styled(
            line,
            if chosen { p.selected } else { p.normal },
        ));
    }
    out.push(Line::styled(
        "   [ ] select, T restore (VM stopped), d delete",
        p.dim,
    ));
}

fn definition(state: &State, s: &VmSpec, out: &mut Vec<Line<'static>>) {
    let t = &state.theme;
    let max = match s.cpus.max {
        Some(m) if m != s.cpus.boot => format!(" (max {m})"),
        _ => String::new(),
    };
    let pin = s
        .cpus
        .pin
        .as_ref()
        .map(|p| format!(", pinned to host CPUs {p}"))
        .unwrap_or_default();
    out.push(field(
        "vCPUs",
        W,
        text(format!("{}{max}{pin}", s.cpus.boot)),
        t,
    ));
    out.push(field("kvm_hyperv", W, text(yes_no(s.cpus.kvm_hyperv)), t));
    let m = &s.memory;
    let mut mem = m.size.to_string();
    if m.hugepages {
        mem.push_str(", hugepages");
    }
    if m.shared {
        mem.push_str(", shared");
    }
    if let Some(n) = m.host_numa_node {
        mem.push_str(&format!(", on host node {n}"));
    }
    out.push(field("memory", W, text(mem), t));
    let b = &s.boot;
    let path = |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| p.display().to_string());
    if let Some(fw) = path(&b.firmware) {
        out.push(field("firmware", W, text(fw), t));
    }
    if let Some(k) = path(&b.kernel) {
        out.push(field("kernel", W, text(k), t));
    }
    if let Some(i) = path(&b.initramfs) {
        out.push(field("initramfs", W, text(i), t));
    }
    if let Some(c) = &b.cmdline {
        out.push(field("cmdline", W, text(c.clone()), t));
    }
    let list = |label: &str, items: Vec<String>, out: &mut Vec<Line<'static>>| {
        if items.is_empty() {
            out.push(field(label, W, text("none"), t));
        }
        for (i, item) in items.into_iter().enumerate() {
            let label = if i == 0 { label } else { "" };
            out.push(field(label, W, text(item), t));
        }
    };
    let disks = s
        .disks
        .iter()
        .map(|d| {
            let mut attrs = vec![match d.format() {
                DiskFormat::Raw => "raw",
                DiskFormat::Qcow2 => "qcow2",
            }];
            if d.readonly {
                attrs.push("read-only");
            }
            format!("{} ({})", d.path.display(), attrs.join(", "))
        })
        .collect();
    list("disks", disks, out);
    let nets = s
        .net
        .iter()
        .map(|n| {
            let kind = match &n.kind {
                NetKind::Tap(i) => format!("tap {i}"),
                NetKind::Macvtap(i) => format!("macvtap {i}"),
            };
            match n.mac {
                Some(m) => format!("{kind}, {m}"),
                None => kind,
            }
        })
        .collect();
    list("networks", nets, out);
    let vfio = s
        .vfio
        .iter()
        .map(|v| {
            let id =
                v.id.as_ref()
                    .map(|id| format!(" ({id})"))
                    .unwrap_or_default();
            // Where the device stands now, when the host has been read.
            let now = state
                .inventory
                .as_ref()
                .map(|inv| {
                    let s = super::super::gpus::device_state(&state.gpu.states, inv, &v.address);
                    format!(": {}", s.words())
                })
                .unwrap_or_default();
            format!("{}{id}{now}", v.address)
        })
        .collect();
    list("VFIO devices", vfio, out);
    out.push(field(
        "serial/console",
        W,
        text(format!("{} / {}", s.serial, s.console)),
        t,
    ));
    out.push(field("autostart", W, text(yes_no(s.autostart)), t));
    out.push(field(
        "stop timeout",
        W,
        text(s.stop_timeout.to_string()),
        t,
    ));
}
