//! IOMMU groups: the group tree and the selected device's details.

use phyllome_widgets::{badge, fit, width as width_of, GroupTree, TreeGroup, TreeMember, TreeRow};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::fmt;
use crate::host::{Gpu, Inventory, PciAddress, PciDevice, PowerState, Verdict};

use super::super::state::{State, Theme};
use super::common::{gpu_name, short_name, verdict_tone, wrapped};
use super::layout;

/// The tree rows and, in the same order, the group ids and member addresses they show.
pub struct Tree {
    pub groups: Vec<TreeGroup>,
    pub members: Vec<(u32, Vec<PciAddress>)>,
}

fn matches(filter: &str, text: &str) -> bool {
    filter.is_empty() || text.to_lowercase().contains(&filter.to_lowercase())
}

pub fn tree(state: &State) -> Tree {
    let mut out = Tree {
        groups: Vec::new(),
        members: Vec::new(),
    };
    let Some(inv) = &state.inventory else {
        return out;
    };
    let t = &state.theme;
    for group in &inv.iommu_groups {
        let label = format!("Group {}", group.id);
        let mut members = Vec::new();
        let mut text = label.clone();
        for addr in &group.devices {
            let m = member(state, inv, addr);
            text.push(' ');
            text.push_str(&m.label);
            text.push(' ');
            text.push_str(&m.detail);
            text.push(' ');
            text.push_str(&m.tail);
            members.push(m);
        }
        if !matches(&state.filter.text, &text) {
            continue;
        }
        out.groups.push(TreeGroup {
            badge: group_badge(inv, group.id, t),
            label,
            members,
        });
        out.members.push((group.id, group.devices.clone()));
    }
    out
}

fn member(state: &State, inv: &Inventory, addr: &PciAddress) -> TreeMember {
    match inv.device(addr) {
        Some(d) => TreeMember {
            label: d.address.to_string(),
            detail: format!("{}  {}", d.class_name, short_name(d)),
            // The IDs owners paste into `vfio-pci.ids=` stay whole; a long name is cut instead.
            tail: format!(
                "{}  {}",
                d.ids(),
                super::super::gpus::short_words(&super::super::gpus::device_state(
                    &state.gpu.states,
                    inv,
                    addr
                ))
            ),
            bridge: d.class.is_bridge(),
            ..Default::default()
        },
        None => TreeMember {
            label: addr.to_string(),
            detail: "(not in the device list)".into(),
            ..Default::default()
        },
    }
}

fn gpus_in(inv: &Inventory, group: u32) -> Vec<&Gpu> {
    inv.gpus
        .iter()
        .filter(|g| g.iommu_group == Some(group))
        .collect()
}

fn worst(gpus: &[&Gpu]) -> Option<Verdict> {
    let rank = |v: &Verdict| match v {
        Verdict::Ready => 0,
        Verdict::Warn => 1,
        Verdict::Blocked => 2,
    };
    gpus.iter()
        .map(|g| g.passthrough.verdict.clone())
        .max_by_key(rank)
}

fn group_badge(inv: &Inventory, group: u32, t: &Theme) -> Option<(String, ratatui::style::Style)> {
    let gpus = gpus_in(inv, group);
    let v = worst(&gpus)?;
    let noun = if gpus.len() == 1 {
        "GPU".to_string()
    } else {
        format!("{} GPUs", gpus.len())
    };
    let span = badge(
        verdict_tone(&v),
        &format!("{noun}: {}", fmt::verdict(&v)),
        &t.glyphs,
        &t.palette,
    );
    Some((span.content.into_owned(), span.style))
}

pub fn render(state: &State, frame: &mut Frame, area: Rect) {
    let Some(inv) = &state.inventory else { return };
    let t = &state.theme;
    let (tree_area, detail_area) = layout::groups(area);
    let rows = tree(state);
    let mut title = format!(" IOMMU groups ({}) ", inv.iommu_groups.len());
    if !state.filter.text.is_empty() {
        title = format!(
            " IOMMU groups, filter \"{}\" ({}) ",
            state.filter.text,
            rows.groups.len()
        );
    }
    let block = t.glyphs.block().title(Line::styled(title, t.palette.title));
    if rows.groups.is_empty() {
        let text = if inv.iommu_groups.is_empty() {
            "No IOMMU groups: the IOMMU is off (see Overview)."
        } else {
            "No group matches the filter."
        };
        frame.render_widget(Paragraph::new(format!(" {text}")).block(block), tree_area);
    } else {
        let mut tree_state = state.groups;
        let widget = GroupTree::new(&rows.groups, t.glyphs)
            .palette(t.palette)
            .block(block);
        frame.render_stateful_widget(widget, tree_area, &mut tree_state);
    }
    let width = detail_area.width.saturating_sub(2) as usize;
    let lines = match GroupTree::locate(&rows.groups, state.groups.selected()) {
        Some(TreeRow::Member(gi, mi)) => {
            let addr = rows.members[gi].1[mi];
            match inv.device(&addr) {
                Some(d) => {
                    let mut lines = device_lines(d, width, t);
                    // Where it stands, right under its name: host driver, vfio-pci, a VM...
                    let now = super::super::gpus::device_state(&state.gpu.states, inv, &addr);
                    lines.insert(
                        1.min(lines.len()),
                        Line::from(vec![
                            Span::styled(" state ", t.palette.dim),
                            Span::raw(now.words()),
                        ]),
                    );
                    lines
                }
                None => vec![Line::raw(format!(" {addr}: not in the device list"))],
            }
        }
        Some(TreeRow::Group(gi)) => group_lines(inv, rows.members[gi].0, width, t),
        None => Vec::new(),
    };
    let block = t
        .glyphs
        .block()
        .title(Line::styled(" Details ", t.palette.title));
    frame.render_widget(Paragraph::new(lines).block(block), detail_area);
}

fn group_lines(inv: &Inventory, id: u32, width: usize, t: &Theme) -> Vec<Line<'static>> {
    let Some(group) = inv.iommu_groups.iter().find(|g| g.id == id) else {
        return Vec::new();
    };
    let bridges = group
        .devices
        .iter()
        .filter(|a| inv.device(a).is_some_and(|d| d.class.is_bridge()))
        .count();
    let endpoints = group.devices.len() - bridges;
    let summary = match (endpoints, bridges) {
        (0, _) => format!("Group {id}: bridges only, nothing to pass through"),
        (n, 0) => format!("Group {id}: {n} device(s), all go to the same guest"),
        (n, b) => format!("Group {id}: {n} device(s) go together; {b} bridge(s) stay"),
    };
    let mut out = wrapped(&summary, 1, width, t.palette.normal);
    for gpu in gpus_in(inv, id) {
        let v = &gpu.passthrough.verdict;
        let verdict = badge(verdict_tone(v), fmt::verdict(v), &t.glyphs, &t.palette);
        // `name [vendor:device]` as `lspci -nn` prints it: a long name is cut, never the IDs.
        let head = format!("  {}  ", gpu.address);
        let ids = inv
            .device(&gpu.address)
            .map(|d| format!(" {}", d.ids()))
            .unwrap_or_default();
        let room =
            width.saturating_sub(1 + width_of(&verdict.content) + width_of(&head) + width_of(&ids));
        out.push(Line::from(vec![
            Span::raw(" "),
            verdict,
            Span::raw(head),
            Span::raw(fit(&gpu_name(inv, gpu), room.max(6), t.glyphs.ellipsis)),
            Span::raw(ids),
        ]));
        for r in &gpu.passthrough.reasons {
            out.extend(wrapped(
                &format!("{} {r}", t.glyphs.bullet),
                3,
                width,
                t.palette.normal,
            ));
        }
    }
    out
}

fn power(p: &PowerState) -> &'static str {
    match p {
        PowerState::D0 => "D0",
        PowerState::D1 => "D1",
        PowerState::D2 => "D2",
        PowerState::D3hot => "D3hot (asleep)",
        PowerState::D3cold => "D3cold (asleep)",
        PowerState::Unknown => "unknown",
    }
}

fn device_lines(d: &PciDevice, width: usize, t: &Theme) -> Vec<Line<'static>> {
    let dim = t.palette.dim;
    let kv = |pairs: Vec<(&str, String)>| {
        let mut spans = Vec::new();
        for (k, v) in pairs {
            spans.push(Span::styled(format!(" {k} "), dim));
            spans.push(Span::raw(format!("{v} ")));
        }
        Line::from(spans)
    };
    let reset = match &d.reset_methods {
        None => "unknown".to_string(),
        Some(m) if m.is_empty() => "none".to_string(),
        Some(m) => m.join(","),
    };
    let boot_vga = d.boot_vga.map_or("-", fmt::yes_no).to_string();
    let bars = if d.bars.is_empty() {
        "none".to_string()
    } else {
        d.bars
            .iter()
            .map(|b| {
                let kind = if b.io {
                    " io"
                } else if b.prefetchable {
                    " pref"
                } else {
                    ""
                };
                format!("{}:{}{kind}", b.index, fmt::size(b.size))
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    let ids = match (&d.subsystem_vendor_id, &d.subsystem_device_id) {
        (Some(v), Some(s)) => format!("{}:{} (sub {v}:{s})", d.vendor_id, d.device_id),
        _ => format!("{}:{}", d.vendor_id, d.device_id),
    };
    let mut out = vec![Line::from(vec![
        Span::styled(format!(" {} ", d.address), t.palette.title),
        Span::raw(phyllome_widgets::fit(
            &d.display_name(),
            width.saturating_sub(15),
            t.glyphs.ellipsis,
        )),
    ])];
    out.push(kv(vec![("class", d.class_name.to_string()), ("ids", ids)]));
    out.push(kv(vec![
        ("driver", d.driver.clone().unwrap_or_else(|| "none".into())),
        (
            "override",
            d.driver_override.clone().unwrap_or_else(|| "-".into()),
        ),
        ("NUMA", d.numa_node.map_or("-".into(), |n| n.to_string())),
    ]));
    out.push(kv(vec![
        ("reset", reset),
        ("boot_vga", boot_vga),
        ("power", power(&d.power_state).to_string()),
        ("ROM", fmt::yes_no(d.rom).to_string()),
    ]));
    out.push(kv(vec![("BARs", bars)]));
    out
}
