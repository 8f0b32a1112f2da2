//! State of the monitor screens (dashboard and one VM's charts), shared by the console's
//! dashboard view and `phyllome top`. Plain data and pure handlers: the sampling task feeds
//! [`Dashboard::apply`], keys go through [`Dashboard::handle`].

use std::time::Duration;

use crate::monitor::config::step_interval;
use crate::monitor::history::{Model, VmHistory};
use crate::monitor::Snapshot;

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
        }
    }

    pub fn apply(&mut self, snap: Snapshot) {
        self.waiting = false;
        self.model.apply(snap);
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

/// A sample from the sampling task on its way to the console's `update` (as
/// `Action::MonitorSample`).
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorSample(pub Snapshot);

// Actions compare for equality in tests only; a sample holding a NaN is never compared with
// itself there, so the missing reflexivity of floats does not matter.
impl Eq for MonitorSample {}
