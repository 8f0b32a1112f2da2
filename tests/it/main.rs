//! The integration tests, one program: each module was once a test binary of its own, and
//! `support` holds what they share (the CLI runner, the UI driver, the VMMs, the qemu guest).
//! One binary links tokio, hyper and zbus once instead of once per file.
// A test reports by failing: its helpers unwrap, panic and print as the tests do.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::string_slice,
    clippy::exit
)]

mod support;

mod ch_conformance;
mod cli_docs;
mod cli_errors;
mod disks;
mod escapes;
mod fuzz;
mod gpu_boot_cli;
mod gpu_cli;
mod gpu_confirm_pty;
mod host_image;
mod host_inventory;
mod host_power;
mod host_status;
mod host_status_ntp;
mod host_status_root;
mod hostile_files;
mod hostile_inputs;
mod json_docs;
mod managed_vfio;
mod monitor_model;
mod monitor_samplers;
mod monitor_vmm_double;
mod real_kernel;
mod real_kernel_host_status;
mod real_kernel_vfio;
mod real_vmm;
mod real_vmm_numa;
mod real_vmm_rescue;
mod refusals;
mod serial;
mod serial_support;
mod state_storage;
mod term_pty;
mod tui_console_dashboard;
mod tui_dashboard;
mod tui_escape_pty;
mod tui_gpu_flow;
mod tui_gpu_loop;
mod tui_host;
mod tui_hung_vmm;
mod tui_linux_console;
mod tui_loop;
mod tui_numa;
mod tui_power;
mod tui_screens;
mod tui_serial;
mod tui_vm_rescue;
mod tui_vms;
mod vendor_ids;
mod vfio_boot;
mod vfio_ops;
mod vfio_plan;
mod vm_lifecycle;
mod vm_macvtap;
mod vm_numa;
mod vm_rescue;
mod vm_snapshots;
mod vm_spec;
mod vm_store;
mod vm_systemd;
mod vmm_client;
