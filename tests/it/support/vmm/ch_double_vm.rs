//! The VMM test double's VM state machine: Cloud Hypervisor's API semantics without a VM.
//!
//! Pure (no I/O, time passed in), so the double's server stays a thin shell around it. Error
//! bodies mimic CH's: a JSON array of messages, outermost first, with HTTP 500 for requests the
//! current state refuses and 400 for bodies that do not parse or do not match the spec.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::numa;
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

    /// CH's shape: `["Error from API", <what failed>, <why>]`.
    pub fn error(status: u16, what: &str, why: &str) -> Reply {
        Reply::causes(status, &[what, why])
    }

    /// `["Error from API", causes...]`, outermost first.
    pub fn causes(status: u16, causes: &[&str]) -> Reply {
        let mut list = vec!["Error from API"];
        list.extend_from_slice(causes);
        Reply {
            status,
            body: Some(json!(list)),
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

/// What the double's `vmm.ping` calls its build: the real one says `v54.0.0`.
pub const BUILD_VERSION: &str = "v54.0.0-double";

#[derive(Default)]
pub struct Machine {
    vm: Option<Vm>,
    boots: u64,
    next_slot: u32,
    /// The guest makes no progress (as on nested KVM): it never acknowledges an eject.
    stuck_guest: bool,
    /// The host's NUMA nodes: a memory zone on another fails the boot.
    host_nodes: Vec<u64>,
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
        "vm.info" | "vm.counters" => "The VM info is not available",
        "vm.add-device" => "The device could not be added to the VM",
        "vm.add-disk" => "The disk could not be added to the VM",
        "vm.add-net" => "The network device could not be added to the VM",
        "vm.remove-device" => "The device could not be removed from the VM",
        "vm.snapshot" => "The VM could not be snapshotted",
        "vm.restore" => "The VM could not be restored",
        "vm.nmi" => "Error triggering NMI",
        "vmm.shutdown" => "The VMM could not shutdown",
        _ => "Error from API",
    }
}

/// A body CH's serde would refuse: `["Failed to deserialize JSON", why]`, 400. The reason reads
/// like serde's for the cases phyllome can get wrong (a missing field, a wrong type); the
/// position serde adds (` at line 1 column N`) depends on key order and is left out.
fn refused_body(body: &[u8], problems: &str) -> Reply {
    if body.iter().all(u8::is_ascii_whitespace) {
        // CH answers an empty body with a bare 400.
        return Reply {
            status: 400,
            body: None,
            ..Reply::ok()
        };
    }
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let first = problems.lines().map(str::trim).find(|l| l.starts_with('$'));
    let why = first
        .and_then(|line| {
            let (path, msg) = line.split_once(": ")?;
            if let Some(rest) = msg.strip_prefix("missing required property `") {
                let field = rest.split('`').next()?;
                return Some(format!("missing field `{field}`"));
            }
            let found = msg.strip_prefix("expected an integer, found ")?;
            let pointer = path.trim_start_matches('$').replace('.', "/");
            let shown = match value.pointer(&pointer) {
                Some(Value::String(s)) => format!("string {s:?}"),
                _ => found.to_string(),
            };
            Some(format!("invalid type: {shown}, expected u64"))
        })
        .unwrap_or_else(|| problems.to_string());
    Reply {
        status: 400,
        body: Some(json!(["Failed to deserialize JSON", why])),
        ..Reply::ok()
    }
}

impl Machine {
    pub fn new(stuck_guest: bool) -> Machine {
        Machine {
            stuck_guest,
            host_nodes: numa::host_nodes(),
            ..Machine::default()
        }
    }

    /// Handles one request; `route` is `vm.boot` etc., `body` the raw request body.
    pub fn handle(&mut self, route: &str, body: &[u8], now: Instant) -> Reply {
        self.handle_with_fds(route, body, now, 0)
    }

    /// [`Machine::handle`] for a request that came with `fds` descriptors (SCM_RIGHTS).
    ///
    /// Status codes, cause lists and events follow the recordings of the real binary in
    /// `tests/golden/cloud-hypervisor/` (checked by `tests/ch_conformance.rs`).
    pub fn handle_with_fds(&mut self, route: &str, body: &[u8], now: Instant, fds: usize) -> Reply {
        let what = what_failed(route);
        if let Err(e) = openapi::validate_request(route, body) {
            return refused_body(body, &e);
        }
        let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        if route == "vm.remove-device" && parsed.get("id").is_none() {
            // Optional in the spec, required by CH's own type.
            return refused_body(body, "$: missing required property `id`");
        }
        let not_running = |status| Reply::error(status, what, "VM is not running");
        let not_created = |status| Reply::error(status, what, "VM is not created");
        let state = self.vm.as_ref().map(|vm| vm.state);
        let booted = matches!(state, Some(State::Running | State::Paused));

        match route {
            "vmm.ping" => Reply::json(json!({
                "build_version": BUILD_VERSION,
                "version": "54.0.0",
                "pid": std::process::id(),
                "features": ["kvm"],
            })),
            "vmm.shutdown" => {
                let mut r = self.delete();
                r.status = 200;
                r.events.push(("vmm", "shutdown"));
                r.effect = Effect::ExitVmm;
                r
            }
            "vm.create" => {
                if self.vm.is_some() {
                    return Reply::error(500, what, "VM is already created");
                }
                self.vm = Some(Vm {
                    config: numa::with_zone_defaults(parsed),
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
                    let mut r = Reply::error(404, what, "VM config is missing");
                    r.events.push(("vm", "booting"));
                    return r;
                };
                if booted {
                    return Reply::error(500, what, "VM is already created");
                }
                if let Some(why) = numa::boot_refusal(&vm.config, &self.host_nodes) {
                    let mut causes = vec![what];
                    causes.extend(why);
                    let mut r = Reply::causes(500, &causes);
                    r.events.push(("vm", "booting"));
                    return r;
                }
                self.boots += 1;
                vm.boot = self.boots;
                vm.state = State::Running;
                vm.ran = Duration::ZERO;
                vm.running_since = None;
                vm.set_running(now, true);
                self.next_slot = first_free_slot(&vm.config);
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
                if !booted {
                    return not_running(500);
                }
                let Some(vm) = self.vm.as_mut() else {
                    return not_running(500);
                };
                let pause = route == "vm.pause";
                let (from, to) = if pause {
                    (State::Running, State::Paused)
                } else {
                    (State::Paused, State::Running)
                };
                let (verb, events) = if pause {
                    ("pause", ["pausing", "paused"])
                } else {
                    ("resume", ["resuming", "resumed"])
                };
                if vm.state != from {
                    // CH announces the transition before its devices refuse it.
                    let s = vm.state.as_str();
                    let mut r = Reply::causes(
                        500,
                        &[
                            what,
                            &format!("Cannot {verb} VM"),
                            &format!("Failed to {verb} migratable component"),
                            &format!("Invalid transition: InvalidStateTransition({s}, {s})"),
                        ],
                    );
                    r.events.push(("vm", events[0]));
                    return r;
                }
                vm.state = to;
                vm.set_running(now, to == State::Running);
                Reply::ok().events(&events)
            }
            "vm.shutdown" => match self.vm.as_mut() {
                // The VM is dropped, its config kept: `vm.info` says Created again.
                Some(vm) if booted => {
                    vm.state = State::Created;
                    vm.set_running(now, false);
                    vm.hotplugged.clear();
                    Reply::ok().events(&["shutdown"])
                }
                _ => not_running(500),
            },
            "vm.reboot" => match self.vm.as_mut() {
                Some(vm) if booted => {
                    // A paused VM comes back running.
                    vm.state = State::Running;
                    vm.ran = Duration::ZERO;
                    vm.running_since = Some(now);
                    Reply::ok().events(&["rebooting", "rebooted"])
                }
                _ => {
                    let mut r = not_created(404);
                    r.events.push(("vm", "rebooting"));
                    r
                }
            },
            "vm.power-button" => match self.vm.as_ref() {
                Some(vm) if vm.state == State::Running => {
                    let mut r = Reply::ok();
                    r.effect = Effect::GuestPowerOff { boot: vm.boot };
                    r
                }
                // A paused guest cannot act on it; CH takes the request all the same.
                Some(_) if booted => Reply::ok(),
                _ => not_running(500),
            },
            "vm.nmi" if booted => Reply::ok(),
            "vm.nmi" => not_running(500),
            "vm.info" => match self.vm.as_ref() {
                None => not_created(404),
                Some(vm) => Reply::json(self.info(vm)),
            },
            "vm.counters" => match self.vm.as_ref() {
                Some(vm) if booted => Reply::json(counters(vm, now)),
                _ => not_running(500),
            },
            "vm.add-device" => self.add_device(&parsed, what),
            "vm.add-disk" => self.add_disk(&parsed, what),
            "vm.add-net" => self.add_net(&parsed, what, fds),
            "vm.remove-device" => self.remove_device(&parsed, what),
            "vm.snapshot" => match self.vm.as_ref() {
                // The server writes the files: this only says what to write.
                Some(vm) if vm.state == State::Paused => {
                    Reply::json(json!({ "config": vm.config }))
                        .events(&["snapshotting", "snapshotted"])
                }
                Some(_) if booted => {
                    let mut r = Reply::causes(
                        500,
                        &[
                            what,
                            "Cannot snapshot VM",
                            "Failed to snapshot migratable component",
                            "Trying to snapshot while VM is running",
                        ],
                    );
                    r.events.push(("vm", "snapshotting"));
                    r
                }
                _ => not_running(500),
            },
            "vm.restore" => {
                if self.vm.is_some() {
                    return Reply::error(500, what, "VM is already created");
                }
                // The server reads the snapshot and calls `restored`.
                Reply::ok()
            }
            _ => Reply {
                status: 404,
                body: Some(json!(["Not Found"])),
                ..Reply::ok()
            },
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

    /// The VM's configuration as `vm.create` gave it, if there is a VM.
    pub fn config(&self) -> Option<&Value> {
        self.vm.as_ref().map(|vm| &vm.config)
    }

    pub fn state(&self) -> Option<State> {
        self.vm.as_ref().map(|vm| vm.state)
    }

    fn delete(&mut self) -> Reply {
        // Deleting nothing succeeds, as in CH; a booted VM is shut down first.
        match self.vm.take() {
            None => Reply::ok(),
            Some(vm) if matches!(vm.state, State::Running | State::Paused) => {
                Reply::ok().events(&["shutdown", "deleted"])
            }
            Some(_) => Reply::ok().events(&["deleted"]),
        }
    }

    fn info(&self, vm: &Vm) -> Value {
        let mut info = json!({
            "config": vm.config,
            "state": vm.state.as_str(),
            "memory_actual_size": numa::guest_memory(&vm.config).unwrap_or(512 << 20),
        });
        // Only a booted VM has devices, hence a device tree.
        if matches!(vm.state, State::Running | State::Paused) {
            let mut tree = serde_json::Map::new();
            for (id, bdf) in &vm.hotplugged {
                tree.insert(
                    id.clone(),
                    json!({"id": id, "resources": [], "children": [], "pci_bdf": bdf}),
                );
            }
            info["device_tree"] = Value::Object(tree);
        }
        info
    }

    fn add_device(&mut self, body: &Value, what: &str) -> Reply {
        let next = &mut self.next_slot;
        let vm = match device_target(&mut self.vm, body, what) {
            Ok(vm) => vm,
            Err(r) => return r,
        };
        let path = body.get("path").and_then(Value::as_str).unwrap_or_default();
        let id = body
            .get("id")
            .and_then(Value::as_str)
            .map_or_else(|| generated_id(&vm.config, "_vfio"), str::to_owned);
        let mut device = json!({"path": path, "id": id});
        if let Some(Value::Bool(iommu)) = body.get("iommu") {
            device["iommu"] = json!(iommu);
        }
        plug(vm, next, "devices", device, id)
    }

    /// A disk: CH opens its file when the VM runs (cold-plugged ones are opened at boot).
    fn add_disk(&mut self, body: &Value, what: &str) -> Reply {
        let next = &mut self.next_slot;
        let vm = match device_target(&mut self.vm, body, what) {
            Ok(vm) => vm,
            Err(r) => return r,
        };
        let path = body.get("path").and_then(Value::as_str).unwrap_or_default();
        if vm.state != State::Created && std::fs::metadata(path).is_err() {
            return Reply::causes(
                500,
                &[
                    what,
                    "Error from device manager",
                    "Cannot open disk path",
                    &format!("I/O error (path={path} op=open)"),
                    "No such file or directory (os error 2)",
                ],
            );
        }
        let id = body
            .get("id")
            .and_then(Value::as_str)
            .map_or_else(|| generated_id(&vm.config, "_disk"), str::to_owned);
        let mut disk = body.clone();
        disk["id"] = json!(id);
        plug(vm, next, "disks", disk, id)
    }

    /// A NIC: with a tap name (CH opens it) or, for macvtap, backed by the descriptors that
    /// came with the request, one per queue pair as CH requires (`num_queues` = 2 × fds).
    fn add_net(&mut self, body: &Value, what: &str, fds: usize) -> Reply {
        let next = &mut self.next_slot;
        let vm = match device_target(&mut self.vm, body, what) {
            Ok(vm) => vm,
            Err(r) => return r,
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
        let id = body
            .get("id")
            .and_then(Value::as_str)
            .map_or_else(|| generated_id(&vm.config, "_net"), str::to_owned);
        let mut net = body.clone();
        net["id"] = json!(id);
        plug(vm, next, "net", net, id)
    }

    /// Before boot the device leaves the config at once. A running guest is asked to eject it
    /// (ACPI): CH answers 204 straight away, and the device goes once the guest acknowledges,
    /// which a stuck guest never does (as on nested KVM, where the recordings come from).
    fn remove_device(&mut self, body: &Value, what: &str) -> Reply {
        let stuck = self.stuck_guest;
        let Some(vm) = self.vm.as_mut() else {
            return Reply::error(404, what, "VM is not created");
        };
        let id = body.get("id").and_then(Value::as_str).unwrap_or_default();
        let known = device_ids(&vm.config).iter().any(|(d, _)| d == id);
        let booted = vm.state != State::Created;
        if !known {
            return if booted {
                Reply::causes(
                    404,
                    &[
                        what,
                        "Error from device manager",
                        &format!(
                            "Failed to find device corresponding to the given identifier: {id}"
                        ),
                    ],
                )
            } else {
                Reply::error(404, what, &format!("No device with id {id:?} to remove"))
            };
        }
        if booted && stuck {
            return Reply::ok();
        }
        vm.hotplugged.remove(id);
        for section in PCI_SECTIONS {
            if let Some(list) = vm.config.get_mut(*section).and_then(Value::as_array_mut) {
                list.retain(|d| d.get("id").and_then(Value::as_str) != Some(id));
            }
        }
        Reply::ok()
    }
}

/// The VM for a device request: 404 without one, 409 when the id is taken.
fn device_target<'a>(
    vm: &'a mut Option<Vm>,
    body: &Value,
    what: &str,
) -> Result<&'a mut Vm, Reply> {
    let Some(vm) = vm.as_mut() else {
        return Err(Reply::error(404, what, "VM is not created"));
    };
    if let Some(id) = body.get("id").and_then(Value::as_str) {
        if device_ids(&vm.config).iter().any(|(d, _)| d == id) {
            return Err(Reply::causes(
                409,
                &[
                    what,
                    "Failed to validate config",
                    &format!("Identifier {id} is not unique"),
                ],
            ));
        }
    }
    Ok(vm)
}

/// Config lists whose entries are PCI devices, each taking a slot.
const PCI_SECTIONS: &[&str] = &[
    "disks",
    "net",
    "devices",
    "fs",
    "pmem",
    "vdpa",
    "user_devices",
];

/// The first slot free for a device added at run time: 0 is the host bridge, 1 the RNG, then
/// one per device of the config.
fn first_free_slot(config: &Value) -> u32 {
    let used: usize = PCI_SECTIONS
        .iter()
        .filter_map(|s| config.get(*s).and_then(Value::as_array))
        .map(Vec::len)
        .sum();
    2 + used as u32
}

/// The ids CH gives a config's disks and NICs, in its order (disks first): a device's own id,
/// else a prefix and one counter shared by every generated name (`_disk0`, `_net1`).
fn device_ids(config: &Value) -> Vec<(String, &'static str)> {
    let mut counter = 0;
    let mut out = Vec::new();
    for (section, prefix) in [("disks", "_disk"), ("net", "_net"), ("devices", "_vfio")] {
        for entry in config
            .get(section)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let id = match entry.get("id").and_then(Value::as_str) {
                Some(id) => id.to_owned(),
                None => {
                    counter += 1;
                    format!("{prefix}{}", counter - 1)
                }
            };
            out.push((id, section));
        }
    }
    out
}

/// The name CH generates for a new device without an id.
fn generated_id(config: &Value, prefix: &str) -> String {
    let taken = device_ids(config)
        .iter()
        .filter(|(id, _)| id.starts_with('_'))
        .count();
    format!("{prefix}{taken}")
}

/// Counters of every disk and NIC, growing linearly with running time at the rates above.
fn counters(vm: &Vm, now: Instant) -> Value {
    let ms = u64::try_from(vm.uptime(now).as_millis()).unwrap_or(u64::MAX);
    let at = |per_s: u64| per_s.saturating_mul(ms) / 1000;
    let mut out = serde_json::Map::new();
    for (id, section) in device_ids(&vm.config) {
        let c = match section {
            "disks" => json!({
                "read_bytes": at(DISK_READ_BYTES_PER_S),
                "write_bytes": at(DISK_WRITE_BYTES_PER_S),
                "read_ops": at(DISK_READ_OPS_PER_S),
                "write_ops": at(DISK_WRITE_OPS_PER_S),
                // What CH reports before any request completed.
                "read_latency_min": u64::MAX,
                "read_latency_max": u64::MAX,
                "read_latency_avg": u64::MAX / 10_000,
                "write_latency_min": u64::MAX,
                "write_latency_max": u64::MAX,
                "write_latency_avg": u64::MAX / 10_000,
            }),
            "net" => json!({
                "rx_bytes": at(NET_RX_BYTES_PER_S),
                "tx_bytes": at(NET_TX_BYTES_PER_S),
                "rx_frames": at(NET_RX_FRAMES_PER_S),
                "tx_frames": at(NET_TX_FRAMES_PER_S),
            }),
            _ => continue,
        };
        out.insert(id, c);
    }
    Value::Object(out)
}

/// Adds `entry` to the config's `section` list; a running VM gives it the next PCI slot, as CH
/// does for a device added at run time, while a VM not booted yet takes it with a 204.
fn plug(vm: &mut Vm, next_slot: &mut u32, section: &str, entry: Value, id: String) -> Reply {
    if let Some(config) = vm.config.as_object_mut() {
        let list = config.entry(section).or_insert_with(|| json!([]));
        if let Some(list) = list.as_array_mut() {
            list.push(entry);
        }
    }
    if vm.state == State::Created {
        return Reply::ok();
    }
    let bdf = format!("0000:00:{:02x}.0", *next_slot);
    *next_slot += 1;
    vm.hotplugged.insert(id.clone(), bdf.clone());
    Reply::json(json!({"id": id, "bdf": bdf}))
}
