use ratatui_textarea::{Input, Key};

use super::*;
use crate::vm::EXAMPLE_TOML;

fn typed(form: &mut Form, text: &str) {
    for c in text.chars() {
        form.input(Input {
            key: Key::Char(c),
            ..Input::default()
        });
    }
}

fn clear(form: &mut Form) {
    for _ in 0..80 {
        form.input(Input {
            key: Key::Backspace,
            ..Input::default()
        });
    }
}

fn focus(form: &mut Form, key: FieldKey) {
    form.focus = form.fields.iter().position(|f| f.key == key).unwrap();
}

#[test]
fn a_new_vm_needs_a_name_and_a_good_size() {
    let mut f = Form::new_vm(vec!["desktop".into()]);
    assert!(!f.validate());
    assert_eq!(
        f.field(FieldKey::Name).unwrap().error.as_deref(),
        Some("give the VM a name")
    );
    typed(&mut f, "desktop");
    f.validate();
    assert!(f
        .field(FieldKey::Name)
        .unwrap()
        .error
        .as_deref()
        .unwrap()
        .contains("exists"));
    clear(&mut f);
    typed(&mut f, "web");
    focus(&mut f, FieldKey::Memory);
    clear(&mut f);
    typed(&mut f, "2X");
    assert!(!f.validate());
    let e = f.field(FieldKey::Memory).unwrap().error.clone().unwrap();
    assert!(e.contains("2X") && e.contains("2G"), "{e}");
    assert!(f.field(FieldKey::Name).unwrap().error.is_none());
    // Nothing typed is lost to a problem.
    assert_eq!(f.value(FieldKey::Memory), "2X");
    clear(&mut f);
    typed(&mut f, "2G");
    assert!(
        f.validate(),
        "{:?}",
        f.fields.iter().map(|f| &f.error).collect::<Vec<_>>()
    );
}

#[test]
fn list_fields_are_checked_per_entry() {
    let mut f = Form::new_vm(Vec::new());
    typed(&mut f, "t1");
    focus(&mut f, FieldKey::Vfio);
    typed(&mut f, "0000:01:00.0, nonsense");
    focus(&mut f, FieldKey::Nets);
    typed(&mut f, "tap0@zz:zz");
    assert!(!f.validate());
    assert!(f.field(FieldKey::Vfio).unwrap().error.is_some());
    assert!(f.field(FieldKey::Nets).unwrap().error.is_some());
}

#[test]
fn firmware_and_kernel_together_are_refused_at_firmware() {
    let mut f = Form::new_vm(Vec::new());
    typed(&mut f, "t1");
    focus(&mut f, FieldKey::Kernel);
    typed(&mut f, "/boot/vmlinuz");
    assert!(!f.validate());
    assert!(f.field(FieldKey::Firmware).unwrap().error.is_some());
}

#[test]
fn an_edit_writes_only_changed_fields_and_keeps_list_ids() {
    let spec = crate::vm::load(EXAMPLE_TOML, "desktop").unwrap();
    let mut f = Form::edit(spec);
    assert!(f.validate());
    assert!(f.edits().is_empty());
    assert!(!f.is_dirty());
    focus(&mut f, FieldKey::Vcpus);
    clear(&mut f);
    typed(&mut f, "8");
    assert!(f.edits().is_empty(), "same value, no edit");
    focus(&mut f, FieldKey::Memory);
    clear(&mut f);
    typed(&mut f, "8G");
    focus(&mut f, FieldKey::Vfio);
    clear(&mut f);
    typed(&mut f, "0000:01:00.0");
    let edits = f.edits();
    assert_eq!(edits.len(), 2, "{edits:?}");
    let text = apply_to_text(EXAMPLE_TOML, &edits).unwrap();
    assert!(
        text.contains("# Start this VM when the host boots"),
        "comments kept"
    );
    assert!(text.contains("size = \"8G\""));
    assert!(
        text.contains("id = \"gpu\"") && !text.contains("gpu-audio"),
        "{text}"
    );
    assert!(f.validate());
}

#[test]
fn the_name_of_an_edited_vm_is_locked_and_toggles_flip() {
    let spec = crate::vm::load(EXAMPLE_TOML, "desktop").unwrap();
    let mut f = Form::edit(spec);
    f.focus = 0;
    typed(&mut f, "x");
    assert_eq!(f.value(FieldKey::Name), "desktop");
    f.move_focus(-1);
    assert_eq!(f.fields[f.focus].key, FieldKey::Autostart);
    f.move_focus(1);
    assert_eq!(f.fields[f.focus].key, FieldKey::Vcpus, "name is skipped");
    focus(&mut f, FieldKey::Autostart);
    typed(&mut f, " ");
    assert_eq!(f.value(FieldKey::Autostart), "yes");
    assert!(f.is_dirty());
}

#[test]
fn problems_map_to_fields() {
    assert_eq!(
        FieldKey::for_problem("disks[1].path"),
        Some(FieldKey::Disks)
    );
    assert_eq!(FieldKey::for_problem("boot"), Some(FieldKey::Firmware));
    assert_eq!(
        FieldKey::for_problem("boot.cmdline"),
        Some(FieldKey::Cmdline)
    );
    assert_eq!(
        FieldKey::for_problem("cpus.kvm_hyperv"),
        Some(FieldKey::KvmHyperv)
    );
    assert_eq!(
        FieldKey::for_problem("cpus.topology"),
        Some(FieldKey::Vcpus)
    );
    assert_eq!(FieldKey::for_problem("net[0].mac"), Some(FieldKey::Nets));
    assert_eq!(FieldKey::for_problem(""), None);
}

#[test]
fn pinning_and_the_node_are_checked_under_their_fields() {
    let mut f = Form::new_vm(Vec::new());
    typed(&mut f, "t1");
    focus(&mut f, FieldKey::Pin);
    typed(&mut f, "2-x");
    focus(&mut f, FieldKey::NumaNode);
    typed(&mut f, "one");
    assert!(!f.validate());
    let pin = f.field(FieldKey::Pin).unwrap().error.clone().unwrap();
    assert_eq!(
        pin,
        "\"2-x\" is not a CPU list; write e.g. 2-7 or 0-3,8,10-11"
    );
    let node = f.field(FieldKey::NumaNode).unwrap().error.clone().unwrap();
    assert!(node.contains("expected a whole number"), "{node}");
    // The new VM's 2 vCPUs want 2 CPUs.
    focus(&mut f, FieldKey::Pin);
    clear(&mut f);
    typed(&mut f, "4-6");
    focus(&mut f, FieldKey::NumaNode);
    clear(&mut f);
    typed(&mut f, "1");
    assert!(!f.validate());
    let pin = f.field(FieldKey::Pin).unwrap().error.clone().unwrap();
    assert!(pin.starts_with("3 host CPUs for 2 vCPUs"), "{pin}");
    assert!(f.field(FieldKey::NumaNode).unwrap().error.is_none());
    focus(&mut f, FieldKey::Pin);
    clear(&mut f);
    typed(&mut f, "4-5");
    assert!(
        f.validate(),
        "{:?}",
        f.fields.iter().map(|f| &f.error).collect::<Vec<_>>()
    );
    let edits = f.edits();
    let pin = edits.iter().find(|e| e.path == "cpus.pin").unwrap();
    assert_eq!(pin.value, EditValue::Set(Scalar::Str("4-5".into())));
    let node = edits
        .iter()
        .find(|e| e.path == "memory.host_numa_node")
        .unwrap();
    assert_eq!(node.value, EditValue::Set(Scalar::Int(1)));
}

#[test]
fn host_refusals_of_pinning_land_under_their_fields() {
    assert_eq!(FieldKey::for_problem("cpus.pin"), Some(FieldKey::Pin));
    assert_eq!(
        FieldKey::for_problem("memory.host_numa_node"),
        Some(FieldKey::NumaNode)
    );
    let mut f = Form::new_vm(Vec::new());
    f.host_refusal(&[crate::vm::Problem::error(
        "cpus.pin",
        "this host has no CPU 16 (its CPUs: 0-15); pin to those",
    )]);
    assert_eq!(
        f.field(FieldKey::Pin).unwrap().error.as_deref(),
        Some("this host has no CPU 16 (its CPUs: 0-15); pin to those")
    );
    assert!(f.general.is_empty());
}

#[test]
fn clearing_pin_and_node_removes_them_and_keeps_comments() {
    let text = "# my VM\n[cpus]\nboot = 2\npin = \"0,1\" # the fast cores\n[memory]\nsize = \"2G\"\nhost_numa_node = 0\n[boot]\nfirmware = \"/fw\"\n";
    let spec = crate::vm::load(text, "t").unwrap();
    let mut f = Form::edit(spec);
    assert_eq!(f.value(FieldKey::Pin), "0,1");
    assert_eq!(f.value(FieldKey::NumaNode), "0");
    focus(&mut f, FieldKey::Pin);
    clear(&mut f);
    typed(&mut f, "1,0");
    focus(&mut f, FieldKey::NumaNode);
    clear(&mut f);
    assert!(f.validate());
    let out = apply_to_text(text, &f.edits()).unwrap();
    assert!(out.contains("pin = \"1,0\" # the fast cores"), "{out}");
    assert!(out.contains("# my VM"), "{out}");
    assert!(!out.contains("host_numa_node"), "{out}");
}
