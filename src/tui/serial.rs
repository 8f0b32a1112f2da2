//! The serial pane: a VM's serial console (or its log) drawn cell by cell from a VT parser,
//! so nothing the guest prints reaches the host's terminal as a sequence of its own. Cloud
//! Hypervisor's serial port has no size: the pane keeps its own (the body of the screen) and
//! the guest learns it only if told (`stty rows R cols C` inside it).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::serial::attach::Role;

/// Lines the pane keeps above its screen.
pub const SCROLLBACK: usize = 5000;

/// The guest's screen: a `vt100` parser (which is neither `Clone` nor `Debug`).
pub struct Term(vt100::Parser);

impl Term {
    pub fn new(rows: u16, cols: u16) -> Self {
        Term(vt100::Parser::new(rows.max(1), cols.max(1), SCROLLBACK))
    }

    pub fn screen(&self) -> &vt100::Screen {
        self.0.screen()
    }
}

impl Clone for Term {
    /// The visible screen and its modes (the scrollback stays behind).
    fn clone(&self) -> Self {
        let (rows, cols) = self.0.screen().size();
        let mut t = Term::new(rows, cols);
        t.0.process(&self.0.screen().state_formatted());
        t
    }
}

impl std::fmt::Debug for Term {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (rows, cols) = self.0.screen().size();
        write!(f, "Term({cols}x{rows})")
    }
}

/// What the pane shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaneMode {
    /// Live: attached through the VM's serial keeper.
    Console,
    /// The serial log, followed as it grows.
    Log,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaneStatus {
    Connecting,
    Attached {
        role: Role,
        direct: bool,
    },
    /// The line closed or never opened; the text says why.
    Closed(String),
}

#[derive(Debug, Clone)]
pub struct SerialPane {
    pub vm: String,
    pub mode: PaneMode,
    pub term: Term,
    pub status: PaneStatus,
    /// Lines scrolled back from the bottom (0: the live screen).
    pub scroll: usize,
    /// A read-only console only watches.
    pub read_only: bool,
}

impl SerialPane {
    pub fn new(vm: &str, mode: PaneMode, cols: u16, rows: u16, read_only: bool) -> Self {
        let (r, c) = screen_size(cols, rows);
        SerialPane {
            vm: vm.to_string(),
            mode,
            term: Term::new(r, c),
            status: PaneStatus::Connecting,
            scroll: 0,
            read_only,
        }
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        self.term.0.process(bytes);
        self.scroll = self.term.0.screen().scrollback();
    }

    /// The console's new size: the pane follows it (the guest does not hear of it).
    pub fn resize(&mut self, cols: u16, rows: u16) {
        let (r, c) = screen_size(cols, rows);
        self.term.0.screen_mut().set_size(r, c);
    }

    pub fn scroll_by(&mut self, lines: i32) {
        let want = if lines < 0 {
            self.scroll.saturating_sub(lines.unsigned_abs() as usize)
        } else {
            self.scroll.saturating_add(lines as usize)
        };
        self.term.0.screen_mut().set_scrollback(want);
        self.scroll = self.term.0.screen().scrollback();
    }

    /// Whether typed keys go to the guest.
    pub fn types(&self) -> bool {
        !self.read_only
            && self.mode == PaneMode::Console
            && matches!(
                self.status,
                PaneStatus::Attached {
                    role: Role::Keys,
                    ..
                }
            )
    }
}

/// The guest screen's size in a console of `cols` x `rows`: the body less the pane's frame
/// (header, footer, two borders and the status line).
pub fn screen_size(cols: u16, rows: u16) -> (u16, u16) {
    (rows.saturating_sub(5).max(1), cols.saturating_sub(2).max(1))
}

/// Ctrl+]: crossterm reads the byte 0x1d as Ctrl+5 on some terminals and Ctrl+] on others.
pub fn is_detach(key: &KeyEvent) -> bool {
    key.modifiers.contains(KeyModifiers::CONTROL)
        && matches!(key.code, KeyCode::Char(']') | KeyCode::Char('5'))
}

/// The bytes a terminal sends for `key`, as the guest's getty expects them.
pub fn key_bytes(key: &KeyEvent) -> Option<Vec<u8>> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let alt = key.modifiers.contains(KeyModifiers::ALT);
    let mut out = Vec::new();
    if alt {
        out.push(0x1b);
    }
    let seq: &[u8] = match key.code {
        KeyCode::Char(c) if ctrl => {
            let b = match c {
                'a'..='z' => c as u8 - b'a' + 1,
                'A'..='Z' => c as u8 - b'A' + 1,
                ' ' | '@' | '2' => 0,
                '[' | '3' => 0x1b,
                '\\' | '4' => 0x1c,
                '^' | '6' => 0x1e,
                '_' | '7' => 0x1f,
                _ => return None,
            };
            out.push(b);
            return Some(out);
        }
        KeyCode::Char(c) => {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            return Some(out);
        }
        KeyCode::Enter => b"\r",
        KeyCode::Backspace => b"\x7f",
        KeyCode::Tab => b"\t",
        KeyCode::BackTab => b"\x1b[Z",
        KeyCode::Esc => b"\x1b",
        KeyCode::Up => b"\x1b[A",
        KeyCode::Down => b"\x1b[B",
        KeyCode::Right => b"\x1b[C",
        KeyCode::Left => b"\x1b[D",
        KeyCode::Home => b"\x1b[H",
        KeyCode::End => b"\x1b[F",
        KeyCode::PageUp => b"\x1b[5~",
        KeyCode::PageDown => b"\x1b[6~",
        KeyCode::Insert => b"\x1b[2~",
        KeyCode::Delete => b"\x1b[3~",
        KeyCode::F(n @ 1..=4) => return Some([b"\x1bO".as_slice(), &[b'O' + n]].concat()),
        _ => return None,
    };
    out.extend_from_slice(seq);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, mods)
    }

    #[test]
    fn keys_become_what_a_terminal_sends() {
        let none = KeyModifiers::NONE;
        let ctrl = KeyModifiers::CONTROL;
        assert_eq!(
            key_bytes(&k(KeyCode::Char('é'), none)).unwrap(),
            "é".as_bytes()
        );
        assert_eq!(key_bytes(&k(KeyCode::Char('c'), ctrl)).unwrap(), [3]);
        assert_eq!(key_bytes(&k(KeyCode::Enter, none)).unwrap(), b"\r");
        assert_eq!(key_bytes(&k(KeyCode::Up, none)).unwrap(), b"\x1b[A");
        assert_eq!(key_bytes(&k(KeyCode::F(1), none)).unwrap(), b"\x1bOP");
        assert!(is_detach(&k(KeyCode::Char(']'), ctrl)));
        assert!(is_detach(&k(KeyCode::Char('5'), ctrl)));
        assert!(!is_detach(&k(KeyCode::Char(']'), none)));
    }

    #[test]
    fn the_pane_scrolls_back_and_follows_resizes() {
        let mut p = SerialPane::new("web", PaneMode::Console, 80, 24, false);
        for i in 0..100 {
            p.feed(format!("line {i}\r\n").as_bytes());
        }
        assert_eq!(p.term.screen().size(), (19, 78));
        p.scroll_by(10);
        assert_eq!(p.scroll, 10);
        // New output does not drop the reader back to the bottom.
        p.feed(b"more\r\n");
        assert!(p.scroll >= 10);
        p.scroll_by(-100);
        assert_eq!(p.scroll, 0);
        p.resize(120, 40);
        assert_eq!(p.term.screen().size(), (35, 118));
    }
}
