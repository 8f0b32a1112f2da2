//! How figures read, in the console and on the command line alike: one formatter per kind
//! (bytes, sizes, rates, counts, percentages, uptimes, intervals, verdicts), so a VM's
//! memory or uptime reads the same in `phyllome vm list`, the VM screens and the dashboard.
//!
//! Plain `String`s, no styles: the views colour them, the CLI prints them.

use std::time::Duration;

use crate::host::{CheckStatus, Verdict};

const BINARY: [&str; 6] = ["", "K", "M", "G", "T", "P"];
const DECIMAL: [&str; 5] = ["", "k", "M", "G", "T"];

/// A figure in bytes that moves (memory in use, totals of the monitor), in binary units and
/// at most 5 characters: `512`, `1.0K`, `7.9G`, `12G`.
pub fn bytes(v: u64) -> String {
    scaled(v as f64, 1024.0, &BINARY)
}

/// A size that is set, not measured (a BAR, a VM's memory): exact, in the largest whole
/// binary unit, `16M`, `256G`, `4K`; in bytes when no unit divides it (`1536`).
pub fn size(v: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1 << 40, "T"),
        (1 << 30, "G"),
        (1 << 20, "M"),
        (1 << 10, "K"),
    ];
    for (unit, name) in UNITS {
        if v >= unit && v.is_multiple_of(unit) {
            return format!("{}{name}", v / unit);
        }
    }
    v.to_string()
}

/// Bytes per second like [`bytes`]; `-` when unknown.
pub fn rate(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() && v >= 0.0 => scaled(v, 1024.0, &BINARY),
        _ => "-".into(),
    }
}

/// A count per second (operations, packets) in decimal units; `-` when unknown.
pub fn count(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() && v >= 0.0 => scaled(v, 1000.0, &DECIMAL),
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

/// A whole percentage without its sign (the column says `%`); `-` when unknown.
pub fn percent(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.0}"),
        _ => "-".into(),
    }
}

/// `3d04h`, `2h05m`, `7m`: two fields at most and minutes at the finest, so a list on a
/// serial line repaints the column once a minute, not at every refresh.
pub fn uptime(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60);
    if d > 0 {
        format!("{d}d{h:02}h")
    } else if h > 0 {
        format!("{h}h{m:02}m")
    } else {
        format!("{m}m")
    }
}

/// Time left, to the second: `42s`, `1m05s`, `1h05m`.
pub fn countdown(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

/// A sampling interval: `1s`, `30s`, `0.25s`.
pub fn interval(i: Duration) -> String {
    let ms = i.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.2}", i.as_secs_f64())
            .trim_end_matches('0')
            .to_string()
            + "s"
    }
}

/// The readiness verdict of a device or the host: `ready`, `warn`, `blocked` (the CLI's
/// text report shouts them in capitals).
pub fn verdict(v: &Verdict) -> &'static str {
    match v {
        Verdict::Ready => "ready",
        Verdict::Warn => "warn",
        Verdict::Blocked => "blocked",
    }
}

/// One check's result: `pass`, `warn`, `fail`.
pub fn check(s: CheckStatus) -> &'static str {
    match s {
        CheckStatus::Pass => "pass",
        CheckStatus::Warn => "warn",
        CheckStatus::Fail => "fail",
    }
}

pub fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// Text from data (a file name, a sysfs value, another program's message) made safe to
/// print: every control character is shown as an escape (`\e` for ESC, `\n`, `\r`, `\t`,
/// `\x07` for BEL, `\u{9b}` for a C1 control), so nothing it holds can drive the terminal;
/// printable Unicode is kept as is. The console, the command line's text and its error
/// report all show data through this one function; `--json` never does (JSON escapes).
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    escape_controls(text, false)
}

/// [`printable`] for whole lines of output: line feeds and tabs stay (they are the
/// layout), every other control character is escaped.
pub fn printable_text(text: &str) -> std::borrow::Cow<'_, str> {
    escape_controls(text, true)
}

fn escape_controls(text: &str, keep_layout: bool) -> std::borrow::Cow<'_, str> {
    use std::fmt::Write as _;
    let kept = |c: char| !c.is_control() || (keep_layout && (c == '\n' || c == '\t'));
    if text.chars().all(kept) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if kept(c) => out.push(c),
            '\u{1b}' => out.push_str("\\e"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Seconds since the epoch as `2026-11-30 02:53` (UTC).
pub fn utc(secs: u64) -> String {
    let (year, month, day, rem) = civil(secs);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// Seconds since the epoch as `2025-01-31 12:00:00 UTC`.
pub fn utc_seconds(secs: u64) -> String {
    let (year, month, day, rem) = civil(secs);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Year, month, day and the seconds into that day, from the civil calendar (Howard
/// Hinnant's days-to-date), without a date crate for a column or two.
fn civil(secs: u64) -> (i64, i64, i64, u64) {
    let days = (secs / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, secs % 86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00");
        assert_eq!(utc(1_795_920_780), "2026-11-29 02:53");
        assert_eq!(utc_seconds(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_seconds(1_709_210_096), "2024-02-29 12:34:56 UTC");
    }

    #[test]
    fn bytes_stay_within_five_characters_at_unit_boundaries() {
        assert_eq!(bytes(0), "0");
        assert_eq!(bytes(1023), "1023");
        assert_eq!(bytes(1_023_500), "1000K");
        assert_eq!(bytes(1_048_000), "1023K");
        // What would round to `1024K` is the next unit already.
        assert_eq!(bytes(1_048_064), "1.0M");
        assert_eq!(bytes(1024), "1.0K");
        assert_eq!(bytes(10_188), "9.9K");
        assert_eq!(bytes(10_189), "10K");
        assert_eq!(bytes(8 << 30), "8.0G");
        assert_eq!(bytes(12 << 30), "12G");
        assert_eq!(bytes(u64::MAX), "16384P");
    }

    #[test]
    fn sizes_are_exact_whole_units() {
        assert_eq!(size(0), "0");
        assert_eq!(size(128), "128");
        assert_eq!(size(1023), "1023");
        assert_eq!(size(1024), "1K");
        assert_eq!(size(1536), "1536");
        assert_eq!(size(4096), "4K");
        assert_eq!(size(16 << 20), "16M");
        assert_eq!(size(1536 << 20), "1536M");
        assert_eq!(size(16 << 30), "16G");
        assert_eq!(size(256 << 30), "256G");
        assert_eq!(size(2 << 40), "2T");
    }

    #[test]
    fn rates_and_counts() {
        assert_eq!(rate(Some(1_048_576.0)), "1.0M");
        assert_eq!(rate(Some(0.4)), "0");
        assert_eq!(rate(None), "-");
        assert_eq!(rate(Some(-1.0)), "-");
        assert_eq!(rate(Some(f64::NAN)), "-");
        assert_eq!(count(Some(256.0)), "256");
        assert_eq!(count(Some(999.4)), "999");
        assert_eq!(count(Some(999.6)), "1.0k");
        assert_eq!(count(Some(12_500.0)), "13k");
        assert_eq!(count(None), "-");
    }

    #[test]
    fn percentages() {
        assert_eq!(percent(Some(0.0)), "0");
        assert_eq!(percent(Some(99.6)), "100");
        assert_eq!(percent(Some(250.0)), "250");
        assert_eq!(percent(None), "-");
        assert_eq!(percent(Some(f64::INFINITY)), "-");
    }

    #[test]
    fn uptime_reads_short_at_each_boundary() {
        assert_eq!(uptime(0), "0m");
        assert_eq!(uptime(59), "0m");
        assert_eq!(uptime(60), "1m");
        assert_eq!(uptime(7 * 60 + 5), "7m");
        assert_eq!(uptime(3599), "59m");
        assert_eq!(uptime(3600), "1h00m");
        assert_eq!(uptime(2 * 3600 + 5 * 60), "2h05m");
        assert_eq!(uptime(86_399), "23h59m");
        assert_eq!(uptime(86_400), "1d00h");
        assert_eq!(uptime(3 * 86_400 + 4 * 3600), "3d04h");
        assert_eq!(uptime(400 * 86_400), "400d00h");
    }

    #[test]
    fn countdowns_read_short() {
        assert_eq!(countdown(0), "0s");
        assert_eq!(countdown(42), "42s");
        assert_eq!(countdown(60), "1m00s");
        assert_eq!(countdown(65), "1m05s");
        assert_eq!(countdown(3600), "1h00m");
        assert_eq!(countdown(3900), "1h05m");
    }

    #[test]
    fn intervals() {
        assert_eq!(interval(Duration::from_secs(1)), "1s");
        assert_eq!(interval(Duration::from_secs(60)), "60s");
        assert_eq!(interval(Duration::from_millis(250)), "0.25s");
        assert_eq!(interval(Duration::from_millis(500)), "0.5s");
        assert_eq!(interval(Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    fn verdict_and_check_words() {
        assert_eq!(verdict(&Verdict::Ready), "ready");
        assert_eq!(verdict(&Verdict::Blocked), "blocked");
        assert_eq!(check(CheckStatus::Fail), "fail");
        assert_eq!(yes_no(true), "yes");
    }

    #[test]
    fn control_characters_are_escaped_and_unicode_kept() {
        let hostile = "a\u{1b}]0;pwn\u{7}b\u{1b}[2Jc\nd\te\r\u{0}\u{7f}\u{9b}é→";
        assert_eq!(
            printable(hostile),
            "a\\e]0;pwn\\x07b\\e[2Jc\\nd\\te\\r\\x00\\x7f\\u{9b}é→"
        );
        assert_eq!(
            printable_text(hostile),
            "a\\e]0;pwn\\x07b\\e[2Jc\nd\te\\r\\x00\\x7f\\u{9b}é→"
        );
        assert!(matches!(
            printable("plain é"),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
