//! Escape sequences split across reads, put back together (ncurses' ESCDELAY, vim's
//! `ttimeoutlen`).
//!
//! crossterm reports Esc when an ESC byte is the last one available; on a serial line or a
//! slow link the rest of the sequence often comes in a later read, and then arrives as plain
//! keys: the arrow `ESC [ B` becomes Esc, `[`, `B`, and `B` on the VM list is "rescue boot".
//! This stage sits between crossterm's events and the keymap: a lone Esc is held for a short
//! delay; if the next keys (each within the delay of the one before) complete a CSI or SS3
//! sequence, they become the key crossterm would have reported had the bytes come together;
//! otherwise the Esc and the held keys go on as they came. A complete sequence it does not
//! know is dropped, as crossterm drops one it cannot parse.

use std::time::Duration;

use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use tokio::time::Instant;

/// Long enough for the rest of a sequence to follow an ESC through a UART, a qemu chardev or
/// a USB-serial adapter (whose latency timer batches reads 16 ms apart); short enough not to
/// be felt when Esc closes a popup.
pub const DEFAULT_ESC_DELAY: Duration = Duration::from_millis(DEFAULT_ESC_DELAY_MS);
pub const DEFAULT_ESC_DELAY_MS: u64 = 50;

/// The longest sequence held (after ESC): longer is not a key, so it goes on as typed.
const MAX_HELD: usize = 12;

/// The hold: feed it every event ([`EscJoin::push`]) and call [`EscJoin::expire`] when
/// [`EscJoin::deadline`] passes.
#[derive(Debug, Clone)]
pub struct EscJoin {
    delay: Duration,
    /// A plain Esc, then the characters that may continue it.
    held: Vec<Event>,
    deadline: Option<Instant>,
    /// When the held Esc came, for the log.
    since: Option<Instant>,
}

impl EscJoin {
    /// A zero delay turns the stage off: every event goes on at once.
    pub fn new(delay: Duration) -> EscJoin {
        EscJoin {
            delay,
            held: Vec::new(),
            deadline: None,
            since: None,
        }
    }

    /// When the held events are to go on as they came; `None` while nothing is held.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The events to deliver now, in order, after `event` arrived at `now`.
    pub fn push(&mut self, event: Event, now: Instant) -> Vec<Event> {
        if self.delay.is_zero() {
            return vec![event];
        }
        if self.held.is_empty() {
            if is_plain_esc(&event) {
                self.hold(event, now);
                return Vec::new();
            }
            return vec![event];
        }
        let Some(c) = plain_char(&event) else {
            // Another Esc starts a hold of its own; anything else ends this one.
            let mut out = self.expire();
            if is_plain_esc(&event) {
                self.hold(event, now);
            } else {
                out.push(event);
            }
            return out;
        };
        let mut tail: Vec<char> = self.held[1..].iter().filter_map(plain_char).collect();
        tail.push(c);
        match classify(&tail) {
            Seq::Incomplete if tail.len() < MAX_HELD => {
                self.hold(event, now);
                Vec::new()
            }
            Seq::Key(key) => {
                // The log shows how a line splits sequences, to tune the delay by.
                let waited = self.since.map(|t| now.saturating_duration_since(t));
                tracing::debug!(
                    ?key,
                    keys = tail.len() + 1,
                    ?waited,
                    "split escape sequence joined"
                );
                self.clear();
                vec![Event::Key(key)]
            }
            Seq::Unknown => {
                self.clear();
                Vec::new()
            }
            Seq::Incomplete | Seq::NotASequence => {
                let mut out = self.expire();
                out.push(event);
                out
            }
        }
    }

    /// The delay ran out (or the input ended): the held events, as they came.
    pub fn expire(&mut self) -> Vec<Event> {
        self.deadline = None;
        self.since = None;
        std::mem::take(&mut self.held)
    }

    fn hold(&mut self, event: Event, now: Instant) {
        self.held.push(event);
        self.deadline = Some(now + self.delay);
        self.since.get_or_insert(now);
    }

    fn clear(&mut self) {
        self.expire();
    }
}

fn is_plain_esc(event: &Event) -> bool {
    matches!(event, Event::Key(k) if k.code == KeyCode::Esc
        && k.modifiers.is_empty()
        && k.kind == KeyEventKind::Press)
}

/// A character key as crossterm reports one byte of a sequence (uppercase comes with Shift).
fn plain_char(event: &Event) -> Option<char> {
    match event {
        Event::Key(KeyEvent {
            code: KeyCode::Char(c),
            modifiers,
            kind: KeyEventKind::Press,
            ..
        }) if (KeyModifiers::SHIFT).contains(*modifiers) => Some(*c),
        _ => None,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Seq {
    /// Could still become a sequence.
    Incomplete,
    /// A whole sequence naming this key.
    Key(KeyEvent),
    /// A whole sequence that names no key (a report, a mouse event): dropped.
    Unknown,
    /// Not a sequence: the keys were typed.
    NotASequence,
}

/// What follows an ESC: `O` and a final byte (SS3), or `[`, parameters `0-9;` and a final
/// byte `@`–`~` (CSI), or the Linux console's `[ [ A`–`E` (F1–F5).
fn classify(tail: &[char]) -> Seq {
    match tail {
        ['O'] | ['['] | ['[', '['] => Seq::Incomplete,
        ['O', c] => ss3(*c).map_or(Seq::NotASequence, |code| Seq::Key(code.into())),
        ['[', '[', c @ 'A'..='E'] => Seq::Key(KeyCode::F(*c as u8 - b'A' + 1).into()),
        ['[', '[', _] => Seq::NotASequence,
        ['[', params @ .., last] => {
            if !params.iter().all(|c| c.is_ascii_digit() || *c == ';') {
                Seq::NotASequence
            } else if last.is_ascii_digit() || *last == ';' {
                Seq::Incomplete
            } else if ('@'..='~').contains(last) {
                csi(params, *last).map_or(Seq::Unknown, Seq::Key)
            } else {
                Seq::NotASequence
            }
        }
        _ => Seq::NotASequence,
    }
}

fn ss3(c: char) -> Option<KeyCode> {
    Some(match c {
        'A' => KeyCode::Up,
        'B' => KeyCode::Down,
        'C' => KeyCode::Right,
        'D' => KeyCode::Left,
        'H' => KeyCode::Home,
        'F' => KeyCode::End,
        'P' => KeyCode::F(1),
        'Q' => KeyCode::F(2),
        'R' => KeyCode::F(3),
        'S' => KeyCode::F(4),
        _ => return None,
    })
}

/// A CSI sequence as crossterm's parser reads it.
fn csi(params: &[char], last: char) -> Option<KeyEvent> {
    let text: String = params.iter().collect();
    let nums: Vec<u8> = if text.is_empty() {
        Vec::new()
    } else {
        text.split(';')
            .map(|p| p.parse::<u8>().ok())
            .collect::<Option<_>>()?
    };
    if last == 'Z' {
        return nums
            .is_empty()
            .then(|| KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT));
    }
    if last == '~' {
        let code = special(*nums.first()?)?;
        return match nums[1..] {
            [] => Some(code.into()),
            [m] => Some(KeyEvent::new(code, modifiers(m))),
            _ => None,
        };
    }
    // `R` after digits is a cursor position report; crossterm keeps it from the app.
    let code = match last {
        'R' => return None,
        'P' | 'Q' | 'S' | 'A' | 'B' | 'C' | 'D' | 'H' | 'F' => ss3(last)?,
        _ => return None,
    };
    match nums[..] {
        [] => Some(code.into()),
        [1, m] => Some(KeyEvent::new(code, modifiers(m))),
        _ => None,
    }
}

/// `ESC [ n ~`.
fn special(n: u8) -> Option<KeyCode> {
    Some(match n {
        1 | 7 => KeyCode::Home,
        2 => KeyCode::Insert,
        3 => KeyCode::Delete,
        4 | 8 => KeyCode::End,
        5 => KeyCode::PageUp,
        6 => KeyCode::PageDown,
        v @ 11..=15 => KeyCode::F(v - 10),
        v @ 17..=21 => KeyCode::F(v - 11),
        v @ 23..=26 => KeyCode::F(v - 12),
        v @ 28..=29 => KeyCode::F(v - 15),
        v @ 31..=34 => KeyCode::F(v - 17),
        _ => return None,
    })
}

/// xterm's modifier parameter: 1 + a bit mask (Shift 1, Alt 2, Ctrl 4, Super 8).
fn modifiers(m: u8) -> KeyModifiers {
    let mask = m.saturating_sub(1);
    let mut out = KeyModifiers::empty();
    for (bit, m) in [
        (1, KeyModifiers::SHIFT),
        (2, KeyModifiers::ALT),
        (4, KeyModifiers::CONTROL),
        (8, KeyModifiers::SUPER),
        (16, KeyModifiers::HYPER),
        (32, KeyModifiers::META),
    ] {
        if mask & bit != 0 {
            out |= m;
        }
    }
    out
}

#[cfg(test)]
mod tests;
