//! A stand-in for systemd-logind's `org.freedesktop.login1.Manager` on a private bus (see
//! [`super::fake_systemd::Bus`]), for the host's reboot and power-off: `CanPowerOff() → s`,
//! `CanReboot() → s`, `PowerOff(b)`, `Reboot(b)` with logind's signatures. It records every
//! call with its argument and, for PowerOff/Reboot, which of the watched processes (the VMMs
//! of a test) were still alive at that moment: the order the tests check.

use crate::support::fake_systemd::Served;
use std::sync::{Arc, Mutex};

/// One call as logind received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub method: String,
    /// `interactive` for PowerOff/Reboot.
    pub interactive: Option<bool>,
    /// Watched pids still running when PowerOff/Reboot came.
    pub alive: Vec<u32>,
}

#[derive(Default)]
struct State {
    calls: Vec<Call>,
    watch: Vec<u32>,
}

/// How the stand-in answers.
#[derive(Clone)]
pub struct Answers {
    /// What CanPowerOff and CanReboot say ("yes", "challenge", "no", "na").
    pub can: String,
    /// PowerOff/Reboot fail with org.freedesktop.DBus.Error.AccessDenied and this text.
    pub refuse: Option<String>,
}

impl Default for Answers {
    fn default() -> Self {
        Answers {
            can: "yes".into(),
            refuse: None,
        }
    }
}

struct Manager {
    state: Arc<Mutex<State>>,
    answers: Answers,
}

#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.freedesktop.DBus.Error")]
enum LoginError {
    #[zbus(error)]
    ZBus(zbus::Error),
    AccessDenied(String),
}

impl Manager {
    fn record(&self, method: &str, interactive: Option<bool>) {
        let mut st = self.state.lock().unwrap();
        let alive = if interactive.is_some() {
            st.watch
                .iter()
                .copied()
                .filter(|&p| phyllome::vmm::launch::pid_running(p))
                .collect()
        } else {
            Vec::new()
        };
        st.calls.push(Call {
            method: method.into(),
            interactive,
            alive,
        });
    }

    fn act(&self, method: &str, interactive: bool) -> Result<(), LoginError> {
        self.record(method, Some(interactive));
        match &self.answers.refuse {
            Some(why) => Err(LoginError::AccessDenied(why.clone())),
            None => Ok(()),
        }
    }
}

#[zbus::interface(name = "org.freedesktop.login1.Manager")]
impl Manager {
    async fn can_power_off(&self) -> String {
        self.record("CanPowerOff", None);
        self.answers.can.clone()
    }

    async fn can_reboot(&self) -> String {
        self.record("CanReboot", None);
        self.answers.can.clone()
    }

    async fn power_off(&self, interactive: bool) -> Result<(), LoginError> {
        self.act("PowerOff", interactive)
    }

    async fn reboot(&self, interactive: bool) -> Result<(), LoginError> {
        self.act("Reboot", interactive)
    }
}

/// The stand-in, served on a thread of its own until dropped.
pub struct FakeLogind {
    state: Arc<Mutex<State>>,
    _served: Served,
}

impl FakeLogind {
    pub fn serve(address: &str, answers: Answers) -> FakeLogind {
        let state = Arc::new(Mutex::new(State::default()));
        let manager = Manager {
            state: state.clone(),
            answers,
        };
        let served = Served::start(
            address,
            "org.freedesktop.login1",
            "/org/freedesktop/login1",
            manager,
        );
        FakeLogind {
            state,
            _served: served,
        }
    }

    /// Processes whose liveness PowerOff/Reboot record.
    pub fn watch(&self, pids: &[u32]) {
        self.state.lock().unwrap().watch.extend_from_slice(pids);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    /// The PowerOff and Reboot calls.
    pub fn actions(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.interactive.is_some())
            .collect()
    }
}
