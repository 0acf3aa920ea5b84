//! The exporter and the reader against a real PostgreSQL + pgvector (scripts/postgres.sh):
//! top-k against exact search, exclusions, ids that look like SQL, re-export under concurrent
//! queries, a failed export, a replica serving while the primary is down, and recovery.

mod common;

use common::Postgres;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use towers_postgres::{Catalogue, Exporter, Reader, TableName};

/// A seeded catalogue: `n` items of `dim` dimensions, a few ids that try SQL injection.
struct Data {
    ids: Vec<String>,
    titles: Vec<String>,
    popularity: Vec<f32>,
    embeddings: Vec<f32>,
    dim: usize,
}

fn data(n: usize, dim: usize, seed: u64) -> Data {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let mut ids: Vec<String> = (0..n).map(|i| format!("item-{i}")).collect();
    ids[1] = "'); DROP TABLE towers_catalog; --".into();
    ids[2] = "\" OR 1=1 --".into();
    ids[3] = "naïve ✓".into();
    let titles = ids.iter().map(|i| format!("Title of {i}")).collect();
    let popularity = (0..n).map(|i| ((i * 7919) % 101) as f32).collect();
    let embeddings = (0..n * dim).map(|_| next()).collect();
    Data { ids, titles, popularity, embeddings, dim }
}

impl Data {
    fn catalogue(&self) -> Catalogue<'_> {
        Catalogue::new(&self.ids, &self.titles, &self.popularity, &self.embeddings, self.dim).unwrap()
    }

    fn exact(&self, q: &[f32], k: usize, exclude: &[String]) -> Vec<String> {
        let mut scored: Vec<(f32, usize)> = (0..self.ids.len())
            .filter(|&i| !exclude.contains(&self.ids[i]))
            .map(|i| (self.embeddings[i * self.dim..(i + 1) * self.dim].iter().zip(q).map(|(a, b)| a * b).sum(), i))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        scored.into_iter().take(k).map(|(_, i)| self.ids[i].clone()).collect()
    }

    fn query(&self, i: usize) -> Vec<f32> {
        // an item's own vector plus a shift: realistic, not on a grid
        (0..self.dim).map(|d| self.embeddings[i * self.dim + d] + 0.1 * ((i + d) % 3) as f32).collect()
    }
}

fn recall(a: &[String], b: &[String]) -> f64 {
    a.iter().filter(|x| b.contains(x)).count() as f64 / b.len().max(1) as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_search_reexport_and_failures() {
    let Some(pg) = Postgres::start("lib") else { return };
    let table = TableName::new("things").unwrap();
    let d = data(3000, 16, 1);
    let report = Exporter::new(&pg.url, table.clone()).model_version("m1").run(&d.catalogue()).await.unwrap();
    assert_eq!((report.version, report.items, report.dim), (1, 3000, 16));
    assert!(report.table_bytes > 0 && report.index_bytes > 0, "{report:?}");

    let reader = Reader::builder(&pg.url).table(table.clone()).build().unwrap();
    let v = reader.version().await.unwrap().unwrap();
    assert_eq!((v.version, v.dim, v.items, v.model.as_str()), (1, 16, 3000, "m1"));

    // top-10 against exact search, with and without exclusions
    let mut total = 0.0;
    for i in 0..50 {
        let q = d.query(i * 37);
        let exact = d.exact(&q, 10, &[]);
        let got: Vec<String> = reader.search(&q, 10, &[]).await.unwrap().into_iter().map(|h| h.id).collect();
        total += recall(&got, &exact);
        let exclude: Vec<String> = exact[..5].to_vec();
        let got = reader.search(&q, 10, &exclude).await.unwrap();
        assert_eq!(got.len(), 10);
        assert!(got.iter().all(|h| !exclude.contains(&h.id)));
    }
    assert!(total / 50.0 >= 0.95, "recall@10 {}", total / 50.0);

    // ids that look like SQL are data: found, returned and excluded as they are
    let tricky = d.ids[1].clone();
    let hits = reader.search(&d.embeddings[16..32], 3, &[]).await.unwrap();
    assert_eq!(hits[0].id, tricky);
    assert_eq!(hits[0].title, format!("Title of {tricky}"));
    let hits = reader.search(&d.embeddings[16..32], 3, std::slice::from_ref(&tricky)).await.unwrap();
    assert!(hits.iter().all(|h| h.id != tricky));
    assert!(reader.version().await.unwrap().is_some(), "towers_catalog is still there");

    // popular items: by popularity, ties in row order, exclusions honoured
    let pop = reader.popular(5, &[]).await.unwrap();
    let mut order: Vec<usize> = (0..d.ids.len()).collect();
    order.sort_by(|&a, &b| d.popularity[b].total_cmp(&d.popularity[a]).then(a.cmp(&b)));
    assert_eq!(
        pop.iter().map(|h| h.id.clone()).collect::<Vec<_>>(),
        order[..5].iter().map(|&i| d.ids[i].clone()).collect::<Vec<_>>()
    );

    // re-export under concurrent queries: every query answers, from one version or the other
    let reader = Arc::new(reader);
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut tasks = Vec::new();
    for t in 0..4 {
        let (reader, stop, ok, failed) = (reader.clone(), stop.clone(), ok.clone(), failed.clone());
        let q = d.query(t);
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match reader.search(&q, 10, &[]).await {
                    Ok(h) if h.len() == 10 => ok.fetch_add(1, Ordering::Relaxed),
                    other => {
                        eprintln!("failed during re-export: {other:?}");
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }
    let d2 = data(3000, 16, 2);
    let r2 = Exporter::new(&pg.url, table.clone()).model_version("m2").run(&d2.catalogue()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0, "failed queries during the re-export");
    assert!(ok.load(Ordering::Relaxed) > 10);
    assert_eq!((r2.version, r2.dropped.clone()), (2, vec!["things_v1".to_string()]));
    let q = d2.query(5);
    let got: Vec<String> = reader.search(&q, 10, &[]).await.unwrap().into_iter().map(|h| h.id).collect();
    assert!(recall(&got, &d2.exact(&q, 10, &[])) >= 0.9, "the new version answers");

    // a failed export (duplicate ids break the primary key) leaves version 2 serving
    let mut bad = data(100, 16, 3);
    bad.ids[5] = bad.ids[4].clone();
    let e = Exporter::new(&pg.url, table.clone()).run(&bad.catalogue()).await.unwrap_err();
    assert!(e.to_string().contains("is duplicated"), "{e}");
    let v = reader.version().await.unwrap().unwrap();
    assert_eq!((v.version, v.model.as_str()), (2, "m2"));
    assert_eq!(reader.search(&q, 10, &[]).await.unwrap().len(), 10);
    // and the next export cleans up and goes on numbering
    let r3 = Exporter::new(&pg.url, table.clone()).run(&d2.catalogue()).await.unwrap();
    assert!(r3.version >= 3, "{r3:?}");

    // an ordinary table is never replaced by a catalogue
    let e = Exporter::new(&pg.url, TableName::new("towers_catalog_x").unwrap()).run(&d.catalogue()).await;
    assert!(e.is_ok(), "{e:?}");
    let other = Reader::builder(&pg.url).table(TableName::new("never_exported").unwrap()).build().unwrap();
    let e = other.search(&q, 3, &[]).await.unwrap_err();
    assert!(matches!(e, towers_postgres::Error::Schema(_)), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_serve_while_the_primary_is_down_and_readers_recover() {
    let Some(pg) = Postgres::start("pri") else { return };
    let table = TableName::default();
    let d = data(500, 8, 4);
    Exporter::new(&pg.url, table.clone()).run(&d.catalogue()).await.unwrap();
    let replica = pg.replica("rep");
    let both = Reader::builder(&pg.url).replica(&replica.url).build().unwrap();
    let primary_only = Reader::builder(&pg.url).build().unwrap();
    let q = d.query(3);
    // the replica has the catalogue once it has replayed the export
    let deadline = Instant::now() + Duration::from_secs(20);
    while both.search(&q, 5, &[]).await.map(|h| h.len()).unwrap_or(0) != 5 {
        assert!(Instant::now() < deadline, "replica never caught up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(primary_only.search(&q, 5, &[]).await.unwrap().len(), 5);

    pg.stop();
    let e = primary_only.search(&q, 5, &[]).await.unwrap_err();
    assert!(e.is_unavailable(), "{e}");
    for _ in 0..5 {
        assert_eq!(both.search(&q, 5, &[]).await.unwrap().len(), 5, "the replica answers");
    }

    pg.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match primary_only.search(&q, 5, &[]).await {
            Ok(h) => break assert_eq!(h.len(), 5),
            Err(e) => assert!(Instant::now() < deadline, "not back 10 s after the restart: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
