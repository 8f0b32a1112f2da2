use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Widget};

use crate::text::{width, wrap};
use crate::{centered_rect, Glyphs, Palette};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfirmMode {
    /// Yes/No buttons; `yes` tells which one is focused.
    YesNo { yes: bool },
    /// The user must type `expected` exactly; `typed` is what they typed so far.
    Typed { expected: String, typed: String },
}

/// Centred confirmation popup for actions that change the host.
pub struct ConfirmDialog<'a> {
    title: &'a str,
    message: &'a [String],
    mode: &'a ConfirmMode,
    glyphs: Glyphs,
    palette: Palette,
}

const MAX_WIDTH: u16 = 64;

impl<'a> ConfirmDialog<'a> {
    pub fn new(
        title: &'a str,
        message: &'a [String],
        mode: &'a ConfirmMode,
        glyphs: Glyphs,
    ) -> Self {
        Self {
            title,
            message,
            mode,
            glyphs,
            palette: Palette::default(),
        }
    }

    pub fn palette(mut self, palette: Palette) -> Self {
        self.palette = palette;
        self
    }

    fn prompt(&self) -> Vec<Line<'static>> {
        let p = &self.palette;
        match self.mode {
            ConfirmMode::YesNo { yes } => {
                // Brackets mark focus so it shows without reverse video too.
                let button = |label: &str, focused: bool| {
                    if focused {
                        Span::styled(format!("[ {label} ]"), p.selected)
                    } else {
                        Span::raw(format!("  {label}  "))
                    }
                };
                vec![Line::from(vec![
                    button("Yes", *yes),
                    Span::raw("   "),
                    button("No", !*yes),
                ])
                .centered()]
            }
            ConfirmMode::Typed { expected, typed } => {
                let ok = typed == expected;
                // The phrase gets a line of its own: long phrases must never be cut.
                vec![
                    Line::raw("Type this to confirm (esc cancels):"),
                    Line::from(Span::styled(expected.clone(), p.danger)),
                    Line::from(vec![
                        Span::styled("> ", p.key),
                        Span::styled(typed.clone(), if ok { p.ok } else { p.normal }),
                        Span::styled("_", p.dim),
                    ]),
                ]
            }
        }
    }
}

impl Widget for ConfirmDialog<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let (g, p) = (&self.glyphs, &self.palette);
        let prompt = self.prompt();
        let content_w = self
            .message
            .iter()
            .map(|m| width(m))
            .chain(prompt.iter().map(|l| l.width()))
            .chain([width(self.title) + 2])
            .max()
            .unwrap_or(0) as u16;
        let popup_w = (content_w + 4).clamp(24, MAX_WIDTH).min(area.width);
        let text_w = popup_w.saturating_sub(4) as usize;
        let body: Vec<Line> = self
            .message
            .iter()
            .flat_map(|m| wrap(m, text_w))
            .map(Line::raw)
            .collect();
        let popup_h = (body.len() + 1 + prompt.len() + 2) as u16;
        let popup = centered_rect(area, popup_w, popup_h);
        if popup.width < 6 || popup.height < 3 {
            return;
        }
        Clear.render(popup, buf);
        let block = g
            .block()
            .title(Line::styled(format!(" {} ", self.title), p.danger));
        let inner = block.inner(popup);
        block.render(popup, buf);
        let inner = crate::layout::padded(inner);
        let blank = Line::raw("");
        let lines = body.iter().chain([&blank]).chain(prompt.iter());
        for (y, line) in (inner.y..inner.bottom()).zip(lines) {
            // Rendering the Line as a widget honours its alignment (the centred buttons).
            line.render(Rect::new(inner.x, y, inner.width, 1), buf);
        }
    }
}
