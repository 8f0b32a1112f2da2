//! The question a destructive command asks before it acts, and its refusal without a terminal.

use clap::Args;

/// Destructive commands ask on a terminal; scripts say `--yes`.
#[derive(Debug, Clone, Args)]
pub struct Confirm {
    /// Do it without asking
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    #[error("Refusing to {0} without confirmation: no terminal to ask on; pass --yes")]
    NoTerminal(String),
    #[error("Not confirmed: {0} was left alone")]
    Declined(String),
    #[error("Cannot read the answer")]
    Read(#[source] std::io::Error),
}

impl Confirm {
    /// Asks "`what`? [y/N]" on the terminal unless `--yes` was given; without a terminal
    /// and without `--yes` it refuses, so a script never blocks or acts by accident.
    pub fn ask(&self, what: &str) -> Result<(), ConfirmError> {
        use std::io::{BufRead, IsTerminal, Write};
        if self.yes {
            return Ok(());
        }
        if !std::io::stdin().is_terminal() {
            // The question reads "Reboot VM web"; the refusal "Refusing to reboot VM web".
            let mut chars = what.chars();
            let what = chars
                .next()
                .map(|c| c.to_lowercase().chain(chars).collect())
                .unwrap_or_default();
            return Err(ConfirmError::NoTerminal(what));
        }
        crate::cli::output::note(&format!("{what}? [y/N] "));
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map_err(ConfirmError::Read)?;
        match answer.trim() {
            "y" | "Y" | "yes" | "YES" => Ok(()),
            _ => Err(ConfirmError::Declined(what.to_string())),
        }
    }
}
