//! Supervision by systemd: each VMM runs as the transient unit `phyllome-vm-NAME.service`,
//! started over D-Bus (`StartTransientUnit`), so it belongs to no console's process tree or
//! session and systemd reaps it, logs it and can stop it. Units are found again with
//! `ListUnitsByPatterns`.
//!
//! Used only when `/run/systemd/system` exists and the bus answers; otherwise the VMM runs as
//! a detached process (see [`super::launch`]).
//!
//! [`BUS_ENV`] (`PHYLLOME_SYSTEMD_BUS=unix:path=…`) points phyllome at another bus that serves
//! `org.freedesktop.systemd1`: a test and diagnostic knob, so the whole systemd path runs
//! against a stand-in manager on hosts (and CI machines) where systemd is not PID 1.

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use zbus_systemd::systemd1::ManagerProxy;
use zbus_systemd::zbus;
use zbus_systemd::zbus::{OwnedVariant, Variant};

pub const UNIT_PREFIX: &str = "phyllome-vm-";
const UNIT_SUFFIX: &str = ".service";
const BUS_TIMEOUT: Duration = Duration::from_secs(5);

/// A D-Bus address (`unix:path=/run/x/bus`) to find systemd's manager on instead of the
/// system or session bus. When set, the host counts as running systemd.
pub const BUS_ENV: &str = "PHYLLOME_SYSTEMD_BUS";

/// The bus address of [`BUS_ENV`], when set and not empty.
fn bus_override() -> Option<String> {
    std::env::var(BUS_ENV).ok().filter(|a| !a.trim().is_empty())
}

#[derive(Debug, thiserror::Error)]
pub enum SystemdError {
    // zbus errors are large; boxed so every Result carrying them stays small.
    #[error("Cannot reach systemd over D-Bus")]
    Bus(#[source] Box<zbus::Error>),
    #[error("Cannot reach systemd at {address} ({BUS_ENV})")]
    Address {
        address: String,
        #[source]
        source: Box<zbus::Error>,
    },
    #[error("systemd did not answer within {0:?}")]
    Timeout(Duration),
    #[error("systemd refused {what} for {unit}")]
    Call {
        what: &'static str,
        unit: String,
        #[source]
        source: Box<zbus::Error>,
    },
    #[error("Cannot pass {0:?} to systemd: not UTF-8")]
    NotUtf8(OsString),
    #[error("Cannot encode the unit properties")]
    Encode(#[source] zbus_systemd::zbus::Error),
}

/// Whether this host runs systemd as its service manager (sd_booted(3)'s test), or a bus
/// was named with [`BUS_ENV`].
pub fn host_has_systemd() -> bool {
    bus_override().is_some() || Path::new("/run/systemd/system").is_dir()
}

/// `phyllome-vm-NAME.service`, with NAME escaped as `systemd-escape` does.
pub fn unit_name(vm: &str) -> String {
    format!("{UNIT_PREFIX}{}{UNIT_SUFFIX}", escape(vm))
}

/// `phyllome-serial-NAME.service`: the serial keeper of VM NAME (see `crate::serial::keeper`).
pub fn keeper_unit_name(vm: &str) -> String {
    format!("phyllome-serial-{}{UNIT_SUFFIX}", escape(vm))
}

/// The VM name back from a unit name, for units found by pattern.
pub fn vm_of_unit(unit: &str) -> Option<String> {
    let inner = unit.strip_prefix(UNIT_PREFIX)?.strip_suffix(UNIT_SUFFIX)?;
    unescape(inner)
}

/// systemd.unit(5) escaping: keep `[A-Za-z0-9:_.]` (no leading '.'), `/` becomes `-`,
/// everything else `\xNN`. VM names are already restricted, but '-' must still be escaped or
/// `phyllome-vm-a-b` would be ambiguous.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, b) in s.bytes().enumerate() {
        match b {
            b'/' => out.push('-'),
            b'.' if i == 0 => out.push_str("\\x2e"),
            b if b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'.') => {
                out.push(b as char)
            }
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

fn unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'x') {
            let hex = s.get(i + 2..i + 4)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 4;
        } else {
            out.push(if bytes[i] == b'-' { b'/' } else { bytes[i] });
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Properties of the transient unit. `KillMode=mixed`: `systemctl stop` sends SIGTERM to the
/// VMM only (it then tears the VM down), SIGKILL to everything left after the timeout.
/// `CollectMode=inactive-or-failed`: a VMM that crashed leaves no failed unit blocking the
/// next start under the same name.
pub fn unit_properties(
    description: &str,
    argv: &[OsString],
) -> Result<Vec<(String, OwnedVariant)>, SystemdError> {
    let args: Vec<String> = argv
        .iter()
        .map(|a| {
            a.to_str()
                .map(str::to_string)
                .ok_or_else(|| SystemdError::NotUtf8(a.clone()))
        })
        .collect::<Result<_, _>>()?;
    let path = args.first().cloned().unwrap_or_default();
    let exec_start: Vec<(String, Vec<String>, bool)> = vec![(path, args, false)];
    let props: Vec<(&str, Variant<'_>)> = vec![
        ("Description", Variant::from(description.to_string())),
        ("ExecStart", Variant::from(exec_start)),
        ("KillMode", Variant::from("mixed".to_string())),
        ("Type", Variant::from("simple".to_string())),
        (
            "CollectMode",
            Variant::from("inactive-or-failed".to_string()),
        ),
        ("TimeoutStopUSec", Variant::from(30_000_000u64)),
    ];
    props
        .into_iter()
        .map(|(k, v)| {
            OwnedVariant::try_from(v)
                .map(|v| (k.to_string(), v))
                .map_err(SystemdError::Encode)
        })
        .collect()
}

/// A connection to the service manager: the system one as root, the user's otherwise.
#[derive(Debug, Clone)]
pub struct Systemd {
    conn: zbus::Connection,
}

/// A unit of ours as systemd lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmUnit {
    pub unit: String,
    pub vm: String,
    pub active_state: String,
    pub sub_state: String,
}

impl Systemd {
    /// Connects when this host runs systemd and the bus answers; None otherwise.
    pub async fn detect() -> Option<Self> {
        if !host_has_systemd() {
            return None;
        }
        match Self::connect().await {
            Ok(s) => Some(s),
            Err(e) => {
                // Named explicitly, a dead bus is worth a warning; on a host whose systemd
                // merely has no bus for us (a container) it is routine.
                if bus_override().is_some() {
                    tracing::warn!(error = %e, "systemd bus does not answer: VMMs run as detached processes");
                } else {
                    tracing::info!(error = %e, "systemd present but its bus does not answer");
                }
                None
            }
        }
    }

    async fn connect() -> Result<Self, SystemdError> {
        if let Some(address) = bus_override() {
            return Self::at(&address).await;
        }
        let fut = async {
            if rustix::process::geteuid().is_root() {
                zbus::Connection::system().await
            } else {
                zbus::Connection::session().await
            }
        };
        let conn = tokio::time::timeout(BUS_TIMEOUT, fut)
            .await
            .map_err(|_| SystemdError::Timeout(BUS_TIMEOUT))?
            .map_err(|e| SystemdError::Bus(Box::new(e)))?;
        Ok(Self { conn })
    }

    /// The manager on the bus at `address` (a D-Bus address such as `unix:path=/run/x/bus`);
    /// what [`BUS_ENV`] selects, and what tests use to look at units the way phyllome does.
    pub async fn at(address: &str) -> Result<Self, SystemdError> {
        let err = |e| SystemdError::Address {
            address: address.to_string(),
            source: Box::new(e),
        };
        let fut = async { zbus::connection::Builder::address(address).build().await };
        let conn = tokio::time::timeout(BUS_TIMEOUT, fut)
            .await
            .map_err(|_| SystemdError::Timeout(BUS_TIMEOUT))?
            .map_err(err)?;
        Ok(Self { conn })
    }

    async fn manager(&self) -> Result<ManagerProxy<'_>, SystemdError> {
        ManagerProxy::new(&self.conn)
            .await
            .map_err(|e| SystemdError::Bus(Box::new(e)))
    }

    async fn bounded<T>(
        what: &'static str,
        unit: &str,
        fut: impl std::future::Future<Output = zbus::Result<T>>,
    ) -> Result<T, SystemdError> {
        tokio::time::timeout(BUS_TIMEOUT, fut)
            .await
            .map_err(|_| SystemdError::Timeout(BUS_TIMEOUT))?
            .map_err(|source| SystemdError::Call {
                what,
                unit: unit.to_string(),
                source: Box::new(source),
            })
    }

    /// Starts the VMM as a transient unit; a failed leftover of the same name is reset first.
    pub async fn start(&self, vm: &str, argv: &[OsString]) -> Result<String, SystemdError> {
        let unit = unit_name(vm);
        self.start_unit(&unit, &format!("phyllome VM {vm} (Cloud Hypervisor)"), argv)
            .await?;
        Ok(unit)
    }

    /// Starts `argv` as the transient unit `unit`; a failed leftover of that name is reset
    /// first.
    pub async fn start_unit(
        &self,
        unit: &str,
        description: &str,
        argv: &[OsString],
    ) -> Result<(), SystemdError> {
        let unit = unit.to_string();
        let props = unit_properties(description, argv)?;
        let mgr = self.manager().await?;
        let _ = Self::bounded("reset", &unit, mgr.reset_failed_unit(unit.clone())).await;
        Self::bounded(
            "StartTransientUnit",
            &unit,
            mgr.start_transient_unit(unit.clone(), "fail".into(), props, Vec::new()),
        )
        .await?;
        Ok(())
    }

    /// Stops the unit: SIGTERM to the VMM, SIGKILL after the unit's stop timeout.
    pub async fn stop(&self, unit: &str) -> Result<(), SystemdError> {
        let mgr = self.manager().await?;
        Self::bounded(
            "StopUnit",
            unit,
            mgr.stop_unit(unit.to_string(), "replace".into()),
        )
        .await
        .map(|_| ())
    }

    pub async fn kill(&self, unit: &str) -> Result<(), SystemdError> {
        let mgr = self.manager().await?;
        Self::bounded(
            "KillUnit",
            unit,
            mgr.kill_unit(unit.to_string(), "all".into(), 9),
        )
        .await
    }

    /// Every unit of ours that systemd knows, whatever its state.
    pub async fn list(&self) -> Result<Vec<VmUnit>, SystemdError> {
        let mgr = self.manager().await?;
        let pattern = format!("{UNIT_PREFIX}*{UNIT_SUFFIX}");
        let units = Self::bounded(
            "ListUnitsByPatterns",
            &pattern,
            mgr.list_units_by_patterns(Vec::new(), vec![pattern.clone()]),
        )
        .await?;
        Ok(units
            .into_iter()
            .filter_map(|(unit, _desc, _load, active, sub, ..)| {
                Some(VmUnit {
                    vm: vm_of_unit(&unit)?,
                    unit,
                    active_state: active,
                    sub_state: sub,
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_names_escape_like_systemd_escape() {
        assert_eq!(unit_name("win11"), "phyllome-vm-win11.service");
        assert_eq!(unit_name("dev-box"), "phyllome-vm-dev\\x2dbox.service");
        assert_eq!(unit_name("a_b.c"), "phyllome-vm-a_b.c.service");
        assert_eq!(escape(".x y"), "\\x2ex\\x20y");
        for name in ["win11", "dev-box", "a_b.c", "x-y-z"] {
            assert_eq!(vm_of_unit(&unit_name(name)).as_deref(), Some(name));
        }
        assert_eq!(vm_of_unit("other.service"), None);
        assert_eq!(vm_of_unit("phyllome-vm-bad\\xZZ.service"), None);
    }

    #[test]
    fn transient_unit_properties_have_systemd_signatures() {
        let argv: Vec<OsString> = ["/usr/bin/cloud-hypervisor", "--api-socket", "path=/run/x"]
            .iter()
            .map(OsString::from)
            .collect();
        let props = unit_properties("phyllome VM t1", &argv).unwrap();
        let sig = |k: &str| {
            props
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.value_signature().to_string())
                .unwrap()
        };
        assert_eq!(sig("ExecStart"), "a(sasb)");
        assert_eq!(sig("Description"), "s");
        assert_eq!(sig("KillMode"), "s");
        assert_eq!(sig("TimeoutStopUSec"), "t");
        let exec = props.iter().find(|(n, _)| n == "ExecStart").unwrap();
        let text = format!("{}", *exec.1);
        assert!(text.contains("/usr/bin/cloud-hypervisor"), "{text}");
        assert!(text.contains("path=/run/x"), "{text}");
    }

    #[test]
    fn non_utf8_arguments_are_refused() {
        use std::os::unix::ffi::OsStringExt;
        let argv = vec![OsString::from_vec(vec![0xff, 0xfe])];
        assert!(matches!(
            unit_properties("x", &argv),
            Err(SystemdError::NotUtf8(_))
        ));
    }
}
