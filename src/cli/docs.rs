//! Shell completions and man pages, generated from the clap definitions so they never drift
//! from the commands: `phyllome completions bash|zsh|fish` prints a script, `phyllome man DIR`
//! writes one page per command (`phyllome.1`, `phyllome-vm-start.1`, …).

use std::path::Path;

use clap::CommandFactory;

use super::output::{self, OutputError};
use super::Cli;

#[derive(Debug, thiserror::Error)]
pub enum DocsError {
    #[error("{0}")]
    Output(#[from] OutputError),
    #[error("Cannot write {path}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The completion script for `shell` on standard output.
pub fn completions(shell: clap_complete::Shell) -> Result<(), DocsError> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "phyllome", &mut script);
    output::out(&String::from_utf8_lossy(&script))?;
    Ok(())
}

/// Writes a man page per command and subcommand into `dir` (created if needed); returns the
/// files written.
pub fn man_pages(dir: &Path) -> Result<Vec<std::path::PathBuf>, DocsError> {
    let write_err = |path: &Path, source| DocsError::Write {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(|e| write_err(dir, e))?;
    let mut written = Vec::new();
    let mut pending = vec![(String::from("phyllome"), Cli::command())];
    while let Some((name, cmd)) = pending.pop() {
        if cmd.is_hide_set() {
            continue;
        }
        let cmd = cmd.name(name.clone()).bin_name(name.replace('-', " "));
        let path = dir.join(format!("{name}.1"));
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd.clone())
            .render(&mut page)
            .map_err(|e| write_err(&path, e))?;
        std::fs::write(&path, page).map_err(|e| write_err(&path, e))?;
        written.push(path);
        for sub in cmd.get_subcommands() {
            pending.push((format!("{name}-{}", sub.get_name()), sub.clone()));
        }
    }
    written.sort();
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every argument, flag and command a user can see says what it is for.
    #[test]
    fn every_visible_argument_has_a_help_line() {
        let mut missing = Vec::new();
        let mut pending = vec![(String::from("phyllome"), Cli::command())];
        while let Some((path, cmd)) = pending.pop() {
            for arg in cmd.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if !arg.is_hide_set() && !builtin && arg.get_help().is_none() {
                    missing.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.is_hide_set() || sub.get_name() == "help" {
                    continue;
                }
                if sub.get_about().is_none() {
                    missing.push(format!("{path} {} (command)", sub.get_name()));
                }
                pending.push((format!("{path} {}", sub.get_name()), sub.clone()));
            }
        }
        missing.sort();
        assert!(missing.is_empty(), "no help line:\n{}", missing.join("\n"));
    }

    #[test]
    fn a_man_page_per_visible_command() {
        let dir = tempfile::tempdir().unwrap();
        let pages = man_pages(dir.path()).unwrap();
        let names: Vec<String> = pages
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for want in [
            "phyllome.1",
            "phyllome-vm.1",
            "phyllome-vm-start.1",
            "phyllome-gpu-detach.1",
        ] {
            assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
        }
        assert!(
            !names.iter().any(|n| n.contains("supervise")),
            "hidden commands stay out"
        );
        let start = std::fs::read_to_string(dir.path().join("phyllome-vm-start.1")).unwrap();
        assert!(start.contains(".TH phyllome-vm-start"), "{start}");
    }
}
