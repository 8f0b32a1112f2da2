//! The terminal size newtype and its `--size COLSxROWS` parser.

use std::fmt;
use std::str::FromStr;

/// Sizes above this are typos or garbage replies, not terminals.
pub const MAX_DIMENSION: u16 = 1000;

/// A terminal size in character cells, both dimensions in `1..=MAX_DIMENSION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TermSize {
    cols: u16,
    rows: u16,
}

impl TermSize {
    /// What a VT100 has, and what we assume when nothing better is known.
    pub const FALLBACK: TermSize = TermSize { cols: 80, rows: 24 };

    /// A size, or `None` when either dimension is 0 or above [`MAX_DIMENSION`].
    pub fn new(cols: u16, rows: u16) -> Option<TermSize> {
        let ok = |n: u16| (1..=MAX_DIMENSION).contains(&n);
        (ok(cols) && ok(rows)).then_some(TermSize { cols, rows })
    }

    /// Columns (width).
    pub fn cols(self) -> u16 {
        self.cols
    }

    /// Rows (height).
    pub fn rows(self) -> u16 {
        self.rows
    }
}

impl fmt::Display for TermSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.cols, self.rows)
    }
}

/// Why a `--size` value was refused. The message quotes the value and shows the expected form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// Not two numbers around an `x`.
    #[error("--size {input:?}: expected COLSxROWS, e.g. 80x24")]
    Format { input: String },
    /// A dimension is 0.
    #[error("--size {input:?}: columns and rows must be at least 1, e.g. 80x24")]
    Zero { input: String },
    /// A dimension is above [`MAX_DIMENSION`].
    #[error("--size {input:?}: at most {MAX_DIMENSION} columns and rows, e.g. 80x24")]
    TooLarge { input: String },
}

/// Parse `COLSxROWS` (`120x40`; `X` and surrounding spaces are accepted). Never panics.
pub fn parse_size(input: &str) -> Result<TermSize, SizeError> {
    let format = || SizeError::Format {
        input: input.to_owned(),
    };
    let (cols, rows) = input.trim().split_once(['x', 'X']).ok_or_else(format)?;
    let cols = parse_dimension(cols).ok_or_else(format)?;
    let rows = parse_dimension(rows).ok_or_else(format)?;
    if cols == 0 || rows == 0 {
        return Err(SizeError::Zero {
            input: input.to_owned(),
        });
    }
    match (u16::try_from(cols), u16::try_from(rows)) {
        (Ok(c), Ok(r)) => TermSize::new(c, r),
        _ => None,
    }
    .ok_or_else(|| SizeError::TooLarge {
        input: input.to_owned(),
    })
}

/// Plain decimal digits only: `u32::from_str` would also take `+80`. Long runs of digits
/// saturate so that `99999999999x24` reports "too large" rather than "bad format".
fn parse_dimension(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0u32, |n, b| {
        n.saturating_mul(10).saturating_add(u32::from(b - b'0'))
    }))
}

impl FromStr for TermSize {
    type Err = SizeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_size(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_common_sizes() {
        assert_eq!(parse_size("120x40"), Ok(TermSize::new(120, 40).unwrap()));
        assert_eq!(parse_size("80X24"), Ok(TermSize::FALLBACK));
        assert_eq!(parse_size(" 80x24\n"), Ok(TermSize::FALLBACK));
        assert_eq!(
            parse_size("1000x1000").map(|s| s.to_string()),
            Ok("1000x1000".into())
        );
        assert_eq!(parse_size("1x1").map(|s| (s.cols(), s.rows())), Ok((1, 1)));
    }

    #[test]
    fn rejects_junk_with_a_helpful_message() {
        for bad in [
            "", "x", "80", "80x", "x24", "80y24", "+80x24", "80x-24", "80 x 24", "8o x24",
        ] {
            assert!(
                matches!(parse_size(bad), Err(SizeError::Format { .. })),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse_size("80y24").unwrap_err().to_string(),
            r#"--size "80y24": expected COLSxROWS, e.g. 80x24"#
        );
    }

    #[test]
    fn rejects_zero_and_absurd_sizes() {
        assert!(matches!(parse_size("0x24"), Err(SizeError::Zero { .. })));
        assert!(matches!(parse_size("80x0"), Err(SizeError::Zero { .. })));
        assert!(matches!(
            parse_size("1001x24"),
            Err(SizeError::TooLarge { .. })
        ));
        assert!(matches!(
            parse_size("80x65536"),
            Err(SizeError::TooLarge { .. })
        ));
        assert!(matches!(
            parse_size("99999999999999999999x24"),
            Err(SizeError::TooLarge { .. })
        ));
        assert_eq!(TermSize::new(0, 24), None);
        assert_eq!(TermSize::new(80, 1001), None);
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_input(s in any::<String>()) {
            let _ = parse_size(&s);
        }

        #[test]
        fn never_panics_on_size_like_input(s in "[0-9xX+ -]{0,24}") {
            if let Ok(size) = parse_size(&s) {
                prop_assert!((1..=MAX_DIMENSION).contains(&size.cols()));
                prop_assert!((1..=MAX_DIMENSION).contains(&size.rows()));
            }
        }

        #[test]
        fn display_round_trips(cols in 1u16..=MAX_DIMENSION, rows in 1u16..=MAX_DIMENSION) {
            let size = TermSize::new(cols, rows).unwrap();
            prop_assert_eq!(parse_size(&size.to_string()), Ok(size));
        }
    }
}
