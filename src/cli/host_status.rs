//! `phyllome host status`: the host's status page (name, kernel, uptime, links, time, the
//! journal's last lines) as text for people or JSON for scripts.

use std::fmt::Write as _;

use clap::Args;

use super::doc::{self, version};
use super::output;
use crate::fmt::printable;
use crate::ops::host_status::{self, HostStatus, DEFAULT_LINES, MAX_LINES};
use crate::ops::HostPaths;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// One JSON document for scripts (`schema_version` first)
    #[arg(long)]
    pub json: bool,
    /// How many of the journal's last lines to show (at most 1000)
    #[arg(long, value_name = "N", default_value_t = DEFAULT_LINES, value_parser = parse_lines)]
    pub lines: usize,
}

/// A count of lines: at least 1; a number too large for any journal is kept as the largest,
/// then cut to [`MAX_LINES`] with a note.
fn parse_lines(text: &str) -> Result<usize, String> {
    let t = text.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "'{text}' is not a number of lines (e.g. --lines 50)"
        ));
    }
    let n = t.parse::<usize>().unwrap_or(usize::MAX);
    if n == 0 {
        return Err("at least 1 line (the journal is shown, not skipped)".into());
    }
    Ok(n)
}

pub fn run(paths: &HostPaths, json_flag: bool, args: &StatusArgs) -> eyre::Result<()> {
    if args.lines > MAX_LINES {
        crate::noteln!(
            "note: --lines {}: showing the last {MAX_LINES} lines, the most this shows",
            args.lines
        );
    }
    let json = json_flag || args.json;
    // Begun before the work, so a failed read still prints a document with its `error`.
    doc::begin(json, version::HOST_STATUS, &[]);
    let status = host_status::status(paths, args.lines.min(MAX_LINES))?;
    if json {
        doc::finish(version::HOST_STATUS, &status)?;
    } else {
        output::out(&render_text(&status))?;
        for w in &status.warnings {
            crate::noteln!("warning: {w}");
        }
    }
    Ok(())
}

const W: usize = 9;

/// Like a DCUI status page: the name on top, then the machine, the network, the clock and
/// the journal.
pub fn render_text(s: &HostStatus) -> String {
    let mut o = String::new();
    let unknown = || "unknown".to_string();
    let _ = writeln!(
        o,
        "{}",
        printable(s.hostname.as_deref().unwrap_or("(no host name)"))
    );
    let _ = writeln!(
        o,
        "  {:<W$}{}",
        "kernel",
        s.kernel.clone().unwrap_or_else(unknown)
    );
    let _ = writeln!(
        o,
        "  {:<W$}{}",
        "uptime",
        s.uptime_seconds
            .map(crate::fmt::uptime)
            .unwrap_or_else(unknown)
    );
    let _ = writeln!(o, "  {:<W$}{}", "load", host_status::load_text(s.load));
    let t = &s.time;
    let _ = writeln!(o, "  {:<W$}{}", "UTC", t.utc);
    let zone = t.zone.as_deref().unwrap_or("zone unknown");
    let _ = writeln!(o, "  {:<W$}{} ({zone})", "local", t.local);
    let _ = writeln!(
        o,
        "  {:<W$}{}",
        "NTP",
        host_status::ntp_word(t.ntp_synchronized)
    );
    let _ = writeln!(o, "\nNetwork");
    if s.links.is_empty() {
        let _ = writeln!(o, "  (no links found)");
    }
    for l in &s.links {
        let mac = l
            .mac
            .as_deref()
            .map(|m| format!("  {m}"))
            .unwrap_or_default();
        let _ = writeln!(o, "  {:<W$}{}{mac}", printable(&l.name), l.summary());
        for a in &l.addresses {
            let _ = writeln!(o, "  {:<W$}  {}/{}", "", a.address, a.prefix);
        }
    }
    if s.default_routes.is_empty() {
        let _ = writeln!(o, "  default route: none");
    }
    for r in &s.default_routes {
        let _ = writeln!(
            o,
            "  default {} {}",
            r.family.word(),
            printable(&r.summary())
        );
    }
    let j = &s.journal;
    let _ = writeln!(o, "\nJournal");
    if let Some(why) = &j.reason {
        let _ = writeln!(o, "  {}", printable(why));
    } else if j.lines.is_empty() {
        let _ = writeln!(o, "  (no entries)");
    }
    for l in &j.lines {
        let _ = writeln!(
            o,
            "  {} {}: {}",
            l.time.as_deref().unwrap_or("?"),
            printable(l.unit.as_deref().unwrap_or("?")),
            printable(&l.message)
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_counts() {
        assert_eq!(parse_lines("50"), Ok(50));
        assert!(parse_lines("0").unwrap_err().contains("at least 1"));
        assert!(parse_lines("abc").unwrap_err().contains("not a number"));
        assert!(parse_lines("-3").is_err());
        assert_eq!(parse_lines("99999999999999999999999999"), Ok(usize::MAX));
    }
}
