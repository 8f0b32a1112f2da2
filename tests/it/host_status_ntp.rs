//! NTP's state in `phyllome host status`: systemd-timedated on the system bus (a stand-in on
//! a private bus here), as `timedatectl` shows it.

use std::path::Path;

use serde_json::Value;

use crate::support::cli::{text, Cli};

/// A stand-in systemd-timedated: the one property `host status` asks it for.
struct Timedate {
    synchronized: bool,
}

#[zbus::interface(name = "org.freedesktop.timedate1")]
impl Timedate {
    #[zbus(property, name = "NTPSynchronized")]
    fn ntp_synchronized(&self) -> bool {
        self.synchronized
    }
}

fn ntp_on(bus: &str) -> Value {
    let mut c = Cli::new().cmd(&["host", "status", "--json", "--lines", "1"]);
    c.env("DBUS_SYSTEM_BUS_ADDRESS", bus);
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// NTP's state comes from timedated on the system bus, as `timedatectl` shows it.
#[tokio::test(flavor = "multi_thread")]
async fn ntp_state_comes_from_timedated_on_the_system_bus() {
    let Some(bus) = crate::support::fake_systemd::Bus::start() else {
        crate::support::fake_systemd::skip_without_dbus("timedated");
        return;
    };
    // A bus without timedated: unknown (unless timesyncd's file says synchronised).
    let timesyncd = Path::new("/run/systemd/timesync/synchronized").exists();
    let address = bus.address.clone();
    let none = tokio::task::spawn_blocking(move || ntp_on(&address))
        .await
        .unwrap();
    // Unknown is said, with why: nobody on the bus answers for timedated.
    let unknown = none["warnings"].as_array().unwrap().iter().any(|w| {
        w.as_str()
            .unwrap()
            .starts_with("NTP state unknown: timedated on the system bus: ")
    });
    assert_eq!(unknown, !timesyncd, "{}", none["warnings"]);
    assert_eq!(
        none["time"]["ntp_synchronized"],
        if timesyncd {
            Value::Bool(true)
        } else {
            Value::Null
        }
    );
    for synchronized in [true, false] {
        let conn = zbus::connection::Builder::address(bus.address.as_str())
            .name("org.freedesktop.timedate1")
            .serve_at("/org/freedesktop/timedate1", Timedate { synchronized })
            .build()
            .await
            .unwrap();
        let address = bus.address.clone();
        let got = tokio::task::spawn_blocking(move || ntp_on(&address))
            .await
            .unwrap();
        assert_eq!(got["time"]["ntp_synchronized"], synchronized);
        let warned = got["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().starts_with("NTP state unknown"));
        assert!(!warned, "{}", got["warnings"]);
        drop(conn);
    }
}
