//! `vm log --json`: the guest's serial output as JSON Lines, one object per line of output,
//! `{"schema_version":1,"vm":NAME,"line":TEXT}`. The text is exact (JSON escapes control
//! characters itself), without its line ending; invalid UTF-8 becomes U+FFFD.

use super::doc;

/// Bytes not yet ended by a newline, kept until the rest of their line comes (`--follow`
/// reads whatever the log has, often half a line).
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
        self.split(raw, &mut emit)
    }

    /// The last line, when the log does not end with a newline.
    pub fn end(self) -> eyre::Result<()> {
        self.finish(&mut emit)
    }

    fn split(
        &mut self,
        raw: &[u8],
        out: &mut impl FnMut(&str) -> eyre::Result<()>,
    ) -> eyre::Result<()> {
        self.partial.extend_from_slice(raw);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let rest = self.partial.split_off(end + 1);
            let line = std::mem::replace(&mut self.partial, rest);
            out(&text(&line))?;
        }
        Ok(())
    }

    fn finish(self, out: &mut impl FnMut(&str) -> eyre::Result<()>) -> eyre::Result<()> {
        if self.partial.is_empty() {
            return Ok(());
        }
        out(&text(&self.partial))
    }
}

/// A line without its ending (`\n` or `\r\n`), invalid UTF-8 replaced.
fn text(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let line = text.strip_suffix('\n').unwrap_or(&text);
    line.strip_suffix('\r').unwrap_or(line).to_string()
}

fn emit(line: &str) -> eyre::Result<()> {
    Ok(doc::line(&Line { line })?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_told_when_complete_and_the_rest_at_the_end() {
        let mut seen = Vec::new();
        let mut out = |l: &str| {
            seen.push(l.to_string());
            Ok(())
        };
        let mut lines = Lines::default();
        lines.split(b"boot: ok\r\nlog", &mut out).unwrap();
        lines.split(b"in: \x1b[1m\n\nprompt# ", &mut out).unwrap();
        lines.split(b"\xff", &mut out).unwrap();
        lines.finish(&mut out).unwrap();
        assert_eq!(
            seen,
            ["boot: ok", "login: \u{1b}[1m", "", "prompt# \u{fffd}"]
        );
    }
}
