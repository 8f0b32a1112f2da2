//! Small helpers shared by the views.

use phyllome_widgets::{wrap, Tone};
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::host::{CheckStatus, Verdict};

use super::super::state::Theme;

pub fn verdict_tone(v: &Verdict) -> Tone {
    match v {
        Verdict::Ready => Tone::Ready,
        Verdict::Warn => Tone::Warn,
        Verdict::Blocked => Tone::Blocked,
    }
}

pub fn check_tone(s: CheckStatus) -> Tone {
    match s {
        CheckStatus::Pass => Tone::Ready,
        CheckStatus::Warn => Tone::Warn,
        CheckStatus::Fail => Tone::Blocked,
    }
}

/// Cells the widest verdict badge takes, plus a space: verdict columns line up in both
/// glyph sets.
pub fn verdict_column(g: &phyllome_widgets::Glyphs) -> usize {
    phyllome_widgets::width(g.bad) + " blocked ".len()
}

/// The vendor as people say it: `AMD/ATI` for "Advanced Micro Devices, Inc. [AMD/ATI]",
/// `Intel` for "Intel Corporation". Long names would push the device name off an 80-column
/// screen.
pub fn short_vendor(vendor: &str) -> &str {
    if let (Some(a), Some(b)) = (vendor.rfind('['), vendor.rfind(']')) {
        if let Some(inside) = vendor.get(a + 1..b) {
            return inside;
        }
    }
    const SUFFIXES: [&str; 6] = [
        " Corporation",
        ", Inc.",
        " Inc.",
        " Co., Ltd.",
        " Co Ltd",
        " Electronics",
    ];
    let mut v = vendor;
    for s in SUFFIXES {
        if let Some(stripped) = v.strip_suffix(s) {
            v = stripped;
        }
    }
    v
}

/// Short display name of a device: short vendor, then the device name.
pub fn short_name(d: &crate::host::PciDevice) -> String {
    match (&d.vendor_name, &d.device_name) {
        (Some(v), Some(n)) => format!("{} {n}", short_vendor(v)),
        _ => d.display_name(),
    }
}

/// A GPU's short name, from its device entry when there is one.
pub fn gpu_name(inv: &crate::host::Inventory, gpu: &crate::host::Gpu) -> String {
    inv.device(&gpu.address)
        .map_or_else(|| gpu.name.clone(), short_name)
}

/// `text` word-wrapped to `width`, every line starting with `indent` spaces.
pub fn wrapped(text: &str, indent: usize, width: usize, style: Style) -> Vec<Line<'static>> {
    wrap(text, width.saturating_sub(indent).max(10))
        .into_iter()
        .map(|l| Line::from(vec![Span::raw(" ".repeat(indent)), Span::styled(l, style)]))
        .collect()
}

/// `label` padded to a column, then a value.
pub fn field(label: &str, width: usize, value: Vec<Span<'static>>, theme: &Theme) -> Line<'static> {
    let mut spans = vec![Span::styled(
        format!(" {label:<width$} "),
        theme.palette.dim,
    )];
    spans.extend(value);
    Line::from(spans)
}

/// Largest useful scroll for `total` lines in `height` rows.
pub fn max_scroll(total: usize, height: usize) -> usize {
    total.saturating_sub(height)
}

/// Lines in a bordered block, scrolled, with marks when more is above or below.
pub fn scrolled(
    frame: &mut Frame,
    area: Rect,
    title: &str,
    lines: Vec<Line<'static>>,
    scroll: usize,
    theme: &Theme,
) {
    let (g, p) = (&theme.glyphs, &theme.palette);
    let height = area.height.saturating_sub(2) as usize;
    let scroll = scroll.min(max_scroll(lines.len(), height));
    let more_below = scroll + height < lines.len();
    let block = g.block().title(Line::styled(format!(" {title} "), p.title));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let visible: Vec<Line> = lines.into_iter().skip(scroll).take(height).collect();
    frame.render_widget(Paragraph::new(visible), inner);
    let right = area.right().saturating_sub(1);
    if scroll > 0 && area.height > 2 {
        frame.render_widget(
            Span::styled(g.more_above, p.dim),
            Rect::new(right, area.y + 1, 1, 1),
        );
    }
    if more_below && area.height > 2 {
        let y = area.bottom() - 2;
        frame.render_widget(Span::styled(g.more_below, p.dim), Rect::new(right, y, 1, 1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendors_are_shortened() {
        assert_eq!(
            short_vendor("Advanced Micro Devices, Inc. [AMD/ATI]"),
            "AMD/ATI"
        );
        assert_eq!(short_vendor("Intel Corporation"), "Intel");
        assert_eq!(short_vendor("Samsung Electronics Co Ltd"), "Samsung");
        assert_eq!(short_vendor("NVIDIA Corporation"), "NVIDIA");
        assert_eq!(short_vendor("Weird [name"), "Weird [name");
    }
}
