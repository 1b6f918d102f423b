//! VCF → Parquet: genotype rows are written in row groups sized by samples, so memory stays
//! bounded for large cohorts; sites-only rows keep DataFusion's default row groups.

use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
use vcfq::generator::{GenOptions, generate_file};
use vcfq::vcf::parquet::CELLS_PER_ROW_GROUP;

fn row_groups(path: &std::path::Path) -> Vec<i64> {
    let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    reader
        .metadata()
        .row_groups()
        .iter()
        .map(|g| g.num_rows())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn genotype_rows_get_row_groups_sized_by_samples() {
    let dir = tempfile::tempdir().unwrap();
    let vcf = dir.path().join("cohort.vcf.gz");
    generate_file(
        &vcf,
        &GenOptions {
            records: 3000,
            samples: 200,
            seed: 9,
        },
    )
    .unwrap();
    let ctx = vcfq::SessionBuilder::new().build().unwrap();
    let out = dir.path().join("cohort.parquet");
    let sql = format!(
        "COPY (SELECT * FROM '{}') TO '{}' STORED AS PARQUET",
        vcf.display(),
        out.display()
    );
    ctx.sql(&sql).await.unwrap().collect().await.unwrap();
    let groups = row_groups(&out);
    let cap = (CELLS_PER_ROW_GROUP / 200) as i64;
    assert_eq!(groups.iter().sum::<i64>(), 3000);
    assert!(
        groups.len() > 1 && groups.iter().all(|&n| n <= cap),
        "{groups:?}"
    );

    // the genotypes come back as written
    let check = format!(
        "SELECT count(*) FROM (SELECT chrom, pos, genotypes FROM '{}' EXCEPT ALL SELECT chrom, pos, genotypes FROM '{}')",
        vcf.display(),
        out.display()
    );
    let batches = ctx.sql(&check).await.unwrap().collect().await.unwrap();
    let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string();
    assert!(text.contains("| 0 "), "{text}");

    let sites = dir.path().join("sites.parquet");
    let sql = format!(
        "COPY (SELECT chrom, pos, info FROM '{}') TO '{}' STORED AS PARQUET",
        vcf.display(),
        sites.display()
    );
    ctx.sql(&sql).await.unwrap().collect().await.unwrap();
    assert_eq!(row_groups(&sites), vec![3000]);
}
