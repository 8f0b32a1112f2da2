//! The GPU screen's operation drawn over its body: the VM picker, the review (readiness,
//! devices, every step with its undo, warnings), the confirmation, each step's result as
//! it happens with the rollback after a failure, and the boot-configuration preview.

use phyllome_widgets::{badge, ConfirmDialog, ConfirmMode, KeyHint, Tone};
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Clear;
use ratatui::Frame;

use super::super::gpus::{
    device_state, BootChange, BootFlow, Flow, GpuOp, Outcome, Progress, Review, Stage, StepRow,
};
use super::super::state::{State, Theme};
use super::common::{scrolled, verdict_tone, wrapped};
use crate::fmt;
use crate::vfio::{Operation, StepStatus};

/// Draws the open operation or boot preview over `area` (the body).
pub fn render(state: &State, frame: &mut Frame, area: Rect) {
    let width = area.width.saturating_sub(4) as usize;
    let (title, lines, scroll) = match (&state.gpu.boot, &state.gpu.flow) {
        (Some(b), _) => (
            format!("Boot configuration of {}", b.gpu),
            boot_lines(state, b, width),
            b.scroll,
        ),
        (None, Some(f)) => (
            format!("{}: {} {}", f.op.title(), f.gpu, f.gpu_name),
            flow_lines(state, f, width),
            f.scroll,
        ),
        (None, None) => return,
    };
    // While steps run, the newest is at the bottom: follow it.
    let running = matches!(
        state.gpu.flow.as_ref().map(|f| &f.stage),
        Some(Stage::Running { .. })
    );
    let scroll = if running && state.gpu.boot.is_none() {
        usize::MAX / 2
    } else {
        scroll
    };
    let lines = if state.theme.glyphs.ascii {
        lines.into_iter().map(ascii_line).collect()
    } else {
        lines
    };
    frame.render_widget(Clear, area);
    scrolled(frame, area, &title, lines, scroll, &state.theme);
    let t = &state.theme;
    match (&state.gpu.boot, &state.gpu.flow) {
        (
            Some(BootFlow {
                confirm: Some((change, mode)),
                ..
            }),
            _,
        ) => {
            let (title, msg) = match change {
                BootChange::Install => (
                    "Install the boot configuration?",
                    "The files above are written; the kernel arguments and commands are yours \
                     to run, then a reboot.",
                ),
                BootChange::Uninstall => (
                    "Remove the boot configuration?",
                    "The files phyllome wrote are removed; run the undo commands, then reboot.",
                ),
            };
            let message = vec![msg.to_string()];
            let d = ConfirmDialog::new(title, &message, mode, t.glyphs).palette(t.palette);
            frame.render_widget(d, frame.area());
        }
        (
            None,
            Some(Flow {
                stage:
                    Stage::Confirm {
                        review,
                        mode,
                        error,
                        ..
                    },
                op,
                gpu,
                ..
            }),
        ) => {
            let mut message = Vec::new();
            match review
                .plan
                .as_ref()
                .and_then(|p| p.needs_confirmation.as_ref())
            {
                Some(c) => message.push(c.reason.clone()),
                None => message.push(format!(
                    "{} {gpu}: {} step{}.",
                    op.title(),
                    review.plan.as_ref().map_or(0, |p| p.steps.len()),
                    if review.plan.as_ref().map_or(0, |p| p.steps.len()) == 1 {
                        ""
                    } else {
                        "s"
                    }
                )),
            }
            if let Some(e) = error {
                message.push(format!("{} {e}", t.glyphs.bad));
            }
            let title = format!("{}?", op.title());
            let d = ConfirmDialog::new(&title, &message, mode, t.glyphs).palette(t.palette);
            frame.render_widget(d, frame.area());
        }
        _ => {}
    }
}

/// The bottom bar while an operation is open: what the keys do at this stage.
pub fn hints(state: &State) -> Option<Vec<KeyHint>> {
    let h = |k: &str, d: &str, danger: bool| KeyHint::new(k.to_string(), d, danger);
    if let Some(b) = &state.gpu.boot {
        if b.confirm.is_some() {
            return Some(confirm_hints(&ConfirmMode::YesNo { yes: false }));
        }
        let mut out = vec![h("up/down", "scroll", false)];
        if !state.read_only {
            out.push(h("I", "install", true));
            out.push(h("U", "uninstall", true));
        }
        out.push(h("esc", "close", false));
        return Some(out);
    }
    let f = state.gpu.flow.as_ref()?;
    Some(match &f.stage {
        Stage::PickVm { .. } => vec![
            h("up/down", "choose", false),
            h("enter", "plan", false),
            h("esc", "cancel", false),
        ],
        Stage::Planning => vec![h("esc", "cancel", false)],
        Stage::Review(_) if f.op == GpuOp::Preview => {
            vec![h("up/down", "scroll", false), h("esc", "close", false)]
        }
        Stage::Review(_) => vec![
            h("up/down", "scroll", false),
            h("enter", "confirm", true),
            h("esc", "cancel", false),
        ],
        Stage::Confirm { mode, .. } => confirm_hints(mode),
        Stage::Running { .. } => vec![h("", "running: wait for the last step", false)],
        Stage::Finished { .. } | Stage::Refused(_) => {
            vec![h("up/down", "scroll", false), h("esc", "close", false)]
        }
    })
}

fn confirm_hints(mode: &ConfirmMode) -> Vec<KeyHint> {
    let h = |k: &str, d: &str| KeyHint::new(k.to_string(), d, false);
    match mode {
        ConfirmMode::Typed { .. } => vec![h("enter", "accept"), h("esc", "cancel")],
        ConfirmMode::YesNo { .. } => {
            vec![h("y/n", "answer"), h("tab", "switch"), h("esc", "cancel")]
        }
    }
}

fn flow_lines(state: &State, f: &Flow, width: usize) -> Vec<Line<'static>> {
    let t = &state.theme;
    let p = &t.palette;
    match &f.stage {
        Stage::PickVm { selected } => picker(state, f, *selected, width),
        Stage::Planning => vec![Line::raw(" Working out the plan...")],
        Stage::Refused(why) => {
            let mut out = vec![Line::styled(" Refused: nothing was changed", p.bad)];
            out.extend(wrapped(why, 1, width, p.bad));
            out
        }
        Stage::Review(review) | Stage::Confirm { review, .. } => {
            review_lines(state, f, review, width)
        }
        Stage::Running { review, progress } => progress_lines(state, review, progress, None, width),
        Stage::Finished {
            review,
            progress,
            outcome,
        } => progress_lines(state, review, progress, Some(outcome), width),
    }
}

fn picker(state: &State, f: &Flow, selected: usize, width: usize) -> Vec<Line<'static>> {
    let t = &state.theme;
    let (g, p) = (&t.glyphs, &t.palette);
    let mut out = wrapped(
        &format!(
            "Give {} ({}) and the rest of its IOMMU group to:",
            f.gpu, f.gpu_name
        ),
        1,
        width,
        p.normal,
    );
    out.push(Line::raw(""));
    let vms = state.vms.pickable();
    if vms.is_empty() {
        let why = if state.vms.loaded {
            "No VM is defined yet: create one on the VM screen (5, then n)."
        } else {
            "Reading the VM list..."
        };
        out.extend(wrapped(why, 1, width, p.dim));
        return out;
    }
    for (i, vm) in vms.iter().enumerate() {
        let cursor = if i == selected { g.cursor } else { " " };
        let devices = match vm.vfio {
            0 => String::new(),
            n => format!("  {n} VFIO device{}", if n == 1 { "" } else { "s" }),
        };
        let line = Line::raw(format!(
            " {cursor} {:<20} {:<10}{devices}",
            vm.name,
            vm.state.as_str()
        ));
        out.push(if i == selected {
            line.style(p.selected)
        } else {
            line
        });
    }
    out
}

/// The readiness verdict, what happens, the devices and every step with its undo.
fn review_lines(state: &State, f: &Flow, review: &Review, width: usize) -> Vec<Line<'static>> {
    let t = &state.theme;
    let (g, p) = (&t.glyphs, &t.palette);
    let mut out = Vec::new();
    if let Some(gpu) = state
        .inventory
        .as_ref()
        .and_then(|inv| inv.gpus.iter().find(|g| g.address == f.gpu))
    {
        let v = &gpu.passthrough.verdict;
        out.push(Line::from(vec![
            Span::styled(" Readiness  ", p.dim),
            badge(verdict_tone(v), fmt::verdict(v), g, p),
        ]));
        for r in &gpu.passthrough.reasons {
            out.extend(wrapped(&format!("{} {r}", g.bullet), 3, width, p.normal));
        }
    }
    for n in &review.notes {
        out.extend(wrapped(n, 1, width, p.normal));
    }
    let Some(plan) = &review.plan else {
        return out;
    };
    out.push(Line::raw(""));
    out.push(Line::styled(
        format!(
            " IOMMU group {}: {} device{}",
            plan.group,
            plan.devices.len(),
            if plan.devices.len() == 1 { "" } else { "s" }
        ),
        p.title,
    ));
    for d in &plan.devices {
        let now = state
            .inventory
            .as_ref()
            .map(|inv| device_state(&state.gpu.states, inv, &d.address).words())
            .unwrap_or_default();
        let target = match (&d.target, plan.operation) {
            (Some(t), _) => t.clone(),
            (None, Operation::Release) => "host driver".into(),
            (None, Operation::Detach) => "vfio-pci".into(),
        };
        out.extend(wrapped(
            &format!("{}  {}  [{now}] {} {target}", d.address, d.name, arrow(t)),
            2,
            width,
            p.normal,
        ));
    }
    out.push(Line::styled(" Steps (each with its undo)", p.title));
    for (i, s) in plan.steps.iter().enumerate() {
        out.extend(wrapped(
            &format!("{:>2}. {}", i + 1, s.description),
            2,
            width,
            p.normal,
        ));
        if let Some(u) = &s.undo_description {
            out.extend(wrapped(&format!("undo: {u}"), 7, width, p.dim));
        }
    }
    for w in &plan.warnings {
        out.extend(wrapped(&format!("{} {w}", g.warn), 1, width, p.warn));
    }
    for h in &plan.holders {
        let line = format!(
            "{} held open: {} by {} (pid {})",
            g.warn, h.node, h.command, h.pid
        );
        out.extend(wrapped(&line, 1, width, p.warn));
    }
    if let Some(c) = &plan.needs_confirmation {
        out.extend(wrapped(
            &format!("{} {}", g.danger, c.reason),
            1,
            width,
            p.danger,
        ));
    }
    out
}

fn arrow(t: &Theme) -> &'static str {
    if t.glyphs.ascii {
        "->"
    } else {
        "→"
    }
}

fn status_word(s: &Option<StepStatus>, undo: bool) -> (&'static str, Tone) {
    match (s, undo) {
        (None, _) => ("-", Tone::Ready),
        (Some(StepStatus::Running), _) => ("...", Tone::Warn),
        (Some(StepStatus::Done), false) => ("done", Tone::Ready),
        (Some(StepStatus::Done), true) => ("undone", Tone::Ready),
        (Some(StepStatus::Failed(_)), false) => ("FAILED", Tone::Blocked),
        (Some(StepStatus::Failed(_)), true) => ("NOT UNDONE", Tone::Blocked),
    }
}

fn step_line(
    t: &Theme,
    n: Option<usize>,
    row: &StepRow,
    undo: bool,
    width: usize,
) -> Vec<Line<'static>> {
    let p = &t.palette;
    let (word, tone) = status_word(&row.status, undo);
    let style: Style = match row.status {
        None => p.dim,
        _ => tone.style(p),
    };
    let lead = match n {
        Some(n) => format!(" {word:<10} {n:>2}. "),
        None => format!(" {word:<10}     "),
    };
    let room = width.saturating_sub(lead.len()).max(10);
    let mut out = Vec::new();
    for (i, l) in phyllome_widgets::wrap(&row.description, room)
        .into_iter()
        .enumerate()
    {
        let head = if i == 0 {
            Span::styled(lead.clone(), style)
        } else {
            Span::raw(" ".repeat(lead.len()))
        };
        out.push(Line::from(vec![head, Span::raw(l)]));
    }
    if let Some(StepStatus::Failed(why)) = &row.status {
        out.extend(wrapped(
            &format!("because: {why}"),
            lead.len(),
            width,
            p.bad,
        ));
    }
    out
}

/// Each step's status as it happens; after a failure the rollback and, loudly, what was
/// not restored.
fn progress_lines(
    state: &State,
    review: &Review,
    progress: &Progress,
    outcome: Option<&Outcome>,
    width: usize,
) -> Vec<Line<'static>> {
    let t = &state.theme;
    let (g, p) = (&t.glyphs, &t.palette);
    let mut out = Vec::new();
    let total = progress.steps.len();
    let head = match outcome {
        None if total == 0 => " Working...".to_string(),
        None => format!(" Running: {} of {total} steps done", progress.done()),
        Some(Outcome::Done(_)) => format!(" Done: {} of {total} steps", progress.done()),
        Some(_) => " Failed".to_string(),
    };
    out.push(Line::styled(head, p.title));
    // The outcome first: after a failure, what was not restored is the first thing seen.
    match outcome {
        None => {}
        Some(Outcome::Done(lines)) => {
            for l in lines {
                out.extend(wrapped(&format!("{} {l}", g.ok), 1, width, p.ok));
            }
        }
        Some(Outcome::Error(e)) => {
            out.extend(wrapped(&format!("{} {e}", g.bad), 1, width, p.bad));
        }
        Some(Outcome::Failed(f)) => {
            out.extend(wrapped(
                &format!("{} Step {} failed: {}", g.bad, f.step + 1, f.description),
                1,
                width,
                p.bad,
            ));
            out.extend(wrapped(&format!("because: {}", f.error), 3, width, p.bad));
            for r in &f.restored {
                out.extend(wrapped(&format!("restored: {r}"), 3, width, p.normal));
            }
            if f.unrestored.is_empty() {
                out.extend(wrapped(
                    &format!("{} Everything was restored: the host is as it was.", g.ok),
                    1,
                    width,
                    p.ok,
                ));
            } else {
                out.extend(wrapped(
                    &format!("{} ROLLBACK INCOMPLETE. NOT RESTORED:", g.danger),
                    1,
                    width,
                    p.danger,
                ));
                for u in &f.unrestored {
                    out.extend(wrapped(&format!("{} {u}", g.bad), 3, width, p.danger));
                }
            }
        }
    }
    for n in &review.notes {
        out.extend(wrapped(n, 1, width, p.dim));
    }
    for (i, row) in progress.steps.iter().enumerate() {
        out.extend(step_line(t, Some(i + 1), row, false, width));
    }
    if !progress.rollback.is_empty() {
        out.push(Line::styled(" Rollback (in reverse)", p.warn));
        for row in &progress.rollback {
            out.extend(step_line(t, None, row, true, width));
        }
    }
    for l in &progress.log {
        out.extend(wrapped(l, 1, width, p.normal));
    }
    out
}

fn boot_lines(state: &State, b: &BootFlow, width: usize) -> Vec<Line<'static>> {
    let t = &state.theme;
    let (g, p) = (&t.glyphs, &t.palette);
    let view = match &b.view {
        None => return vec![Line::raw(" Reading...")],
        Some(Err(e)) => {
            let mut out = vec![Line::styled(" No boot configuration:", p.bad)];
            out.extend(wrapped(e, 1, width, p.bad));
            return out;
        }
        Some(Ok(v)) => v,
    };
    let c = &view.config;
    let mut out = Vec::new();
    if let Some(r) = &b.result {
        match r {
            Ok(lines) => {
                for l in lines {
                    out.extend(wrapped(&format!("{} {l}", g.ok), 1, width, p.ok));
                }
            }
            Err(e) => out.extend(wrapped(&format!("{} {e}", g.bad), 1, width, p.bad)),
        }
    }
    if b.busy {
        out.push(Line::styled(" Writing...", p.warn));
    }
    out.push(Line::styled(
        format!(" Claim IOMMU group {} for vfio-pci at boot", c.group),
        p.title,
    ));
    out.extend(wrapped(
        &format!("Kernel arguments: {}", c.kernel_args.join(" ")),
        1,
        width,
        p.normal,
    ));
    if view.missing.is_empty() {
        out.extend(wrapped(
            &format!("{} /proc/cmdline has them all", g.ok),
            3,
            width,
            p.ok,
        ));
    } else {
        out.extend(wrapped(
            &format!(
                "{} missing from /proc/cmdline: {}",
                g.warn,
                view.missing.join(" ")
            ),
            3,
            width,
            p.warn,
        ));
    }
    for f in &c.files {
        out.push(Line::styled(format!(" File {}", f.path), p.title));
        for l in f.contents.lines() {
            out.extend(wrapped(l, 3, width, p.dim));
        }
    }
    out.push(Line::styled(" Then", p.title));
    for cmd in &c.commands {
        out.extend(wrapped(cmd, 3, width, p.normal));
    }
    out.push(Line::styled(" Undo: delete the files, then", p.title));
    for cmd in &c.undo_commands {
        out.extend(wrapped(cmd, 3, width, p.normal));
    }
    for n in &c.notes {
        out.extend(wrapped(&format!("Note: {n}"), 1, width, p.dim));
    }
    out
}

/// The library's messages use arrows ("driver amdgpu → none"); an ASCII console gets them
/// spelled out, and anything else outside ASCII as `?`, so a serial line shows no mojibake.
fn ascii_line(line: Line<'static>) -> Line<'static> {
    let spans = line
        .spans
        .into_iter()
        .map(|s| {
            let text: String = s
                .content
                .chars()
                .map(|c| match c {
                    '→' => "->".to_string(),
                    '…' => "...".to_string(),
                    c if c.is_ascii() => c.to_string(),
                    _ => "?".to_string(),
                })
                .collect();
            Span::styled(text, s.style)
        })
        .collect::<Vec<_>>();
    Line::from(spans).style(line.style)
}
