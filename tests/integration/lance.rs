//! Lance tables on real datasets: written by vcfq and read by Python's `lance` and `lancedb`,
//! written by Python and read by vcfq; vector indexes built from SQL; both kNN idioms
//! (`vector_search` and `ORDER BY <distance> LIMIT k`) against the exact answer, with
//! filters applied before the search.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use datafusion::arrow::array::{
    AsArray, FixedSizeListArray, Float32Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Float32Type, Int64Type, Schema};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

const DIM: usize = 32;

/// The batches of `sql` in `ctx`; panics with the error when it fails.
async fn collect(ctx: &SessionContext, sql: &str) -> Vec<RecordBatch> {
    match vcfq::session::sql(ctx, sql).await {
        Ok(df) => df.collect().await.unwrap_or_else(|e| panic!("{sql}: {e}")),
        Err(e) => panic!("{sql}: {e}"),
    }
}

/// The error of `sql`, planning or running.
async fn error_of(ctx: &SessionContext, sql: &str) -> String {
    match vcfq::session::sql(ctx, sql).await {
        Ok(df) => match df.collect().await {
            Ok(_) => panic!("{sql}: no error"),
            Err(e) => e.to_string(),
        },
        Err(e) => e.to_string(),
    }
}

/// Deterministic pseudo-random vectors: `rows` rows of (id, grp 'g0'…'g4', emb[DIM]).
fn vectors(rows: usize, seed: u64) -> RecordBatch {
    let mut state = seed;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
    };
    let values: Vec<f32> = (0..rows * DIM).map(|_| next()).collect();
    let item = Arc::new(Field::new_list_field(DataType::Float32, true));
    let emb = FixedSizeListArray::try_new(
        Arc::clone(&item),
        DIM as i32,
        Arc::new(Float32Array::from(values)),
        None,
    )
    .unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("grp", DataType::Utf8, false),
        Field::new("emb", DataType::FixedSizeList(item, DIM as i32), false),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(0..rows as i64)),
            Arc::new(StringArray::from_iter_values(
                (0..rows).map(|i| format!("g{}", i % 5)),
            )),
            Arc::new(emb),
        ],
    )
    .unwrap()
}

/// A session with `src` holding `vectors(rows, seed)`.
fn session_with(batch: &RecordBatch) -> SessionContext {
    let ctx = vcfq::SessionBuilder::new().build().unwrap();
    let table = MemTable::try_new(batch.schema(), vec![vec![batch.clone()]]).unwrap();
    ctx.register_table("src", Arc::new(table)).unwrap();
    ctx
}

/// A session with `src` holding `batch`, copied into a Lance dataset registered as `name`
/// (in the returned directory).
async fn lance_table_of(batch: &RecordBatch, name: &str) -> (tempfile::TempDir, SessionContext) {
    let dir = tempfile::tempdir().unwrap();
    let ctx = session_with(batch);
    let path = dir.path().join(format!("{name}.lance"));
    collect(
        &ctx,
        &format!("COPY src TO '{}' STORED AS LANCE", path.display()),
    )
    .await;
    collect(
        &ctx,
        &format!(
            "CREATE EXTERNAL TABLE {name} STORED AS LANCE LOCATION '{}'",
            path.display()
        ),
    )
    .await;
    (dir, ctx)
}

/// The query vector literal of row `row` of `batch`'s `emb`, slightly moved.
fn query_literal(batch: &RecordBatch, row: usize) -> String {
    let emb = batch.column(2).as_fixed_size_list().value(row);
    let values = emb.as_primitive::<Float32Type>();
    let items: Vec<String> = values
        .values()
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{}", v + if i % 3 == 0 { 0.05 } else { -0.02 }))
        .collect();
    format!("[{}]", items.join(", "))
}

/// `(id, distance)` of a two-column result.
fn id_distance(batches: &[RecordBatch]) -> Vec<(i64, f32)> {
    let mut out = Vec::new();
    for b in batches {
        let ids = b.column(0).as_primitive::<Int64Type>();
        let d = b.column(1).as_primitive::<Float32Type>();
        for r in 0..b.num_rows() {
            out.push((ids.value(r), d.value(r)));
        }
    }
    out
}

fn plan_text(batches: &[RecordBatch]) -> String {
    let mut text = String::new();
    for b in batches {
        let plans = b.column(1).as_string::<i32>();
        for r in 0..b.num_rows() {
            text.push_str(plans.value(r));
            text.push('\n');
        }
    }
    text
}

/// Python with `lance` and `lancedb`, or `None` (with the reason printed) when there is none.
fn python() -> Option<PathBuf> {
    let python = std::env::var_os("VCFQ_PYTHON")
        .map(PathBuf::from)
        .or_else(|| {
            let p = PathBuf::from(std::env::var_os("HOME")?).join(".cache/vcfq/venv/bin/python");
            p.exists().then_some(p)
        });
    let ok = python.as_ref().is_some_and(|p| {
        Command::new(p)
            .args(["-c", "import lance, lancedb"])
            .status()
            .is_ok_and(|s| s.success())
    });
    if !ok {
        eprintln!(
            "lance: no Python with pylance and lancedb ($VCFQ_PYTHON; `. scripts/clients.sh` installs them, scripts/test.sh does): Python checks skipped"
        );
        return None;
    }
    python
}

fn run_python(python: &Path, script: &str) -> String {
    let out = Command::new(python).args(["-c", script]).output().unwrap();
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lance_datasets_written_by_vcfq_are_read_by_python_lance_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let batch = vectors(3000, 7);
    let ctx = session_with(&batch);
    let path = dir.path().join("vecs.lance");
    let copied = collect(
        &ctx,
        &format!(
            "COPY (SELECT * FROM src) TO '{}' STORED AS LANCE",
            path.display()
        ),
    )
    .await;
    assert_eq!(
        copied[0]
            .column(0)
            .as_primitive::<datafusion::arrow::datatypes::UInt64Type>()
            .value(0),
        3000
    );
    collect(
        &ctx,
        &format!(
            "CREATE EXTERNAL TABLE vecs STORED AS LANCE LOCATION '{}'",
            path.display()
        ),
    )
    .await;
    // INSERT appends a version; the table sees it at once
    collect(
        &ctx,
        "INSERT INTO vecs SELECT id + 3000, grp, emb FROM src WHERE id < 10",
    )
    .await;
    let count = collect(&ctx, "SELECT count(*), sum(id) FROM vecs").await;
    assert_eq!(
        count[0].column(0).as_primitive::<Int64Type>().value(0),
        3010
    );
    let sum = count[0].column(1).as_primitive::<Int64Type>().value(0);
    assert_eq!(sum, (0..3000).sum::<i64>() + (3000..3010).sum::<i64>());
    // projection, filter and limit reach Lance's scanner
    let explain = plan_text(
        &collect(
            &ctx,
            "EXPLAIN SELECT id FROM vecs WHERE grp = 'g2' AND id > 100 LIMIT 5",
        )
        .await,
    );
    assert!(
        explain.contains("LanceScanExec") && explain.contains("projection=[id]"),
        "{explain}"
    );
    assert!(
        explain.contains("filter=[") && explain.contains("limit=5"),
        "{explain}"
    );
    let rows = collect(
        &ctx,
        "SELECT id FROM vecs WHERE grp = 'g2' AND id > 100 ORDER BY id LIMIT 3",
    )
    .await;
    let ids: Vec<i64> = rows[0]
        .column(0)
        .as_primitive::<Int64Type>()
        .values()
        .to_vec();
    assert_eq!(ids, vec![102, 107, 112]);

    let Some(python) = python() else { return };
    // Python's lance and lancedb read vcfq's dataset: rows, ids and vector values
    let expected_values = batch.column(2).as_fixed_size_list().value(7);
    let expected: Vec<f32> = expected_values.as_primitive::<Float32Type>().values()[..4].to_vec();
    let out = run_python(
        &python,
        &format!(
            r#"
import lance, lancedb, pyarrow.compute as pc
ds = lance.dataset("{path}")
t = ds.to_table()
row = t.filter(pc.equal(t["id"], 7))
db = lancedb.connect("{dir}")
lt = db.open_table("vecs")
print(ds.count_rows(), pc.sum(t["id"]).as_py(), lt.count_rows(), str(t.schema.field("emb").type))
print(" ".join(repr(float(x)) for x in row["emb"][0].as_py()[:4]))
"#,
            path = path.display(),
            dir = dir.path().display()
        ),
    );
    let mut lines = out.lines();
    assert_eq!(
        lines.next().unwrap(),
        format!("3010 {sum} 3010 fixed_size_list<item: float>[{DIM}]")
    );
    let values: Vec<f32> = lines
        .next()
        .unwrap()
        .split(' ')
        .map(|v| v.parse::<f64>().unwrap() as f32)
        .collect();
    assert_eq!(values, expected);

    // a dataset written by Python is a vcfq table
    let py_path = dir.path().join("from_python.lance");
    run_python(
        &python,
        &format!(
            r#"
import lance, pyarrow as pa
emb = pa.FixedSizeListArray.from_arrays(pa.array([1.0, 0.0, 0.0, 1.0, 0.6, 0.8], pa.float32()), 2)
lance.write_dataset(pa.table({{"name": ["a", "b", "c"], "emb": emb}}), "{}")
"#,
            py_path.display()
        ),
    );
    collect(
        &ctx,
        &format!(
            "CREATE EXTERNAL TABLE py STORED AS LANCE LOCATION '{}'",
            py_path.display()
        ),
    )
    .await;
    let rows = collect(
        &ctx,
        "SELECT name, cosine_distance(emb, [1.0, 0.0]) FROM py ORDER BY name",
    )
    .await;
    let names = rows[0].column(0).as_string::<i32>();
    let d = rows[0].column(1).as_primitive::<Float32Type>();
    let got: Vec<(String, f32)> = (0..rows[0].num_rows())
        .map(|r| (names.value(r).to_string(), d.value(r)))
        .collect();
    assert_eq!(
        got,
        vec![
            ("a".into(), 0.0),
            ("b".into(), 1.0),
            ("c".into(), 1.0 - 0.6f32)
        ]
    );
    // and vcfq appends to it, readable by Python again
    collect(&ctx, "INSERT INTO py VALUES ('d', [0.0, -1.0])").await;
    let out = run_python(
        &python,
        &format!(
            "import lance; print(sorted(lance.dataset('{}').to_table()['name'].to_pylist()))",
            py_path.display()
        ),
    );
    assert_eq!(out.trim(), "['a', 'b', 'c', 'd']");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knn_through_an_index_returns_the_exact_rows_and_k_rows_under_a_filter() {
    let batch = vectors(4000, 11);
    let (_dir, ctx) = lance_table_of(&batch, "t").await;
    let q = query_literal(&batch, 123);
    let by_order = |filter: &str| {
        format!("SELECT id, cosine_distance(emb, {q}) AS d FROM t {filter} ORDER BY d LIMIT 10")
    };
    // the exact answer: no index yet
    let exact = id_distance(&collect(&ctx, &by_order("")).await);
    assert_eq!(exact.len(), 10);
    assert_eq!(exact[0].0, 123);
    let exact_g1 = id_distance(&collect(&ctx, &by_order("WHERE grp = 'g1'")).await);
    let plan = plan_text(&collect(&ctx, &format!("EXPLAIN {}", by_order(""))).await);
    assert!(!plan.contains("KnnExec"), "no index, no search: {plan}");

    // IVF_FLAT probed in every partition is exact: the same rows through the index
    collect(
        &ctx,
        "CREATE INDEX emb_idx ON t USING IVF_FLAT (emb) WITH (num_partitions = 4, metric = 'cosine')",
    )
    .await;
    collect(&ctx, "SET vector.nprobes = 4").await;
    let plan = plan_text(&collect(&ctx, &format!("EXPLAIN {}", by_order(""))).await);
    assert!(
        plan.contains("KnnExec") && plan.contains("index=emb_idx") && plan.contains("k=10"),
        "{plan}"
    );
    assert_eq!(id_distance(&collect(&ctx, &by_order("")).await), exact);
    // the filter is applied before the search: k rows, all matching, the exact ones
    let plan =
        plan_text(&collect(&ctx, &format!("EXPLAIN {}", by_order("WHERE grp = 'g1'"))).await);
    assert!(plan.contains("prefilter=["), "{plan}");
    let filtered = id_distance(&collect(&ctx, &by_order("WHERE grp = 'g1'")).await);
    assert_eq!(filtered, exact_g1);
    assert!(filtered.iter().all(|(id, _)| id % 5 == 1));
    // fewer matching rows than k: all of them
    let few = id_distance(&collect(&ctx, &by_order("WHERE id < 3")).await);
    assert_eq!(few.len(), 3);

    // vector_search: the same rows and distances, named arguments, a subquery for the query
    let searched = id_distance(
        &collect(
            &ctx,
            &format!("SELECT id, _distance FROM vector_search('t', 'emb', {q}, 10)"),
        )
        .await,
    );
    assert_eq!(searched, exact);
    let searched_g1 = id_distance(
        &collect(
            &ctx,
            &format!(
                "SELECT id, _distance FROM vector_search('t', 'emb', {q}, 10, filter => 'grp = ''g1''')"
            ),
        )
        .await,
    );
    assert_eq!(searched_g1, exact_g1);
    let by_row = id_distance(
        &collect(
            &ctx,
            "SELECT id, _distance FROM vector_search('t', 'emb', (SELECT emb FROM t WHERE id = 42), 3, nprobes => 4)",
        )
        .await,
    );
    assert_eq!(by_row[0], (42, 0.0));
    assert_eq!(by_row.len(), 3);

    // index use off: the exact scan, with the same answer
    collect(&ctx, "SET vector.use_index = false").await;
    let plan = plan_text(&collect(&ctx, &format!("EXPLAIN {}", by_order(""))).await);
    assert!(!plan.contains("KnnExec"), "{plan}");
    collect(&ctx, "SET vector.use_index = true").await;

    // the index is for cosine: an l2 query is not rewritten; an l2 index is used by it
    let by_l2 = format!("SELECT id, l2_distance(emb, {q}) AS d FROM t ORDER BY d LIMIT 5");
    let exact_l2 = id_distance(&collect(&ctx, &by_l2).await);
    let plan = plan_text(&collect(&ctx, &format!("EXPLAIN {by_l2}")).await);
    assert!(!plan.contains("KnnExec"), "{plan}");
    collect(
        &ctx,
        "CREATE INDEX emb_l2 ON t USING IVF_FLAT (emb) WITH (num_partitions = 4, metric = 'l2')",
    )
    .await;
    let plan = plan_text(&collect(&ctx, &format!("EXPLAIN {by_l2}")).await);
    assert!(
        plan.contains("index=emb_l2") && plan.contains("metric=l2"),
        "{plan}"
    );
    assert_eq!(id_distance(&collect(&ctx, &by_l2).await), exact_l2);

    // the indexes are listed; IVF_PQ and IVF_HNSW_SQ build and answer k rows
    collect(
        &ctx,
        "CREATE INDEX emb_pq ON t USING IVF_PQ (emb) WITH (num_partitions = 4, num_sub_vectors = 8, metric = 'dot')",
    )
    .await;
    let by_dot = format!("SELECT id, inner_product(emb, {q}) AS d FROM t ORDER BY d DESC LIMIT 10");
    let plan = plan_text(&collect(&ctx, &format!("EXPLAIN {by_dot}")).await);
    assert!(plan.contains("index=emb_pq"), "{plan}");
    let approx = id_distance(&collect(&ctx, &by_dot).await);
    assert_eq!(approx.len(), 10);
    assert!(approx.windows(2).all(|w| w[0].1 >= w[1].1), "{approx:?}");
    let listed = collect(
        &ctx,
        "SELECT index_name, column_name, index_type, metric, rows_indexed FROM vector_indexes() ORDER BY index_name",
    )
    .await;
    let names: Vec<String> = (0..listed[0].num_rows())
        .map(|r| {
            (0..4)
                .map(|c| listed[0].column(c).as_string::<i32>().value(r).to_string())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    assert_eq!(
        names,
        vec![
            "emb_idx emb IVF_FLAT cosine",
            "emb_l2 emb IVF_FLAT l2",
            "emb_pq emb IVF_PQ dot"
        ]
    );
    let rows_indexed = listed[0]
        .column(4)
        .as_primitive::<datafusion::arrow::datatypes::UInt64Type>();
    assert!(rows_indexed.values().iter().all(|n| *n == 4000));

    // rows added after the index was built are searched too (exactly): a copy of the
    // nearest row comes back beside it
    collect(
        &ctx,
        "INSERT INTO t SELECT id + 10000, grp, emb FROM src WHERE id = 123",
    )
    .await;
    let top2: Vec<i64> = id_distance(&collect(&ctx, &by_order("")).await)
        .iter()
        .take(2)
        .map(|(id, _)| *id)
        .collect();
    let plan = plan_text(&collect(&ctx, &format!("EXPLAIN {}", by_order(""))).await);
    assert!(plan.contains("index=emb_idx"), "{plan}");
    assert!(top2.contains(&123) && top2.contains(&10123), "{top2:?}");

    // DROP INDEX: the query is exact again
    collect(&ctx, "DROP INDEX emb_idx").await;
    let plan = plan_text(&collect(&ctx, &format!("EXPLAIN {}", by_order(""))).await);
    assert!(!plan.contains("KnnExec"), "{plan}");
    assert!(
        error_of(&ctx, "DROP INDEX emb_idx")
            .await
            .contains("no vector index named 'emb_idx'")
    );
    collect(&ctx, "DROP INDEX IF EXISTS emb_idx").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lance_errors_name_the_table_column_or_setting() {
    let (dir, ctx) = lance_table_of(&vectors(300, 3), "e").await;
    let path = dir.path().join("e.lance");
    let missing = dir.path().join("nothing.lance");
    for (sql, message) in [
        (
            format!(
                "CREATE EXTERNAL TABLE m STORED AS LANCE LOCATION '{}'",
                missing.display()
            ),
            "no lance dataset at".to_string(),
        ),
        (
            format!(
                "CREATE EXTERNAL TABLE m STORED AS LANCE LOCATION '{}' OPTIONS ('x' 'y')",
                path.display()
            ),
            "lance tables take no OPTIONS, got 'x'".to_string(),
        ),
        (
            "CREATE INDEX i ON e USING IVF_PQ (grp)".to_string(),
            "column 'grp' is Utf8".to_string(),
        ),
        (
            "CREATE INDEX i ON e USING BTREE (emb)".to_string(),
            "unknown index type 'BTREE'".to_string(),
        ),
        (
            "CREATE INDEX i ON e (nope)".to_string(),
            "table 'e' has no column 'nope'".to_string(),
        ),
        (
            "CREATE INDEX i ON src (emb)".to_string(),
            "'src' is not a Lance table".to_string(),
        ),
        (
            "SELECT * FROM vector_search('nope', 'emb', [1.0], 3)".to_string(),
            "no table named 'nope'".to_string(),
        ),
        (
            "SELECT * FROM vector_search('src', 'emb', [1.0], 3)".to_string(),
            "'src' is not a Lance table".to_string(),
        ),
        (
            "SELECT * FROM vector_search('e', 'grp', [1.0], 3)".to_string(),
            "column 'grp' is Utf8, not a vector".to_string(),
        ),
        (
            "SELECT * FROM vector_search('e', 'emb', [1.0, 2.0], 3)".to_string(),
            format!("query vector has 2 values, column 'emb' has vectors of {DIM}"),
        ),
        (
            "SELECT * FROM vector_search('e', 'emb', [1.0], 0)".to_string(),
            "k must be a positive whole number".to_string(),
        ),
        (
            "SELECT * FROM vector_search('e', 'emb', [1.0], 3, nprobe => 2)".to_string(),
            "unknown argument 'nprobe'".to_string(),
        ),
        (
            format!(
                "COPY src TO '{}' STORED AS LANCE OPTIONS ('mode' 'create')",
                path.display()
            ),
            "there is a dataset at".to_string(),
        ),
        (
            format!(
                "COPY src TO '{}' STORED AS LANCE OPTIONS ('compression' 'zstd')",
                path.display()
            ),
            "unknown option 'compression'".to_string(),
        ),
        // a query vector of the wrong length fails in the distance function, index or not
        (
            "SELECT id FROM e ORDER BY cosine_distance(emb, [1.0, 2.0]) LIMIT 3".to_string(),
            "cosine_distance".to_string(),
        ),
    ] {
        let e = error_of(&ctx, &sql).await;
        assert!(
            e.contains(&message),
            "{sql}\n  gave: {e}\n  expected: {message}"
        );
        assert!(!e.contains('\n'), "one line: {e}");
    }
}

/// Datasets a process opened are reused while they are the latest version: a write from
/// another session (a new version), an index built since (a new version), and a dataset
/// deleted and written again at the same path (its versions start again at 1) are all seen
/// by the next query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_query_reads_the_latest_dataset_even_one_written_again_at_the_same_path() {
    let dir = tempfile::tempdir().expect("dir");
    let location = dir.path().join("again.lance");
    let create = format!(
        "CREATE EXTERNAL TABLE t (id BIGINT NOT NULL, v FLOAT[2]) STORED AS LANCE LOCATION '{}'",
        location.display()
    );
    let reader = vcfq::SessionBuilder::new().build().expect("session");
    let writer = vcfq::SessionBuilder::new().build().expect("session");
    let count = "SELECT count(*), sum(id) FROM t";
    let counted = |batches: Vec<RecordBatch>| {
        let b = &batches[0];
        (
            b.column(0).as_primitive::<Int64Type>().value(0),
            b.column(1).as_primitive::<Int64Type>().value(0),
        )
    };
    let insert = |from: i64, to: i64| {
        format!(
            "INSERT INTO t SELECT value, arrow_cast(make_array(value, 0.0), 'FixedSizeList(2, Float32)') \
             FROM generate_series({from}, {to})"
        )
    };
    collect(&writer, &create).await;
    collect(&writer, &insert(1, 300)).await;
    collect(&reader, &create).await;
    assert_eq!(counted(collect(&reader, count).await), (300, 45150));
    assert_eq!(counted(collect(&reader, count).await), (300, 45150));
    // a new version written by another session
    collect(&writer, &insert(301, 310)).await;
    assert_eq!(counted(collect(&reader, count).await), (310, 48205));
    // an index (a new version) is found by the next kNN query
    let knn = "EXPLAIN SELECT id FROM t ORDER BY l2_distance(v, [3.0, 0.0]) LIMIT 2";
    collect(
        &writer,
        "CREATE INDEX i ON t USING IVF_FLAT (v) WITH (num_partitions = 2, metric = 'l2')",
    )
    .await;
    let plan = plan_text(&collect(&reader, knn).await);
    assert!(
        plan.contains("KnnExec") && plan.contains("index=i"),
        "{plan}"
    );
    // deleted and written again: version 1 again, other rows
    std::fs::remove_dir_all(&location).expect("remove");
    let fresh = vcfq::SessionBuilder::new().build().expect("session");
    collect(&fresh, &create).await;
    collect(&fresh, &insert(1, 3)).await;
    assert_eq!(counted(collect(&reader, count).await), (3, 6));
    let plan = plan_text(&collect(&reader, knn).await);
    assert!(
        !plan.contains("KnnExec"),
        "no index on the new dataset:\n{plan}"
    );
}
