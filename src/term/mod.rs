//! The terminal the console runs on: what it can show, and how big it is.
//!
//! The owner reaches the host over a serial line, SSH or the Linux text console. On a serial
//! line the tty reports 0x0 and never sends SIGWINCH, and the locale is often `C`, so before
//! the TUI starts the app calls:
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use phyllome::term::{ensure_size, parse_size, TermProfile};
//! let size = Some(parse_size("120x40")?); // from `--size`, usually None
//! let outcome = ensure_size(size)?;       // before ratatui::init()
//! let profile = TermProfile::from_env(false);
//! tracing::info!("{outcome}; ascii={} color={}", profile.ascii, profile.color);
//! # Ok(()) }
//! ```
//!
//! and, while it runs, [`requery_size`] on Ctrl-L, straight from the handler of the key event
//! the `EventStream` yielded (see its notes: crossterm's reader lock decides where it can be
//! called), followed by `terminal.autoresize()` and `terminal.clear()` for a full repaint.
//!
//! Parsing of the terminal's answers ([`scan_replies`]) is pure and separate from the tty I/O,
//! which works on any tty given as a descriptor ([`ensure_size_on`], [`query_size`]) so that
//! tests can run it against a pseudo-terminal.

mod profile;
mod query;
mod reply;
mod size;

pub use profile::{AsciiReason, TermProfile};
pub use query::{
    ensure_size, ensure_size_on, query_size, reported_size, requery_size, set_size, SizeOutcome,
    SizeSource, TermError, QUERY, QUERY_TIMEOUT,
};
pub use reply::{scan_replies, Replies};
pub use size::{parse_size, SizeError, TermSize, MAX_DIMENSION};
