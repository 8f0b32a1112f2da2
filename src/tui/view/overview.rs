//! Overview: verdicts first (can each GPU be passed through?), then the checks with their
//! fixes, then one line each for the IOMMU and KVM.

use phyllome_widgets::{badge, fit, Tone};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::Frame;

use crate::fmt;
use crate::host::{CpuVirt, GpuRole, Inventory, Vendor};

use super::super::state::State;
use super::common::{check_tone, gpu_name, scrolled, verdict_column, verdict_tone, wrapped};

pub fn render(state: &State, frame: &mut Frame, area: Rect) {
    let Some(inv) = &state.inventory else { return };
    let lines = lines(state, inv, area.width.saturating_sub(2) as usize);
    scrolled(
        frame,
        area,
        "Overview",
        lines,
        state.overview_scroll,
        &state.theme,
    );
}

pub fn lines(state: &State, inv: &Inventory, width: usize) -> Vec<Line<'static>> {
    let t = &state.theme;
    let (g, p) = (&t.glyphs, &t.palette);
    let mut out = Vec::new();
    out.push(Line::styled(" GPU passthrough", p.title));
    if inv.gpus.is_empty() {
        out.push(Line::raw("   no GPU found"));
    }
    for gpu in &inv.gpus {
        let v = &gpu.passthrough.verdict;
        let mark = badge(verdict_tone(v), fmt::verdict(v), g, p);
        let pad = verdict_column(g).saturating_sub(mark.width());
        let mut role = String::new();
        if gpu.role == GpuRole::Management {
            role.push_str(" (management display)");
        }
        // The group is what moves with the card, so it belongs on the first screen.
        let group = gpu
            .iommu_group
            .map_or("no group".to_string(), |n| format!("group {n}"));
        let head = format!("{}  {group}  {}{role}", gpu.address, gpu_name(inv, gpu));
        let room = width.saturating_sub(3 + mark.width() + pad);
        out.push(Line::from(vec![
            Span::raw("   "),
            mark,
            Span::raw(" ".repeat(pad)),
            Span::raw(fit(&head, room, g.ellipsis)),
        ]));
        if let Some(reason) = gpu.passthrough.reasons.first() {
            out.extend(wrapped(reason, 3 + verdict_column(g), width, p.normal));
        }
    }
    out.push(Line::raw(""));
    out.push(Line::styled(" Checks", p.title));
    for c in &inv.checks {
        let mark = badge(check_tone(c.status), "", g, p);
        let text = format!("{}: {}", c.title, c.detail);
        let mut first = true;
        for l in phyllome_widgets::wrap(&text, width.saturating_sub(9).max(10)) {
            let lead = if first {
                let pad = 5usize.saturating_sub(mark.width());
                vec![
                    Span::raw("   "),
                    mark.clone(),
                    Span::raw(" ".repeat(pad + 1)),
                ]
            } else {
                vec![Span::raw(" ".repeat(9))]
            };
            first = false;
            let mut spans = lead;
            spans.push(Span::raw(l));
            out.push(Line::from(spans));
        }
        if let (Some(fix), true) = (&c.fix, c.status != crate::host::CheckStatus::Pass) {
            out.extend(wrapped(&format!("fix: {fix}"), 9, width, p.warn));
        }
    }
    out.push(Line::raw(""));
    out.push(iommu_line(inv, state));
    out.push(kvm_line(inv, state));
    if !inv.warnings.is_empty() {
        out.push(Line::raw(""));
        let title = format!(" Warnings ({})", inv.warnings.len());
        out.push(Line::styled(title, p.title));
        for w in &inv.warnings {
            out.extend(wrapped(&format!("{} {w}", g.bullet), 3, width, p.dim));
        }
    }
    out
}

fn iommu_line(inv: &Inventory, state: &State) -> Line<'static> {
    let t = &state.theme;
    let i = &inv.iommu;
    let tone = if i.enabled {
        Tone::Ready
    } else {
        Tone::Blocked
    };
    let mut parts = vec![if i.enabled {
        "on".to_string()
    } else {
        "off".to_string()
    }];
    match i.vendor {
        Vendor::Intel => parts.push("Intel VT-d".into()),
        Vendor::Amd => parts.push("AMD-Vi".into()),
        _ => {}
    }
    parts.push(format!("{} groups", i.group_count));
    if i.passthrough_mode {
        parts.push("pt mode".into());
    }
    match i.interrupt_remapping {
        Some(true) => parts.push("irq remap".into()),
        Some(false) => parts.push("no irq remap".into()),
        None => {}
    }
    if !i.enabled {
        parts.push(i.reason.clone());
    }
    Line::from(vec![
        Span::styled(" IOMMU  ", t.palette.title),
        badge(tone, &parts.join(", "), &t.glyphs, &t.palette),
    ])
}

fn kvm_line(inv: &Inventory, state: &State) -> Line<'static> {
    let t = &state.theme;
    let k = &inv.kvm;
    let tone = match (k.device_present, k.accessible) {
        (true, Some(true)) => Tone::Ready,
        (true, None) => Tone::Warn,
        _ => Tone::Blocked,
    };
    let mut parts = vec![match (k.device_present, k.accessible) {
        (true, Some(true)) => "/dev/kvm ok".to_string(),
        (true, Some(false)) => "/dev/kvm not accessible".to_string(),
        (true, None) => "/dev/kvm not opened".to_string(),
        _ => "no /dev/kvm".to_string(),
    }];
    match k.cpu_virtualization {
        CpuVirt::Vmx => parts.push("vmx".into()),
        CpuVirt::Svm => parts.push("svm".into()),
        CpuVirt::None => parts.push("no vmx/svm".into()),
        CpuVirt::Unknown => {}
    }
    if let Some(n) = k.max_vcpus {
        parts.push(format!("{n} vCPUs max"));
    }
    match &k.cloud_hypervisor {
        Some(b) => parts.push(format!(
            "cloud-hypervisor {}",
            b.version.as_deref().unwrap_or("(version unknown)")
        )),
        None => parts.push("no cloud-hypervisor".into()),
    }
    Line::from(vec![
        Span::styled(" KVM    ", t.palette.title),
        badge(tone, &parts.join(", "), &t.glyphs, &t.palette),
    ])
}
