//! Every saved script of `queries/` runs through the binary over the generated example file,
//! and its output is checked against the same facts computed directly from the VCF text.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use vcfq::generator::{GenOptions, generate, generate_file};

/// The example data of the README: `vcfq gen data/example.vcf.gz --records 20000 --samples 8`.
fn example() -> GenOptions {
    GenOptions {
        records: 20_000,
        samples: 8,
        seed: 42,
    }
}

struct Example {
    dir: tempfile::TempDir,
    records: Vec<Vec<String>>,
}

fn example_data() -> &'static Example {
    static DATA: OnceLock<Example> = OnceLock::new();
    DATA.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        generate_file(&dir.path().join("data/example.vcf.gz"), &example()).unwrap();
        let mut text = Vec::new();
        generate(&mut text, &example()).unwrap();
        let records = String::from_utf8(text)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect();
        Example { dir, records }
    })
}

/// Runs a saved script; returns its result blocks (rows after each header), split at the
/// expected header lines.
fn run_query(name: &str, headers: &[&str]) -> Vec<Vec<Vec<String>>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("queries")
        .join(name);
    let o = Command::new(env!("CARGO_BIN_EXE_vcfq"))
        .current_dir(example_data().dir.path())
        .args(["--format", "tsv", "-f", script.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8(o.stdout).unwrap();
    let mut blocks: Vec<Vec<Vec<String>>> = Vec::new();
    for line in text.lines() {
        if blocks.len() < headers.len() && line == headers[blocks.len()] {
            blocks.push(Vec::new());
        } else if let Some(b) = blocks.last_mut() {
            b.push(line.split('\t').map(str::to_string).collect());
        } else {
            panic!(
                "{name}: output does not start with the header {:?}: {text}",
                headers[0]
            );
        }
    }
    assert_eq!(blocks.len(), headers.len(), "{name}: {text}");
    blocks
}

fn info<'a>(rec: &'a [String], key: &str) -> Option<&'a str> {
    rec[7]
        .split(';')
        .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
}

fn first_af(rec: &[String]) -> f64 {
    info(rec, "AF")
        .and_then(|v| v.split(',').next())
        .map(|v| v.parse::<f64>().unwrap())
        .unwrap_or(0.0)
}

#[test]
fn quickstart() {
    let blocks = run_query(
        "quickstart.sql",
        &[
            "records\tchromosomes",
            "chrom\tpos\tid\tref\talt\tqual\tfilter\tdp\taf",
            "section\tid\tnumber\ttype\tdescription",
        ],
    );
    assert_eq!(blocks[0], vec![vec!["20000", "23"]]);
    let recs = &example_data().records;
    assert_eq!(blocks[1].len(), 5);
    for (row, rec) in blocks[1].iter().zip(recs) {
        assert_eq!(row[0..2], rec[0..2], "chrom/pos");
        assert_eq!(row[2], if rec[2] == "." { "" } else { &rec[2] });
        assert_eq!(row[3], rec[3]);
        assert_eq!(row[4], format!("[{}]", rec[4].replace(',', ", ")));
        assert_eq!(row[6], format!("[{}]", rec[6]));
        assert_eq!(row[7], info(rec, "DP").unwrap());
    }
    assert_eq!(blocks[2].len(), 7 + 4, "7 INFO and 4 FORMAT definitions");
    assert_eq!(blocks[2][0][..4], ["INFO", "DP", "1", "Integer"]);
}

#[test]
fn per_chromosome_counts() {
    let blocks = run_query(
        "per_chromosome_counts.sql",
        &["chrom\trecords\tpassing\tsnps"],
    );
    let mut want: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    for r in &example_data().records {
        let e = want.entry(r[0].clone()).or_default();
        e.0 += 1;
        e.1 += u64::from(r[6] == "PASS");
        e.2 += u64::from(r[3].len() == 1 && r[4].split(',').next().unwrap().len() == 1);
    }
    let got: Vec<Vec<String>> = blocks[0].clone();
    let want: Vec<Vec<String>> = want
        .into_iter()
        .map(|(c, (n, p, s))| vec![c, n.to_string(), p.to_string(), s.to_string()])
        .collect();
    assert_eq!(got, want);
}

#[test]
fn allele_frequency_filter() {
    let blocks = run_query(
        "allele_frequency_filter.sql",
        &["chrom\tcommon_variants", "chrom\tpos\tref\talt\taf\tac\tan"],
    );
    let common: Vec<&Vec<String>> = example_data()
        .records
        .iter()
        .filter(|r| first_af(r) > 0.1 && r[6] == "PASS")
        .collect();
    let mut per_chrom: BTreeMap<&str, u64> = BTreeMap::new();
    for r in &common {
        *per_chrom.entry(&r[0]).or_default() += 1;
    }
    let mut top: Vec<(&str, u64)> = per_chrom.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let want: Vec<Vec<String>> = top
        .iter()
        .take(5)
        .map(|(c, n)| vec![c.to_string(), n.to_string()])
        .collect();
    assert_eq!(blocks[0], want);
    assert_eq!(blocks[1].len(), 10);
    for row in &blocks[1] {
        let rec = common
            .iter()
            .find(|r| r[0] == row[0] && r[1] == row[1])
            .expect("listed row is a common variant");
        assert_eq!(row[2], rec[3]);
        assert_eq!(row[6], info(rec, "AN").unwrap());
    }
}

#[test]
fn genotype_summary() {
    let blocks = run_query(
        "genotype_summary.sql",
        &[
            "sample\tsites\tmissing\thet\thom_alt\tmean_depth",
            "sample\tnon_ref",
        ],
    );
    let recs = &example_data().records;
    assert_eq!(blocks[0].len(), 8);
    for (s, row) in blocks[0].iter().enumerate() {
        assert_eq!(row[0], format!("S{:05}", s + 1));
        let (mut missing, mut het, mut hom, mut dp_sum, mut dp_n) = (0, 0, 0, 0u64, 0u64);
        for r in recs {
            let cell = &r[9 + s];
            let mut parts = cell.split(':');
            let gt = parts.next().unwrap();
            let alleles: Vec<&str> = gt.split(['/', '|']).collect();
            if alleles.iter().all(|a| *a == ".") {
                missing += 1;
            } else if alleles[0] != alleles[1] {
                het += 1;
            } else if alleles[0] != "0" {
                hom += 1;
            }
            if let Some(dp) = parts.nth(1).and_then(|d| d.parse::<u64>().ok()) {
                dp_sum += dp;
                dp_n += 1;
            }
        }
        assert_eq!(row[1], recs.len().to_string());
        assert_eq!(
            row[2..5],
            [missing.to_string(), het.to_string(), hom.to_string()]
        );
        let mean: f64 = row[5].parse().unwrap();
        assert!(
            (mean - dp_sum as f64 / dp_n as f64).abs() < 0.006,
            "mean depth {mean}"
        );
    }
    assert_eq!(blocks[1].len(), 2);
    for (i, row) in blocks[1].iter().enumerate() {
        let n = recs
            .iter()
            .filter(|r| r[0] == "chr22")
            .filter(|r| {
                let gt = r[9 + i].split(':').next().unwrap();
                gt.split(['/', '|']).any(|a| a != "0" && a != ".")
            })
            .count();
        assert_eq!(row, &vec![format!("S{:05}", i + 1), n.to_string()]);
    }
}

/// ALT dosages of a record's samples (`None`: not called).
fn dosages(rec: &[String]) -> Vec<Option<f64>> {
    rec[9..]
        .iter()
        .map(|cell| {
            let gt = cell.split(':').next().unwrap();
            let alleles: Vec<&str> = gt.split(['/', '|']).collect();
            if alleles.contains(&".") {
                None
            } else {
                Some(alleles.iter().filter(|a| **a != "0").count() as f64)
            }
        })
        .collect()
}

/// r² of two sites' dosages, an uncalled genotype counting as its site's mean.
fn r2(a: &[Option<f64>], b: &[Option<f64>]) -> f64 {
    let centred = |d: &[Option<f64>]| {
        let called: Vec<f64> = d.iter().flatten().copied().collect();
        let mean = called.iter().sum::<f64>() / called.len() as f64;
        d.iter()
            .map(|x| x.map_or(0.0, |x| x - mean))
            .collect::<Vec<f64>>()
    };
    let (a, b) = (centred(a), centred(b));
    let dot: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>();
    dot * dot / (norm(&a) * norm(&b))
}

/// bcftools' LD r² of the sites `chrom:a` and `chrom:b` of the example file (`+prune` of a
/// window of one site over just those two), or `None` without bcftools.
fn bcftools_r2(chrom: &str, a: &str, b: &str) -> Option<f64> {
    let dir = example_data().dir.path();
    let pair = dir.join(format!("pair-{a}-{b}.bcf"));
    let view = Command::new("bcftools")
        .args([
            "view",
            "-t",
            &format!("{chrom}:{a},{chrom}:{b}"),
            "-Ob",
            "-o",
        ])
        .arg(&pair)
        .arg(dir.join("data/example.vcf.gz"))
        .status()
        .ok()?;
    assert!(view.success(), "bcftools view");
    let pruned = Command::new("bcftools")
        .args(["+prune", "-w", "1", "-a", "r2", "-f", ".", "-Ov"])
        .arg(&pair)
        .output()
        .unwrap();
    assert!(
        pruned.status.success(),
        "{}",
        String::from_utf8_lossy(&pruned.stderr)
    );
    let text = String::from_utf8(pruned.stdout).unwrap();
    let r2 = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            l.split('\t')
                .nth(7)?
                .split(';')
                .find_map(|kv| kv.strip_prefix("R2="))
        })
        .unwrap_or_else(|| panic!("no R2 from bcftools +prune:\n{text}"));
    Some(r2.parse().unwrap())
}

#[test]
fn ld_proxies() {
    let blocks = run_query("ld_proxies.sql", &["chrom\tpos\tref\talt\tr2"]);
    let recs = &example_data().records;
    let target = recs
        .iter()
        .find(|r| r[0] == "chr1" && r[1] == "2187447")
        .expect("the target site");
    let (lo, hi) = (2_187_447 - 500_000, 2_187_447 + 500_000);
    // every varying site of the window but the target, as the query should find them
    let mut want: Vec<(f64, i64, &Vec<String>)> = recs
        .iter()
        .filter(|r| r[0] == "chr1" && r[1] != "2187447")
        .filter(|r| (lo..=hi).contains(&r[1].parse::<i64>().unwrap()))
        .filter(|r| {
            let d: Vec<f64> = dosages(r).into_iter().flatten().collect();
            d.iter().any(|x| *x != d[0])
        })
        .map(|r| (r2(&dosages(target), &dosages(r)), r[1].parse().unwrap(), r))
        .collect();
    want.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let got = &blocks[0];
    assert!(!got.is_empty());
    assert_eq!(got.len(), want.len().min(10));
    let mut checked_by_bcftools = 0;
    for (row, (r2, pos, rec)) in got.iter().zip(&want) {
        assert_eq!(
            row[..4],
            [rec[0].as_str(), &pos.to_string(), &rec[3], &rec[4]]
        );
        let value: f64 = row[4].parse().unwrap();
        assert!((value - r2).abs() <= 5e-5, "{row:?}: r² {r2}");
        let all_called = dosages(target)
            .iter()
            .chain(&dosages(rec))
            .all(Option::is_some);
        if all_called && let Some(theirs) = bcftools_r2("chr1", "2187447", &row[1]) {
            assert!(
                (value - theirs).abs() <= 5e-5 + 1e-4 * theirs,
                "{row:?}: bcftools {theirs}"
            );
            checked_by_bcftools += 1;
        }
    }
    if Command::new("bcftools").arg("--version").output().is_ok() {
        assert!(
            checked_by_bcftools > 0,
            "no fully called proxy to compare with bcftools"
        );
    }
}

#[test]
fn similar_variants() {
    let blocks = run_query("similar_variants.sql", &["chrom\tpos\tref\talt\tdistance"]);
    let rows = &blocks[0];
    assert_eq!(rows.len(), 10);
    // insertions (the query's class) come first, the nearest on the query's contig
    for row in rows {
        assert!(
            row[3].len() > row[2].len() && row[3].starts_with(&row[2]),
            "{row:?}"
        );
    }
    assert_eq!(rows[0][0], "chr1");
    let distances: Vec<f64> = rows.iter().map(|r| r[4].parse().unwrap()).collect();
    assert!(distances.windows(2).all(|w| w[0] <= w[1]), "{distances:?}");
}

#[test]
fn annotation_search() {
    let blocks = run_query(
        "annotation_search.sql",
        &["section\tid\tdescription\tdistance"],
    );
    let rows = &blocks[0];
    assert_eq!(rows.len(), 4);
    // the two depth fields answer a question about read coverage, nearest first
    assert_eq!(
        rows[..2].iter().map(|r| r[1].as_str()).collect::<Vec<_>>(),
        ["DP", "DP"]
    );
    let distances: Vec<f64> = rows.iter().map(|r| r[3].parse().unwrap()).collect();
    assert!(distances.windows(2).all(|w| w[0] <= w[1]), "{distances:?}");
    assert!(distances[1] < distances[2], "{distances:?}");
}
