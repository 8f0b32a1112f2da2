//! What another local user or a careless hand may leave in phyllome's directories: FIFOs,
//! links to secrets, links out of the history, open modes. Nothing hangs, nothing is read or
//! written through a link, modes stay private, and the other definitions still load.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use phyllome::files::FileError;
use phyllome::vm::{SaveMode, Store, StoreError};

const DEF: &str = "[cpus]\nboot = 1\n[memory]\nsize = \"1G\"\n[boot]\nfirmware = \"/fw\"\n";

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path().join("vms")).expect("open");
    store.save("good", DEF, SaveMode::Create).expect("save");
    (dir, store)
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).expect("metadata").permissions().mode() & 0o777
}

fn mkfifo(p: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        p,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .expect("mkfifo");
}

#[test]
fn a_fifo_definition_is_listed_as_an_error_without_hanging() {
    let (_tmp, store) = store();
    mkfifo(&store.dir().join("x.toml"));
    let started = Instant::now();
    let entries = store.list().expect("list");
    assert!(started.elapsed() < Duration::from_secs(5), "list blocked");
    let x = entries.iter().find(|e| e.name == "x").expect("x listed");
    let err = x.spec.as_ref().expect_err("a FIFO is no definition");
    assert!(
        matches!(
            err,
            StoreError::File(FileError::NotRegular { kind: "a FIFO", .. })
        ),
        "{err}"
    );
    assert!(entries.iter().any(|e| e.name == "good" && e.spec.is_ok()));
}

#[test]
fn a_link_to_a_secret_is_never_read() {
    let (tmp, store) = store();
    let secret = tmp.path().join("shadow");
    fs::write(&secret, "root:$6$secret-hash:19000:0:99999:7:::\n").expect("write");
    symlink(&secret, store.dir().join("shadow.toml")).expect("symlink");
    let entries = store.list().expect("list");
    let e = entries.iter().find(|e| e.name == "shadow").expect("listed");
    let err = e.spec.as_ref().expect_err("a link is no definition");
    assert!(
        matches!(err, StoreError::File(FileError::Link { .. })),
        "{err}"
    );
    assert!(!format!("{err:?}").contains("secret-hash"));
    assert!(store.get_text("shadow").is_err());
}

#[test]
fn a_history_dir_planted_as_a_link_is_refused_and_nothing_is_written_through_it() {
    let (tmp, store) = store();
    let elsewhere = tmp.path().join("elsewhere");
    fs::create_dir(&elsewhere).expect("mkdir");
    fs::create_dir_all(store.dir().join(".history")).expect("mkdir");
    symlink(&elsewhere, store.dir().join(".history/victim")).expect("symlink");
    let err = store
        .save("victim", DEF, SaveMode::Create)
        .expect_err("a linked history is refused");
    assert!(
        matches!(err, StoreError::File(FileError::Link { .. })),
        "{err}"
    );
    assert_eq!(fs::read_dir(&elsewhere).expect("read").count(), 0);
    assert!(!store.exists("victim"));
}

#[test]
fn definitions_are_private_and_keep_their_mode_when_edited() {
    let (_tmp, store) = store();
    assert_eq!(mode(store.dir()), 0o700);
    assert_eq!(mode(&store.path("good")), 0o600);
    assert_eq!(mode(&store.dir().join(".history/good")), 0o700);
    assert_eq!(mode(&store.dir().join(".history/good/000001.toml")), 0o600);
    // A mode the owner chose (0640 for a group of admins) survives an edit.
    fs::set_permissions(store.path("good"), fs::Permissions::from_mode(0o640)).expect("chmod");
    store
        .save(
            "good",
            &DEF.replace("boot = 1", "boot = 2"),
            SaveMode::Update,
        )
        .expect("save");
    assert_eq!(mode(&store.path("good")), 0o640);
}

#[test]
fn a_state_dir_others_can_write_is_refused_with_the_fix() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("vms");
    fs::create_dir(&dir).expect("mkdir");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).expect("chmod");
    let err = Store::open(&dir).expect_err("open to others");
    assert!(err.to_string().contains("chmod go-w"), "{err}");
}
