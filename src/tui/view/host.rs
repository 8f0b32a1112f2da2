//! The Host view, a status page in the spirit of a DCUI: the host's name large on top, the
//! machine and the clock, each link with its addresses, the default routes, then the newest
//! journal lines in what height is left.

use phyllome_widgets::{fit, width};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::super::state::{State, Theme};
use super::layout;
use crate::fmt::printable;
use crate::ops::host_status::{self, Address, Family, HostStatus, JournalLine, Link};

/// Rows inside the journal's frame that the status part never takes.
const JOURNAL_MIN: u16 = 5;
/// Column where a link's details start (after its name).
const NAME_W: usize = 10;

pub fn render(state: &State, frame: &mut Frame, area: Rect) {
    let t = &state.theme;
    let inner_w = area.width.saturating_sub(2) as usize;
    let lines = status_lines(state, inner_w);
    let (top, bottom) = split(area, lines.len());
    let block = t
        .glyphs
        .block()
        .title(Line::styled(" Host ", t.palette.title));
    let inner = block.inner(top);
    frame.render_widget(block, top);
    frame.render_widget(Paragraph::new(cut(lines, inner.height as usize, t)), inner);
    journal(state, frame, bottom);
}

/// Status part and journal, from the body and the status part's line count.
fn split(body: Rect, status_lines: usize) -> (Rect, Rect) {
    let most = body.height.saturating_sub(JOURNAL_MIN + 2);
    let h = (status_lines as u16).saturating_add(2).min(most);
    let [top, bottom] = Layout::vertical([Constraint::Length(h), Constraint::Min(0)]).areas(body);
    (top, bottom)
}

/// Journal lines that fit on screen (for scrolling in `update`).
pub fn journal_rows(state: &State) -> usize {
    let chrome = layout::chrome(layout::full(state.cols, state.rows));
    let w = chrome.body.width.saturating_sub(2) as usize;
    let (_, bottom) = split(chrome.body, status_lines(state, w).len());
    layout::inner_height(bottom)
}

/// A status part taller than its room ends with how much did not fit.
fn cut(mut lines: Vec<Line<'static>>, room: usize, t: &Theme) -> Vec<Line<'static>> {
    if lines.len() > room && room > 0 {
        let hidden = lines.len() - (room - 1);
        lines.truncate(room - 1);
        lines.push(Line::styled(
            format!(
                "{} {hidden} more lines: phyllome host status",
                t.glyphs.ellipsis
            ),
            t.palette.dim,
        ));
    }
    lines
}

pub fn status_lines(state: &State, w: usize) -> Vec<Line<'static>> {
    let (t, h) = (&state.theme, &state.host);
    let p = &t.palette;
    let Some(s) = &h.status else {
        let text = match &h.error {
            Some(e) => format!("Cannot read the host's status: {e}"),
            None => "Reading the host's status...".to_string(),
        };
        return phyllome_widgets::wrap(&text, w.max(1))
            .into_iter()
            .map(Line::raw)
            .collect();
    };
    let mut out = vec![name_line(s, w, t)];
    let sep = format!("  {}  ", t.glyphs.separator);
    let facts = [
        format!("kernel {}", s.kernel.as_deref().unwrap_or("unknown")),
        format!(
            "up {}",
            s.uptime_seconds
                .map_or("unknown".into(), crate::fmt::uptime)
        ),
        format!("load {}", host_status::load_text(s.load)),
    ]
    .join(&sep);
    out.push(Line::raw(fit(&printable(&facts), w, t.glyphs.ellipsis)));
    out.push(time_line(s, w, t));
    for l in &s.links {
        out.extend(link_lines(l, w, t));
    }
    if s.links.is_empty() {
        out.push(Line::styled("no network links found", p.warn));
    }
    for r in &s.default_routes {
        let text = format!("{:<NAME_W$}{} {}", "default", r.family.word(), r.summary());
        out.push(Line::raw(fit(&printable(&text), w, t.glyphs.ellipsis)));
    }
    if s.default_routes.is_empty() {
        out.push(Line::styled(format!("{:<NAME_W$}none", "default"), p.warn));
    }
    if let Some(e) = &h.error {
        let text = format!("{} refresh failed: {e}", t.glyphs.warn);
        out.push(Line::styled(
            fit(&printable(&text), w, t.glyphs.ellipsis),
            p.warn,
        ));
    }
    for warning in &s.warnings {
        let text = format!("{} {warning}", t.glyphs.warn);
        out.push(Line::styled(
            fit(&printable(&text), w, t.glyphs.ellipsis),
            p.dim,
        ));
    }
    out
}

/// The host's name, centred and set off in reverse video: the first thing read from afar.
fn name_line(s: &HostStatus, w: usize, t: &Theme) -> Line<'static> {
    let name = s.hostname.as_deref().unwrap_or("(no host name)");
    let label = fit(&format!("  {}  ", printable(name)), w, t.glyphs.ellipsis);
    let style = Style::default().add_modifier(Modifier::BOLD | Modifier::REVERSED);
    Line::from(Span::styled(label, style)).centered()
}

/// `2026-11-30 05:47:27 +01:00 (Europe/Berlin)  UTC 04:47:27  NTP synchronized`.
fn time_line(s: &HostStatus, w: usize, t: &Theme) -> Line<'static> {
    let p = &t.palette;
    let time = &s.time;
    let local = time.local.replacen('T', " ", 1);
    let (local_time, offset) = match local.char_indices().nth(19) {
        Some((i, _)) => (
            local.get(..i).unwrap_or(&local),
            local.get(i..).unwrap_or(""),
        ),
        None => (local.as_str(), ""),
    };
    let zone = time.zone.as_deref().unwrap_or("zone unknown");
    let mut text = format!("{local_time} {offset} ({zone})");
    if offset != "+00:00" {
        let utc = time.utc.chars().skip(11).take(8).collect::<String>();
        text.push_str(&format!("  UTC {utc}"));
    }
    let ntp = host_status::ntp_word(time.ntp_synchronized);
    let ntp_style = match time.ntp_synchronized {
        Some(true) => p.ok,
        Some(false) => p.warn,
        None => p.dim,
    };
    let left = fit(
        &printable(&text),
        w.saturating_sub(ntp.len() + 6),
        t.glyphs.ellipsis,
    );
    Line::from(vec![
        Span::raw(left),
        Span::raw("  NTP "),
        Span::styled(ntp, ntp_style),
    ])
}

/// `eth0      up, carrier, 1 Gb/s, mtu 1500  192.0.2.2/24  fd00::2/64`, addresses going on
/// under the details when they do not fit.
fn link_lines(l: &Link, w: usize, t: &Theme) -> Vec<Line<'static>> {
    let p = &t.palette;
    let state_style = match l.state.as_str() {
        "up" => p.ok,
        "down" | "lowerlayerdown" | "notpresent" => p.dim,
        _ => p.normal,
    };
    let name = fit(&printable(&l.name), NAME_W - 1, t.glyphs.ellipsis);
    let mut summary = l.summary();
    // Wide screens have room for the MAC address.
    if w >= 110 {
        if let Some(m) = &l.mac {
            summary.push_str(&format!(", {m}"));
        }
    }
    let summary = fit(
        &printable(&summary),
        w.saturating_sub(NAME_W),
        t.glyphs.ellipsis,
    );
    let mut lines = Vec::new();
    let mut spans = vec![
        Span::styled(format!("{name:<NAME_W$}"), p.key),
        Span::styled(summary.clone(), state_style),
    ];
    let mut used = NAME_W + width(&summary);
    for a in &l.addresses {
        let text = format!("{}/{}", a.address, a.prefix);
        let style = if link_local(a) { p.dim } else { p.normal };
        if used + 2 + text.len() > w && used > NAME_W {
            lines.push(Line::from(std::mem::take(&mut spans)));
            spans.push(Span::raw(" ".repeat(NAME_W)));
            used = NAME_W;
        }
        let gap = if used > NAME_W { "  " } else { "" };
        used += gap.len() + text.len();
        spans.push(Span::raw(gap));
        spans.push(Span::styled(
            fit(&text, w.saturating_sub(NAME_W), t.glyphs.ellipsis),
            style,
        ));
    }
    lines.push(Line::from(spans));
    lines
}

/// fe80::/10 and 169.254/16: present on every link, rarely what one looks for.
fn link_local(a: &Address) -> bool {
    match a.family {
        Family::Ipv6 => {
            a.address.starts_with("fe8")
                || a.address.starts_with("fe9")
                || a.address.starts_with("fea")
                || a.address.starts_with("feb")
        }
        Family::Ipv4 => a.address.starts_with("169.254."),
    }
}

fn journal(state: &State, frame: &mut Frame, area: Rect) {
    let (t, h) = (&state.theme, &state.host);
    let (g, p) = (&t.glyphs, &t.palette);
    // Journal times are UTC (the clock line above says the local offset).
    let title = if h.scroll > 0 {
        format!(" Journal (UTC), {} lines back ", h.scroll)
    } else {
        " Journal (UTC) ".to_string()
    };
    let block = g.block().title(Line::styled(title, p.title));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let w = inner.width as usize;
    let rows = inner.height as usize;
    let Some(s) = &h.status else { return };
    let j = &s.journal;
    let lines: Vec<Line> = if let Some(why) = &j.reason {
        vec![Line::styled(fit(&printable(why), w, g.ellipsis), p.warn)]
    } else if j.lines.is_empty() {
        vec![Line::styled("(no entries)", p.dim)]
    } else {
        // The newest at the bottom; scrolling goes back from there.
        let end = j.lines.len().saturating_sub(h.scroll);
        let start = end.saturating_sub(rows);
        j.lines
            .get(start..end)
            .unwrap_or_default()
            .iter()
            .map(|l| journal_line(l, w, t))
            .collect()
    };
    frame.render_widget(Paragraph::new(lines), inner);
}

/// `11-30 04:47:27 ssh.service: Server listening…`, coloured by priority.
fn journal_line(l: &JournalLine, w: usize, t: &Theme) -> Line<'static> {
    let p = &t.palette;
    let time: String = l
        .time
        .as_deref()
        .map(|s| {
            s.chars()
                .skip(5)
                .take(14)
                .collect::<String>()
                .replacen('T', " ", 1)
        })
        .unwrap_or_else(|| "?".repeat(14));
    let style = match l.priority {
        Some(0..=3) => p.bad,
        Some(4) => p.warn,
        Some(7) => p.dim,
        _ => p.normal,
    };
    let unit = printable(l.unit.as_deref().unwrap_or("?")).into_owned();
    let head = format!("{time} {unit}: ");
    // A multi-line message reads on one line; `printable` would turn its line feeds into
    // `\n` escapes, so they are spaces before it runs.
    let msg = printable(&l.message.replace('\n', " ")).into_owned();
    let rest = w.saturating_sub(width(&head));
    Line::from(vec![
        Span::styled(fit(&head, w, t.glyphs.ellipsis), p.dim),
        Span::styled(fit(&msg, rest, t.glyphs.ellipsis), style),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multi_line_message_reads_on_one_line() {
        let l = JournalLine {
            time: Some("2026-11-30T04:47:27Z".into()),
            unit: Some("ssh.service".into()),
            priority: Some(6),
            message: "first\nsecond\tthird".into(),
        };
        let line = journal_line(&l, 80, &Theme::new(false, true));
        let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
        assert!(
            text.ends_with("ssh.service: first second\\tthird"),
            "{text}"
        );
    }
}
