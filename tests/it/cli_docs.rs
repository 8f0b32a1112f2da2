//! Completions and man pages as the shells and `man` take them.

use crate::support::cli::Cli;

#[test]
fn completion_scripts_for_each_shell() {
    let cli = Cli::new();
    let bash = cli.ok(&["completions", "bash"]);
    assert!(
        bash.contains("_phyllome()") && bash.contains("complete -F"),
        "{bash}"
    );
    assert!(bash.contains("autostart"), "subcommands are in: {bash}");
    let zsh = cli.ok(&["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef phyllome"), "{zsh}");
    let fish = cli.ok(&["completions", "fish"]);
    assert!(fish.contains("complete -c phyllome"), "{fish}");
    let bad = cli.run(&["completions", "tcsh"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn man_pages_are_written_one_per_command() {
    let cli = Cli::new();
    let dir = cli.path().join("man1");
    let listed = cli.ok(&["man", dir.to_str().unwrap()]);
    assert!(listed.contains("phyllome-vm-autostart.1"), "{listed}");
    let page = std::fs::read_to_string(dir.join("phyllome-gpu-detach.1")).unwrap();
    assert!(
        page.contains(".SH SYNOPSIS") && page.contains("IOMMU group"),
        "{page}"
    );
    // `man` itself reads it, where installed.
    if let Ok(out) = std::process::Command::new("man")
        .arg("-l")
        .arg(dir.join("phyllome-vm-start.1"))
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "80")
        .output()
    {
        if out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("phyllome-vm-start"), "{text}");
        }
    }
}
