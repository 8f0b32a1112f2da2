//! The create/edit form: one single-line text input (ratatui-textarea) or toggle per field,
//! the edits it amounts to, and the problems `vm::load` finds in them, mapped back to the
//! field they belong to. Nothing here does I/O.

use ratatui::style::Style;
use ratatui_textarea::{Input, TextArea};

use super::edit::{apply_to_text, Edit, EditValue, Scalar};
use crate::vm::{doc, load, VmSpec};

/// Where a new VM's firmware usually is (Debian's cloud-hypervisor and edk2 packages).
pub const DEFAULT_FIRMWARE: &str = "/usr/share/cloud-hypervisor/CLOUDHV.fd";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKey {
    Name,
    Vcpus,
    Pin,
    Memory,
    NumaNode,
    Firmware,
    Kernel,
    Initramfs,
    Cmdline,
    Disks,
    Nets,
    Vfio,
    KvmHyperv,
    Autostart,
}

impl FieldKey {
    pub const ALL: [FieldKey; 14] = [
        FieldKey::Name,
        FieldKey::Vcpus,
        FieldKey::Pin,
        FieldKey::Memory,
        FieldKey::NumaNode,
        FieldKey::Firmware,
        FieldKey::Kernel,
        FieldKey::Initramfs,
        FieldKey::Cmdline,
        FieldKey::Disks,
        FieldKey::Nets,
        FieldKey::Vfio,
        FieldKey::KvmHyperv,
        FieldKey::Autostart,
    ];

    pub fn label(self) -> &'static str {
        match self {
            FieldKey::Name => "name",
            FieldKey::Vcpus => "vCPUs",
            FieldKey::Pin => "CPU pinning",
            FieldKey::Memory => "memory",
            FieldKey::NumaNode => "NUMA node",
            FieldKey::Firmware => "firmware",
            FieldKey::Kernel => "kernel",
            FieldKey::Initramfs => "initramfs",
            FieldKey::Cmdline => "cmdline",
            FieldKey::Disks => "disks",
            FieldKey::Nets => "networks",
            FieldKey::Vfio => "VFIO devices",
            FieldKey::KvmHyperv => "kvm_hyperv",
            FieldKey::Autostart => "autostart",
        }
    }

    /// Shown in an empty field: the syntax, since lists are typed on one line.
    pub fn placeholder(self) -> &'static str {
        match self {
            FieldKey::Name => "lowercase letters, digits, - _ .",
            FieldKey::Vcpus => "e.g. 4",
            FieldKey::Pin => "host CPUs, vCPU i on the i-th, e.g. 2-7",
            FieldKey::Memory => "e.g. 8G",
            FieldKey::NumaNode => "host node of the memory, e.g. 1",
            FieldKey::Firmware => "CLOUDHV.fd or hypervisor-fw (or a kernel below)",
            FieldKey::Kernel => "vmlinuz (instead of firmware)",
            FieldKey::Initramfs => "with a kernel only",
            FieldKey::Cmdline => "with a kernel only",
            FieldKey::Disks => "/path/a.qcow2, /path/b.raw:ro",
            FieldKey::Nets => "tap0, macvtap:mv0@52:54:00:12:34:56",
            FieldKey::Vfio => "0000:01:00.0, 0000:01:00.1",
            FieldKey::KvmHyperv | FieldKey::Autostart => "",
        }
    }

    /// The placeholder as shown: in parentheses, so that it never reads as a value on a
    /// terminal that does not dim.
    pub fn hint(self) -> String {
        format!("({})", self.placeholder())
    }

    fn is_toggle(self) -> bool {
        matches!(self, FieldKey::KvmHyperv | FieldKey::Autostart)
    }

    /// The field a problem's dotted path (`disks[1].path`) belongs to.
    pub fn for_problem(path: &str) -> Option<FieldKey> {
        let root = path.split(['.', '[']).next().unwrap_or("");
        Some(match (root, path) {
            (_, "cpus.kvm_hyperv") => FieldKey::KvmHyperv,
            (_, "cpus.pin") => FieldKey::Pin,
            (_, "memory.host_numa_node") => FieldKey::NumaNode,
            (_, "boot.kernel") => FieldKey::Kernel,
            (_, "boot.initramfs") => FieldKey::Initramfs,
            (_, "boot.cmdline") => FieldKey::Cmdline,
            ("boot", _) => FieldKey::Firmware,
            ("name", _) => FieldKey::Name,
            ("cpus", _) => FieldKey::Vcpus,
            ("memory", _) => FieldKey::Memory,
            ("disks", _) => FieldKey::Disks,
            ("net", _) => FieldKey::Nets,
            ("vfio", _) => FieldKey::Vfio,
            ("autostart", _) => FieldKey::Autostart,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub enum FieldInput {
    Text(Box<TextArea<'static>>),
    Toggle(bool),
}

#[derive(Debug, Clone)]
pub struct FormField {
    pub key: FieldKey,
    pub input: FieldInput,
    /// The value the form opened with: only fields that differ are written.
    pub initial: String,
    /// Problems are shown once the user has been in the field (or tried to save).
    pub touched: bool,
    pub error: Option<String>,
    /// The name of a VM being edited cannot change (the store has no rename).
    pub locked: bool,
}

impl FormField {
    fn new(key: FieldKey, value: String, locked: bool) -> Self {
        let input = if key.is_toggle() {
            FieldInput::Toggle(value == "yes")
        } else {
            let mut t = TextArea::new(vec![value.clone()]);
            t.move_cursor(ratatui_textarea::CursorMove::End);
            t.set_cursor_line_style(Style::default());
            t.set_placeholder_text(key.hint());
            FieldInput::Text(Box::new(t))
        };
        FormField {
            key,
            input,
            initial: value,
            touched: false,
            error: None,
            locked,
        }
    }

    /// The current value as text (`yes`/`no` for toggles).
    pub fn text(&self) -> String {
        match &self.input {
            FieldInput::Text(t) => t.lines().join(""),
            FieldInput::Toggle(b) => if *b { "yes" } else { "no" }.to_string(),
        }
    }

    pub fn changed(&self) -> bool {
        self.text() != self.initial
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormMode {
    New,
    Edit { original: Box<VmSpec> },
}

#[derive(Debug, Clone)]
pub struct Form {
    pub mode: FormMode,
    pub fields: Vec<FormField>,
    pub focus: usize,
    /// Problems that belong to no field (the file as a whole).
    pub general: Vec<String>,
    /// A save runs in the background.
    pub saving: bool,
    /// Names taken by other VMs: a new VM cannot reuse one.
    pub taken: Vec<String>,
}

impl Form {
    pub fn new_vm(taken: Vec<String>) -> Form {
        let values = |k: FieldKey| match k {
            FieldKey::Vcpus => "2".to_string(),
            FieldKey::Memory => "4G".to_string(),
            FieldKey::Firmware => DEFAULT_FIRMWARE.to_string(),
            FieldKey::KvmHyperv | FieldKey::Autostart => "no".to_string(),
            _ => String::new(),
        };
        Form::build(FormMode::New, values, taken)
    }

    pub fn edit(spec: VmSpec) -> Form {
        let s = spec.clone();
        let yes_no = |b: bool| crate::fmt::yes_no(b).to_string();
        let path = |p: &Option<std::path::PathBuf>| {
            p.as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        };
        let values = move |k: FieldKey| match k {
            FieldKey::Name => s.name.clone(),
            FieldKey::Vcpus => s.cpus.boot.to_string(),
            FieldKey::Pin => s
                .cpus
                .pin
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            FieldKey::Memory => s.memory.size.to_string(),
            FieldKey::NumaNode => s
                .memory
                .host_numa_node
                .map(|n| n.to_string())
                .unwrap_or_default(),
            FieldKey::Firmware => path(&s.boot.firmware),
            FieldKey::Kernel => path(&s.boot.kernel),
            FieldKey::Initramfs => path(&s.boot.initramfs),
            FieldKey::Cmdline => s.boot.cmdline.clone().unwrap_or_default(),
            FieldKey::Disks => list(s.disks.iter().map(|d| {
                let ro = if d.readonly { ":ro" } else { "" };
                format!("{}{ro}", d.path.display())
            })),
            FieldKey::Nets => list(s.net.iter().map(|n| {
                let kind = match &n.kind {
                    crate::vm::spec::NetKind::Tap(i) => i.clone(),
                    crate::vm::spec::NetKind::Macvtap(i) => format!("macvtap:{i}"),
                };
                match n.mac {
                    Some(m) => format!("{kind}@{m}"),
                    None => kind,
                }
            })),
            FieldKey::Vfio => list(s.vfio.iter().map(|v| v.address.to_string())),
            FieldKey::KvmHyperv => yes_no(s.cpus.kvm_hyperv),
            FieldKey::Autostart => yes_no(s.autostart),
        };
        Form::build(
            FormMode::Edit {
                original: Box::new(spec),
            },
            values,
            Vec::new(),
        )
    }

    fn build(mode: FormMode, values: impl Fn(FieldKey) -> String, taken: Vec<String>) -> Form {
        let editing = matches!(mode, FormMode::Edit { .. });
        let fields = FieldKey::ALL
            .iter()
            .map(|&k| FormField::new(k, values(k), editing && k == FieldKey::Name))
            .collect();
        let mut f = Form {
            mode,
            fields,
            focus: 0,
            general: Vec::new(),
            saving: false,
            taken,
        };
        if editing {
            f.focus = 1;
        }
        f
    }

    pub fn name(&self) -> String {
        self.value(FieldKey::Name).trim().to_string()
    }

    pub fn title(&self) -> String {
        match &self.mode {
            FormMode::New => "New VM".to_string(),
            FormMode::Edit { original } => format!("Edit VM {}", original.name),
        }
    }

    pub fn field(&self, key: FieldKey) -> Option<&FormField> {
        self.fields.iter().find(|f| f.key == key)
    }

    pub fn value(&self, key: FieldKey) -> String {
        self.field(key).map(FormField::text).unwrap_or_default()
    }

    pub fn is_dirty(&self) -> bool {
        self.fields.iter().any(FormField::changed)
    }

    /// Moves the focus by `step` (±1), skipping locked fields. Leaving a field shows its
    /// problems.
    pub fn move_focus(&mut self, step: isize) {
        let n = self.fields.len() as isize;
        if let Some(f) = self.fields.get_mut(self.focus) {
            f.touched = true;
        }
        let mut i = self.focus as isize;
        for _ in 0..n {
            i = (i + step).rem_euclid(n);
            if !self.fields[i as usize].locked {
                break;
            }
        }
        self.focus = i as usize;
    }

    /// A key typed into the focused field. Space flips a toggle; a text field takes the key
    /// and stays one line (a pasted newline is joined back).
    pub fn input(&mut self, input: Input) -> bool {
        let Some(f) = self.fields.get_mut(self.focus) else {
            return false;
        };
        if f.locked {
            return false;
        }
        let changed = match &mut f.input {
            FieldInput::Toggle(b) => {
                let flip = matches!(input.key, ratatui_textarea::Key::Char(' '))
                    || matches!(input.key, ratatui_textarea::Key::Char('y' | 'n'));
                if flip {
                    *b = match input.key {
                        ratatui_textarea::Key::Char('y') => true,
                        ratatui_textarea::Key::Char('n') => false,
                        _ => !*b,
                    };
                }
                flip
            }
            FieldInput::Text(t) => {
                let changed = t.input(input);
                if t.lines().len() > 1 {
                    let joined = t.lines().join(" ");
                    **t = TextArea::new(vec![joined]);
                    t.move_cursor(ratatui_textarea::CursorMove::End);
                    t.set_cursor_line_style(Style::default());
                }
                changed
            }
        };
        if changed {
            f.touched = true;
        }
        changed
    }

    /// The edits this form amounts to: every field of a new VM, the changed fields of an
    /// edited one.
    pub fn edits(&self) -> Vec<Edit> {
        let original = match &self.mode {
            FormMode::New => None,
            FormMode::Edit { original } => Some(original.as_ref()),
        };
        let mut out = Vec::new();
        for f in &self.fields {
            if original.is_some() && !f.changed() {
                continue;
            }
            let text = f.text();
            let text = text.trim();
            let opt_str = |path: &str| {
                if text.is_empty() {
                    Edit::remove(path)
                } else {
                    Edit::set(path, Scalar::Str(text.to_string()))
                }
            };
            let tables = |path: &str, rows: Vec<Vec<(String, Scalar)>>| Edit {
                path: path.to_string(),
                value: EditValue::Tables(rows),
            };
            out.push(match f.key {
                FieldKey::Name => Edit::set("name", Scalar::Str(text.to_string())),
                FieldKey::Vcpus => Edit::set(
                    "cpus.boot",
                    // Left as text when not a number, so validation names the field.
                    text.parse::<i64>()
                        .map_or_else(|_| Scalar::Str(text.to_string()), Scalar::Int),
                ),
                FieldKey::Pin => opt_str("cpus.pin"),
                FieldKey::Memory => Edit::set("memory.size", Scalar::Str(text.to_string())),
                FieldKey::NumaNode if text.is_empty() => Edit::remove("memory.host_numa_node"),
                FieldKey::NumaNode => Edit::set(
                    "memory.host_numa_node",
                    text.parse::<i64>()
                        .map_or_else(|_| Scalar::Str(text.to_string()), Scalar::Int),
                ),
                FieldKey::Firmware => opt_str("boot.firmware"),
                FieldKey::Kernel => opt_str("boot.kernel"),
                FieldKey::Initramfs => opt_str("boot.initramfs"),
                FieldKey::Cmdline => opt_str("boot.cmdline"),
                FieldKey::Disks => tables("disks", disk_rows(text, original)),
                FieldKey::Nets => tables("net", net_rows(text, original)),
                FieldKey::Vfio => tables("vfio", vfio_rows(text, original)),
                FieldKey::KvmHyperv => Edit::set("cpus.kvm_hyperv", Scalar::Bool(text == "yes")),
                FieldKey::Autostart => Edit::set("autostart", Scalar::Bool(text == "yes")),
            });
        }
        out
    }

    /// Runs parse + validate on the definition the form amounts to and puts each problem
    /// under its field. True when there is none.
    pub fn validate(&mut self) -> bool {
        let name = match &self.mode {
            FormMode::New => self.name(),
            FormMode::Edit { original } => original.name.clone(),
        };
        let base = match &self.mode {
            FormMode::New => String::new(),
            FormMode::Edit { original } => doc::to_document(original).to_string(),
        };
        let mut problems: Vec<(Option<FieldKey>, String)> = Vec::new();
        if matches!(self.mode, FormMode::New) {
            if name.is_empty() {
                problems.push((Some(FieldKey::Name), "give the VM a name".into()));
            } else if self.taken.contains(&name) {
                problems.push((
                    Some(FieldKey::Name),
                    format!("a VM named {name} exists; choose another name"),
                ));
            }
        }
        match apply_to_text(&base, &self.edits()) {
            Ok(text) => {
                if let Err(ps) = load(&text, &name) {
                    // An empty name is already reported above, in plainer words.
                    let skip_name = name.is_empty();
                    for p in
                        ps.0.iter()
                            .filter(|p| p.is_error() && !(skip_name && p.field == "name"))
                    {
                        let key = FieldKey::for_problem(&p.field);
                        let msg = if key.is_some() {
                            p.message.clone()
                        } else {
                            p.to_string()
                        };
                        problems.push((key, msg));
                    }
                }
            }
            Err(e) => problems.push((None, e.to_string())),
        }
        for f in &mut self.fields {
            let msgs: Vec<&str> = problems
                .iter()
                .filter(|(k, _)| *k == Some(f.key))
                .map(|(_, m)| m.as_str())
                .collect();
            f.error = (!msgs.is_empty()).then(|| msgs.join("; "));
        }
        self.general = problems
            .into_iter()
            .filter(|(k, _)| k.is_none())
            .map(|(_, m)| m)
            .collect();
        self.general.is_empty() && self.fields.iter().all(|f| f.error.is_none())
    }

    /// The host checks' refusal of a save, each problem under its field (a field's own
    /// problems from typing are gone by then: the form was valid).
    pub fn host_refusal(&mut self, problems: &[crate::vm::Problem]) {
        for p in problems {
            let msg = crate::fmt::printable(&p.message).into_owned();
            // The serial and console files have no field of their own here.
            match FieldKey::for_problem(&p.field)
                .and_then(|k| self.fields.iter_mut().find(|f| f.key == k))
            {
                Some(f) => {
                    f.touched = true;
                    f.error = Some(match f.error.take() {
                        Some(e) => format!("{e}; {msg}"),
                        None => msg,
                    });
                }
                _ => self
                    .general
                    .push(crate::fmt::printable(&p.to_string()).into_owned()),
            }
        }
    }

    /// Shows every problem, not only those of visited fields (after Enter).
    pub fn touch_all(&mut self) {
        for f in &mut self.fields {
            f.touched = true;
        }
    }

    /// The first field with a problem, to put the cursor there.
    pub fn first_error(&self) -> Option<usize> {
        self.fields.iter().position(|f| f.error.is_some())
    }
}

mod rows;
#[cfg(test)]
mod tests;

use rows::{disk_rows, list, net_rows, vfio_rows};
