//! Train/test splits: seeded random, temporal, leave-last-out per user.

use super::Interactions;
use crate::rng::Rng;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// How to split interactions into a training and a test set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Split {
    /// A seeded random share of the rows is the test set.
    Random {
        /// Share of rows in the test set, in (0, 1).
        test_fraction: f64,
        /// Shuffle seed.
        seed: u64,
    },
    /// The latest share of the rows (by timestamp) is the test set.
    Temporal {
        /// Share of rows in the test set, in (0, 1).
        test_fraction: f64,
    },
    /// Rows at or after a timestamp are the test set.
    Cutoff {
        /// First timestamp of the test period.
        timestamp: i64,
    },
    /// Each user's latest interaction is the test set (users with one interaction stay in train).
    LeaveLastOut,
}

impl Split {
    /// Parses `random:0.2[:seed]`, `time:0.2`, `cutoff:TIMESTAMP` or `last`.
    pub fn parse(s: &str, default_seed: u64) -> Result<Split> {
        let bad = || {
            Error::Config(format!(
                "split '{s}': expected random:FRACTION[:SEED], time:FRACTION, cutoff:TIMESTAMP or last"
            ))
        };
        let parts: Vec<&str> = s.split(':').collect();
        let frac = |p: &str| p.parse::<f64>().ok().filter(|f| *f > 0.0 && *f < 1.0).ok_or_else(bad);
        Ok(match parts.as_slice() {
            ["random", f] => Split::Random { test_fraction: frac(f)?, seed: default_seed },
            ["random", f, seed] => Split::Random { test_fraction: frac(f)?, seed: seed.parse().map_err(|_| bad())? },
            ["time", f] => Split::Temporal { test_fraction: frac(f)? },
            ["cutoff", t] => Split::Cutoff { timestamp: t.parse().map_err(|_| bad())? },
            ["last"] => Split::LeaveLastOut,
            _ => return Err(bad()),
        })
    }

    /// Splits a table into (train, test). Temporal splits need timestamps.
    pub fn apply(&self, data: &Interactions) -> Result<(Interactions, Interactions)> {
        let n = data.len();
        let need_time =
            || data.timestamps.as_ref().ok_or_else(|| Error::Data("a temporal split needs a timestamp column".into()));
        let test: Vec<bool> = match *self {
            Split::Random { test_fraction, seed } => {
                let mut order: Vec<usize> = (0..n).collect();
                Rng::new(seed).shuffle(&mut order);
                let n_test = (n as f64 * test_fraction).round() as usize;
                let mut t = vec![false; n];
                order[..n_test].iter().for_each(|&i| t[i] = true);
                t
            }
            Split::Temporal { test_fraction } => {
                let ts = need_time()?;
                let mut order: Vec<usize> = (0..n).collect();
                order.sort_by_key(|&i| (ts[i], i));
                let n_train = n - (n as f64 * test_fraction).round() as usize;
                let mut t = vec![false; n];
                order[n_train..].iter().for_each(|&i| t[i] = true);
                t
            }
            Split::Cutoff { timestamp } => need_time()?.iter().map(|&t| t >= timestamp).collect(),
            Split::LeaveLastOut => {
                let ts = need_time()?;
                let mut last: HashMap<u32, usize> = HashMap::new();
                let mut count: HashMap<u32, usize> = HashMap::new();
                for i in 0..n {
                    let u = data.query_indices()[i];
                    *count.entry(u).or_default() += 1;
                    let e = last.entry(u).or_insert(i);
                    if (ts[i], i) >= (ts[*e], *e) {
                        *e = i;
                    }
                }
                let mut t = vec![false; n];
                last.iter().filter(|(u, _)| count[*u] > 1).for_each(|(_, &i)| t[i] = true);
                t
            }
        };
        let (tr, te): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| !test[i]);
        Ok((data.select(&tr), data.select(&te)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Interactions {
        let (q, c, t) = (["a", "a", "a", "b", "b", "c"], ["1", "2", "3", "1", "4", "5"], [30, 10, 20, 5, 50, 1]);
        let rows = (0..6).map(|i| crate::data::Row {
            query: q[i],
            candidate: c[i],
            timestamp: Some(t[i]),
            ..Default::default()
        });
        Interactions::from_rows(rows).unwrap()
    }

    #[test]
    fn random_is_seeded_and_sized() {
        let t = table();
        let (a, b) = Split::Random { test_fraction: 0.5, seed: 1 }.apply(&t).unwrap();
        assert_eq!((a.len(), b.len()), (3, 3));
        let (a2, _) = Split::Random { test_fraction: 0.5, seed: 1 }.apply(&t).unwrap();
        assert_eq!(a, a2);
    }

    #[test]
    fn temporal_and_cutoff_take_the_latest() {
        let (tr, te) = Split::Temporal { test_fraction: 1.0 / 3.0 }.apply(&table()).unwrap();
        assert_eq!(te.timestamps.unwrap(), vec![30, 50]);
        assert_eq!(tr.len(), 4);
        let (_, te) = Split::Cutoff { timestamp: 30 }.apply(&table()).unwrap();
        assert_eq!((te.candidate(0), te.candidate(1)), ("1", "4"));
    }

    #[test]
    fn leave_last_out_per_user() {
        let (tr, te) = Split::LeaveLastOut.apply(&table()).unwrap();
        assert_eq!((te.candidate(0), te.candidate(1)), ("1", "4")); // a's latest is t=30, b's t=50; c has one row
        assert_eq!(tr.len(), 4);
    }

    #[test]
    fn parse_forms() {
        assert_eq!(Split::parse("random:0.2", 9).unwrap(), Split::Random { test_fraction: 0.2, seed: 9 });
        assert_eq!(Split::parse("last", 0).unwrap(), Split::LeaveLastOut);
        assert!(Split::parse("random:1.5", 0).is_err());
        let mut no_time = table();
        no_time.timestamps = None;
        assert!(Split::Temporal { test_fraction: 0.2 }.apply(&no_time).is_err());
    }
}
