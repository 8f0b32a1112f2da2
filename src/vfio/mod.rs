//! Giving a device's IOMMU group to guests through vfio-pci — and always getting it back.
//!
//! ```text
//! plan(&root, &inventory, address, &PlanOptions)      -> Result<Plan, PlanError>
//! plan.needs_confirmation / plan.confirm(typed)        typed consent for the console GPU
//! apply(&plan, &dyn SysWriter, &root, &mut on_step)    -> Result<Applied, ApplyError>
//! release_plan(&root, &inventory, address, &ReleaseOptions) -> Result<Plan, PlanError>
//! release(&plan, &dyn SysWriter, &root, &mut on_step)  -> Result<Applied, ApplyError>
//! ResetMarks::load(state_dir, &root) / guest_ran / needs_reboot
//! DeviceUse::of(&device, marks, vm)                    host driver / vfio-pci / VM / reboot
//! boot_config(&root, &inventory, address)              -> Result<BootConfig, PersistError>
//! Bindings::read(&root)                                what is bound where, to compare
//! ```
//!
//! A [`Plan`] lists every step before anything is touched (`Display` for text, `Serialize`
//! for JSON): fbcon and firmware framebuffers off when the group's GPU shows the host
//! console, then per device `driver_override`, unbind, `drivers_probe`, verify. Guard rails
//! refuse groups holding the root disk controller, the default route's NIC, the serial
//! console's UART or a BMC display, and hosts without IOMMU or vfio-pci.
//!
//! [`apply`] reports each step through `on_step` as it runs; when one fails, the steps
//! already taken are undone in reverse and [`Failure`] says what failed, what was restored
//! and, loudly, what was not. Every write goes through a [`SysWriter`] relative to a root:
//! [`RootWriter`] on a real host, `fixture::FakeKernel` in tests.

mod apply;
mod exec;
mod guard;
mod persist;
mod plan;
mod release;
mod reset;
mod state;
mod step;

pub use crate::host::{RootWriter, SysWriter};
pub use apply::{apply, error_chain, Applied, ApplyError, Failure, Phase, StepEvent, StepStatus};
pub use exec::StepError;
pub use guard::Holder;
pub use persist::{boot_config, BootConfig, ConfigFile, PersistError};
pub use plan::{plan, Confirmation, Operation, Plan, PlanError, PlanOptions, PlannedDevice};
pub use release::{release, release_plan, ReleaseOptions};
pub use reset::{has_working_reset, DeviceUse, ResetError, ResetMark, ResetMarks};
pub use state::{Bindings, VFIO_PCI};
pub use step::{Action, Step, Undo};
