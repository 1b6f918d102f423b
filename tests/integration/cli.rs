//! The `vcfq` binary as a user runs it: output formats, scripts, stdin, exit codes and errors.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::fixtures::data_dir;

fn vcfq(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vcfq"))
        .args(args)
        .output()
        .expect("running vcfq")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn path(name: &str) -> String {
    data_dir().join(name).display().to_string()
}

#[test]
fn tsv_prints_a_header_then_rows() {
    let sql = format!(
        "SELECT chrom, pos, ref, coalesce(array_to_string(alt, ','), '.') AS alt, qual FROM '{}' WHERE chrom = 'chr1' AND pos < 300",
        path("sample.vcf")
    );
    let o = vcfq(&["--format", "tsv", "-c", &sql]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "chrom\tpos\tref\talt\tqual\nchr1\t100\tA\tG\t29.5\nchr1\t200\tG\tA,T\t3.0\n"
    );
}

#[test]
fn csv_json_and_ndjson() {
    let sql = format!(
        "SELECT pos, id FROM '{}' WHERE chrom = 'chr2' ORDER BY pos",
        path("sample.vcf")
    );
    let csv = vcfq(&["--format", "csv", "-c", &sql]);
    assert_eq!(stdout(&csv), "pos,id\n50,bnd1\n60,\n");
    let nd = vcfq(&["--format", "ndjson", "-c", &sql]);
    assert_eq!(stdout(&nd), "{\"pos\":50,\"id\":\"bnd1\"}\n{\"pos\":60}\n");
    let json = vcfq(&["--format", "json", "-c", &sql]);
    assert_eq!(
        stdout(&json),
        "[{\"pos\":50,\"id\":\"bnd1\"},{\"pos\":60}]\n"
    );
    let table = vcfq(&["-c", &sql]);
    assert!(
        stdout(&table).contains("│ 50     │ bnd1 │"),
        "{}",
        stdout(&table)
    );
    assert!(stdout(&table).contains("│ bigint │ text │"));
}

#[test]
fn script_runs_in_order_and_stops_at_the_first_error_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("script.sql");
    let text = format!(
        "-- a comment\nCREATE EXTERNAL TABLE calls STORED AS VCF LOCATION '{}';\nSELECT count(*) AS n FROM calls;\n\nSELECT no_such_column\n  FROM calls;\nSELECT 'never printed';\n",
        path("sample.vcf")
    );
    std::fs::write(&script, text).unwrap();
    let o = vcfq(&["--format", "tsv", "-f", script.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "n\n6\n");
    let err = stderr(&o);
    assert!(err.contains("script.sql:5:"), "{err}");
    assert!(err.contains("no_such_column"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(!err.contains("never printed"));
}

#[test]
fn sql_from_stdin() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vcfq"))
        .args(["--format", "csv"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let sql = format!(
        "SELECT count(*) AS n FROM '{}';\nSELECT 1 + 1 AS two;",
        path("sample.vcf")
    );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(sql.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "n\n6\ntwo\n2\n");
}

#[test]
fn errors_name_the_file_and_line_and_never_panic() {
    let cases = [
        (path("malformed.vcf"), vec!["malformed.vcf:5:", "POS 'ten'"]),
        (path("empty.vcf"), vec!["empty.vcf", "empty file"]),
        (
            path("no_chrom_line.vcf"),
            vec!["no_chrom_line.vcf", "#CHROM"],
        ),
        (path("missing.vcf"), vec!["missing.vcf", "no such file"]),
    ];
    for (file, needles) in cases {
        let o = vcfq(&["-c", &format!("SELECT * FROM '{file}'")]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{file}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        for n in needles {
            assert!(err.contains(n), "{file}: expected '{n}' in: {err}");
        }
    }
}

#[test]
fn bad_sql_is_a_one_line_error() {
    let o = vcfq(&["-c", "SELEC 1"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn skip_mode_counts_and_reports_bad_lines() {
    let sql = format!(
        "SET vcf.on_error = 'skip'; SELECT pos FROM '{}'",
        path("malformed.vcf")
    );
    let o = vcfq(&["--format", "tsv", "-c", &sql]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "pos\n10\n30\n");
    let err = stderr(&o);
    assert!(
        err.contains("skipped 1 unreadable line(s)") && err.contains("line 5"),
        "{err}"
    );
}

#[test]
fn gen_writes_a_readable_bgzf_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("g.vcf.gz");
    let o = vcfq(&[
        "gen",
        out.to_str().unwrap(),
        "--records",
        "1234",
        "--samples",
        "3",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let sql = format!(
        "SELECT count(*) AS n, count(DISTINCT chrom) AS c FROM '{}'",
        out.display()
    );
    let o = vcfq(&["--format", "tsv", "-c", &sql]);
    assert_eq!(stdout(&o), "n\tc\n1234\t23\n", "{}", stderr(&o));
}
