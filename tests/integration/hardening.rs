//! Regression tests of the hardening review, each named after what broke: scans that ended
//! early in silence, warnings with the wrong line, output that held a whole result.

use std::io::Write;
use std::process::{Command, Output};

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::prelude::SessionContext;

use crate::fixtures::{GEN_RECORDS, data_dir};

fn session(settings: &[(&str, &str)]) -> SessionContext {
    let mut b = vcfq::SessionBuilder::new();
    for (k, v) in settings {
        b = b.with_setting(k, v).expect("setting");
    }
    b.build().expect("session")
}

async fn run(ctx: &SessionContext, sql: &str) -> datafusion::error::Result<Vec<RecordBatch>> {
    vcfq::session::sql(ctx, sql).await?.collect().await
}

fn message(e: datafusion::error::DataFusionError) -> String {
    vcfq::error::one_line(&anyhow::Error::new(e))
}

/// A copy of a fixture under a name of its own (faults are injected by file name).
fn copy(fixture: &str, name: &str) -> String {
    let to = data_dir().join(name);
    std::fs::copy(data_dir().join(fixture), &to).expect("copy");
    to.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_panics_deep_inside_a_range_fails_the_query_naming_the_file() {
    let file = copy("gen.vcf", "fault_deep_range.vcf");
    vcfq::readers::inject_panic("fault_deep_range.vcf", 2);
    for order in ["true", "false"] {
        let ctx = session(&[
            ("vcf.min_split_bytes", "300000"),
            ("vcf.preserve_order", order),
            ("datafusion.execution.batch_size", "1000"),
        ]);
        for sql in [
            format!("SELECT count(*) FROM '{file}'"),
            format!("SELECT count(pos) FROM '{file}'"),
            format!("SELECT chrom, count(*) FROM '{file}' GROUP BY chrom"),
        ] {
            let e = run(&ctx, &sql)
                .await
                .expect_err("a failed reader must fail the query, not end it early");
            let m = message(e);
            assert!(
                m.contains("fault_deep_range.vcf bytes ") && m.contains(": reader failed: "),
                "{sql}: {m}"
            );
            assert!(m.contains("fault injected"), "{m}");
        }
        // a LIMIT met before the fault still succeeds
        let few = run(&ctx, &format!("SELECT pos FROM '{file}' LIMIT 5"))
            .await
            .expect("limit before the fault");
        assert_eq!(few.iter().map(RecordBatch::num_rows).sum::<usize>(), 5);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_of_a_whole_gzip_file_that_panics_fails_the_query() {
    let file = copy("gen.gzip.vcf.gz", "fault_whole.vcf.gz");
    vcfq::readers::inject_panic("fault_whole.vcf.gz", 3);
    let ctx = session(&[("datafusion.execution.batch_size", "1000")]);
    let e = run(&ctx, &format!("SELECT count(pos) FROM '{file}'"))
        .await
        .expect_err("must fail");
    let m = message(e);
    assert!(m.contains("fault_whole.vcf.gz: reader failed"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_bgzf_block_deep_in_a_file_is_an_error_not_an_early_end() {
    let to = data_dir().join("corrupt_block.vcf.gz");
    let mut bytes = std::fs::read(data_dir().join("gen.vcf.gz")).expect("read");
    // damage compressed data two thirds into the file, inside some block
    let at = bytes.len() * 2 / 3;
    for b in &mut bytes[at..at + 64] {
        *b ^= 0x5a;
    }
    std::fs::write(&to, bytes).expect("write");
    for split in ["100000", "100000000"] {
        let ctx = session(&[("vcf.min_split_bytes", split)]);
        let e = run(&ctx, &format!("SELECT count(pos) FROM '{}'", to.display()))
            .await
            .expect_err("a damaged block must fail the query");
        let m = message(e);
        assert!(m.contains("corrupt_block.vcf.gz"), "{m}");
    }
}

/// `gen.vcf` with DP values that are not integers on two lines deep in the file.
fn bad_values_file() -> (String, usize, usize) {
    let text = std::fs::read_to_string(data_dir().join("gen.vcf")).expect("read");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let first_record = lines
        .iter()
        .position(|l| !l.starts_with('#'))
        .expect("records");
    let (a, b) = (first_record + 20_000, first_record + 25_000);
    for i in [a, b] {
        let start = lines[i].find("DP=").expect("DP") + 3;
        let end = start + lines[i][start..].find(';').expect(";");
        lines[i].replace_range(start..end, "abc");
    }
    let path = data_dir().join("bad_values_deep.vcf");
    let mut f = std::fs::File::create(&path).expect("create");
    for l in &lines {
        writeln!(f, "{l}").expect("write");
    }
    (path.display().to_string(), a + 1, b + 1)
}

fn vcfq(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vcfq"))
        .args(args)
        .output()
        .expect("running vcfq")
}

#[test]
fn warnings_name_the_first_line_once_per_file_however_many_readers() {
    let (file, first, _second) = bad_values_file();
    for order in ["true", "false"] {
        let o = vcfq(&[
            "--set",
            "vcf.min_split_bytes=100000",
            "--set",
            &format!("vcf.preserve_order={order}"),
            "--set",
            "datafusion.execution.target_partitions=4",
            "--format",
            "tsv",
            "-c",
            &format!("SELECT count(info.DP) AS n FROM '{file}'"),
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{err}");
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            format!("n\n{}\n", GEN_RECORDS - 2)
        );
        let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning:")).collect();
        assert_eq!(
            warnings,
            vec![format!(
                "warning: {file}: DP: not a 32-bit Integer, read as NULL (2 time(s), first at line {first} ('abc'))"
            )],
            "{err}"
        );
    }
}

#[test]
fn skipped_lines_are_reported_once_with_the_first_line() {
    let file = data_dir().join("bad_tail.vcf").display().to_string();
    let o = vcfq(&[
        "--set",
        "vcf.on_error=skip",
        "--set",
        "vcf.min_split_bytes=100000",
        "--format",
        "tsv",
        "-c",
        &format!("SELECT count(pos) AS n FROM '{file}'"),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("n\n{GEN_RECORDS}\n")
    );
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(
        warnings[0].contains("skipped 1 unreadable line(s)")
            && warnings[0].contains("first: line 30041: POS 'x'"),
        "{err}"
    );
}

#[test]
fn a_bad_setting_on_the_command_line_is_a_usage_error() {
    let o = vcfq(&["--set", "vcf.on_error=ignore", "-c", "SELECT 1"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("vcf.on_error must be 'fail' or 'skip', not 'ignore'"),
        "{err}"
    );
    let o = vcfq(&["--set", "no_equals_sign", "-c", "SELECT 1"]);
    assert_eq!(o.status.code(), Some(2));
    let malformed = data_dir().join("malformed.vcf").display().to_string();
    let o = vcfq(&[
        "--set",
        "vcf.on_error=skip",
        "--format",
        "tsv",
        "-c",
        &format!("SELECT pos FROM '{malformed}'"),
    ]);
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout), "pos\n10\n30\n");
}

#[test]
fn table_output_streams_and_maxrows_stops_the_query() {
    let gen_file = data_dir().join("gen.vcf.gz").display().to_string();
    let o = vcfq(&[
        "--maxrows",
        "3",
        "-c",
        &format!("SELECT chrom, pos FROM '{gen_file}'"),
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        out.lines().filter(|l| l.starts_with("│ chr1 ")).count(),
        3,
        "{out}"
    );
    assert!(
        out.ends_with("more than 3 rows (3 shown; --maxrows N shows more)\n"),
        "{out}"
    );
    // widths come from the first batch: a later, longer value is cut, not re-laid out
    let sample = data_dir().join("sample.vcf").display().to_string();
    let o = vcfq(&[
        "--set",
        "datafusion.execution.batch_size=1",
        "-c",
        &format!("SELECT alt FROM '{sample}'"),
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("│ [A, T] │"), "{out}");
    assert!(out.contains("│ [<DEL… │"), "{out}");
    assert!(out.ends_with("6 rows\n"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_entry_point_counts_the_same_rows_in_parallel() {
    // the ordered readers give each record once through every way of reading a file
    let ctx = session(&[("vcf.min_split_bytes", "50000")]);
    let file = data_dir().join("gen.vcf.gz").display().to_string();
    for sql in [
        format!("SELECT count(*) FROM '{file}'"),
        format!("SELECT count(pos) FROM read_vcf('{file}')"),
        format!("SELECT count(DISTINCT pos) FROM vcf_genotypes('{file}') WHERE sample = 'S00001'"),
    ] {
        let b = run(&ctx, &sql).await.expect(&sql);
        let n = b[0].column(0).as_primitive::<Int64Type>().value(0);
        assert!(n > 0 && n <= GEN_RECORDS as i64, "{sql}: {n}");
        if !sql.contains("DISTINCT") {
            assert_eq!(n, GEN_RECORDS as i64, "{sql}");
        }
    }
}

#[test]
fn bcf_splits_find_record_starts_inside_blocks() {
    // records straddle BGZF blocks (as htslib writes them): each split point must still find
    // a record start in the block it falls in, not run to the end of the file
    let path = data_dir().join("gen.bcf");
    let input = vcfq::vcf::input::VcfInput::open(&path, 1).expect("open");
    let dictionary = input.bcf_dictionary().expect("a BCF file").clone();
    let size = std::fs::metadata(&path).expect("size").len();
    let mut last = 0;
    let mut inside = 0;
    for k in 1..8 {
        let at =
            vcfq::vcf::input::bcf_records_from(&path, size * k / 8, &dictionary).expect("split");
        assert!(
            at != u64::MAX && at > last,
            "split {k}: {at:#x} after {last:#x}"
        );
        // the record start lies in the first block after the offset, not far beyond
        assert!(
            (at >> 16) < size * k / 8 + 70_000,
            "split {k} at block {}",
            at >> 16
        );
        inside += usize::from(at & 0xFFFF != 0);
        last = at;
    }
    assert!(inside > 0, "no split fell inside a block");
}
