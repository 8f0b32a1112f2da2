//! The only place state changes: `update(&mut State, Action) -> Vec<Effect>`. No I/O here;
//! whatever needs the machine is returned as an [`Effect`] for the runtime.

use phyllome_widgets::{GroupTree, HelpPanel};

use super::action::Action;
use super::modal::{modal, Modal};
use super::state::{Load, State, View};
use super::view::{self, layout};
use crate::vmm::worker::VmRequest;

pub mod dashboard;
pub mod form;
pub mod gpus;
pub mod host;
pub mod serial;
pub mod vms;

pub use form::SaveRequest;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// List the VMs again in the background.
    RefreshVms,
    /// A VM action for the background worker.
    Vm(VmRequest),
    /// Read one VM's definition and `vm.info` for the detail view.
    LoadVmDetail(String),
    /// Read one VM's definition to edit it.
    LoadVmForEdit(String),
    /// Write a definition (create, or field edits that keep comments).
    SaveVm(SaveRequest),
    /// Nothing on screen changed: do not draw (a serial line pays for every frame).
    NoRedraw,
    /// Read the host again in the background; the result comes back as an action.
    ReloadInventory,
    /// Clear and repaint every cell.
    Redraw,
    /// Ask the terminal its size (serial lines never send SIGWINCH).
    QueryTerminalSize,
    /// Background work of the GPU screen (review, apply with live steps, boot config).
    Gpu(super::gpus::GpuJob),
    /// Open the serial pane's line: the VM's console, or its log.
    SerialOpen {
        vm: String,
        mode: super::serial::PaneMode,
    },
    /// Keys for the guest.
    SerialSend(Vec<u8>),
    /// Close the serial pane's line.
    SerialClose,
    /// Read the host's status page in the background (the Host view).
    LoadHostStatus,
    /// Start the dashboard's sampling task (once; it then runs until the console quits).
    StartMonitor,
    /// Tell the sampling task its new interval.
    MonitorInterval(std::time::Duration),
    /// List the VMs a power-off or reboot would stop.
    PowerPlan,
    /// Stop every running VM (logind asked first whether it would do `action`).
    PowerStop(crate::ops::power::PowerAction),
    /// Every VM is down: give the terminal back and ask logind.
    PowerCall(crate::ops::power::PowerAction),
    Quit,
}

pub fn update(state: &mut State, action: Action) -> Vec<Effect> {
    let effects = match action {
        // The host is going down: leaving now would stop half of it.
        Action::Quit if super::power::under_way(state) => Vec::new(),
        Action::Quit => quit(state),
        Action::Resize { cols, rows } => {
            state.cols = cols;
            state.rows = rows;
            if let Some(p) = state.serial.as_mut() {
                p.resize(cols, rows);
            }
            Vec::new()
        }
        Action::InventoryLoaded(loaded) => {
            state.inventory = Some(loaded.inventory);
            state.host_name = loaded.host_name.or(state.host_name.take());
            state.load = Load::Loaded;
            reload_if_queued(state)
        }
        Action::InventoryFailed(e) => {
            state.load = Load::Failed(e);
            reload_if_queued(state)
        }
        Action::Refresh => {
            let mut out = refresh(state);
            if vms::on_vm_screen(state) {
                out.extend(vms::refresh(state));
            }
            if state.view == View::Host {
                out.extend(host::refresh(state));
            }
            out
        }
        Action::Redraw => vec![Effect::Redraw, Effect::QueryTerminalSize],
        Action::VmTick(now) => {
            let effects = vms::tick(state, now);
            host::tick(state, effects)
        }
        Action::VmGraceStarted { name, at } => vms::grace_started(state, &name, at),
        Action::VmsLoaded(result) => vms::loaded(state, result),
        Action::VmDone { op, name, result } => vms::done(state, &op, name, result),
        Action::VmDetailLoaded(detail) => vms::detail_loaded(state, *detail),
        Action::VmDisksInspected(disks) => vms::disks_inspected(state, *disks),
        Action::VmEditLoaded(loaded) => form::edit_loaded(state, *loaded),
        Action::VmSaved { name, result } => form::saved(state, name, result),
        Action::VmSaveWarnings { name, warnings } => form::warned(state, name, warnings),
        Action::VmSaveRefused {
            name,
            problems,
            forceable,
        } => form::refused(state, name, problems, forceable),
        Action::Gpu(msg) => gpus::message(state, *msg),
        Action::MonitorSample(sample) => dashboard::sample(state, *sample),
        Action::HostStatusLoaded(result) => host::loaded(state, *result),
        a @ (Action::PowerPlanned(_)
        | Action::PowerProgress(_)
        | Action::PowerStopped(_)
        | Action::PowerFailed { .. }) => super::power::message(state, a),
        a @ (Action::SerialAttached { .. }
        | Action::SerialOutput { .. }
        | Action::SerialClosed { .. }) => serial::message(state, a),
        other => match modal(state) {
            Some(Modal::Error) => vms::error_popup(state, other),
            Some(Modal::Power) => super::power::input(state, other),
            Some(Modal::Serial) => serial::input(state, other),
            Some(Modal::Confirm) => vms::confirm(state, other),
            Some(Modal::GpuConfirm | Modal::Gpu) => gpus::overlay(state, other),
            Some(Modal::Form) => form::input(state, other),
            Some(Modal::Filter) => filter_input(state, other),
            Some(Modal::Help) => help(state, other),
            None => navigate(state, other),
        },
    };
    clamp(state);
    effects
}

fn quit(state: &mut State) -> Vec<Effect> {
    state.quit = true;
    vec![Effect::Quit]
}

fn refresh(state: &mut State) -> Vec<Effect> {
    // One read at a time; a refresh asked for meanwhile runs once, after it.
    if state.load == Load::Loading {
        state.reload_queued = true;
        return Vec::new();
    }
    state.load = Load::Loading;
    vec![Effect::ReloadInventory]
}

fn reload_if_queued(state: &mut State) -> Vec<Effect> {
    if std::mem::take(&mut state.reload_queued) {
        state.load = Load::Loading;
        vec![Effect::ReloadInventory]
    } else {
        Vec::new()
    }
}

fn filter_input(state: &mut State, action: Action) -> Vec<Effect> {
    match action {
        Action::FilterInput(c) => state.filter.text.push(c),
        Action::FilterBackspace => {
            state.filter.text.pop();
        }
        Action::FilterAccept => state.filter.editing = false,
        Action::Back => {
            state.filter.editing = false;
            state.filter.text.clear();
        }
        _ => {}
    }
    // The rows changed under the cursor: start from the top of what is left.
    state.groups.select_first(group_rows(state));
    state.gpu_selected = 0;
    state.vms.selected = 0;
    state.dash.selected = 0;
    Vec::new()
}

fn help(state: &mut State, action: Action) -> Vec<Effect> {
    let total = HelpPanel::line_count(&state.help_sections);
    let page = (state.rows as usize).saturating_sub(6).max(1);
    let max = total.saturating_sub(page);
    let Some(scroll) = state.help.as_mut() else {
        return Vec::new();
    };
    match action {
        Action::Back | Action::Help => state.help = None,
        Action::Up => *scroll = scroll.saturating_sub(1),
        Action::Down => *scroll = (*scroll + 1).min(max),
        Action::PageUp => *scroll = scroll.saturating_sub(page),
        Action::PageDown => *scroll = (*scroll + page).min(max),
        Action::Top => *scroll = 0,
        Action::Bottom => *scroll = max,
        _ => {}
    }
    Vec::new()
}

fn navigate(state: &mut State, action: Action) -> Vec<Effect> {
    let before = state.view;
    match action {
        Action::Back => {
            if state.dash.detail.is_some() && state.view == View::Dashboard {
                state.dash.detail = None;
            } else if state.vms.detail_of.is_some() && state.view == View::Vms {
                state.vms.detail_of = None;
                state.vms.detail = None;
            } else if !state.filter.text.is_empty() {
                state.filter.text.clear();
            } else if state.view != View::Overview && !state.top {
                state.view = View::Overview;
            } else {
                return quit(state);
            }
        }
        Action::Help => state.help = Some(0),
        Action::HostPower if !state.top => return super::power::open(state),
        // `phyllome top` is the dashboard alone.
        a if state.top && a.switches_view() => {}
        Action::NextView => state.view = state.view.next(),
        Action::PrevView => state.view = state.view.prev(),
        Action::ViewOverview => state.view = View::Overview,
        Action::ViewGroups => state.view = View::Groups,
        Action::ViewGpus => state.view = View::Gpus,
        Action::ViewKvm => state.view = View::Kvm,
        Action::ViewVms => state.view = View::Vms,
        Action::ViewDashboard => state.view = View::Dashboard,
        Action::ViewHost => state.view = View::Host,
        Action::Filter => {
            let vm_list = state.view == View::Vms && state.vms.detail_of.is_none();
            let dash_list = state.view == View::Dashboard && state.dash.detail.is_none();
            if matches!(state.view, View::Groups | View::Gpus) || vm_list || dash_list {
                state.filter.editing = true;
            }
        }
        a if a.is_vm_action() && state.view == View::Vms => return vms::navigate(state, a),
        a if a.is_gpu_action() && state.view == View::Gpus => return gpus::navigate(state, a),
        a if state.view == View::Dashboard && dashboard::handles(&a) => {
            return dashboard::navigate(state, &a)
        }
        Action::Up
        | Action::Down
        | Action::PageUp
        | Action::PageDown
        | Action::Top
        | Action::Bottom => move_cursor(state, &action),
        _ => {}
    }
    // Arriving on the VM list shows fresh rows.
    if state.view == View::Vms && before != View::Vms {
        return vms::refresh(state);
    }
    if state.view == View::Dashboard && before != View::Dashboard {
        return dashboard::opened(state);
    }
    if state.view == View::Host && before != View::Host {
        return host::refresh(state);
    }
    Vec::new()
}

fn group_rows(state: &State) -> usize {
    GroupTree::row_count(&view::groups::tree(state).groups)
}

fn gpu_count(state: &State) -> usize {
    state
        .inventory
        .as_ref()
        .map_or(0, |inv| super::gpus::visible(inv, &state.filter.text).len())
}

/// Rows visible in the body of a text view.
fn body_rows(state: &State) -> usize {
    let chrome = layout::chrome(layout::full(state.cols, state.rows));
    layout::inner_height(chrome.body)
}

fn text_lines(state: &State) -> usize {
    let width = state.cols.saturating_sub(2) as usize;
    match (&state.inventory, state.view) {
        (Some(inv), View::Overview) => view::overview::lines(state, inv, width).len(),
        (Some(inv), View::Kvm) => view::kvm::lines(state, inv, width).len(),
        _ => 0,
    }
}

fn move_cursor(state: &mut State, action: &Action) {
    match state.view {
        View::Vms => {
            let page = body_rows(state).saturating_sub(3).max(1);
            vms::move_cursor(state, action, page);
        }
        View::Groups => {
            let len = group_rows(state);
            let g = &mut state.groups;
            match action {
                Action::Up => g.select_prev(len),
                Action::Down => g.select_next(len),
                Action::PageUp => g.page_up(len),
                Action::PageDown => g.page_down(len),
                Action::Top => g.select_first(len),
                _ => g.select_last(len),
            }
        }
        View::Gpus => {
            let last = gpu_count(state).saturating_sub(1);
            let s = &mut state.gpu_selected;
            *s = match action {
                Action::Up | Action::PageUp => s.saturating_sub(1),
                Action::Down | Action::PageDown => (*s + 1).min(last),
                Action::Top => 0,
                _ => last,
            };
        }
        // The dashboard's keys go to `dashboard::navigate` before this.
        View::Dashboard => {}
        View::Host => host::move_cursor(state, action),
        View::Overview | View::Kvm => {
            let page = body_rows(state).max(1);
            let max = text_lines(state).saturating_sub(page);
            let scroll = if state.view == View::Overview {
                &mut state.overview_scroll
            } else {
                &mut state.kvm_scroll
            };
            *scroll = match action {
                Action::Up => scroll.saturating_sub(1),
                Action::Down => (*scroll + 1).min(max),
                Action::PageUp => scroll.saturating_sub(page.saturating_sub(1).max(1)),
                Action::PageDown => (*scroll + page.saturating_sub(1).max(1)).min(max),
                Action::Top => 0,
                _ => max,
            };
        }
    }
}

/// Keeps cursors and scroll positions valid after the data or the screen size changed.
fn clamp(state: &mut State) {
    let chrome = layout::chrome(layout::full(state.cols, state.rows));
    let (tree, _) = layout::groups(chrome.body);
    let len = group_rows(state);
    state.groups.set_height(layout::inner_height(tree), len);
    state.gpu_selected = state.gpu_selected.min(gpu_count(state).saturating_sub(1));
    let vm_rows = state.vms.visible(&state.filter.text).len();
    state.vms.selected = state.vms.selected.min(vm_rows.saturating_sub(1));
    state.dash.clamp(&state.filter.text);
    host::clamp(state);
    if state.vms.detail_of.is_some() {
        let width = state.cols.saturating_sub(2) as usize;
        let lines = view::vm_detail::lines(state, width).len();
        let max = lines.saturating_sub(body_rows(state));
        state.vms.detail_scroll = state.vms.detail_scroll.min(max);
    }
}

#[cfg(test)]
mod tests;
