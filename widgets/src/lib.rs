//! Reusable ratatui widgets for the phyllome console.
//!
//! Every widget takes a [`Glyphs`] set (Unicode or ASCII) and a [`Palette`] (colour or
//! monochrome), so a whole screen can be drawn for a serial line with no box-drawing font and
//! no colours. Meaning is always carried by text or glyphs; styles only reinforce it.

mod badge;
mod confirm;
mod glyphs;
mod help;
mod hints;
mod layout;
mod palette;
mod text;
mod tree;

pub use badge::{badge, Tone};
pub use confirm::{ConfirmDialog, ConfirmMode};
pub use glyphs::Glyphs;
pub use help::{HelpEntry, HelpPanel, HelpSection};
pub use hints::{fit_hints, KeyHint, KeyHints};
pub use layout::centered_rect;
pub use palette::Palette;
pub use text::{fit, width, wrap};
pub use tree::{GroupTree, GroupTreeState, TreeGroup, TreeMember, TreeRow};
