//! Settings of the monitor: `monitor.toml` in the config directory (or `--monitor-config`),
//! every field optional.
//!
//! ```toml
//! interval_secs = 1.0   # sampling interval; + and - change it at run time
//! history = 600         # samples kept per series (10 minutes at 1 s)
//! low_bandwidth = false # serial lines: no graphs, no colour
//! ```

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::MonitorError;

pub const MIN_INTERVAL: Duration = Duration::from_millis(250);
pub const MAX_INTERVAL: Duration = Duration::from_secs(60);

/// Interval steps of `+` and `-`.
const STEPS_MS: [u64; 9] = [250, 500, 1000, 2000, 3000, 5000, 10_000, 30_000, 60_000];

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorConfig {
    pub interval_secs: f64,
    pub history: usize,
    pub low_bandwidth: bool,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            interval_secs: 1.0,
            history: super::history::DEFAULT_HISTORY,
            low_bandwidth: false,
        }
    }
}

impl MonitorConfig {
    pub fn parse(text: &str) -> Result<Self, MonitorError> {
        let c: MonitorConfig = toml::from_str(text).map_err(MonitorError::ConfigSyntax)?;
        if !(c.interval_secs.is_finite()) || c.history == 0 || c.history > 100_000 {
            return Err(MonitorError::Config(
                "interval_secs must be a number and history between 1 and 100000".into(),
            ));
        }
        Ok(c)
    }

    /// The file when it exists, else the defaults.
    pub fn load(path: Option<&Path>) -> Result<Self, MonitorError> {
        match path {
            Some(p) if p.exists() => {
                let in_file = |e| MonitorError::ConfigFile {
                    path: p.display().to_string(),
                    source: Box::new(e),
                };
                let text = crate::files::read_input(p, crate::files::RECORD_CAP)
                    .map_err(|e| in_file(e.into()))?;
                Self::parse(&text).map_err(in_file)
            }
            _ => Ok(Self::default()),
        }
    }

    pub fn interval(&self) -> Duration {
        clamp_interval(Duration::from_secs_f64(
            self.interval_secs.clamp(0.0, 3600.0),
        ))
    }
}

pub fn clamp_interval(d: Duration) -> Duration {
    d.clamp(MIN_INTERVAL, MAX_INTERVAL)
}

/// The next step up (`slower`) or down from `d`.
pub fn step_interval(d: Duration, slower: bool) -> Duration {
    let ms = d.as_millis() as u64;
    let next = if slower {
        STEPS_MS.iter().copied().find(|&s| s > ms)
    } else {
        STEPS_MS.iter().rev().copied().find(|&s| s < ms)
    };
    clamp_interval(Duration::from_millis(next.unwrap_or(ms)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_and_bounds() {
        let s = Duration::from_secs(1);
        assert_eq!(step_interval(s, true), Duration::from_secs(2));
        assert_eq!(step_interval(s, false), Duration::from_millis(500));
        assert_eq!(step_interval(MIN_INTERVAL, false), MIN_INTERVAL);
        assert_eq!(step_interval(MAX_INTERVAL, true), MAX_INTERVAL);
        assert_eq!(
            step_interval(Duration::from_millis(1500), true),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn config_file() {
        let c = MonitorConfig::parse("interval_secs = 2.5\n").unwrap();
        assert_eq!(c.interval(), Duration::from_millis(2500));
        assert_eq!(c.history, 600);
        assert!(MonitorConfig::parse("interval = 1").is_err());
        assert!(MonitorConfig::parse("history = 0").is_err());
        assert_eq!(
            MonitorConfig::parse("interval_secs = 0.01")
                .unwrap()
                .interval(),
            MIN_INTERVAL
        );
    }
}
