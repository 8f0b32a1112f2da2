//! KVM and the rest of the virtualization stack: /dev/kvm, CPU support, hugepages, VFIO
//! modules, Cloud Hypervisor and its firmware.

use phyllome_widgets::{badge, Tone};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::Frame;

use crate::host::{CpuVirt, Inventory};

use super::super::state::State;
use super::common::{field, scrolled};

pub fn render(state: &State, frame: &mut Frame, area: Rect) {
    let Some(inv) = &state.inventory else { return };
    let lines = lines(state, inv, area.width.saturating_sub(2) as usize);
    scrolled(frame, area, "KVM", lines, state.kvm_scroll, &state.theme);
}

pub fn lines(state: &State, inv: &Inventory, width: usize) -> Vec<Line<'static>> {
    let t = &state.theme;
    let (g, p) = (&t.glyphs, &t.palette);
    let k = &inv.kvm;
    let w = 17;
    let mark = |tone: Tone, text: &str| vec![badge(tone, text, g, p)];
    let dev = match (k.device_present, k.accessible) {
        (true, Some(true)) => mark(Tone::Ready, "present, accessible"),
        (true, Some(false)) => mark(Tone::Blocked, "present, not accessible (permissions?)"),
        (true, None) => mark(Tone::Warn, "present, not a device node (not opened)"),
        _ => mark(Tone::Blocked, "missing (kvm module not loaded?)"),
    };
    let cpu = match k.cpu_virtualization {
        CpuVirt::Vmx => mark(Tone::Ready, "vmx (Intel VT-x)"),
        CpuVirt::Svm => mark(Tone::Ready, "svm (AMD-V)"),
        CpuVirt::None => mark(Tone::Blocked, "none: enable VT-x/AMD-V in firmware"),
        CpuVirt::Unknown => mark(Tone::Warn, "unknown"),
    };
    let nested = match k.nested {
        Some(true) => "on",
        Some(false) => "off",
        None => "unknown",
    };
    let opt = |v: Option<String>| v.unwrap_or_else(|| "unknown".into());
    let mut out = vec![
        field("/dev/kvm", w, dev, t),
        field(
            "API version",
            w,
            vec![Span::raw(opt(k.api_version.map(|v| v.to_string())))],
            t,
        ),
        field("CPU support", w, cpu, t),
        field("nested", w, vec![Span::raw(nested)], t),
        field(
            "max vCPUs",
            w,
            vec![Span::raw(opt(k.max_vcpus.map(|v| v.to_string())))],
            t,
        ),
    ];
    let ch = match &k.cloud_hypervisor {
        Some(b) => mark(
            Tone::Ready,
            &format!(
                "{} ({})",
                b.path,
                b.version.as_deref().unwrap_or("version unknown")
            ),
        ),
        None => mark(Tone::Blocked, "not found"),
    };
    out.push(field("cloud-hypervisor", w, ch, t));
    let firmware = if k.firmware.is_empty() {
        mark(Tone::Warn, "none found")
    } else {
        vec![Span::raw(k.firmware.join(", "))]
    };
    out.push(field("firmware", w, firmware, t));
    let vfio = if k.vfio_modules.is_empty() {
        mark(Tone::Warn, "none loaded")
    } else {
        vec![Span::raw(k.vfio_modules.join(", "))]
    };
    out.push(field("VFIO modules", w, vfio, t));
    if k.hugepages.is_empty() {
        out.push(field("hugepages", w, vec![Span::raw("none")], t));
    }
    for (i, h) in k.hugepages.iter().enumerate() {
        let label = if i == 0 { "hugepages" } else { "" };
        let text = format!(
            "{} KiB pages: {} total, {} free",
            h.size_kib, h.total, h.free
        );
        out.push(field(label, w, vec![Span::raw(text)], t));
    }
    out.push(Line::raw(""));
    let caps: Vec<String> = k
        .capabilities
        .iter()
        .map(|c| format!("{} {}", if c.supported { g.ok } else { g.bad }, c.name))
        .collect();
    out.push(Line::styled(" Capabilities", p.title));
    if caps.is_empty() {
        out.push(Line::raw("   unknown"));
    } else {
        // Columns keep each mark next to its name, which word wrapping would not.
        let cell = caps
            .iter()
            .map(|c| phyllome_widgets::width(c))
            .max()
            .unwrap_or(0)
            + 3;
        let per_line = (width.saturating_sub(3) / cell).max(1);
        for row in caps.chunks(per_line) {
            let text: String = row.iter().map(|c| format!("{c:<cell$}")).collect();
            out.push(Line::raw(format!("   {}", text.trim_end())));
        }
    }
    out
}
