//! "Shut down or restart": the VMs that will be stopped and the buttons, then each VM's
//! stop as it goes.

use phyllome_widgets::{centered_rect, wrap};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;

use super::super::power::{Choice, PowerPopup};
use super::super::state::State;
use crate::fmt::printable;
use crate::ops::power::PowerAction;

const WIDTH: u16 = 64;

pub fn render(state: &State, popup: &PowerPopup, frame: &mut Frame, area: Rect) {
    let (g, p) = (&state.theme.glyphs, &state.theme.palette);
    let w = WIDTH.min(area.width.saturating_sub(4));
    let text_w = w.saturating_sub(4) as usize;
    // Rows inside the border on this screen; the buttons must always show.
    let room = area.height.saturating_sub(4) as usize;
    let mut lines: Vec<Line> = Vec::new();
    let para = |text: &str, lines: &mut Vec<Line>| {
        lines.extend(wrap(text, text_w).into_iter().map(Line::raw));
    };
    let title = match popup {
        PowerPopup::Choose { vms, selected } => {
            match vms {
                None => para("Looking for running VMs...", &mut lines),
                Some(vms) if vms.is_empty() => para("No VM is running.", &mut lines),
                Some(vms) => {
                    para(
                        "These VMs are stopped first (the power button, then forced off \
                         when their grace period runs out):",
                        &mut lines,
                    );
                    // The intro, then the VM rows, then a blank, the buttons, a blank, the hint.
                    let fits = room.saturating_sub(lines.len() + 4);
                    let shown = if vms.len() > fits {
                        fits.saturating_sub(1)
                    } else {
                        vms.len()
                    };
                    for vm in &vms[..shown] {
                        lines.push(Line::from(vec![
                            Span::raw(format!("  {} ", g.bullet)),
                            Span::styled(format!("{:<20}", printable(&vm.name)), p.title),
                            Span::raw(format!(
                                " {:<12} up to {}",
                                vm.state,
                                crate::fmt::countdown(vm.stop_timeout_secs)
                            )),
                        ]));
                    }
                    if shown < vms.len() {
                        lines.push(Line::styled(
                            format!("  ... and {} more", vms.len() - shown),
                            p.dim,
                        ));
                    }
                }
            }
            lines.push(Line::raw(""));
            lines.push(buttons(state, *selected));
            lines.push(Line::raw(""));
            lines.push(Line::styled(
                "left/right: choose   enter: do it   esc: cancel",
                p.dim,
            ));
            "Shut down or restart".to_string()
        }
        PowerPopup::Running {
            action,
            steps,
            calling,
        } => {
            if steps.is_empty() && !calling {
                para("Asking logind, listing the running VMs...", &mut lines);
            }
            for s in steps {
                let mark = if s.done {
                    Span::styled(format!("{} ", g.ok), p.ok)
                } else {
                    Span::styled(format!("{} ", g.cursor), p.warn)
                };
                let text = format!("{}: {}", printable(&s.vm), s.status);
                for (i, l) in wrap(&text, text_w.saturating_sub(2))
                    .into_iter()
                    .enumerate()
                {
                    let lead = if i == 0 {
                        mark.clone()
                    } else {
                        Span::raw("  ")
                    };
                    lines.push(Line::from(vec![lead, Span::raw(l)]));
                }
            }
            if *calling {
                lines.push(Line::raw(""));
                para(
                    &format!(
                        "Every VM is stopped. Asking logind to {} the host...",
                        action.verb()
                    ),
                    &mut lines,
                );
            }
            // The newest steps matter: older ones give way at the top.
            if lines.len() > room && room > 1 {
                let cut = lines.len() - room + 1;
                lines.drain(..cut);
                lines.insert(0, Line::styled(format!("... {cut} lines above"), p.dim));
            }
            match action {
                PowerAction::PowerOff => "Powering off".to_string(),
                PowerAction::Reboot => "Rebooting".to_string(),
            }
        }
    };
    let h = (lines.len() as u16 + 2).min(area.height.saturating_sub(2));
    let rect = centered_rect(area, w, h);
    frame.render_widget(Clear, rect);
    let block = g
        .block()
        .title(Line::styled(format!(" {title} "), p.danger));
    let inner = block.inner(rect);
    let inner = Rect::new(
        inner.x + 1,
        inner.y,
        inner.width.saturating_sub(2),
        inner.height,
    );
    frame.render_widget(block, rect);
    frame.render_widget(Paragraph::new(lines), inner);
}

/// Brackets mark the focused button, so it shows without colour too.
fn buttons(state: &State, selected: Choice) -> Line<'static> {
    let p = &state.theme.palette;
    let mut spans = Vec::new();
    for (i, c) in Choice::ALL.into_iter().enumerate() {
        if i > 0 {
            spans.push(Span::raw("   "));
        }
        if c == selected {
            spans.push(Span::styled(format!("[ {} ]", c.label()), p.selected));
        } else {
            spans.push(Span::raw(format!("  {}  ", c.label())));
        }
    }
    Line::from(spans).centered()
}
