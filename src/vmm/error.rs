//! Errors of the Cloud Hypervisor REST client.
//!
//! Cloud Hypervisor answers a failed request with a JSON array of messages, outermost first
//! (`["Error from API", "The VM could not boot", "VM is not created"]`). They are kept as a list
//! so the console can show them as a cause list; `Display` shows the most useful one.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::Remote;

/// A failed call to a VMM's REST API. `op` is the API route (`vm.boot`, `vmm.ping`, ...).
#[derive(Debug, thiserror::Error)]
pub enum VmmError {
    /// Nothing listens on the socket (no such file, connection refused, not a socket).
    #[error("Cannot connect to the VMM at {}", socket.display())]
    Connect {
        socket: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The VMM did not answer in time: its API thread blocks during boot and shutdown, or it hangs.
    #[error("{op} timed out after {}", fmt_duration(*after))]
    Timeout { op: &'static str, after: Duration },

    /// The VMM refused the request; `causes` are its messages, outermost first, and `reply`
    /// the same messages as the error's cause chain (see [`VmmError::api`]).
    #[error("{op} failed: {}", headline(causes, *status))]
    Api {
        op: &'static str,
        status: u16,
        causes: Vec<String>,
        #[source]
        reply: Option<Remote>,
    },

    /// The connection broke or the reply was not valid HTTP.
    #[error("{op}: HTTP exchange with the VMM failed")]
    Http {
        op: &'static str,
        #[source]
        source: hyper::Error,
    },

    /// A successful reply whose body is not what the API promises.
    #[error("{op}: unexpected reply from the VMM")]
    Decode {
        op: &'static str,
        #[source]
        source: serde_json::Error,
    },

    /// The request could not be encoded (a bug of the caller, never of the VMM).
    #[error("{op}: cannot encode the request")]
    Encode {
        op: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

impl VmmError {
    /// A refusal of the VMM, its messages outermost first.
    pub fn api(op: &'static str, status: u16, causes: Vec<String>) -> Self {
        let reply = Remote::from_messages(specific(&causes).cloned().collect::<Vec<_>>());
        VmmError::Api {
            op,
            status,
            causes,
            reply,
        }
    }

    /// The VMM's messages, outermost first; empty for errors that did not come from the VMM.
    pub fn causes(&self) -> &[String] {
        match self {
            VmmError::Api { causes, .. } => causes,
            _ => &[],
        }
    }

    /// True when the VMM did not answer in time.
    pub fn is_timeout(&self) -> bool {
        matches!(self, VmmError::Timeout { .. })
    }
}

/// CH's messages without its generic outermost "Error from API", which says nothing.
pub(crate) fn specific(causes: &[String]) -> impl Iterator<Item = &String> {
    causes.iter().filter(|c| c.as_str() != "Error from API")
}

/// The message worth a headline: CH's outermost one is the generic "Error from API", so the
/// first more specific one is shown; the full list stays available through `causes()`.
fn headline(causes: &[String], status: u16) -> String {
    causes
        .iter()
        .find(|c| c.as_str() != "Error from API")
        .or(causes.first())
        .cloned()
        .unwrap_or_else(|| format!("HTTP {status}"))
}

fn fmt_duration(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_error_shows_the_first_specific_cause() {
        let e = VmmError::api(
            "vm.boot",
            500,
            vec![
                "Error from API".into(),
                "The VM could not boot".into(),
                "VM is not created".into(),
            ],
        );
        assert_eq!(e.to_string(), "vm.boot failed: The VM could not boot");
        assert_eq!(e.causes().len(), 3);
        // The headline is not repeated, and CH's generic message is left out.
        assert_eq!(crate::error::causes(&e), ["VM is not created"]);
    }

    #[test]
    fn api_error_without_causes_shows_the_status() {
        let e = VmmError::api("vm.info", 404, vec![]);
        assert_eq!(e.to_string(), "vm.info failed: HTTP 404");
    }

    #[test]
    fn timeout_reads_well() {
        let e = VmmError::Timeout {
            op: "vm.boot",
            after: Duration::from_millis(250),
        };
        assert_eq!(e.to_string(), "vm.boot timed out after 250 ms");
        assert!(e.is_timeout());
    }
}
