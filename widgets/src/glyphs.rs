use ratatui::symbols::border;
use ratatui::widgets::Block;

/// The characters a screen is drawn with. `UNICODE` needs a font with box drawing and a few
/// symbols; `ASCII` draws the same shapes with 7-bit characters for bare consoles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Glyphs {
    pub ascii: bool,
    pub border: border::Set<'static>,
    /// Tree branch to a member that has a sibling below it.
    pub tree_branch: &'static str,
    /// Tree branch to the last member of a group.
    pub tree_last: &'static str,
    pub ok: &'static str,
    pub warn: &'static str,
    pub bad: &'static str,
    pub info: &'static str,
    /// Gutter marker of the selected row: makes selection visible without reverse video.
    pub cursor: &'static str,
    pub more_above: &'static str,
    pub more_below: &'static str,
    pub ellipsis: &'static str,
    pub separator: &'static str,
    pub rule: &'static str,
    pub bullet: &'static str,
    /// Marks a dangerous binding in hints and help.
    pub danger: &'static str,
    /// Bar heights from empty to full, for graphs drawn one character per sample.
    pub levels: [&'static str; 9],
    /// Five heights for one-character bars standing on a line (one per CPU core).
    pub core_levels: [&'static str; 5],
}

const ASCII_BORDER: border::Set<'static> = border::Set {
    top_left: "+",
    top_right: "+",
    bottom_left: "+",
    bottom_right: "+",
    vertical_left: "|",
    vertical_right: "|",
    horizontal_top: "-",
    horizontal_bottom: "-",
};

impl Glyphs {
    pub const UNICODE: Glyphs = Glyphs {
        ascii: false,
        border: border::PLAIN,
        tree_branch: "├─ ",
        tree_last: "└─ ",
        ok: "✔",
        warn: "▲",
        bad: "✘",
        info: "•",
        cursor: "▶",
        more_above: "↑",
        more_below: "↓",
        ellipsis: "…",
        separator: "│",
        rule: "─",
        bullet: "•",
        danger: "!",
        levels: [" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"],
        core_levels: ["▁", "▂", "▄", "▆", "█"],
    };

    /// The Linux text console (`TERM=linux`): its default font holds code page 437 and not
    /// much more, so no ✔ ✘ ▶ … even with a UTF-8 locale. Box drawing, arrows, shades and
    /// the few marks below are all in it, as systemd assumes for its status output there.
    pub const LINUX_CONSOLE: Glyphs = Glyphs {
        ascii: false,
        border: border::PLAIN,
        tree_branch: "├─ ",
        tree_last: "└─ ",
        ok: "√",
        warn: "▲",
        bad: "X",
        info: "•",
        cursor: "►",
        more_above: "↑",
        more_below: "↓",
        ellipsis: "~",
        separator: "│",
        rule: "─",
        bullet: "•",
        danger: "!",
        levels: [" ", "░", "░", "▒", "▒", "▓", "▓", "█", "█"],
        core_levels: ["_", "░", "▒", "▓", "█"],
    };

    pub const ASCII: Glyphs = Glyphs {
        ascii: true,
        border: ASCII_BORDER,
        tree_branch: "|- ",
        tree_last: "`- ",
        ok: "[ok]",
        warn: "[!!]",
        bad: "[XX]",
        info: "[--]",
        cursor: ">",
        more_above: "^",
        more_below: "v",
        ellipsis: "~",
        separator: "|",
        rule: "-",
        bullet: "*",
        danger: "!",
        levels: [" ", ".", ".", "-", "-", "=", "=", "#", "#"],
        core_levels: ["_", ".", "-", "=", "#"],
    };

    pub fn new(ascii: bool) -> Self {
        if ascii {
            Self::ASCII
        } else {
            Self::UNICODE
        }
    }

    /// The set for a terminal: ASCII when asked, the Linux console's own, else Unicode.
    pub fn for_terminal(ascii: bool, linux_console: bool) -> Self {
        match (ascii, linux_console) {
            (true, _) => Self::ASCII,
            (false, true) => Self::LINUX_CONSOLE,
            (false, false) => Self::UNICODE,
        }
    }

    /// A bordered block drawn with this set's border characters.
    pub fn block(&self) -> Block<'static> {
        Block::bordered().border_set(self.border)
    }
}

impl Default for Glyphs {
    fn default() -> Self {
        Self::UNICODE
    }
}
