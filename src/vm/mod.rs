//! VM definitions: one TOML file per VM, parsed, validated, stored atomically with history,
//! and turned into Cloud Hypervisor's VmConfig.
