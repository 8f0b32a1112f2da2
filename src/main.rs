use clap::Parser;
use color_eyre::eyre::WrapErr;

use phyllome::cli::{self, Cli, Command, ConsoleArgs};

fn main() -> color_eyre::Result<()> {
    color_eyre::install()?;
    let args = Cli::parse();
    match args.command {
        Some(Command::Host { json }) => {
            cli::host::run(&args.global, json).wrap_err("phyllome host failed")?
        }
        None => run_console(&args.global, args.console)?,
    }
    Ok(())
}

fn run_console(_global: &cli::GlobalArgs, _args: ConsoleArgs) -> color_eyre::Result<()> {
    color_eyre::eyre::bail!("the console is not wired yet")
}
