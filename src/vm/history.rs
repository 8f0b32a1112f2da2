//! What changed between two versions of a definition, in one line, and UTC timestamps.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use toml::{Table, Value};

/// One saved version of a definition.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Version {
    pub number: u32,
    /// When it was saved (the history file's modification time), as seconds since 1970.
    pub saved_unix: u64,
    /// Whether the definition in use now has exactly this text.
    pub current: bool,
    /// What changed from the version before it, e.g. `memory.size 8G → 16G; +vfio`.
    pub summary: String,
}

/// Leaf values by dotted key; lists are compared as a whole, by their key.
fn flatten(prefix: &str, t: &Table, out: &mut BTreeMap<String, String>) {
    for (k, v) in t {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Table(inner) => flatten(&key, inner, out),
            Value::String(s) => {
                out.insert(key, s.clone());
            }
            other => {
                out.insert(key, other.to_string());
            }
        }
    }
}

/// A short description of how `new` differs from `old` (`None` for the first version).
pub fn summary(old: Option<&str>, new: &str) -> String {
    let Some(old) = old else {
        return "created".into();
    };
    if old == new {
        return "no change".into();
    }
    let (Ok(a), Ok(b)) = (old.parse::<Table>(), new.parse::<Table>()) else {
        return "text changed (not valid TOML)".into();
    };
    let (mut fa, mut fb) = (BTreeMap::new(), BTreeMap::new());
    flatten("", &a, &mut fa);
    flatten("", &b, &mut fb);
    let mut parts = Vec::new();
    for (k, v) in &fb {
        match fa.get(k) {
            None => parts.push(format!("+{k}")),
            Some(old) if old != v => {
                if v.len() + old.len() <= 40 && !v.contains('\n') {
                    parts.push(format!("{k} {old} → {v}"));
                } else {
                    parts.push(format!("{k} changed"));
                }
            }
            Some(_) => {}
        }
    }
    parts.extend(
        fa.keys()
            .filter(|k| !fb.contains_key(*k))
            .map(|k| format!("-{k}")),
    );
    match parts.len() {
        0 => "comments or layout only".into(),
        n if n > 3 => format!("{}; and {} more", parts[..3].join("; "), n - 3),
        _ => parts.join("; "),
    }
}

pub fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_dates() {}

    #[test]
    fn summarises_changes() {
        let a = "[memory]\nsize = \"8G\"\n[cpus]\nboot = 4\n";
        let b = "# hi\n[memory]\nsize = \"16G\"\n[cpus]\nboot = 4\nkvm_hyperv = true\n";
        assert_eq!(summary(None, a), "created");
        assert_eq!(
            summary(Some(a), b),
            "+cpus.kvm_hyperv; memory.size 8G → 16G"
        );
        assert_eq!(
            summary(Some(a), &format!("# c\n{a}")),
            "comments or layout only"
        );
        assert_eq!(
            summary(Some(b), a),
            "memory.size 16G → 8G; -cpus.kvm_hyperv"
        );
    }
}
