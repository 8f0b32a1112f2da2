//! Screen geometry, shared by the views and by `update` (which needs list heights to page and
//! scroll without drawing).

use ratatui::layout::{Constraint, Layout, Rect};

pub struct Chrome {
    pub header: Rect,
    pub body: Rect,
    pub footer: Rect,
}

pub fn chrome(area: Rect) -> Chrome {
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    Chrome {
        header,
        body,
        footer,
    }
}

pub fn full(cols: u16, rows: u16) -> Rect {
    Rect::new(0, 0, cols, rows)
}

/// Wide screens put details beside the list, narrow ones below it.
pub const WIDE: u16 = 120;

/// Tree and detail pane of the groups view.
pub fn groups(body: Rect) -> (Rect, Rect) {
    if body.width >= WIDE {
        let [tree, detail] =
            Layout::horizontal([Constraint::Percentage(58), Constraint::Percentage(42)])
                .areas(body);
        (tree, detail)
    } else {
        let [tree, detail] =
            Layout::vertical([Constraint::Min(5), Constraint::Length(7)]).areas(body);
        (tree, detail)
    }
}

/// List and detail pane of the GPUs view.
pub fn gpus(body: Rect, count: usize) -> (Rect, Rect) {
    let list_h = (count as u16 + 2).clamp(3, body.height / 3);
    let [list, detail] =
        Layout::vertical([Constraint::Length(list_h), Constraint::Min(0)]).areas(body);
    (list, detail)
}

/// Rows inside a bordered block.
pub fn inner_height(r: Rect) -> usize {
    r.height.saturating_sub(2) as usize
}
