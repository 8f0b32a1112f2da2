//! The serial pane: the guest's screen from the VT parser, cell by cell. Only cell contents
//! and their colours reach the host's terminal, through ratatui like every other cell; a
//! control character in a cell is drawn as `?`, and in ASCII mode so is anything not ASCII.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders};
use ratatui::Frame;

use crate::serial::attach::Role;
use crate::tui::serial::{PaneMode, PaneStatus, SerialPane};
use crate::tui::state::State;

pub fn render(state: &State, pane: &SerialPane, frame: &mut Frame, area: Rect) {
    let t = &state.theme;
    let what = match pane.mode {
        PaneMode::Console => "serial console",
        PaneMode::Log => "serial log",
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_set(t.glyphs.border)
        .title(Span::styled(
            format!(" {what}: {} ", pane.vm),
            t.palette.title,
        ))
        .title_bottom(Line::from(Span::styled(" Ctrl+] detach ", t.palette.key)).right_aligned());
    let inner = block.inner(area);
    frame.render_widget(ratatui::widgets::Clear, area);
    frame.render_widget(block, area);
    if inner.height == 0 {
        return;
    }
    let status = Rect { height: 1, ..inner };
    frame.render_widget(status_line(state, pane, inner.width), status);
    let screen_area = Rect {
        y: inner.y + 1,
        height: inner.height - 1,
        ..inner
    };
    draw_screen(state, pane, frame, screen_area);
}

fn status_line<'a>(state: &State, pane: &SerialPane, width: u16) -> Line<'a> {
    let p = &state.theme.palette;
    let (rows, cols) = pane.term.screen().size();
    let (text, style) = match (&pane.status, pane.mode) {
        (PaneStatus::Connecting, _) => ("connecting...".to_string(), p.dim),
        (PaneStatus::Closed(why), _) => (why.clone(), p.warn),
        (PaneStatus::Attached { .. }, PaneMode::Log) => (
            "the guest's output as logged, following".to_string(),
            p.normal,
        ),
        (PaneStatus::Attached { .. }, _) if pane.read_only => {
            ("read-only console: watching".to_string(), p.warn)
        }
        (PaneStatus::Attached { role, direct }, _) => {
            let who = match role {
                Role::Keys => "your keys go to the guest",
                Role::Watch => "watching: another viewer types",
            };
            let direct = if *direct {
                " (no keeper: not logged)"
            } else {
                ""
            };
            (format!("{who}{direct}"), p.ok)
        }
    };
    let right = if pane.scroll > 0 {
        let key = match pane.mode {
            PaneMode::Console => "shift+pgdn",
            PaneMode::Log => "pgdn",
        };
        format!("{} lines back ({key})", pane.scroll)
    } else if pane.mode == PaneMode::Log {
        String::new()
    } else {
        // CH's serial port has no size; the guest learns it only from `stty`.
        format!("{cols}x{rows}, stty rows {rows} cols {cols}")
    };
    let pad = (width as usize).saturating_sub(text.chars().count() + right.len() + 1);
    Line::from(vec![
        Span::styled(text, style),
        Span::raw(" ".repeat(pad)),
        Span::styled(right, p.dim),
    ])
}

fn draw_screen(state: &State, pane: &SerialPane, frame: &mut Frame, area: Rect) {
    let screen = pane.term.screen();
    let (rows, cols) = screen.size();
    let ascii = state.theme.glyphs.ascii;
    let color = state.theme.palette.color;
    let buf = frame.buffer_mut();
    for r in 0..rows.min(area.height) {
        for c in 0..cols.min(area.width) {
            let Some(cell) = screen.cell(r, c) else {
                continue;
            };
            if cell.is_wide_continuation() {
                continue;
            }
            let symbol = safe_symbol(cell.contents(), ascii);
            if let Some(out) = buf.cell_mut((area.x + c, area.y + r)) {
                out.set_symbol(&symbol).set_style(style(cell, color));
            }
        }
    }
}

/// A cell's text as drawn: never a control character, ASCII only when asked.
pub fn safe_symbol(contents: &str, ascii: bool) -> String {
    if contents.is_empty() {
        return " ".to_string();
    }
    contents
        .chars()
        .map(|ch| {
            if ch.is_control() || (ascii && !ch.is_ascii()) {
                '?'
            } else {
                ch
            }
        })
        .collect()
}

fn style(cell: &vt100::Cell, color: bool) -> Style {
    let mut s = Style::new();
    if color {
        if let Some(fg) = convert(cell.fgcolor()) {
            s = s.fg(fg);
        }
        if let Some(bg) = convert(cell.bgcolor()) {
            s = s.bg(bg);
        }
    }
    if cell.bold() {
        s = s.add_modifier(Modifier::BOLD);
    }
    if cell.underline() {
        s = s.add_modifier(Modifier::UNDERLINED);
    }
    if cell.inverse() {
        s = s.add_modifier(Modifier::REVERSED);
    }
    s
}

fn convert(c: vt100::Color) -> Option<Color> {
    match c {
        vt100::Color::Default => None,
        vt100::Color::Idx(i) => Some(Color::Indexed(i)),
        vt100::Color::Rgb(r, g, b) => Some(Color::Rgb(r, g, b)),
    }
}

/// The key bar while the pane is open: the detach key first, always.
pub fn footer(state: &State, pane: &SerialPane, frame: &mut Frame, area: Rect) {
    let p = &state.theme.palette;
    let mut spans = vec![Span::styled(" ctrl+]", p.key), Span::raw(" detach  ")];
    let scroll = match pane.mode {
        PaneMode::Console => "shift+pgup/pgdn",
        PaneMode::Log => "pgup/pgdn",
    };
    spans.extend([Span::styled(scroll, p.key), Span::raw(" scroll back")]);
    if pane.mode == PaneMode::Console && pane.types() {
        spans.push(Span::styled("  other keys go to the guest", p.dim));
    }
    frame.render_widget(ratatui::widgets::Clear, area);
    frame.render_widget(Line::from(spans), area);
}
