//! The Host view's state: the status page (read in the background like the inventory) and
//! how far the journal is scrolled back.

use crate::ops::host_status::HostStatus;

/// Journal lines the view reads; the screen shows the newest that fit, the rest by scrolling.
pub const JOURNAL_LINES: usize = 200;
/// While the view is shown it reads the host again every this many console ticks (seconds).
pub const REFRESH_EVERY: u64 = 2;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostView {
    pub status: Option<HostStatus>,
    /// Why the last read failed (the last good status stays on screen).
    pub error: Option<String>,
    /// A read is under way: ticks and `r` do not start another.
    pub loading: bool,
    /// Journal lines scrolled back from the newest (0: the newest line is at the bottom).
    pub scroll: usize,
    pub ticks: u64,
}
