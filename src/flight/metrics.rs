//! Prometheus metrics of `vcfq serve`, in the text format on an HTTP port of their own
//! (`[metrics]` in the config; off by default): statements by kind and outcome with their
//! latency, rows and bytes scanned and sent, logins, Flight RPCs by method and gRPC code,
//! sessions, running queries, the memory pool, and stream sinks (direct topic writes, and the
//! platforms of coordinated tables with their breakers).
//!
//! Counters that other parts keep (stream sinks, breakers) are read when the metrics are
//! scraped.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::UInt64Type;
use datafusion::execution::memory_pool::MemoryLimit;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use serde::Deserialize;

use super::sessions::SessionStore;

/// `[metrics]` of the server config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Where `/metrics` is served (port 0 picks a free one; the address is printed).
    pub addr: SocketAddr,
    /// When set, scrapes must send `Authorization: Bearer <token>`.
    #[serde(default)]
    pub token: Option<String>,
}

/// How a statement ended, as the `outcome` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementOutcome {
    /// Its last row was sent (or it ran).
    Ok,
    /// It failed.
    Error,
    /// The grants or file roots refused it.
    Denied,
    /// Cancelled, or abandoned by its client.
    Cancelled,
}

impl StatementOutcome {
    fn as_str(self) -> &'static str {
        match self {
            StatementOutcome::Ok => "ok",
            StatementOutcome::Error => "error",
            StatementOutcome::Denied => "denied",
            StatementOutcome::Cancelled => "cancelled",
        }
    }
}

/// One statement's figures, when it ended.
#[derive(Debug, Clone, Copy)]
pub struct StatementFigures {
    /// `query`, `insert`, `copy`, `ddl`, `explain`, `set`, `prepare`, `unplanned`, …
    pub kind: &'static str,
    /// How it ended.
    pub outcome: StatementOutcome,
    /// From request to last row.
    pub duration: Duration,
    /// Rows sent to the client (or written, for `INSERT`/`COPY`).
    pub rows: u64,
    /// Bytes of Arrow data sent.
    pub bytes_sent: u64,
    /// Rows (records, messages) its scans read.
    pub rows_scanned: u64,
    /// Bytes its scans read.
    pub bytes_scanned: u64,
}

/// The server's metrics.
#[derive(Debug)]
pub struct ServerMetrics {
    registry: Registry,
    statements: IntCounterVec,
    statement_seconds: HistogramVec,
    result_rows: IntCounterVec,
    result_bytes: IntCounter,
    rows_scanned: IntCounter,
    bytes_scanned: IntCounter,
    logins: IntCounterVec,
    rpcs: IntCounterVec,
    rpc_seconds: HistogramVec,
    sessions: IntGauge,
    running: IntGauge,
    memory_reserved: IntGauge,
    memory_limit: IntGauge,
    topic_messages: IntCounterVec,
    stream_messages: IntCounterVec,
    breaker_state: IntGaugeVec,
    breaker_failures: IntGaugeVec,
    /// One scrape at a time (sampled counters are brought up to date under it).
    scrape: Mutex<()>,
}

/// Latency buckets, 1 ms to ~65 s.
fn latency_buckets() -> Vec<f64> {
    (0..17).map(|i| 0.001 * 2f64.powi(i)).collect()
}

impl ServerMetrics {
    /// Every metric registered, at zero.
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("vcfq".into()), None)
            .expect("a constant prefix is a valid metric prefix");
        fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
            let m = IntCounterVec::new(Opts::new(name, help), labels)
                .expect("constant metric names and labels are valid");
            r.register(Box::new(m.clone()))
                .expect("each metric is registered once");
            m
        }
        fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
            let m = IntCounter::new(name, help).expect("a constant metric name is valid");
            r.register(Box::new(m.clone()))
                .expect("each metric is registered once");
            m
        }
        fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
            let m = IntGauge::new(name, help).expect("a constant metric name is valid");
            r.register(Box::new(m.clone()))
                .expect("each metric is registered once");
            m
        }
        fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
            let m = IntGaugeVec::new(Opts::new(name, help), labels)
                .expect("constant metric names and labels are valid");
            r.register(Box::new(m.clone()))
                .expect("each metric is registered once");
            m
        }
        fn histogram_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
            let m = HistogramVec::new(
                HistogramOpts::new(name, help).buckets(latency_buckets()),
                labels,
            )
            .expect("constant metric names, labels and buckets are valid");
            r.register(Box::new(m.clone()))
                .expect("each metric is registered once");
            m
        }
        let r = registry.clone();
        ServerMetrics {
            statements: counter_vec(
                &r,
                "statements_total",
                "Statements ended, by kind and outcome",
                &["kind", "outcome"],
            ),
            statement_seconds: histogram_vec(
                &r,
                "statement_duration_seconds",
                "Time from a statement's request to its last row",
                &["kind"],
            ),
            result_rows: counter_vec(
                &r,
                "result_rows_total",
                "Rows sent to clients (or written, for INSERT and COPY)",
                &["kind"],
            ),
            result_bytes: counter(&r, "result_bytes_total", "Bytes of Arrow data sent"),
            rows_scanned: counter(
                &r,
                "scanned_rows_total",
                "Rows, records and messages read by table scans",
            ),
            bytes_scanned: counter(&r, "scanned_bytes_total", "Bytes read by table scans"),
            logins: counter_vec(
                &r,
                "logins_total",
                "Login attempts, by method and outcome",
                &["method", "outcome"],
            ),
            rpcs: counter_vec(
                &r,
                "flight_rpcs_total",
                "Flight RPCs ended, by method and gRPC code",
                &["method", "code"],
            ),
            rpc_seconds: histogram_vec(
                &r,
                "flight_rpc_duration_seconds",
                "Flight RPC time, from request to the end of the response stream",
                &["method"],
            ),
            sessions: gauge(&r, "sessions", "Live client sessions"),
            running: gauge(&r, "queries_running", "Statements planned or sending rows"),
            memory_reserved: gauge(
                &r,
                "memory_pool_reserved_bytes",
                "Memory reserved by running queries",
            ),
            memory_limit: gauge(
                &r,
                "memory_pool_limit_bytes",
                "The memory pool's limit (0: none)",
            ),
            topic_messages: counter_vec(
                &r,
                "topic_messages_total",
                "Messages of INSERTs into topic tables, by outcome (sent, acknowledged, failed)",
                &["platform", "topic", "outcome"],
            ),
            stream_messages: counter_vec(
                &r,
                "stream_messages_total",
                "Messages of coordinated tables' platforms, by outcome",
                &["table", "role", "platform", "outcome"],
            ),
            breaker_state: gauge_vec(
                &r,
                "stream_breaker_state",
                "Circuit breaker of a coordinated table's platform: 0 closed, 1 half-open, 2 open",
                &["table", "role", "platform"],
            ),
            breaker_failures: gauge_vec(
                &r,
                "stream_breaker_consecutive_failures",
                "Consecutive retryable failures a breaker has counted",
                &["table", "role", "platform"],
            ),
            registry,
            scrape: Mutex::new(()),
        }
    }

    /// A statement ended.
    pub fn statement(&self, f: &StatementFigures) {
        self.statements
            .with_label_values(&[f.kind, f.outcome.as_str()])
            .inc();
        self.statement_seconds
            .with_label_values(&[f.kind])
            .observe(f.duration.as_secs_f64());
        self.result_rows.with_label_values(&[f.kind]).inc_by(f.rows);
        self.result_bytes.inc_by(f.bytes_sent);
        self.rows_scanned.inc_by(f.rows_scanned);
        self.bytes_scanned.inc_by(f.bytes_scanned);
    }

    /// A login attempt: `method` is `password`, `jwt`, `certificate` or `anonymous`.
    pub fn login(&self, method: &str, ok: bool) {
        self.logins
            .with_label_values(&[method, if ok { "ok" } else { "refused" }])
            .inc();
    }

    /// The latency histogram of one RPC method (observed when its response ends).
    pub fn rpc_timer(&self, method: &str) -> Histogram {
        self.rpc_seconds.with_label_values(&[method])
    }

    /// An RPC ended with gRPC `code` (`OK`, `PERMISSION_DENIED`, …).
    pub fn rpc(&self, method: &str, code: &str) {
        self.rpcs.with_label_values(&[method, code]).inc();
    }

    /// The metrics in Prometheus' text format, sampled values brought up to date first.
    pub fn render(&self, store: &SessionStore) -> String {
        let _one = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        self.sessions.set(gauge_value(store.len() as u64));
        self.running
            .set(gauge_value(store.activity().running() as u64));
        let pool = &store.runtime().memory_pool;
        self.memory_reserved
            .set(gauge_value(pool.reserved() as u64));
        self.memory_limit.set(match pool.memory_limit() {
            MemoryLimit::Finite(n) => gauge_value(n as u64),
            MemoryLimit::Infinite | MemoryLimit::Unknown => 0,
        });
        for (target, counts) in crate::stream::sink::sink_counts() {
            let (platform, topic) = target.split_once(' ').unwrap_or(("", target.as_str()));
            for (outcome, value) in [
                ("sent", counts.sent),
                ("acknowledged", counts.acknowledged),
                ("failed", counts.failed),
            ] {
                catch_up(
                    &self
                        .topic_messages
                        .with_label_values(&[platform, topic, outcome]),
                    value,
                );
            }
        }
        self.sample_coordinated(&crate::coordinator::health::snapshot());
        let mut out = String::new();
        if let Err(e) = TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out) {
            out = format!("# vcfq: cannot encode the metrics: {e}\n");
        }
        out
    }

    /// The breakers and counters of coordinated tables (rows of `vcfq.stream_health`).
    fn sample_coordinated(&self, health: &RecordBatch) {
        let text = |name: &str| health.column_by_name(name).map(|c| c.as_string::<i32>());
        let number = |name: &str| {
            health
                .column_by_name(name)
                .map(|c| c.as_primitive::<UInt64Type>())
        };
        let (
            Some(table),
            Some(role),
            Some(platform),
            Some(state),
            Some(failures),
            Some(sent),
            Some(acknowledged),
            Some(failed),
        ) = (
            text("table_name"),
            text("role"),
            text("platform"),
            text("state"),
            number("consecutive_failures"),
            number("messages_sent"),
            number("messages_acknowledged"),
            number("messages_failed"),
        )
        else {
            return;
        };
        for i in 0..health.num_rows() {
            let labels = [table.value(i), role.value(i), platform.value(i)];
            let state_value = match state.value(i) {
                "closed" => 0,
                "half-open" => 1,
                "open" => 2,
                _ => continue,
            };
            self.breaker_state
                .with_label_values(&labels)
                .set(state_value);
            self.breaker_failures
                .with_label_values(&labels)
                .set(gauge_value(failures.value(i)));
            for (outcome, column) in [
                ("sent", sent),
                ("acknowledged", acknowledged),
                ("failed", failed),
            ] {
                if column.is_valid(i) {
                    let [t, r, p] = labels;
                    catch_up(
                        &self.stream_messages.with_label_values(&[t, r, p, outcome]),
                        column.value(i),
                    );
                }
            }
        }
    }
}

impl Default for ServerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Brings a counter that mirrors a monotonic count kept elsewhere up to `value`.
fn catch_up(counter: &IntCounter, value: u64) {
    let seen = counter.get();
    if value > seen {
        counter.inc_by(value - seen);
    }
}

fn gauge_value(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Serves `/metrics` on `listener` until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    token: Option<String>,
    metrics: Arc<ServerMetrics>,
    store: Arc<SessionStore>,
) -> std::io::Result<()> {
    #[derive(Clone)]
    struct Scrape {
        token: Option<Arc<str>>,
        metrics: Arc<ServerMetrics>,
        store: Arc<SessionStore>,
    }
    async fn scrape(State(s): State<Scrape>, headers: HeaderMap) -> Response {
        if let Some(token) = &s.token {
            let sent = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            if !sent.is_some_and(|t| constant_time_eq(t.as_bytes(), token.as_bytes())) {
                return (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, "Bearer")],
                    "a bearer token is required\n",
                )
                    .into_response();
            }
        }
        let text = s.metrics.render(&s.store);
        ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], text).into_response()
    }
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(scrape))
        .with_state(Scrape {
            token: token.map(Arc::from),
            metrics,
            store,
        });
    axum::serve(listener, app).await
}

/// Compares secrets in time that does not depend on where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrored_counters_only_move_forward() {
        let c = IntCounter::new("c", "c").unwrap();
        catch_up(&c, 5);
        catch_up(&c, 3);
        assert_eq!(c.get(), 5);
        catch_up(&c, 9);
        assert_eq!(c.get(), 9);
    }

    #[test]
    fn statements_and_rpcs_show_in_the_text_format() {
        let m = ServerMetrics::new();
        m.statement(&StatementFigures {
            kind: "query",
            outcome: StatementOutcome::Ok,
            duration: Duration::from_millis(3),
            rows: 7,
            bytes_sent: 100,
            rows_scanned: 70,
            bytes_scanned: 1000,
        });
        m.rpc("DoGet", "OK");
        m.rpc_timer("DoGet").observe(0.002);
        let mut out = String::new();
        TextEncoder::new()
            .encode_utf8(&m.registry.gather(), &mut out)
            .unwrap();
        assert!(
            out.contains("vcfq_statements_total{kind=\"query\",outcome=\"ok\"} 1"),
            "{out}"
        );
        assert!(out.contains("vcfq_scanned_rows_total 70"), "{out}");
        assert!(
            out.contains("vcfq_flight_rpcs_total{code=\"OK\",method=\"DoGet\"} 1"),
            "{out}"
        );
        assert!(
            out.contains(
                "vcfq_flight_rpc_duration_seconds_bucket{method=\"DoGet\",le=\"0.004\"} 1"
            ),
            "{out}"
        );
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
