//! `phyllome top`: the dashboard alone, for a terminal without the full console (or where the
//! console is already running on the tty). Same state, views and sampler as the console's
//! dashboard; its own small loop and key table, since there are no VM actions here to clash
//! with (`s` sorts).

use std::io;
use std::time::Duration;

use crossterm::event::{Event, KeyCode, KeyEventKind, KeyModifiers};
use futures::{Stream, StreamExt};
use ratatui::backend::Backend;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::{Frame, Terminal};
use tokio::sync::{mpsc, watch};

use crate::monitor::{task, Collector, Snapshot};

use super::dashboard::{DashKey, Dashboard};
use super::state::Theme;
use super::view::{dashboard, vm_charts};

/// The filter prompt of `top`.
#[derive(Debug, Clone, Default)]
pub struct TopUi {
    pub filter: String,
    pub editing: bool,
}

/// Full screen: a title line, the dashboard or one VM's charts, a key line.
pub fn render(d: &Dashboard, ui: &TopUi, theme: &Theme, frame: &mut Frame) {
    let area = frame.area();
    if area.height < 4 {
        return;
    }
    let p = &theme.palette;
    let title = match &d.detail {
        Some(n) => format!(" phyllome top {} {n}", theme.glyphs.separator),
        None => " phyllome top".to_string(),
    };
    let w = area.width as usize;
    frame.render_widget(
        Line::styled(format!("{title:<w$}"), p.title),
        Rect::new(0, 0, area.width, 1),
    );
    let body = Rect::new(0, 1, area.width, area.height - 2);
    match &d.detail {
        Some(name) => vm_charts::render(d, name, theme, frame, body),
        None => dashboard::render(d, &ui.filter, theme, frame, body),
    }
    let foot = Rect::new(0, area.height - 1, area.width, 1);
    let key = |k: &str, what: &str| {
        vec![
            Span::styled(k.to_string(), p.key),
            Span::raw(format!(" {what}  ")),
        ]
    };
    let line = if ui.editing {
        Line::from(vec![
            Span::styled("/", p.key),
            Span::raw(format!("{}_", ui.filter)),
            Span::styled("   enter keep  esc clear", p.dim),
        ])
    } else if d.detail.is_some() {
        Line::from([key("esc", "back"), key("+/-", "interval"), key("q", "quit")].concat())
    } else {
        Line::from(
            [
                key("enter", "charts"),
                key("s", "sort"),
                key("/", "filter"),
                key("+/-", "interval"),
                key("q", "quit"),
            ]
            .concat(),
        )
    };
    let used = line.width();
    let mut line = line;
    line.spans
        .push(Span::raw(" ".repeat(w.saturating_sub(used))));
    frame.render_widget(line, foot);
}

/// What a key did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopOutcome {
    Nothing,
    Redraw,
    /// Clear and repaint (ctrl-l after line noise).
    Repaint,
    Interval(Duration),
    Quit,
}

pub fn key(
    d: &mut Dashboard,
    ui: &mut TopUi,
    code: KeyCode,
    mods: KeyModifiers,
    page: usize,
) -> TopOutcome {
    let ctrl = mods.contains(KeyModifiers::CONTROL);
    if ctrl && code == KeyCode::Char('c') {
        return TopOutcome::Quit;
    }
    if ctrl && code == KeyCode::Char('l') {
        return TopOutcome::Repaint;
    }
    if ui.editing {
        match code {
            KeyCode::Char(c) if !ctrl => ui.filter.push(c),
            KeyCode::Backspace => {
                ui.filter.pop();
            }
            KeyCode::Enter => ui.editing = false,
            KeyCode::Esc => {
                ui.editing = false;
                ui.filter.clear();
            }
            _ => return TopOutcome::Nothing,
        }
        d.selected = 0;
        return TopOutcome::Redraw;
    }
    let dk = match code {
        KeyCode::Char('q') | KeyCode::Esc if d.detail.is_some() => DashKey::Back,
        KeyCode::Char('q') => return TopOutcome::Quit,
        KeyCode::Esc if !ui.filter.is_empty() => {
            ui.filter.clear();
            return TopOutcome::Redraw;
        }
        KeyCode::Esc => return TopOutcome::Quit,
        KeyCode::Char('/') => {
            ui.editing = true;
            return TopOutcome::Redraw;
        }
        KeyCode::Up | KeyCode::Char('k') => DashKey::Up,
        KeyCode::Down | KeyCode::Char('j') => DashKey::Down,
        KeyCode::PageUp => DashKey::PageUp,
        KeyCode::PageDown | KeyCode::Char(' ') => DashKey::PageDown,
        KeyCode::Home | KeyCode::Char('g') => DashKey::Top,
        KeyCode::End | KeyCode::Char('G') => DashKey::Bottom,
        KeyCode::Char('s') => DashKey::Sort,
        KeyCode::Char('+') | KeyCode::Char('=') => DashKey::Slower,
        KeyCode::Char('-') => DashKey::Faster,
        KeyCode::Enter => DashKey::Open,
        _ => return TopOutcome::Nothing,
    };
    match d.handle(dk, &ui.filter, page) {
        Some(i) => TopOutcome::Interval(i),
        None => TopOutcome::Redraw,
    }
}

/// The loop of `phyllome top` on any backend and event stream (tests use a `TestBackend`).
/// Draws once per sample and per key, never on a timer.
pub async fn run_on<B, S>(
    terminal: &mut Terminal<B>,
    mut events: S,
    collector: Collector,
    mut d: Dashboard,
    theme: Theme,
) -> eyre::Result<()>
where
    B: Backend,
    B::Error: Send + Sync + 'static,
    S: Stream<Item = io::Result<Event>> + Unpin,
{
    let (itx, irx) = watch::channel(d.interval);
    let (tx, mut rx) = mpsc::unbounded_channel::<Snapshot>();
    let sampler = task::spawn(collector, irx, move |s| tx.send(s).is_ok());
    let mut ui = TopUi::default();
    let mut dirty = true;
    let result = loop {
        if dirty {
            terminal.draw(|f| render(&d, &ui, &theme, f))?;
            dirty = false;
        }
        tokio::select! {
            ev = events.next() => match ev {
                Some(Ok(Event::Key(k))) if k.kind != KeyEventKind::Release => {
                    let size = terminal.size()?;
                    let page = dashboard::visible_rows(Rect::new(0, 0, size.width, size.height.saturating_sub(2)));
                    match key(&mut d, &mut ui, k.code, k.modifiers, page) {
                        TopOutcome::Quit => break Ok(()),
                        TopOutcome::Nothing => {}
                        TopOutcome::Redraw => dirty = true,
                        TopOutcome::Repaint => {
                            terminal.clear()?;
                            dirty = true;
                        }
                        TopOutcome::Interval(i) => {
                            let _ = itx.send(i);
                            dirty = true;
                        }
                    }
                }
                Some(Ok(Event::Resize(..))) => {
                    terminal.autoresize()?;
                    dirty = true;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => break Err(e.into()),
                None => break Ok(()),
            },
            Some(snap) = rx.recv() => {
                d.apply(snap);
                d.clamp(&ui.filter);
                dirty = true;
            }
        }
    };
    sampler.abort();
    result
}
