//! Sizes written as `8G`, `512M`, `2GiB` or a plain number of bytes.

use std::fmt;
use std::str::FromStr;

/// A size in bytes. Units are binary (`G` = GiB), as Cloud Hypervisor and QEMU read them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

pub const KIB: u64 = 1 << 10;
pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;
pub const TIB: u64 = 1 << 40;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a size{why}; write e.g. 2G")]
pub struct SizeError {
    input: String,
    why: &'static str,
}

impl ByteSize {
    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for ByteSize {
    type Err = SizeError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |why| SizeError {
            input: input.chars().take(40).collect(),
            why,
        };
        let s = input.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (digits, unit) = s.split_at(split);
        if digits.is_empty() {
            return Err(fail(""));
        }
        let number: u64 = digits.parse().map_err(|_| fail(" (too large)"))?;
        let scale = match unit.trim() {
            "" | "B" | "b" => 1,
            "K" | "k" | "KiB" | "Ki" => KIB,
            "M" | "m" | "MiB" | "Mi" => MIB,
            "G" | "g" | "GiB" | "Gi" => GIB,
            "T" | "t" | "TiB" | "Ti" => TIB,
            // Decimal units would give sizes that are not page multiples; say so.
            "KB" | "kB" | "MB" | "GB" | "TB" => {
                return Err(fail(" (units are binary: use G or GiB)"))
            }
            _ => return Err(fail("")),
        };
        number
            .checked_mul(scale)
            .map(ByteSize)
            .ok_or_else(|| fail(" (too large)"))
    }
}

impl fmt::Display for ByteSize {
    /// The largest unit that shows the size exactly, in the form `FromStr` reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        for (scale, unit) in [(TIB, "T"), (GIB, "G"), (MIB, "M"), (KIB, "K")] {
            if n != 0 && n.is_multiple_of(scale) {
                return write!(f, "{}{unit}", n / scale);
            }
        }
        write!(f, "{n}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_units() {
        for (s, n) in [
            ("8G", 8 * GIB),
            ("512M", 512 * MIB),
            ("2GiB", 2 * GIB),
            ("4096", 4096),
            (" 1T ", TIB),
            ("64k", 64 * KIB),
            ("3 MiB", 3 * MIB),
        ] {
            assert_eq!(s.parse::<ByteSize>(), Ok(ByteSize(n)), "{s}");
        }
    }

    #[test]
    fn refuses_junk_with_the_fix() {
        for s in [
            "",
            "2X",
            "G",
            "-1G",
            "1.5G",
            "8GB",
            "99999999999999999999",
            "16777216T",
        ] {
            let e = s.parse::<ByteSize>().unwrap_err().to_string();
            assert!(
                e.contains("is not a size") && e.contains("write e.g. 2G"),
                "{s}: {e}"
            );
        }
    }

    #[test]
    fn displays_the_largest_exact_unit() {
        assert_eq!(ByteSize(8 * GIB).to_string(), "8G");
        assert_eq!(ByteSize(1536 * MIB).to_string(), "1536M");
        assert_eq!(ByteSize(1000).to_string(), "1000");
        assert_eq!(ByteSize(0).to_string(), "0");
    }

    proptest! {
        #[test]
        fn never_panics_and_round_trips(s in "\\PC{0,24}") {
            if let Ok(size) = s.parse::<ByteSize>() {
                prop_assert_eq!(size.to_string().parse::<ByteSize>(), Ok(size));
            }
        }

        #[test]
        fn display_round_trips(n in any::<u64>()) {
            prop_assert_eq!(ByteSize(n).to_string().parse::<ByteSize>(), Ok(ByteSize(n)));
        }
    }
}
