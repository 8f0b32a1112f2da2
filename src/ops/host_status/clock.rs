//! The time in UTC and in the host's zone (`etc/localtime` under the root), and whether the
//! clock is synchronised over NTP.

use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::Serialize;

use crate::host::SysRoot;
use crate::vfio::error_chain;

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
    let (tz, zone) = match zone(root) {
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
    let asked = if root.is_host() {
        timedated_synchronized()
    } else {
        Err("timedated not asked under --host-root".to_string())
    };
    let ntp_synchronized = match asked {
        Ok(v) => Some(v),
        Err(why) => {
            let file = timesyncd_synchronized(root);
            if file.is_none() {
                warnings.push(format!(
                    "NTP state unknown: {why}; no {TIMESYNCD_FLAG} under {}",
                    root.root().display()
                ));
            }
            file
        }
    };
    TimeStatus {
        utc: now.to_string(),
        local,
        zone,
        ntp_synchronized,
    }
}

/// What a TZif file may weigh: the largest zones are a few KiB, a file past this is not one.
const TZIF_CAP: u64 = 1024 * 1024;

/// The zone of `etc/localtime` (a TZif file, usually a link into `zoneinfo/`); without one
/// the C library uses UTC, and so does this. Every read goes through the root, so a link
/// to `/usr/share/zoneinfo/...` names the root's own zone file, never this machine's.
fn zone(root: &SysRoot) -> Result<(TimeZone, Option<String>), String> {
    let shown = root.lexical("etc/localtime");
    // The link itself, not its target: a link whose target is missing under the root is a
    // broken zone setting, not the absence of one.
    let link = root
        .resolve("etc")
        .ok()
        .map(|etc| etc.join("localtime"))
        .filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()));
    let data = match root.read_bytes("etc/localtime", TZIF_CAP) {
        Ok(d) => d,
        Err(e) if e.is_not_found() => {
            return match link.and_then(|l| std::fs::read_link(l).ok()) {
                Some(target) => Err(format!(
                    "{} links to {}, which does not exist under {}",
                    shown.display(),
                    target.display(),
                    root.root().display()
                )),
                None => Ok((TimeZone::UTC, Some("UTC".into()))),
            };
        }
        Err(e) => return Err(error_chain(&e)),
    };
    let name = link
        .and_then(|l| std::fs::read_link(l).ok())
        .and_then(|target| zone_name_of_link(&target.to_string_lossy()))
        .or_else(|| {
            root.read("etc/timezone")
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        });
    let tz = TimeZone::tzif(name.as_deref().unwrap_or("localtime"), &data)
        .map_err(|e| format!("{}: {e}", shown.display()))?;
    Ok((tz, name))
}

/// `../usr/share/zoneinfo/Europe/Berlin` → `Europe/Berlin`.
fn zone_name_of_link(target: &str) -> Option<String> {
    let (_, name) = target.rsplit_once("zoneinfo/")?;
    Some(name.trim_start_matches("posix/").to_string()).filter(|n| !n.is_empty())
}

/// systemd-timesyncd touches this file once it has synchronised the clock.
const TIMESYNCD_FLAG: &str = "run/systemd/timesync/synchronized";

/// `Some(true)` when timesyncd says it synchronised the clock. Its absence says nothing
/// (another NTP client may run, or none).
fn timesyncd_synchronized(root: &SysRoot) -> Option<bool> {
    root.exists(TIMESYNCD_FLAG).then_some(true)
}

/// What `timedatectl` shows as "System clock synchronized" (the kernel's own flag, whichever
/// NTP client set it), from systemd-timedated on the system bus; else why it is unknown.
fn timedated_synchronized() -> Result<bool, String> {
    // A thread of its own: a runtime cannot be started on a thread that runs async code, and
    // callers may be anywhere (the CLI's main thread, the console's blocking pool).
    std::thread::scope(|s| {
        s.spawn(ask_timedated).join().unwrap_or_else(|_| {
            Err("timedated could not be asked (the asking thread failed)".into())
        })
    })
}

fn ask_timedated() -> Result<bool, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("timedated could not be asked (no runtime: {e})"))?;
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
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(format!("timedated on the system bus: {e}")),
            Err(_) => Err("timedated did not answer within 2 s".into()),
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
            let _ = timedated_synchronized();
        });
        let asked = rt.block_on(async {
            tokio::task::spawn_blocking(|| {
                let _ = timedated_synchronized();
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
        let (tz, name) = zone(&SysRoot::new(dir.path())).unwrap();
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
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("NTP state unknown: timedated not asked under --host-root"),
            "{warnings:?}"
        );
        assert_eq!(t.zone.as_deref(), Some("Asia/Tokyo"));
        assert!(t.local.ends_with("+09:00"), "{}", t.local);
        assert!(t.utc.ends_with('Z'), "{}", t.utc);
        assert_eq!(t.ntp_synchronized, None);
        std::fs::create_dir_all(dir.path().join("run/systemd/timesync")).unwrap();
        std::fs::write(dir.path().join("run/systemd/timesync/synchronized"), "").unwrap();
        let mut warnings = Vec::new();
        assert_eq!(read(&root, &mut warnings).ntp_synchronized, Some(true));
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    /// A root whose `etc/localtime` is a copied zone file (no link), so the name comes from
    /// `etc/timezone`; `None` without tzdata on this machine.
    fn root_with_copied_zone() -> Option<tempfile::TempDir> {
        let Ok(data) = std::fs::read("/usr/share/zoneinfo/Asia/Tokyo") else {
            eprintln!("SKIPPED: no tzdata on this machine");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/localtime"), data).unwrap();
        Some(dir)
    }

    /// An absolute link in the root names the root's file, never this machine's.
    #[test]
    fn an_absolute_timezone_link_stays_inside_the_root() {
        let Some(dir) = root_with_copied_zone() else {
            return;
        };
        std::fs::write(dir.path().join("etc/shadow"), "Inside/Root\n").unwrap();
        std::os::unix::fs::symlink("/etc/shadow", dir.path().join("etc/timezone")).unwrap();
        let (_, name) = zone(&SysRoot::new(dir.path())).unwrap();
        assert_eq!(name.as_deref(), Some("Inside/Root"));
        // With no such file in the root the link leads nowhere, whatever this machine has.
        std::fs::remove_file(dir.path().join("etc/shadow")).unwrap();
        std::fs::remove_file(dir.path().join("etc/timezone")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("etc/timezone")).unwrap();
        let (_, name) = zone(&SysRoot::new(dir.path())).unwrap();
        assert_eq!(name, None);
    }

    /// A FIFO at `etc/timezone` is refused at once; opening it would wait for a writer.
    #[test]
    fn a_fifo_timezone_does_not_hang() {
        let Some(dir) = root_with_copied_zone() else {
            return;
        };
        let fifo = dir.path().join("etc/timezone");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let root = SysRoot::new(dir.path());
        std::thread::spawn(move || {
            let _ = done_tx.send(zone(&root).map(|(_, name)| name));
        });
        let name = done_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("reading a FIFO at etc/timezone hung");
        assert_eq!(name.unwrap(), None);
    }

    /// A link to a zone the root lacks is a broken setting: a warning, not a silent UTC.
    #[test]
    fn a_dangling_localtime_is_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::os::unix::fs::symlink(
            "/usr/share/zoneinfo/Europe/Berlin",
            dir.path().join("etc/localtime"),
        )
        .unwrap();
        let err = zone(&SysRoot::new(dir.path())).unwrap_err();
        assert!(err.contains("does not exist"), "{err}");
        let mut warnings = Vec::new();
        let t = read(&SysRoot::new(dir.path()), &mut warnings);
        assert_eq!(t.zone, None);
        assert!(
            warnings[0].starts_with("time zone unknown")
                && warnings[0].contains("etc/localtime links to /usr/share/zoneinfo/Europe/Berlin"),
            "{warnings:?}"
        );
    }
}
