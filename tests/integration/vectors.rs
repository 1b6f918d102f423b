//! `dosage_vector` against bcftools: the square of two vectors' cosine similarity is the LD r²
//! that `bcftools +prune -a r2` computes, for pairs of sites where every sample is called and
//! both sites vary (bcftools leaves out, per pair, samples missing at either site, which a
//! vector of one site cannot know; and gives monomorphic sites a noise-made r², where the
//! vector is NULL).

use std::collections::HashMap;
use std::process::Command;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use vcfq::generator::{GenOptions, generate_file};

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
    let pruned = Command::new("bcftools")
        .args(["+prune", "-w", "1", "-a", "r2", "-f", ".", "-Ou"])
        .arg(&vcf)
        .output()
        .unwrap();
    assert!(
        pruned.status.success(),
        "{}",
        String::from_utf8_lossy(&pruned.stderr)
    );
    let pruned_path = dir.path().join("pruned.bcf");
    std::fs::write(&pruned_path, &pruned.stdout).unwrap();
    let query = Command::new("bcftools")
        .args(["query", "-f", "%CHROM\t%POS\t%INFO/POS_R2\t%INFO/R2\n"])
        .arg(&pruned_path)
        .output()
        .unwrap();
    assert!(
        query.status.success(),
        "{}",
        String::from_utf8_lossy(&query.stderr)
    );
    let theirs: HashMap<(String, i64, i64), f64> = String::from_utf8(query.stdout)
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
    let batches = vcfq::session::sql(&ctx, &sql)
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
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
