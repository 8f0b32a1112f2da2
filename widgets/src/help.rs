use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Widget};

use crate::text::{fit, width};
use crate::{centered_rect, Glyphs, Palette};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelpEntry {
    /// All keys of the binding, already joined, e.g. `1, F1`.
    pub keys: String,
    pub description: String,
    pub dangerous: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelpSection {
    pub title: String,
    pub entries: Vec<HelpEntry>,
}

/// Popup listing every binding by section. Draws itself centred in the area it is given.
pub struct HelpPanel<'a> {
    sections: &'a [HelpSection],
    scroll: usize,
    glyphs: Glyphs,
    palette: Palette,
}

/// Widest popup: wider is harder to read on a big screen.
const MAX_WIDTH: u16 = 76;

impl<'a> HelpPanel<'a> {
    pub fn new(sections: &'a [HelpSection], glyphs: Glyphs) -> Self {
        Self {
            sections,
            scroll: 0,
            glyphs,
            palette: Palette::default(),
        }
    }

    pub fn palette(mut self, palette: Palette) -> Self {
        self.palette = palette;
        self
    }

    /// First line shown; clamped at render so the last page stays full.
    pub fn scroll(mut self, scroll: usize) -> Self {
        self.scroll = scroll;
        self
    }

    /// Number of content lines, for callers that clamp their scroll position.
    pub fn line_count(sections: &[HelpSection]) -> usize {
        sections
            .iter()
            .map(|s| s.entries.len() + 2)
            .sum::<usize>()
            .saturating_sub(1)
    }

    fn lines(&self, text_w: usize) -> Vec<Line<'static>> {
        let (g, p) = (&self.glyphs, &self.palette);
        let key_w = self
            .sections
            .iter()
            .flat_map(|s| &s.entries)
            .map(|e| width(&e.keys))
            .max()
            .unwrap_or(0)
            .min(text_w / 3);
        let mut lines = Vec::new();
        for (i, section) in self.sections.iter().enumerate() {
            if i > 0 {
                lines.push(Line::raw(""));
            }
            lines.push(Line::styled(section.title.clone(), p.title));
            for e in &section.entries {
                let keys = fit(&e.keys, key_w, g.ellipsis);
                let pad = " ".repeat(key_w - width(&keys) + 2);
                let mark = if e.dangerous { g.danger } else { " " };
                let key_style = if e.dangerous { p.danger } else { p.key };
                let desc_w = text_w.saturating_sub(2 + key_w + 2 + 2);
                let spans = vec![
                    Span::raw("  "),
                    Span::styled(keys, key_style),
                    Span::raw(pad),
                    Span::styled(mark, p.danger),
                    Span::raw(" "),
                    Span::raw(fit(&e.description, desc_w, g.ellipsis)),
                ];
                lines.push(Line::from(spans));
            }
        }
        lines
    }
}

impl Widget for HelpPanel<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let (g, p) = (&self.glyphs, &self.palette);
        let total = Self::line_count(self.sections) as u16;
        let popup = centered_rect(
            area,
            MAX_WIDTH.min(area.width.saturating_sub(4)),
            (total + 2).min(area.height.saturating_sub(2)),
        );
        if popup.width < 10 || popup.height < 3 {
            return;
        }
        Clear.render(popup, buf);
        let inner_h = (popup.height - 2) as usize;
        let max_scroll = (total as usize).saturating_sub(inner_h);
        let scroll = self.scroll.min(max_scroll);
        let mut footer = String::from(" esc close ");
        if max_scroll > 0 {
            footer = format!(" {}{} scroll  esc close ", g.more_above, g.more_below);
        }
        let mut block = g
            .block()
            .title(Line::styled(" Help ", p.title))
            .title_bottom(Line::styled(footer, p.dim).right_aligned());
        let any_danger = self
            .sections
            .iter()
            .flat_map(|s| &s.entries)
            .any(|e| e.dangerous);
        if any_danger {
            let legend = format!(" {} changes the host ", g.danger);
            block = block.title_bottom(Line::styled(legend, p.danger).left_aligned());
        }
        // One column of padding inside the border on each side.
        let inner = block.inner(popup);
        block.render(popup, buf);
        let inner = crate::layout::padded(inner);
        let lines = self.lines(inner.width as usize);
        for (y, line) in (inner.y..inner.bottom()).zip(lines.iter().skip(scroll)) {
            buf.set_line(inner.x, y, line, inner.width);
        }
        let right = popup.right() - 1;
        if scroll > 0 {
            buf.set_string(right, inner.y, g.more_above, p.dim);
        }
        if scroll < max_scroll {
            buf.set_string(right, inner.bottom() - 1, g.more_below, p.dim);
        }
    }
}
