use ratatui::style::{Color, Modifier, Style};

/// Named styles. `mono()` uses only modifiers (bold, reverse, dim, underline) so it honours
/// NO_COLOR; callers never pick colours themselves, so the whole UI switches in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Palette {
    pub color: bool,
    pub normal: Style,
    pub title: Style,
    pub selected: Style,
    pub dim: Style,
    pub key: Style,
    pub danger: Style,
    pub ok: Style,
    pub warn: Style,
    pub bad: Style,
    pub info: Style,
}

impl Palette {
    pub fn new(color: bool) -> Self {
        if color {
            Self::colored()
        } else {
            Self::mono()
        }
    }

    pub fn colored() -> Self {
        Self {
            color: true,
            normal: Style::new(),
            title: Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
            selected: Style::new().add_modifier(Modifier::REVERSED),
            dim: Style::new().fg(Color::DarkGray),
            key: Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
            danger: Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            ok: Style::new().fg(Color::Green),
            warn: Style::new().fg(Color::Yellow),
            bad: Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            info: Style::new().fg(Color::Blue),
        }
    }

    pub fn mono() -> Self {
        Self {
            color: false,
            normal: Style::new(),
            title: Style::new().add_modifier(Modifier::BOLD),
            selected: Style::new().add_modifier(Modifier::REVERSED),
            dim: Style::new().add_modifier(Modifier::DIM),
            key: Style::new().add_modifier(Modifier::BOLD),
            danger: Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
            ok: Style::new(),
            warn: Style::new().add_modifier(Modifier::BOLD),
            bad: Style::new().add_modifier(Modifier::BOLD),
            info: Style::new(),
        }
    }
}

impl Default for Palette {
    fn default() -> Self {
        Self::colored()
    }
}
