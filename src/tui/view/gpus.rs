//! GPUs: one row each with its verdict, then everything about the selected one.

use phyllome_widgets::{badge, fit, width as width_of, Tone};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::host::{Gpu, GpuRole, Inventory};
use crate::ops::gpu::DeviceState;

use super::super::gpus::{device_state, short_words, visible};
use crate::fmt;

use super::super::state::State;
use super::common::{field, gpu_name, scrolled, verdict_column, verdict_tone, wrapped};
use super::layout;

pub fn render(state: &State, frame: &mut Frame, area: Rect) {
    let Some(inv) = &state.inventory else { return };
    let t = &state.theme;
    let (g, p) = (&t.glyphs, &t.palette);
    let gpus = visible(inv, &state.filter.text);
    let (list_area, detail_area) = layout::gpus(area, gpus.len());
    let height = layout::inner_height(list_area);
    let selected = state.gpu_selected.min(gpus.len().saturating_sub(1));
    let offset = (selected + 1).saturating_sub(height);
    let width = list_area.width.saturating_sub(2) as usize;
    let mut lines = Vec::new();
    for (i, gpu) in gpus.iter().enumerate().skip(offset).take(height) {
        let v = &gpu.passthrough.verdict;
        let mark = badge(verdict_tone(v), fmt::verdict(v), g, p);
        let pad = verdict_column(g).saturating_sub(mark.width());
        let role = match gpu.role {
            GpuRole::Management => "  [management]",
            GpuRole::Passthrough => "",
        };
        // Where it stands (host driver, vfio-pci, in use by a VM, ...), not just its driver.
        let now = short_words(&device_state(&state.gpu.states, inv, &gpu.address));
        let cursor = if i == selected { g.cursor } else { " " };
        let room = width.saturating_sub(2 + mark.width() + pad);
        let text = gpu_row_text(inv, gpu, &now, role, room, g.ellipsis);
        let mut line = Line::from(vec![
            Span::raw(format!("{cursor} ")),
            mark,
            Span::raw(" ".repeat(pad)),
            Span::raw(fit(&text, room, g.ellipsis)),
        ]);
        if i == selected {
            line = line.style(p.selected);
        }
        lines.push(line);
    }
    let title = format!(" GPUs ({}) ", gpus.len());
    let mut block = g.block().title(Line::styled(title, p.title));
    if let Some(m) = &state.gpu.message {
        block = block.title_bottom(Line::styled(format!(" {m} "), p.warn));
    }
    if gpus.is_empty() {
        frame.render_widget(Paragraph::new(" No GPU found.").block(block), list_area);
        return;
    }
    frame.render_widget(Paragraph::new(lines).block(block), list_area);
    let detail_w = detail_area.width.saturating_sub(2) as usize;
    let detail = details(state, inv, gpus[selected], detail_w);
    scrolled(frame, detail_area, "Details", detail, 0, t);
}

/// `address  name [vendor:device]  state`: a long name is cut, never the IDs owners copy.
fn gpu_row_text(
    inv: &Inventory,
    gpu: &Gpu,
    now: &str,
    role: &str,
    room: usize,
    ellipsis: &str,
) -> String {
    let head = format!("{}  ", gpu.address);
    let tail = match ids(inv, gpu) {
        Some(ids) => format!(" {ids}  {now}{role}"),
        None => format!("  {now}{role}"),
    };
    let name_room = room.saturating_sub(width_of(&head) + width_of(&tail));
    if name_room < 6 {
        return fit(
            &format!("{head}{}{tail}", gpu_name(inv, gpu)),
            room,
            ellipsis,
        );
    }
    let name = fit(&gpu_name(inv, gpu), name_room, ellipsis);
    fit(&format!("{head}{name}{tail}"), room, ellipsis)
}

/// The GPU's `[vendor:device]`, from its device entry.
fn ids(inv: &Inventory, gpu: &Gpu) -> Option<String> {
    inv.device(&gpu.address).map(crate::host::PciDevice::ids)
}

fn details(state: &State, inv: &Inventory, gpu: &Gpu, width: usize) -> Vec<Line<'static>> {
    let t = &state.theme;
    let (g, p) = (&t.glyphs, &t.palette);
    let w = 16;
    let role = match gpu.role {
        GpuRole::Passthrough => "passthrough candidate",
        GpuRole::Management => "management display (stays with the host)",
    };
    let companions = if gpu.companions.is_empty() {
        "none".to_string()
    } else {
        gpu.companions
            .iter()
            .map(|a| {
                let now = short_words(&device_state(&state.gpu.states, inv, a));
                match inv.device(a) {
                    Some(d) => format!("{a} ({}, {now})", d.class_name),
                    None => a.to_string(),
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let outputs = if gpu.outputs.is_empty() {
        "none".to_string()
    } else {
        gpu.outputs
            .iter()
            .map(|o| format!("{} {}", o.name, if o.connected { "connected" } else { "-" }))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let console = if gpu.shows_host_console {
        badge(Tone::Warn, "yes: the host text console is drawn here", g, p)
    } else {
        Span::raw("no")
    };
    let v = &gpu.passthrough.verdict;
    let mut out = vec![
        {
            let head = format!(" {} ", gpu.address);
            let tail = ids(inv, gpu).map(|i| format!(" {i}")).unwrap_or_default();
            let room = width.saturating_sub(width_of(&head) + width_of(&tail));
            Line::from(vec![
                Span::styled(head, p.title),
                Span::raw(fit(&gpu.name, room.max(6), g.ellipsis)),
                Span::raw(tail),
            ])
        },
        field(
            "verdict",
            w,
            vec![badge(verdict_tone(v), fmt::verdict(v), g, p)],
            t,
        ),
        field("role", w, vec![Span::raw(role)], t),
        field("state", w, vec![state_span(state, inv, gpu)], t),
        field(
            "group",
            w,
            vec![Span::raw(
                gpu.iommu_group.map_or("none".into(), |n| n.to_string()),
            )],
            t,
        ),
        field("companions", w, vec![Span::raw(companions)], t),
        field(
            "driver",
            w,
            vec![Span::raw(
                gpu.driver.clone().unwrap_or_else(|| "none".into()),
            )],
            t,
        ),
        field("boot VGA", w, vec![Span::raw(fmt::yes_no(gpu.boot_vga))], t),
        field("host console", w, vec![console], t),
        field("outputs", w, vec![Span::raw(outputs)], t),
    ];
    if !gpu.drm_nodes.is_empty() {
        out.push(field(
            "DRM nodes",
            w,
            vec![Span::raw(gpu.drm_nodes.join(", "))],
            t,
        ));
    }
    if !gpu.passthrough.reasons.is_empty() {
        out.push(Line::styled(" Reasons", p.title));
        for r in &gpu.passthrough.reasons {
            out.extend(wrapped(&format!("{} {r}", g.bullet), 2, width, p.normal));
        }
    }
    out
}

/// The device state, loud when it needs the owner (a failed release, a needed reboot).
fn state_span(state: &State, inv: &Inventory, gpu: &Gpu) -> Span<'static> {
    let (g, p) = (&state.theme.glyphs, &state.theme.palette);
    let s = device_state(&state.gpu.states, inv, &gpu.address);
    match &s {
        DeviceState::ReleaseFailed { .. } => badge(Tone::Blocked, &s.words(), g, p),
        DeviceState::NeedsReboot { reason } => {
            badge(Tone::Warn, &format!("{}: {reason}", s.words()), g, p)
        }
        _ => Span::raw(s.words()),
    }
}
