//! Field edits of a definition, as data: the form produces them, `update` validates them by
//! applying them to a copy of the document, and the runtime applies the same edits with
//! `Store::edit`, so a saved edit changes only those keys and keeps the file's comments.

use toml_edit::{value, DocumentMut, Item, Table};

use crate::vm::doc::{self, DocError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scalar {
    Str(String),
    Int(i64),
    Bool(bool),
}

impl Scalar {
    fn item(&self) -> Item {
        match self {
            Scalar::Str(s) => value(s.as_str()),
            Scalar::Int(i) => value(*i),
            Scalar::Bool(b) => value(*b),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditValue {
    Set(Scalar),
    Remove,
    /// A list of tables (`[[disks]]`): the whole list is replaced.
    Tables(Vec<Vec<(String, Scalar)>>),
}

/// Set (or remove) the dotted `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub path: String,
    pub value: EditValue,
}

impl Edit {
    pub fn set(path: &str, v: Scalar) -> Self {
        Edit {
            path: path.to_string(),
            value: EditValue::Set(v),
        }
    }

    pub fn remove(path: &str) -> Self {
        Edit {
            path: path.to_string(),
            value: EditValue::Remove,
        }
    }
}

/// Applies `edits` in order.
pub fn apply(doc: &mut DocumentMut, edits: &[Edit]) -> Result<(), DocError> {
    for e in edits {
        match &e.value {
            EditValue::Set(v) => doc::set(doc, &e.path, v.item())?,
            EditValue::Remove => doc::remove(doc, &e.path),
            EditValue::Tables(rows) if rows.is_empty() => doc::remove(doc, &e.path),
            EditValue::Tables(rows) => {
                let tables = rows
                    .iter()
                    .map(|row| {
                        let mut t = Table::new();
                        for (k, v) in row {
                            t[k.as_str()] = v.item();
                        }
                        t
                    })
                    .collect();
                doc::set(doc, &e.path, doc::tables(tables))?;
            }
        }
    }
    Ok(())
}

/// `base` (a definition's text, or empty for a new one) with `edits` applied.
pub fn apply_to_text(base: &str, edits: &[Edit]) -> Result<String, DocError> {
    let mut doc = doc::parse(base)?;
    apply(&mut doc, edits)?;
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_keep_comments_and_replace_lists() {
        let base = "# mine\n[cpus]\nboot = 2 # two\n\n[[disks]]\npath = \"/a\"\n";
        let edits = vec![
            Edit::set("cpus.boot", Scalar::Int(4)),
            Edit {
                path: "disks".into(),
                value: EditValue::Tables(vec![vec![("path".into(), Scalar::Str("/b".into()))]]),
            },
            Edit::remove("boot.kernel"),
        ];
        let text = apply_to_text(base, &edits).unwrap();
        assert!(text.contains("# mine"), "{text}");
        assert!(text.contains("boot = 4 # two"), "{text}");
        assert!(
            text.contains("path = \"/b\"") && !text.contains("/a"),
            "{text}"
        );
    }
}
