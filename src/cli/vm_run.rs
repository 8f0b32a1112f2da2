//! `phyllome vm list|info|start|stop|reboot|pause|resume|delete` and `phyllome autostart`.

use color_eyre::eyre::bail;

use super::vm::Confirm;
use super::GlobalArgs;

pub fn list(_global: &GlobalArgs, _json: bool) -> color_eyre::Result<()> {
    bail!("vm list is not available in this build")
}

pub fn info(_global: &GlobalArgs, _name: &str, _json: bool) -> color_eyre::Result<()> {
    bail!("vm info is not available in this build")
}

pub fn start(_global: &GlobalArgs, _name: &str) -> color_eyre::Result<()> {
    bail!("vm start is not available in this build")
}

pub fn stop(
    _global: &GlobalArgs,
    _name: &str,
    _force: bool,
    _timeout_secs: u64,
    _confirm: &Confirm,
) -> color_eyre::Result<()> {
    bail!("vm stop is not available in this build")
}

pub fn reboot(_global: &GlobalArgs, _name: &str, _confirm: &Confirm) -> color_eyre::Result<()> {
    bail!("vm reboot is not available in this build")
}

pub fn pause(_global: &GlobalArgs, _name: &str) -> color_eyre::Result<()> {
    bail!("vm pause is not available in this build")
}

pub fn resume(_global: &GlobalArgs, _name: &str) -> color_eyre::Result<()> {
    bail!("vm resume is not available in this build")
}

pub fn delete(_global: &GlobalArgs, _name: &str, _confirm: &Confirm) -> color_eyre::Result<()> {
    bail!("vm delete is not available in this build")
}

pub fn autostart(_global: &GlobalArgs) -> color_eyre::Result<()> {
    bail!("autostart is not available in this build")
}
