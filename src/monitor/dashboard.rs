//! The model of the monitor screens (the dashboard and one VM's charts): sort order, held
//! figures, selection, the charts open, the sampling interval. Plain data and pure handlers,
//! no terminal: the sampling task feeds [`Dashboard::apply`], a front end turns its keys into
//! [`DashKey`]s for [`Dashboard::handle`] and draws what it holds.

use std::time::Duration;

use super::config::step_interval;
use super::history::{Model, VmHistory};
use super::Snapshot;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    #[default]
    Name,
    Cpu,
    Memory,
    Disk,
    Net,
}

impl SortKey {
    pub fn next(self) -> Self {
        match self {
            SortKey::Name => SortKey::Cpu,
            SortKey::Cpu => SortKey::Memory,
            SortKey::Memory => SortKey::Disk,
            SortKey::Disk => SortKey::Net,
            SortKey::Net => SortKey::Name,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SortKey::Name => "name",
            SortKey::Cpu => "cpu",
            SortKey::Memory => "memory",
            SortKey::Disk => "disk",
            SortKey::Net => "net",
        }
    }
}

/// What the monitor screens understand, whichever program hosts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DashKey {
    Up,
    Down,
    Top,
    Bottom,
    PageUp,
    PageDown,
    Sort,
    Faster,
    Slower,
    /// Open the selected VM's charts.
    Open,
    /// Leave the charts; `false` when there was nothing to leave.
    Back,
}

#[derive(Debug, Clone)]
pub struct Dashboard {
    pub model: Model,
    pub sort: SortKey,
    pub selected: usize,
    /// The VM whose charts are open.
    pub detail: Option<String>,
    pub interval: Duration,
    /// No graphs, no colour, coarser numbers: for serial lines.
    pub low_bandwidth: bool,
    /// Nothing sampled yet.
    pub waiting: bool,
    /// What the table shows of each VM, by name: see [`Held`].
    pub held: std::collections::HashMap<String, Held>,
    /// Show every figure as sampled, never held (for comparisons).
    pub exact: bool,
}

/// The figures of one table row as shown: a figure is repainted only when it moved by a
/// margin a reader would act on (see [`hold`]). Noise of a few percent from second to second
/// otherwise rewrites three or four digits of every row at every sample, which is most of
/// what a dashboard sends down a serial line. The charts of one VM and `top --batch` show
/// the exact figures.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Held {
    pub cpu_percent: Option<f64>,
    pub disk_read_bps: Option<f64>,
    pub disk_write_bps: Option<f64>,
    pub net_rx_bps: Option<f64>,
    pub net_tx_bps: Option<f64>,
}

/// Rates move on when they change by a tenth; CPU % by a tenth or two points, whichever is
/// more (a 3% VM flickering between 2 and 4 says nothing).
const RATE_MARGIN: f64 = 0.10;
const CPU_MARGIN: f64 = 0.10;
const CPU_POINTS: f64 = 2.0;

/// The value to show: `new` when it moved from `shown` by at least `rel` of it (and `abs`),
/// or to or from zero or unknown, which always show at once; `shown` otherwise.
pub fn hold(shown: Option<f64>, new: Option<f64>, rel: f64, abs: f64) -> Option<f64> {
    match (shown, new) {
        (Some(s), Some(n)) if s.is_finite() && n.is_finite() && s != 0.0 && n != 0.0 => {
            if (n - s).abs() >= (s.abs() * rel).max(abs) {
                Some(n)
            } else {
                Some(s)
            }
        }
        _ => new,
    }
}

impl Held {
    fn next(self, s: &super::VmStats) -> Held {
        let rate = |shown, new| hold(shown, new, RATE_MARGIN, 0.0);
        Held {
            cpu_percent: hold(self.cpu_percent, s.cpu_percent, CPU_MARGIN, CPU_POINTS),
            disk_read_bps: rate(self.disk_read_bps, s.disk_read_bps),
            disk_write_bps: rate(self.disk_write_bps, s.disk_write_bps),
            net_rx_bps: rate(self.net_rx_bps, s.net_rx_bps),
            net_tx_bps: rate(self.net_tx_bps, s.net_tx_bps),
        }
    }
}

impl Dashboard {
    pub fn new(history: usize, interval: Duration, low_bandwidth: bool) -> Self {
        Self {
            model: Model::new(history),
            sort: SortKey::default(),
            selected: 0,
            detail: None,
            interval,
            low_bandwidth,
            waiting: true,
            held: std::collections::HashMap::new(),
            exact: false,
        }
    }

    pub fn apply(&mut self, snap: Snapshot) {
        self.waiting = false;
        self.model.apply(snap);
        let vms = &self.model.vms;
        self.held.retain(|name, _| vms.contains_key(name));
        for (name, h) in vms {
            let held = self.held.entry(name.clone()).or_default();
            *held = if self.exact {
                Held::default().next(&h.stats)
            } else {
                held.next(&h.stats)
            };
        }
    }

    /// The figures the table shows for `name` (the latest ones before the first sample).
    pub fn shown(&self, name: &str) -> Held {
        self.held.get(name).copied().unwrap_or_default()
    }

    /// VMs whose name or state contains `filter` (case-insensitive), in the sort order.
    pub fn rows(&self, filter: &str) -> Vec<&VmHistory> {
        let needle = filter.to_lowercase();
        let mut rows: Vec<&VmHistory> = self
            .model
            .vms
            .values()
            .filter(|h| {
                needle.is_empty()
                    || h.stats.name.to_lowercase().contains(&needle)
                    || h.stats.state.to_lowercase().contains(&needle)
            })
            .collect();
        let key = |h: &VmHistory| -> f64 {
            let s = &h.stats;
            let sum = |a: Option<f64>, b: Option<f64>| a.unwrap_or(0.0) + b.unwrap_or(0.0);
            match self.sort {
                SortKey::Name => 0.0,
                SortKey::Cpu => s.cpu_percent.unwrap_or(-1.0),
                SortKey::Memory => s.memory_rss_bytes.map_or(-1.0, |v| v as f64),
                SortKey::Disk => sum(s.disk_read_bps, s.disk_write_bps),
                SortKey::Net => sum(s.net_rx_bps, s.net_tx_bps),
            }
        };
        // Biggest first; names break ties so rows do not jump between equal values.
        rows.sort_by(|a, b| {
            key(b)
                .total_cmp(&key(a))
                .then_with(|| a.stats.name.cmp(&b.stats.name))
        });
        rows
    }

    pub fn selected_name(&self, filter: &str) -> Option<String> {
        self.rows(filter)
            .get(self.selected)
            .map(|h| h.stats.name.clone())
    }

    /// Handles a key; returns the new interval when it changed (the sampler must be told).
    pub fn handle(&mut self, key: DashKey, filter: &str, page: usize) -> Option<Duration> {
        let last = self.rows(filter).len().saturating_sub(1);
        let page = page.max(1);
        match key {
            DashKey::Up => self.selected = self.selected.saturating_sub(1),
            DashKey::Down => self.selected = (self.selected + 1).min(last),
            DashKey::PageUp => self.selected = self.selected.saturating_sub(page),
            DashKey::PageDown => self.selected = (self.selected + page).min(last),
            DashKey::Top => self.selected = 0,
            DashKey::Bottom => self.selected = last,
            DashKey::Sort => {
                // Keep the cursor on the same VM when the order changes.
                let name = self.selected_name(filter);
                self.sort = self.sort.next();
                if let Some(n) = name {
                    self.selected = self
                        .rows(filter)
                        .iter()
                        .position(|h| h.stats.name == n)
                        .unwrap_or(0);
                }
            }
            DashKey::Faster | DashKey::Slower => {
                let next = step_interval(self.interval, key == DashKey::Slower);
                if next != self.interval {
                    self.interval = next;
                    return Some(next);
                }
            }
            DashKey::Open => self.detail = self.selected_name(filter),
            DashKey::Back => self.detail = None,
        }
        None
    }

    /// Keeps the cursor on a row and the charts on a VM that still exists.
    pub fn clamp(&mut self, filter: &str) {
        let n = self.rows(filter).len();
        self.selected = self.selected.min(n.saturating_sub(1));
        if let Some(d) = &self.detail {
            if !self.model.vms.contains_key(d) {
                self.detail = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::hold;

    #[test]
    fn held_figures_move_only_by_a_visible_margin() {
        // Within a tenth: the shown figure stays.
        assert_eq!(hold(Some(1000.0), Some(1090.0), 0.1, 0.0), Some(1000.0));
        assert_eq!(hold(Some(1000.0), Some(910.0), 0.1, 0.0), Some(1000.0));
        // A tenth or more: it moves.
        assert_eq!(hold(Some(1000.0), Some(1100.0), 0.1, 0.0), Some(1100.0));
        assert_eq!(hold(Some(1000.0), Some(850.0), 0.1, 0.0), Some(850.0));
        // Going idle, waking up, unknown: at once.
        assert_eq!(hold(Some(1000.0), Some(0.0), 0.1, 0.0), Some(0.0));
        assert_eq!(hold(Some(0.0), Some(5.0), 0.1, 0.0), Some(5.0));
        assert_eq!(hold(Some(1000.0), None, 0.1, 0.0), None);
        assert_eq!(hold(None, Some(7.0), 0.1, 0.0), Some(7.0));
        // CPU: two points at least, so a nearly idle VM does not flicker.
        assert_eq!(hold(Some(3.0), Some(4.5), 0.1, 2.0), Some(3.0));
        assert_eq!(hold(Some(3.0), Some(5.0), 0.1, 2.0), Some(5.0));
        assert_eq!(hold(Some(f64::NAN), Some(5.0), 0.1, 2.0), Some(5.0));
    }
}
