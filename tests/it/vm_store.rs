//! The definition store: atomic saves under SIGKILL, history, rollback, comments kept, bad
//! files listed, and the `phyllome vm` definition commands.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use phyllome::vm::{doc, SaveMode, Store, StoreError};
use toml_edit::value;

fn def(boot: u32) -> String {
    format!("# my VM\n[cpus]\nboot = {boot} # vCPUs\n[memory]\nsize = \"1G\"\n[boot]\nfirmware = \"/fw\"\n")
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path().join("vms")).expect("open");
    (dir, store)
}

/// Not a test on its own: the writer the kill test runs in a child process.
#[test]
fn writer_child() {
    let Ok(dir) = std::env::var("PHYLLOME_TEST_WRITER_DIR") else {
        return;
    };
    let store = Store::open(dir).expect("open");
    let big = |n: u32| {
        format!(
            "{}{}",
            def(n),
            format!("# {}\n", "x".repeat(200)).repeat(200)
        )
    };
    for i in 0.. {
        store
            .save("w", &big(1 + i % 2), SaveMode::Any)
            .expect("save");
    }
}

#[test]
fn a_writer_killed_mid_save_leaves_the_old_or_the_new_version() {
    let (_tmp, store) = store();
    let exe = std::env::current_exe().expect("exe");
    let mut seen = std::collections::HashSet::new();
    for round in 0..30u64 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "vm_store::writer_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("PHYLLOME_TEST_WRITER_DIR", store.dir())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        // Different points in the save each round (pseudo-random, reproducible).
        let ms = 30 + (round * 7919) % 90;
        std::thread::sleep(Duration::from_millis(ms));
        child.kill().expect("SIGKILL"); // Child::kill sends SIGKILL
        child.wait().expect("wait");
        if !store.exists("w") {
            continue; // killed before its first save
        }
        let spec = store
            .get("w")
            .expect("the definition parses after every kill");
        assert!([1, 2].contains(&spec.cpus.boot));
        seen.insert(spec.cpus.boot);
        let text = store.get_text("w").expect("text");
        assert!(
            text.ends_with(&format!("# {}\n", "x".repeat(200))),
            "torn file in round {round}"
        );
        let entries = store.list().expect("list");
        assert_eq!(entries.len(), 1, "temp files are never listed");
        assert!(store.history("w").expect("history").len() <= 10);
    }
    assert!(!seen.is_empty());
}

#[test]
fn history_keeps_ten_and_rollback_restores() {
    let (_tmp, store) = store();
    for n in 1..=13 {
        store.save("vm1", &def(n), SaveMode::Any).expect("save");
    }
    let h = store.history("vm1").expect("history");
    assert_eq!(h.len(), 10);
    assert_eq!(h.first().map(|v| v.number), Some(4));
    assert_eq!(h.last().map(|v| (v.number, v.current)), Some((13, true)));
    assert_eq!(
        h.last().map(|v| v.summary.as_str()),
        Some("cpus.boot 12 → 13")
    );
    // Saving the same text again makes no new version.
    store.save("vm1", &def(13), SaveMode::Any).expect("same");
    assert_eq!(store.history("vm1").expect("history").len(), 10);

    assert_eq!(store.rollback("vm1", None).expect("rollback"), 12);
    assert_eq!(store.get("vm1").expect("get").cpus.boot, 12);
    // The rollback is a version of its own, so it can be undone the same way.
    assert_eq!(store.rollback("vm1", None).expect("undo"), 13);
    assert_eq!(store.get("vm1").expect("get").cpus.boot, 13);
    assert_eq!(store.rollback("vm1", Some(8)).expect("to 8"), 8);
    assert_eq!(store.get("vm1").expect("get").cpus.boot, 8);
    assert!(matches!(
        store.rollback("vm1", Some(1)),
        Err(StoreError::NoVersion { .. })
    ));
}

#[test]
fn saves_refuse_invalid_text_and_respect_the_mode() {
    let (_tmp, store) = store();
    let err = store
        .save("a", "[cpus]\nboot = 0\n", SaveMode::Any)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cpus.boot: 0 vCPUs; at least 1") && err.contains("memory: missing"),
        "{err}"
    );
    assert!(!store.exists("a"));
    store.save("a", &def(1), SaveMode::Create).expect("create");
    assert!(matches!(
        store.save("a", &def(2), SaveMode::Create),
        Err(StoreError::Exists(_))
    ));
    assert!(matches!(
        store.save("b", &def(2), SaveMode::Update),
        Err(StoreError::NotFound(_))
    ));
    for bad in ["", ".a", "a/b", "../x", "A"] {
        let e = store.save(bad, &def(1), SaveMode::Any).unwrap_err();
        assert!(e.to_string().contains("is not a VM name"), "{bad}: {e}");
    }
}

#[test]
fn comments_survive_an_edit() {
    let (_tmp, store) = store();
    store.save("c", &def(2), SaveMode::Any).expect("save");
    store
        .edit("c", |d| {
            doc::set(d, "cpus.boot", value(4))?;
            doc::set(d, "memory.hugepages", value(false))
        })
        .expect("edit");
    let text = store.get_text("c").expect("text");
    assert_eq!(
        text,
        "# my VM\n[cpus]\nboot = 4 # vCPUs\n[memory]\nsize = \"1G\"\nhugepages = false\n[boot]\nfirmware = \"/fw\"\n"
    );
}

#[test]
fn one_bad_file_never_hides_the_others() {
    let (_tmp, store) = store();
    store.save("good", &def(1), SaveMode::Any).expect("save");
    std::fs::write(store.dir().join("broken.toml"), "[cpus\n").expect("write");
    std::fs::write(store.dir().join("Bad Name.toml"), def(1)).expect("write");
    std::fs::write(store.dir().join("notes.txt"), "x").expect("write");
    let entries = store.list().expect("list");
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["Bad Name", "broken", "good"]);
    assert!(entries[0]
        .spec
        .as_ref()
        .unwrap_err()
        .to_string()
        .contains("is not a VM name"));
    assert!(entries[1]
        .spec
        .as_ref()
        .unwrap_err()
        .to_string()
        .contains("Not valid TOML"));
    assert!(entries[2].spec.is_ok());
}

#[test]
fn delete_keeps_history_for_a_rollback() {
    let (_tmp, store) = store();
    store.save("d", &def(1), SaveMode::Any).expect("save");
    store.delete("d").expect("delete");
    assert!(matches!(store.get("d"), Err(StoreError::NotFound(_))));
    assert!(matches!(store.delete("d"), Err(StoreError::NotFound(_))));
    assert_eq!(store.rollback("d", Some(1)).expect("restore"), 1);
    assert_eq!(store.get("d").expect("back").cpus.boot, 1);
}

#[test]
fn state_dir_rules() {
    assert_eq!(
        Store::default_dir(Some(Path::new("/x"))).expect("dir"),
        Path::new("/x/vms")
    );
}

// ---- the command line ----

fn phyllome(state: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_phyllome"))
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .env("NO_COLOR", "1")
        .env_remove("PHYLLOME_HOST_ROOT")
        .stdin(Stdio::null())
        .output()
        .expect("run phyllome");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_define_export_import_history_rollback() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let st = tmp.path().join("state");
    let file = tmp.path().join("base.toml");
    std::fs::write(&file, format!("# base\nname = \"base\"\n{}", def(2))).expect("write");
    let f = file.to_str().expect("utf-8");

    let (ok, out, err) = phyllome(
        &st,
        &[
            "vm",
            "define",
            "web",
            "--from",
            f,
            "--memory",
            "4G",
            "--disk",
            "/img/web.img,readonly",
            "--net",
            "tap=tap0,mac=52:54:00:00:00:09",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("Defined VM web"), "{out}");
    let text = std::fs::read_to_string(st.join("vms/web.toml")).expect("file");
    assert!(text.starts_with("# base\nname = \"web\"\n"), "{text}");
    assert!(
        text.contains("size = \"4G\"") && text.contains("boot = 2 # vCPUs"),
        "{text}"
    );

    let (ok, _, err) = phyllome(&st, &["vm", "define", "web", "--from", f]);
    assert!(
        !ok && err.contains("already exists; pass --replace"),
        "{err}"
    );
    let (ok, _, err) = phyllome(
        &st,
        &[
            "vm",
            "define",
            "web",
            "--from",
            f,
            "--replace",
            "--vcpus",
            "3",
            "--disk",
            "/img/web.img,readonly",
        ],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = phyllome(&st, &["vm", "define", "bad", "--from", f, "--memory", "2X"]);
    assert!(
        !ok && err.contains("Bad --memory\ncaused by: \"2X\" is not a size; write e.g. 2G"),
        "{err}"
    );
    let (ok, _, err) = phyllome(
        &st,
        &["vm", "define", "nofile", "--from", "/nonexistent.toml"],
    );
    assert!(
        !ok && err.contains("Cannot read /nonexistent.toml"),
        "{err}"
    );

    let (ok, json, err) = phyllome(&st, &["vm", "export", "web"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(v["cpus"]["boot_vcpus"], 3);
    assert_eq!(
        v["memory"]["size"],
        1u64 << 30,
        "--replace starts again from the file"
    );
    assert_eq!(v["disks"][0]["readonly"], true);
    let (ok, cli, _) = phyllome(&st, &["vm", "export", "web", "--format", "cli"]);
    assert!(
        ok && cli.starts_with("cloud-hypervisor \\\n  --cpus boot=3,max=3"),
        "{cli}"
    );

    let t1 = tmp.path().join("t1.json");
    std::fs::write(&t1, &json).expect("write");
    let (ok, out, err) = phyllome(&st, &["vm", "import", t1.to_str().expect("utf-8")]);
    assert!(ok, "{err}");
    assert!(out.contains("Imported VM t1"), "{out}");
    let (ok, again, _) = phyllome(&st, &["vm", "export", "t1"]);
    assert!(ok);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&again).expect("JSON")["serial"]["socket"]
            .as_str()
            .map(|s| s.ends_with("/vms/t1/serial.sock")),
        Some(true)
    );
    let (ok, _, err) = phyllome(
        &st,
        &[
            "vm",
            "import",
            t1.to_str().expect("utf-8"),
            "--name",
            "Bad/Name",
        ],
    );
    assert!(!ok && err.contains("is not a VM name"), "{err}");

    let (ok, out, err) = phyllome(&st, &["vm", "history", "web"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("created") && out.contains("cpus.boot 2 → 3"),
        "{out}"
    );

    let (ok, _, err) = phyllome(&st, &["vm", "rollback", "web"]);
    assert!(
        !ok && err.contains("no terminal to ask on; pass --yes"),
        "{err}"
    );
    let (ok, out, err) = phyllome(&st, &["vm", "rollback", "web", "--yes"]);
    assert!(ok && out.contains("back at version 1"), "{out}{err}");
    let (_, json, _) = phyllome(&st, &["vm", "export", "web"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&json).expect("JSON")["cpus"]["boot_vcpus"],
        2
    );
    let (ok, _, err) = phyllome(&st, &["vm", "rollback", "web", "--yes", "--to", "99"]);
    assert!(!ok && err.contains("has no version 99"), "{err}");

    let (ok, _, err) = phyllome(&st, &["vm", "edit", "web"]);
    assert!(!ok && err.contains("vm edit needs a terminal"), "{err}");
    let (ok, _, err) = phyllome(&st, &["vm", "export", "nope"]);
    assert!(!ok && err.contains("No VM named \"nope\""), "{err}");
}

#[test]
fn vm_autostart_switches_one_field_and_keeps_the_rest() {
    let cli = crate::support::cli::Cli::new();
    cli.define_toml("web", &def(2));
    let out = cli.ok(&["vm", "autostart", "web", "on"]);
    assert_eq!(out, "VM web: autostart on\n");
    let text = std::fs::read_to_string(cli.state.join("vms/web.toml")).unwrap();
    assert!(text.contains("autostart = true"), "{text}");
    assert!(
        text.contains("# my VM\n") && text.contains("boot = 2 # vCPUs"),
        "comments kept: {text}"
    );
    assert_eq!(cli.info("web")["definition"]["autostart"], true);
    cli.ok(&["vm", "autostart", "web", "off"]);
    assert_eq!(cli.info("web")["definition"]["autostart"], false);
    let missing = cli.run(&["vm", "autostart", "nope", "on"]);
    assert_eq!(missing.status.code(), Some(3));
    let bad = cli.run(&["vm", "autostart", "web", "maybe"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn vm_history_diff_shows_what_a_version_changed() {
    let cli = crate::support::cli::Cli::new();
    cli.ok(&["vm", "define", "web", "--kernel", "/k", "--memory", "1G"]);
    cli.ok(&[
        "vm",
        "define",
        "web",
        "--kernel",
        "/k",
        "--memory",
        "2G",
        "--replace",
    ]);
    let diff = cli.ok(&["vm", "history", "web", "--diff"]);
    assert!(
        diff.starts_with("--- web version 1\n+++ web version 2\n"),
        "{diff}"
    );
    assert!(
        diff.contains("\n-size = \"1G\"\n+size = \"2G\"\n"),
        "{diff}"
    );
    assert_eq!(cli.ok(&["vm", "history", "web", "--diff", "2"]), diff);
    let first = cli.ok(&["vm", "history", "web", "--diff", "1"]);
    assert!(first.contains("is the first"), "{first}");
    let missing = cli.run(&["vm", "history", "web", "--diff", "9"]);
    assert_eq!(missing.status.code(), Some(3));
}
