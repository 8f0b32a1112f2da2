use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use crate::text::{fit, width};
use crate::{Glyphs, Palette};

/// One entry of the hint bar: `key`, what it does, and whether it changes the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyHint {
    pub key: String,
    pub description: String,
    pub dangerous: bool,
}

impl KeyHint {
    pub fn new(key: impl Into<String>, description: impl Into<String>, dangerous: bool) -> Self {
        Self {
            key: key.into(),
            description: description.into(),
            dangerous,
        }
    }

    fn cells(&self, g: &Glyphs) -> usize {
        width(&self.key)
            + if self.dangerous { width(g.danger) } else { 0 }
            + 1
            + width(&self.description)
    }
}

const GAP: usize = 2;

/// Indices of the hints that fit in `max` cells, in order. Items are taken from the front while
/// they fit, but the last item (usually `? help`) is always kept: it is the way to everything
/// that was dropped.
pub fn fit_hints(items: &[KeyHint], max: usize, g: &Glyphs) -> Vec<usize> {
    let Some(last) = items.len().checked_sub(1) else {
        return Vec::new();
    };
    let mut used = items[last].cells(g);
    let mut keep = Vec::new();
    for (i, item) in items[..last].iter().enumerate() {
        let need = item.cells(g) + GAP;
        if used + need > max {
            // Later, shorter items could still fit, but skipping around reorders the bar
            // between sizes; a stable prefix is easier to learn.
            break;
        }
        used += need;
        keep.push(i);
    }
    keep.push(last);
    keep
}

/// One-line bar of key hints, e.g. `q quit  r refresh  ? help`.
pub struct KeyHints<'a> {
    items: &'a [KeyHint],
    glyphs: Glyphs,
    palette: Palette,
}

impl<'a> KeyHints<'a> {
    pub fn new(items: &'a [KeyHint], glyphs: Glyphs) -> Self {
        Self {
            items,
            glyphs,
            palette: Palette::default(),
        }
    }

    pub fn palette(mut self, palette: Palette) -> Self {
        self.palette = palette;
        self
    }

    pub fn line(&self, max: usize) -> Line<'static> {
        let (g, p) = (&self.glyphs, &self.palette);
        let mut spans = Vec::new();
        for (n, i) in fit_hints(self.items, max, g).into_iter().enumerate() {
            let item = &self.items[i];
            if n > 0 {
                spans.push(Span::raw(" ".repeat(GAP)));
            }
            let key_style = if item.dangerous { p.danger } else { p.key };
            spans.push(Span::styled(item.key.clone(), key_style));
            if item.dangerous {
                spans.push(Span::styled(g.danger, p.danger));
            }
            spans.push(Span::styled(format!(" {}", item.description), p.normal));
        }
        let line = Line::from(spans);
        if line.width() > max {
            // Only the kept last item can overflow: show as much of it as fits.
            let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
            return Line::raw(fit(&text, max, g.ellipsis));
        }
        line
    }
}

impl Widget for KeyHints<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.is_empty() {
            return;
        }
        let line = self.line(area.width as usize);
        buf.set_line(area.x, area.y, &line, area.width);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items() -> Vec<KeyHint> {
        vec![
            KeyHint::new("1", "overview", false),
            KeyHint::new("2", "groups", false),
            KeyHint::new("r", "refresh", false),
            KeyHint::new("D", "destroy", true),
            KeyHint::new("?", "help", false),
        ]
    }

    fn text(line: &Line) -> String {
        line.spans.iter().map(|s| s.content.as_ref()).collect()
    }

    #[test]
    fn all_fit_when_wide() {
        assert_eq!(
            fit_hints(&items(), 200, &Glyphs::ASCII),
            vec![0, 1, 2, 3, 4]
        );
    }

    #[test]
    fn drops_from_the_end_but_keeps_help() {
        // "1 overview" (10) + 2 + "2 groups" (8) + 2 + "? help" (6) = 28
        assert_eq!(fit_hints(&items(), 28, &Glyphs::ASCII), vec![0, 1, 4]);
        assert_eq!(fit_hints(&items(), 27, &Glyphs::ASCII), vec![0, 4]);
        assert_eq!(fit_hints(&items(), 3, &Glyphs::ASCII), vec![4]);
    }

    #[test]
    fn empty_is_empty() {
        assert!(fit_hints(&[], 80, &Glyphs::ASCII).is_empty());
    }

    #[test]
    fn dangerous_key_is_marked_and_styled() {
        let items = items();
        let bar = KeyHints::new(&items, Glyphs::ASCII).palette(Palette::mono());
        let line = bar.line(200);
        assert_eq!(
            text(&line),
            "1 overview  2 groups  r refresh  D! destroy  ? help"
        );
        let d = line.spans.iter().find(|s| s.content == "D").expect("D key");
        assert_eq!(d.style, Palette::mono().danger);
        let r = line.spans.iter().find(|s| s.content == "r").expect("r key");
        assert_eq!(r.style, Palette::mono().key);
    }

    #[test]
    fn lone_help_is_cut_to_width() {
        let items = items();
        let line = KeyHints::new(&items, Glyphs::ASCII).line(4);
        assert_eq!(text(&line), "? h~");
    }
}
