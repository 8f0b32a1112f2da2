//! The VM list: one row per definition (and per VMM whose definition is gone), with its
//! state as Cloud Hypervisor reports it, what runs on it, and actions under way.

use phyllome_widgets::{fit, width};
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::vmm::manager::RunState;

use super::super::state::{State, Theme};
use super::super::vms::VmRow;
use crate::fmt;

const STATE_W: usize = 15;
/// Everything right of the name: state, cpu, memory, uptime, disk, net, vfio, auto.
const TAIL: &str = "CPU  MEMORY  UPTIME  DISK  NET  VFIO  AUTO";

pub fn render(state: &State, frame: &mut Frame, area: Rect) {
    let t = &state.theme;
    let (g, p) = (&t.glyphs, &t.palette);
    let vms = &state.vms;
    let rows = vms.visible(&state.filter.text);
    let mut title = format!(" VMs ({}) ", vms.rows.len());
    if !state.filter.text.is_empty() {
        title = format!(
            " VMs ({} of {}, filter: {}) ",
            rows.len(),
            vms.rows.len(),
            state.filter.text
        );
    }
    let block = g.block().title(Line::styled(title, p.title));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let w = inner.width as usize;
    let name_w = w
        .saturating_sub(2 + STATE_W + 1 + width(TAIL) + 1)
        .clamp(8, 32);
    let height = inner.height as usize;
    let mut lines = vec![Line::styled(
        format!("  {:<name_w$} {:<STATE_W$} {TAIL}", "NAME", "STATE"),
        p.dim,
    )];
    // Two rows stay for the message line under the list.
    let list_h = height.saturating_sub(3);
    let offset = vms.selected.saturating_sub(list_h.saturating_sub(1));
    if !vms.loaded {
        lines.push(Line::raw("  Reading VMs..."));
    } else if vms.rows.is_empty() {
        let hint = if state.read_only {
            "  No VMs defined."
        } else {
            "  No VMs defined. Press n to define one."
        };
        lines.push(Line::raw(hint));
    }
    for (i, row) in rows.iter().enumerate().skip(offset).take(list_h) {
        lines.push(row_line(state, row, i == vms.selected, name_w, w));
    }
    frame.render_widget(Paragraph::new(lines), inner);
    let message = match (&vms.list_error, &vms.message) {
        (Some(e), _) => Some((format!("refresh failed: {e}"), p.bad)),
        (None, Some(m)) => Some((m.clone(), p.normal)),
        _ => None,
    };
    if let (Some((text, style)), true) = (message, inner.height >= 2) {
        let y = inner.bottom() - 1;
        let text = fit(&format!(" {text}"), w, g.ellipsis);
        frame.render_widget(
            Line::styled(text, style),
            Rect::new(inner.x, y, inner.width, 1),
        );
    }
}

pub fn state_style(s: RunState, t: &Theme) -> Style {
    let p = &t.palette;
    match s {
        RunState::Running => p.ok,
        RunState::Paused | RunState::Shutdown | RunState::BreakPoint | RunState::Unknown => p.warn,
        RunState::Unresponsive => p.bad,
        RunState::Stopped => p.dim,
        RunState::Created | RunState::Starting => p.info,
    }
}

fn row_line(state: &State, r: &VmRow, selected: bool, name_w: usize, w: usize) -> Line<'static> {
    let t = &state.theme;
    let (g, p) = (&t.glyphs, &t.palette);
    let mark = if selected {
        format!("{} ", g.cursor)
    } else {
        "  ".to_string()
    };
    let name = fit(&r.name, name_w, g.ellipsis);
    let mut spans = vec![
        Span::styled(mark, p.key),
        Span::raw(format!("{name:<name_w$} ")),
    ];
    let pending = state.vms.pending.get(&r.name);
    let invalid = r.error.is_some() && r.state == RunState::Stopped && pending.is_none();
    if invalid {
        let label = if r.defined {
            "invalid"
        } else {
            "no definition"
        };
        let rest = w.saturating_sub(2 + name_w + 1 + STATE_W + 1);
        let err = r.error.as_deref().unwrap_or("");
        // "FILE is not a valid VM definition:" then the problems: the problems say more.
        let lines: Vec<&str> = err.lines().map(str::trim).collect();
        let problems = match lines.split_first() {
            Some((head, rest)) if head.ends_with(':') && !rest.is_empty() => rest,
            _ => &lines[..],
        };
        let first = crate::fmt::printable(&problems.join("; ")).into_owned();
        spans.push(Span::styled(format!("{label:<STATE_W$} "), p.bad));
        spans.push(Span::styled(fit(&first, rest, g.ellipsis), p.bad));
    } else {
        let (word, style) = match pending {
            Some(&op) => (state.vms.progress(&r.name, op), p.warn),
            None => (r.state.as_str().to_string(), state_style(r.state, t)),
        };
        spans.push(Span::styled(format!("{word:<STATE_W$} "), style));
        let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        let tail = format!(
            "{:>3}  {:>6}  {:>6}  {:>4}  {:>3}  {:>4}  {:>4}",
            opt(r.vcpus.map(|c| c.to_string())),
            opt(r.memory_bytes.map(fmt::size)),
            opt(r.uptime_secs.map(fmt::uptime)),
            r.disks,
            r.nets,
            r.vfio,
            if r.autostart { "yes" } else { "" },
        );
        spans.push(Span::raw(tail));
    }
    let line = Line::from(spans);
    if selected {
        let pad = w.saturating_sub(line.width());
        let mut line = line;
        line.spans.push(Span::raw(" ".repeat(pad)));
        line.style(p.selected)
    } else {
        line
    }
}
