//! The human-readable tables of a [`Report`] (what `towers evaluate` prints without `--json`):
//! recall@k (= top-k accuracy) then MRR@k, the model beside popularity (and, for sequential
//! models, "repeat the last item"), then the rating metrics beside theirs; a pipeline's answers
//! beside its retriever's own order, then diversity and coverage.

use super::{PipelineEvaluation, Report};
use crate::eval::{Evaluation, Ranked};
use crate::metrics::RatingMetrics;
use std::fmt::{self, Display, Formatter};

impl Display for Report {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Report::Model(e) => e.fmt(f),
            Report::Pipeline(e) => pipeline(f, e),
        }
    }
}

impl Display for Evaluation {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        model(f, self)
    }
}

fn row(f: &mut Formatter<'_>, name: &str, v: [f64; 6], last: f64) -> fmt::Result {
    writeln!(
        f,
        "{name:<18} {:>7.4} {:>7.4} {:>7.4} {:>7.4} {:>7.4} {:>7.4} {:>7.4}",
        v[0], v[1], v[2], v[3], v[4], v[5], last
    )
}

/// The header row of a metric table: the metric, k = 1…100, and the summary column.
fn header(f: &mut Formatter<'_>, metric: &str, summary: &str) -> fmt::Result {
    writeln!(f, "{metric:<18} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {summary:>7}", "1", "5", "10", "20", "50", "100")
}

fn model(f: &mut Formatter<'_>, e: &Evaluation) -> fmt::Result {
    if let Some(r) = &e.ranked {
        ranked(f, r)?;
    }
    if let Some(r) = &e.rating {
        ratings(f, r)?;
    }
    Ok(())
}

fn ranked(f: &mut Formatter<'_>, e: &Ranked) -> fmt::Result {
    writeln!(
        f,
        "{} test pairs{}, ranked against all candidates ({:.3} s)",
        e.model.n,
        if e.exclude_seen { ", training items excluded" } else { "" },
        e.eval_s
    )?;
    let mut rows = vec![("model", &e.model), ("popularity", &e.baseline)];
    if let Some(r) = &e.repeat_last {
        rows.push(("repeat last item", r));
    }
    header(f, "recall@k", "NDCG@10")?;
    for (name, m) in &rows {
        row(f, name, m.recalls(), m.ndcg_10)?;
    }
    header(f, "MRR@k", "MRR")?;
    for (name, m) in &rows {
        row(f, name, m.mrrs(), m.mrr)?;
    }
    if e.unknown_users + e.unknown_items > 0 {
        writeln!(
            f,
            "({} pairs with a user unknown to the model, {} with an unknown item: always a miss)",
            e.unknown_users, e.unknown_items
        )?;
    }
    Ok(())
}

fn ratings(f: &mut Formatter<'_>, r: &RatingMetrics) -> fmt::Result {
    writeln!(f, "{} rated test pairs", r.n_rated)?;
    writeln!(f, "{:<12} {:>7} {:>14}", "", "RMSE", "NDCG@10 rated")?;
    writeln!(f, "{:<12} {:>7.4} {:>14.4}", "model", r.rmse, r.ndcg_10_rated)?;
    writeln!(f, "{:<12} {:>7.4} {:>14}", "mean rating", r.rmse_mean_baseline, "")?;
    writeln!(f, "{:<12} {:>7} {:>14.4}", "popularity", "", r.ndcg_10_rated_popularity)
}

fn pipeline(f: &mut Formatter<'_>, e: &PipelineEvaluation) -> fmt::Result {
    writeln!(
        f,
        "{} test pairs{}, pipeline answers (retrieve {} → rank → post-rank{}; {:.3} s)",
        e.model.n,
        if e.exclude_seen { ", training items excluded" } else { "" },
        e.retrieve,
        if e.diversity > 0.0 { format!(", diversity {}", e.diversity) } else { String::new() },
        e.eval_s
    )?;
    header(f, "recall@k", "NDCG@10")?;
    row(f, "pipeline", e.model.recalls(), e.model.ndcg_10)?;
    row(f, "retriever alone", e.retriever.recalls(), e.retriever.ndcg_10)?;
    writeln!(
        f,
        "ILD@10 {:.4} (retriever alone {:.4}); catalogue coverage of the top 10: {:.4}",
        e.ild_10, e.retriever_ild_10, e.coverage_10
    )
}
