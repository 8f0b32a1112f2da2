//! What the terminal can show: Unicode box drawing or plain ASCII, colours or none.
//!
//! crossterm ignores `TERM`, so these decisions are ours. The environment is read through an
//! injected lookup so that every rule is testable without touching the process environment.

/// The capabilities the views should assume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermProfile {
    /// Draw borders, gauges and markers with ASCII only.
    pub ascii: bool,
    /// Use colours (false with `NO_COLOR` or `TERM=dumb`).
    pub color: bool,
    /// The value of `TERM`, empty when unset.
    pub term: String,
    /// Whether the locale (LC_ALL, then LC_CTYPE, then LANG) names UTF-8.
    pub utf8_locale: bool,
    /// Why ASCII mode was chosen, for the log; `None` when `ascii` is false.
    pub ascii_reason: Option<AsciiReason>,
    /// `TERM=linux`: the kernel's text console, whose font has box drawing but not ✔ ✘ ▶.
    pub linux_console: bool,
}

/// Why the console draws with ASCII only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsciiReason {
    /// `--ascii` was given.
    Flag,
    /// The locale does not name UTF-8 (unset, `C`, `POSIX` or another charset).
    Locale,
    /// A VT100-class or dumb terminal without a UTF-8 locale.
    Terminal,
}

impl std::fmt::Display for AsciiReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AsciiReason::Flag => "--ascii given",
            AsciiReason::Locale => "locale is not UTF-8",
            AsciiReason::Terminal => "VT100-class terminal without a UTF-8 locale",
        })
    }
}

impl TermProfile {
    /// Decide from an environment lookup and the `--ascii` flag.
    ///
    /// Empty variables count as unset, as POSIX says for the locale variables.
    pub fn detect(env: impl Fn(&str) -> Option<String>, force_ascii: bool) -> TermProfile {
        let var = |name: &str| env(name).filter(|v| !v.is_empty());
        let term = var("TERM").unwrap_or_default();
        let locale = ["LC_ALL", "LC_CTYPE", "LANG"].into_iter().find_map(var);
        let utf8_locale = locale.as_deref().is_some_and(names_utf8);
        let ascii_reason = if force_ascii {
            Some(AsciiReason::Flag)
        } else if !utf8_locale && is_vt100_class(&term) {
            Some(AsciiReason::Terminal)
        } else if !utf8_locale {
            Some(AsciiReason::Locale)
        } else {
            None
        };
        // no-color.org: any non-empty NO_COLOR disables colour, whatever its value.
        let color = var("NO_COLOR").is_none() && term != "dumb";
        TermProfile {
            ascii: ascii_reason.is_some(),
            color,
            linux_console: term == "linux",
            term,
            utf8_locale,
            ascii_reason,
        }
    }

    /// Decide from the process environment.
    pub fn from_env(force_ascii: bool) -> TermProfile {
        TermProfile::detect(|name| std::env::var(name).ok(), force_ascii)
    }
}

/// `en_US.UTF-8`, `C.UTF-8`, `de_DE.utf8@euro` all name UTF-8; `C`, `POSIX`, `en_US.ISO-8859-1`
/// do not.
fn names_utf8(locale: &str) -> bool {
    let codeset = locale
        .split_once('.')
        .map(|(_, rest)| rest.split('@').next().unwrap_or(rest))
        .unwrap_or("");
    let normalized: String = codeset
        .chars()
        .filter(|c| *c != '-' && *c != '_')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    normalized == "utf8"
}

/// Hardware-style terminals (and getty's defaults for serial lines) that cannot be assumed to
/// have line-drawing glyphs in Unicode.
fn is_vt100_class(term: &str) -> bool {
    let t = term.to_ascii_lowercase();
    t.is_empty()
        || t == "dumb"
        || t.starts_with("vt1")
        || t.starts_with("vt2")
        || t.starts_with("vt3")
        || t.starts_with("vt4")
        || t == "ansi"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn utf8_locale_and_xterm_is_unicode_with_colour() {
        let p = TermProfile::detect(env(&[("LANG", "en_US.UTF-8"), ("TERM", "xterm")]), false);
        assert!(!p.ascii);
        assert!(p.color);
        assert!(p.utf8_locale);
        assert_eq!(p.term, "xterm");
        assert_eq!(p.ascii_reason, None);
    }

    #[test]
    fn flag_forces_ascii() {
        let p = TermProfile::detect(env(&[("LANG", "C.UTF-8"), ("TERM", "xterm")]), true);
        assert!(p.ascii);
        assert_eq!(p.ascii_reason, Some(AsciiReason::Flag));
    }

    #[test]
    fn unset_c_and_posix_locales_are_ascii() {
        for vars in [
            &[("TERM", "xterm")][..],
            &[("TERM", "xterm"), ("LANG", "C")][..],
            &[("TERM", "xterm"), ("LANG", "POSIX")][..],
            &[("TERM", "xterm"), ("LANG", "en_US.ISO-8859-1")][..],
        ] {
            let p = TermProfile::detect(env(vars), false);
            assert!(p.ascii, "{vars:?}");
            assert_eq!(p.ascii_reason, Some(AsciiReason::Locale), "{vars:?}");
        }
    }

    #[test]
    fn locale_precedence_is_lc_all_then_lc_ctype_then_lang() {
        let p = TermProfile::detect(
            env(&[
                ("LC_ALL", "C"),
                ("LC_CTYPE", "en_US.UTF-8"),
                ("LANG", "en_US.UTF-8"),
            ]),
            false,
        );
        assert!(!p.utf8_locale);
        let p = TermProfile::detect(env(&[("LC_CTYPE", "C"), ("LANG", "en_US.UTF-8")]), false);
        assert!(!p.utf8_locale);
        let p = TermProfile::detect(env(&[("LC_CTYPE", "de_DE.utf8"), ("LANG", "C")]), false);
        assert!(p.utf8_locale);
        // Empty means unset, so the next variable decides.
        let p = TermProfile::detect(env(&[("LC_ALL", ""), ("LANG", "C.UTF-8")]), false);
        assert!(p.utf8_locale);
    }

    #[test]
    fn codeset_spellings() {
        assert!(names_utf8("en_US.UTF-8"));
        assert!(names_utf8("en_US.utf8"));
        assert!(names_utf8("de_DE.UTF-8@euro"));
        assert!(names_utf8("C.UTF-8"));
        assert!(!names_utf8("UTF-8"));
        assert!(!names_utf8("C"));
        assert!(!names_utf8("en_US"));
        assert!(!names_utf8("en_US.UTF-16"));
    }

    #[test]
    fn serial_terminal_without_utf8_is_ascii_but_with_utf8_is_not() {
        for term in ["vt100", "vt220", "VT102", "dumb", "ansi", ""] {
            let p = TermProfile::detect(env(&[("TERM", term)]), false);
            assert!(p.ascii, "{term}");
            assert_eq!(p.ascii_reason, Some(AsciiReason::Terminal), "{term}");
        }
        let p = TermProfile::detect(env(&[("TERM", "vt220"), ("LANG", "C.UTF-8")]), false);
        assert!(!p.ascii);
    }

    #[test]
    fn no_color_any_non_empty_value_disables_colour() {
        for value in ["1", "0", "false", "yes"] {
            let p = TermProfile::detect(env(&[("NO_COLOR", value), ("TERM", "xterm")]), false);
            assert!(!p.color, "NO_COLOR={value}");
        }
        let p = TermProfile::detect(env(&[("NO_COLOR", ""), ("TERM", "xterm")]), false);
        assert!(p.color);
    }

    #[test]
    fn dumb_terminal_has_no_colour() {
        let p = TermProfile::detect(env(&[("TERM", "dumb"), ("LANG", "C.UTF-8")]), false);
        assert!(!p.color);
        assert!(!p.ascii);
    }
}
