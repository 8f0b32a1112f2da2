//! VM definitions: one TOML file per VM, parsed, validated, stored atomically with history,
//! and turned into Cloud Hypervisor's VmConfig.
//!
//! The public API, for the supervisor, the console and the CLI:
//! - [`Store`]: `Store::open(Store::default_dir(state_dir)?)`, then `list` (every file, bad ones
//!   with their error), `get(name) -> VmSpec`, `get_text`, `save(name, text, SaveMode)`,
//!   `edit(name, |doc| ...)` (field edits that keep comments, with [`doc::set`]), `delete`,
//!   `history`, `rollback`.
//! - [`VmSpec`] (see `config/vm-example.toml`, [`EXAMPLE_TOML`]) and [`load`] (parse, then
//!   validate: every problem at once, as [`Problems`]); [`host_check`] for this host and the
//!   other definitions (warnings), [`guard::check`] adding what would hurt the host (errors:
//!   nothing is saved).
//! - [`to_vm_config`] (the body of `vm.create`) with [`RuntimePaths`] (serial socket, console
//!   file), [`macvtap_nets`] (added after create with their descriptors), [`to_cli_args`],
//!   [`from_vm_config`] (import).

pub mod atomic;
pub mod bytesize;
pub mod chconfig;
pub mod doc;
pub mod grace;
pub mod guard;
pub mod history;
pub mod import;
pub mod locality;
pub mod numa;
pub mod parse;
pub mod problem;
pub mod spec;
pub mod store;
pub mod validate;

pub use bytesize::ByteSize;
pub use chconfig::{macvtap_nets, to_cli_args, to_vm_config, RuntimePaths};
pub use grace::StopTimeout;
pub use history::Version;
pub use import::{from_vm_config, Imported};
pub use problem::{Problem, Problems, Severity};
pub use spec::{VmSpec, EXAMPLE_TOML};
pub use store::{Entry, SaveMode, Store, StoreError};
pub use validate::{check_name, host_check, load, validate};
