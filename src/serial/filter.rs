//! What of a guest's serial output may reach the host's terminal as bytes. A guest is
//! untrusted: an OSC 52 sequence would write the host's clipboard, a title report or a device
//! status query makes the terminal type its answer into whatever reads the host's keyboard,
//! DCS and 8-bit C1 reach parsers that were never meant for a guest. So the raw attach and
//! `vm log` pass only printable text (UTF-8), CR, LF, TAB and BS, SGR colours, cursor movement
//! and erasing (`CSI … A B C D E F G H d f J K`, `ESC 7`/`ESC 8`); everything else is dropped,
//! the whole sequence with its payload. The filter is a byte-at-a-time state machine, so a
//! sequence split across reads is handled like a whole one.

/// Final bytes of the CSI sequences that pass (with plain numeric parameters only):
/// SGR, cursor movement, erase in display and in line.
const CSI_FINALS: &[u8] = b"mABCDEFGHdfJK";
/// Longest parameter string of a CSI that passes; longer ones are dropped.
const CSI_MAX: usize = 32;
/// Payload of a string sequence (OSC, DCS, SOS, PM, APC) after which the filter stops looking
/// for its terminator: what follows is printed as text, never as a sequence.
const STRING_MAX: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ground,
    /// After ESC.
    Escape,
    /// ESC followed by intermediates (ESC ( B and the like): dropped up to the final byte.
    EscapeIntermediate,
    /// After ESC [: parameters collected in `csi`; `bad` once anything not allowed appeared.
    Csi {
        bad: bool,
    },
    /// Inside OSC/DCS/SOS/PM/APC; `esc` after an ESC that may start the ST terminator.
    Str {
        esc: bool,
        len: usize,
    },
    /// Inside a UTF-8 sequence: bytes still expected.
    Utf8 {
        need: u8,
    },
}

/// A streaming filter; feed it the guest's bytes in any chunks.
#[derive(Debug, Clone)]
pub struct SafeFilter {
    state: State,
    csi: Vec<u8>,
    utf8: Vec<u8>,
}

impl Default for SafeFilter {
    fn default() -> Self {
        Self::new()
    }
}

impl SafeFilter {
    pub fn new() -> Self {
        SafeFilter {
            state: State::Ground,
            csi: Vec::with_capacity(CSI_MAX),
            utf8: Vec::with_capacity(4),
        }
    }

    /// Appends the safe part of `input` to `out`.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &b in input {
            self.byte(b, out);
        }
    }

    /// The safe part of `input`, from a fresh filter.
    pub fn filter(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(input.len());
        SafeFilter::new().push(input, &mut out);
        out
    }

    fn byte(&mut self, b: u8, out: &mut Vec<u8>) {
        match self.state {
            State::Ground => self.ground(b, out),
            State::Escape => self.escape(b, out),
            State::EscapeIntermediate => {
                if b == 0x1b {
                    self.state = State::Escape;
                } else if (0x30..=0x7e).contains(&b) || b == 0x18 || b == 0x1a {
                    self.state = State::Ground;
                }
            }
            State::Csi { bad } => self.csi(b, bad, out),
            State::Str { esc, len } => {
                self.state = match b {
                    0x07 | 0x18 | 0x1a => State::Ground,
                    b'\\' if esc => State::Ground,
                    0x1b => State::Str { esc: true, len },
                    _ if len >= STRING_MAX => State::Ground,
                    _ => State::Str {
                        esc: false,
                        len: len + 1,
                    },
                };
            }
            State::Utf8 { need } => self.utf8_cont(b, need, out),
        }
    }

    fn ground(&mut self, b: u8, out: &mut Vec<u8>) {
        match b {
            0x20..=0x7e | b'\r' | b'\n' | b'\t' | 0x08 => out.push(b),
            0x1b => self.state = State::Escape,
            0xc2..=0xf4 => {
                self.utf8.clear();
                self.utf8.push(b);
                let need = match b {
                    0xc2..=0xdf => 1,
                    0xe0..=0xef => 2,
                    _ => 3,
                };
                self.state = State::Utf8 { need };
            }
            // Other C0 controls, DEL, stray continuation bytes and 8-bit C1 (0x80..0x9f):
            // dropped.
            _ => {}
        }
    }

    fn escape(&mut self, b: u8, out: &mut Vec<u8>) {
        self.state = match b {
            b'[' => {
                self.csi.clear();
                State::Csi { bad: false }
            }
            b']' | b'P' | b'X' | b'^' | b'_' => State::Str { esc: false, len: 0 },
            b'7' | b'8' => {
                out.extend_from_slice(&[0x1b, b]);
                State::Ground
            }
            0x1b => State::Escape,
            0x20..=0x2f => State::EscapeIntermediate,
            // Any other ESC x (RIS, DECID query, keypad modes, ...) is dropped; a control byte
            // aborts the sequence and is handled as text would be.
            0x00..=0x1f => {
                self.state = State::Ground;
                self.ground(b, out);
                self.state
            }
            _ => State::Ground,
        };
    }

    fn csi(&mut self, b: u8, bad: bool, out: &mut Vec<u8>) {
        match b {
            b'0'..=b'9' | b';' | b':' => {
                let bad = bad || self.csi.len() >= CSI_MAX;
                if !bad {
                    self.csi.push(b);
                }
                self.state = State::Csi { bad };
            }
            // Private markers (`?` modes such as mouse reporting) and intermediates: never.
            0x3c..=0x3f | 0x20..=0x2f => self.state = State::Csi { bad: true },
            0x40..=0x7e => {
                if !bad && CSI_FINALS.contains(&b) {
                    out.extend_from_slice(b"\x1b[");
                    out.extend_from_slice(&self.csi);
                    out.push(b);
                }
                self.state = State::Ground;
            }
            0x1b => self.state = State::Escape,
            0x18 | 0x1a => self.state = State::Ground,
            // A control inside a CSI is executed by terminals without ending it; here it is
            // dropped unless it is one we pass anyway.
            b'\r' | b'\n' | b'\t' | 0x08 => out.push(b),
            _ => {}
        }
    }

    fn utf8_cont(&mut self, b: u8, need: u8, out: &mut Vec<u8>) {
        if !(0x80..=0xbf).contains(&b) {
            // A broken sequence: dropped, and this byte starts afresh.
            self.state = State::Ground;
            self.ground(b, out);
            return;
        }
        self.utf8.push(b);
        if need > 1 {
            self.state = State::Utf8 { need: need - 1 };
            return;
        }
        self.state = State::Ground;
        // Overlongs, surrogates and C1 controls written as UTF-8 (U+0080..U+009F) are dropped.
        if let Ok(s) = std::str::from_utf8(&self.utf8) {
            if s.chars().all(|c| !('\u{80}'..='\u{9f}').contains(&c)) {
                out.extend_from_slice(&self.utf8);
            }
        }
    }
}

#[cfg(test)]
#[path = "filter_tests.rs"]
mod tests;
