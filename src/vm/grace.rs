//! How long a guest gets to power off after the ACPI power button before the VM is forced
//! off: written `90s`, `2m`, `1h`, `1m30s`, or a plain number of seconds.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A grace period in whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StopTimeout(pub u64);

impl StopTimeout {
    /// Enough for a Linux guest; Windows guests often want more (updates at shutdown).
    pub const DEFAULT: StopTimeout = StopTimeout(60);
    /// Longer than anything a guest legitimately takes, short enough to be a mistake.
    pub const MAX: StopTimeout = StopTimeout(24 * 3600);

    pub fn secs(self) -> u64 {
        self.0
    }

    pub fn duration(self) -> Duration {
        Duration::from_secs(self.0)
    }
}

impl Default for StopTimeout {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a duration; write e.g. 90s")]
pub struct DurationError(String);

impl FromStr for StopTimeout {
    type Err = DurationError;

    /// Parts of digits and a unit (`h`, `m`, `s`), largest unit first, each at most once.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = || DurationError(input.chars().take(40).collect());
        let mut rest = input.trim();
        if rest.is_empty() {
            return Err(fail());
        }
        let mut total: u64 = 0;
        // Units still allowed, largest first: "1m2h" and "1s1s" are refused.
        let mut units: &[(char, u64)] = &[('h', 3600), ('m', 60), ('s', 1)];
        while !rest.is_empty() {
            let split = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(fail)?;
            let (digits, tail) = rest.split_at(split);
            let n: u64 = digits.parse().map_err(|_| fail())?;
            let unit = tail.chars().next().ok_or_else(fail)?;
            let at = units
                .iter()
                .position(|&(u, _)| u == unit)
                .ok_or_else(fail)?;
            let part = n.checked_mul(units[at].1).ok_or_else(fail)?;
            total = total.checked_add(part).ok_or_else(fail)?;
            units = &units[at + 1..];
            rest = tail.get(unit.len_utf8()..).unwrap_or_default();
        }
        Ok(StopTimeout(total))
    }
}

impl fmt::Display for StopTimeout {
    /// `90` → `1m30s`, `3600` → `1h`, `0` → `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (h, m, s) = (self.0 / 3600, self.0 / 60 % 60, self.0 % 60);
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if m > 0 {
            write!(f, "{m}m")?;
        }
        if s > 0 || self.0 == 0 {
            write!(f, "{s}s")?;
        }
        Ok(())
    }
}

impl serde::Serialize for StopTimeout {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_refuses_the_rest() {
        for (text, secs) in [
            ("90s", 90),
            ("2m", 120),
            ("1h", 3600),
            ("1m30s", 90),
            ("1h0m5s", 3605),
            (" 45s ", 45),
        ] {
            assert_eq!(text.parse::<StopTimeout>(), Ok(StopTimeout(secs)), "{text}");
        }
        for bad in [
            "",
            "x",
            "90",
            "s",
            "1m1h",
            "1s1s",
            "-1s",
            "1.5m",
            "1 m",
            "90 s",
            "1d",
            "99999999999999999999s",
            "9999999999999999h",
        ] {
            assert!(bad.parse::<StopTimeout>().is_err(), "{bad:?}");
        }
        assert_eq!(
            "x".parse::<StopTimeout>().unwrap_err().to_string(),
            "\"x\" is not a duration; write e.g. 90s"
        );
    }

    #[test]
    fn displays_what_parses_back() {
        for secs in [0, 1, 59, 60, 90, 3600, 3661, 86_400] {
            let text = StopTimeout(secs).to_string();
            assert_eq!(text.parse::<StopTimeout>(), Ok(StopTimeout(secs)), "{text}");
        }
        assert_eq!(StopTimeout(90).to_string(), "1m30s");
        assert_eq!(StopTimeout(7200).to_string(), "2h");
    }
}
