//! A worker's Prometheus metrics, and the small HTTP server that serves them on
//! `--metrics-addr` (`GET /metrics`, text exposition format).

use std::sync::{Arc, Mutex};

use http_body_util::Full;
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::FleetError;

type Labels = Vec<(String, String)>;

/// The metrics of one worker process. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    claimed: Counter,
    done: Counter,
    failed: Family<Labels, Counter>,
    late: Counter,
    calls: Family<Labels, Counter>,
    refreshes: Counter,
    budget_used: Counter,
    running: Gauge,
    duration: Histogram,
    size: Histogram,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh set of metrics, registered under `stet_fleet_…`.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("stet_fleet");
        let m = Metrics {
            registry: Arc::new(Mutex::new(Registry::default())),
            claimed: Counter::default(),
            done: Counter::default(),
            failed: Family::default(),
            late: Counter::default(),
            calls: Family::default(),
            refreshes: Counter::default(),
            budget_used: Counter::default(),
            running: Gauge::default(),
            duration: Histogram::new(exponential_buckets(0.05, 2.0, 14)),
            size: Histogram::new(exponential_buckets(1.0, 4.0, 10)),
        };
        registry.register(
            "jobs_claimed",
            "Jobs claimed by this worker",
            m.claimed.clone(),
        );
        registry.register(
            "jobs_done",
            "Jobs run to the end (the connection synced)",
            m.done.clone(),
        );
        registry.register(
            "jobs_failed",
            "Jobs that did not finish, by outcome (failed, later, stale_token, needs_psu, lost_lease)",
            m.failed.clone(),
        );
        registry.register(
            "jobs_late",
            "Jobs claimed more than 15 minutes after they were due",
            m.late.clone(),
        );
        registry.register(
            "bank_calls",
            "Calls to banks, by bank (profile) and status (ok, error, budget)",
            m.calls.clone(),
        );
        registry.register(
            "token_refreshes",
            "Access tokens refreshed",
            m.refreshes.clone(),
        );
        registry.register(
            "budget_used",
            "Unattended calls made (each counts against a PSU's 4 a day per account and endpoint)",
            m.budget_used.clone(),
        );
        registry.register("jobs_running", "Jobs running now", m.running.clone());
        registry.register(
            "sync_duration_seconds",
            "How long a connection's sync took",
            m.duration.clone(),
        );
        registry.register(
            "sync_transactions",
            "Transactions a sync received from the bank",
            m.size.clone(),
        );
        *m.registry.lock().unwrap_or_else(|e| e.into_inner()) = registry;
        m
    }

    /// A job was claimed; `late` when it was claimed well after its due time.
    pub fn claimed(&self, late: bool) {
        self.claimed.inc();
        if late {
            self.late.inc();
        }
        self.running.inc();
    }

    /// A job ended with `outcome`, after `seconds`, having received `transactions`.
    pub fn finished(&self, outcome: &str, seconds: f64, transactions: u64, unattended_calls: u64) {
        self.running.dec();
        if outcome == "done" {
            self.done.inc();
            self.duration.observe(seconds);
            self.size.observe(transactions as f64);
        } else {
            self.failed
                .get_or_create(&vec![("outcome".to_owned(), outcome.to_owned())])
                .inc();
        }
        self.budget_used.inc_by(unattended_calls);
    }

    /// A call to `bank` answered `status`.
    pub fn call(&self, bank: &str, status: &str) {
        self.calls
            .get_or_create(&vec![
                ("bank".to_owned(), bank.to_owned()),
                ("status".to_owned(), status.to_owned()),
            ])
            .inc();
    }

    /// A token was refreshed.
    pub fn refreshed(&self) {
        self.refreshes.inc();
    }

    /// Jobs done so far.
    pub fn jobs_done(&self) -> u64 {
        self.done.get()
    }

    /// The metrics in Prometheus' text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &registry);
        out
    }

    /// Serves `GET /metrics` on `addr` until the returned task is aborted. Binds now, so
    /// an address in use is an error here, not later.
    pub async fn serve(
        &self,
        addr: &str,
    ) -> Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>), FleetError> {
        let listener =
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|error| FleetError::Metrics {
                    addr: addr.to_owned(),
                    error,
                })?;
        let local = listener.local_addr().map_err(|error| FleetError::Metrics {
            addr: addr.to_owned(),
            error,
        })?;
        let metrics = self.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let metrics = metrics.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let metrics = metrics.clone();
                            async move {
                                if req.uri().path() == "/metrics" {
                                    hyper::Response::builder()
                                    .header(
                                        "content-type",
                                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                                    )
                                    .body(Full::new(bytes::Bytes::from(metrics.render())))
                                } else {
                                    hyper::Response::builder().status(404).body(Full::new(
                                        bytes::Bytes::from_static(b"see /metrics\n"),
                                    ))
                                }
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok((local, task))
    }
}
