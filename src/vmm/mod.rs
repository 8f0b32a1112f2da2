//! Running VMs: the Cloud Hypervisor REST client, process launch and supervision.

pub mod api;
pub mod client;
pub mod defs;
pub mod device_ops;
pub mod device_supervisor;
pub mod error;
pub mod events;
pub mod fdpass;
pub mod launch;
pub mod managed;
pub mod manager;
pub mod runtime;
pub mod supervisor;
pub mod systemd;
pub mod worker;
