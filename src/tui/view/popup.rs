//! Popups of the VM screens: the error with its causes, and confirmations.

use phyllome_widgets::{centered_rect, wrap, ConfirmDialog};
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;

use super::super::state::State;
use super::super::vms::{Confirm, ErrorPopup};

const MAX_WIDTH: u16 = 72;

/// The error's headline, then its causes, outermost first (Cloud Hypervisor's own messages
/// among them, as [`crate::error`] walks the chain).
pub fn error(state: &State, popup: &ErrorPopup, frame: &mut Frame, area: Rect) {
    let (g, p) = (&state.theme.glyphs, &state.theme.palette);
    let w = MAX_WIDTH.min(area.width.saturating_sub(4));
    let text_w = w.saturating_sub(4) as usize;
    let mut lines: Vec<Line> = Vec::new();
    // Shown escaped as on the command line: the causes carry the VMM's own text.
    for l in popup.error.message.lines() {
        let l = crate::fmt::printable(l);
        lines.extend(wrap(&l, text_w).into_iter().map(Line::raw));
    }
    let causes = &popup.error.causes;
    if !causes.is_empty() {
        lines.push(Line::raw(""));
        lines.push(Line::styled("Caused by:", p.dim));
        for (i, c) in causes.iter().enumerate() {
            let prefix = format!("{}. ", i + 1);
            let c = crate::fmt::printable(c);
            for (j, l) in wrap(&c, text_w.saturating_sub(prefix.len()))
                .into_iter()
                .enumerate()
            {
                let lead = if j == 0 {
                    prefix.clone()
                } else {
                    " ".repeat(prefix.len())
                };
                lines.push(Line::raw(format!("{lead}{l}")));
            }
        }
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled("enter or esc: close", p.dim));
    let max_h = area.height.saturating_sub(2);
    let h = (lines.len() as u16 + 2).min(max_h);
    let rect = centered_rect(area, w, h);
    frame.render_widget(Clear, rect);
    let block = g
        .block()
        .title(Line::styled(format!(" {} ", popup.title), p.bad));
    let inner = inset(block.inner(rect));
    frame.render_widget(block, rect);
    frame.render_widget(Paragraph::new(lines), inner);
}

/// One column of padding inside the border, as the other popups have.
fn inset(r: Rect) -> Rect {
    Rect::new(r.x + 1, r.y, r.width.saturating_sub(2), r.height)
}

pub fn confirm(state: &State, c: &Confirm, frame: &mut Frame, area: Rect) {
    let t = &state.theme;
    let dialog = ConfirmDialog::new(&c.title, &c.message, &c.mode, t.glyphs).palette(t.palette);
    frame.render_widget(dialog, area);
}
