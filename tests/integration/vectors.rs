//! `dosage_vector` against bcftools: the square of two vectors' cosine similarity is the LD r²
//! that `bcftools +prune -a r2` computes, for pairs of sites where every sample is called and
//! both sites vary (bcftools leaves out, per pair, samples missing at either site, which a
//! vector of one site cannot know; and gives monomorphic sites a noise-made r², where the
//! vector is NULL).

use std::collections::HashMap;
use std::process::Command;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use vcfq::generator::{GenOptions, generate_file};

/// The batches of `sql` in `ctx`; panics with the error when it fails.
async fn collect(ctx: &datafusion::prelude::SessionContext, sql: &str) -> Vec<RecordBatch> {
    vcfq::session::sql(ctx, sql)
        .await
        .unwrap()
        .collect()
        .await
        .unwrap()
}

/// What `bcftools ARGS FILE` writes; panics with its error when it fails.
fn bcftools(args: &[&str], file: &std::path::Path) -> Vec<u8> {
    let out = Command::new("bcftools")
        .args(args)
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bcftools {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn squared_cosine_of_dosage_vectors_is_bcftools_ld_r2() {
    if Command::new("bcftools").arg("--version").output().is_err() {
        eprintln!("vectors: no bcftools on PATH (scripts/test.sh installs it): test skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let vcf = dir.path().join("cohort.vcf.gz");
    let options = GenOptions {
        records: 1000,
        samples: 30,
        seed: 21,
    };
    generate_file(&vcf, &options).unwrap();
    // bcftools: each site's r² with the site before it (a window of one site)
    let pruned_path = dir.path().join("pruned.bcf");
    let pruned = bcftools(&["+prune", "-w", "1", "-a", "r2", "-f", ".", "-Ou"], &vcf);
    std::fs::write(&pruned_path, &pruned).unwrap();
    let query = bcftools(
        &["query", "-f", "%CHROM\t%POS\t%INFO/POS_R2\t%INFO/R2\n"],
        &pruned_path,
    );
    let theirs: HashMap<(String, i64, i64), f64> = String::from_utf8(query)
        .unwrap()
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            Some((
                (f[0].to_string(), f[1].parse().ok()?, f[2].parse().ok()?),
                f[3].parse().ok()?,
            ))
        })
        .collect();
    assert!(theirs.len() > 100, "bcftools gave {} pairs", theirs.len());

    // vcfq: every pair of sites on one contig where both are fully called and vary
    let ctx = vcfq::SessionBuilder::new().build().unwrap();
    let path = vcf.display();
    let sql = format!(
        "WITH missing AS (
           SELECT DISTINCT chrom, pos FROM vcf_genotypes('{path}') WHERE GT IS NULL OR GT LIKE '%.%'),
         d AS (
           SELECT s.chrom, s.pos, dosage_vector(s.genotypes) AS v FROM '{path}' s
           WHERE NOT EXISTS (SELECT 1 FROM missing m WHERE m.chrom = s.chrom AND m.pos = s.pos))
         SELECT a.chrom, a.pos, b.pos, power(1 - cosine_distance(a.v, b.v), 2) AS r2
         FROM d a JOIN d b ON a.chrom = b.chrom AND a.pos <> b.pos
         WHERE a.v IS NOT NULL AND b.v IS NOT NULL"
    );
    let batches = collect(&ctx, &sql).await;
    let mut compared = 0;
    for batch in &batches {
        let chrom = cast(batch.column(0), &DataType::Utf8).unwrap();
        let chrom = chrom.as_string::<i32>();
        let a = batch.column(1).as_primitive::<Int64Type>();
        let b = batch.column(2).as_primitive::<Int64Type>();
        let r2 = batch.column(3).as_primitive::<Float64Type>();
        for i in 0..batch.num_rows() {
            let key = (chrom.value(i).to_string(), a.value(i), b.value(i));
            if let Some(want) = theirs.get(&key) {
                assert!(r2.is_valid(i));
                let got = r2.value(i);
                assert!(
                    (got - want).abs() <= 1e-5 + 1e-4 * want,
                    "{key:?}: vcfq r² {got}, bcftools {want}"
                );
                compared += 1;
            }
        }
    }
    assert!(compared >= 100, "only {compared} pairs compared");
    eprintln!("vectors: {compared} pairs' r² equal to bcftools'");
}

/// Texts of all kinds: short, genomic, non-ASCII, empty, and one past 256 tokens (cut).
fn texts() -> Vec<String> {
    let mut texts: Vec<String> = [
        "a test",
        "BRCA1 loss-of-function variant associated with hereditary breast cancer",
        "missense variant in the kinase domain of EGFR",
        "synonymous SNV, benign",
        "Ünïcödé text: Genom, 遺伝子, ✓",
        "",
    ]
    .map(str::to_string)
    .to_vec();
    texts.push("a long annotation that goes on ".repeat(60));
    texts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embed_text_matches_a_numpy_forward_pass_of_the_same_model() {
    let dir = vcfq_udfs::text::model_dir();
    let python = std::env::var("VCFQ_PYTHON").ok();
    let (true, Some(python)) = (dir.join("model.safetensors").is_file(), python) else {
        eprintln!(
            "vectors: no model in {} or no $VCFQ_PYTHON (scripts/test.sh sets up both): test skipped",
            dir.display()
        );
        return;
    };
    let texts = texts();
    let reference =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/embeddings/reference.py");
    let mut child = Command::new(python)
        .arg(reference)
        .arg(&dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let input = serde_json::to_vec(&texts).unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), &input).unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want: Vec<Vec<f64>> = serde_json::from_slice(&out.stdout).unwrap();

    let ctx = vcfq::SessionBuilder::new().build().unwrap();
    let values = texts
        .iter()
        .enumerate()
        .map(|(i, t)| format!("({i}, '{}')", t.replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT i, embed_text(t) FROM (VALUES {values}, ({}, NULL)) AS v(i, t) ORDER BY i",
        texts.len()
    );
    let batches = collect(&ctx, &sql).await;
    let (mut rows, mut lowest) = (0, f64::MAX);
    for batch in &batches {
        let vectors = batch.column(1).as_fixed_size_list();
        assert_eq!(vectors.value_length(), 384);
        for r in 0..batch.num_rows() {
            let i = batch.column(0).as_primitive::<Int64Type>().value(r) as usize;
            if i == texts.len() {
                assert!(vectors.is_null(r), "a NULL text gives a NULL vector");
                continue;
            }
            let got = vectors.value(r);
            let got = got.as_primitive::<datafusion::arrow::datatypes::Float32Type>();
            let dot: f64 = got
                .values()
                .iter()
                .zip(&want[i])
                .map(|(a, b)| *a as f64 * b)
                .sum();
            let norm: f64 = got
                .values()
                .iter()
                .map(|a| (*a as f64).powi(2))
                .sum::<f64>()
                .sqrt();
            let cosine = dot / norm;
            assert!(
                cosine >= 0.9999,
                "text {i} ({:?}…): cosine {cosine}",
                &texts[i][..texts[i].len().min(30)]
            );
            assert!((norm - 1.0).abs() < 1e-4, "text {i}: length {norm}");
            lowest = lowest.min(cosine);
            rows += 1;
        }
    }
    assert_eq!(rows, texts.len());
    eprintln!("vectors: {rows} texts, lowest cosine to the NumPy reference {lowest:.7}");

    // and the vectors mean something: a paraphrase is nearer than an unrelated sentence
    let sql = "SELECT 1 - cosine_distance(embed_text('BRCA1 pathogenic variant'), embed_text('a harmful mutation in BRCA1')),
                      1 - cosine_distance(embed_text('BRCA1 pathogenic variant'), embed_text('the weather is nice today'))";
    let batches = collect(&ctx, sql).await;
    let similar = batches[0]
        .column(0)
        .as_primitive::<datafusion::arrow::datatypes::Float32Type>()
        .value(0);
    let unrelated = batches[0]
        .column(1)
        .as_primitive::<datafusion::arrow::datatypes::Float32Type>()
        .value(0);
    assert!(
        similar > unrelated + 0.3,
        "paraphrase {similar}, unrelated {unrelated}"
    );
}

#[test]
fn embed_text_without_the_model_is_a_one_line_error_naming_the_install_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vcfq"))
        .env("VCFQ_MODELS", dir.path())
        .args(["-q", "-c", "SELECT embed_text('BRCA1')"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("all-MiniLM-L6-v2 is not installed") && err.contains("run scripts/models"),
        "{err}"
    );
}
