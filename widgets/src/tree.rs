use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, StatefulWidget, Widget};

use crate::text::{fit, width};
use crate::{Glyphs, Palette};

/// One IOMMU group: a header row followed by its members.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TreeGroup {
    pub label: String,
    /// Right-aligned summary, e.g. `✔ GPU: ready`, with its style.
    pub badge: Option<(String, Style)>,
    pub members: Vec<TreeMember>,
}

/// One function of a group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TreeMember {
    pub label: String,
    pub detail: String,
    /// Drawn after `detail` and kept whole when the row is too long: `detail` is cut instead.
    pub tail: String,
    pub style: Style,
    /// Bridges never move with the group; they are drawn dimmed.
    pub bridge: bool,
}

/// Selection and scroll of a [`GroupTree`], over its flattened rows (headers and members).
///
/// Methods take the row count so the state can live in plain application state and be moved
/// by a pure update function; `height` is the number of visible rows, known from the layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GroupTreeState {
    selected: usize,
    offset: usize,
    height: usize,
}

impl GroupTreeState {
    pub fn selected(&self) -> usize {
        self.selected
    }

    pub fn offset(&self) -> usize {
        self.offset
    }

    pub fn height(&self) -> usize {
        self.height
    }

    /// Sets the number of visible rows and scrolls so the selection stays visible.
    pub fn set_height(&mut self, height: usize, len: usize) {
        self.height = height;
        self.clamp(len);
    }

    pub fn select(&mut self, row: usize, len: usize) {
        self.selected = row;
        self.clamp(len);
    }

    pub fn select_next(&mut self, len: usize) {
        self.select(self.selected.saturating_add(1), len);
    }

    pub fn select_prev(&mut self, len: usize) {
        self.select(self.selected.saturating_sub(1), len);
    }

    pub fn select_first(&mut self, len: usize) {
        self.select(0, len);
    }

    pub fn select_last(&mut self, len: usize) {
        self.select(len.saturating_sub(1), len);
    }

    pub fn page_down(&mut self, len: usize) {
        let step = self.height.saturating_sub(1).max(1);
        self.select(self.selected.saturating_add(step), len);
    }

    pub fn page_up(&mut self, len: usize) {
        let step = self.height.saturating_sub(1).max(1);
        self.select(self.selected.saturating_sub(step), len);
    }

    fn clamp(&mut self, len: usize) {
        self.selected = self.selected.min(len.saturating_sub(1));
        if self.height == 0 {
            // Height unknown until the first layout: only make sure selection is not above.
            self.offset = self.offset.min(self.selected);
            return;
        }
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if self.selected >= self.offset + self.height {
            self.offset = self.selected + 1 - self.height;
        }
        // Never leave blank rows at the bottom while rows above are hidden.
        self.offset = self.offset.min(len.saturating_sub(self.height));
    }
}

/// What a flattened row points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeRow {
    Group(usize),
    Member(usize, usize),
}

/// The IOMMU group tree.
pub struct GroupTree<'a> {
    groups: &'a [TreeGroup],
    glyphs: Glyphs,
    palette: Palette,
    block: Option<Block<'a>>,
}

impl<'a> GroupTree<'a> {
    pub fn new(groups: &'a [TreeGroup], glyphs: Glyphs) -> Self {
        Self {
            groups,
            glyphs,
            palette: Palette::default(),
            block: None,
        }
    }

    pub fn palette(mut self, palette: Palette) -> Self {
        self.palette = palette;
        self
    }

    pub fn block(mut self, block: Block<'a>) -> Self {
        self.block = Some(block);
        self
    }

    /// Number of flattened rows.
    pub fn row_count(groups: &[TreeGroup]) -> usize {
        groups.iter().map(|g| 1 + g.members.len()).sum()
    }

    /// The group or member at flattened row `row`.
    pub fn locate(groups: &[TreeGroup], row: usize) -> Option<TreeRow> {
        let mut start = 0;
        for (gi, g) in groups.iter().enumerate() {
            if row == start {
                return Some(TreeRow::Group(gi));
            }
            if row <= start + g.members.len() {
                return Some(TreeRow::Member(gi, row - start - 1));
            }
            start += 1 + g.members.len();
        }
        None
    }

    fn rows(&self) -> Vec<(TreeRow, bool)> {
        let mut rows = Vec::new();
        for (gi, g) in self.groups.iter().enumerate() {
            rows.push((TreeRow::Group(gi), false));
            for mi in 0..g.members.len() {
                rows.push((TreeRow::Member(gi, mi), mi + 1 == g.members.len()));
            }
        }
        rows
    }

    fn row_line(&self, row: TreeRow, last: bool, max: usize) -> Line<'static> {
        let (g, p) = (&self.glyphs, &self.palette);
        match row {
            TreeRow::Group(gi) => {
                let group = &self.groups[gi];
                let badge = group.badge.as_ref();
                let badge_w = badge.map_or(0, |(t, _)| width(t) + 1);
                let label = fit(&group.label, max.saturating_sub(badge_w), g.ellipsis);
                let mut spans = vec![Span::styled(label.clone(), p.title)];
                if let Some((text, style)) = badge {
                    let pad = max.saturating_sub(width(&label) + width(text)).max(1);
                    spans.push(Span::raw(" ".repeat(pad)));
                    spans.push(Span::styled(text.clone(), *style));
                }
                Line::from(spans)
            }
            TreeRow::Member(gi, mi) => {
                let m = &self.groups[gi].members[mi];
                let branch = if last { g.tree_last } else { g.tree_branch };
                let style = if m.bridge {
                    m.style.patch(p.dim)
                } else {
                    m.style
                };
                let room = max.saturating_sub(width(branch));
                let head = format!("{}  {}", m.label, m.detail);
                let text = if m.tail.is_empty() {
                    fit(&head, room, g.ellipsis)
                } else {
                    let tail = format!(" {}", m.tail);
                    let head_room = room.saturating_sub(width(&tail));
                    if head_room > width(&m.label) + 2 {
                        fit(
                            &format!("{}{tail}", fit(&head, head_room, g.ellipsis)),
                            room,
                            g.ellipsis,
                        )
                    } else {
                        fit(&format!("{head}{tail}"), room, g.ellipsis)
                    }
                };
                Line::from(vec![Span::styled(branch, p.dim), Span::styled(text, style)])
            }
        }
    }
}

impl StatefulWidget for GroupTree<'_> {
    type State = GroupTreeState;

    fn render(self, area: Rect, buf: &mut Buffer, state: &mut GroupTreeState) {
        let inner = match &self.block {
            Some(b) => {
                let inner = b.inner(area);
                b.clone().render(area, buf);
                inner
            }
            None => area,
        };
        // Two gutter columns for the cursor, one on the right for scroll marks.
        if inner.width < 4 || inner.height == 0 {
            return;
        }
        let rows = self.rows();
        state.set_height(inner.height as usize, rows.len());
        let text_w = (inner.width - 3) as usize;
        let (g, p) = (&self.glyphs, &self.palette);
        let visible = rows
            .iter()
            .enumerate()
            .skip(state.offset)
            .take(state.height);
        for (y, (i, (row, last))) in (inner.y..).zip(visible) {
            let selected = i == state.selected;
            if selected {
                buf.set_style(Rect::new(inner.x, y, inner.width - 1, 1), p.selected);
                buf.set_string(inner.x, y, g.cursor, p.selected);
            }
            let line = self.row_line(*row, *last, text_w);
            buf.set_line(inner.x + 2, y, &line, text_w as u16);
        }
        let right = inner.right() - 1;
        if state.offset > 0 {
            buf.set_string(right, inner.y, g.more_above, p.dim);
        }
        if state.offset + state.height < rows.len() {
            buf.set_string(right, inner.bottom() - 1, g.more_below, p.dim);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(height: usize, len: usize) -> GroupTreeState {
        let mut s = GroupTreeState::default();
        s.set_height(height, len);
        s
    }

    #[test]
    fn next_and_prev_stop_at_the_ends() {
        let mut s = state(5, 3);
        s.select_prev(3);
        assert_eq!(s.selected(), 0);
        s.select_next(3);
        s.select_next(3);
        s.select_next(3);
        assert_eq!(s.selected(), 2);
    }

    #[test]
    fn scrolling_keeps_selection_visible_with_minimal_moves() {
        let mut s = state(4, 10);
        for _ in 0..5 {
            s.select_next(10);
        }
        assert_eq!((s.selected(), s.offset()), (5, 2));
        // Moving up inside the window does not scroll.
        s.select_prev(10);
        assert_eq!((s.selected(), s.offset()), (4, 2));
        s.select_first(10);
        assert_eq!((s.selected(), s.offset()), (0, 0));
        s.select_last(10);
        assert_eq!((s.selected(), s.offset()), (9, 6));
    }

    #[test]
    fn paging_moves_by_a_screen_less_one() {
        let mut s = state(5, 20);
        s.page_down(20);
        assert_eq!(s.selected(), 4);
        s.page_down(20);
        assert_eq!(s.selected(), 8);
        s.page_up(20);
        assert_eq!(s.selected(), 4);
        s.page_up(20);
        s.page_up(20);
        assert_eq!(s.selected(), 0);
    }

    #[test]
    fn shrinking_rows_clamps_selection() {
        let mut s = state(5, 20);
        s.select_last(20);
        s.set_height(5, 3);
        assert_eq!((s.selected(), s.offset()), (2, 0));
        s.select_next(0);
        assert_eq!((s.selected(), s.offset()), (0, 0));
    }

    #[test]
    fn growing_height_pulls_offset_back() {
        let mut s = state(3, 10);
        s.select_last(10);
        assert_eq!(s.offset(), 7);
        s.set_height(8, 10);
        assert_eq!(s.offset(), 2);
    }

    #[test]
    fn locate_maps_rows_to_groups_and_members() {
        let groups = vec![
            TreeGroup {
                members: vec![TreeMember::default(); 2],
                ..Default::default()
            },
            TreeGroup::default(),
            TreeGroup {
                members: vec![TreeMember::default()],
                ..Default::default()
            },
        ];
        assert_eq!(GroupTree::row_count(&groups), 6);
        let rows: Vec<_> = (0..7).map(|r| GroupTree::locate(&groups, r)).collect();
        assert_eq!(
            rows,
            vec![
                Some(TreeRow::Group(0)),
                Some(TreeRow::Member(0, 0)),
                Some(TreeRow::Member(0, 1)),
                Some(TreeRow::Group(1)),
                Some(TreeRow::Group(2)),
                Some(TreeRow::Member(2, 0)),
                None,
            ]
        );
    }
}
