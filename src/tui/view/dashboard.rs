//! The dashboard: a host summary, then one row per VM with its state, CPU % and a sweep graph
//! of it, memory used/size, and disk and network rates. Pure: draws a [`Dashboard`].

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::Frame;

use crate::fmt;
use crate::monitor::dashboard::{Dashboard, Held};
use crate::monitor::history::VmHistory;
use crate::tui::state::Theme;

use super::graph::{self, Sweep};

/// Lines of the host summary above the table.
pub const HOST_LINES: u16 = 2;

/// Rows of VMs that fit in `area` (for paging).
pub fn visible_rows(area: Rect) -> usize {
    area.height.saturating_sub(HOST_LINES + 1) as usize
}

struct Columns {
    name: usize,
    spark: usize,
}

const STATE_W: usize = 8;
const CPU_W: usize = 5;
const MEM_W: usize = 11;
const IO_W: usize = 11;

fn columns(width: u16, low_bandwidth: bool) -> Columns {
    // One leading space, then the fixed columns each followed by a space.
    // Marker, name gap, state, cpu with its spaces, the spaces around the three last columns,
    // and one spare column at the right edge.
    let fixed = 1 + 1 + STATE_W + (CPU_W + 2) + 1 + MEM_W + 1 + IO_W + 1 + IO_W + 1;
    let rest = (width as usize).saturating_sub(fixed);
    let spark = if low_bandwidth || rest < 20 {
        0
    } else {
        (rest - 12).min(40)
    };
    Columns {
        name: rest.saturating_sub(spark).max(4),
        spark,
    }
}

pub fn render(d: &Dashboard, filter: &str, theme: &Theme, frame: &mut Frame, area: Rect) {
    let buf = frame.buffer_mut();
    let p = &theme.palette;
    let width = area.width as usize;
    for (i, line) in host_lines(d, theme).into_iter().enumerate() {
        buf.set_line(area.x, area.y + i as u16, &pad(line, width), area.width);
    }
    let cols = columns(area.width, d.low_bandwidth);
    let header_y = area.y + HOST_LINES;
    let mut head = format!(
        " {:<nw$} {:<STATE_W$} {:>CPU_W$} ",
        "NAME",
        "STATE",
        "CPU%",
        nw = cols.name
    );
    if cols.spark > 0 {
        head.push_str(&format!("{:<w$} ", "CPU HISTORY", w = cols.spark));
    }
    head.push_str(&format!(
        "{:>MEM_W$} {:>IO_W$} {:>IO_W$}",
        "MEM USE/SIZE", "DISK R/W", "NET RX/TX"
    ));
    buf.set_line(
        area.x,
        header_y,
        &pad(Line::styled(head, p.title), width),
        area.width,
    );

    let rows = d.rows(filter);
    let height = visible_rows(area);
    let body = Rect::new(area.x, header_y + 1, area.width, height as u16);
    // Clear the body once per frame in the buffer; ratatui sends only cells that differ.
    buf.set_style(body, Style::default());
    if rows.is_empty() {
        let text = if d.waiting {
            " Sampling...".to_string()
        } else if filter.is_empty() {
            " No VMs are defined or running.".to_string()
        } else {
            format!(" No VM matches \"{filter}\".")
        };
        buf.set_line(
            body.x,
            body.y,
            &pad(Line::styled(text, p.dim), width),
            area.width,
        );
        return;
    }
    let offset = d.selected.saturating_sub(height.saturating_sub(1));
    for (i, h) in rows.iter().skip(offset).take(height).enumerate() {
        let y = body.y + i as u16;
        let selected = offset + i == d.selected;
        vm_row(
            h,
            d.shown(&h.stats.name),
            &cols,
            theme,
            selected,
            Rect::new(area.x, y, area.width, 1),
            buf,
        );
    }
}

fn pad(mut line: Line<'static>, width: usize) -> Line<'static> {
    // Every cell of the line is written, so nothing from the last frame lingers.
    let w = line.width();
    if w < width {
        line.spans.push(Span::raw(" ".repeat(width - w)));
    }
    line
}

fn host_lines(d: &Dashboard, theme: &Theme) -> Vec<Line<'static>> {
    let p = &theme.palette;
    let Some(h) = &d.model.host.stats else {
        return vec![Line::styled(" Host: sampling...", p.dim), Line::raw("")];
    };
    let mut l1 = vec![
        Span::styled(" CPU ", p.title),
        Span::raw(format!("{:>3}%", fmt::percent(h.cpu_percent))),
    ];
    if let Some(w) = h.iowait_percent.filter(|w| *w >= 0.5) {
        l1.push(Span::raw(format!(" wait {w:.0}%")));
    }
    if let Some(s) = h.steal_percent.filter(|s| *s >= 0.5) {
        l1.push(Span::styled(format!(" steal {s:.0}%"), p.warn));
    }
    if !h.cpus.is_empty() && !d.low_bandwidth {
        // One character per core: a level, like a tiny bar chart standing on the line.
        let levels = &theme.glyphs.core_levels;
        let bars: String = h
            .cpus
            .iter()
            .take(64)
            .map(|c| {
                let at = ((c / 100.0 * (levels.len() - 1) as f64).round() as usize)
                    .min(levels.len() - 1);
                levels.get(at).copied().unwrap_or_default()
            })
            .collect();
        l1.push(Span::raw("  cores "));
        l1.push(Span::styled(bars, p.info));
    }
    l1.push(Span::raw(format!(
        "  load {:.2} {:.2} {:.2}",
        h.load[0], h.load[1], h.load[2]
    )));
    if d.low_bandwidth {
        l1.push(Span::styled("  low-bandwidth", p.dim));
    }
    let vms = &d.model.vms;
    let running = vms.values().filter(|v| v.stats.state == "Running").count();
    let mut l2 = vec![
        Span::styled(" Mem ", p.title),
        Span::raw(format!(
            "{}/{}",
            fmt::bytes(h.memory_used_bytes),
            fmt::bytes(h.memory_total_bytes)
        )),
    ];
    if h.hugepages_total > 0 {
        l2.push(Span::raw(format!(
            "  huge {}/{} free x{}",
            h.hugepages_free,
            h.hugepages_total,
            fmt::bytes(h.hugepage_size_bytes)
        )));
    }
    l2.push(Span::raw(format!(
        "  VMs {running}/{} running  every {}  sort {}",
        vms.len(),
        fmt::interval(d.interval),
        d.sort.label()
    )));
    vec![Line::from(l1), Line::from(l2)]
}

pub fn state_style(theme: &Theme, state: &str) -> Style {
    let p = &theme.palette;
    match state {
        "Running" => p.ok,
        "Paused" | "Created" | "Starting" => p.warn,
        "Unresponsive" | "BreakPoint" => p.bad,
        _ => p.dim,
    }
}

fn cut(s: &str, w: usize) -> String {
    if s.chars().count() <= w {
        format!("{s:<w$}")
    } else {
        let mut t: String = s.chars().take(w.saturating_sub(1)).collect();
        t.push('~');
        t
    }
}

fn vm_row(
    h: &VmHistory,
    shown: Held,
    cols: &Columns,
    theme: &Theme,
    selected: bool,
    area: Rect,
    buf: &mut Buffer,
) {
    let p = &theme.palette;
    let s = &h.stats;
    let base = if selected {
        p.selected
    } else {
        Style::default()
    };
    let stopped = s.pid.is_none() && s.state != "Unresponsive";
    let (cpu, mem, disk, net) = if stopped {
        (String::new(), String::new(), String::new(), String::new())
    } else {
        let size = s.memory_actual_bytes.or(s.memory_guest_bytes);
        let mem = match (s.memory_current_bytes.or(s.memory_rss_bytes), size) {
            (Some(u), Some(t)) => format!("{}/{}", fmt::bytes(u), fmt::bytes(t)),
            (Some(u), None) => fmt::bytes(u),
            (None, Some(t)) => format!("-/{}", fmt::bytes(t)),
            (None, None) => "-".into(),
        };
        let pair = |a, b| format!("{}/{}", fmt::rate(a), fmt::rate(b));
        (
            fmt::percent(shown.cpu_percent),
            mem,
            pair(shown.disk_read_bps, shown.disk_write_bps),
            pair(shown.net_rx_bps, shown.net_tx_bps),
        )
    };
    let marker = if selected { theme.glyphs.cursor } else { " " };
    let mut x = area.x;
    let right = area.right();
    let put = |buf: &mut Buffer, x: &mut u16, text: String, style: Style| {
        let (nx, _) = buf.set_stringn(*x, area.y, &text, right.saturating_sub(*x) as usize, style);
        *x = nx;
    };
    put(buf, &mut x, cut(marker, 1), base);
    put(buf, &mut x, cut(&s.name, cols.name), base);
    put(buf, &mut x, " ".into(), base);
    put(
        buf,
        &mut x,
        cut(&s.state, STATE_W),
        state_style(theme, &s.state).patch(base),
    );
    put(buf, &mut x, format!(" {cpu:>CPU_W$} "), base);
    if cols.spark > 0 {
        let spark = Rect::new(x, area.y, cols.spark as u16, 1);
        if stopped {
            buf.set_stringn(x, area.y, " ".repeat(cols.spark), cols.spark, base);
        } else {
            // Scale: one core, or more when the VM used more over the window shown.
            let max = graph::window_max(&h.cpu, cols.spark).max(100.0);
            let max = (max / 100.0).ceil() * 100.0;
            Sweep {
                ring: &h.cpu,
                pushed: h.pushed,
                max,
                levels: &theme.glyphs.levels,
                // No colour of its own: a colour change costs an escape sequence per run of
                // changed cells, more than the two cells themselves on a serial line.
                style: base,
            }
            .render(spark, buf);
        }
        x += cols.spark as u16;
        put(buf, &mut x, " ".into(), base);
    }
    put(
        buf,
        &mut x,
        format!("{mem:>MEM_W$} {disk:>IO_W$} {net:>IO_W$}"),
        base,
    );
    if x < area.right() {
        let rest = (area.right() - x) as usize;
        buf.set_stringn(x, area.y, " ".repeat(rest), rest, base);
    }
}

/// The console's dashboard view: the table, or the charts of the VM opened with Enter.
pub fn render_console(state: &crate::tui::state::State, frame: &mut Frame, area: Rect) {
    let d = &state.dash;
    match &d.detail {
        Some(name) => super::vm_charts::render(d, name, &state.theme, frame, area),
        None => render(d, &state.filter.text, &state.theme, frame, area),
    }
}
