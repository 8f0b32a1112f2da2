//! Pure parsing of the terminal's answers to the size queries.
//!
//! The bytes read back from a tty after the query can hold anything: keys the owner typed,
//! replies to other queries, a reply split over two reads. [`scan_replies`] is applied to
//! everything read so far (a few dozen bytes), so partial reads need no state: an unfinished
//! sequence at the end is simply not a reply yet.

use super::size::TermSize;

/// The answers found in the bytes read from the terminal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Replies {
    /// Cursor position report `ESC [ row ; col R` (1-based), the answer to `ESC [ 6 n`.
    pub cursor: Option<(u16, u16)>,
    /// Text area size report `ESC [ 8 ; rows ; cols t`, the answer to `ESC [ 18 t`.
    pub text_area: Option<(u16, u16)>,
}

impl Replies {
    /// The size these answers give. After moving the cursor to 999;999 the terminal clamps it to
    /// the bottom-right cell, so the cursor report is the size itself; it is preferred because
    /// every VT100-compatible terminal answers it, while `CSI 18 t` is an xterm extension.
    pub fn size(&self) -> Option<TermSize> {
        let from_cursor = self.cursor.and_then(|(row, col)| TermSize::new(col, row));
        let from_area = self
            .text_area
            .and_then(|(rows, cols)| TermSize::new(cols, rows));
        from_cursor.or(from_area)
    }

    /// The cursor report is sent last, so once it is here there is nothing more to wait for.
    pub fn complete(&self) -> bool {
        self.cursor.is_some()
    }
}

/// Find the size replies in `bytes`, skipping anything else. Never panics.
pub fn scan_replies(bytes: &[u8]) -> Replies {
    let mut replies = Replies::default();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == 0x1b && bytes.get(i + 1) == Some(&b'[') {
            match parse_csi(&bytes[i + 2..]) {
                Some((csi, len)) => {
                    interpret(&csi, &mut replies);
                    i += 2 + len;
                }
                // Unfinished at the end of what has been read, or malformed: move past the
                // ESC and keep looking, so one broken sequence cannot hide a later reply.
                None => i += 1,
            }
        } else {
            i += 1;
        }
    }
    replies
}

/// A control sequence with its parameter bytes and final byte.
struct Csi<'a> {
    params: &'a [u8],
    intermediates: &'a [u8],
    final_byte: u8,
}

/// Parse what follows `ESC [` by the ECMA-48 grammar: parameter bytes 0x30–0x3F, intermediate
/// bytes 0x20–0x2F, one final byte 0x40–0x7E. Returns the sequence and the bytes it used, or
/// `None` when the bytes end first or break the grammar.
fn parse_csi(rest: &[u8]) -> Option<(Csi<'_>, usize)> {
    let params_len = rest
        .iter()
        .take_while(|b| (0x30..=0x3f).contains(*b))
        .count();
    let inter_len = rest[params_len..]
        .iter()
        .take_while(|b| (0x20..=0x2f).contains(*b))
        .count();
    let final_at = params_len + inter_len;
    let final_byte = *rest.get(final_at)?;
    if !(0x40..=0x7e).contains(&final_byte) {
        return None;
    }
    Some((
        Csi {
            params: &rest[..params_len],
            intermediates: &rest[params_len..final_at],
            final_byte,
        },
        final_at + 1,
    ))
}

fn interpret(csi: &Csi<'_>, replies: &mut Replies) {
    if !csi.intermediates.is_empty() {
        return;
    }
    let Some(params) = numeric_params(csi.params) else {
        return;
    };
    match (csi.final_byte, params.as_slice()) {
        // xterm encodes modified F3 as `CSI 1 ; modifier R`, which looks like a cursor report
        // for row 1. After moving to 999;999 a real report is never row 1 unless the terminal
        // has one row, which could not show the console anyway.
        (b'R', [1, m]) if (2..=16).contains(m) => {}
        (b'R', [row, col]) => replies.cursor = Some((*row, *col)),
        (b't', [8, rows, cols]) => replies.text_area = Some((*rows, *cols)),
        _ => {}
    }
}

/// `40;120` → `[40, 120]`. `None` for private markers (`?`, `>`) or values beyond u16, which
/// no terminal reports for a size.
fn numeric_params(params: &[u8]) -> Option<Vec<u16>> {
    params
        .split(|b| *b == b';')
        .map(|p| {
            if p.is_empty() || p.len() > 5 || !p.iter().all(u8::is_ascii_digit) {
                return None;
            }
            std::str::from_utf8(p).ok()?.parse().ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn size_of(bytes: &[u8]) -> Option<String> {
        scan_replies(bytes).size().map(|s| s.to_string())
    }

    #[test]
    fn cursor_report() {
        let r = scan_replies(b"\x1b[40;120R");
        assert_eq!(r.cursor, Some((40, 120)));
        assert!(r.complete());
        assert_eq!(size_of(b"\x1b[40;120R").as_deref(), Some("120x40"));
    }

    #[test]
    fn text_area_report() {
        let r = scan_replies(b"\x1b[8;50;132t");
        assert_eq!(r.text_area, Some((50, 132)));
        assert!(!r.complete());
        assert_eq!(size_of(b"\x1b[8;50;132t").as_deref(), Some("132x50"));
    }

    #[test]
    fn both_reports_prefer_the_cursor() {
        assert_eq!(
            size_of(b"\x1b[8;50;132t\x1b[24;80R").as_deref(),
            Some("80x24")
        );
    }

    #[test]
    fn partial_read_is_not_a_reply_until_complete() {
        let whole = b"\x1b[40;120R";
        for cut in 0..whole.len() {
            assert_eq!(scan_replies(&whole[..cut]).cursor, None, "cut at {cut}");
        }
        assert_eq!(scan_replies(whole).cursor, Some((40, 120)));
    }

    #[test]
    fn junk_before_and_after_is_skipped() {
        assert_eq!(
            size_of(b"hello q\r\x1b[40;120Rjk").as_deref(),
            Some("120x40")
        );
        assert_eq!(size_of(b"\x1b\x1b[24;80R").as_deref(), Some("80x24"));
        assert_eq!(size_of(b"\x1b[\x1b[24;80R").as_deref(), Some("80x24"));
        assert_eq!(
            size_of("é日本\x1b[24;80R".as_bytes()).as_deref(),
            Some("80x24")
        );
    }

    #[test]
    fn other_sequences_mixed_in_are_ignored() {
        // Arrow keys, a device attributes reply, a focus event, a bracketed paste marker.
        let bytes = b"\x1b[A\x1b[?62;22c\x1b[I\x1b[200~\x1b[24;80R\x1b[B";
        assert_eq!(size_of(bytes).as_deref(), Some("80x24"));
        // Private-marker cursor report (DECXCPR) is not what we asked for.
        assert_eq!(scan_replies(b"\x1b[?24;80;1R").cursor, None);
    }

    #[test]
    fn modified_f3_is_not_a_cursor_report() {
        assert_eq!(scan_replies(b"\x1b[1;5R").cursor, None);
        assert_eq!(size_of(b"\x1b[1;5R\x1b[30;100R").as_deref(), Some("100x30"));
    }

    #[test]
    fn absurd_or_malformed_reports_give_no_size() {
        for bytes in [
            &b"\x1b[0;0R"[..],
            b"\x1b[24R",
            b"\x1b[24;80;1R",
            b"\x1b[;80R",
            b"\x1b[5000;5000R",
            b"\x1b[99999999;1R",
            b"\x1b[8;0;0t",
            b"\x1b[4;600;800t",
        ] {
            assert_eq!(scan_replies(bytes).size(), None, "{bytes:?}");
        }
    }

    #[test]
    fn latest_cursor_report_wins() {
        assert_eq!(
            size_of(b"\x1b[24;80R\x1b[40;120R").as_deref(),
            Some("120x40")
        );
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = scan_replies(&bytes);
        }

        #[test]
        fn finds_the_reply_in_any_junk_without_escapes(
            before in "[a-zA-Z0-9 ;\\[]{0,40}",
            after in "[a-zA-Z0-9 ;\\[]{0,40}",
            rows in 2u16..=1000,
            cols in 1u16..=1000,
        ) {
            let bytes = format!("{before}\x1b[{rows};{cols}R{after}");
            prop_assert_eq!(scan_replies(bytes.as_bytes()).size(), TermSize::new(cols, rows));
        }
    }
}
