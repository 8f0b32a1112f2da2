//! How a failed command tells it, on stderr:
//!
//! ```text
//! phyllome: error: Cannot start VM web
//! caused by: No VM named "web"; see `phyllome vm list`
//! ```
//!
//! "error:" is bold red only on a terminal without `NO_COLOR`; a backtrace of where the error
//! became a report follows only when `RUST_BACKTRACE` asks for one. The exit code comes from
//! [`super::exit`].

use std::backtrace::Backtrace;
use std::error::Error;
use std::fmt::{self, Write as _};
use std::io::{IsTerminal, Write as _};
use std::process::ExitCode;

use super::exit::{self, Code};

/// Makes every `eyre::Report` of this process take a backtrace when `RUST_BACKTRACE` asks.
pub fn install() {
    // Fails only when a hook is there already, which then does the same job.
    let _ = eyre::set_hook(Box::new(|_| {
        Box::new(Handler {
            backtrace: backtrace_wanted().then(Backtrace::force_capture),
        })
    }));
}

/// `RUST_BACKTRACE` set to anything but 0 (or nothing).
fn backtrace_wanted() -> bool {
    std::env::var_os("RUST_BACKTRACE").is_some_and(|v| !v.is_empty() && v != "0")
}

struct Handler {
    backtrace: Option<Backtrace>,
}

impl eyre::EyreHandler for Handler {
    /// `{:?}` of a report (a test's `unwrap`) reads as the command line prints it.
    fn debug(&self, error: &(dyn Error + 'static), f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&render(error, false))?;
        if let Some(bt) = &self.backtrace {
            write!(f, "\nbacktrace:\n{bt}")?;
        }
        Ok(())
    }
}

/// The lines a failed command prints, each ending in a newline.
pub fn render(error: &(dyn Error + 'static), color: bool) -> String {
    let label = if color {
        "\x1b[1;31merror:\x1b[0m"
    } else {
        "error:"
    };
    let mut s = String::new();
    for (i, message) in crate::error::messages(error).iter().enumerate() {
        let lead = if i == 0 {
            format!("phyllome: {label} ")
        } else {
            "caused by: ".to_string()
        };
        // Messages carry data (file names, the VMM's own text): never raw to the terminal.
        let _ = writeln!(s, "{lead}{}", crate::fmt::printable_text(message));
    }
    s
}

/// Tells the failure on stderr and gives the exit code; a closed standard output ends quietly.
pub fn fail(report: &eyre::Report) -> ExitCode {
    let error: &(dyn Error + 'static) = report.as_ref();
    let code = exit::code(error);
    if code == Code::Ok {
        return code.into();
    }
    // A `--json` command still gives its one document, with the error in it.
    super::doc::fail(error);
    let stderr = std::io::stderr();
    let color = stderr.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let mut text = render(error, color);
    if let Some(bt) = report
        .handler()
        .downcast_ref::<Handler>()
        .and_then(|h| h.backtrace.as_ref())
    {
        let _ = write!(text, "\nbacktrace:\n{bt}");
    }
    // Nowhere is left to tell a failure to write stderr.
    let _ = stderr.lock().write_all(text.as_bytes());
    code.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vmm::defs::DefsError;

    #[test]
    fn message_then_one_line_per_cause_colored_on_request() {
        let report =
            eyre::Report::new(DefsError::NotDefined("web".into())).wrap_err("Cannot start VM web");
        let error: &(dyn Error + 'static) = report.as_ref();
        assert_eq!(
            render(error, false),
            "phyllome: error: Cannot start VM web\n\
             caused by: No VM named \"web\"; see `phyllome vm list`\n"
        );
        let colored = render(error, true);
        assert!(colored.starts_with("phyllome: \x1b[1;31merror:\x1b[0m Cannot start VM web\n"));
    }
}
