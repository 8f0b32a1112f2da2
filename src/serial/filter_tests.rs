use super::*;
use proptest::prelude::*;

/// An independent check of the output: every byte is allowed text or part of an allowed
/// sequence, and the text is valid UTF-8 without C1 controls.
fn is_safe(out: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(out).map_err(|e| format!("not UTF-8: {e}"))?;
    if let Some(c) = text.chars().find(|c| ('\u{80}'..='\u{9f}').contains(c)) {
        return Err(format!("C1 control {c:?}"));
    }
    let mut i = 0;
    while i < out.len() {
        let b = out[i];
        match b {
            0x1b => {
                let next = out.get(i + 1).copied();
                match next {
                    Some(b'7') | Some(b'8') => i += 2,
                    Some(b'[') => {
                        let mut j = i + 2;
                        while j < out.len() && matches!(out[j], b'0'..=b'9' | b';' | b':') {
                            j += 1;
                        }
                        match out.get(j) {
                            Some(f) if CSI_FINALS.contains(f) => i = j + 1,
                            other => return Err(format!("CSI ends with {other:?} at {i}")),
                        }
                    }
                    other => return Err(format!("ESC followed by {other:?} at {i}")),
                }
            }
            b'\r' | b'\n' | b'\t' | 0x08 | 0x20..=0x7e | 0x80..=0xff => i += 1,
            _ => return Err(format!("control {b:#04x} at {i}")),
        }
    }
    Ok(())
}

#[test]
fn text_colours_and_cursor_movement_pass() {
    let input =
        "boot \x1b[1;32mOK\x1b[0m\r\n\tdone\x08!\x1b[2J\x1b[10;5H\x1b7x\x1b8 é ✓".as_bytes();
    assert_eq!(SafeFilter::filter(input), input);
}

#[test]
fn hostile_sequences_are_dropped_with_their_payload() {
    let cases: &[(&[u8], &[u8])] = &[
        (b"a\x1b]52;c;cm0gLXJmIC8=\x07b", b"ab"), // OSC 52 clipboard, BEL
        (b"a\x1b]0;owned\x1b\\b", b"ab"),         // title, ST
        (b"a\x1bP1$qm\x1b\\b", b"ab"),            // DCS DECRQSS query
        (b"a\x1b[6nb", b"ab"),                    // cursor position report
        (b"a\x1b[cb\x1b[>cc", b"abc"),            // device attributes
        (b"a\x1b[21tb\x1b[18t", b"ab"),           // title and size reports
        (b"a\x1b[?1000hb\x1b[?1049h", b"ab"),     // mouse reporting, alt screen
        (b"a\x1bZb\x1bcc", b"abc"),               // DECID, full reset
        (b"a\x9b6nb\x9d0;x\x07", b"a6nb0;x"),     // 8-bit CSI/OSC: bytes dropped
        ("a\u{9b}6n".as_bytes(), b"a6n"),         // C1 as UTF-8
        (b"a\x1b_apc\x1b\\b\x1b^pm\x1b\\c\x1bXsos\x1b\\d", b"abcd"),
        (b"a\x1b(0qqq\x1b(Bb", b"aqqqb"), // charset switch dropped
        (b"a\x00\x05\x07\x0e\x0f\x7fb", b"ab"), // C0 controls, DEL
        (b"a\x1b[ 2qb", b"ab"),           // cursor style (intermediate)
    ];
    for (input, want) in cases {
        let got = SafeFilter::filter(input);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(want),
            "input {:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn an_unterminated_string_ends_after_its_cap_as_plain_text() {
    let mut input = b"\x1b]52;c;".to_vec();
    input.extend(std::iter::repeat_n(b'A', STRING_MAX + 10));
    let out = SafeFilter::filter(&input);
    assert!(out.len() < 20, "{}", out.len());
    assert!(is_safe(&out).is_ok());
}

#[test]
fn overlong_csi_parameters_are_dropped() {
    let mut input = b"\x1b[".to_vec();
    input.extend(std::iter::repeat_n(b'1', CSI_MAX + 1));
    input.extend(b"mX");
    assert_eq!(SafeFilter::filter(&input), b"X");
}

#[test]
fn a_sequence_split_across_reads_is_filtered_like_a_whole_one() {
    let input = b"x\x1b]0;title\x07y\x1b[31mz";
    let mut f = SafeFilter::new();
    let mut out = Vec::new();
    for b in input {
        f.push(&[*b], &mut out);
    }
    assert_eq!(out, b"xy\x1b[31mz");
}

proptest! {
    #[test]
    fn output_is_always_safe(input in proptest::collection::vec(any::<u8>(), 0..512)) {
        let out = SafeFilter::filter(&input);
        prop_assert!(is_safe(&out).is_ok(), "{:?}", is_safe(&out));
    }

    #[test]
    fn escape_heavy_output_is_safe(input in proptest::collection::vec(
        prop_oneof![Just(0x1bu8), Just(b'['), Just(b']'), Just(b'P'), Just(0x07), Just(b'\\'),
            Just(b'?'), Just(b';'), Just(b'6'), Just(b'n'), Just(b'm'), Just(0x9b), Just(0xc2),
            Just(b'H'), any::<u8>()], 0..256)) {
        let out = SafeFilter::filter(&input);
        prop_assert!(is_safe(&out).is_ok(), "{:?}", is_safe(&out));
    }

    #[test]
    fn chunking_does_not_change_the_output(
        input in proptest::collection::vec(any::<u8>(), 0..256),
        cuts in proptest::collection::vec(0usize..256, 0..8),
    ) {
        let whole = SafeFilter::filter(&input);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(input.len())).collect();
        cuts.sort_unstable();
        let mut f = SafeFilter::new();
        let mut out = Vec::new();
        let mut at = 0;
        for c in cuts.into_iter().chain([input.len()]) {
            f.push(&input[at..c], &mut out);
            at = c;
        }
        prop_assert_eq!(whole, out);
    }

    #[test]
    fn safe_output_passes_unchanged(input in proptest::collection::vec(any::<u8>(), 0..256)) {
        let once = SafeFilter::filter(&input);
        prop_assert_eq!(SafeFilter::filter(&once), once);
    }

    #[test]
    fn printable_text_passes_unchanged(s in "[ -~\r\n\té✓漢]{0,128}") {
        prop_assert_eq!(SafeFilter::filter(s.as_bytes()), s.as_bytes());
    }
}
