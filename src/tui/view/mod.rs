//! Pure rendering: `render(&State, &mut Frame)` draws a whole screen and does no I/O.

mod common;
pub mod dashboard;
pub mod gpu_flow;
pub mod gpus;
pub mod graph;
pub mod groups;
pub mod host;
pub mod kvm;
pub mod layout;
pub mod overview;
pub mod popup;
pub mod power;
pub mod serial;
pub mod vm_charts;
pub mod vm_detail;
pub mod vm_disks;
pub mod vm_form;
pub mod vms;

use phyllome_widgets::{centered_rect, HelpPanel, KeyHints};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::modal::{self, Modal};
use super::state::{Load, State, View, MIN_COLS, MIN_ROWS};

pub fn render(state: &State, frame: &mut Frame) {
    let area = frame.area();
    // `phyllome top` draws the dashboard at any size: its columns shrink to fit.
    let small = if state.top {
        area.height < TOP_MIN_ROWS
    } else {
        area.width < MIN_COLS || area.height < MIN_ROWS
    };
    if small {
        too_small(state, frame, area);
        return;
    }
    let chrome = layout::chrome(area);
    if state.top {
        top_header(state, frame, chrome.header);
    } else {
        header(state, frame, chrome.header);
    }
    match (&state.inventory, &state.load) {
        // The VM screens and the dashboard do not need the host inventory.
        _ if state.view == View::Dashboard => dashboard::render_console(state, frame, chrome.body),
        // Neither does the Host view: it reads its own status.
        _ if state.view == View::Host => host::render(state, frame, chrome.body),
        _ if state.view == View::Vms => match (&state.vms.form, &state.vms.detail_of) {
            (Some(form), _) => vm_form::render(state, form, frame, chrome.body),
            (None, Some(_)) => vm_detail::render(state, frame, chrome.body),
            (None, None) => vms::render(state, frame, chrome.body),
        },
        (Some(_), _) => match state.view {
            View::Overview => overview::render(state, frame, chrome.body),
            View::Groups => groups::render(state, frame, chrome.body),
            View::Gpus => gpus::render(state, frame, chrome.body),
            View::Kvm => kvm::render(state, frame, chrome.body),
            View::Vms | View::Dashboard | View::Host => {}
        },
        (None, Load::Failed(e)) => {
            message(frame, chrome.body, &format!("Cannot read the host: {e}"))
        }
        (None, _) => message(frame, chrome.body, "Reading the host..."),
    }
    // Overlays bottom first, so the one that has the keys is drawn last, on top.
    let layers = modal::layers(state);
    if layers.contains(&Modal::Gpu) {
        gpu_flow::render(state, frame, chrome.body);
    }
    footer(state, &layers, frame, chrome.footer);
    for m in layers.iter().rev() {
        match m {
            Modal::Help => {
                let t = &state.theme;
                let panel = HelpPanel::new(&state.help_sections, t.glyphs)
                    .palette(t.palette)
                    .scroll(state.help.unwrap_or_default());
                frame.render_widget(panel, area);
            }
            Modal::Confirm => {
                if let Some(c) = &state.vms.confirm {
                    popup::confirm(state, c, frame, area);
                }
            }
            Modal::Power => {
                if let Some(pp) = &state.power {
                    power::render(state, pp, frame, area);
                }
            }
            Modal::Error => {
                if let Some(e) = &state.vms.error {
                    popup::error(state, e, frame, area);
                }
            }
            Modal::Serial => {
                if let Some(p) = &state.serial {
                    serial::render(state, p, frame, chrome.body);
                    serial::footer(state, p, frame, chrome.footer);
                }
            }
            // Drawn in the body (the GPU flow with its question, the form) or the footer.
            Modal::GpuConfirm | Modal::Gpu | Modal::Form | Modal::Filter => {}
        }
    }
}

/// Title, host summary, table header and one row, key bar.
const TOP_MIN_ROWS: u16 = 4;

fn too_small(state: &State, frame: &mut Frame, area: Rect) {
    let text = if state.top {
        format!("terminal too small ({}x{})", area.width, area.height)
    } else {
        format!(
            "terminal too small ({}x{}), need {MIN_COLS}x{MIN_ROWS}",
            area.width, area.height
        )
    };
    let lines = phyllome_widgets::wrap(&text, area.width.max(1) as usize);
    let h = lines.len() as u16;
    let rect = centered_rect(area, area.width, h);
    let lines: Vec<Line> = lines.into_iter().map(Line::raw).collect();
    frame.render_widget(
        Paragraph::new(lines)
            .centered()
            .style(state.theme.palette.bad),
        rect,
    );
}

fn message(frame: &mut Frame, area: Rect, text: &str) {
    let lines: Vec<Line> = phyllome_widgets::wrap(text, area.width.saturating_sub(4) as usize)
        .into_iter()
        .map(Line::raw)
        .collect();
    let rect = centered_rect(area, area.width, lines.len() as u16);
    frame.render_widget(Paragraph::new(lines).centered(), rect);
}

fn header(state: &State, frame: &mut Frame, area: Rect) {
    let (g, p) = (&state.theme.glyphs, &state.theme.palette);
    let host = state.host_name.as_deref().unwrap_or("host");
    let lead = vec![
        Span::styled(" phyllome ", p.title),
        Span::styled(g.separator, p.dim),
        Span::raw(format!(" {host} ")),
        Span::styled(g.separator, p.dim),
        Span::raw(" "),
    ];
    let mut right = Vec::new();
    match &state.load {
        Load::Loading => right.push("reading...".to_string()),
        Load::Failed(_) if state.inventory.is_some() => right.push("refresh failed".to_string()),
        _ => {}
    }
    if state.read_only {
        right.push("read-only".to_string());
    }
    let right = right.join("  ");
    let fits = |l: &Line| l.width() + right.len() < area.width as usize;
    let mut left = Line::from(lead.clone());
    left.spans.extend(view_tabs(state, false));
    // Too narrow for everything: the host's name goes first, then the space around the
    // views' names, before the status on the right does ("read-only" must always show).
    if !fits(&left) {
        left.spans.drain(2..4);
    }
    if !fits(&left) {
        left = Line::from(lead);
        left.spans.drain(2..4);
        left.spans.extend(view_tabs(state, true));
    }
    let pad = (area.width as usize).saturating_sub(left.width() + right.len() + 1);
    let mut line = left;
    line.spans.push(Span::raw(" ".repeat(pad)));
    line.spans.push(Span::styled(right, p.warn));
    frame.render_widget(line, area);
}

/// The views' names, the current one in brackets; `compact` puts one space between them.
fn view_tabs(state: &State, compact: bool) -> Vec<Span<'static>> {
    let p = &state.theme.palette;
    let mut spans = Vec::new();
    for v in View::ALL {
        let name = match v {
            View::Overview => "Overview",
            View::Groups => "Groups",
            View::Gpus => "GPUs",
            View::Kvm => "KVM",
            View::Vms => "VMs",
            View::Dashboard => "Dashboard",
            View::Host => "Host",
        };
        if compact && !spans.is_empty() {
            spans.push(Span::raw(" "));
        }
        // Brackets mark the current view so it reads without reverse video.
        if v == state.view {
            spans.push(Span::styled(format!("[{name}]"), p.selected));
        } else if compact {
            spans.push(Span::raw(name));
        } else {
            spans.push(Span::raw(format!(" {name} ")));
        }
    }
    spans
}

/// `phyllome top`'s title line: no views to list, the VM whose charts are open.
fn top_header(state: &State, frame: &mut Frame, area: Rect) {
    let t = &state.theme;
    let title = match &state.dash.detail {
        Some(n) => format!(" phyllome top {} {n}", t.glyphs.separator),
        None => " phyllome top".to_string(),
    };
    let w = area.width as usize;
    frame.render_widget(Line::styled(format!("{title:<w$}"), t.palette.title), area);
}

fn footer(state: &State, layers: &[Modal], frame: &mut Frame, area: Rect) {
    let t = &state.theme;
    // The bar speaks for the topmost overlay that has keys of its own to show there; popups
    // above it say theirs in their frame.
    let owner = layers.iter().find(|m| {
        matches!(
            m,
            Modal::Filter | Modal::GpuConfirm | Modal::Gpu | Modal::Form
        )
    });
    if owner == Some(&Modal::Filter) {
        let line = Line::from(vec![
            Span::styled("/", t.palette.key),
            Span::raw(format!("{}_", state.filter.text)),
            Span::styled("   enter keep  esc clear", t.palette.dim),
        ]);
        frame.render_widget(line, area);
        return;
    }
    let form_hints;
    let gpu_flow_hints;
    let gpu_open = matches!(owner, Some(Modal::GpuConfirm | Modal::Gpu));
    let hints = if let Some(h) = gpu_flow::hints(state).filter(|_| gpu_open) {
        gpu_flow_hints = h;
        &gpu_flow_hints
    } else if state.view == View::Gpus {
        &state.gpu_hints
    } else if owner == Some(&Modal::Form) {
        form_hints = vm_form::hints();
        &form_hints
    } else if state.view == View::Vms {
        &state.vm_hints
    } else if state.view == View::Dashboard && state.dash.detail.is_some() {
        &state.dash_chart_hints
    } else if state.view == View::Dashboard {
        &state.dash_hints
    } else if state.view == View::Host {
        &state.host_hints
    } else {
        &state.hints
    };
    frame.render_widget(KeyHints::new(hints, t.glyphs).palette(t.palette), area);
}
