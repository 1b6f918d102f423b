//! The real-world corpus beside the clone (`../shared/data/vcf-corpus`): every BCF file that
//! has a VCF twin reads as exactly the same rows, every column, wide and long. Skipped, with a
//! line saying so, when the corpus is not there.

use std::path::{Path, PathBuf};

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::Int64Type;

fn corpus() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/vcf-corpus");
    dir.is_dir().then_some(dir)
}

/// BCF files of the corpus with a VCF of the same name beside them.
fn twins(dir: &Path) -> Vec<(PathBuf, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let name = p.to_string_lossy().into_owned();
            let Some(stem) = name
                .strip_suffix(".bcf")
                .or_else(|| name.strip_suffix(".bcf.gz"))
            else {
                continue;
            };
            for ext in [".vcf", ".vcf.gz"] {
                let twin = PathBuf::from(format!("{stem}{ext}"));
                if twin.is_file() {
                    out.push((p.clone(), twin));
                    break;
                }
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bcf_files_read_as_their_vcf_twins() {
    let Some(dir) = corpus() else {
        eprintln!(
            "corpus: ../shared/data/vcf-corpus not found; BCF/VCF twin comparison skipped \
             (put the shared corpus beside the clone to run it)"
        );
        return;
    };
    let pairs = twins(&dir);
    assert!(
        !pairs.is_empty(),
        "no BCF file with a VCF twin in {}",
        dir.display()
    );
    let ctx = vcfq::SessionBuilder::new().build().expect("session");
    for (bcf, vcf) in &pairs {
        let (b, v) = (bcf.display(), vcf.display());
        for (from_b, from_v) in [
            (format!("'{b}'"), format!("'{v}'")),
            (
                format!("vcf_genotypes('{b}')"),
                format!("vcf_genotypes('{v}')"),
            ),
        ] {
            for (x, y) in [(&from_b, &from_v), (&from_v, &from_b)] {
                let sql = format!(
                    "SELECT count(*) FROM (SELECT * FROM {x} EXCEPT ALL SELECT * FROM {y})"
                );
                let batches = async { vcfq::session::sql(&ctx, &sql).await?.collect().await }
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
                let n = batches[0].column(0).as_primitive::<Int64Type>().value(0);
                assert_eq!(n, 0, "{sql}: {n} rows differ");
            }
        }
    }
    eprintln!("corpus: {} BCF files read as their VCF twins", pairs.len());
}
