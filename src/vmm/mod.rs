//! Running VMs: the Cloud Hypervisor REST client, process launch and supervision.
