//! Kafka topics as tables and sinks, against a real Apache Kafka broker started by
//! `scripts/kafka start` (`scripts/test.sh` does it and exports `VCFQ_KAFKA_BOOTSTRAP`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::fixtures::GEN_RECORDS;
use crate::topics::{assert_rows_equal_the_file, count, ctx, inserted, path, run};

pub(crate) fn bootstrap() -> String {
    std::env::var("VCFQ_KAFKA_BOOTSTRAP").unwrap_or_else(|_| {
        panic!(
            "VCFQ_KAFKA_BOOTSTRAP is not set: run the tests with scripts/test.sh, or start a broker \
             with `scripts/kafka start` and export VCFQ_KAFKA_BOOTSTRAP=<the address it prints>"
        )
    })
}

/// A topic name no other test (or earlier run) uses.
fn topic(name: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{name}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// `CREATE EXTERNAL TABLE name STORED AS KAFKA` on `topic` of the test broker.
async fn create(ctx: &SessionContext, name: &str, topic: &str, options: &str) {
    let sql = format!(
        "CREATE EXTERNAL TABLE {name} STORED AS KAFKA LOCATION '{}/{topic}' {options}",
        bootstrap()
    );
    run(ctx, &sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_of_a_generated_vcf_keeps_every_column() {
    let ctx = ctx();
    let t = topic("roundtrip");
    let vcf = path("gen.vcf.gz");
    create(
        &ctx,
        "calls",
        &t,
        &format!("OPTIONS ('like' '{vcf}', 'partitions' '3')"),
    )
    .await;
    let written = run(&ctx, &format!("INSERT INTO calls SELECT * FROM '{vcf}'"))
        .await
        .expect("insert");
    assert_eq!(inserted(&written), GEN_RECORDS);
    assert_eq!(
        count(&ctx, "SELECT count(*) FROM calls").await,
        GEN_RECORDS as i64
    );
    assert_eq!(
        count(&ctx, "SELECT count(DISTINCT _partition) FROM calls").await,
        3,
        "keys spread over the partitions"
    );

    // rows out equal rows in, column by column
    assert_rows_equal_the_file(&ctx, "calls", &vcf).await;
    // each message is keyed by its canonical variant key
    let keys = run(
        &ctx,
        "SELECT _key, chrom, pos FROM calls WHERE _key IS NULL OR NOT starts_with(_key, chrom || ':') LIMIT 1",
    )
    .await
    .expect("keys");
    assert_eq!(keys.iter().map(RecordBatch::num_rows).sum::<usize>(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_select_reads_the_snapshot_taken_when_it_starts() {
    let ctx = ctx();
    let t = topic("snapshot");
    let sample = path("sample.vcf");
    create(&ctx, "sites", &t, "").await;
    let insert =
        format!("INSERT INTO sites SELECT chrom, pos, id, ref, alt, qual, filter FROM '{sample}'");
    assert_eq!(inserted(&run(&ctx, &insert).await.expect("insert")), 6);
    // planned (watermarks taken) before more rows arrive
    let mut stream = vcfq::session::sql(&ctx, "SELECT pos FROM sites")
        .await
        .expect("plan")
        .execute_stream()
        .await
        .expect("stream");
    assert_eq!(
        inserted(&run(&ctx, &insert).await.expect("insert again")),
        6
    );
    let mut rows = 0;
    while let Some(batch) = stream.next().await {
        rows += batch.expect("batch").num_rows();
    }
    assert_eq!(
        rows, 6,
        "rows produced after the query started are not read"
    );
    assert_eq!(count(&ctx, "SELECT count(*) FROM sites").await, 12);

    // start positions: latest (nothing yet), a time (ms), a time after every message
    let future_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64 + 3_600_000)
        .unwrap_or(i64::MAX);
    for (i, (start, expected)) in [
        ("latest".to_string(), 0),
        ("0".to_string(), 12),
        ("2001-01-01T00:00:00Z".to_string(), 12),
        (future_ms.to_string(), 0),
    ]
    .into_iter()
    .enumerate()
    {
        create(
            &ctx,
            &format!("s{i}"),
            &t,
            &format!("OPTIONS ('start' '{start}')"),
        )
        .await;
        assert_eq!(
            count(&ctx, &format!("SELECT count(*) FROM s{i}")).await,
            expected,
            "start {start}"
        );
    }
    // _timestamp filters seek by time
    assert_eq!(
        count(
            &ctx,
            "SELECT count(*) FROM sites WHERE _timestamp >= now() - INTERVAL '1 hour'"
        )
        .await,
        12
    );
    assert_eq!(
        count(
            &ctx,
            "SELECT count(*) FROM sites WHERE _timestamp > now() + INTERVAL '1 hour'"
        )
        .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_mode_streams_until_the_limit() {
    let ctx = ctx();
    let t = topic("follow");
    let sample = path("sample.vcf");
    create(&ctx, "live", &t, "OPTIONS ('mode' 'follow')").await;
    let insert =
        format!("INSERT INTO live SELECT chrom, pos, id, ref, alt, qual, filter FROM '{sample}'");
    run(&ctx, &insert).await.expect("insert");
    let plan = vcfq::session::sql(&ctx, "EXPLAIN SELECT pos FROM live LIMIT 3")
        .await
        .expect("explain");
    let text = datafusion::arrow::util::pretty::pretty_format_batches(
        &plan.collect().await.expect("explain"),
    )
    .expect("format")
    .to_string();
    assert!(text.contains("mode=follow"), "{text}");
    // a followed read filters its own batches (a FilterExec would hold rows back)
    let plan = vcfq::session::sql(
        &ctx,
        "EXPLAIN SELECT pos FROM live WHERE pos > 100 AND _offset >= 1",
    )
    .await
    .expect("explain");
    let text = datafusion::arrow::util::pretty::pretty_format_batches(
        &plan.collect().await.expect("explain"),
    )
    .expect("format")
    .to_string();
    assert!(
        text.contains("partitions=[0:1..]") && text.contains("filter=pos@1 > 100"),
        "{text}"
    );
    assert!(!text.contains("FilterExec"), "{text}");
    let filtered = tokio::time::timeout(
        Duration::from_secs(60),
        run(&ctx, "SELECT pos FROM live WHERE pos > 100 LIMIT 2"),
    )
    .await
    .expect("ends")
    .expect("query");
    let pos: Vec<i64> = filtered
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect();
    assert_eq!(pos, vec![200, 300]);
    // more rows than the topic holds: the query waits for them
    let reader = {
        let ctx = ctx.clone();
        tokio::spawn(async move { run(&ctx, "SELECT pos FROM live LIMIT 9").await })
    };
    let limited = tokio::time::timeout(
        Duration::from_secs(60),
        run(&ctx, "SELECT pos FROM live LIMIT 3"),
    )
    .await
    .expect("LIMIT ends a follow query")
    .expect("query");
    assert_eq!(limited.iter().map(RecordBatch::num_rows).sum::<usize>(), 3);
    run(&ctx, &insert).await.expect("insert more");
    let waited = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("the follow query sees new rows")
        .expect("join")
        .expect("query");
    assert_eq!(waited.iter().map(RecordBatch::num_rows).sum::<usize>(), 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_and_offset_filters_become_seek_positions() {
    let ctx = ctx();
    let t = topic("pushdown");
    let vcf = path("gen.vcf.gz");
    create(&ctx, "calls", &t, "OPTIONS ('partitions' '2')").await;
    run(
        &ctx,
        &format!("INSERT INTO calls SELECT chrom, pos, id, ref, alt, qual, filter FROM '{vcf}' WHERE pos < 5000000"),
    )
    .await
    .expect("insert");
    let in_partition_1 = count(&ctx, "SELECT count(*) FROM calls WHERE _partition = 1").await;
    assert!(in_partition_1 > 10, "{in_partition_1}");
    let sql = "SELECT count(*) FROM calls WHERE _partition = 1 AND _offset >= 5 AND _offset < 10";
    assert_eq!(count(&ctx, sql).await, 5);
    let explain = run(&ctx, &format!("EXPLAIN {sql}")).await.expect("explain");
    let text = datafusion::arrow::util::pretty::pretty_format_batches(&explain)
        .expect("format")
        .to_string();
    assert!(text.contains("partitions=[1:5..10]"), "{text}");
    // the pushed-down read and a full read agree
    let full = count(
        &ctx,
        "SELECT count(*) FROM (SELECT * FROM calls) WHERE _partition + 0 = 1 AND _offset + 0 BETWEEN 5 AND 9",
    )
    .await;
    assert_eq!(full, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_transactional_insert_leaves_nothing_visible() {
    let ctx = ctx();
    let t = topic("txn");
    let bad = path("bad_tail.vcf");
    let gen_vcf = path("gen.vcf");
    create(
        &ctx,
        "committed",
        &t,
        &format!("OPTIONS ('like' '{gen_vcf}', 'transactional' 'true')"),
    )
    .await;
    create(
        &ctx,
        "everything",
        &t,
        &format!("OPTIONS ('like' '{gen_vcf}', 'kafka.isolation.level' 'read_uncommitted')"),
    )
    .await;
    let e = run(
        &ctx,
        &format!("INSERT INTO committed SELECT * FROM '{bad}'"),
    )
    .await
    .expect_err("the bad last record fails the insert")
    .to_string();
    assert!(e.contains("bad_tail.vcf:30041"), "{e}");
    assert_eq!(count(&ctx, "SELECT count(*) FROM committed").await, 0);
    let sent = count(&ctx, "SELECT count(*) FROM everything").await;
    assert!(
        sent > 0,
        "messages were sent before the failure, then aborted"
    );
    // a good transactional insert is visible as a whole
    let good = run(
        &ctx,
        &format!("INSERT INTO committed SELECT * FROM '{gen_vcf}' WHERE pos < 3000000"),
    )
    .await
    .expect("insert");
    assert_eq!(
        count(&ctx, "SELECT count(*) FROM committed").await,
        inserted(&good) as i64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrow_ipc_messages_round_trip() {
    let ctx = ctx();
    let t = topic("arrow");
    let sample = path("sample.vcf");
    create(
        &ctx,
        "ipc",
        &t,
        &format!("OPTIONS ('format' 'arrow', 'like' '{sample}')"),
    )
    .await;
    let written = run(&ctx, &format!("INSERT INTO ipc SELECT * FROM '{sample}'"))
        .await
        .expect("insert");
    assert_eq!(inserted(&written), 6);
    assert_rows_equal_the_file(&ctx, "ipc", &sample).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_messages_are_reported_or_skipped() {
    let ctx = ctx();
    let t = topic("garbage");
    create(&ctx, "strict", &t, "").await;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .expect("producer");
    for value in [
        r#"{"chrom":"chr1","pos":10,"ref":"A","alt":["C"]}"#,
        "not json",
        r#"{"chrom":"chr1","pos":"twenty","ref":"A"}"#,
        r#"{"chrom":"chr1","pos":30,"ref":"G","alt":["T"]}"#,
    ] {
        producer
            .send(
                FutureRecord::<str, str>::to(&t).payload(value),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("produce");
    }
    let e = run(&ctx, "SELECT * FROM strict")
        .await
        .expect_err("bad message")
        .to_string();
    assert!(
        e.contains(&format!(
            "{t} partition 0 offset 1: message does not decode"
        )),
        "{e}"
    );
    create(&ctx, "lenient", &t, "OPTIONS ('on_error' 'skip')").await;
    let rows = run(&ctx, "SELECT pos FROM lenient ORDER BY pos")
        .await
        .expect("skip");
    let pos: Vec<i64> = rows
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect();
    assert_eq!(pos, vec![10, 30]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_is_a_clear_error() {
    let ctx = ctx();
    let e = run(
        &ctx,
        "CREATE EXTERNAL TABLE nowhere STORED AS KAFKA LOCATION '127.0.0.1:1/calls' OPTIONS ('timeout.ms' '2000')",
    )
    .await
    .expect_err("no broker")
    .to_string();
    assert!(
        e.contains("kafka 127.0.0.1:1/calls: broker does not answer"),
        "{e}"
    );
}

/// A broker of this test's own, stopped on drop.
struct OwnBroker {
    dir: PathBuf,
    bootstrap: String,
}

impl OwnBroker {
    fn start(dir: &Path) -> OwnBroker {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka");
        let out = Command::new(&script)
            .arg("start")
            .arg(dir)
            .output()
            .expect("scripts/kafka start");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        OwnBroker {
            dir: dir.to_path_buf(),
            bootstrap: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        }
    }

    fn stop(&self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka");
        let _ = Command::new(&script).arg("stop").arg(&self.dir).status();
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_stopped_during_an_insert_fails_the_statement() {
    let dir = tempfile::tempdir().expect("dir");
    let broker = OwnBroker::start(dir.path());
    let ctx = ctx();
    let t = topic("dies");
    run(
        &ctx,
        &format!(
            "CREATE EXTERNAL TABLE doomed STORED AS KAFKA LOCATION '{}/{t}' OPTIONS ('kafka.message.timeout.ms' '5000')",
            broker.bootstrap
        ),
    )
    .await
    .expect("create");
    let insert = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            run(
                &ctx,
                "INSERT INTO doomed (chrom, pos, ref) SELECT 'chr1', value, 'A' FROM generate_series(1, 1000000000)",
            )
            .await
        })
    };
    // wait until messages arrive, then stop the broker under the running INSERT
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .create()
        .expect("consumer");
    let mut high = 0;
    for _ in 0..300 {
        high = consumer
            .fetch_watermarks(&t, 0, Duration::from_secs(5))
            .map(|(_, h)| h)
            .unwrap_or(0);
        if high > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(high > 0, "the INSERT never got going");
    broker.stop();
    let result = tokio::time::timeout(Duration::from_secs(120), insert)
        .await
        .expect("the INSERT ends")
        .expect("join");
    let e = result
        .expect_err("an INSERT into a stopped broker must fail")
        .to_string();
    assert!(
        e.contains(&format!("kafka {}/{t}", broker.bootstrap)),
        "{e}"
    );
    assert!(
        e.contains("message not delivered") || e.contains("cannot queue"),
        "{e}"
    );
}

#[test]
fn the_cli_prints_a_followed_topic_as_rows_arrive() {
    use std::io::{BufRead, BufReader};
    let t = topic("cli-follow");
    let sample = path("sample.vcf");
    let vcfq = env!("CARGO_BIN_EXE_vcfq");
    let out = Command::new(vcfq)
        .args(["-q", "-c"])
        .arg(format!(
            "CREATE EXTERNAL TABLE s STORED AS KAFKA LOCATION '{}/{t}'; INSERT INTO s SELECT chrom, pos, id, ref, alt, qual, filter FROM '{sample}'",
            bootstrap()
        ))
        .output()
        .expect("vcfq");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // an unbounded query: its rows must come out while it still runs
    let mut child = Command::new(vcfq)
        .args(["-q", "--format", "csv", "-c"])
        .arg(format!(
            "CREATE EXTERNAL TABLE f STORED AS KAFKA LOCATION '{}/{t}' OPTIONS ('mode' 'follow'); SELECT pos FROM f",
            bootstrap()
        ))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("vcfq follow");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let lines: Vec<String> = BufReader::new(stdout)
            .lines()
            .take(7)
            .map_while(Result::ok)
            .collect();
        let _ = tx.send(lines);
    });
    let lines = rx.recv_timeout(Duration::from_secs(60));
    let still_running = child.try_wait().expect("wait").is_none();
    let _ = child.kill();
    let _ = child.wait();
    let lines = lines.expect("rows within 60 s");
    assert_eq!(lines, vec!["pos", "100", "200", "300", "400", "50", "60"]);
    assert!(still_running, "the follow query ended by itself");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_transactional_inserts_do_not_fence_each_other() {
    // regression: every producer used the transactional id `vcfq-<topic>`, so a second
    // transactional INSERT fenced the first
    let t = topic("txn-concurrent");
    let vcf = path("gen.vcf.gz");
    let first = ctx();
    let second = ctx();
    for c in [&first, &second] {
        create(
            c,
            "calls",
            &t,
            &format!("OPTIONS ('like' '{vcf}', 'transactional' 'true')"),
        )
        .await;
    }
    let sql = format!("INSERT INTO calls SELECT * FROM '{vcf}'");
    let (a, b) = tokio::join!(run(&first, &sql), run(&second, &sql));
    assert_eq!(inserted(&a.expect("first INSERT")), GEN_RECORDS);
    assert_eq!(inserted(&b.expect("second INSERT")), GEN_RECORDS);
    // the same table again: its producer is reused (one more transaction on it)
    let again = run(
        &first,
        &format!("INSERT INTO calls SELECT * FROM '{vcf}' LIMIT 10"),
    )
    .await
    .expect("third INSERT");
    assert_eq!(inserted(&again), 10);
    assert_eq!(
        count(&first, "SELECT count(*) FROM calls").await,
        2 * GEN_RECORDS as i64 + 10
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_thread_that_fails_mid_topic_fails_the_query() {
    // regression: a reader thread that panicked ended the stream as if the topic were read
    let t = topic("reader-fault");
    let ctx = ctx();
    let vcf = path("gen.vcf.gz");
    create(&ctx, "calls", &t, &format!("OPTIONS ('like' '{vcf}')")).await;
    run(&ctx, &format!("INSERT INTO calls SELECT * FROM '{vcf}'"))
        .await
        .expect("insert");
    vcfq::readers::inject_panic(&t, 1);
    let e = run(&ctx, "SELECT count(*) FROM calls")
        .await
        .expect_err("a failed reader must fail the query");
    let message = vcfq::error::one_line(&anyhow::Error::new(e));
    assert!(
        message.contains(&format!("/{t} partition 0: reader failed")),
        "{message}"
    );
    assert!(message.contains("fault injected"), "{message}");
}
