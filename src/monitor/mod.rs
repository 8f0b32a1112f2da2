//! Watching VMs: samplers of the host and of each VM's VMM process and counters, rates against
//! the previous sample, and history in fixed-size ring buffers. Used by the console's
//! dashboard and by `phyllome top`.
//!
//! [`collect::Collector`] reads one [`sample::Snapshot`]; [`history::Model::apply`] turns it
//! into figures and history (pure); [`task::spawn`] runs the collector in its own task at an
//! interval that can change at run time; [`dashboard::Dashboard`] is what the monitor screens
//! show of it (sort, selection, held figures), drawn by the console's views.

pub mod collect;
pub mod config;
pub mod dashboard;
pub mod history;
pub mod host;
pub mod process;
pub mod procfs;
pub mod rate;
pub mod ring;
pub mod sample;
pub mod synthetic;
pub mod task;

pub use collect::Collector;
pub use config::MonitorConfig;
pub use history::Model;
pub use sample::{HostStats, Snapshot, VmStats};

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("Cannot read {what}")]
    Read {
        what: String,
        #[source]
        source: crate::host::SysError,
    },
    #[error("Unexpected content in {file}: {why}")]
    Parse { file: &'static str, why: String },
    #[error("Bad monitor settings: {0}")]
    Config(String),
    #[error("Bad monitor settings")]
    ConfigSyntax(#[source] toml::de::Error),
    #[error("Cannot use the monitor settings in {path}")]
    ConfigFile {
        path: String,
        #[source]
        source: Box<MonitorError>,
    },
    #[error("{0}")]
    File(#[from] crate::files::FileError),
}
