//! `vm log --json`: the guest's serial output as JSON Lines, one object per line of output,
//! `{"schema_version":1,"vm":NAME,"line":TEXT}`. The text is exact (JSON escapes control
//! characters itself), without its line ending; invalid UTF-8 becomes U+FFFD.

use super::doc;

/// Bytes not yet ended by a newline, kept until the rest of their line comes.
#[derive(Default)]
pub struct Lines {
    partial: Vec<u8>,
}

#[derive(serde::Serialize)]
struct Line<'a> {
    line: &'a str,
}

impl Lines {
    /// Prints every line `raw` completes.
    pub fn push(&mut self, raw: &[u8]) -> eyre::Result<()> {
        self.partial.extend_from_slice(raw);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let rest = self.partial.split_off(end + 1);
            let line = std::mem::replace(&mut self.partial, rest);
            emit(&line)?;
        }
        Ok(())
    }

    /// The last line, when the log does not end with a newline.
    pub fn end(self) -> eyre::Result<()> {
        if !self.partial.is_empty() {
            emit(&self.partial)?;
        }
        Ok(())
    }
}

fn emit(raw: &[u8]) -> eyre::Result<()> {
    let text = String::from_utf8_lossy(raw);
    let line = text.trim_end_matches('\n').trim_end_matches('\r');
    Ok(doc::line(&Line { line })?)
}
