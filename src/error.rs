//! One way to tell an error: its message, then each cause, outermost first.
//!
//! Errors keep what went wrong below them as their `source()`; this module is the only place
//! that walks that chain into text, for the command line (`caused by:` lines), the console's
//! popups and one-line log entries alike.

use std::error::Error;
use std::fmt;

/// The error's message then its causes, outermost first. A message that adds nothing to the
/// one kept before it is left out: a wrapper such as `"VM {name}: {source}"` already shows its
/// source's text, which must not be printed twice.
pub fn messages(error: &(dyn Error + 'static)) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let text = e.to_string();
        let text = text.trim();
        let repeated = out.last().is_some_and(|last| last.contains(text));
        if !text.is_empty() && !repeated {
            out.push(text.to_string());
        }
        next = e.source();
    }
    out
}

/// The causes of `error` alone, outermost first (see [`messages`]).
pub fn causes(error: &(dyn Error + 'static)) -> Vec<String> {
    let mut all = messages(error);
    if !all.is_empty() {
        all.remove(0);
    }
    all
}

/// The whole chain on one line, "message: cause: cause", for logs and one-line reports.
#[derive(Clone, Copy)]
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&messages(self.0).join(": "))
    }
}

impl fmt::Debug for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Another program's error as it reported it, a list of messages outermost first (Cloud
/// Hypervisor answers a failed request so), turned into a chain where each message is the
/// source of the one before it, so the messages read like any other causes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    message: String,
    cause: Option<Box<Remote>>,
}

impl Remote {
    /// None when there is no message at all.
    pub fn from_messages<I>(messages: I) -> Option<Self>
    where
        I: IntoIterator,
        I::IntoIter: DoubleEndedIterator,
        I::Item: Into<String>,
    {
        messages.into_iter().rev().fold(None, |cause, m| {
            Some(Remote {
                message: m.into(),
                cause: cause.map(Box::new),
            })
        })
    }
}

impl fmt::Display for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error for Remote {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.cause.as_deref().map(|c| c as &(dyn Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Inner {
        #[error("No VM named \"nope\"")]
        Missing,
    }

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("VM definitions")]
        Defs(#[source] Inner),
        #[error("VM web: {0}")]
        Shows(#[source] Inner),
        #[error("VM web")]
        Remote(#[source] Remote),
    }

    #[test]
    fn causes_follow_the_sources_outermost_first() {
        let e = Outer::Defs(Inner::Missing);
        assert_eq!(messages(&e), ["VM definitions", "No VM named \"nope\""]);
        assert_eq!(causes(&e), ["No VM named \"nope\""]);
        assert_eq!(
            Chain(&e).to_string(),
            "VM definitions: No VM named \"nope\""
        );
    }

    #[test]
    fn a_wrapper_that_shows_its_source_does_not_repeat_it() {
        let e = Outer::Shows(Inner::Missing);
        assert_eq!(messages(&e), ["VM web: No VM named \"nope\""]);
        assert!(causes(&e).is_empty());
        assert_eq!(Chain(&e).to_string(), "VM web: No VM named \"nope\"");
    }

    #[test]
    fn another_programs_messages_become_causes() {
        let remote = Remote::from_messages(["The VM could not boot", "VM is not created"]);
        let e = Outer::Remote(remote.expect("two messages"));
        assert_eq!(causes(&e), ["The VM could not boot", "VM is not created"]);
        assert_eq!(Remote::from_messages(Vec::<String>::new()), None);
    }

    #[test]
    fn empty_messages_are_left_out() {
        let e = Outer::Remote(Remote::from_messages(["", "disk full"]).expect("messages"));
        assert_eq!(causes(&e), ["disk full"]);
    }
}
