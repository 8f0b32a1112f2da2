//! Rates from cumulative counters. Cloud Hypervisor's `vm.counters` only grow while one VMM
//! runs one VM, but start again from zero when the VM is rebooted into a new VMM (or the
//! device is re-added), and a u64 could in principle wrap. Both must give a sane rate, never a
//! huge spike or a negative number.

/// How a counter moved between two samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delta {
    Grew(u64),
    /// Went past `u64::MAX` and around: the increment is still exact.
    Wrapped(u64),
    /// Started again from zero (reboot, new VMM): only what was counted since is known, a lower
    /// bound of the true increment.
    Reset(u64),
}

impl Delta {
    pub fn value(self) -> u64 {
        match self {
            Delta::Grew(d) | Delta::Wrapped(d) | Delta::Reset(d) => d,
        }
    }
}

/// A counter that drops from the top quarter of the u64 range to the bottom quarter wrapped;
/// any other drop is a reset. Real counters never get near 2^62 without wrapping soon after,
/// and a reset counter restarts near zero.
const WRAP_HIGH: u64 = u64::MAX - (u64::MAX >> 2);
const WRAP_LOW: u64 = u64::MAX >> 2;

/// A usable time span or rate: finite and above zero (NaN is neither).
fn positive(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

pub fn counter_delta(prev: u64, cur: u64) -> Delta {
    if cur >= prev {
        Delta::Grew(cur - prev)
    } else if prev >= WRAP_HIGH && cur <= WRAP_LOW {
        Delta::Wrapped((u64::MAX - prev) + cur + 1)
    } else {
        Delta::Reset(cur)
    }
}

/// Per-second rate of a counter over `secs`; `None` when no time passed (or time ran
/// backwards), which callers show as unknown rather than divide by zero.
pub fn rate(prev: u64, cur: u64, secs: f64) -> Option<f64> {
    if !positive(secs) {
        return None;
    }
    Some(counter_delta(prev, cur).value() as f64 / secs)
}

/// CPU use in percent of one core from clock ticks (`USER_HZ`) consumed over `secs`.
pub fn cpu_percent_ticks(prev: u64, cur: u64, secs: f64, ticks_per_sec: f64) -> Option<f64> {
    // Process CPU time never decreases: a drop means another process got the pid.
    if cur < prev || !positive(secs) || !positive(ticks_per_sec) {
        return None;
    }
    Some((cur - prev) as f64 / ticks_per_sec / secs * 100.0)
}

/// CPU use in percent of one core from nanoseconds consumed over `secs`.
pub fn cpu_percent_ns(prev: u64, cur: u64, secs: f64) -> Option<f64> {
    if cur < prev || !positive(secs) {
        return None;
    }
    Some((cur - prev) as f64 / 1e9 / secs * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn growth_wrap_and_reset() {
        assert_eq!(counter_delta(10, 25), Delta::Grew(15));
        assert_eq!(counter_delta(u64::MAX - 4, 5), Delta::Wrapped(10));
        // A reboot: 9 GiB read before, 4 KiB since.
        assert_eq!(counter_delta(9 << 30, 4096), Delta::Reset(4096));
        assert_eq!(counter_delta(7, 0), Delta::Reset(0));
    }

    #[test]
    fn rates_need_time_to_pass() {
        assert_eq!(rate(0, 100, 2.0), Some(50.0));
        assert_eq!(rate(0, 100, 0.0), None);
        assert_eq!(rate(0, 100, -1.0), None);
        assert_eq!(rate(0, 100, f64::NAN), None);
        // After a reset the rate is what was counted since, never negative or huge.
        assert_eq!(rate(1_000_000, 500, 1.0), Some(500.0));
    }

    #[test]
    fn cpu_from_ticks_and_nanoseconds() {
        assert_eq!(cpu_percent_ticks(100, 150, 1.0, 100.0), Some(50.0));
        assert_eq!(cpu_percent_ticks(100, 400, 1.0, 100.0), Some(300.0));
        assert_eq!(cpu_percent_ticks(150, 100, 1.0, 100.0), None);
        assert_eq!(cpu_percent_ns(0, 250_000_000, 0.5), Some(50.0));
    }

    proptest! {
        #[test]
        fn delta_is_exact_across_a_wrap(start in WRAP_HIGH..=u64::MAX, step in 0u64..(1 << 40)) {
            let cur = start.wrapping_add(step);
            prop_assert_eq!(counter_delta(start, cur).value(), step);
        }

        #[test]
        fn rate_is_never_negative_or_above_the_counter(prev: u64, cur: u64, secs in 0.001f64..1000.0) {
            let r = rate(prev, cur, secs).unwrap();
            prop_assert!(r >= 0.0);
            prop_assert!(r.is_finite());
        }
    }
}
