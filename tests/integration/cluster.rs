//! The same SQL on a Ballista cluster: a scheduler and two executors in this process
//! (standalone), and as separate processes (`vcfq scheduler`, two `vcfq executor`s on loopback
//! ports, `vcfq --cluster`). Every query's rows are compared with a local run's, and the
//! plans are checked to have gone to the cluster.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;

use crate::fixtures::GEN_RECORDS;
use crate::topics::path;

/// Byte ranges small enough that the generated files split into several units (partitions).
const SPLIT: &str = "65536";

/// Each row of the batches as one line of text.
fn lines(batches: &[RecordBatch]) -> Vec<String> {
    let options = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for b in batches {
        let formatters: Vec<ArrayFormatter> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).expect("formatter"))
            .collect();
        for row in 0..b.num_rows() {
            let cells: Vec<String> = formatters
                .iter()
                .map(|f| f.value(row).to_string())
                .collect();
            out.push(cells.join("\t"));
        }
    }
    out
}

fn session(cluster: Option<&str>) -> SessionContext {
    let mut builder = vcfq::SessionBuilder::new()
        .with_setting("vcf.min_split_bytes", SPLIT)
        .expect("setting");
    if let Some(url) = cluster {
        builder = vcfq::cluster::attach(builder, url).expect("cluster url");
    }
    builder.build().expect("session")
}

async fn collect(ctx: &SessionContext, sql: &str) -> datafusion::error::Result<Vec<RecordBatch>> {
    vcfq::session::sql(ctx, sql).await?.collect().await
}

/// The queries compared: counts, INFO filters, per-sample genotype aggregates, regions
/// through an index, a join of two VCFs, file-order LIMITs, table functions with arguments.
fn queries() -> Vec<(String, bool)> {
    let vcf = path("gen.vcf.gz");
    let bcf = path("gen.bcf");
    let plain = path("gen.vcf");
    // (sql, whether its row order is defined)
    vec![
        (format!("SELECT count(*) FROM '{vcf}'"), true),
        (
            format!(
                "SELECT chrom, count(*) AS n, sum(info.DP) AS dp, round(avg(qual), 3) AS q \
                 FROM '{vcf}' WHERE info.AF[1] > 0.05 GROUP BY chrom ORDER BY chrom"
            ),
            true,
        ),
        (
            format!(
                "SELECT sample, count(*) AS non_ref, sum(gt_dosage(GT)) AS alleles \
                 FROM vcf_genotypes('{vcf}') WHERE gt_dosage(GT) > 0 GROUP BY sample"
            ),
            false,
        ),
        (
            format!(
                "SELECT count(*), min(pos), max(pos) FROM '{vcf}' \
                 WHERE chrom = 'chr1' AND pos BETWEEN 1000000 AND 30000000"
            ),
            true,
        ),
        (
            format!("SELECT count(*) AS n, sum(pos) FROM read_vcf('{bcf}', 'chr2:1-50000000')"),
            true,
        ),
        (
            format!(
                "SELECT a.chrom, count(*) AS n FROM '{vcf}' a JOIN '{bcf}' b \
                 ON a.chrom = b.chrom AND a.pos = b.pos AND a.ref = b.ref AND a.alt = b.alt \
                 GROUP BY a.chrom ORDER BY a.chrom"
            ),
            true,
        ),
        (
            format!("SELECT chrom, pos, ref, alt, info FROM '{plain}' LIMIT 7"),
            true,
        ),
        (
            format!(
                "SELECT chrom, pos, id, ref, alt, qual, filter, info, genotypes FROM '{vcf}' \
                 WHERE info.AF[1] > 0.4 ORDER BY chrom, pos, ref LIMIT 25"
            ),
            true,
        ),
        (
            format!(
                "SELECT count(DISTINCT chrom || ':' || CAST(pos AS VARCHAR)) FROM '{plain}' \
                 WHERE array_has(filter, 'PASS')"
            ),
            true,
        ),
    ]
}

/// The physical plan of `sql` in `ctx`.
async fn physical_plan(ctx: &SessionContext, sql: &str) -> Arc<dyn ExecutionPlan> {
    vcfq::session::sql(ctx, sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .create_physical_plan()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The rows of `sql` run on the cluster and here (it must go to the cluster and give rows
/// here).
async fn here_and_there(
    local: &SessionContext,
    cluster: &SessionContext,
    sql: &str,
) -> (Vec<String>, Vec<String>) {
    assert_eq!(
        physical_plan(cluster, sql).await.name(),
        "ClusterExec",
        "{sql} did not go to the cluster"
    );
    let run = |ctx| async move {
        lines(
            &collect(ctx, sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
        )
    };
    let want = run(local).await;
    assert!(!want.is_empty(), "{sql}: no rows");
    (run(cluster).await, want)
}

async fn compare(local: &SessionContext, cluster: &SessionContext) {
    for (sql, ordered) in queries() {
        let (got, want) = here_and_there(local, cluster, &sql).await;
        if ordered {
            assert_eq!(got, want, "{sql}");
        } else {
            let (mut got, mut want) = (got, want);
            got.sort();
            want.sort();
            assert_eq!(got, want, "{sql}");
        }
    }
    // the count really covered the file
    let total = lines(
        &collect(
            cluster,
            &format!("SELECT count(*) FROM '{}'", path("gen.vcf.gz")),
        )
        .await
        .expect("count"),
    );
    assert_eq!(total, [GEN_RECORDS.to_string()]);
}

/// The error a query gives, as one line.
async fn error(ctx: &SessionContext, sql: &str) -> String {
    let e = collect(ctx, sql).await.expect_err("the query must fail");
    vcfq::error::one_line(&anyhow::Error::new(e))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standalone_cluster_gives_the_local_results() {
    let url = vcfq::cluster::process::standalone(vcfq::SessionBuilder::new(), 2, 2)
        .await
        .expect("standalone cluster");
    let local = session(None);
    let cluster = session(Some(&url));
    compare(&local, &cluster).await;
    // a scan that feeds an aggregation is split into a partition per byte range
    let explain = lines(
        &collect(
            &cluster,
            &format!("EXPLAIN SELECT count(*) FROM '{}'", path("gen.vcf")),
        )
        .await
        .expect("explain"),
    )
    .join("\n");
    assert!(
        explain.contains("distributed_plan") && explain.contains("ShuffleWriterExec"),
        "{explain}"
    );
    let first_stage: usize = explain
        .split_once("ResolvedStage[stage_id=1.0, partitions=")
        .and_then(|(_, rest)| rest.split_once(']'))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("no first stage in\n{explain}"));
    let units: usize = explain
        .split_once("units=")
        .and_then(|(_, rest)| rest.split_once(','))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("no units in\n{explain}"));
    assert!(
        units >= 2 && first_stage == units,
        "a task per unit:\n{explain}"
    );
    // a malformed record on an executor: the same one-line error as locally (file and line)
    let bad = format!("SELECT sum(pos) FROM '{}'", path("bad_tail.vcf"));
    let want = error(&local, &bad).await;
    assert!(
        want.contains("bad_tail.vcf") && want.contains("30041"),
        "{want}"
    );
    assert_eq!(error(&cluster, &bad).await, want);
    // the session's vcf.* settings reach the scheduler and the executors: the bad line skipped
    // there as here, and the same units (vcf.min_split_bytes) in both plans
    for ctx in [&local, &cluster] {
        collect(ctx, "SET vcf.on_error = 'skip'")
            .await
            .expect("set");
    }
    let skipped = lines(&collect(&local, &bad).await.expect("skip here"));
    assert_eq!(
        lines(&collect(&cluster, &bad).await.expect("skip there")),
        skipped
    );
    for ctx in [&local, &cluster] {
        collect(ctx, "SET vcf.on_error = 'fail'")
            .await
            .expect("set");
    }
    let local_plan = lines(
        &collect(
            &local,
            &format!("EXPLAIN SELECT count(*) FROM '{}'", path("gen.vcf")),
        )
        .await
        .expect("explain"),
    )
    .join("\n");
    let here = local_plan
        .split_once("units=")
        .map(|(_, r)| r.split(',').next());
    let there = explain
        .split_once("units=")
        .map(|(_, r)| r.split(',').next());
    assert_eq!(there, here, "{local_plan}\n{explain}");
    // writes and tables that cannot travel stay on the client, with the same results
    let out = tempfile::tempdir().expect("dir");
    let parquet = out.path().join("x.parquet");
    collect(
        &cluster,
        &format!(
            "COPY (SELECT chrom, pos FROM '{}') TO '{}' STORED AS PARQUET",
            path("gen.vcf.gz"),
            parquet.display()
        ),
    )
    .await
    .expect("copy");
    let back = lines(
        &collect(
            &local,
            &format!("SELECT count(*) FROM '{}'", parquet.display()),
        )
        .await
        .expect("read back"),
    );
    assert_eq!(back, [GEN_RECORDS.to_string()]);
    lance_on_the_cluster(&local, &cluster, out.path()).await;
    a_file_replaced_after_planning_is_an_error(&cluster, out.path()).await;
    collect(&cluster, "CREATE TABLE m AS VALUES (1), (2)")
        .await
        .expect("memory table");
    assert_eq!(
        lines(
            &collect(&cluster, "SELECT sum(column1) FROM m")
                .await
                .expect("sum")
        ),
        ["3"]
    );
}

/// A query planned on the client over a file that is then replaced by one with other columns
/// (another sample set) fails naming the file when the cluster runs it, rather than reading
/// the new file as if it were the old.
async fn a_file_replaced_after_planning_is_an_error(cluster: &SessionContext, dir: &Path) {
    let file = dir.join("replaced.vcf");
    let generate = |samples| {
        vcfq::generator::generate_file(
            &file,
            &vcfq::generator::GenOptions {
                records: 500,
                samples,
                seed: 7,
            },
        )
        .expect("generate")
    };
    generate(4);
    let sql = format!(
        "SELECT chrom, count(*) FROM '{}' GROUP BY chrom",
        file.display()
    );
    let planned = physical_plan(cluster, &sql).await;
    assert_eq!(planned.name(), "ClusterExec");
    generate(3);
    let e = datafusion::physical_plan::collect(planned, cluster.task_ctx())
        .await
        .expect_err("the file changed");
    let e = vcfq::error::one_line(&anyhow::Error::new(e));
    assert!(
        e.contains("replaced.vcf: the file changed after the query was planned"),
        "{e}"
    );
}

/// The plan of `sql` in `ctx` as EXPLAIN prints it.
async fn explained(ctx: &SessionContext, sql: &str) -> String {
    lines(
        &collect(ctx, &format!("EXPLAIN {sql}"))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}")),
    )
    .join("\n")
}

/// A Lance dataset read by the cluster's executors: scans with filters, and a kNN search
/// through an index (KnnExec on an executor), each equal to the local answer; a later write
/// seen by the next query.
async fn lance_on_the_cluster(local: &SessionContext, cluster: &SessionContext, dir: &Path) {
    let location = dir.join("pts.lance");
    let create = format!(
        "CREATE EXTERNAL TABLE pts (id BIGINT NOT NULL, grp VARCHAR, v FLOAT[2]) \
         STORED AS LANCE LOCATION '{}'",
        location.display()
    );
    for ctx in [local, cluster] {
        collect(ctx, &create).await.expect("create");
    }
    let inserted = lines(
        &collect(
            cluster,
            "INSERT INTO pts SELECT value, CASE WHEN value % 3 = 0 THEN 'three' ELSE 'other' END, \
             arrow_cast(make_array(value % 97, value / 97), 'FixedSizeList(2, Float32)') \
             FROM generate_series(1, 5000)",
        )
        .await
        .expect("insert (on the client)"),
    );
    assert_eq!(inserted, ["5000"]);
    collect(
        local,
        "CREATE INDEX v_idx ON pts USING IVF_FLAT (v) WITH (num_partitions = 4, metric = 'l2')",
    )
    .await
    .expect("index");
    let queries = [
        "SELECT grp, count(*), sum(id), min(id) FROM pts WHERE id > 100 GROUP BY grp ORDER BY grp",
        "SELECT count(*) FROM pts WHERE l2_distance(v, [10.0, 3.0]) <= 5.0 AND grp = 'three'",
        "SELECT id, l2_distance(v, [10.2, 3.1]) AS d FROM pts WHERE grp = 'other' \
         ORDER BY d LIMIT 5",
    ];
    for sql in queries {
        let (got, want) = here_and_there(local, cluster, sql).await;
        assert_eq!(got, want, "{sql}");
    }
    // the kNN query went through the index on the cluster as it does here
    let knn = queries[2];
    let here = explained(local, knn).await;
    let there = explained(cluster, knn).await;
    assert!(
        here.contains("KnnExec") && here.contains("index=v_idx"),
        "{here}"
    );
    assert!(
        there.contains("distributed_plan")
            && there.contains("KnnExec")
            && there.contains("index=v_idx"),
        "{there}"
    );
    // a later write is seen by the next query (the scheduler plans each job with the
    // dataset's latest version, and its executors read that version)
    let count = "SELECT count(*), sum(id) FROM pts";
    assert_eq!(
        lines(&collect(cluster, count).await.expect("count")),
        ["5000\t12502500"]
    );
    collect(
        local,
        "INSERT INTO pts VALUES (9999999, 'late', arrow_cast([1.0, 1.0], 'FixedSizeList(2, Float32)'))",
    )
    .await
    .expect("a later write");
    assert_eq!(
        lines(&collect(cluster, count).await.expect("count")),
        ["5001\t22502499"]
    );
}

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn vcfq() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vcfq"))
}

/// `vcfq` with these arguments in `dir`: (exit success, stdout, stderr).
fn cli(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let o = vcfq()
        .current_dir(dir)
        .args(["--set", &format!("vcf.min_split_bytes={SPLIT}")])
        .args(args)
        .output()
        .expect("vcfq");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// `vcfq scheduler --port 0 --scheduling <scheduling>`: the process and the URL it printed.
fn scheduler_process(scheduling: &str) -> (Proc, String) {
    let mut scheduler = vcfq()
        .args(["scheduler", "--port", "0", "--scheduling", scheduling])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("vcfq scheduler");
    let mut first = String::new();
    BufReader::new(scheduler.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("the scheduler's address");
    let url = first.trim().to_string();
    assert!(url.starts_with("df://127.0.0.1:"), "{url:?}");
    (Proc(scheduler), url)
}

/// `vcfq executor` for the scheduler at `url`, on free ports, its shuffle files in `dir`.
fn executor_command(url: &str, scheduling: &str, dir: &Path) -> Command {
    let mut command = vcfq();
    command
        .args(["executor", "--scheduler", url, "--concurrency", "2"])
        .args(["--port", &free_port().to_string()])
        .args(["--task-port", &free_port().to_string()])
        .args(["--scheduling", scheduling])
        .arg("--work-dir")
        .arg(dir);
    command
}

#[test]
fn a_scheduler_and_two_executor_processes_give_the_local_results() {
    let work = tempfile::tempdir().expect("dir");
    let (scheduler, url) = scheduler_process("push");
    let executors: Vec<Proc> = (0..2)
        .map(|i| {
            let dir = work.path().join(format!("executor{i}"));
            Proc(
                executor_command(&url, "push", &dir)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("vcfq executor"),
            )
        })
        .collect();
    // the saved queries over the README's example data, from its directory
    let data = work.path().join("example");
    std::fs::create_dir_all(data.join("data")).expect("dir");
    vcfq::generator::generate_file(
        &data.join("data/example.vcf.gz"),
        &vcfq::generator::GenOptions {
            records: 20_000,
            samples: 8,
            seed: 42,
        },
    )
    .expect("example data");
    let queries = Path::new(env!("CARGO_MANIFEST_DIR")).join("queries");
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(&queries)
        .expect("queries/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    scripts.sort();
    assert!(scripts.len() >= 4);
    for script in &scripts {
        let s = script.to_str().expect("path");
        let local = cli(&data, &["--format", "tsv", "-f", s]);
        let remote = cli(&data, &["--cluster", &url, "--format", "tsv", "-f", s]);
        assert!(local.0, "{s}: {}", local.2);
        assert!(remote.0, "{s} on the cluster: {}", remote.2);
        assert_eq!(remote.1, local.1, "{s}");
    }
    // EXPLAIN shows where it runs
    let (ok, plan, err) = cli(
        &data,
        &[
            "--cluster",
            &url,
            "-c",
            "EXPLAIN SELECT count(*) FROM 'data/example.vcf.gz'",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        plan.contains("VcfExec") && plan.contains("distributed_plan"),
        "{plan}"
    );
    let (ok, plan, err) = cli(
        &data,
        &[
            "--cluster",
            &url,
            "-c",
            "EXPLAIN SELECT count(*) FROM (VALUES (1)) t",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        !plan.contains("distributed_plan"),
        "no table: runs here\n{plan}"
    );
    // a malformed record read by an executor: the local one-line error
    let bad = format!("SELECT sum(pos) FROM '{}'", path("bad_tail.vcf"));
    let local = cli(&data, &["-c", &bad]);
    let remote = cli(&data, &["--cluster", &url, "-c", &bad]);
    assert!(!local.0 && !remote.0, "{local:?} {remote:?}");
    assert!(local.2.contains("30041"), "{}", local.2);
    assert_eq!(remote.2, local.2);
    // `vcfq serve` with [cluster]: the same rows and the same error through Flight SQL
    served_through_flight(&url);
    // an unreachable scheduler: a one-line error naming it, in bounded time
    let gone = format!("df://127.0.0.1:{}", free_port());
    let started = std::time::Instant::now();
    let (ok, _, err) = cli(&data, &["--cluster", &gone, "-c", &bad]);
    assert!(!ok);
    assert!(
        err.starts_with(&format!(
            "error: IO error: cluster scheduler {gone} cannot be reached: "
        )),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(started.elapsed() < Duration::from_secs(60));
    drop(executors);
    drop(scheduler);
}

#[test]
fn polled_scheduling_gives_the_local_results_and_a_mismatched_executor_stops_at_once() {
    let work = tempfile::tempdir().expect("dir");
    let (scheduler, url) = scheduler_process("pull");
    // an executor waiting for pushed tasks would wait forever: it refuses to start
    let started = std::time::Instant::now();
    let wrong = executor_command(&url, "push", &work.path().join("wrong"))
        .output()
        .expect("vcfq executor");
    assert!(!wrong.status.success());
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert_eq!(
        err.trim_end(),
        format!(
            "error: Invalid or Unsupported Configuration: executor: the scheduler at {url} uses pull \
             scheduling; start the executor with --scheduling pull"
        )
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    let executor = Proc(
        executor_command(&url, "pull", &work.path().join("executor"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("vcfq executor"),
    );
    let sql = format!(
        "SELECT chrom, count(*), sum(info.DP) FROM '{}' GROUP BY chrom ORDER BY chrom",
        path("bad_tail.vcf")
    );
    let skip = ["--set", "vcf.on_error=skip", "--format", "tsv", "-c", &sql];
    let local = cli(work.path(), &skip);
    let remote = cli(
        work.path(),
        &[&["--cluster", url.as_str()][..], &skip[..]].concat(),
    );
    assert!(local.0, "{}", local.2);
    assert!(remote.0, "{}", remote.2);
    assert!(local.1.lines().count() > 1, "{}", local.1);
    assert_eq!(remote.1, local.1);
    drop(executor);
    drop(scheduler);
}

/// A Flight SQL server whose sessions use the cluster at `url`, next to one without.
fn served_through_flight(url: &str) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let on_cluster = crate::flight::Server::start(&format!("[cluster]\nscheduler = \"{url}\"\n"));
        let here = crate::flight::Server::start("");
        let mut remote = crate::flight::login(&on_cluster.addr).await;
        let mut local = crate::flight::login(&here.addr).await;
        let sql = "SELECT chrom, count(*) AS n, sum(info.DP) AS dp FROM calls GROUP BY chrom ORDER BY chrom";
        let want = lines(&crate::flight::query(&mut local, sql).await);
        assert_eq!(want.len(), 23);
        assert_eq!(lines(&crate::flight::query(&mut remote, sql).await), want);
        let explain = lines(&crate::flight::query(&mut remote, &format!("EXPLAIN {sql}")).await).join("\n");
        assert!(explain.contains("distributed_plan"), "{explain}");
        let bad = format!("SELECT sum(pos) FROM '{}'", path("bad_tail.vcf"));
        let want = crate::flight::error_of(&mut local, &bad).await;
        assert!(want.contains("30041"), "{want}");
        assert_eq!(crate::flight::error_of(&mut remote, &bad).await, want);
    });
}

/// Topic tables read as snapshots run on the cluster: the scheduler takes the snapshot's end
/// offsets, executors read the partitions from the brokers; the answers are the local ones,
/// credentials stay out of the plans, and a followed topic is read on the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_read_as_snapshots_run_on_the_cluster() {
    let url = vcfq::cluster::process::standalone(vcfq::SessionBuilder::new(), 2, 2)
        .await
        .expect("standalone cluster");
    let local = session(None);
    let cluster = session(Some(&url));
    let vcf = path("gen.vcf.gz");
    let mut platforms = vec![(
        "KAFKA",
        format!(
            "{}/{}",
            crate::kafka::bootstrap(),
            crate::iggy::unique("cluster")
        ),
    )];
    if let Some(iggy) = crate::iggy::server() {
        platforms.push((
            "IGGY",
            format!("{iggy}/it-stream/{}", crate::iggy::unique("cluster")),
        ));
    }
    for (platform, location) in platforms {
        let name = format!("t_{platform}");
        let create = format!(
            "CREATE EXTERNAL TABLE {name} STORED AS {platform} LOCATION '{location}' \
             OPTIONS ('like' '{vcf}', 'partitions' '3')"
        );
        for ctx in [&local, &cluster] {
            collect(ctx, &create)
                .await
                .unwrap_or_else(|e| panic!("{create}: {e}"));
        }
        // the write runs on the client
        let written = lines(
            &collect(
                &cluster,
                &format!(
                    "INSERT INTO {name} SELECT * FROM '{vcf}' WHERE chrom IN ('chr1', 'chr2', 'chr3')"
                ),
            )
            .await
            .expect("insert"),
        );
        let want = lines(
            &collect(
                &local,
                &format!("SELECT count(*) FROM '{vcf}' WHERE chrom IN ('chr1', 'chr2', 'chr3')"),
            )
            .await
            .expect("count"),
        );
        assert_eq!(written, want);
        assert_ne!(want, ["0"]);
        let queries = [
            format!(
                "SELECT chrom, count(*), sum(pos), sum(info.DP) FROM {name} GROUP BY chrom ORDER BY chrom"
            ),
            format!(
                "SELECT _partition, count(*), min(_offset), max(_offset) FROM {name} \
                 GROUP BY _partition ORDER BY _partition"
            ),
            format!("SELECT count(*), sum(pos) FROM {name} WHERE _partition = 1 AND _offset >= 10"),
        ];
        for sql in &queries {
            let (got, want) = here_and_there(&local, &cluster, sql).await;
            assert_eq!(got, want, "{platform}: {sql}");
        }
        let explain = explained(&cluster, &queries[2]).await;
        let scan = if platform == "KAFKA" {
            "KafkaExec"
        } else {
            "IggyExec"
        };
        assert!(
            explain.contains("distributed_plan") && explain.contains(scan),
            "{explain}"
        );
        if let Some((_, secret)) = location
            .strip_prefix("iggy://")
            .and_then(|rest| rest.split_once('@'))
            .and_then(|(credentials, _)| credentials.split_once(':'))
        {
            assert!(!explain.contains(secret), "{explain}");
        }
        // a followed topic never ends: read on the client
        let followed = format!("f_{platform}");
        collect(
            &cluster,
            &format!(
                "CREATE EXTERNAL TABLE {followed} STORED AS {platform} LOCATION '{location}' \
                 OPTIONS ('like' '{vcf}', 'mode' 'follow')"
            ),
        )
        .await
        .expect("create followed");
        let sql = format!("SELECT chrom, pos FROM {followed} LIMIT 3");
        assert_ne!(
            physical_plan(&cluster, &sql).await.name(),
            "ClusterExec",
            "{sql}"
        );
        assert_eq!(
            lines(&collect(&cluster, &sql).await.expect("follow")).len(),
            3
        );
    }
}
