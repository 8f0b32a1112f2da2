use ratatui::style::Style;
use ratatui::text::Span;

use crate::{Glyphs, Palette};

/// How good a thing is. Rendered as a glyph plus text, so the meaning survives NO_COLOR and
/// colour-blind eyes; the style only reinforces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Ready,
    Warn,
    Blocked,
    Info,
}

impl Tone {
    pub fn mark(self, g: &Glyphs) -> &'static str {
        match self {
            Tone::Ready => g.ok,
            Tone::Warn => g.warn,
            Tone::Blocked => g.bad,
            Tone::Info => g.info,
        }
    }

    pub fn style(self, p: &Palette) -> Style {
        match self {
            Tone::Ready => p.ok,
            Tone::Warn => p.warn,
            Tone::Blocked => p.bad,
            Tone::Info => p.info,
        }
    }
}

/// `✔ ready` / `[ok] ready`, styled for the tone. An empty text gives the mark alone.
pub fn badge(tone: Tone, text: &str, g: &Glyphs, p: &Palette) -> Span<'static> {
    let content = if text.is_empty() {
        tone.mark(g).to_string()
    } else {
        format!("{} {text}", tone.mark(g))
    };
    Span::styled(content, tone.style(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn badge_text_carries_meaning_in_both_sets() {
        let p = Palette::mono();
        assert_eq!(
            badge(Tone::Ready, "ready", &Glyphs::UNICODE, &p).content,
            "✔ ready"
        );
        assert_eq!(
            badge(Tone::Blocked, "blocked", &Glyphs::ASCII, &p).content,
            "[XX] blocked"
        );
        assert_eq!(badge(Tone::Warn, "", &Glyphs::ASCII, &p).content, "[!!]");
    }

    #[test]
    fn mono_palette_has_no_colour() {
        let p = Palette::mono();
        for tone in [Tone::Ready, Tone::Warn, Tone::Blocked, Tone::Info] {
            let s = tone.style(&p);
            assert!(s.fg.is_none() && s.bg.is_none(), "{tone:?} uses colour");
        }
    }
}
