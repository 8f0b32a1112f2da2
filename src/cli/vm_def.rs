//! `phyllome vm define|edit|export|import|history|rollback`.

use std::path::Path;

use color_eyre::eyre::bail;

use super::vm::{Confirm, DefineArgs, ExportFormat};
use super::GlobalArgs;

pub fn define(_global: &GlobalArgs, _args: DefineArgs) -> color_eyre::Result<()> {
    bail!("vm define is not available in this build")
}

pub fn edit(_global: &GlobalArgs, _name: &str) -> color_eyre::Result<()> {
    bail!("vm edit is not available in this build")
}

pub fn export(_global: &GlobalArgs, _name: &str, _format: ExportFormat) -> color_eyre::Result<()> {
    bail!("vm export is not available in this build")
}

pub fn import(_global: &GlobalArgs, _file: &Path, _name: Option<&str>) -> color_eyre::Result<()> {
    bail!("vm import is not available in this build")
}

pub fn history(_global: &GlobalArgs, _name: &str) -> color_eyre::Result<()> {
    bail!("vm history is not available in this build")
}

pub fn rollback(
    _global: &GlobalArgs,
    _name: &str,
    _to: Option<u32>,
    _confirm: &Confirm,
) -> color_eyre::Result<()> {
    bail!("vm rollback is not available in this build")
}
