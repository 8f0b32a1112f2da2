//! The text console: one event loop, a pure `update`, pure views.
//!
//! Keys become [`Action`]s through the [`Keymap`]; [`update`] changes the [`State`] and
//! returns [`Effect`]s that the loop in [`app`] carries out (background reads, repaints).
//! `phyllome top` is this same loop opened on the dashboard alone ([`ConsoleOptions::top`]).

pub mod action;
pub mod app;
pub mod escape;
pub mod gpu_runtime;
pub mod gpus;
pub mod host;
pub mod input;
pub mod keymap;
pub mod modal;
pub mod power;
pub mod power_runtime;
pub mod serial;
pub mod serial_runtime;
pub mod state;
pub mod update;
pub mod view;
pub mod vm_runtime;
pub mod vms;

pub use action::Action;
pub use app::{run, run_on, run_on_with, run_until, run_with, ConsoleOptions, Exit};
pub use keymap::{Keymap, KeymapError};
pub use modal::{modal, Modal};
pub use state::{State, Theme, View};
pub use update::{update, Effect};
