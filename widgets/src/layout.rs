use ratatui::layout::Rect;

/// A `width` x `height` rectangle centred in `area`, shrunk to fit when `area` is smaller.
pub fn centered_rect(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// `area` less one column on each side: the padding inside a popup's border.
pub fn padded(area: Rect) -> Rect {
    Rect {
        x: area.x + 1,
        width: area.width.saturating_sub(2),
        ..area
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centres_and_clamps() {
        let area = Rect::new(0, 0, 80, 24);
        assert_eq!(centered_rect(area, 40, 10), Rect::new(20, 7, 40, 10));
        assert_eq!(centered_rect(area, 100, 30), area);
        let offset = Rect::new(10, 5, 20, 10);
        assert_eq!(centered_rect(offset, 10, 4), Rect::new(15, 8, 10, 4));
    }
}
