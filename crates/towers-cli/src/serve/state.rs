//! The model being served, its version, and its hot reload: SIGHUP loads the directory again
//! and swaps the new model in atomically; requests in flight finish on the one they started
//! with, and a model that fails to load leaves the old one serving.

use arc_swap::ArcSwap;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use towers::Served;
use towers::recommend::CandidateStore;

/// Buckets of the request latency histogram, in seconds.
const LATENCY_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// One loaded model directory (a model or a pipeline).
pub struct Loaded {
    /// Answers queries.
    pub served: Served,
    /// The directory's name.
    pub name: String,
    /// When this server loaded it (Unix seconds).
    pub loaded_at: u64,
}

/// The server's state: the current model (swapped on reload), where top-k comes from, metrics.
pub struct App {
    model: ArcSwap<Loaded>,
    dir: PathBuf,
    exact: bool,
    /// Where a single model's top k comes from besides its own index.
    store: Option<Arc<dyn CandidateStore>>,
    metrics: OnceLock<PrometheusHandle>,
    reloads: Mutex<u64>,
    /// Users' live events (`--events`), for sequential models.
    pub live: Option<Arc<towers::recommend::Live>>,
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn load(dir: &Path, exact: bool, store: Option<&Arc<dyn CandidateStore>>) -> towers::Result<Loaded> {
    let name = dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "model".into());
    let mut served = Served::load(dir)?;
    if exact {
        served = served.exact();
    }
    if let Some(s) = store {
        served = served.with_store(s.clone()).map_err(|e| match e {
            towers::Error::Config(m) => towers::Error::Config(format!("{}: {m}", dir.display())),
            e => e,
        })?;
    }
    Ok(Loaded { served, name, loaded_at: unix_now() })
}

impl Loaded {
    /// Where its top k comes from: `exact`, `ivf` or the store's kind (`postgres`).
    pub fn store_kind(&self) -> &'static str {
        self.served.store().map_or_else(|| self.served.retriever().index_kind(), |s| s.kind())
    }
}

impl App {
    /// Loads the model directory.
    pub fn load(dir: &Path, exact: bool, store: Option<Arc<dyn CandidateStore>>) -> towers::Result<App> {
        let loaded = load(dir, exact, store.as_ref())?;
        tracing::info!(version = %loaded.served.version(), store = loaded.store_kind(), "model loaded");
        Ok(App {
            model: ArcSwap::from_pointee(loaded),
            dir: dir.to_path_buf(),
            exact,
            store,
            metrics: OnceLock::new(),
            reloads: Mutex::new(0),
            live: None,
        })
    }

    /// The model answering now; the caller keeps it for the whole request.
    pub fn current(&self) -> Arc<Loaded> {
        self.model.load_full()
    }

    /// Successful reloads since the start.
    pub fn reloads(&self) -> u64 {
        self.reloads.lock().map_or(0, |r| *r)
    }

    /// Loads the directory again and swaps the new model in; on failure the old one keeps
    /// serving. Reloads run one at a time.
    pub fn reload(&self) {
        let mut reloads = match self.reloads.lock() {
            Ok(r) => r,
            Err(poisoned) => poisoned.into_inner(),
        };
        let start = Instant::now();
        let old = self.current();
        match load(&self.dir, self.exact, self.store.as_ref()) {
            Ok(new) => {
                let store = new.store_kind();
                tracing::info!(old = %old.served.version(), new = %new.served.version(), seconds = start.elapsed().as_secs_f64(), "model reloaded");
                metrics::gauge!("towers_model_info", "version" => old.served.version().to_string(), "model" => old.name.clone(), "store" => old.store_kind()).set(0.0);
                metrics::gauge!("towers_model_info", "version" => new.served.version().to_string(), "model" => new.name.clone(), "store" => store).set(1.0);
                metrics::gauge!("towers_model_loaded_timestamp_seconds").set(new.loaded_at as f64);
                metrics::counter!("towers_model_reloads_total", "result" => "ok").increment(1);
                self.model.store(Arc::new(new));
                *reloads += 1;
            }
            Err(e) => {
                metrics::counter!("towers_model_reloads_total", "result" => "error").increment(1);
                tracing::error!(serving = %old.served.version(), "reload failed, the loaded model keeps serving: {e}");
            }
        }
    }

    /// Installs the Prometheus recorder (once per process) and its upkeep; records the model.
    pub fn start_metrics(&self) {
        let built = PrometheusBuilder::new()
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full("towers_http_request_duration_seconds".into()),
                LATENCY_BUCKETS,
            )
            .map(|b| b.install_recorder());
        match built {
            Ok(Ok(handle)) => {
                let upkeep = handle.clone();
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        upkeep.run_upkeep();
                    }
                });
                let _ = self.metrics.set(handle);
            }
            Ok(Err(e)) => tracing::warn!("metrics are off: {e}"),
            Err(e) => tracing::warn!("metrics are off: {e}"),
        }
        let m = self.current();
        metrics::gauge!("towers_model_info", "version" => m.served.version().to_string(), "model" => m.name.clone(), "store" => m.store_kind()).set(1.0);
        metrics::gauge!("towers_model_loaded_timestamp_seconds").set(m.loaded_at as f64);
    }

    /// The metrics in Prometheus' text format (empty when the recorder is off).
    pub fn render_metrics(&self) -> String {
        self.metrics.get().map(|h| h.render()).unwrap_or_default()
    }

    /// Says at start-up whether the store holds a catalogue this model can use.
    pub async fn check_store(&self) {
        super::store::check(&self.current().served).await;
    }
}
