//! Running VMs: the Cloud Hypervisor REST client, process launch and supervision.

pub mod api;
pub mod client;
pub mod error;
