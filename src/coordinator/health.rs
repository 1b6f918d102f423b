//! The health of each coordinated table's platforms: its breaker and counters, kept beside
//! each other and listed process-wide for `vcfq.stream_health` (the shell and `vcfq serve`
//! see the same rows).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use datafusion::arrow::array::{
    ArrayRef, Float64Builder, RecordBatch, StringBuilder, TimestampMillisecondBuilder,
    UInt64Builder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use super::breaker::{BreakerConfig, BreakerState, CircuitBreaker};
use super::router::{Lane, LaneView};

/// Latencies kept for the percentiles (the most recent ones).
const LATENCIES: usize = 1024;

/// The clock breakers run on: monotonic time since the process started, and wall time of it.
pub fn now() -> Duration {
    START.0.elapsed()
}

static START: LazyLock<(Instant, SystemTime)> =
    LazyLock::new(|| (Instant::now(), SystemTime::now()));

/// Wall time (ms since the epoch) of a clock time.
fn wall_ms(at: Duration) -> i64 {
    (START.1 + at)
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// One platform of one coordinated table.
#[derive(Debug)]
pub struct PlatformHealth {
    /// The coordinated table's name.
    pub table: String,
    /// Which of its platforms.
    pub lane: Lane,
    /// `iggy` or `kafka`.
    pub platform: &'static str,
    /// `iggy 127.0.0.1:8090/s/calls` (no credentials).
    pub target: String,
    breaker: Mutex<CircuitBreaker>,
    sent: AtomicU64,
    acknowledged: AtomicU64,
    failed: AtomicU64,
    /// Recent acknowledgement latencies, and recent outcomes (true: failed).
    recent: Mutex<(VecDeque<Duration>, VecDeque<bool>)>,
    /// Clock times of the first and the latest acknowledgement.
    acks: Mutex<Option<(Duration, Duration)>>,
}

impl PlatformHealth {
    /// A healthy platform, listed in `vcfq.stream_health` while the returned value lives.
    pub fn register(
        table: &str,
        lane: Lane,
        platform: &'static str,
        target: String,
        breaker: BreakerConfig,
    ) -> Arc<Self> {
        let health = Arc::new(PlatformHealth {
            table: table.to_string(),
            lane,
            platform,
            target,
            breaker: Mutex::new(CircuitBreaker::new(breaker)),
            sent: AtomicU64::new(0),
            acknowledged: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            recent: Mutex::new((VecDeque::new(), VecDeque::new())),
            acks: Mutex::new(None),
        });
        let mut all = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|h| h.strong_count() > 0);
        all.push(Arc::downgrade(&health));
        health
    }

    /// Runs `f` on the breaker.
    pub fn breaker<T>(&self, f: impl FnOnce(&mut CircuitBreaker) -> T) -> T {
        f(&mut self.breaker.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// What the router needs to know, at `now`.
    pub fn view(&self, now: Duration) -> LaneView {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let failures = recent.1.iter().filter(|f| **f).count();
        LaneView {
            allowed: self.breaker(|b| b.would_allow(now)),
            p50: percentile(&recent.0, 0.5),
            error_rate: if recent.1.is_empty() {
                0.0
            } else {
                failures as f64 / recent.1.len() as f64
            },
        }
    }

    /// `n` messages handed to the platform.
    pub fn sent(&self, n: usize) {
        self.sent.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// `n` messages acknowledged `latency` after they were handed over.
    pub fn acknowledged(&self, n: usize, latency: Duration, now: Duration) {
        self.acknowledged.fetch_add(n as u64, Ordering::Relaxed);
        {
            let mut acks = self.acks.lock().unwrap_or_else(|e| e.into_inner());
            let first = acks.map_or(now, |(first, _)| first);
            *acks = Some((first, now));
        }
        self.breaker(|b| b.record_success(now));
        self.outcome(Some(latency), false);
    }

    /// `n` messages not acknowledged because of a retryable `error`; whether the breaker is
    /// open now.
    pub fn failed(&self, n: usize, error: &str, now: Duration) -> bool {
        self.failed.fetch_add(n as u64, Ordering::Relaxed);
        self.outcome(None, true);
        self.breaker(|b| b.record_failure(now, error))
    }

    fn outcome(&self, latency: Option<Duration>, failed: bool) {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(latency) = latency {
            if recent.0.len() == LATENCIES {
                recent.0.pop_front();
            }
            recent.0.push_back(latency);
        }
        if recent.1.len() == LATENCIES {
            recent.1.pop_front();
        }
        recent.1.push_back(failed);
    }
}

fn percentile(latencies: &VecDeque<Duration>, q: f64) -> Option<Duration> {
    if latencies.is_empty() {
        return None;
    }
    let mut sorted: Vec<Duration> = latencies.iter().copied().collect();
    sorted.sort_unstable();
    let at = ((sorted.len() - 1) as f64 * q).round() as usize;
    Some(sorted[at])
}

static REGISTRY: LazyLock<Mutex<Vec<Weak<PlatformHealth>>>> =
    LazyLock::new(|| Mutex::new(Vec::new()));

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// The columns of `vcfq.stream_health`.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("table_name", DataType::Utf8, false),
        Field::new("role", DataType::Utf8, false),
        Field::new("platform", DataType::Utf8, false),
        Field::new("target", DataType::Utf8, false),
        Field::new("state", DataType::Utf8, false),
        Field::new("consecutive_failures", DataType::UInt64, false),
        Field::new("messages_sent", DataType::UInt64, false),
        Field::new("messages_acknowledged", DataType::UInt64, false),
        Field::new("messages_failed", DataType::UInt64, false),
        Field::new("ack_p50_ms", DataType::Float64, true),
        Field::new("ack_p99_ms", DataType::Float64, true),
        Field::new("first_ack", ts(), true),
        Field::new("last_ack", ts(), true),
        Field::new("last_transition", ts(), true),
        Field::new("last_transition_reason", DataType::Utf8, true),
    ]))
}

/// One row per platform of every coordinated table alive, now.
pub fn snapshot() -> RecordBatch {
    let live: Vec<Arc<PlatformHealth>> = {
        let all = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        all.iter().filter_map(Weak::upgrade).collect()
    };
    let mut table = StringBuilder::new();
    let mut role = StringBuilder::new();
    let mut platform = StringBuilder::new();
    let mut target = StringBuilder::new();
    let mut state = StringBuilder::new();
    let mut failures = UInt64Builder::new();
    let mut sent = UInt64Builder::new();
    let mut acked = UInt64Builder::new();
    let mut failed = UInt64Builder::new();
    let mut p50 = Float64Builder::new();
    let mut p99 = Float64Builder::new();
    let mut at = TimestampMillisecondBuilder::new().with_timezone("UTC");
    let mut first_ack = TimestampMillisecondBuilder::new().with_timezone("UTC");
    let mut last_ack = TimestampMillisecondBuilder::new().with_timezone("UTC");
    let mut reason = StringBuilder::new();
    let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
    for h in &live {
        table.append_value(&h.table);
        role.append_value(h.lane.name());
        platform.append_value(h.platform);
        target.append_value(&h.target);
        let (s, f, last) = h.breaker(|b| {
            // an open breaker whose time has passed lets the next write through as a probe
            let s = if b.state() == BreakerState::Open && b.would_allow(now()) {
                BreakerState::HalfOpen
            } else {
                b.state()
            };
            (s, b.consecutive_failures(), b.last_transition().cloned())
        });
        state.append_value(s.to_string());
        failures.append_value(u64::from(f));
        sent.append_value(h.sent.load(Ordering::Relaxed));
        acked.append_value(h.acknowledged.load(Ordering::Relaxed));
        failed.append_value(h.failed.load(Ordering::Relaxed));
        {
            let recent = h.recent.lock().unwrap_or_else(|e| e.into_inner());
            p50.append_option(ms(percentile(&recent.0, 0.5)));
            p99.append_option(ms(percentile(&recent.0, 0.99)));
        }
        let acks = *h.acks.lock().unwrap_or_else(|e| e.into_inner());
        first_ack.append_option(acks.map(|(first, _)| wall_ms(first)));
        last_ack.append_option(acks.map(|(_, last)| wall_ms(last)));
        at.append_option(last.as_ref().map(|t| wall_ms(t.at)));
        reason.append_option(last.map(|t| t.reason));
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(table.finish()),
        Arc::new(role.finish()),
        Arc::new(platform.finish()),
        Arc::new(target.finish()),
        Arc::new(state.finish()),
        Arc::new(failures.finish()),
        Arc::new(sent.finish()),
        Arc::new(acked.finish()),
        Arc::new(failed.finish()),
        Arc::new(p50.finish()),
        Arc::new(p99.finish()),
        Arc::new(first_ack.finish()),
        Arc::new(last_ack.finish()),
        Arc::new(at.finish()),
        Arc::new(reason.finish()),
    ];
    RecordBatch::try_new(schema(), columns).expect("stream_health columns match their schema")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_recent_latencies() {
        let l: VecDeque<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&l, 0.5), Some(Duration::from_millis(51)));
        assert_eq!(percentile(&l, 0.99), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&VecDeque::new(), 0.5), None);
    }

    #[test]
    fn a_registered_platform_is_listed_while_it_lives() {
        let h = PlatformHealth::register(
            "health_unit_test",
            Lane::Fallback,
            "kafka",
            "kafka x/t".into(),
            BreakerConfig {
                failures: 1,
                ..Default::default()
            },
        );
        h.sent(10);
        h.acknowledged(10, Duration::from_millis(4), now());
        assert!(h.failed(3, "connection refused", now()));
        let rows = |name: &str| {
            let b = snapshot();
            let names = b
                .column(0)
                .as_any()
                .downcast_ref::<datafusion::arrow::array::StringArray>()
                .unwrap()
                .clone();
            (0..b.num_rows())
                .filter(|i| names.value(*i) == name)
                .map(|i| b.slice(i, 1))
                .collect::<Vec<_>>()
        };
        let found = rows("health_unit_test");
        assert_eq!(found.len(), 1);
        let row = &found[0];
        let text =
            datafusion::arrow::util::pretty::pretty_format_batches(std::slice::from_ref(row))
                .unwrap()
                .to_string();
        for part in [
            "fallback",
            "kafka",
            "open",
            "| 10 ",
            "| 3 ",
            "connection refused",
        ] {
            assert!(text.contains(part), "{part} in {text}");
        }
        drop(h);
        assert!(rows("health_unit_test").is_empty());
    }
}
