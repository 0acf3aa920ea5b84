//! String ids to dense indices, with an out-of-vocabulary slot (TFRS/Keras `StringLookup`).

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A vocabulary: index 0 is the out-of-vocabulary (OOV) slot, known keys are `1..=n` in the
/// order they were first seen. An embedding table over it therefore has `n + 1` rows.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(from = "Vec<String>", into = "Vec<String>")]
pub struct Vocabulary {
    keys: Vec<String>,
    index: HashMap<String, u32>,
}

impl Vocabulary {
    /// The index every unknown key maps to.
    pub const OOV: u32 = 0;

    /// Builds a vocabulary from keys in order; repeats are ignored.
    pub fn from_keys<S: AsRef<str>>(keys: impl IntoIterator<Item = S>) -> Self {
        let mut v = Vocabulary::default();
        for k in keys {
            v.insert(k.as_ref());
        }
        v
    }

    /// Adds a key if it is new and returns its index.
    pub fn insert(&mut self, key: &str) -> u32 {
        if let Some(&i) = self.index.get(key) {
            return i;
        }
        self.keys.push(key.to_string());
        let i = self.keys.len() as u32;
        self.index.insert(key.to_string(), i);
        i
    }

    /// The index of a key, `None` if unknown.
    pub fn get(&self, key: &str) -> Option<u32> {
        self.index.get(key).copied()
    }

    /// The index of a key, [`Vocabulary::OOV`] if unknown.
    pub fn lookup(&self, key: &str) -> u32 {
        self.get(key).unwrap_or(Self::OOV)
    }

    /// The key at an index; `None` for the OOV slot or an index out of range.
    pub fn key(&self, index: u32) -> Option<&str> {
        (index as usize).checked_sub(1).and_then(|i| self.keys.get(i)).map(String::as_str)
    }

    /// Number of known keys (without the OOV slot).
    pub fn num_keys(&self) -> usize {
        self.keys.len()
    }

    /// Number of rows an embedding table needs: known keys + the OOV slot.
    pub fn rows(&self) -> usize {
        self.keys.len() + 1
    }

    /// The known keys, in index order (index `i + 1` for `keys()[i]`).
    pub fn keys(&self) -> &[String] {
        &self.keys
    }
}

impl From<Vec<String>> for Vocabulary {
    fn from(keys: Vec<String>) -> Self {
        Vocabulary::from_keys(keys)
    }
}

impl From<Vocabulary> for Vec<String> {
    fn from(v: Vocabulary) -> Self {
        v.keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oov_slot_and_first_seen_order() {
        let v = Vocabulary::from_keys(["b", "a", "b", "c"]);
        assert_eq!(v.num_keys(), 3);
        assert_eq!(v.rows(), 4);
        assert_eq!(v.lookup("b"), 1);
        assert_eq!(v.lookup("a"), 2);
        assert_eq!(v.lookup("zzz"), Vocabulary::OOV);
        assert_eq!(v.get("zzz"), None);
        assert_eq!(v.key(0), None);
        assert_eq!(v.key(3), Some("c"));
        assert_eq!(v.key(4), None);
    }

    #[test]
    fn serde_round_trip_keeps_indices() {
        let v = Vocabulary::from_keys(["x", "y"]);
        let s = serde_json::to_string(&v).unwrap();
        assert_eq!(s, r#"["x","y"]"#);
        let w: Vocabulary = serde_json::from_str(&s).unwrap();
        assert_eq!(w.lookup("y"), 2);
    }
}
