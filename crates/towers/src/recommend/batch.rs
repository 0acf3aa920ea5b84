//! Recommendations for many users at once (`towers recommend --all-users`, Python's
//! `recommend_batch`): users in blocks, each block's lists handed on as rows before the next is
//! computed, so memory stays bounded whatever the number of users. A single model with a user
//! tower searches its index with the block's query vectors together (the candidates read once per
//! block, every core busy); other models and pipelines answer each user as `recommend` does, the
//! block's users in parallel. Every list is the one `recommend` gives for that user and request.

use super::{Query, Request, Served, UserRows};
use crate::Result;
use crate::data::{EmbeddingsWriter, RecommendationRows};
use crate::index::Filter;
use crate::model::{At, Queries, QueryKind};
use crate::progress::{Event, Observer};
use rayon::prelude::*;

/// Users per block.
const BLOCK: usize = 2048;

impl Served {
    /// The users this model knows (without the unknown row), in row order.
    pub fn users(&self) -> Vec<String> {
        self.retriever().artifact().query_vocab.iter().map(str::to_owned).collect()
    }

    /// Every list `recommend` gives for `users` (in their order) under `request`, handed to
    /// `sink` a block at a time as rows (user, rank, item, score); `observer` sees one step per
    /// block. Returns the rows handed on.
    pub fn recommend_users(
        &self,
        users: &[String],
        request: &Request,
        observer: &mut dyn Observer,
        sink: &mut dyn FnMut(&RecommendationRows) -> Result<()>,
    ) -> Result<usize> {
        request.validate()?;
        let _ = observer.observe(Event::Started { what: "recommendations", total: users.len().div_ceil(BLOCK) as u64 });
        let mut rows = 0;
        for block in users.chunks(BLOCK) {
            let out = self.block(block, request)?;
            rows += out.len();
            sink(&out)?;
            if observer.observe(Event::Step).is_break() {
                return Err(crate::Error::Interrupted);
            }
        }
        let _ = observer.observe(Event::Finished);
        Ok(rows)
    }

    /// One block's lists.
    fn block(&self, users: &[String], request: &Request) -> Result<RecommendationRows> {
        let r = self.retriever();
        let a = r.artifact();
        let batched = self.store().is_none()
            && !self.is_pipeline()
            && matches!(a.model.query_kind(), QueryKind::User | QueryKind::UserAtTime)
            && !request.has_pipeline_options();
        let mut out = RecommendationRows::default();
        if !batched {
            let lists: Vec<_> =
                users.par_iter().map(|u| self.recommend(Query::User(u), request)).collect::<Result<_>>()?;
            for (u, list) in users.iter().zip(lists) {
                out.push(u, list.items.into_iter().map(|i| (i.id, i.score)));
            }
            return Ok(out);
        }
        // known users searched together; unknown ones get the popular items, as `recommend`
        let rows: Vec<UserRows> = users.iter().map(|u| r.user_rows(u, request)).collect();
        let known: Vec<&UserRows> = rows.iter().filter(|x| x.row.is_some()).collect();
        let query_rows: Vec<u32> = known.iter().filter_map(|x| x.row).collect();
        let q = a.model.queries(&Queries::Users { rows: &query_rows, at: At::TrainingEnd })?;
        let filters: Vec<Filter> =
            known.iter().map(|x| Filter { exclude: &x.exclude, allow: x.allow.as_deref() }).collect();
        let mut found = r.index().search_batch(&q, request.k, &filters).into_iter();
        for (i, u) in users.iter().enumerate() {
            if rows[i].row.is_some() {
                let hits = found.next().unwrap_or_default();
                out.push(u, hits.into_iter().map(|h| (a.items.ids[h.id as usize].clone(), h.score)));
            } else {
                let list = self.recommend(Query::User(u), request)?;
                out.push(u, list.items.into_iter().map(|i| (i.id, i.score)));
            }
        }
        Ok(out)
    }
}

impl Served {
    /// Writes, for other systems (a feature store, faiss, a warehouse), the candidate embeddings
    /// as `dir/items.parquet` and `dir/items.npy` and, for a model with a user tower, every known
    /// user's query embedding as `dir/users.parquet` and `dir/users.npy` (a pipeline: its
    /// retriever's), a block at a time. Returns the items and users written.
    pub fn embed(&self, dir: impl AsRef<std::path::Path>, observer: &mut dyn Observer) -> Result<(usize, usize)> {
        let dir = dir.as_ref();
        let a = self.retriever().artifact();
        let d = a.dim();
        let n = a.items.len().saturating_sub(1);
        let users = match a.model.query_kind() {
            QueryKind::User | QueryKind::UserAtTime => a.query_vocab.rows().saturating_sub(1),
            _ => 0,
        };
        let _ = observer.observe(Event::Started { what: "embeddings", total: (n + users).div_ceil(BLOCK) as u64 });
        let mut items = EmbeddingsWriter::create(dir, "items", n, d)?;
        for b0 in (1..=n).step_by(BLOCK) {
            let b1 = (b0 + BLOCK).min(n + 1);
            items.write(&a.items.ids[b0..b1], &a.candidates[b0 * d..b1 * d])?;
            let _ = observer.observe(Event::Step);
        }
        items.finish()?;
        if users > 0 {
            let mut w = EmbeddingsWriter::create(dir, "users", users, d)?;
            for b0 in (1..=users as u32).step_by(BLOCK) {
                let rows: Vec<u32> = (b0..(b0 + BLOCK as u32).min(users as u32 + 1)).collect();
                let ids: Vec<String> =
                    rows.iter().map(|&r| a.query_vocab.key(r).unwrap_or_default().to_string()).collect();
                w.write(&ids, &a.model.queries(&Queries::Users { rows: &rows, at: At::TrainingEnd })?)?;
                let _ = observer.observe(Event::Step);
            }
            w.finish()?;
        }
        let _ = observer.observe(Event::Finished);
        Ok((n, users))
    }
}
