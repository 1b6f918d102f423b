//! Writing VCF and BCF, judged by bcftools: every real-world file of the shared corpus that
//! bcftools reads, copied by `COPY … TO 'o.vcf.gz'`, gives the same `bcftools query` text (core
//! columns, every INFO and FORMAT field) and no warning the input did not give; the fixtures
//! read back as the same rows from VCF, BGZF and BCF; an index vcfq writes answers region
//! queries as bcftools' reading of it does; `--format vcf` pipes into bcftools.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::Int64Type;

use crate::fixtures::data_dir;

fn bcftools() -> bool {
    Command::new("bcftools")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

async fn run(
    ctx: &datafusion::prelude::SessionContext,
    sql: &str,
) -> Vec<datafusion::arrow::array::RecordBatch> {
    async { vcfq::session::sql(ctx, sql).await?.collect().await }
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The one number a statement returns (a count, or the rows a COPY wrote).
async fn count(ctx: &datafusion::prelude::SessionContext, sql: &str) -> i64 {
    let batches = run(ctx, sql).await;
    let column = datafusion::arrow::compute::cast(
        batches[0].column(0),
        &datafusion::arrow::datatypes::DataType::Int64,
    )
    .unwrap();
    column.as_primitive::<Int64Type>().value(0)
}

/// Rows of `a` not in `b` plus rows of `b` not in `a`, every column compared.
async fn differing_rows(ctx: &datafusion::prelude::SessionContext, a: &str, b: &str) -> i64 {
    let mut n = 0;
    for (x, y) in [(a, b), (b, a)] {
        n += count(
            ctx,
            &format!("SELECT count(*) FROM (SELECT * FROM {x} EXCEPT ALL SELECT * FROM {y})"),
        )
        .await;
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixtures_read_back_as_the_same_rows() {
    let ctx = vcfq::SessionBuilder::new().build().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut copies = 0;
    for (name, bcf) in [
        ("sample.vcf", false),
        ("sample_bcf.vcf", true),
        ("clean.vcf", true),
        ("crlf.vcf", false),
        ("local_alleles.vcf", false),
        ("hla.vcf", false),
        ("sample.vcf.bgz", false),
        ("gen.vcf.gz", true),
    ] {
        let input = data_dir().join(name);
        let mut targets = vec!["o.vcf", "o.vcf.gz"];
        if bcf {
            targets.push("o.bcf");
        }
        for target in targets {
            let out = tmp.path().join(format!("{copies}-{target}"));
            copies += 1;
            let sql = format!(
                "COPY (SELECT * FROM '{}') TO '{}'",
                input.display(),
                out.display()
            );
            let written = count(&ctx, &sql).await;
            let rows = count(&ctx, &format!("SELECT count(*) FROM '{}'", input.display())).await;
            assert_eq!(written, rows, "{sql}");
            let differ = differing_rows(
                &ctx,
                &format!("'{}'", input.display()),
                &format!("'{}'", out.display()),
            )
            .await;
            assert_eq!(differ, 0, "{sql}: {differ} rows differ when read back");
        }
    }
}

/// `bcftools ARGS`: its stdout, or its stderr as the error.
fn bcftools_run(args: &[&str]) -> Result<(String, String), String> {
    let o = Command::new("bcftools")
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    if !o.status.success() {
        return Err(err);
    }
    Ok((String::from_utf8_lossy(&o.stdout).into_owned(), err))
}

/// Fields whose values vcfq reads differently from bcftools, on purpose (README: "What is
/// rejected and what is tolerated"), left out of the comparison of these files: (file, fields,
/// why).
const READ_DIFFERENTLY: &[(&str, &[&str], &str)] = &[
    (
        "vcfpy/string_as_flag.vcf",
        &["AB", "CD"],
        "a String INFO key written without a value: bcftools reads 1, vcfq NULL",
    ),
    (
        "hts-specs/failed_body_sample_004.vcf",
        &["DS"],
        "a Number=1 Float FORMAT value holding two numbers: bcftools keeps both, vcfq reads NULL with a warning",
    ),
];

/// A `bcftools query` format printing every column, INFO field and FORMAT field that the
/// header of `file` declares, but those in `leave_out`.
fn query_format(file: &Path, leave_out: &[&str]) -> Result<String, String> {
    let (header, _) = bcftools_run(&["view", "-h", &file.display().to_string()])?;
    let id_of = |line: &str, key: &str| {
        line.strip_prefix(key)
            .and_then(|rest| rest.split([',', '>']).next())
            .map(str::to_string)
    };
    let mut infos = Vec::new();
    let mut formats = Vec::new();
    let mut samples = false;
    for line in header.lines() {
        if let Some(id) = id_of(line, "##INFO=<ID=") {
            if !leave_out.contains(&id.as_str()) {
                infos.push(id);
            }
        } else if let Some(id) = id_of(line, "##FORMAT=<ID=") {
            if !leave_out.contains(&id.as_str()) {
                formats.push(id);
            }
        } else if line.starts_with("#CHROM") {
            samples = line.split('\t').count() > 9;
        }
    }
    let mut fmt = String::from("%CHROM\t%POS\t%ID\t%REF\t%ALT\t%QUAL\t%FILTER");
    for id in &infos {
        fmt.push_str(&format!("\t{id}=%INFO/{id}"));
    }
    if samples && !formats.is_empty() {
        fmt.push_str("[\t%SAMPLE");
        for id in &formats {
            fmt.push_str(&format!(":%{id}"));
        }
        fmt.push(']');
    }
    fmt.push('\n');
    Ok(fmt)
}

/// The warnings bcftools gives reading `file` whole.
fn warnings(file: &Path) -> Result<HashSet<String>, String> {
    let (_, err) = bcftools_run(&[
        "view",
        "-Ov",
        "-o",
        "/dev/null",
        &file.display().to_string(),
    ])?;
    Ok(err.lines().map(str::to_string).collect())
}

/// The corpus files bcftools reads (its verdict in MANIFEST.tsv is "ok…").
fn corpus_files() -> Option<Vec<PathBuf>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/vcf-corpus");
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).ok()?;
    let mut lines = manifest.lines();
    let head: Vec<&str> = lines.next()?.split('\t').collect();
    let path = head.iter().position(|c| *c == "path")?;
    let verdict = head.iter().position(|c| *c == "bcftools_verdict")?;
    Some(
        lines
            .map(|l| l.split('\t').collect::<Vec<_>>())
            .filter(|f| f.get(verdict).is_some_and(|v| v.starts_with("ok")))
            .map(|f| dir.join(f[path]))
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bcftools_reads_every_copied_corpus_file_as_its_source() {
    let Some(files) = corpus_files() else {
        eprintln!(
            "vcf_out: ../shared/data/vcf-corpus not found; the bcftools round trip is skipped \
             (put the shared corpus beside the clone to run it)"
        );
        return;
    };
    if !bcftools() {
        eprintln!(
            "vcf_out: bcftools not found; the round trip is skipped (scripts/test.sh installs it)"
        );
        return;
    }
    assert!(files.len() > 50, "{} corpus files", files.len());
    let ctx = vcfq::SessionBuilder::new().build().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (i, input) in files.iter().enumerate() {
        let name = input.display().to_string();
        let out = tmp.path().join(format!("{i}.vcf.gz"));
        let sql = format!("COPY (SELECT * FROM '{name}') TO '{}'", out.display());
        if let Err(e) = async { vcfq::session::sql(&ctx, &sql).await?.collect().await }.await {
            failures.push(format!("{name}: COPY failed: {e}"));
            continue;
        }
        let leave_out = READ_DIFFERENTLY
            .iter()
            .find(|(f, _, _)| name.ends_with(f))
            .map_or(&[][..], |(_, fields, _)| *fields);
        let fmt = match query_format(input, leave_out) {
            Ok(f) => f,
            Err(e) => {
                failures.push(format!("{name}: bcftools view -h: {e}"));
                continue;
            }
        };
        let query = |file: &Path| {
            bcftools_run(&["query", "-f", &fmt, &file.display().to_string()]).map(|(o, _)| o)
        };
        match (query(input), query(&out)) {
            (Ok(want), Ok(got)) if want == got => {}
            (Ok(want), Ok(got)) => {
                let (n, w, g) = want
                    .lines()
                    .zip(got.lines())
                    .enumerate()
                    .find(|(_, (w, g))| w != g)
                    .map(|(n, (w, g))| (n + 1, w.to_string(), g.to_string()))
                    .unwrap_or((
                        0,
                        format!("{} lines", want.lines().count()),
                        format!("{} lines", got.lines().count()),
                    ));
                failures.push(format!("{name}: line {n} differs:\n  bcftools on the input:  {w}\n  bcftools on the output: {g}"));
                continue;
            }
            (Err(e), _) => {
                failures.push(format!("{name}: bcftools query on the input: {e}"));
                continue;
            }
            (_, Err(e)) => {
                failures.push(format!("{name}: bcftools query on the output: {e}"));
                continue;
            }
        }
        match (warnings(input), warnings(&out)) {
            (Ok(before), Ok(after)) => {
                let new: Vec<&String> = after.difference(&before).collect();
                if !new.is_empty() {
                    failures.push(format!(
                        "{name}: new bcftools warnings on the output: {new:?}"
                    ));
                }
            }
            (_, Err(e)) => failures.push(format!("{name}: bcftools view on the output: {e}")),
            (Err(_), _) => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus files do not round-trip:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
    eprintln!(
        "vcf_out: {} corpus files round-trip through bcftools",
        files.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_written_by_vcfq_answers_regions_as_bcftools_reads_them() {
    if !bcftools() {
        eprintln!(
            "vcf_out: bcftools not found; the index check is skipped (scripts/test.sh installs it)"
        );
        return;
    }
    let ctx = vcfq::SessionBuilder::new().build().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let input = data_dir().join("gen.vcf.gz");
    for (target, kind) in [("o.vcf.gz", "tbi"), ("c.vcf.gz", "csi"), ("o.bcf", "csi")] {
        let out = tmp.path().join(target);
        let sql = format!(
            "COPY (SELECT * FROM '{}') TO '{}' OPTIONS ('index' '{kind}')",
            input.display(),
            out.display()
        );
        run(&ctx, &sql).await;
        let index = PathBuf::from(format!("{}.{kind}", out.display()));
        assert!(index.is_file(), "{sql}: no {}", index.display());
        let batches = run(
            &ctx,
            &format!(
                "SELECT chrom, min(pos), max(pos) FROM '{}' GROUP BY chrom ORDER BY chrom",
                input.display()
            ),
        )
        .await;
        let b = &batches[0];
        for row in 0..b.num_rows().min(3) {
            let chrom = b.column(0).as_string::<i32>().value(row).to_string();
            let lo = b.column(1).as_primitive::<Int64Type>().value(row);
            let hi = b.column(2).as_primitive::<Int64Type>().value(row);
            let region = format!("{chrom}:{}-{}", lo + (hi - lo) / 4, lo + (hi - lo) / 2);
            let want = count(
                &ctx,
                &format!(
                    "SELECT count(*) FROM read_vcf('{}', '{region}')",
                    input.display()
                ),
            )
            .await;
            // bcftools reads the region through vcfq's index
            let (text, _) =
                bcftools_run(&["view", "-H", "-r", &region, &out.display().to_string()])
                    .unwrap_or_else(|e| panic!("bcftools view -r {region} {}: {e}", out.display()));
            assert_eq!(
                text.lines().count() as i64,
                want,
                "{region} of {}",
                out.display()
            );
            assert!(want > 0, "{region}: an empty region proves nothing");
            // and so does vcfq
            let got = count(
                &ctx,
                &format!(
                    "SELECT count(*) FROM read_vcf('{}', '{region}')",
                    out.display()
                ),
            )
            .await;
            assert_eq!(got, want, "{region} of {} read by vcfq", out.display());
        }
    }
    // bcftools indexes a sorted copy that vcfq did not index, and reads regions through it
    let out = tmp.path().join("sorted.vcf.gz");
    let sql = format!(
        "COPY (SELECT * FROM '{}' ORDER BY pos DESC) TO '{}' OPTIONS ('sort' 'true')",
        input.display(),
        out.display()
    );
    run(&ctx, &sql).await;
    bcftools_run(&["index", "-t", &out.display().to_string()])
        .unwrap_or_else(|e| panic!("bcftools index -t {}: {e}", out.display()));
    let (all, _) = bcftools_run(&["view", "-H", &out.display().to_string()]).unwrap();
    let rows = count(&ctx, &format!("SELECT count(*) FROM '{}'", input.display())).await;
    assert_eq!(all.lines().count() as i64, rows);
}

#[test]
fn format_vcf_pipes_into_bcftools() {
    if !bcftools() {
        eprintln!(
            "vcf_out: bcftools not found; the pipe check is skipped (scripts/test.sh installs it)"
        );
        return;
    }
    let input = data_dir().join("sample.vcf");
    let sql = format!(
        "SELECT * FROM '{}' WHERE pos >= 200 ORDER BY chrom, pos",
        input.display()
    );
    let o = Command::new(env!("CARGO_BIN_EXE_vcfq"))
        .args(["--format", "vcf", "-c", &sql])
        .output()
        .expect("running vcfq");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.starts_with("##fileformat=VCFv4.3\n"), "{text}");
    assert!(text.contains("\n##vcfqCommand=SELECT * FROM "), "{text}");
    let mut child = Command::new("bcftools")
        .args(["query", "-f", "%CHROM:%POS %INFO/SVTYPE [%GT ]\n", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bcftools");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "chr1:200 . 1/2 ./. 0/1 \nchr1:300 . 1 0|0|1 . \nchr1:400 DEL 0/1 0/0 1/1 \n"
    );
    // rows that are not VCF rows get a one-line error
    let o = Command::new(env!("CARGO_BIN_EXE_vcfq"))
        .args(["--format", "vcf", "-c", "SELECT 1 AS x"])
        .output()
        .expect("running vcfq");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("column 'x' is not a VCF column"), "{err}");
}
