//! phyllome: the console of a local-first VFIO virtualization host.
//!
//! `host` reads what the machine can do, `ops` holds the operations both front ends call,
//! `cli` prints them for scripts, `tui` is the console and `term` adapts it to serial lines
//! and small terminals. `fmt` formats figures the same way for both front ends.

pub mod cli;
pub mod config_paths;
pub mod disk;
pub mod error;
pub mod files;
pub mod fixture;
pub mod fmt;
pub mod host;
pub mod logging;
pub mod monitor;
pub mod ops;
pub mod serial;
pub mod term;
pub mod tui;
pub mod vfio;
pub mod vm;
pub mod vmm;
