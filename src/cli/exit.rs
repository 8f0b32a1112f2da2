//! Exit codes, for scripts that must tell failures apart:
//!
//! | code | meaning                                                                        |
//! |------|--------------------------------------------------------------------------------|
//! | 0    | success (also when a reader closed standard output early, as with `\| head`)   |
//! | 1    | failure: anything not listed below                                             |
//! | 2    | usage: a bad command line (clap's own errors, and values it cannot check)      |
//! | 3    | not found: no such VM, definition version or PCI device                        |
//! | 4    | refused: a dangerous action not confirmed, or a harmful definition not saved   |
//! | 5    | VMM error: Cloud Hypervisor refused a request, or cannot be reached or started |
//!
//! A refusal (4) is the owner's to lift: `--yes` where no terminal could ask; for a definition
//! that would hurt the host (a mounted disk, an existing serial file, ...), fixing the field it
//! names, or `--force` where the message offers it.
//!
//! The code comes from the first error of the cause chain, outermost first, whose type says
//! which of these it is; the messages are never parsed.

use std::error::Error;
use std::process::ExitCode;

use super::output::OutputError;
use super::vm::ConfirmError;
use super::CliError;
use crate::ops::define::DefineError;
use crate::ops::gpu::GpuError;
use crate::ops::PathsError;
use crate::vm::StoreError;
use crate::vmm::defs::DefsError;
use crate::vmm::error::VmmError;
use crate::vmm::fdpass::FdPassError;
use crate::vmm::launch::LaunchError;
use crate::vmm::manager::ManagerError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Ok = 0,
    Failure = 1,
    Usage = 2,
    NotFound = 3,
    Refused = 4,
    Vmm = 5,
}

impl From<Code> for ExitCode {
    fn from(c: Code) -> Self {
        ExitCode::from(c as u8)
    }
}

/// The exit code of a command that failed with `error`.
pub fn code(error: &(dyn Error + 'static)) -> Code {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(c) = of(e) {
            return c;
        }
        next = e.source();
    }
    Code::Failure
}

/// The error a boxed `dyn Error` source holds. Every wrapper of ours names its inner error as
/// its `source()`, so the walk of [`code`] meets each typed error; only a cause kept as a
/// `Box<dyn Error>` (CH's refusal of a snapshot) shows the box, not the error in it.
fn unboxed<'a>(e: &'a (dyn Error + 'static)) -> Option<&'a (dyn Error + 'static)> {
    use crate::vmm::manager::SnapshotError;
    match e.downcast_ref() {
        Some(SnapshotError::Failed { source, .. } | SnapshotError::FailedPaused { source, .. }) => {
            Some(&**source)
        }
        _ => None,
    }
}

/// What this one error says, when its type tells.
fn of(e: &(dyn Error + 'static)) -> Option<Code> {
    if let Some(inner) = unboxed(e) {
        return of(inner);
    }
    if let Some(e) = e.downcast_ref::<OutputError>() {
        return matches!(e, OutputError::Closed).then_some(Code::Ok);
    }
    if e.is::<clap::Error>() || e.is::<crate::host::pci_address::ParseAddressError>() {
        return Some(Code::Usage);
    }
    if let Some(e) = e.downcast_ref::<CliError>() {
        return matches!(e, CliError::Usage(_) | CliError::BadFlag { .. }).then_some(Code::Usage);
    }
    if matches!(e.downcast_ref(), Some(PathsError::BadHostRoot(_))) {
        return Some(Code::Usage);
    }
    if matches!(e.downcast_ref(), Some(DefsError::NotDefined(_)))
        || matches!(
            e.downcast_ref(),
            Some(StoreError::NotFound(_) | StoreError::NoVersion { .. })
        )
        || matches!(
            e.downcast_ref(),
            Some(GpuError::NoDevice(_) | GpuError::UnknownVm(_) | GpuError::NotAssigned(_))
        )
        || matches!(
            e.downcast_ref(),
            Some(crate::vfio::PlanError::UnknownDevice(_))
        )
        || matches!(
            e.downcast_ref(),
            Some(crate::vmm::manager::SnapshotError::NoSnapshot { .. })
        )
        || matches!(
            e.downcast_ref(),
            Some(crate::serial::SerialError::NoLog { .. })
        )
    {
        return Some(Code::NotFound);
    }
    if matches!(
        e.downcast_ref(),
        Some(crate::serial::SerialError::NoTerminal(_))
    ) {
        return Some(Code::Usage);
    }
    if matches!(
        e.downcast_ref(),
        Some(ConfirmError::NoTerminal(_) | ConfirmError::Declined(_))
    ) || matches!(
        e.downcast_ref(),
        Some(GpuError::NeedsYes { .. } | GpuError::Declined { .. })
    ) || matches!(e.downcast_ref(), Some(DefineError::Refused { .. }))
    {
        return Some(Code::Refused);
    }
    if e.is::<VmmError>()
        || e.is::<LaunchError>()
        || e.is::<FdPassError>()
        || matches!(
            e.downcast_ref(),
            Some(ManagerError::VmmExited { .. } | ManagerError::NotReady { .. })
        )
    {
        return Some(Code::Vmm);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("Cannot start VM web")]
    struct Doing(#[source] ManagerError);

    #[test]
    fn the_first_typed_cause_decides() {
        let missing = Doing(ManagerError::Defs(DefsError::NotDefined("web".into())));
        assert_eq!(code(&missing), Code::NotFound);
        let refused = Doing(ManagerError::Vmm {
            name: "web".into(),
            source: VmmError::api("vm.boot", 500, vec!["Error from API".into()]),
        });
        assert_eq!(code(&refused), Code::Vmm);
        // Behind wrappers, as `ManagerError` holds them: each names its inner error as source.
        let no_vmm = ManagerError::Supervisor(LaunchError::NotFound.into());
        assert_eq!(code(&no_vmm), Code::Vmm);
        let exited = ManagerError::VmmExited {
            name: "web".into(),
            log: String::new(),
        };
        assert_eq!(code(&exited), Code::Vmm);
        assert_eq!(code(&ManagerError::NotRunning("web".into())), Code::Failure);
    }

    #[test]
    fn confirmations_usage_and_closed_output() {
        assert_eq!(
            code(&ConfirmError::NoTerminal("reboot VM web".into())),
            Code::Refused
        );
        assert_eq!(code(&CliError::Usage("--interval".into())), Code::Usage);
        assert_eq!(code(&OutputError::Closed), Code::Ok);
        let write = OutputError::Write(std::io::ErrorKind::StorageFull.into());
        assert_eq!(code(&write), Code::Failure);
    }

    #[test]
    fn a_harmful_definition_is_refused_and_a_bad_host_root_is_usage() {
        let refused = DefineError::Refused {
            name: "web".into(),
            problems: Vec::new(),
            forceable: false,
        };
        assert_eq!(code(&refused), Code::Refused);
        let paths = DefineError::Paths(PathsError::BadHostRoot("/nope".into()));
        assert_eq!(code(&paths), Code::Usage);
    }
}
