//! Key bindings: the embedded `config/keymap.toml`, a user file merged over it, and lookup
//! from crossterm key events. Hints and help are generated from here, so they never drift
//! from what the keys really do.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use phyllome_widgets::{HelpEntry, HelpSection, KeyHint};
use serde::Deserialize;

use super::action::Action;

const DEFAULT_KEYMAP: &str = include_str!("../../config/keymap.toml");

#[derive(Debug, thiserror::Error)]
pub enum KeymapError {
    #[error("Cannot read keymap {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Keymap {origin} is not valid TOML")]
    Toml {
        origin: String,
        #[source]
        source: toml::de::Error,
    },
    #[error("Keymap {origin}, binding #{index} ({name}): {message}")]
    Entry {
        origin: String,
        /// 1-based position among the `[[binding]]` entries.
        index: usize,
        /// The entry's action as written, or `?` when missing.
        name: String,
        message: String,
    },
}

/// A key with the modifiers that matter (ctrl, alt). Shift is folded into the character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Unknown key {0:?}")]
pub struct KeyParseError(String);

impl FromStr for Key {
    type Err = KeyParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || KeyParseError(s.to_string());
        let mut mods = KeyModifiers::NONE;
        let mut rest = s;
        // A lone "-" is a key, so only strip prefixes that leave something behind.
        loop {
            let lower = rest.to_ascii_lowercase();
            let (m, len) = if lower.starts_with("ctrl-") {
                (KeyModifiers::CONTROL, 5)
            } else if lower.starts_with("alt-") {
                (KeyModifiers::ALT, 4)
            } else if lower.starts_with("shift-") {
                (KeyModifiers::SHIFT, 6)
            } else {
                break;
            };
            if rest.len() == len {
                break;
            }
            mods |= m;
            rest = rest.get(len..).unwrap_or_default();
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) => KeyCode::Char(c),
            _ => match rest.to_ascii_lowercase().as_str() {
                "esc" | "escape" => KeyCode::Esc,
                "enter" | "return" => KeyCode::Enter,
                "tab" if mods.contains(KeyModifiers::SHIFT) => KeyCode::BackTab,
                "tab" => KeyCode::Tab,
                "backtab" => KeyCode::BackTab,
                "space" => KeyCode::Char(' '),
                "backspace" => KeyCode::Backspace,
                "delete" | "del" => KeyCode::Delete,
                "insert" | "ins" => KeyCode::Insert,
                "up" => KeyCode::Up,
                "down" => KeyCode::Down,
                "left" => KeyCode::Left,
                "right" => KeyCode::Right,
                "pgup" | "pageup" => KeyCode::PageUp,
                "pgdn" | "pagedown" => KeyCode::PageDown,
                "home" => KeyCode::Home,
                "end" => KeyCode::End,
                f if f.starts_with('f') => match f.get(1..).unwrap_or_default().parse::<u8>() {
                    Ok(n @ 1..=12) => KeyCode::F(n),
                    _ => return Err(err()),
                },
                _ => return Err(err()),
            },
        };
        Ok(Key::normalized(code, mods))
    }
}

impl Key {
    /// Folds shift into characters and back-tab so that `G`, `shift-g` and the event crossterm
    /// sends for shift+g all compare equal.
    fn normalized(code: KeyCode, mods: KeyModifiers) -> Key {
        let mut mods = mods & (KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT);
        let code = match code {
            KeyCode::Char(c) if mods.contains(KeyModifiers::SHIFT) => {
                mods.remove(KeyModifiers::SHIFT);
                KeyCode::Char(c.to_ascii_uppercase())
            }
            KeyCode::Char(c) if mods.contains(KeyModifiers::CONTROL) => {
                KeyCode::Char(c.to_ascii_lowercase())
            }
            KeyCode::BackTab => {
                mods.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            other => other,
        };
        Key { code, mods }
    }

    pub fn from_event(ev: &KeyEvent) -> Key {
        Key::normalized(ev.code, ev.modifiers)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mods.contains(KeyModifiers::CONTROL) {
            f.write_str("ctrl-")?;
        }
        if self.mods.contains(KeyModifiers::ALT) {
            f.write_str("alt-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::F(n) => write!(f, "F{n}"),
            KeyCode::Esc => f.write_str("esc"),
            KeyCode::Enter => f.write_str("enter"),
            KeyCode::Tab => f.write_str("tab"),
            KeyCode::BackTab => f.write_str("shift-tab"),
            KeyCode::Backspace => f.write_str("backspace"),
            KeyCode::Delete => f.write_str("delete"),
            KeyCode::Insert => f.write_str("insert"),
            KeyCode::Up => f.write_str("up"),
            KeyCode::Down => f.write_str("down"),
            KeyCode::Left => f.write_str("left"),
            KeyCode::Right => f.write_str("right"),
            KeyCode::PageUp => f.write_str("pgup"),
            KeyCode::PageDown => f.write_str("pgdn"),
            KeyCode::Home => f.write_str("home"),
            KeyCode::End => f.write_str("end"),
            other => write!(f, "{other:?}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub keys: Vec<Key>,
    pub action: Action,
    pub description: String,
    pub section: String,
    pub dangerous: bool,
    pub hint: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBinding {
    action: Action,
    keys: Vec<String>,
    description: Option<String>,
    section: Option<String>,
    #[serde(default)]
    dangerous: bool,
    hint: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    binding: Vec<toml::Table>,
}

/// A user entry: fields left out keep the default binding's values.
#[derive(Debug, Clone)]
struct Partial {
    keys: Vec<Key>,
    action: Action,
    description: Option<String>,
    section: Option<String>,
    dangerous: bool,
    hint: Option<bool>,
}

fn parse(text: &str, origin: &str) -> Result<Vec<Partial>, KeymapError> {
    let file: RawFile = toml::from_str(text).map_err(|source| KeymapError::Toml {
        origin: origin.to_string(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, table) in file.binding.into_iter().enumerate() {
        let name = match table.get("action") {
            Some(toml::Value::String(s)) => s.clone(),
            _ => "?".to_string(),
        };
        let entry_err = |message: String| KeymapError::Entry {
            origin: origin.to_string(),
            index: i + 1,
            name: name.clone(),
            message,
        };
        let raw: RawBinding = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| entry_err(e.message().trim().to_string()))?;
        let keys = raw
            .keys
            .iter()
            .map(|k| k.parse::<Key>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| entry_err(e.to_string()))?;
        out.push(Partial {
            keys,
            dangerous: raw.dangerous || raw.action.is_dangerous(),
            action: raw.action,
            description: raw.description,
            section: raw.section,
            hint: raw.hint,
        });
    }
    Ok(out)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keymap {
    bindings: Vec<Binding>,
}

impl Partial {
    /// A binding with the defaults for whatever the entry leaves out.
    fn into_binding(self) -> Binding {
        Binding {
            description: self.description.unwrap_or_else(|| self.action.name()),
            section: self.section.unwrap_or_else(|| "Other".into()),
            keys: self.keys,
            action: self.action,
            dangerous: self.dangerous,
            hint: self.hint.unwrap_or(false),
        }
    }
}

impl Keymap {
    /// The embedded defaults only.
    pub fn defaults() -> Result<Keymap, KeymapError> {
        let bindings = parse(DEFAULT_KEYMAP, "(built-in)")?
            .into_iter()
            .map(Partial::into_binding)
            .collect();
        Ok(Keymap { bindings })
    }

    /// Defaults, then `user` (when given) merged over them; dangerous bindings are dropped in
    /// read-only mode.
    pub fn load(user: Option<&Path>, read_only: bool) -> Result<Keymap, KeymapError> {
        let mut map = Keymap::defaults()?;
        if let Some(path) = user {
            let text = std::fs::read_to_string(path).map_err(|source| KeymapError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            map.merge_str(&text, &path.display().to_string())?;
        }
        if read_only {
            map.drop_dangerous();
        }
        Ok(map)
    }

    /// Merges a user keymap given as text; `origin` names it in errors.
    pub fn merge_str(&mut self, text: &str, origin: &str) -> Result<(), KeymapError> {
        for p in parse(text, origin)? {
            // A key the user binds belongs to that action alone.
            for b in &mut self.bindings {
                b.keys.retain(|k| !p.keys.contains(k));
            }
            match self.bindings.iter_mut().find(|b| b.action == p.action) {
                Some(b) => {
                    b.keys = p.keys;
                    b.dangerous |= p.dangerous;
                    if let Some(d) = p.description {
                        b.description = d;
                    }
                    if let Some(s) = p.section {
                        b.section = s;
                    }
                    if let Some(h) = p.hint {
                        b.hint = h;
                    }
                }
                None => self.bindings.push(p.into_binding()),
            }
        }
        Ok(())
    }

    /// Read-only mode: drops dangerous bindings and every other one that changes a VM.
    pub fn drop_dangerous(&mut self) {
        self.bindings
            .retain(|b| !b.dangerous && !b.action.changes_host());
    }

    pub fn bindings(&self) -> &[Binding] {
        &self.bindings
    }

    /// The first key bound to `action`, as the hint bar writes it (`k`, `enter`).
    pub fn first_key(&self, action: Action) -> Option<String> {
        self.bindings
            .iter()
            .find(|b| b.action == action)
            .and_then(|b| b.keys.first())
            .map(|k| k.to_string())
    }

    pub fn action_for(&self, ev: &KeyEvent) -> Option<Action> {
        if ev.kind == KeyEventKind::Release {
            return None;
        }
        let key = Key::from_event(ev);
        self.bindings
            .iter()
            .find(|b| b.keys.contains(&key))
            .map(|b| b.action.clone())
    }

    /// Like [`Keymap::action_for`], but among the bindings of the key the first whose action
    /// passes `prefer` wins; the first binding otherwise.
    pub fn action_for_in(&self, ev: &KeyEvent, prefer: impl Fn(&Action) -> bool) -> Option<Action> {
        if ev.kind == KeyEventKind::Release {
            return None;
        }
        let key = Key::from_event(ev);
        let mut bound = self.bindings.iter().filter(|b| b.keys.contains(&key));
        let first = bound.next()?;
        let chosen = std::iter::once(first)
            .chain(bound)
            .find(|b| prefer(&b.action))
            .unwrap_or(first);
        Some(chosen.action.clone())
    }

    /// Bottom-bar hints in file order, with help last so the bar always shows the way to it.
    pub fn hints(&self) -> Vec<KeyHint> {
        self.hints_where(|_| true)
    }

    /// Hints of the bindings whose action passes `keep`, in file order, help last. Each
    /// screen shows its own: VM actions on the VM screens, view switches elsewhere.
    pub fn hints_where(&self, keep: impl Fn(&Action) -> bool) -> Vec<KeyHint> {
        let visible = |b: &&Binding| b.hint && !b.keys.is_empty() && keep(&b.action);
        let hint = |b: &Binding| KeyHint::new(b.keys[0].to_string(), &b.description, b.dangerous);
        let mut out: Vec<KeyHint> = self
            .bindings
            .iter()
            .filter(visible)
            .filter(|b| b.action != Action::Help)
            .map(hint)
            .collect();
        out.extend(
            self.bindings
                .iter()
                .filter(visible)
                .filter(|b| b.action == Action::Help)
                .map(hint),
        );
        out
    }

    /// Bindings grouped by section, sections in order of first appearance.
    pub fn help(&self) -> Vec<HelpSection> {
        self.help_where(|_| true)
    }

    /// [`Keymap::help`] of the bindings whose action passes `keep`.
    pub fn help_where(&self, keep: impl Fn(&Action) -> bool) -> Vec<HelpSection> {
        let mut sections: Vec<HelpSection> = Vec::new();
        for b in self
            .bindings
            .iter()
            .filter(|b| !b.keys.is_empty() && keep(&b.action))
        {
            let entry = HelpEntry {
                keys: b
                    .keys
                    .iter()
                    .map(Key::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                description: b.description.clone(),
                dangerous: b.dangerous,
            };
            match sections.iter_mut().find(|s| s.title == b.section) {
                Some(s) => s.entries.push(entry),
                None => sections.push(HelpSection {
                    title: b.section.clone(),
                    entries: vec![entry],
                }),
            }
        }
        sections
    }
}

#[cfg(test)]
mod tests;
