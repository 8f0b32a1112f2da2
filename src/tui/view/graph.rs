//! Sweep graphs for the monitor screens (their numbers come from [`crate::fmt`]).
//!
//! A scrolling graph moves every column at every sample, so a terminal receives the whole
//! graph again each second; a sweep graph (a heart monitor's trace) writes the new column in
//! place and blanks the one after it as the cursor, so only two cells per row change. On a
//! serial line that is the difference between a few dozen and a few hundred bytes a second.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;

use crate::monitor::ring::Ring;

/// A sweep graph of the newest `area.width - 1` samples of `ring`, scaled to `max`.
/// `pushed` is how many samples the series ever had: it pins each sample to a column.
pub struct Sweep<'a> {
    pub ring: &'a Ring<f32>,
    pub pushed: u64,
    pub max: f32,
    /// Bar heights from empty to full (the theme's glyph set).
    pub levels: &'a [&'static str; 9],
    pub style: Style,
}

impl Sweep<'_> {
    pub fn render(&self, area: Rect, buf: &mut Buffer) {
        let w = area.width as usize;
        let h = area.height as usize;
        if w < 2 || h == 0 {
            return;
        }
        let levels = self.levels;
        let scale = if self.max > 0.0 && self.max.is_finite() {
            self.max
        } else {
            1.0
        };
        // Every column is written (blank when no sample), so a column left over from an
        // older sample is always overwritten in place, never cleared separately.
        let mut cols: Vec<Option<f32>> = vec![None; w];
        for (j, v) in self.ring.iter().rev().take(w - 1).enumerate() {
            let sample = self.pushed.saturating_sub(1 + j as u64);
            cols[(sample % w as u64) as usize] = Some(v);
        }
        for (x, v) in cols.into_iter().enumerate() {
            // Eighths of the full height this column fills.
            let eighths = match v {
                Some(v) if v.is_finite() && v > 0.0 => {
                    (((v / scale).min(1.0) * (h * 8) as f32).round() as usize).max(1)
                }
                _ => 0,
            };
            for row in 0..h {
                // Row 0 is the top; fill from the bottom.
                let from_bottom = h - 1 - row;
                let fill = eighths.saturating_sub(from_bottom * 8).min(8);
                let cell = &mut buf[(area.x + x as u16, area.y + row as u16)];
                cell.set_symbol(levels[fill]).set_style(self.style);
            }
        }
    }
}

/// The largest finite value of the newest `n` samples.
pub fn window_max(ring: &Ring<f32>, n: usize) -> f32 {
    ring.iter()
        .rev()
        .take(n)
        .filter(|v| v.is_finite())
        .fold(0.0, f32::max)
}
