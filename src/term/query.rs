//! Making sure the tty has a size before the TUI starts, and re-asking the terminal later.
//!
//! A serial tty reports 0x0 until someone runs `stty rows/cols`, and a serial line never sends
//! SIGWINCH, so crossterm (and with it ratatui) would draw into a 0x0 area. We ask the terminal
//! itself and write the answer into the tty with `tcsetwinsize`, where crossterm reads it.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use rustix::termios::{self, OptionalActions, QueueSelector, SpecialCodeIndex, Termios, Winsize};

use super::reply::{scan_replies, Replies};
use super::size::TermSize;

/// How long to wait for the terminal's answer. At 9600 baud the query and the reply take about
/// 40 ms on the wire; a terminal that has not answered in 300 ms does not answer.
pub const QUERY_TIMEOUT: Duration = Duration::from_millis(300);

/// Save the cursor, ask for the text area size (xterm), move as far down-right as the terminal
/// allows, ask where the cursor is, restore the cursor. Terminals answer in order, so the cursor
/// report is the last answer and nothing of ours is left to leak into the app's input once it
/// has arrived.
pub const QUERY: &[u8] = b"\x1b7\x1b[18t\x1b[999;999H\x1b[6n\x1b8";

/// The final size and where it came from, for the log and the status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeOutcome {
    pub size: TermSize,
    pub source: SizeSource,
}

/// Where a size came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeSource {
    /// The tty already had a size (a local terminal, SSH, or `stty` was run).
    Reported,
    /// `--size` was given and has been set on the tty.
    Override,
    /// The terminal answered the query and the answer has been set on the tty.
    Queried,
    /// Nothing better was known; 80x24 has been set on the tty.
    Fallback,
}

impl std::fmt::Display for SizeOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let from = match self.source {
            SizeSource::Reported => "reported by the tty",
            SizeSource::Override => "from --size",
            SizeSource::Queried => "asked from the terminal",
            SizeSource::Fallback => "fallback, the terminal did not answer",
        };
        write!(f, "terminal size {} ({from})", self.size)
    }
}

/// Why the terminal could not be sized.
#[derive(Debug, thiserror::Error)]
pub enum TermError {
    #[error("No terminal to size")]
    NoTty(#[source] io::Error),
    #[error("Cannot read the terminal mode")]
    GetMode(#[source] io::Error),
    #[error("Cannot set the terminal mode")]
    SetMode(#[source] io::Error),
    #[error("Cannot write to the terminal")]
    Write(#[source] io::Error),
    #[error("Cannot read from the terminal")]
    Read(#[source] io::Error),
    #[error("Cannot set the terminal size to {size}")]
    SetSize {
        size: TermSize,
        #[source]
        source: io::Error,
    },
    #[error("Terminal did not report its size")]
    NoAnswer(#[source] io::Error),
}

/// Make sure the controlling terminal has a usable size; call once before the TUI starts
/// (before `ratatui::init()`), with `--size` as `override_size`.
///
/// Order: the override; else the size the tty reports when it is sane; else the terminal's
/// answer to a query (300 ms at most); else 80x24. Whatever is chosen is set on the tty, so
/// crossterm and ratatui see it. The terminal mode is restored before returning.
pub fn ensure_size(override_size: Option<TermSize>) -> Result<SizeOutcome, TermError> {
    let tty = open_tty()?;
    ensure_size_on(&tty, override_size, QUERY_TIMEOUT)
}

/// [`ensure_size`] on a given tty (for tests, a pty slave).
pub fn ensure_size_on(
    tty: impl AsFd,
    override_size: Option<TermSize>,
    timeout: Duration,
) -> Result<SizeOutcome, TermError> {
    let tty = tty.as_fd();
    if let Some(size) = override_size {
        set_size(tty, size)?;
        return Ok(SizeOutcome {
            size,
            source: SizeSource::Override,
        });
    }
    if let Some(size) = reported_size(tty) {
        return Ok(SizeOutcome {
            size,
            source: SizeSource::Reported,
        });
    }
    let (size, source) = match query_size(tty, timeout)? {
        Some(size) => (size, SizeSource::Queried),
        None => (TermSize::FALLBACK, SizeSource::Fallback),
    };
    set_size(tty, size)?;
    Ok(SizeOutcome { size, source })
}

/// The size the tty reports, when it is one a terminal could have (a serial tty says 0x0).
pub fn reported_size(tty: impl AsFd) -> Option<TermSize> {
    let ws = termios::tcgetwinsize(tty).ok()?;
    TermSize::new(ws.ws_col, ws.ws_row)
}

/// Ask the terminal on `tty` for its size: raw mode, [`QUERY`], read replies until the cursor
/// report or `timeout`, restore the mode. `Ok(None)` when nothing usable came back.
///
/// Reads use VMIN=0/VTIME=1, so each `read` returns what has arrived or nothing after 100 ms;
/// that bounds the wait without `poll` and without a thread.
pub fn query_size(tty: impl AsFd, timeout: Duration) -> Result<Option<TermSize>, TermError> {
    let tty = tty.as_fd();
    let guard = RawMode::enter(tty)?;
    let result = exchange(tty, timeout);
    if matches!(&result, Ok(r) if !r.complete()) {
        // A cursor report that turns up after we stopped waiting would sit in crossterm's queue
        // and be taken by the first Ctrl-L re-query as if it were fresh. Drop what has arrived;
        // losing keys typed in the first 300 ms is the lesser harm.
        let _ = termios::tcflush(tty, QueueSelector::IFlush);
    }
    // Restore before looking at the result: the terminal must be left as found either way.
    guard.restore()?;
    Ok(result?.size())
}

fn exchange(tty: BorrowedFd<'_>, timeout: Duration) -> Result<Replies, TermError> {
    write_all(tty, QUERY)?;
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::with_capacity(64);
    let mut buf = [0u8; 256];
    loop {
        let replies = scan_replies(&seen);
        if replies.complete() || Instant::now() >= deadline {
            return Ok(replies);
        }
        match rustix::io::read(tty, &mut buf) {
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => {}
            Err(e) => return Err(TermError::Read(e.into())),
        }
        // Keys typed by the owner can keep arriving; the reply is short, so only the tail
        // matters once there is a lot of junk.
        if seen.len() > 4096 {
            seen.drain(..seen.len() - 64);
        }
    }
}

fn write_all(tty: BorrowedFd<'_>, mut bytes: &[u8]) -> Result<(), TermError> {
    while !bytes.is_empty() {
        match rustix::io::write(tty, bytes) {
            Ok(0) => return Err(TermError::Write(io::ErrorKind::WriteZero.into())),
            Ok(n) => bytes = &bytes[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(TermError::Write(e.into())),
        }
    }
    Ok(())
}

/// Set the size on the tty. The kernel sends SIGWINCH to the tty's foreground process group
/// when the size changes, which is how a running crossterm learns of it.
pub fn set_size(tty: impl AsFd, size: TermSize) -> Result<(), TermError> {
    let ws = Winsize {
        ws_row: size.rows(),
        ws_col: size.cols(),
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    termios::tcsetwinsize(tty, ws).map_err(|e| TermError::SetSize {
        size,
        source: e.into(),
    })
}

/// The controlling terminal, as crossterm finds it: `/dev/tty`, else stdin when it is a tty.
fn open_tty() -> Result<File, TermError> {
    match File::options().read(true).write(true).open("/dev/tty") {
        Ok(f) => Ok(f),
        Err(e) => {
            let stdin = rustix::stdio::stdin();
            if termios::isatty(stdin) {
                let owned = stdin.try_clone_to_owned().map_err(TermError::NoTty)?;
                Ok(File::from(owned))
            } else {
                Err(TermError::NoTty(e))
            }
        }
    }
}

/// Raw mode with timed reads, restored by [`RawMode::restore`] or, on an early return, by drop.
struct RawMode<'fd> {
    tty: BorrowedFd<'fd>,
    saved: Option<Termios>,
}

impl<'fd> RawMode<'fd> {
    fn enter(tty: BorrowedFd<'fd>) -> Result<Self, TermError> {
        let saved = termios::tcgetattr(tty).map_err(|e| TermError::GetMode(e.into()))?;
        let mut raw = saved.clone();
        raw.make_raw();
        raw.special_codes[SpecialCodeIndex::VMIN] = 0;
        raw.special_codes[SpecialCodeIndex::VTIME] = 1;
        termios::tcsetattr(tty, OptionalActions::Now, &raw)
            .map_err(|e| TermError::SetMode(e.into()))?;
        Ok(RawMode {
            tty,
            saved: Some(saved),
        })
    }

    fn restore(mut self) -> Result<(), TermError> {
        match self.saved.take() {
            Some(saved) => termios::tcsetattr(self.tty, OptionalActions::Now, &saved)
                .map_err(|e| TermError::SetMode(e.into())),
            None => Ok(()),
        }
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        if let Some(saved) = self.saved.take() {
            // Nothing sensible to do with an error here; `restore` reports it on normal paths.
            let _ = termios::tcsetattr(self.tty, OptionalActions::Now, &saved);
        }
    }
}

/// Ask the terminal again while the TUI runs (bind it to Ctrl-L), and set the answer on the tty.
///
/// While the app runs, crossterm's `EventStream` owns stdin, so this does not read the tty
/// itself: it sends the save/move part of the query and lets `crossterm::cursor::position()`
/// send `ESC [ 6 n` and take the reply out of crossterm's own event reader, which keeps any
/// keys typed meanwhile queued for the app and never lets the reply reach it as input.
///
/// Call it synchronously from the code that handles the key event the `EventStream` just
/// yielded, before polling the stream again: the stream's helper thread is idle then. While
/// that thread waits for input it holds crossterm's reader lock, and `position()` gives up
/// after 2 s. The same 2 s bound applies when the terminal does not answer; the app stays
/// frozen for that long at worst.
///
/// When the size changed, the kernel sends SIGWINCH and crossterm yields `Event::Resize`;
/// ratatui's next `draw` resizes on its own. Ctrl-L should also force a full repaint
/// (`terminal.clear()`), which is what the key means on a noisy serial line.
pub fn requery_size() -> Result<SizeOutcome, TermError> {
    let mut out = io::stdout().lock();
    out.write_all(b"\x1b7\x1b[999;999H")
        .and_then(|()| out.flush())
        .map_err(TermError::Write)?;
    drop(out);
    let position = crossterm::cursor::position();
    let mut out = io::stdout().lock();
    out.write_all(b"\x1b8")
        .and_then(|()| out.flush())
        .map_err(TermError::Write)?;
    drop(out);
    let (col, row) = position.map_err(TermError::NoAnswer)?;
    let size = TermSize::new(col.saturating_add(1), row.saturating_add(1)).ok_or_else(|| {
        TermError::NoAnswer(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the terminal reported cell {};{}",
                u32::from(row) + 1,
                u32::from(col) + 1
            ),
        ))
    })?;
    let tty = open_tty()?;
    set_size(&tty, size)?;
    Ok(SizeOutcome {
        size,
        source: SizeSource::Queried,
    })
}
