//! Coordinated tables (`STORED AS STREAM`) on a real Iggy server (primary, behind a TCP relay
//! so that it keeps one address across restarts) and the real Kafka broker (fallback): a
//! primary killed with `kill -9` in the middle of an INSERT, nothing lost and nothing read
//! twice; the breaker opening, going half-open and closing again; both platforms down.

use std::time::Duration;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Int64Type, UInt64Type};
use datafusion::prelude::SessionContext;
use tokio::net::TcpListener;

use crate::iggy::{OwnServer, Relay, host_port, server, through, unique};
use crate::kafka::bootstrap;
use crate::topics::{count, ctx, inserted, run};

async fn create(ctx: &SessionContext, name: &str, primary: &str, fallback: &str, extra: &str) {
    run(
        ctx,
        &format!(
            "CREATE EXTERNAL TABLE {name} (chrom VARCHAR, pos BIGINT, ref VARCHAR) STORED AS STREAM \
             LOCATION '{name}' OPTIONS ('primary' '{primary}', 'fallback' '{fallback}', \
             'partitions' '2', 'ack.timeout_ms' '3000', 'breaker.open_ms' '1500' {extra})"
        ),
    )
    .await
    .unwrap_or_else(|e| panic!("create {name}: {e}"));
}

/// (role, state, acknowledged, failed, last reason) of `table`'s platforms.
async fn health(ctx: &SessionContext, table: &str) -> Vec<(String, String, u64, u64, String)> {
    let rows: Vec<RecordBatch> = run(
        ctx,
        &format!(
            "SELECT role, state, messages_acknowledged, messages_failed, \
             coalesce(last_transition_reason, '') FROM vcfq.stream_health \
             WHERE table_name = '{table}' ORDER BY role DESC"
        ),
    )
    .await
    .expect("stream_health");
    let mut out = Vec::new();
    for b in &rows {
        for i in 0..b.num_rows() {
            out.push((
                b.column(0).as_string::<i32>().value(i).to_string(),
                b.column(1).as_string::<i32>().value(i).to_string(),
                b.column(2).as_primitive::<UInt64Type>().value(i),
                b.column(3).as_primitive::<UInt64Type>().value(i),
                b.column(4).as_string::<i32>().value(i).to_string(),
            ));
        }
    }
    out
}

/// Rows per `_platform`.
async fn per_platform(ctx: &SessionContext, table: &str) -> Vec<(String, i64)> {
    let rows = run(
        ctx,
        &format!("SELECT _platform, count(*) FROM {table} GROUP BY _platform ORDER BY _platform"),
    )
    .await
    .expect("per platform");
    let mut out = Vec::new();
    for b in &rows {
        for i in 0..b.num_rows() {
            out.push((
                b.column(0).as_string::<i32>().value(i).to_string(),
                b.column(1).as_primitive::<Int64Type>().value(i),
            ));
        }
    }
    out
}

const ROWS: i64 = 400_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_killed_mid_insert_fails_over_loses_nothing_reads_once_and_recovers() {
    if server().is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let own = OwnServer::start(dir.path());
    let relay = Relay::start(&host_port(&own.url)).await;
    let primary = format!("{}/it-coord/{}", through(&relay, &own.url), unique("p"));
    let fallback = format!("kafka://{}/{}", bootstrap(), unique("coord-f"));
    let ctx = ctx();
    create(&ctx, "calls", &primary, &fallback, "").await;
    let insert = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            run(
                &ctx,
                &format!(
                    "INSERT INTO calls SELECT 'chr1', value, 'A' FROM generate_series(1, {ROWS})"
                ),
            )
            .await
        })
    };
    // once the primary has acknowledged some windows, kill it under the running INSERT
    let mut acked = 0;
    for _ in 0..600 {
        acked = health(&ctx, "calls").await[0].2;
        if acked > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(acked > 0, "the primary never acknowledged anything");
    own.kill();
    let written = tokio::time::timeout(Duration::from_secs(120), insert)
        .await
        .expect("the INSERT ends")
        .expect("join")
        .expect("the INSERT fails over and succeeds");
    assert_eq!(
        inserted(&written),
        ROWS as u64,
        "every row acknowledged once"
    );
    let h = health(&ctx, "calls").await;
    assert_eq!(h[0].0, "primary");
    // not taking writes: open, or half-open when the INSERT outlived the open time since the
    // last failure (the state is read off the breaker's clock)
    assert!(h[0].1 == "open" || h[0].1 == "half-open", "{h:?}");
    // opened by failures in a row (and, if the INSERT outlived the open time, by a failed probe)
    assert!(
        h[0].3 > 0 && (h[0].4.contains("failure(s) in a row") || h[0].4.contains("probe failed")),
        "{h:?}"
    );
    assert_eq!(
        h[0].2 + h[1].2,
        ROWS as u64,
        "each window acknowledged once: {h:?}"
    );
    assert!(h[1].2 > 0, "the fallback took writes: {h:?}");
    assert!(
        acked < ROWS as u64 && h[0].2 < ROWS as u64,
        "the kill came before the end: {h:?}"
    );

    // the primary comes back (same data directory, new port behind the same relay address)
    let restarted = OwnServer::start(dir.path());
    std::mem::forget(own);
    relay.point_to(&host_port(&restarted.url));
    assert_eq!(
        count(&ctx, "SELECT count(*) FROM calls").await,
        ROWS,
        "each row read once across both platforms"
    );
    assert_eq!(
        count(&ctx, "SELECT count(DISTINCT pos) FROM calls").await,
        ROWS
    );
    let platforms = per_platform(&ctx, "calls").await;
    assert_eq!(platforms.len(), 2, "{platforms:?}");
    assert_eq!(platforms.iter().map(|(_, n)| n).sum::<i64>(), ROWS);
    assert!(platforms.iter().all(|(_, n)| *n > 0), "{platforms:?}");
    let plan = run(&ctx, "EXPLAIN ANALYZE SELECT pos FROM calls")
        .await
        .expect("analyze");
    let plan = datafusion::arrow::util::pretty::pretty_format_batches(&plan)
        .unwrap()
        .to_string();
    assert!(plan.contains("CoordinatedExec: calls"), "{plan}");
    assert!(
        plan.contains("IggyExec") && plan.contains("KafkaExec"),
        "{plan}"
    );

    // once its open time has passed, writes probe the primary and, succeeding, close it
    tokio::time::sleep(Duration::from_millis(1600)).await;
    for round in 0..2 {
        let more = run(
            &ctx,
            &format!(
                "INSERT INTO calls SELECT 'chr2', value, 'C' FROM generate_series({}, {})",
                round * 10 + 1,
                round * 10 + 10
            ),
        )
        .await
        .expect("insert after recovery");
        assert_eq!(inserted(&more), 10);
    }
    let h = health(&ctx, "calls").await;
    assert_eq!(h[0].1, "closed", "{h:?}");
    assert!(h[0].4.contains("probe(s) succeeded"), "{h:?}");
    let back = run(
        &ctx,
        "SELECT _platform, count(*) FROM calls WHERE chrom = 'chr2' GROUP BY _platform",
    )
    .await
    .expect("read back");
    assert_eq!(back[0].num_rows(), 1);
    assert_eq!(back[0].column(0).as_string::<i32>().value(0), "iggy");
    assert_eq!(back[0].column(1).as_primitive::<Int64Type>().value(0), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_primary_sends_writes_to_the_fallback_and_both_down_is_one_clear_error() {
    if server().is_none() {
        return;
    }
    // nothing listens on the primary's port
    let free = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = free.local_addr().unwrap().to_string();
    drop(free);
    let primary = format!("iggy://vcfq:vcfq-test@{dead}/it-coord/{}", unique("gone"));
    let fallback = format!("kafka://{}/{}", bootstrap(), unique("coord-only"));
    let ctx = ctx();
    create(
        &ctx,
        "lonely",
        &primary,
        &fallback,
        ", 'breaker.failures' '1'",
    )
    .await;
    let written = run(
        &ctx,
        "INSERT INTO lonely SELECT 'chr1', value, 'G' FROM generate_series(1, 1000)",
    )
    .await
    .expect("the fallback takes the rows");
    assert_eq!(inserted(&written), 1000);
    let h = health(&ctx, "lonely").await;
    assert_eq!((h[0].1.as_str(), h[1].2), ("open", 1000), "{h:?}");

    // both down: CREATE names both
    let dead_kafka = format!("kafka://{dead}/{}", unique("coord-none"));
    let e = run(
        &ctx,
        &format!(
            "CREATE EXTERNAL TABLE nowhere (chrom VARCHAR, pos BIGINT, ref VARCHAR) STORED AS STREAM \
             LOCATION 'nowhere' OPTIONS ('primary' '{primary}', 'fallback' '{dead_kafka}', 'timeout.ms' '2000')"
        ),
    )
    .await
    .expect_err("no platform answers")
    .to_string();
    assert!(
        e.contains("no platform answers: primary") && e.contains("fallback"),
        "{e}"
    );
    assert!(!e.contains("vcfq-test"), "no password in errors: {e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_fallback_does_not_matter_until_the_primary_dies_too() {
    if server().is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let own = OwnServer::start(dir.path());
    let free = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = free.local_addr().unwrap().to_string();
    drop(free);
    let primary = format!("{}/it-coord/{}", own.url, unique("alone"));
    let fallback = format!("kafka://{dead}/{}", unique("coord-dead"));
    let ctx = ctx();
    create(&ctx, "solo", &primary, &fallback, ", 'timeout.ms' '2000'").await;
    let written = run(
        &ctx,
        "INSERT INTO solo SELECT 'chr1', value, 'T' FROM generate_series(1, 1000)",
    )
    .await
    .expect("the primary takes the rows");
    assert_eq!(inserted(&written), 1000);
    let h = health(&ctx, "solo").await;
    assert_eq!((h[0].1.as_str(), h[0].2), ("closed", 1000), "{h:?}");
    assert_eq!(h[1].2, 0, "nothing went to the fallback: {h:?}");

    // now both are down: the statement fails naming both, and reports nothing as written
    own.kill();
    let e = run(
        &ctx,
        "INSERT INTO solo SELECT 'chr1', value, 'T' FROM generate_series(1, 1000)",
    )
    .await
    .expect_err("no platform takes writes")
    .to_string();
    assert!(
        e.contains("no platform takes writes")
            && e.contains("primary iggy")
            && e.contains("fallback"),
        "{e}"
    );
    assert_eq!(
        health(&ctx, "solo").await[0].2,
        1000,
        "nothing acknowledged after the kill"
    );
}

/// One `[[tables]]` entry of a `vcfq serve` config: a coordinated table with these options.
fn served_table(name: &str, options: &[(&str, String)]) -> String {
    let mut out = format!(
        "[[tables]]\nname = \"{name}\"\nlocation = \"{name}\"\nformat = \"stream\"\n[tables.options]\n"
    );
    for (k, v) in options {
        out.push_str(&format!("\"{k}\" = \"{v}\"\n"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinated_table_served_over_flight_sql_fails_over_and_shows_its_health() {
    use crate::fixtures::data_dir;
    use crate::flight::{Server, login, query, single_i64, strings};

    if server().is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let own = OwnServer::start(dir.path());
    let relay = Relay::start(&host_port(&own.url)).await;
    let iggy = through(&relay, &own.url);
    let free = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = free.local_addr().unwrap().to_string();
    drop(free);
    let like = data_dir().join("gen.vcf.gz").display().to_string();
    let common = |primary: String, fallback: String| {
        vec![
            ("primary", primary),
            ("fallback", fallback),
            ("like", like.clone()),
            ("partitions", "2".to_string()),
            ("ack.timeout_ms", "3000".to_string()),
            ("timeout.ms", "2000".to_string()),
        ]
    };
    let config = served_table(
        "coord",
        &common(
            format!("{iggy}/it-coord/{}", unique("served")),
            format!("kafka://{}/{}", bootstrap(), unique("coord-served")),
        ),
    ) + &served_table(
        "lonely",
        &common(
            format!("{iggy}/it-coord/{}", unique("lonely")),
            format!("kafka://{dead}/{}", unique("coord-lonely")),
        ),
    );
    let mut served = Server::start(&format!("[metrics]\naddr = \"127.0.0.1:0\"\n{config}"));
    let metrics_url = served
        .next_line()
        .rsplit(' ')
        .next()
        .expect("the metrics address")
        .to_string();
    let mut c = login(&served.addr).await;
    let even = single_i64(&query(&mut c, "SELECT count(*) FROM calls WHERE pos % 2 = 0").await);
    let odd = single_i64(&query(&mut c, "SELECT count(*) FROM calls WHERE pos % 2 = 1").await);
    assert!(even > 0 && odd > 0);

    // the primary takes the first INSERT
    let written = c
        .execute_update(
            "INSERT INTO coord SELECT * FROM calls WHERE pos % 2 = 0".into(),
            None,
        )
        .await
        .expect("insert through Flight SQL");
    assert_eq!(written, even);
    let lonely = c
        .execute_update(
            "INSERT INTO lonely SELECT * FROM calls LIMIT 100".into(),
            None,
        )
        .await
        .expect("a dead fallback does not matter while the primary is up");
    assert_eq!(lonely, 100);

    // the primary dies: the next INSERT fails over to Kafka inside the statement
    own.kill();
    let written = c
        .execute_update(
            "INSERT INTO coord SELECT * FROM calls WHERE pos % 2 = 1".into(),
            None,
        )
        .await
        .expect("the INSERT fails over and succeeds");
    assert_eq!(written, odd);
    // the server's session sees the process's health rows
    let h = query(
        &mut c,
        "SELECT table_name, role, state, CAST(messages_acknowledged AS BIGINT) AS acked, \
         CAST(messages_failed AS BIGINT) AS failed FROM vcfq.stream_health \
         WHERE table_name = 'coord' ORDER BY role DESC",
    )
    .await;
    assert_eq!(strings(&h, "role"), ["primary", "fallback"]);
    assert_eq!(strings(&h, "state")[0], "open");
    assert_eq!(
        strings(&h, "acked"),
        [even.to_string(), odd.to_string()],
        "each INSERT acknowledged by one platform"
    );
    assert_ne!(strings(&h, "failed")[0], "0");
    // the same seen from outside, by a Prometheus scrape
    let (_, samples) = crate::observability::scrape(&metrics_url, None);
    let coord = |name: &str, labels: &[(&str, &str)]| {
        let mut all = vec![("table", "coord")];
        all.extend_from_slice(labels);
        crate::observability::sample(&samples, name, &all)
    };
    // open (2), or half-open (1) if its open time has passed since the health query
    let primary = coord("vcfq_stream_breaker_state", &[("role", "primary")]);
    assert!(
        primary == 2.0 || primary == 1.0,
        "primary breaker {primary}"
    );
    assert_eq!(
        coord("vcfq_stream_breaker_state", &[("role", "fallback")]),
        0.0
    );
    assert_eq!(
        coord(
            "vcfq_stream_messages_total",
            &[("role", "fallback"), ("outcome", "acknowledged")]
        ),
        odd as f64
    );
    assert_eq!(
        coord(
            "vcfq_stream_messages_total",
            &[("role", "primary"), ("outcome", "acknowledged")]
        ),
        even as f64
    );

    // both down: the error reaches the client as Unavailable, naming both platforms
    let e = c
        .execute_update(
            "INSERT INTO lonely SELECT * FROM calls LIMIT 100".into(),
            None,
        )
        .await
        .expect_err("no platform takes writes")
        .to_string();
    assert!(
        e.contains(tonic::Code::Unavailable.description())
            && e.contains("no platform takes writes")
            && e.contains("primary iggy")
            && e.contains("fallback kafka"),
        "{e}"
    );

    // the primary back on its data: a coordinated SELECT over Flight SQL reads both, once
    let restarted = OwnServer::start(dir.path());
    std::mem::forget(own);
    relay.point_to(&host_port(&restarted.url));
    assert_eq!(
        single_i64(&query(&mut c, "SELECT count(*) FROM coord").await),
        even + odd
    );
    let platforms = query(
        &mut c,
        "SELECT _platform, count(*) AS n FROM coord GROUP BY _platform ORDER BY _platform",
    )
    .await;
    assert_eq!(strings(&platforms, "_platform"), ["iggy", "kafka"]);
    assert_eq!(
        strings(&platforms, "n"),
        [even.to_string(), odd.to_string()]
    );
    let missing = single_i64(
        &query(
            &mut c,
            "SELECT count(*) FROM (SELECT chrom, pos, ref, alt FROM calls \
             EXCEPT ALL SELECT chrom, pos, ref, alt FROM coord)",
        )
        .await,
    );
    assert_eq!(missing, 0, "every row of the file is in the table");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dedup_variant_reads_the_last_written_row_of_each_variant_across_both_platforms() {
    let Some(url) = server() else {
        return;
    };
    let iggy = format!("{url}/it-coord/{}", unique("variant"));
    let kafka = format!("kafka://{}/{}", bootstrap(), unique("coord-variant"));
    let ctx = ctx();
    let table = |name: &str, primary: &str, fallback: &str, extra: &str| {
        format!(
            "CREATE EXTERNAL TABLE {name} (chrom VARCHAR, pos BIGINT, ref VARCHAR, alt VARCHAR, \
             qual DOUBLE) STORED AS STREAM LOCATION '{name}' OPTIONS ('primary' '{primary}', \
             'fallback' '{fallback}', 'partitions' '2' {extra})"
        )
    };
    // the same two topics, each platform primary of one table: writes go where we say
    run(
        &ctx,
        &table("on_iggy", &iggy, &kafka, ", 'dedup' 'variant'"),
    )
    .await
    .expect("create on_iggy");
    run(&ctx, &table("on_kafka", &kafka, &iggy, ""))
        .await
        .expect("create on_kafka");
    let steps = [
        (
            "on_iggy",
            "('chr1', 10, 'A', 'C', 1.0), ('chr1', 20, 'G', 'T', 1.0), \
             (NULL, 40, 'A', 'C', 7.0), (NULL, 40, 'A', 'C', 8.0)",
        ),
        // a newer version of chr1:10 on Kafka, then of chr1:20 on Iggy
        ("on_kafka", "('chr1', 10, 'A', 'C', 2.0)"),
        ("on_iggy", "('chr1', 20, 'G', 'T', 3.0)"),
        // the same message again (same id) on the other platform: one row still
        ("on_kafka", "('chr1', 20, 'G', 'T', 3.0)"),
    ];
    for (into, values) in steps {
        run(&ctx, &format!("INSERT INTO {into} VALUES {values}"))
            .await
            .unwrap_or_else(|e| panic!("insert into {into}: {e}"));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rows = run(
        &ctx,
        "SELECT coalesce(chrom, '-') AS chrom, pos, qual, _platform FROM on_iggy \
         ORDER BY pos, qual",
    )
    .await
    .expect("variant read");
    let rows = datafusion::arrow::util::pretty::pretty_format_batches(&rows)
        .unwrap()
        .to_string();
    let got: Vec<String> = rows
        .lines()
        .filter(|l| l.starts_with("| ") && !l.contains("chrom"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    // chr1:20 was last written to Iggy (3.0) before its copy went to Kafka: the first copy read
    // of that id is kept, whichever platform it came from
    assert_eq!(got.len(), 4, "{rows}");
    assert_eq!(got[0], "| chr1 | 10 | 2.0 | kafka |", "{rows}");
    assert!(got[1].starts_with("| chr1 | 20 | 3.0 |"), "{rows}");
    assert_eq!(
        got[2], "| - | 40 | 7.0 | iggy |",
        "rows without a key are kept: {rows}"
    );
    assert_eq!(got[3], "| - | 40 | 8.0 | iggy |", "{rows}");
    // message mode reads every distinct message
    assert_eq!(count(&ctx, "SELECT count(*) FROM on_kafka").await, 6);
    let plan = crate::topics::explain(&ctx, "SELECT * FROM on_iggy").await;
    assert!(plan.contains("dedup=variant"), "{plan}");

    // a followed table cannot know the last row of a variant
    run(
        &ctx,
        &table(
            "followed",
            &iggy,
            &kafka,
            ", 'dedup' 'variant', 'mode' 'follow'",
        ),
    )
    .await
    .expect("create followed");
    let e = run(&ctx, "SELECT * FROM followed LIMIT 1")
        .await
        .expect_err("variant needs a snapshot")
        .to_string();
    assert!(e.contains("'dedup' 'variant' reads a snapshot"), "{e}");
}
