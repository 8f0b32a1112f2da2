//! The operations both front ends call: reading the host, VM actions and GPU moves, each a
//! typed function of one [`HostPaths`] that returns a typed error. `cli` parses, calls and
//! prints; `tui` turns keys into effects that call the same functions. Nothing here prints:
//! progress goes through callbacks, and whether the owner confirmed is the caller's business
//! (a refusal for want of it is still a typed error here, so every front end reports it alike).

pub mod define;
pub mod disk;
pub mod gpu;
pub mod host;
pub mod host_status;
mod paths;
pub mod power;
pub mod serial;
pub mod vm;

pub use paths::{HostPaths, PathsError};
