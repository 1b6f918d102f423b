//! Iggy topics as tables and sinks, against a real Apache Iggy server 0.8.0 started by
//! `scripts/iggy start` (`scripts/test.sh` does it and exports `VCFQ_IGGY`). Without a server
//! (no `$IGGY_SERVER` and no source tarball in ../shared/vendor) these tests say so and pass;
//! with one they must run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use iggy::prelude::{
    AutoLogin, Client, Identifier, IggyMessage, MessageClient, Partitioning, TcpClient,
    TcpClientConfig,
};
use tokio::net::{TcpListener, TcpStream};

use crate::fixtures::GEN_RECORDS;
use crate::topics::{assert_rows_equal_the_file, count, ctx, explain, inserted, path, run};

pub(crate) fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/iggy")
}

/// The test server's `iggy://user:pass@host:port`, or `None` (and a line saying why) when
/// no Iggy server can be had on this machine.
pub(crate) fn server() -> Option<String> {
    if let Ok(url) = std::env::var("VCFQ_IGGY") {
        return Some(url.trim().to_string());
    }
    let available = Command::new(script())
        .arg("available")
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        eprintln!(
            "iggy tests skipped: no Iggy server (set IGGY_SERVER=/path/to/iggy-server or put iggy-server-0.8.0.tar.gz in ../shared/vendor, then run scripts/test.sh)"
        );
        return None;
    }
    panic!(
        "VCFQ_IGGY is not set: run the tests with scripts/test.sh, or start a server with \
         `scripts/iggy start DIR` and export VCFQ_IGGY=<the URL it prints>"
    );
}

/// A name no other test (or earlier run) uses.
pub(crate) fn unique(name: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{name}-{}-{}-{}",
        std::process::id(),
        nanos % 1_000_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// `CREATE EXTERNAL TABLE name STORED AS IGGY` on `stream/topic` of `url`.
async fn create(ctx: &SessionContext, url: &str, name: &str, topic: &str, options: &str) {
    let sql = format!(
        "CREATE EXTERNAL TABLE {name} STORED AS IGGY LOCATION '{url}/it-stream/{topic}' {options}"
    );
    run(ctx, &sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// `host:port` of an `iggy://user:pass@host:port` URL.
fn address(url: &str) -> String {
    url.rsplit_once('@')
        .map_or(url, |(_, a)| a)
        .trim_end_matches('/')
        .to_string()
}

/// A client of the SDK itself, to put messages vcfq did not write.
async fn raw_client(url: &str) -> TcpClient {
    let config = TcpClientConfig {
        server_address: address(url),
        auto_login: AutoLogin::Enabled(iggy_common::Credentials::UsernamePassword(
            "vcfq".into(),
            secrecy::SecretString::from("vcfq-test".to_string()),
        )),
        ..TcpClientConfig::default()
    };
    let client = TcpClient::create(Arc::new(config)).expect("client");
    tokio::time::timeout(Duration::from_secs(20), Client::connect(&client))
        .await
        .expect("connects in time")
        .expect("connect");
    client
}

async fn round_trip(url: &str, format: &str) {
    let ctx = ctx();
    let t = unique(&format!("roundtrip-{format}"));
    let vcf = path("gen.vcf.gz");
    create(
        &ctx,
        url,
        "calls",
        &t,
        &format!("OPTIONS ('like' '{vcf}', 'partitions' '3', 'format' '{format}')"),
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
    // keyed by the canonical variant key; one variant, one partition; ids are 32 hex digits
    assert_eq!(
        count(
            &ctx,
            "SELECT count(*) FROM calls WHERE _key IS NULL OR NOT starts_with(_key, chrom || ':') OR length(_id) <> 32"
        )
        .await,
        0
    );
    assert_eq!(
        count(&ctx, "SELECT count(DISTINCT _id) FROM calls").await,
        GEN_RECORDS as i64,
        "distinct rows have distinct ids"
    );
    // the same rows again: the same ids, in the same partitions
    run(
        &ctx,
        &format!("INSERT INTO calls SELECT * FROM '{vcf}' WHERE pos < 2000000"),
    )
    .await
    .expect("insert again");
    assert_eq!(
        count(
            &ctx,
            "SELECT count(*) FROM (SELECT _id FROM calls GROUP BY _id HAVING count(*) = 2 AND count(DISTINCT _partition) = 1)"
        )
        .await,
        count(&ctx, &format!("SELECT count(*) FROM '{vcf}' WHERE pos < 2000000")).await,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_of_a_generated_vcf_keeps_every_column() {
    let Some(url) = server() else { return };
    round_trip(&url, "json").await;
    round_trip(&url, "arrow").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_select_reads_the_snapshot_taken_when_it_starts() {
    let Some(url) = server() else { return };
    let ctx = ctx();
    let t = unique("snapshot");
    let sample = path("sample.vcf");
    create(&ctx, &url, "sites", &t, "").await;
    let insert =
        format!("INSERT INTO sites SELECT chrom, pos, id, ref, alt, qual, filter FROM '{sample}'");
    assert_eq!(inserted(&run(&ctx, &insert).await.expect("insert")), 6);
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
    assert_eq!(rows, 6, "rows written after the query started are not read");
    assert_eq!(count(&ctx, "SELECT count(*) FROM sites").await, 12);

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
            &url,
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
async fn follow_mode_streams_until_the_limit_and_waits_for_new_rows() {
    let Some(url) = server() else { return };
    let ctx = ctx();
    let t = unique("follow");
    let sample = path("sample.vcf");
    create(&ctx, &url, "live", &t, "OPTIONS ('mode' 'follow')").await;
    let insert =
        format!("INSERT INTO live SELECT chrom, pos, id, ref, alt, qual, filter FROM '{sample}'");
    run(&ctx, &insert).await.expect("insert");
    let text = explain(
        &ctx,
        "SELECT pos FROM live WHERE pos > 100 AND _offset >= 1",
    )
    .await;
    assert!(
        text.contains("IggyExec")
            && text.contains("partitions=[0:1..]")
            && text.contains("mode=follow")
            && text.contains("filter=pos@1 > 100"),
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
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!reader.is_finished(), "9 rows cannot be read from 6");
    run(&ctx, &insert).await.expect("insert more");
    let waited = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("the follow query sees the new rows")
        .expect("join")
        .expect("query");
    assert_eq!(waited.iter().map(RecordBatch::num_rows).sum::<usize>(), 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_and_offset_filters_become_poll_positions() {
    let Some(url) = server() else { return };
    let ctx = ctx();
    let t = unique("pushdown");
    let vcf = path("gen.vcf.gz");
    create(&ctx, &url, "calls", &t, "OPTIONS ('partitions' '2')").await;
    run(
        &ctx,
        &format!("INSERT INTO calls SELECT chrom, pos, id, ref, alt, qual, filter FROM '{vcf}' WHERE pos < 5000000"),
    )
    .await
    .expect("insert");
    let in_1 = count(&ctx, "SELECT count(*) FROM calls WHERE _partition = 1").await;
    assert!(in_1 > 10, "{in_1}");
    let sql = "SELECT count(*) FROM calls WHERE _partition = 1 AND _offset >= 5 AND _offset < 10";
    assert_eq!(count(&ctx, sql).await, 5);
    let text = explain(&ctx, sql).await;
    assert!(text.contains("partitions=[1:5..10]"), "{text}");
    let full = count(
        &ctx,
        "SELECT count(*) FROM (SELECT * FROM calls) WHERE _partition + 0 = 1 AND _offset + 0 BETWEEN 5 AND 9",
    )
    .await;
    assert_eq!(full, 5);
    // offsets are those of the partition: 0, 1, 2, … with no gap
    assert_eq!(
        count(
            &ctx,
            "SELECT count(*) FROM (SELECT _partition, max(_offset) + 1 - count(*) AS gap FROM calls GROUP BY _partition) WHERE gap <> 0"
        )
        .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_messages_are_reported_or_skipped() {
    let Some(url) = server() else { return };
    let ctx = ctx();
    let t = unique("garbage");
    create(&ctx, &url, "strict", &t, "").await;
    let client = raw_client(&url).await;
    let mut messages: Vec<IggyMessage> = [
        r#"{"chrom":"chr1","pos":10,"ref":"A","alt":["C"]}"#,
        "not json",
        r#"{"chrom":"chr1","pos":"twenty","ref":"A"}"#,
        r#"{"chrom":"chr1","pos":30,"ref":"G","alt":["T"]}"#,
    ]
    .iter()
    .map(|v| IggyMessage::from_str(v).expect("message"))
    .collect();
    client
        .send_messages(
            &Identifier::named("it-stream").unwrap(),
            &Identifier::named(&t).unwrap(),
            &Partitioning::partition_id(0),
            &mut messages,
        )
        .await
        .expect("send");
    let e = run(&ctx, "SELECT * FROM strict")
        .await
        .expect_err("bad message")
        .to_string();
    assert!(
        e.contains(&format!(
            "/it-stream/{t} partition 0 offset 1: message does not decode"
        )),
        "{e}"
    );
    create(&ctx, &url, "lenient", &t, "OPTIONS ('on_error' 'skip')").await;
    let rows = run(&ctx, "SELECT pos, _key FROM lenient ORDER BY pos")
        .await
        .expect("skip");
    let pos: Vec<i64> = rows
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect();
    assert_eq!(pos, vec![10, 30]);
    assert_eq!(
        rows[0].column(1).null_count(),
        rows[0].num_rows(),
        "no key header"
    );
    // EXPLAIN ANALYZE counts what the scan read, skipped and passed on
    let analyzed = run(&ctx, "EXPLAIN ANALYZE SELECT pos FROM lenient")
        .await
        .expect("explain analyze");
    let analyzed = datafusion::arrow::util::pretty::pretty_format_batches(&analyzed)
        .expect("format")
        .to_string();
    for metric in ["output_rows=2", "messages_read=4", "messages_skipped=2"] {
        assert!(analyzed.contains(metric), "{metric} in {analyzed}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_and_unreachable_servers_are_one_line_errors_in_bounded_time() {
    let Some(url) = server() else { return };
    let ctx = ctx();
    let addr = address(&url);
    let started = Instant::now();
    let e = run(
        &ctx,
        &format!("CREATE EXTERNAL TABLE w STORED AS IGGY LOCATION 'iggy://vcfq:wrong-secret@{addr}/s/t' OPTIONS ('timeout.ms' '3000')"),
    )
    .await
    .expect_err("wrong password")
    .to_string();
    assert!(
        e.contains(&format!(
            "iggy {addr}/s/t: cannot connect: wrong user name or password"
        )),
        "{e}"
    );
    assert!(!e.contains("wrong-secret") && !e.contains('\n'), "{e}");
    let e = run(
        &ctx,
        "CREATE EXTERNAL TABLE n STORED AS IGGY LOCATION 'iggy://vcfq:pw@127.0.0.1:1/s/t' OPTIONS ('timeout.ms' '3000')",
    )
    .await
    .expect_err("no server")
    .to_string();
    assert!(e.contains("iggy 127.0.0.1:1/s/t: cannot connect"), "{e}");
    assert!(!e.contains("pw@") && !e.contains('\n'), "{e}");
    // a port that accepts but never answers: the timeout ends it
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let silent_addr = silent.local_addr().expect("addr");
    let e = run(
        &ctx,
        &format!("CREATE EXTERNAL TABLE h STORED AS IGGY LOCATION 'iggy://vcfq:pw@{silent_addr}/s/t' OPTIONS ('timeout.ms' '2000')"),
    )
    .await
    .expect_err("a server that never answers")
    .to_string();
    assert!(e.contains("no answer within 2000 ms"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "bounded by the timeouts: {:?}",
        started.elapsed()
    );
    // options of the other platform are rejected
    let e = run(
        &ctx,
        &format!("CREATE EXTERNAL TABLE x STORED AS IGGY LOCATION '{url}/s/t' OPTIONS ('transactional' 'true')"),
    )
    .await
    .expect_err("kafka option")
    .to_string();
    assert!(e.contains("is for STORED AS KAFKA tables"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_may_be_options_and_never_show_in_plans() {
    let Some(url) = server() else { return };
    let ctx = ctx();
    let t = unique("creds");
    let addr = address(&url);
    run(
        &ctx,
        &format!("CREATE EXTERNAL TABLE c STORED AS IGGY LOCATION '{addr}/it-stream/{t}' OPTIONS ('user' 'vcfq', 'password' 'vcfq-test')"),
    )
    .await
    .expect("create with credentials as options");
    run(
        &ctx,
        &format!(
            "INSERT INTO c SELECT chrom, pos, id, ref, alt, qual, filter FROM '{}'",
            path("sample.vcf")
        ),
    )
    .await
    .expect("insert");
    let text = explain(&ctx, "SELECT * FROM c").await;
    assert!(
        text.contains(&format!("iggy {addr}/it-stream/{t}")),
        "{text}"
    );
    assert!(!text.contains("vcfq-test"), "{text}");
    let verbose = run(&ctx, "EXPLAIN VERBOSE SELECT * FROM c")
        .await
        .expect("verbose");
    let verbose = datafusion::arrow::util::pretty::pretty_format_batches(&verbose)
        .expect("format")
        .to_string();
    assert!(
        !verbose.contains("vcfq-test"),
        "password in EXPLAIN VERBOSE"
    );
}

/// A TCP relay on a fixed loopback port to wherever `upstream` says (a restarted Iggy server
/// comes up on a new port). When the upstream dies, its relayed connections die with it.
pub(crate) struct Relay {
    pub(crate) address: String,
    upstream: Arc<Mutex<String>>,
}

impl Relay {
    pub(crate) async fn start(upstream: &str) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        let upstream = Arc::new(Mutex::new(upstream.to_string()));
        let target = Arc::clone(&upstream);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let to = target.lock().unwrap().clone();
                tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Relay { address, upstream }
    }

    pub(crate) fn point_to(&self, upstream: &str) {
        *self.upstream.lock().unwrap() = upstream.to_string();
    }
}

pub(crate) fn host_port(url: &str) -> String {
    url.rsplit('@').next().unwrap().to_string()
}

/// The primary's URL through the relay.
pub(crate) fn through(relay: &Relay, url: &str) -> String {
    let credentials = url
        .trim_start_matches("iggy://")
        .rsplit_once('@')
        .map(|(c, _)| c.to_string())
        .unwrap();
    format!("iggy://{credentials}@{}", relay.address)
}

/// An Iggy server of this test's own (it gets killed), stopped on drop.
pub(crate) struct OwnServer {
    pub(crate) dir: PathBuf,
    pub(crate) url: String,
}

impl OwnServer {
    pub(crate) fn start(dir: &Path) -> OwnServer {
        let out = Command::new(script())
            .arg("start")
            .arg(dir)
            .output()
            .expect("scripts/iggy start");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        OwnServer {
            dir: dir.to_path_buf(),
            url: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        }
    }

    /// `kill -9`: no chance to save anything.
    pub(crate) fn kill(&self) {
        let pid = std::fs::read_to_string(self.dir.join("pid")).expect("pid");
        let status = Command::new("kill")
            .args(["-9", pid.trim()])
            .status()
            .expect("kill");
        assert!(status.success());
        // wait until it is gone
        for _ in 0..100 {
            let alive = Command::new("kill")
                .args(["-0", pid.trim()])
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !alive {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").arg(&self.dir).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_during_an_insert_fails_the_statement() {
    if server().is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let own = OwnServer::start(dir.path());
    let ctx = ctx();
    let t = unique("dies");
    create(
        &ctx,
        &own.url,
        "doomed",
        &t,
        "OPTIONS ('timeout.ms' '5000')",
    )
    .await;
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
    // wait until messages arrive, then kill the server under the running INSERT
    let mut seen = 0;
    for _ in 0..300 {
        seen = count(&ctx, "SELECT count(*) FROM doomed").await;
        if seen > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen > 0, "the INSERT never got going");
    own.kill();
    let result = tokio::time::timeout(Duration::from_secs(120), insert)
        .await
        .expect("the INSERT ends")
        .expect("join");
    let e = result
        .expect_err("an INSERT into a killed server must fail")
        .to_string();
    assert!(
        e.contains(&format!("iggy {}/it-stream/{t}", address(&own.url))),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_that_succeeded_survives_a_kill_of_the_server() {
    if server().is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let own = OwnServer::start(dir.path());
    let ctx = ctx();
    let t = unique("durable");
    let vcf = path("gen.vcf.gz");
    create(
        &ctx,
        &own.url,
        "kept",
        &t,
        &format!("OPTIONS ('like' '{vcf}', 'partitions' '2')"),
    )
    .await;
    let written = run(&ctx, &format!("INSERT INTO kept SELECT * FROM '{vcf}'"))
        .await
        .expect("insert");
    assert_eq!(inserted(&written), GEN_RECORDS);
    // a few small rows stay below the server's own save thresholds (1,024 messages / 1 MiB):
    // only the flush at the end of the INSERT puts them on disk
    let small = unique("durable-small");
    create(&ctx, &own.url, "few", &small, "").await;
    let sample = path("sample.vcf");
    let few = run(
        &ctx,
        &format!("INSERT INTO few SELECT chrom, pos, id, ref, alt, qual, filter FROM '{sample}'"),
    )
    .await
    .expect("insert few");
    assert_eq!(inserted(&few), 6);
    own.kill();
    let restarted = OwnServer::start(dir.path());
    // the restarted server has the same pid file: only it is stopped at the end
    std::mem::forget(own);
    let ctx = self::ctx();
    create(
        &ctx,
        &restarted.url,
        "kept",
        &t,
        &format!("OPTIONS ('like' '{vcf}')"),
    )
    .await;
    assert_eq!(
        count(&ctx, "SELECT count(*) FROM kept").await,
        GEN_RECORDS as i64,
        "every acknowledged and flushed row is there after kill -9"
    );
    assert_eq!(
        count(&ctx, "SELECT count(DISTINCT _id) FROM kept").await,
        GEN_RECORDS as i64
    );
    create(&ctx, &restarted.url, "few", &small, "").await;
    assert_eq!(
        count(&ctx, "SELECT count(*) FROM few").await,
        6,
        "rows below the server's save thresholds are there too"
    );
}

/// A table keeps one logged-in connection between its metadata calls (CREATE's check, each
/// query's planning, an INSERT's first look); when its server dies and comes back at the same
/// address, that connection is dead, and the next statements go on over new ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_whose_server_restarted_goes_on_over_new_connections() {
    if server().is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let own = OwnServer::start(dir.path());
    let relay = Relay::start(&host_port(&own.url)).await;
    let url = through(&relay, &own.url);
    let ctx = ctx();
    let t = unique("restarts");
    create(&ctx, &url, "moving", &t, "OPTIONS ('partitions' '2')").await;
    let rows = "INSERT INTO moving (chrom, pos, ref) VALUES ('chr1', 1, 'A'), ('chr1', 2, 'C'), ('chr2', 3, 'G')";
    assert_eq!(inserted(&run(&ctx, rows).await.expect("insert")), 3);
    assert_eq!(count(&ctx, "SELECT count(*) FROM moving").await, 3);
    own.kill();
    let restarted = OwnServer::start(dir.path());
    // the restarted server has the same pid file: only it is stopped at the end
    std::mem::forget(own);
    relay.point_to(&host_port(&restarted.url));
    assert_eq!(
        count(&ctx, "SELECT count(*) FROM moving").await,
        3,
        "planning goes on over a new connection"
    );
    assert_eq!(
        inserted(&run(&ctx, rows).await.expect("insert after the restart")),
        3
    );
    assert_eq!(
        count(&ctx, "SELECT count(DISTINCT _id) FROM moving").await,
        3
    );
    assert_eq!(count(&ctx, "SELECT count(*) FROM moving").await, 6);
}

/// The message logs of one topic's partitions under a server's data directory.
fn segment_logs(dir: &Path) -> Vec<PathBuf> {
    let mut logs = Vec::new();
    let mut stack = vec![dir.join("data/streams")];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "log") {
                logs.push(p);
            }
        }
    }
    logs.sort();
    logs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_batch_left_by_a_kill_is_cut_when_the_server_restarts() {
    if server().is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let own = OwnServer::start(dir.path());
    let ctx = ctx();
    let t = unique("torn");
    let vcf = path("gen.vcf.gz");
    let options = format!("OPTIONS ('like' '{vcf}', 'partitions' '2')");
    create(&ctx, &own.url, "torn", &t, &options).await;
    let written = run(&ctx, &format!("INSERT INTO torn SELECT * FROM '{vcf}'"))
        .await
        .expect("insert");
    assert_eq!(inserted(&written), GEN_RECORDS);
    own.kill();
    // what a kill in the middle of writing a batch leaves: the batch's first bytes (here a
    // whole header and part of a payload, copied from the log's head) after the last message
    let logs = segment_logs(dir.path());
    assert!(!logs.is_empty(), "no segments under {:?}", dir.path());
    for log in &logs {
        let head = std::fs::read(log).expect("log");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(log)
            .expect("open log");
        std::io::Write::write_all(&mut f, &head[..100.min(head.len())]).expect("tear");
    }
    let restarted = OwnServer::start(dir.path());
    std::mem::forget(own);
    let ctx = self::ctx();
    create(
        &ctx,
        &restarted.url,
        "torn",
        &t,
        &format!("OPTIONS ('like' '{vcf}')"),
    )
    .await;
    // new rows go after the last whole message, and every row reads back once
    run(&ctx, &format!("INSERT INTO torn SELECT * FROM '{vcf}'"))
        .await
        .expect("insert after the restart");
    assert_eq!(
        count(&ctx, "SELECT count(*) FROM torn").await,
        2 * GEN_RECORDS as i64
    );
    assert_eq!(
        count(&ctx, "SELECT count(DISTINCT _id) FROM torn").await,
        GEN_RECORDS as i64
    );
    assert_eq!(
        count(
            &ctx,
            "SELECT count(*) FROM (SELECT _partition, _offset FROM torn GROUP BY 1, 2 HAVING count(*) > 1)"
        )
        .await,
        0
    );
}
