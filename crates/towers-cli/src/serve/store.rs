//! Where top-k comes from. The HTTP API is the same whatever the store: the model's own index
//! (exact, or IVF when the directory holds one), or, with `--postgres`, the library's
//! [`CandidateStore`] that `towers-postgres` implements on PostgreSQL + pgvector (the query tower
//! runs in this process, [`Served::answer`] searches the store).

use super::Args;
use serde_json::{Value, json};
use std::sync::Arc;
use towers::Served;
use towers::recommend::CandidateStore;

/// The store `--postgres` names, if any (made inside the server's runtime, whose threads run
/// its queries).
pub fn postgres(a: &Args) -> towers::Result<Option<Arc<dyn CandidateStore>>> {
    let Some(primary) = &a.postgres else { return Ok(None) };
    let table = towers_postgres::TableName::new(&a.table)?;
    let config = towers_postgres::ReaderConfig { ef_search: a.ef_search, pool_size: a.pg_pool, ..Default::default() };
    let reader = a
        .replica
        .iter()
        .fold(towers_postgres::Reader::builder(primary).table(table).config(config), |b, r| b.replica(r))
        .build()?;
    Ok(Some(Arc::new(towers_postgres::PgStore::new(reader)?)))
}

/// `/v1/model`'s `store` object: `{"kind": "exact" | "ivf"}`, or what the store says of itself.
pub async fn describe(served: &Served) -> Value {
    match served.store() {
        None => json!({ "kind": served.retriever().index_kind() }),
        Some(s) => s.describe().await,
    }
}

/// Logs whether the store holds a catalogue of this model; a store that is down is not an
/// error at start-up (requests answer 503 until it is back).
pub async fn check(served: &Served) {
    let Some(store) = served.store() else { return };
    let d = store.describe().await;
    let dim = served.retriever().artifact().dim();
    match d.get("catalog") {
        Some(Value::Object(c)) => {
            let exported = c.get("dim").and_then(Value::as_u64).unwrap_or(0) as usize;
            if exported != dim {
                tracing::warn!("the exported catalogue has dimension {exported}, the model {dim}: export this model");
            } else if c.get("model").and_then(Value::as_str) != Some(served.version()) {
                tracing::warn!(
                    "the exported catalogue comes from another model version than {}: export this model",
                    served.version()
                );
            }
        }
        _ => {
            let why = d.get("error").map(|e| e.to_string()).unwrap_or_else(|| "never exported".into());
            tracing::warn!("no catalogue readable in the store now: {why}");
        }
    }
}
