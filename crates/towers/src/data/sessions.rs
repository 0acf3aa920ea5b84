//! Sequences of items: shopping sessions and user histories, in click order.
//!
//! Readers for the session formats of the session-based recommendation literature: one
//! session per line (`../shared/data/retailrocket-cotrec`, `diginetica-dynamicrec`),
//! GRU4Rec's `SessionId<TAB>ItemId<TAB>Time` table, interaction tables turned into per-user
//! histories, and the raw RetailRocket `events.csv` with GRU4Rec's published preprocessing.

use super::text::{csv_reader, read_text, read_text_share};
use super::{InputFormat, Share};
use super::{Interactions, Seen, Vocabulary};
use crate::{Error, Result};
use std::collections::HashMap;
use std::path::Path;

/// Item sequences in order, each optionally with the id of its session or user.
///
/// ```no_run
/// # fn main() -> towers::Result<()> {
/// use towers::data::Sessions;
/// use towers::model::SequenceConfig;
/// use towers::{ModelSpec, Trainer};
/// let sessions = Sessions::read_lines("train_sessions.txt")?; // one session of item ids a line
/// let model = Trainer::new(ModelSpec::Sequential(SequenceConfig::default())).fit(&sessions)?;
/// # let _ = model; Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sessions {
    /// The item ids of each sequence, oldest first.
    pub items: Vec<Vec<String>>,
    /// The session (or user) id of each sequence, where the format has one.
    pub ids: Option<Vec<String>>,
}

/// `s`, or an error when it holds no sequence.
fn non_empty(path: &Path, s: Sessions, what: &str) -> Result<Sessions> {
    match s.is_empty() {
        true => Err(Error::parse(path, None, format!("empty file: no {what}"))),
        false => Ok(s),
    }
}

impl Sessions {
    /// Number of sequences.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// One session per line, item ids separated by spaces or commas. An empty line is an error
    /// (an empty session), naming the line.
    pub fn read_lines(path: impl AsRef<Path>) -> Result<Sessions> {
        let path = path.as_ref();
        Self::parse_lines(path, &read_text(path)?, 0).and_then(|s| non_empty(path, s, "sessions"))
    }

    /// [`Sessions::read_lines`] of `text`, the lines after the first `before` of `path`.
    fn parse_lines(path: &Path, text: &str, before: u64) -> Result<Sessions> {
        let mut items = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let s: Vec<String> =
                line.split([' ', ',', '\t']).map(str::trim).filter(|t| !t.is_empty()).map(String::from).collect();
            if s.is_empty() {
                return Err(Error::parse(path, Some(before + i as u64 + 1), "empty session"));
            }
            items.push(s);
        }
        Ok(Sessions { items, ids: None })
    }

    /// The `examples` format of `../shared/data/ml-100k-splits/seq-*`: per line
    /// `query_id<TAB>space-separated context ids (0 = padding)<TAB>target id`, read as the
    /// sequence context + target (padding dropped), so that the target is the last item.
    pub fn read_examples(path: impl AsRef<Path>) -> Result<Sessions> {
        let path = path.as_ref();
        Self::parse_examples(path, &read_text(path)?, 0).and_then(|s| non_empty(path, s, "examples"))
    }

    /// [`Sessions::read_examples`] of `text`, the lines after the first `before` of `path`.
    fn parse_examples(path: &Path, text: &str, before: u64) -> Result<Sessions> {
        let (mut items, mut ids) = (Vec::new(), Vec::new());
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let line_no = Some(before + i as u64 + 1);
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() != 3 {
                return Err(Error::parse(
                    path,
                    line_no,
                    format!("expected 3 tab-separated fields (query, context, target), found {}", f.len()),
                ));
            }
            let mut s: Vec<String> = f[1].split_whitespace().filter(|t| *t != "0").map(String::from).collect();
            let target = f[2].trim();
            if target.is_empty() || target == "0" {
                return Err(Error::parse(path, line_no, "field 'target' is empty or padding"));
            }
            s.push(target.to_string());
            items.push(s);
            ids.push(f[0].trim().to_string());
        }
        Ok(Sessions { items, ids: Some(ids) })
    }

    /// One rank's share of a sessions or examples file, for distributed training: the lines
    /// that start in its part of the file's bytes (see [`Share`]); errors name the line in the
    /// whole file. Other formats cannot be split by lines and are refused.
    pub fn read_share(path: impl AsRef<Path>, format: InputFormat, share: Share) -> Result<Sessions> {
        let path = path.as_ref();
        let parse = match format {
            InputFormat::Sessions => Self::parse_lines,
            InputFormat::Examples => Self::parse_examples,
            other => {
                return Err(Error::Config(format!(
                    "{}: a {other:?} file cannot be split between ranks by lines: give a sessions or examples file",
                    path.display()
                )));
            }
        };
        let (text, before) = read_text_share(path, share)?;
        parse(path, &text, before)
    }

    /// GRU4Rec's format: a tab-separated table whose header names `SessionId`, `ItemId` and
    /// `Time` (any order, other columns ignored). Time is in seconds or milliseconds; events
    /// are put in time order within each session (ties keep file order), sessions in order of
    /// their first event.
    pub fn read_gru4rec(path: impl AsRef<Path>) -> Result<Sessions> {
        let path = path.as_ref();
        let text = read_text(path)?;
        let mut records = csv_reader(&text, b'\t').into_records();
        let header = match records.next() {
            None => return Err(Error::parse(path, None, "empty file: no header, no events")),
            Some(r) => r.map_err(|e| Error::parse(path, Some(1), e.to_string()))?,
        };
        let col = |name: &str| {
            header.iter().position(|h| h.trim().eq_ignore_ascii_case(name)).ok_or_else(|| {
                Error::parse(
                    path,
                    Some(1),
                    format!(
                        "header must name SessionId, ItemId and Time; no '{name}' in [{}]",
                        header.iter().collect::<Vec<_>>().join(", ")
                    ),
                )
            })
        };
        let (cs, ci, ct) = (col("SessionId")?, col("ItemId")?, col("Time")?);
        let mut events: Vec<(String, f64, usize, String)> = Vec::new();
        for (n, rec) in records.enumerate() {
            let rec = rec.map_err(|e| Error::parse(path, None, e.to_string()))?;
            let line = rec.position().map(|p| p.line()).unwrap_or(n as u64 + 2);
            if rec.len() != header.len() {
                return Err(Error::parse(
                    path,
                    Some(line),
                    format!("expected {} tab-separated fields, found {}", header.len(), rec.len()),
                ));
            }
            let t = rec[ct].trim();
            let time: f64 = t.parse().ok().filter(|x: &f64| x.is_finite()).ok_or_else(|| {
                Error::parse(path, Some(line), format!("field 'Time': expected a number, found '{t}'"))
            })?;
            let (s, i) = (rec[cs].trim(), rec[ci].trim());
            if s.is_empty() || i.is_empty() {
                return Err(Error::parse(path, Some(line), "empty SessionId or ItemId"));
            }
            events.push((s.to_string(), time, events.len(), i.to_string()));
        }
        if events.is_empty() {
            return Err(Error::parse(path, None, "no events (only a header)"));
        }
        Ok(group_sessions(events))
    }

    /// Per-user histories from an interaction table with timestamps: each user's items in
    /// time order (ties keep file order), users in order of their first interaction.
    pub fn from_interactions(table: &Interactions) -> Result<Sessions> {
        let ts =
            table.timestamps.as_ref().ok_or_else(|| Error::Data("user histories need a timestamp column".into()))?;
        let events = (0..table.len())
            .map(|i| (table.query(i).to_string(), ts[i] as f64, i, table.candidate(i).to_string()))
            .collect();
        Ok(group_sessions(events))
    }

    /// The users of sequences that have ids (an interaction table read as each user's
    /// sequence; `row` gives an item's candidate row, 0 if unknown): their vocabulary, the
    /// items each saw, and each one's last `steps` items, oldest first ([`Seen::from_lists`]).
    /// Without ids: no users.
    pub fn user_histories(&self, row: impl Fn(&str) -> u32, steps: usize) -> (Vocabulary, Seen, Seen) {
        let Some(ids) = &self.ids else { return (Vocabulary::default(), Seen::from_pairs(1, []), Seen::default()) };
        let mut vocab = Vocabulary::default();
        let mut lists: Vec<Vec<u32>> = vec![Vec::new()];
        for (id, items) in ids.iter().zip(&self.items) {
            let u = vocab.insert(id) as usize;
            if u == lists.len() {
                lists.push(Vec::new());
            }
            lists[u].extend(items.iter().map(|i| row(i)).filter(|&r| r > 0));
        }
        let pairs = lists.iter().enumerate().flat_map(|(u, l)| l.iter().map(move |&c| (u as u32, c)));
        let seen = Seen::from_pairs(lists.len(), pairs);
        let last: Vec<Vec<u32>> = lists.iter().map(|l| l[l.len().saturating_sub(steps)..].to_vec()).collect();
        (vocab, seen, Seen::from_lists(&last))
    }

    /// Leave-last-out: (every sequence without its last item, for training; the sequences of
    /// at least two items whole, for testing: their last item is the target and the rest, all
    /// of it training data, the history).
    pub fn hold_out_last(&self) -> (Sessions, Sessions) {
        let train = Sessions {
            items: self.items.iter().map(|s| s[..s.len().saturating_sub(1)].to_vec()).collect(),
            ids: self.ids.clone(),
        };
        let keep: Vec<usize> = (0..self.len()).filter(|&i| self.items[i].len() >= 2).collect();
        let test = Sessions {
            items: keep.iter().map(|&i| self.items[i].clone()).collect(),
            ids: self.ids.as_ref().map(|ids| keep.iter().map(|&i| ids[i].clone()).collect()),
        };
        (train, test)
    }

    /// Splits every sequence into its prefix and its last item (the target), as in test files.
    /// A sequence with fewer than two items is an error naming it.
    pub fn split_targets(&self) -> Result<(Sessions, Vec<String>)> {
        let mut prefixes = Vec::with_capacity(self.len());
        let mut targets = Vec::with_capacity(self.len());
        for (n, s) in self.items.iter().enumerate() {
            let Some((last, prefix)) = s.split_last().filter(|(_, p)| !p.is_empty()) else {
                return Err(Error::Data(format!(
                    "sequence {} has {} item(s): a test sequence needs a prefix and a target",
                    n + 1,
                    s.len()
                )));
            };
            prefixes.push(prefix.to_vec());
            targets.push(last.clone());
        }
        Ok((Sessions { items: prefixes, ids: self.ids.clone() }, targets))
    }
}

/// Groups (session, time, file order, item) events into sessions: events by time within a
/// session, sessions by their first event.
fn group_sessions(mut events: Vec<(String, f64, usize, String)>) -> Sessions {
    events.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut groups: Vec<(f64, usize, String, Vec<String>)> = Vec::new();
    for (s, t, order, item) in events {
        match groups.last_mut() {
            Some(g) if g.2 == s => g.3.push(item),
            _ => groups.push((t, order, s, vec![item])),
        }
    }
    groups.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let ids = groups.iter().map(|g| g.2.clone()).collect();
    Sessions { items: groups.into_iter().map(|g| g.3).collect(), ids: Some(ids) }
}

/// Settings of GRU4Rec's RetailRocket preprocessing; `Default` gives the published values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetailRocketPrep {
    /// A gap longer than this (seconds) between a visitor's views starts a new session.
    pub max_gap_s: i64,
    /// Items with fewer events than this are dropped.
    pub min_item_support: usize,
    /// Sessions starting in the last this many days are the test set.
    pub test_days: i64,
}

impl Default for RetailRocketPrep {
    fn default() -> Self {
        RetailRocketPrep { max_gap_s: 3600, min_item_support: 5, test_days: 7 }
    }
}

impl RetailRocketPrep {
    /// Turns RetailRocket's raw `events.csv` (`timestamp,visitorid,event,itemid,transactionid`,
    /// milliseconds) into (train, test) sessions:
    /// keep `view` events; a session is one visitor's views with gaps of at most `max_gap_s`;
    /// consecutive repeats of an item within a session are dropped; then, until nothing
    /// changes, sessions of one item and items with fewer than `min_item_support` events are
    /// dropped; sessions starting in the last `test_days` days (before the last event) are the
    /// test set, the earlier ones the training set; test events whose item is not in the
    /// training set are dropped, and test sessions left with one item with them.
    pub fn apply(&self, events_csv: impl AsRef<Path>) -> Result<(Sessions, Sessions)> {
        let path = events_csv.as_ref();
        let text = read_text(path)?;
        let mut records = csv_reader(&text, b',').into_records();
        let header = match records.next() {
            None => return Err(Error::parse(path, None, "empty file")),
            Some(r) => r.map_err(|e| Error::parse(path, Some(1), e.to_string()))?,
        };
        let col = |name: &str| {
            header.iter().position(|h| h.trim() == name).ok_or_else(|| {
                Error::parse(
                    path,
                    Some(1),
                    format!("header has no '{name}' column (expected timestamp,visitorid,event,itemid,transactionid)"),
                )
            })
        };
        let (ct, cv, ce, ci) = (col("timestamp")?, col("visitorid")?, col("event")?, col("itemid")?);
        // (visitor, time in s, file order, item)
        let mut views: Vec<(String, i64, usize, String)> = Vec::new();
        for (n, rec) in records.enumerate() {
            let rec = rec.map_err(|e| Error::parse(path, None, e.to_string()))?;
            let line = rec.position().map(|p| p.line()).unwrap_or(n as u64 + 2);
            if rec.len() < header.len() {
                return Err(Error::parse(
                    path,
                    Some(line),
                    format!("expected {} fields, found {}", header.len(), rec.len()),
                ));
            }
            if rec[ce].trim() != "view" {
                continue;
            }
            let t = rec[ct].trim();
            let ms: i64 = t.parse().map_err(|_| {
                Error::parse(path, Some(line), format!("field 'timestamp': expected milliseconds, found '{t}'"))
            })?;
            views.push((rec[cv].trim().to_string(), ms / 1000, n, rec[ci].trim().to_string()));
        }
        views.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        // sessions: (start time, visitor, items), consecutive repeats dropped
        let mut sessions: Vec<(i64, String, Vec<String>)> = Vec::new();
        let mut last: Option<(&str, i64)> = None;
        for (v, t, _, item) in &views {
            let new = !matches!(last, Some((lv, lt)) if lv == v && t - lt <= self.max_gap_s);
            if new {
                sessions.push((*t, v.clone(), Vec::new()));
            }
            let s = &mut sessions.last_mut().expect("a session was just started").2;
            if s.last() != Some(item) {
                s.push(item.clone());
            }
            last = Some((v, *t));
        }
        loop {
            let before: usize = sessions.iter().map(|s| s.2.len()).sum::<usize>() + sessions.len();
            sessions.retain(|s| s.2.len() > 1);
            let mut support: HashMap<&str, usize> = HashMap::new();
            sessions.iter().flat_map(|s| &s.2).for_each(|i| *support.entry(i).or_default() += 1);
            let keep: std::collections::HashSet<String> =
                support.into_iter().filter(|(_, n)| *n >= self.min_item_support).map(|(i, _)| i.to_string()).collect();
            sessions.iter_mut().for_each(|s| s.2.retain(|i| keep.contains(i)));
            sessions.retain(|s| s.2.len() > 1);
            if sessions.iter().map(|s| s.2.len()).sum::<usize>() + sessions.len() == before {
                break;
            }
        }
        sessions.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        let t_max = views.iter().map(|v| v.1).max().unwrap_or(0);
        let cutoff = t_max - self.test_days * 86_400;
        let (train, test): (Vec<_>, Vec<_>) = sessions.into_iter().partition(|s| s.0 < cutoff);
        let train_items: std::collections::HashSet<&String> = train.iter().flat_map(|s| &s.2).collect();
        let test: Vec<(i64, String, Vec<String>)> = test
            .into_iter()
            .map(|(t, v, items)| (t, v, items.into_iter().filter(|i| train_items.contains(i)).collect::<Vec<_>>()))
            .filter(|s| s.2.len() > 1)
            .collect();
        let pack = |s: Vec<(i64, String, Vec<String>)>| Sessions {
            ids: Some(s.iter().map(|x| x.1.clone()).collect()),
            items: s.into_iter().map(|x| x.2).collect(),
        };
        Ok((pack(train), pack(test)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str, content: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("towers-sessions-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    fn strs(v: &[&[&str]]) -> Vec<Vec<String>> {
        v.iter().map(|s| s.iter().map(|x| x.to_string()).collect()).collect()
    }

    #[test]
    fn hold_out_last_keeps_whole_histories_for_testing() {
        let s = Sessions {
            items: strs(&[&["a", "b", "c"], &["d"], &["e", "f"]]),
            ids: Some(vec!["1".into(), "2".into(), "3".into()]),
        };
        let (train, test) = s.hold_out_last();
        assert_eq!(train.items, strs(&[&["a", "b"], &[], &["e"]]));
        assert_eq!(test.items, strs(&[&["a", "b", "c"], &["e", "f"]]));
        assert_eq!(test.ids, Some(vec!["1".into(), "3".into()]));
    }

    #[test]
    fn retailrocket_preprocessing_by_hand() {
        // t0 = 2015-05-30 00:00:00 UTC; times in ms. Items A..F.
        let t0: i64 = 1_432_944_000_000;
        let (min, hour, day) = (60_000, 3_600_000, 86_400_000);
        let rows = [
            (t0, 1, "view", "A"),
            (t0 + min, 1, "view", "B"),
            (t0 + 2 * min, 1, "view", "B"), // consecutive repeat: dropped
            (t0 + 3 * min, 1, "view", "C"),
            (t0 + 3 * min + 2 * hour, 1, "view", "A"), // after a 2 h gap: a session of one item
            (t0 + 100_000, 2, "view", "A"),
            (t0 + 200_000, 2, "view", "C"),
            (t0 + 250_000, 2, "addtocart", "D"), // not a view
            (t0 + 300_000, 2, "view", "D"),
            (t0 + 50_000, 3, "view", "E"), // E has one event: dropped, then [A] goes, then A's support drops to 2
            (t0 + 70_000, 3, "view", "A"),
            (t0 + 10 * day, 4, "view", "B"),
            (t0 + 10 * day + min, 4, "view", "C"),
            (t0 + 10 * day + 2 * min, 4, "view", "F"), // F is only in test sessions: dropped there
            (t0 + 10 * day + hour, 5, "view", "F"),
            (t0 + 10 * day + hour + min, 5, "view", "D"), // [F, D] -> [D]: too short, dropped
        ];
        let mut csv = String::from("timestamp,visitorid,event,itemid,transactionid\n");
        for (t, v, e, i) in rows {
            csv.push_str(&format!("{t},{v},{e},{i},\n"));
        }
        let p = tmp("events.csv", &csv);
        let prep = RetailRocketPrep { min_item_support: 2, ..Default::default() };
        let (train, test) = prep.apply(&p).unwrap();
        assert_eq!(train.items, strs(&[&["A", "B", "C"], &["A", "C", "D"]]));
        assert_eq!(train.ids, Some(vec!["1".to_string(), "2".to_string()]));
        assert_eq!(test.items, strs(&[&["B", "C"]]));
        assert_eq!(
            RetailRocketPrep::default(),
            RetailRocketPrep { max_gap_s: 3600, min_item_support: 5, test_days: 7 }
        );

        let bad = tmp("bad_events.csv", "timestamp,visitorid,event,itemid,transactionid\nsoon,1,view,A,\n");
        let e = prep.apply(&bad).unwrap_err().to_string();
        assert!(e.contains("bad_events.csv:2") && e.contains("timestamp"), "{e}");
        let e = prep.apply(tmp("nohead.csv", "1,2,view,3,\n")).unwrap_err().to_string();
        assert!(e.contains("no 'timestamp' column"), "{e}");
    }

    #[test]
    fn one_session_per_line_and_targets() {
        let s = Sessions::read_lines(tmp("s.txt", "1 2 3\n4,5\n")).unwrap();
        assert_eq!(s.items, strs(&[&["1", "2", "3"], &["4", "5"]]));
        let (prefix, targets) = s.split_targets().unwrap();
        assert_eq!((prefix.items, targets), (strs(&[&["1", "2"], &["4"]]), vec!["3".to_string(), "5".to_string()]));
        let e = Sessions::read_lines(tmp("e.txt", "1 2\n\n3 4\n")).unwrap_err().to_string();
        assert!(e.contains("e.txt:2") && e.contains("empty session"), "{e}");
        assert!(Sessions::read_lines(tmp("one.txt", "7\n")).unwrap().split_targets().is_err());
    }

    #[test]
    fn shares_of_a_file_are_its_lines_once_each_and_errors_name_the_whole_file_line() {
        let text: String = (0..50).map(|i| format!("u{i}\t{} {}\t{}\n", i + 1, i + 2, i + 3)).collect();
        let path = tmp("shares.tsv", &text);
        let whole = Sessions::read_examples(&path).unwrap();
        for ranks in [1, 2, 3, 7] {
            let mut joined = Sessions { items: Vec::new(), ids: Some(Vec::new()) };
            for rank in 0..ranks {
                let s = Sessions::read_share(&path, InputFormat::Examples, Share { rank, ranks }).unwrap();
                joined.items.extend(s.items);
                joined.ids.as_mut().unwrap().extend(s.ids.unwrap());
            }
            assert_eq!((&joined.items, &joined.ids), (&whole.items, &whole.ids), "{ranks} ranks");
        }
        let bad = tmp("bad.txt", &format!("{}\n\n1 2\n", "1 2 3\n".repeat(40)));
        let e = Sessions::read_share(&bad, InputFormat::Sessions, Share { rank: 1, ranks: 2 }).unwrap_err();
        assert!(e.to_string().contains("bad.txt:41") && e.to_string().contains("empty session"), "{e}");
        let e = Sessions::read_share(&bad, InputFormat::Gru4rec, Share { rank: 0, ranks: 2 }).unwrap_err();
        assert!(e.to_string().contains("cannot be split"), "{e}");
    }

    #[test]
    fn gru4rec_tsv_sorts_times_and_checks_its_header() {
        let s =
            Sessions::read_gru4rec(tmp("g.tsv", "SessionId\tItemId\tTime\n2\t9\t50\n1\t7\t20\n1\t8\t10\n2\t3\t40\n"))
                .unwrap();
        // unsorted times are put in order; sessions ordered by their first event
        assert_eq!(s.items, strs(&[&["8", "7"], &["3", "9"]]));
        assert_eq!(s.ids, Some(vec!["1".to_string(), "2".to_string()]));
        let e = Sessions::read_gru4rec(tmp("h.tsv", "1\t7\t20\n")).unwrap_err().to_string();
        assert!(e.contains("h.tsv:1") && e.contains("SessionId"), "{e}");
        let e = Sessions::read_gru4rec(tmp("c.tsv", "SessionId\tItemId\tTime\n1\t7\n")).unwrap_err().to_string();
        assert!(e.contains("c.tsv:2") && e.contains("expected 3"), "{e}");
        let e = Sessions::read_gru4rec(tmp("t.tsv", "SessionId\tItemId\tTime\n1\t7\tnoon\n")).unwrap_err().to_string();
        assert!(e.contains("'Time'") && e.contains("noon"), "{e}");
    }

    #[test]
    fn examples_format_drops_padding() {
        let s = Sessions::read_examples(tmp("x.tsv", "1\t168 172 0 0\t165\n2\t0 0 0 0\t5\n")).unwrap();
        assert_eq!(s.items, strs(&[&["168", "172", "165"], &["5"]]));
        let e = Sessions::read_examples(tmp("y.tsv", "1\t168 172\n")).unwrap_err().to_string();
        assert!(e.contains("y.tsv:1") && e.contains("expected 3"), "{e}");
    }

    #[test]
    fn histories_from_interactions() {
        let (q, c, ts) = (["u", "v", "u"], ["1", "2", "3"], [30, 5, 10]);
        let rows = (0..3).map(|i| crate::data::Row {
            query: q[i],
            candidate: c[i],
            timestamp: Some(ts[i]),
            ..Default::default()
        });
        let mut t = Interactions::from_rows(rows).unwrap();
        let s = Sessions::from_interactions(&t).unwrap();
        assert_eq!(s.items, strs(&[&["2"], &["3", "1"]]));
        t.timestamps = None;
        assert!(Sessions::from_interactions(&t).is_err());
    }
}
