//! Sweep graphs and compact numbers for the monitor screens.
//!
//! A scrolling graph moves every column at every sample, so a terminal receives the whole
//! graph again each second; a sweep graph (a heart monitor's trace) writes the new column in
//! place and blanks the one after it as the cursor, so only two cells per row change. On a
//! serial line that is the difference between a few dozen and a few hundred bytes a second.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;

use crate::monitor::ring::Ring;

const UNICODE_LEVELS: [&str; 9] = [" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"];
const ASCII_LEVELS: [&str; 9] = [" ", ".", ".", "-", "-", "=", "=", "#", "#"];

/// A sweep graph of the newest `area.width - 1` samples of `ring`, scaled to `max`.
/// `pushed` is how many samples the series ever had: it pins each sample to a column.
pub struct Sweep<'a> {
    pub ring: &'a Ring<f32>,
    pub pushed: u64,
    pub max: f32,
    pub ascii: bool,
    pub style: Style,
}

impl Sweep<'_> {
    pub fn render(&self, area: Rect, buf: &mut Buffer) {
        let w = area.width as usize;
        let h = area.height as usize;
        if w < 2 || h == 0 {
            return;
        }
        let levels = if self.ascii {
            &ASCII_LEVELS
        } else {
            &UNICODE_LEVELS
        };
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

/// Bytes in binary units, at most 5 characters: `512`, `1.0K`, `7.9G`, `12G`.
pub fn bytes(v: u64) -> String {
    scaled(v as f64, 1024.0, &["", "K", "M", "G", "T", "P"])
}

/// A per-second rate like [`bytes`]; `-` when unknown.
pub fn rate(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() && v >= 0.0 => scaled(v, 1024.0, &["", "K", "M", "G", "T", "P"]),
        _ => "-".into(),
    }
}

/// A count per second (operations, packets) in decimal units.
pub fn count(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() && v >= 0.0 => scaled(v, 1000.0, &["", "k", "M", "G", "T"]),
        _ => "-".into(),
    }
}

fn scaled(mut v: f64, base: f64, units: &[&str]) -> String {
    let mut i = 0;
    while v >= base * 0.9995 && i + 1 < units.len() {
        v /= base;
        i += 1;
    }
    // `format!` rounds halves to even (12.5 -> "12"); people read 12.5k as 13k.
    if i == 0 {
        format!("{:.0}", v.round())
    } else if v < 9.95 {
        format!("{v:.1}{}", units[i])
    } else {
        format!("{:.0}{}", v.round(), units[i])
    }
}

pub fn percent(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.0}"),
        _ => "-".into(),
    }
}

/// `3d4h`, `5h12m`, `7m`, `42s`.
pub fn uptime(secs: Option<u64>) -> String {
    let Some(s) = secs else { return "-".into() };
    let (d, h, m) = (s / 86_400, s / 3600 % 24, s / 60 % 60);
    if d > 0 {
        format!("{d}d{h}h")
    } else if h > 0 {
        format!("{h}h{m}m")
    } else if m > 0 {
        format!("{m}m")
    } else {
        format!("{s}s")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_numbers() {
        assert_eq!(bytes(512), "512");
        assert_eq!(bytes(1024), "1.0K");
        assert_eq!(bytes(8 << 30), "8.0G");
        assert_eq!(bytes(12 << 30), "12G");
        assert_eq!(rate(Some(1_048_576.0)), "1.0M");
        assert_eq!(rate(None), "-");
        assert_eq!(count(Some(256.0)), "256");
        assert_eq!(count(Some(12_500.0)), "13k");
        assert_eq!(uptime(Some(3 * 86_400 + 4 * 3600)), "3d4h");
        assert_eq!(uptime(Some(59)), "59s");
    }

    #[test]
    fn sweep_writes_in_place() {
        let mut ring = Ring::new(100);
        let area = Rect::new(0, 0, 5, 1);
        let draw = |ring: &Ring<f32>, pushed: u64| {
            let mut buf = Buffer::empty(area);
            Sweep {
                ring,
                pushed,
                max: 8.0,
                ascii: false,
                style: Style::default(),
            }
            .render(area, &mut buf);
            (0..5)
                .map(|x| buf[(x, 0)].symbol().to_string())
                .collect::<String>()
        };
        for v in 1..=3 {
            ring.push(v as f32);
        }
        assert_eq!(draw(&ring, 3), "▁▂▃  ");
        for v in 4..=6 {
            ring.push(v as f32);
        }
        // The sixth sample wrapped to column 0; column 1 is the cursor gap.
        assert_eq!(draw(&ring, 6), "▆ ▃▄▅");
    }
}
