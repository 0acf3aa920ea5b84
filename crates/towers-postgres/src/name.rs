//! Validated SQL identifiers: the only names that ever enter SQL text.

use crate::{Error, Result};
use std::fmt;

/// Longest accepted name: `NAME_v` and a version number must stay within PostgreSQL's 63 bytes.
pub const MAX_NAME: usize = 40;

/// A catalogue (view) name: a lowercase ASCII letter or `_`, then letters, digits or `_`, at
/// most 40 bytes, and not a name of PostgreSQL's (`pg_…`) or towers' own tables.
/// Anything else is refused, so a name can be written into SQL (always double-quoted) without
/// any chance of injection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct TableName(String);

impl TableName {
    /// Checks a name.
    pub fn new(name: &str) -> Result<Self> {
        let bad = |why: &str| Err(Error::config("table name", format!("'{}': {why}", cut(name))));
        let mut chars = name.chars();
        match chars.next() {
            None => return bad("empty"),
            Some(c) if !(c.is_ascii_lowercase() || c == '_') => return bad("must start with a-z or _"),
            _ => {}
        }
        if !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
            return bad("only a-z, 0-9 and _ are allowed");
        }
        if name.len() > MAX_NAME {
            return bad(&format!("longer than {MAX_NAME} characters"));
        }
        if name.starts_with("pg_") || name == crate::CATALOG_TABLE {
            return bad("reserved");
        }
        if name.rsplit_once("_v").is_some_and(|(_, v)| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())) {
            return bad("a name ending in _v and digits is kept for the versions of a catalogue");
        }
        Ok(TableName(name.to_string()))
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The quoted identifier of the view readers query.
    pub(crate) fn view(&self) -> String {
        format!("\"{}\"", self.0)
    }

    /// The table of a version: `NAME_vN`, unquoted.
    pub(crate) fn version_table(&self, version: i64) -> String {
        format!("{}_v{version}", self.0)
    }

    /// The version of a table named `NAME_vN`, if it is one.
    pub(crate) fn version_of(&self, table: &str) -> Option<i64> {
        let rest = table.strip_prefix(&self.0)?.strip_prefix("_v")?;
        if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        rest.parse().ok()
    }
}

impl Default for TableName {
    fn default() -> Self {
        TableName("towers_items".into())
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A value cut to a readable length for a message.
fn cut(s: &str) -> String {
    if s.chars().count() <= 60 { s.to_string() } else { format!("{}…", s.chars().take(60).collect::<String>()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_inject_are_refused() {
        for bad in [
            "",
            "Items",
            "1items",
            "items; DROP TABLE x",
            "items\"",
            "it'ems",
            "items--",
            "a.b",
            "pg_class",
            "towers_catalog",
            "naïve",
            "items_v2",
            &"x".repeat(41),
        ] {
            assert!(TableName::new(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["towers_items", "_x", "items2", &"x".repeat(40)] {
            assert_eq!(TableName::new(good).unwrap().as_str(), good);
        }
    }

    #[test]
    fn version_tables_round_trip() {
        let t = TableName::new("items").unwrap();
        assert_eq!(t.version_table(12), "items_v12");
        assert_eq!(t.version_of("items_v12"), Some(12));
        for other in ["items", "items_v", "items_vx", "items_v1_v2", "items2_v1", "other_v1"] {
            assert_eq!(t.version_of(other), None, "{other}");
        }
    }
}
