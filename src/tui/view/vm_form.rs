//! The create/edit form: a label and a one-line input per field, each field's problem right
//! under it, problems of the file as a whole at the top.

use phyllome_widgets::{fit, wrap, KeyHint};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::super::state::State;
use super::super::vms::form::{FieldInput, Form};

const LABEL_W: usize = 14;

/// One screen row of the form.
enum Row {
    Text(Line<'static>),
    /// Field `i`'s input line.
    Field(usize),
}

pub fn render(state: &State, form: &Form, frame: &mut Frame, area: Rect) {
    let t = &state.theme;
    let (g, p) = (&t.glyphs, &t.palette);
    let mut title = format!(" {} ", form.title());
    if form.saving {
        title.push_str("- saving... ");
    }
    let block = g.block().title(Line::styled(title, p.title));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let w = inner.width as usize;
    let mut rows = Vec::new();
    for msg in &form.general {
        for l in wrap(&format!("{} {msg}", g.bad), w.saturating_sub(2)) {
            rows.push(Row::Text(Line::styled(format!(" {l}"), p.bad)));
        }
    }
    let indent = 2 + LABEL_W + 1;
    for (i, f) in form.fields.iter().enumerate() {
        rows.push(Row::Field(i));
        if let (Some(e), true) = (&f.error, f.touched) {
            for l in wrap(&format!("{} {e}", g.bad), w.saturating_sub(indent + 1)) {
                rows.push(Row::Text(Line::styled(
                    format!("{}{l}", " ".repeat(indent)),
                    p.bad,
                )));
            }
        }
    }
    let height = inner.height as usize;
    let focus_row = rows
        .iter()
        .position(|r| matches!(r, Row::Field(i) if *i == form.focus))
        .unwrap_or(0);
    // Keep the focused field and the first line of its problem in view.
    let offset = (focus_row + 2).saturating_sub(height);
    for (y, row) in rows.iter().skip(offset).take(height).enumerate() {
        let rect = Rect::new(inner.x, inner.y + y as u16, inner.width, 1);
        match row {
            Row::Text(line) => frame.render_widget(line.clone(), rect),
            Row::Field(i) => field_row(state, form, *i, frame, rect),
        }
    }
}

fn field_row(state: &State, form: &Form, i: usize, frame: &mut Frame, rect: Rect) {
    let t = &state.theme;
    let (g, p) = (&t.glyphs, &t.palette);
    let f = &form.fields[i];
    let focused = i == form.focus;
    let mark = if focused { g.cursor } else { " " };
    let label_style = if f.error.is_some() && f.touched {
        p.bad
    } else if focused {
        p.key
    } else {
        p.normal
    };
    let label = Line::from(vec![
        Span::styled(format!("{mark} "), p.key),
        Span::styled(format!("{:<LABEL_W$} ", f.key.label()), label_style),
    ]);
    frame.render_widget(label, rect);
    let x = rect.x + (2 + LABEL_W + 1) as u16;
    let input = Rect::new(x, rect.y, rect.width.saturating_sub(x - rect.x + 1), 1);
    match &f.input {
        FieldInput::Toggle(b) => {
            let text = if *b { "[x] yes" } else { "[ ] no" };
            let style = if focused { p.selected } else { p.normal };
            frame.render_widget(Line::styled(text, style), input);
        }
        FieldInput::Text(area) if focused && !f.locked => frame.render_widget(area.as_ref(), input),
        FieldInput::Text(_) => {
            let text = f.text();
            let line = if text.is_empty() {
                Line::styled(f.key.hint(), p.dim)
            } else if f.locked {
                Line::styled(fit(&text, input.width as usize, g.ellipsis), p.dim)
            } else {
                Line::raw(fit(&text, input.width as usize, g.ellipsis))
            };
            frame.render_widget(Paragraph::new(line), input);
        }
    }
}

/// The form's own key hints: its keys are fixed, not from the keymap (text goes into fields).
pub fn hints() -> Vec<KeyHint> {
    vec![
        KeyHint::new("tab", "next field", false),
        KeyHint::new("shift-tab", "previous", false),
        KeyHint::new("space", "toggle", false),
        KeyHint::new("enter", "save", false),
        KeyHint::new("esc", "cancel", false),
    ]
}
