//! The dashboard view of the console: samples from the sampling task, and its keys (cursor,
//! sort, interval, the charts of one VM). The figures and their handlers live in
//! [`crate::monitor::dashboard`].

use crate::monitor::dashboard::DashKey;
use crate::tui::action::{Action, MonitorSample};
use crate::tui::state::{State, View};
use crate::tui::view::{dashboard as dash_view, layout};

use super::Effect;

/// A sample arrived. Off screen it only feeds the history: nothing to draw, and on a serial
/// line every frame costs.
pub fn sample(state: &mut State, sample: MonitorSample) -> Vec<Effect> {
    state.dash.apply(sample.0);
    state.dash.clamp(&state.filter.text);
    if state.view == View::Dashboard && state.help.is_none() {
        Vec::new()
    } else {
        vec![Effect::NoRedraw]
    }
}

/// The view was opened: start sampling the first time.
pub fn opened(state: &mut State) -> Vec<Effect> {
    if state.monitor_started {
        return Vec::new();
    }
    state.monitor_started = true;
    vec![Effect::StartMonitor]
}

/// Keys the dashboard takes over from the other views.
pub fn handles(action: &Action) -> bool {
    action.is_dashboard_action()
        || matches!(
            action,
            Action::Open
                | Action::Up
                | Action::Down
                | Action::PageUp
                | Action::PageDown
                | Action::Top
                | Action::Bottom
        )
}

pub fn navigate(state: &mut State, action: &Action) -> Vec<Effect> {
    let key = match action {
        Action::Up => DashKey::Up,
        Action::Down => DashKey::Down,
        Action::PageUp => DashKey::PageUp,
        Action::PageDown => DashKey::PageDown,
        Action::Top => DashKey::Top,
        Action::Bottom => DashKey::Bottom,
        Action::Sort => DashKey::Sort,
        Action::Slower => DashKey::Slower,
        Action::Faster => DashKey::Faster,
        Action::Open => DashKey::Open,
        _ => return Vec::new(),
    };
    // The charts have no cursor and no sort: only the interval keys mean something there.
    if state.dash.detail.is_some() && !matches!(key, DashKey::Slower | DashKey::Faster) {
        return Vec::new();
    }
    let page = dash_view::visible_rows(body(state));
    match state.dash.handle(key, &state.filter.text, page) {
        Some(interval) => vec![Effect::MonitorInterval(interval)],
        None => Vec::new(),
    }
}

/// Where the dashboard is drawn.
pub fn body(state: &State) -> ratatui::layout::Rect {
    layout::chrome(layout::full(state.cols, state.rows)).body
}
