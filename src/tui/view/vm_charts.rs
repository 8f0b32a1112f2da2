//! One VM's charts over the history window: CPU (total and per vCPU), memory, disk and
//! network, with the latest figures above them. Pure: draws a [`Dashboard`]'s model.

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::Frame;

use crate::fmt;
use crate::monitor::dashboard::Dashboard;
use crate::monitor::history::VmHistory;
use crate::monitor::ring::Ring;
use crate::tui::state::Theme;

use super::dashboard::state_style;
use super::graph::{self, Sweep};

/// Label column left of every chart.
const LABEL_W: u16 = 12;

pub fn render(d: &Dashboard, name: &str, theme: &Theme, frame: &mut Frame, area: Rect) {
    let buf = frame.buffer_mut();
    buf.set_style(area, Style::default());
    let p = &theme.palette;
    let Some(h) = d.model.vms.get(name) else {
        buf.set_line(
            area.x,
            area.y,
            &Line::styled(format!(" {name}: no longer listed"), p.dim),
            area.width,
        );
        return;
    };
    let mut y = area.y;
    for line in summary(d, h, theme) {
        if y >= area.bottom() {
            return;
        }
        buf.set_line(area.x, y, &line, area.width);
        y += 1;
    }
    if d.low_bandwidth {
        return;
    }
    let graph_w = area.width.saturating_sub(LABEL_W + 8);
    let rows_left = area.bottom().saturating_sub(y) as usize;
    // Fixed rows: a label line per chart group; the CPU chart takes what is left.
    let vcpus = h.vcpus.len().min(rows_left.saturating_sub(8));
    let cpu_h = rows_left.saturating_sub(vcpus + 5 + 1).clamp(1, 6) as u16;
    let window = graph_w as usize;
    let mut chart = |label: String,
                     value: String,
                     ring: &Ring<f32>,
                     max: f32,
                     height: u16,
                     style: Style,
                     y: &mut u16| {
        if *y + height > area.bottom() || graph_w < 4 {
            return;
        }
        buf.set_stringn(
            area.x,
            *y,
            format!(" {label:<w$}", w = LABEL_W as usize - 1),
            LABEL_W as usize,
            p.title,
        );
        let g = Rect::new(area.x + LABEL_W, *y, graph_w, height);
        Sweep {
            ring,
            pushed: h.pushed,
            max,
            levels: &theme.glyphs.levels,
            style,
        }
        .render(g, buf);
        let vx = g.right() + 1;
        buf.set_stringn(
            vx,
            *y,
            format!("{value:>6}"),
            area.right().saturating_sub(vx) as usize,
            Style::default(),
        );
        *y += height;
    };
    let cpu_max =
        ((graph::window_max(&h.cpu, window).max(100.0) / 100.0).ceil() * 100.0).max(100.0);
    chart(
        "CPU %".into(),
        fmt::percent(h.stats.cpu_percent),
        &h.cpu,
        cpu_max,
        cpu_h,
        p.info,
        &mut y,
    );
    for (i, ring) in h.vcpus.iter().take(vcpus).enumerate() {
        let v = h.stats.vcpus.get(i).copied();
        // `@N`: the host CPU the vCPU's thread last ran on.
        let on = match h.stats.vcpu_host_cpus.get(i).copied().flatten() {
            Some(cpu) => format!("vcpu{i} @{cpu}"),
            None => format!("vcpu{i}"),
        };
        chart(on, fmt::percent(v), ring, 100.0, 1, p.ok, &mut y);
    }
    let guest = h.stats.memory_guest_bytes.map(|g| g as f32);
    let mem_max = guest.unwrap_or(0.0).max(graph::window_max(&h.rss, window));
    chart(
        "mem rss".into(),
        h.stats.memory_rss_bytes.map_or("-".into(), fmt::bytes),
        &h.rss,
        mem_max,
        1,
        p.warn,
        &mut y,
    );
    let io_max = |a: &Ring<f32>, b: &Ring<f32>| {
        graph::window_max(a, window).max(graph::window_max(b, window))
    };
    let disk_max = io_max(&h.disk_read, &h.disk_write);
    chart(
        "disk read".into(),
        fmt::rate(h.stats.disk_read_bps),
        &h.disk_read,
        disk_max,
        1,
        p.info,
        &mut y,
    );
    chart(
        "disk write".into(),
        fmt::rate(h.stats.disk_write_bps),
        &h.disk_write,
        disk_max,
        1,
        p.info,
        &mut y,
    );
    let net_max = io_max(&h.net_rx, &h.net_tx);
    chart(
        "net rx".into(),
        fmt::rate(h.stats.net_rx_bps),
        &h.net_rx,
        net_max,
        1,
        p.ok,
        &mut y,
    );
    chart(
        "net tx".into(),
        fmt::rate(h.stats.net_tx_bps),
        &h.net_tx,
        net_max,
        1,
        p.ok,
        &mut y,
    );
}

fn summary(d: &Dashboard, h: &VmHistory, theme: &Theme) -> Vec<Line<'static>> {
    let p = &theme.palette;
    let s = &h.stats;
    let window = d.interval.as_secs_f64() * d.model.capacity as f64;
    let mut l1 = vec![
        Span::styled(format!(" {} ", s.name), p.title),
        Span::styled(s.state.clone(), state_style(theme, &s.state)),
        Span::raw(format!(
            "  up {}",
            s.uptime_secs.map_or("-".into(), fmt::uptime)
        )),
    ];
    if let Some(pid) = s.pid {
        l1.push(Span::raw(format!("  pid {pid}")));
    }
    l1.push(Span::styled(
        format!(
            "  every {}, window {}",
            fmt::interval(d.interval),
            fmt::uptime(window as u64)
        ),
        p.dim,
    ));
    let wait = s.vcpus_wait.iter().copied().fold(0.0, f64::max);
    let mut l2 = vec![
        Span::styled(" CPU ", p.title),
        Span::raw(format!("{}%", fmt::percent(s.cpu_percent))),
        Span::raw(format!(
            "  vcpu wait max {}%",
            fmt::percent((!s.vcpus_wait.is_empty()).then_some(wait))
        )),
        Span::styled("  Mem ", p.title),
        Span::raw(format!(
            "rss {}",
            s.memory_rss_bytes.map_or("-".into(), fmt::bytes)
        )),
    ];
    if let Some(c) = s.memory_current_bytes {
        l2.push(Span::raw(format!(" unit {}", fmt::bytes(c))));
    }
    l2.push(Span::raw(format!(
        " guest {} actual {}",
        s.memory_guest_bytes.map_or("-".into(), fmt::bytes),
        s.memory_actual_bytes.map_or("-".into(), fmt::bytes)
    )));
    let l3 = Line::from(vec![
        Span::styled(" Disk ", p.title),
        Span::raw(format!(
            "r {}/s {} op/s  w {}/s {} op/s",
            fmt::rate(s.disk_read_bps),
            fmt::count(s.disk_read_iops),
            fmt::rate(s.disk_write_bps),
            fmt::count(s.disk_write_iops)
        )),
        Span::styled("  Net ", p.title),
        Span::raw(format!(
            "rx {}/s {} p/s  tx {}/s {} p/s",
            fmt::rate(s.net_rx_bps),
            fmt::count(s.net_rx_pps),
            fmt::rate(s.net_tx_bps),
            fmt::count(s.net_tx_pps)
        )),
    ]);
    let mut out = vec![Line::from(l1), Line::from(l2), l3];
    if let Some(e) = &s.error {
        out.push(Line::styled(format!(" {e}"), p.bad));
    }
    out
}
