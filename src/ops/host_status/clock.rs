//! The time in UTC and in the host's zone (`etc/localtime` under the root), and whether the
//! clock is synchronised over NTP.

use std::path::Path;
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::Serialize;

use crate::host::SysRoot;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimeStatus {
    /// `2026-11-30T04:47:27Z`.
    pub utc: String,
    /// `2026-11-30T05:47:27+01:00`, in the host's zone.
    pub local: String,
    /// `Europe/Berlin`; `None` when `etc/localtime` has no name (a copied file).
    pub zone: Option<String>,
    /// `None`: the host cannot say (no timedated on the bus, no timesyncd).
    pub ntp_synchronized: Option<bool>,
}

pub fn read(root: &SysRoot, warnings: &mut Vec<String>) -> TimeStatus {
    let now = Timestamp::now();
    let now = Timestamp::from_second(now.as_second()).unwrap_or(now);
    let (tz, zone) = match zone(root.root()) {
        Ok(z) => z,
        Err(why) => {
            warnings.push(format!(
                "time zone unknown ({why}); local time shown in UTC"
            ));
            (TimeZone::UTC, None)
        }
    };
    let local = now
        .to_zoned_datetime(tz)
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string();
    let ntp_synchronized = if root.is_host() {
        timedated_synchronized()
    } else {
        None
    }
    .or_else(|| timesyncd_synchronized(root));
    TimeStatus {
        utc: now.to_string(),
        local,
        zone,
        ntp_synchronized,
    }
}

/// The zone of `etc/localtime` (a TZif file, usually a link into `zoneinfo/`); without one
/// the C library uses UTC, and so does this.
fn zone(root: &Path) -> Result<(TimeZone, Option<String>), String> {
    let path = root.join("etc/localtime");
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok((TimeZone::UTC, Some("UTC".into())))
        }
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let name = std::fs::read_link(&path)
        .ok()
        .and_then(|target| zone_name_of_link(&target.to_string_lossy()))
        .or_else(|| {
            std::fs::read_to_string(root.join("etc/timezone"))
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        });
    let tz = TimeZone::tzif(name.as_deref().unwrap_or("localtime"), &data)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((tz, name))
}

/// `../usr/share/zoneinfo/Europe/Berlin` → `Europe/Berlin`.
fn zone_name_of_link(target: &str) -> Option<String> {
    let (_, name) = target.rsplit_once("zoneinfo/")?;
    Some(name.trim_start_matches("posix/").to_string()).filter(|n| !n.is_empty())
}

/// systemd-timesyncd touches this file once it has synchronised the clock. Its absence says
/// nothing (another NTP client may run, or none).
fn timesyncd_synchronized(root: &SysRoot) -> Option<bool> {
    root.lexical("run/systemd/timesync/synchronized")
        .exists()
        .then_some(true)
}

/// What `timedatectl` shows as "System clock synchronized" (the kernel's own flag, whichever
/// NTP client set it), from systemd-timedated on the system bus.
fn timedated_synchronized() -> Option<bool> {
    // A thread of its own: a runtime cannot be started on a thread that runs async code, and
    // callers may be anywhere (the CLI's main thread, the console's blocking pool).
    std::thread::scope(|s| s.spawn(ask_timedated).join().ok().flatten())
}

fn ask_timedated() -> Option<bool> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    rt.block_on(async {
        let ask = async {
            let conn = zbus::Connection::system().await?;
            let proxy = zbus::Proxy::new(
                &conn,
                "org.freedesktop.timedate1",
                "/org/freedesktop/timedate1",
                "org.freedesktop.timedate1",
            )
            .await?;
            proxy.get_property::<bool>("NTPSynchronized").await
        };
        match tokio::time::timeout(Duration::from_secs(2), ask).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                tracing::debug!("timedated: {e}");
                None
            }
            Err(_) => {
                tracing::debug!("timedated did not answer within 2 s");
                None
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asking the bus works from async code too (its own thread and runtime), never a
    /// panic for a runtime within a runtime.
    #[test]
    fn timedated_can_be_asked_from_inside_a_runtime() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            timedated_synchronized();
        });
        let asked = rt.block_on(async {
            tokio::task::spawn_blocking(|| {
                timedated_synchronized();
            })
            .await
        });
        assert!(asked.is_ok(), "{asked:?}");
    }

    #[test]
    fn zone_names_from_links() {
        assert_eq!(
            zone_name_of_link("../usr/share/zoneinfo/Europe/Berlin").as_deref(),
            Some("Europe/Berlin")
        );
        assert_eq!(
            zone_name_of_link("/usr/share/zoneinfo/posix/Asia/Tokyo").as_deref(),
            Some("Asia/Tokyo")
        );
        assert_eq!(zone_name_of_link("/etc/somewhere"), None);
    }

    #[test]
    fn a_root_without_localtime_is_utc() {
        let dir = tempfile::tempdir().unwrap();
        let (tz, name) = zone(dir.path()).unwrap();
        assert_eq!(name.as_deref(), Some("UTC"));
        assert_eq!(tz, TimeZone::UTC);
    }

    #[test]
    fn a_zone_file_under_the_root_sets_local_time() {
        let Ok(data) = std::fs::read("/usr/share/zoneinfo/Asia/Tokyo") else {
            eprintln!("SKIPPED: no tzdata on this machine");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/localtime"), data).unwrap();
        std::fs::write(dir.path().join("etc/timezone"), "Asia/Tokyo\n").unwrap();
        let root = SysRoot::new(dir.path());
        let mut warnings = Vec::new();
        let t = read(&root, &mut warnings);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(t.zone.as_deref(), Some("Asia/Tokyo"));
        assert!(t.local.ends_with("+09:00"), "{}", t.local);
        assert!(t.utc.ends_with('Z'), "{}", t.utc);
        assert_eq!(t.ntp_synchronized, None);
        std::fs::create_dir_all(dir.path().join("run/systemd/timesync")).unwrap();
        std::fs::write(dir.path().join("run/systemd/timesync/synchronized"), "").unwrap();
        assert_eq!(read(&root, &mut warnings).ntp_synchronized, Some(true));
    }
}
