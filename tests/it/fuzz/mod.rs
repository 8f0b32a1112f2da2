//! Fuzzing at a fixed budget (proptest, fixed case counts, no saved regressions): the inputs
//! a hostile user or guest controls. The VM TOML parser, the Cloud Hypervisor JSON import,
//! the host readers on generated sysfs trees (random bytes, huge files, links, FIFOs) and the
//! terminal-reply parser must never panic or hang, and every error names what and where.
//! The case counts keep the module near 15 s on a 2-core machine; README's reliability
//! section has the figures.

mod tree;

use phyllome::term::scan_replies;
use phyllome::vm::{self, doc, Problem, EXAMPLE_TOML};
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{json, Value};

const TOML_CASES: u32 = 3000;
const JSON_CASES: u32 = 3000;
const REPLY_CASES: u32 = 20_000;

pub fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Every problem says what is wrong, and where unless the whole text is unreadable.
fn named(p: &Problem) -> Result<(), TestCaseError> {
    prop_assert!(!p.message.trim().is_empty(), "empty message: {p:?}");
    prop_assert!(
        !p.field.is_empty() || p.message.contains("TOML") || p.message.contains("line"),
        "a problem that names no field: {p:?}"
    );
    Ok(())
}

// ---- the VM TOML parser ----

/// Tokens that break TOML or the definition's rules in interesting ways.
const TOML_TOKENS: &[&str] = &[
    "[",
    "]",
    "[[disks]]",
    "[[net]]",
    "[[vfio]]",
    "[cpus]",
    "[memory]",
    "=",
    "\"",
    "'''",
    "\n",
    "#",
    ",",
    "{",
    "}",
    "-1",
    "0",
    "1e400",
    "18446744073709551616",
    "nan",
    "inf",
    "true",
    "size = \"9999999999G\"",
    "boot = 0",
    "path = \"\"",
    "path = \"/dev/sda\"",
    "address = \"0000:zz:00.0\"",
    "mac = \"ff:ff:ff:ff:ff:ff\"",
    "name = \"../x\"",
    "\u{0}",
    "\u{1b}[2J",
    "\u{202e}",
    "é",
    "\t",
    "= =",
    "key = [1, \"a\"]",
    "\\u0000",
];

#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Insert(usize, &'static str),
    Char(usize, char),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let edit = prop_oneof![
        (any::<usize>(), 0usize..40).prop_map(|(at, n)| Edit::Delete(at, n)),
        (any::<usize>(), prop::sample::select(TOML_TOKENS)).prop_map(|(at, t)| Edit::Insert(at, t)),
        (any::<usize>(), any::<char>()).prop_map(|(at, c)| Edit::Char(at, c)),
    ];
    prop::collection::vec(edit, 1..8)
}

/// The example definition with `edits` applied (positions taken modulo the length).
fn mutated(base: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = base.chars().collect();
    for e in edits {
        let len = chars.len().max(1);
        match *e {
            Edit::Delete(at, n) => {
                let at = at % len;
                let end = (at + n).min(chars.len());
                chars.drain(at.min(end)..end);
            }
            Edit::Insert(at, t) => {
                let at = at % (chars.len() + 1);
                chars.splice(at..at, t.chars());
            }
            Edit::Char(at, c) => {
                if !chars.is_empty() {
                    let at = at % chars.len();
                    chars[at] = c;
                }
            }
        }
    }
    chars.into_iter().collect()
}

fn check_toml(text: &str) -> Result<(), TestCaseError> {
    let (_, problems) = vm::parse::parse_partial(text, "fuzz");
    for p in &problems {
        named(p)?;
    }
    match vm::load(text, "fuzz") {
        Err(ps) => {
            prop_assert!(!ps.0.is_empty(), "an error with no problem");
            for p in &ps.0 {
                named(p)?;
            }
        }
        // What loads saves as text that loads to the same definition.
        Ok(spec) => {
            let again = doc::to_document(&spec).to_string();
            let back = vm::load(&again, "fuzz");
            prop_assert_eq!(back.as_ref().ok(), Some(&spec), "{}", again);
        }
    }
    Ok(())
}

#[test]
fn the_toml_parser_takes_anything() {
    let mut runner = proptest::test_runner::TestRunner::new(config(TOML_CASES));
    let strategy = prop_oneof![
        3 => edits().prop_map(|e| mutated(EXAMPLE_TOML, &e)),
        1 => "\\PC{0,300}",
        1 => prop::collection::vec(any::<u8>(), 0..300)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ];
    runner
        .run(&strategy, |text| check_toml(&text))
        .unwrap_or_else(|e| panic!("{e}"));
}

// ---- the Cloud Hypervisor JSON import ----

const JSON_KEYS: &[&str] = &[
    "cpus",
    "boot_vcpus",
    "max_vcpus",
    "topology",
    "kvm_hyperv",
    "memory",
    "size",
    "shared",
    "hugepages",
    "mergeable",
    "hotplug_size",
    "payload",
    "kernel",
    "initramfs",
    "cmdline",
    "firmware",
    "disks",
    "path",
    "readonly",
    "direct",
    "id",
    "net",
    "tap",
    "mac",
    "ip",
    "mask",
    "num_queues",
    "fd",
    "rng",
    "src",
    "serial",
    "console",
    "mode",
    "file",
    "socket",
    "devices",
    "platform",
    "balloon",
    "fs",
    "pmem",
    "vsock",
    "watchdog",
    "iommu",
    "pvpanic",
];
const JSON_STRINGS: &[&str] = &[
    "Off",
    "Null",
    "Tty",
    "File",
    "Socket",
    "Pty",
    "/dev/sda",
    "/etc/passwd",
    "",
    "/var/lib/x.img",
    "tap0",
    "12:34:56:78:9a:bc",
    "zz",
    "0000:01:00.0",
    "/sys/bus/pci/devices/0000:01:00.0/",
    "console=ttyS0",
    "run,fd=3",
    "a=b",
    "\u{1b}]0;x\u{7}",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::sample::select(JSON_STRINGS).prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(JSON_KEYS), inner), 0..6).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

/// A config `vm import` takes, for the mutations to start from.
fn base_config() -> Value {
    json!({
        "cpus": {"boot_vcpus": 2, "max_vcpus": 2},
        "memory": {"size": 1073741824u64},
        "payload": {"kernel": "/boot/vmlinuz", "cmdline": "console=ttyS0"},
        "disks": [{"path": "/var/lib/x.img"}],
        "net": [{"tap": "tap0", "mac": "12:34:56:78:9a:bc"}],
        "serial": {"mode": "Null"},
        "console": {"mode": "Off"}
    })
}

/// `base` with the value at `path` (keys and indices) set; missing steps become objects.
fn set_at(base: &mut Value, path: &[&str], v: Value) {
    let Some((last, steps)) = path.split_last() else {
        *base = v;
        return;
    };
    let mut at = base;
    for step in steps {
        if !at.is_object() {
            *at = json!({});
        }
        at = at
            .as_object_mut()
            .map(|o| o.entry(step.to_string()).or_insert(json!({})))
            .expect("object");
    }
    if !at.is_object() {
        *at = json!({});
    }
    if let Some(o) = at.as_object_mut() {
        o.insert(last.to_string(), v);
    }
}

fn mutated_config() -> impl Strategy<Value = Value> {
    let path = prop::collection::vec(prop::sample::select(JSON_KEYS), 1..4);
    prop::collection::vec((path, json_value()), 1..5).prop_map(|sets| {
        let mut c = base_config();
        for (path, v) in sets {
            set_at(&mut c, &path, v);
        }
        c
    })
}

fn check_import(config: &Value) -> Result<(), TestCaseError> {
    match vm::from_vm_config(config, "fuzz") {
        Err(ps) => {
            prop_assert!(!ps.0.is_empty(), "an error with no problem");
            for p in &ps.0 {
                prop_assert!(!p.message.trim().is_empty(), "{p:?}");
                // Only a document that is no object at all has no field to name.
                let whole = !config.is_object();
                prop_assert!(!p.field.is_empty() || whole, "no field named: {p:?}");
            }
        }
        // What imports saves as a definition that loads.
        Ok(imported) => {
            let text = doc::to_document(&imported.spec).to_string();
            let back = vm::load(&text, "fuzz");
            prop_assert_eq!(back.as_ref().ok(), Some(&imported.spec), "{}", text);
        }
    }
    Ok(())
}

#[test]
fn the_json_import_takes_anything() {
    let mut runner = proptest::test_runner::TestRunner::new(config(JSON_CASES));
    let strategy = prop_oneof![3 => mutated_config(), 1 => json_value()];
    runner
        .run(&strategy, |c| check_import(&c))
        .unwrap_or_else(|e| panic!("{e}"));
}

// ---- the terminal-reply parser ----

fn fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..16),
        Just(b"\x1b[".to_vec()),
        Just(b"\x1b".to_vec()),
        Just(b"\x1b[?".to_vec()),
        (0u32..100_000, 0u32..100_000).prop_map(|(a, b)| format!("\x1b[{a};{b}R").into_bytes()),
        (0u32..100_000, 0u32..100_000).prop_map(|(a, b)| format!("\x1b[8;{a};{b}t").into_bytes()),
        Just(b"\x1b[1;5R".to_vec()),
        Just(b"\x1b[;R".to_vec()),
        Just(b"\x1b[99999999999999999999;1R".to_vec()),
    ]
}

#[test]
fn the_reply_parser_takes_anything_and_finds_the_last_report() {
    let mut runner = proptest::test_runner::TestRunner::new(config(REPLY_CASES));
    let strategy = (
        prop::collection::vec(fragment(), 0..12),
        2u16..=999,
        1u16..=999,
    );
    runner
        .run(&strategy, |(junk, row, col)| {
            let mut bytes: Vec<u8> = junk.concat();
            let _ = scan_replies(&bytes);
            // Whatever came before, a complete report at the end is the answer.
            bytes.extend(format!("\x1b[{row};{col}R").as_bytes());
            prop_assert_eq!(scan_replies(&bytes).cursor, Some((row, col)));
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}
