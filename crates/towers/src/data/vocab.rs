//! String ids to dense indices, with an out-of-vocabulary slot (TFRS/Keras `StringLookup`).
//!
//! Compact, for vocabularies of millions of ids: the keys live in one byte buffer with their end
//! offsets, and the hash table holds only row numbers (a few bytes per key beside the key itself).

use hashbrown::DefaultHashBuilder;
use hashbrown::HashTable;
use serde::{Deserialize, Serialize};
use std::hash::BuildHasher;

/// A vocabulary: index 0 is the out-of-vocabulary (OOV) slot, known keys are `1..=n` in the
/// order they were first seen. An embedding table over it therefore has `n + 1` rows.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(from = "Vec<String>", into = "Vec<String>")]
pub struct Vocabulary {
    /// Every key's bytes, one after the other.
    bytes: String,
    /// The end of key `i` (index `i + 1`) in `bytes`.
    ends: Vec<u64>,
    /// Indices (`1..=n`) by the hash of their key.
    table: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

impl std::fmt::Debug for Vocabulary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vocabulary").field("keys", &self.num_keys()).finish()
    }
}

impl PartialEq for Vocabulary {
    fn eq(&self, other: &Self) -> bool {
        self.ends == other.ends && self.bytes == other.bytes
    }
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

    fn key_at<'a>(bytes: &'a str, ends: &[u64], index: u32) -> &'a str {
        let i = index as usize - 1;
        let start = if i == 0 { 0 } else { ends[i - 1] as usize };
        &bytes[start..ends[i] as usize]
    }

    /// Adds a key if it is new and returns its index.
    pub fn insert(&mut self, key: &str) -> u32 {
        let hash = self.hasher.hash_one(key);
        let (bytes, ends) = (&self.bytes, &self.ends);
        if let Some(&i) = self.table.find(hash, |&i| Self::key_at(bytes, ends, i) == key) {
            return i;
        }
        self.bytes.push_str(key);
        self.ends.push(self.bytes.len() as u64);
        let i = self.ends.len() as u32;
        let (bytes, ends, hasher) = (&self.bytes, &self.ends, &self.hasher);
        self.table.insert_unique(hash, i, |&j| hasher.hash_one(Self::key_at(bytes, ends, j)));
        i
    }

    /// The index of a key, `None` if unknown.
    pub fn get(&self, key: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(key);
        self.table.find(hash, |&i| Self::key_at(&self.bytes, &self.ends, i) == key).copied()
    }

    /// The index of a key, [`Vocabulary::OOV`] if unknown.
    pub fn lookup(&self, key: &str) -> u32 {
        self.get(key).unwrap_or(Self::OOV)
    }

    /// The key at an index; `None` for the OOV slot or an index out of range.
    pub fn key(&self, index: u32) -> Option<&str> {
        (index >= 1 && index as usize <= self.ends.len()).then(|| Self::key_at(&self.bytes, &self.ends, index))
    }

    /// Number of known keys (without the OOV slot).
    pub fn num_keys(&self) -> usize {
        self.ends.len()
    }

    /// Number of rows an embedding table needs: known keys + the OOV slot.
    pub fn rows(&self) -> usize {
        self.ends.len() + 1
    }

    /// The known keys, in index order (index `i + 1` for the `i`-th).
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.ends.len() as u32).map(|i| Self::key_at(&self.bytes, &self.ends, i + 1))
    }
}

impl From<Vec<String>> for Vocabulary {
    fn from(keys: Vec<String>) -> Self {
        Vocabulary::from_keys(keys)
    }
}

impl From<Vocabulary> for Vec<String> {
    fn from(v: Vocabulary) -> Self {
        v.iter().map(String::from).collect()
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
        assert_eq!(v.iter().collect::<Vec<_>>(), ["b", "a", "c"]);
        // the empty string and keys that are prefixes of others are keys like any other
        let w = Vocabulary::from_keys(["ab", "a", "", "abc"]);
        assert_eq!((w.lookup("a"), w.lookup(""), w.lookup("abc"), w.key(3)), (2, 3, 4, Some("")));
    }

    #[test]
    fn many_keys_and_serde_round_trip_keeps_indices() {
        let v = Vocabulary::from_keys((0..100_000).map(|i| i.to_string()));
        assert!((0..100_000).all(|i| v.lookup(&i.to_string()) == i + 1));
        let s = serde_json::to_string(&Vocabulary::from_keys(["x", "y"])).unwrap();
        assert_eq!(s, r#"["x","y"]"#);
        let w: Vocabulary = serde_json::from_str(&s).unwrap();
        assert_eq!(w.lookup("y"), 2);
    }
}
