//! The VMM test double's VM state machine: Cloud Hypervisor's API semantics without a VM.
//!
//! Pure (no I/O, time passed in), so the double's server stays a thin shell around it. Error
//! bodies mimic CH's: a JSON array of messages, outermost first, with HTTP 500 for requests the
//! current state refuses and 400 for bodies that do not parse or do not match the spec.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::openapi;

/// Synthetic counter rates (per second of running time), so monitoring tests know what to expect.
pub const DISK_READ_BYTES_PER_S: u64 = 1_048_576;
pub const DISK_WRITE_BYTES_PER_S: u64 = 524_288;
pub const DISK_READ_OPS_PER_S: u64 = 256;
pub const DISK_WRITE_OPS_PER_S: u64 = 128;
pub const NET_RX_BYTES_PER_S: u64 = 125_000;
pub const NET_TX_BYTES_PER_S: u64 = 62_500;
pub const NET_RX_FRAMES_PER_S: u64 = 100;
pub const NET_TX_FRAMES_PER_S: u64 = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Created,
    Running,
    Shutdown,
    Paused,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Created => "Created",
            State::Running => "Running",
            State::Shutdown => "Shutdown",
            State::Paused => "Paused",
        }
    }
}

/// What the server must do besides answering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    None,
    /// The guest was asked to power off: it will, after a while (see `Machine::guest_poweroff`).
    GuestPowerOff {
        boot: u64,
    },
    /// The VM booted: the serial line starts talking, on the socket or file of the config.
    Booted {
        serial_socket: Option<String>,
        serial_file: Option<String>,
    },
    /// `vmm.shutdown`: answer, then exit.
    ExitVmm,
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Option<Value>,
    /// Event-monitor events as (source, event), in order.
    pub events: Vec<(&'static str, &'static str)>,
    pub effect: Effect,
}

impl Reply {
    fn ok() -> Reply {
        Reply {
            status: 204,
            body: None,
            events: Vec::new(),
            effect: Effect::None,
        }
    }

    fn json(body: Value) -> Reply {
        Reply {
            status: 200,
            body: Some(body),
            ..Reply::ok()
        }
    }

    fn events(mut self, events: &[&'static str]) -> Reply {
        self.events.extend(events.iter().map(|e| ("vm", *e)));
        self
    }

    /// CH's shape: `["Error from API", <what failed>, <why>...]`, HTTP 500.
    pub fn error(status: u16, what: &str, why: &str) -> Reply {
        Reply {
            status,
            body: Some(json!(["Error from API", what, why])),
            ..Reply::ok()
        }
    }
}

struct Vm {
    config: Value,
    state: State,
    /// Running time accumulated before the current run (pauses stop the counters).
    ran: Duration,
    running_since: Option<Instant>,
    /// Bumped on every boot so a late guest power-off does not hit a later boot.
    boot: u64,
    /// Hot-plugged devices: id → PCI address.
    hotplugged: BTreeMap<String, String>,
}

impl Vm {
    fn uptime(&self, now: Instant) -> Duration {
        self.ran + self.running_since.map_or(Duration::ZERO, |t| now - t)
    }

    fn set_running(&mut self, now: Instant, running: bool) {
        if running {
            self.running_since.get_or_insert(now);
        } else if let Some(t) = self.running_since.take() {
            self.ran += now - t;
        }
    }
}

#[derive(Default)]
pub struct Machine {
    vm: Option<Vm>,
    boots: u64,
    next_slot: u32,
}

/// `ApiError` wording of CH per route: the message that says what failed.
fn what_failed(route: &str) -> &'static str {
    match route {
        "vm.create" => "The VM could not be created",
        "vm.boot" => "The VM could not boot",
        "vm.pause" => "The VM could not be paused",
        "vm.resume" => "The VM could not resume",
        "vm.shutdown" => "The VM could not shutdown",
        "vm.reboot" => "The VM could not reboot",
        "vm.power-button" => "Error triggering power button",
        "vm.delete" => "The VM could not be deleted",
        "vm.info" => "The VM info is not available",
        "vm.counters" => "Error getting VM counters",
        "vm.add-device" | "vm.add-net" => "The new device could not be added to the VM",
        "vm.remove-device" => "The device could not be removed from the VM",
        "vm.snapshot" => "The VM could not be snapshotted",
        "vm.restore" => "The VM could not be restored",
        "vm.nmi" => "Error injecting NMI",
        "vmm.shutdown" => "The VMM could not shutdown",
        _ => "Error from API",
    }
}

impl Machine {
    /// Handles one request; `route` is `vm.boot` etc., `body` the raw request body.
    pub fn handle(&mut self, route: &str, body: &[u8], now: Instant) -> Reply {
        self.handle_with_fds(route, body, now, 0)
    }

    /// [`Machine::handle`] for a request that came with `fds` descriptors (SCM_RIGHTS).
    pub fn handle_with_fds(&mut self, route: &str, body: &[u8], now: Instant, fds: usize) -> Reply {
        let what = what_failed(route);
        if let Err(e) = openapi::validate_request(route, body) {
            return Reply {
                status: 400,
                body: Some(json!(["Error from API", what, e])),
                ..Reply::ok()
            };
        }
        let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let transition = |from: State, to: &str| {
            Reply::error(
                500,
                what,
                &format!("invalid VM state transition: {} to {to}", from.as_str()),
            )
        };
        let not_created = || Reply::error(500, what, "VM is not created");

        match route {
            "vmm.ping" => Reply::json(json!({
                "build_version": "v54.0-double",
                "version": "v54.0-double",
                "pid": std::process::id(),
                "features": ["kvm"],
            })),
            "vmm.shutdown" => {
                let mut r = self.delete();
                r.events.push(("vmm", "shutdown"));
                r.effect = Effect::ExitVmm;
                r
            }
            "vm.create" => {
                if self.vm.is_some() {
                    return Reply::error(500, what, "VM is already created");
                }
                self.vm = Some(Vm {
                    config: parsed,
                    state: State::Created,
                    ran: Duration::ZERO,
                    running_since: None,
                    boot: 0,
                    hotplugged: BTreeMap::new(),
                });
                Reply::ok()
            }
            "vm.delete" => self.delete(),
            "vm.boot" => {
                let Some(vm) = self.vm.as_mut() else {
                    return not_created();
                };
                if !matches!(vm.state, State::Created | State::Shutdown) {
                    return transition(vm.state, "Running");
                }
                self.boots += 1;
                vm.boot = self.boots;
                vm.state = State::Running;
                vm.ran = Duration::ZERO;
                vm.running_since = None;
                vm.set_running(now, true);
                let serial = |mode: &str, key: &str| {
                    let c = &vm.config;
                    (c.pointer("/serial/mode") == Some(&json!(mode)))
                        .then(|| c.pointer(key).and_then(Value::as_str).map(str::to_owned))
                        .flatten()
                };
                let mut r = Reply::ok().events(&["booting", "booted"]);
                r.effect = Effect::Booted {
                    serial_socket: serial("Socket", "/serial/socket"),
                    serial_file: serial("File", "/serial/file"),
                };
                r
            }
            "vm.pause" | "vm.resume" => {
                let Some(vm) = self.vm.as_mut() else {
                    return not_created();
                };
                let (from, to, events) = if route == "vm.pause" {
                    (State::Running, State::Paused, ["pausing", "paused"])
                } else {
                    (State::Paused, State::Running, ["resuming", "resumed"])
                };
                if vm.state != from {
                    return transition(vm.state, to.as_str());
                }
                vm.state = to;
                vm.set_running(now, to == State::Running);
                Reply::ok().events(&events)
            }
            "vm.shutdown" => {
                let Some(vm) = self.vm.as_mut() else {
                    return not_created();
                };
                if !matches!(vm.state, State::Running | State::Paused) {
                    return transition(vm.state, "Shutdown");
                }
                vm.state = State::Shutdown;
                vm.set_running(now, false);
                Reply::ok().events(&["shutdown"])
            }
            "vm.reboot" => {
                let Some(vm) = self.vm.as_mut() else {
                    return not_created();
                };
                if vm.state != State::Running {
                    return Reply::error(500, what, "VM is not booted");
                }
                vm.ran = Duration::ZERO;
                vm.running_since = Some(now);
                Reply::ok().events(&["rebooting", "rebooted"])
            }
            "vm.power-button" => {
                let Some(vm) = self.vm.as_ref() else {
                    return not_created();
                };
                if vm.state != State::Running {
                    return Reply::error(500, what, "VM is not booted");
                }
                let mut r = Reply::ok();
                r.effect = Effect::GuestPowerOff { boot: vm.boot };
                r
            }
            "vm.nmi" => match self.vm.as_ref() {
                None => not_created(),
                Some(vm) if vm.state != State::Running => {
                    Reply::error(500, what, "VM is not booted")
                }
                Some(_) => Reply::ok(),
            },
            "vm.info" => match self.vm.as_ref() {
                None => not_created(),
                Some(vm) => Reply::json(self.info(vm)),
            },
            "vm.counters" => match self.vm.as_ref() {
                None => not_created(),
                Some(vm) if vm.state == State::Created => {
                    Reply::error(500, what, "VM is not booted")
                }
                Some(vm) => Reply::json(counters(vm.uptime(now))),
            },
            "vm.add-device" => self.add_device(&parsed, what),
            "vm.add-net" => self.add_net(&parsed, what, fds),
            "vm.remove-device" => self.remove_device(&parsed, what),
            "vm.snapshot" => match self.vm.as_ref() {
                None => not_created(),
                Some(vm) if vm.state != State::Paused => {
                    Reply::error(500, what, "VM is not paused")
                }
                // The server writes the files: this only says what to write.
                Some(vm) => Reply::json(json!({ "config": vm.config })),
            },
            "vm.restore" => {
                if self.vm.is_some() {
                    return Reply::error(500, what, "VM is already created");
                }
                // The server reads the snapshot and calls `restored`.
                Reply::ok()
            }
            _ => Reply::error(404, "Error from API", &format!("Unknown route {route}")),
        }
    }

    /// The guest acted on the power button. False if the VM was deleted or rebooted meanwhile.
    pub fn guest_poweroff(&mut self, boot: u64, now: Instant) -> bool {
        match self.vm.as_mut() {
            Some(vm) if vm.boot == boot && vm.state == State::Running => {
                vm.state = State::Shutdown;
                vm.set_running(now, false);
                true
            }
            _ => false,
        }
    }

    /// A restored VM is paused, with the snapshot's config.
    pub fn restored(&mut self, config: Value, resume: bool, now: Instant) {
        self.boots += 1;
        let mut vm = Vm {
            config,
            state: if resume {
                State::Running
            } else {
                State::Paused
            },
            ran: Duration::ZERO,
            running_since: None,
            boot: self.boots,
            hotplugged: BTreeMap::new(),
        };
        vm.set_running(now, resume);
        self.vm = Some(vm);
    }

    pub fn state(&self) -> Option<State> {
        self.vm.as_ref().map(|vm| vm.state)
    }

    fn delete(&mut self) -> Reply {
        // Deleting nothing succeeds, as in CH.
        match self.vm.take() {
            None => Reply::ok(),
            Some(vm) if matches!(vm.state, State::Running | State::Paused) => {
                Reply::ok().events(&["shutdown", "deleted"])
            }
            Some(_) => Reply::ok().events(&["deleted"]),
        }
    }

    fn info(&self, vm: &Vm) -> Value {
        let mut tree = serde_json::Map::new();
        for (id, bdf) in &vm.hotplugged {
            tree.insert(
                id.clone(),
                json!({"id": id, "resources": [], "children": [], "pci_bdf": bdf}),
            );
        }
        json!({
            "config": vm.config,
            "state": vm.state.as_str(),
            "memory_actual_size": vm.config.pointer("/memory/size").and_then(Value::as_u64)
                .unwrap_or(512 << 20),
            "device_tree": tree,
        })
    }

    fn add_device(&mut self, body: &Value, what: &str) -> Reply {
        let Some(vm) = self.vm.as_mut() else {
            return Reply::error(500, what, "VM is not created");
        };
        let path = body.get("path").and_then(Value::as_str).unwrap_or_default();
        if path.is_empty() {
            return Reply::error(400, what, "A VFIO device needs a path");
        }
        let id = match body.get("id").and_then(Value::as_str) {
            Some(id) => id.to_owned(),
            None => format!("_vfio{}", self.next_slot),
        };
        if vm.hotplugged.contains_key(&id) {
            return Reply::error(500, what, &format!("Identifier {id} is already used"));
        }
        let mut device = json!({"path": path, "id": id});
        if let Some(Value::Bool(iommu)) = body.get("iommu") {
            device["iommu"] = json!(iommu);
        }
        plug(vm, &mut self.next_slot, "devices", device, id)
    }

    /// A NIC: with a tap name (CH opens it) or, for macvtap, backed by the descriptors that
    /// came with the request, one per queue pair as CH requires (`num_queues` = 2 × fds).
    fn add_net(&mut self, body: &Value, what: &str, fds: usize) -> Reply {
        let Some(vm) = self.vm.as_mut() else {
            return Reply::error(500, what, "VM is not created");
        };
        let named = body.get("tap").is_some() || body.get("vhost_user") == Some(&json!(true));
        let queues = body.get("num_queues").and_then(Value::as_u64).unwrap_or(2);
        if !named {
            if fds == 0 {
                // CH would create a tap device of its own: never what a macvtap user wants.
                return Reply::error(
                    400,
                    what,
                    "No tap name and no file descriptors passed with the request",
                );
            }
            if queues != 2 * fds as u64 {
                return Reply::error(
                    400,
                    what,
                    &format!("{queues} queues need {} descriptors, got {fds}", queues / 2),
                );
            }
        }
        let nets = vm
            .config
            .get("net")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let id = match body.get("id").and_then(Value::as_str) {
            Some(id) => id.to_owned(),
            None => format!("_net{}", nets + self.next_slot as usize),
        };
        if vm.hotplugged.contains_key(&id) {
            return Reply::error(500, what, &format!("Identifier {id} is already used"));
        }
        let mut net = body.clone();
        net["id"] = json!(id);
        plug(vm, &mut self.next_slot, "net", net, id)
    }

    fn remove_device(&mut self, body: &Value, what: &str) -> Reply {
        let Some(vm) = self.vm.as_mut() else {
            return Reply::error(500, what, "VM is not created");
        };
        let id = body.get("id").and_then(Value::as_str).unwrap_or_default();
        if vm.hotplugged.remove(id).is_none() {
            return Reply::error(500, what, &format!("Unknown device id: {id}"));
        }
        if let Some(list) = vm.config.get_mut("devices").and_then(Value::as_array_mut) {
            list.retain(|d| d.get("id").and_then(Value::as_str) != Some(id));
        }
        Reply::ok()
    }
}

/// Counters that grow linearly with running time, at the rates above.
fn counters(uptime: Duration) -> Value {
    let ms = u64::try_from(uptime.as_millis()).unwrap_or(u64::MAX);
    let at = |per_s: u64| per_s.saturating_mul(ms) / 1000;
    json!({
        "_disk0": {
            "read_bytes": at(DISK_READ_BYTES_PER_S),
            "write_bytes": at(DISK_WRITE_BYTES_PER_S),
            "read_ops": at(DISK_READ_OPS_PER_S),
            "write_ops": at(DISK_WRITE_OPS_PER_S),
        },
        "_net0": {
            "rx_bytes": at(NET_RX_BYTES_PER_S),
            "tx_bytes": at(NET_TX_BYTES_PER_S),
            "rx_frames": at(NET_RX_FRAMES_PER_S),
            "tx_frames": at(NET_TX_FRAMES_PER_S),
        },
    })
}

/// Adds `entry` to the config's `section` list and gives it the next PCI slot, as CH does for
/// a device added at run time.
fn plug(vm: &mut Vm, next_slot: &mut u32, section: &str, entry: Value, id: String) -> Reply {
    if let Some(config) = vm.config.as_object_mut() {
        let list = config.entry(section).or_insert_with(|| json!([]));
        if let Some(list) = list.as_array_mut() {
            list.push(entry);
        }
    }
    let bdf = format!("0000:00:{:02x}.0", 6 + *next_slot);
    *next_slot += 1;
    vm.hotplugged.insert(id.clone(), bdf.clone());
    if vm.state == State::Created {
        // Cold-plugged: CH answers 204 before boot.
        return Reply::ok();
    }
    Reply::json(json!({"id": id, "bdf": bdf}))
}
