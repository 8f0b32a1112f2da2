//! The command line's one way to standard output. A reader that goes away (`| head`,
//! `| true`) is not a failure: the write ends the command with [`OutputError::Closed`], which
//! the edge turns into a quiet exit 0, as ripgrep does.

use std::io::Write;

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The reader closed the pipe; nothing is left to tell.
    #[error("Standard output was closed")]
    Closed,
    #[error("Cannot write the output")]
    Write(#[source] std::io::Error),
    #[error("Cannot encode JSON")]
    Encode(#[source] serde_json::Error),
}

/// Writes and flushes at once: progress lines must show while the next step runs.
pub fn write_to(w: &mut impl Write, text: &str) -> Result<(), OutputError> {
    w.write_all(text.as_bytes())
        .and_then(|()| w.flush())
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe => OutputError::Closed,
            _ => OutputError::Write(e),
        })
}

/// `text` on standard output for people: a control character that came with data (a file
/// name, a sysfs value, a VMM's message) is escaped by [`crate::fmt::printable_text`] here,
/// the last step before the terminal, whatever line forgot to. While a `--json` document is
/// pending ([`super::doc`]) the text is dropped: standard output then carries the document alone.
pub fn out(text: &str) -> Result<(), OutputError> {
    if super::doc::active() {
        return Ok(());
    }
    write_to(
        &mut std::io::stdout().lock(),
        &crate::fmt::printable_text(text),
    )
}

/// One pretty JSON value and a newline, exact (JSON escapes what it must itself). Not for
/// phyllome's own documents, which [`super::doc`] writes with their `schema_version`; this is
/// for formats that belong to others (`vm export`'s Cloud Hypervisor VmConfig).
pub fn json(value: &impl serde::Serialize) -> Result<(), OutputError> {
    let mut text = serde_json::to_string_pretty(value).map_err(OutputError::Encode)?;
    text.push('\n');
    write_to(&mut std::io::stdout().lock(), &text)
}

/// `text` on standard error: warnings, notes and questions beside the output, escaped as
/// [`out`] does. A failed write there cannot be reported anywhere, so it is dropped.
pub fn note(text: &str) {
    let text = crate::fmt::printable_text(text);
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
}

/// `eprintln!` through [`note`].
#[macro_export]
macro_rules! noteln {
    ($($arg:tt)*) => {
        $crate::cli::output::note(&format!("{}\n", format_args!($($arg)*)))
    };
}

/// `println!` through [`out`]: a line on standard output, an [`OutputError`] to pass on.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::output::out(&format!("{}\n", format_args!($($arg)*)))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that went away.
    struct Gone;

    impl Write for Gone {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A disk that is full.
    struct Full;

    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::StorageFull.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_pipe_is_told_apart_from_a_failed_write() {
        assert!(matches!(write_to(&mut Gone, "x"), Err(OutputError::Closed)));
        assert!(matches!(
            write_to(&mut Full, "x"),
            Err(OutputError::Write(_))
        ));
        let mut buf = Vec::new();
        write_to(&mut buf, "line\n").expect("a Vec takes it");
        assert_eq!(buf, b"line\n");
    }
}
