//! The interactive shell, driven through a pseudo-terminal as a user would type.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rexpect::reader::Options;
use rexpect::session::{PtySession, spawn_with_options};

use crate::fixtures::data_dir;

/// Starts the shell with its own home (history, rc file) in `home`.
fn shell(home: &Path) -> PtySession {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vcfq"));
    cmd.env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("TERM", "xterm")
        .env("COLUMNS", "200");
    let options = Options::new()
        .timeout_ms(Some(30_000))
        .strip_ansi_escape_codes(true);
    let mut p = spawn_with_options(cmd, options).expect("starting the shell");
    p.exp_string("vcfq> ").expect("a prompt");
    p
}

/// Waits for the end of a statement: its timing line, then the fresh prompt.
fn done(p: &mut PtySession) {
    p.exp_regex(r"\(\d+\.\d+ s\)").unwrap();
    p.exp_string("vcfq> ").unwrap();
}

fn sample() -> String {
    data_dir().join("sample.vcf").display().to_string()
}

#[test]
fn multi_line_statements_and_errors_that_keep_the_shell() {
    let home = tempfile::tempdir().unwrap();
    let mut p = shell(home.path());
    p.send_line("SELECT 40 +").unwrap();
    p.exp_string("   -> ").unwrap();
    p.send_line("2 AS answer;").unwrap();
    p.exp_string("answer").unwrap();
    p.exp_string("42").unwrap();
    done(&mut p);
    // a syntax error is reported with its position, and the shell goes on
    p.send_line("SELEC 1;").unwrap();
    p.exp_regex("error: syntax: .*Line: 1, Column: 1").unwrap();
    p.send_line("SELECT count(*) AS n FROM 'no/such.vcf';")
        .unwrap();
    p.exp_string("no/such.vcf: no such file").unwrap();
    p.send_line("SELECT 7 AS seven;").unwrap();
    p.exp_string("seven").unwrap();
    done(&mut p);
    // a meta-command on a continuation line runs at once and leaves the statement open
    p.send_line("SELECT 1 +").unwrap();
    p.exp_string("   -> ").unwrap();
    p.send_line("\\timing off").unwrap();
    p.exp_string("timing is off").unwrap();
    p.send_line("1 AS two;").unwrap();
    p.exp_string("two").unwrap();
    p.exp_string("2").unwrap();
    p.send_line("\\q").unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn completes_tables_and_info_fields_and_describes_them() {
    let home = tempfile::tempdir().unwrap();
    let mut p = shell(home.path());
    p.send_line(&format!(
        "CREATE EXTERNAL TABLE calls STORED AS VCF LOCATION '{}';",
        sample()
    ))
    .unwrap();
    done(&mut p);
    // table name: "cal<TAB>" becomes "calls"
    p.send("SELECT count(*) AS records FROM cal\t").unwrap();
    p.flush().unwrap();
    p.exp_string("FROM calls").unwrap();
    p.send_line(";").unwrap();
    p.exp_string("records").unwrap();
    p.exp_string("6").unwrap();
    done(&mut p);
    // INFO field from the header: "info.SVT<TAB>" becomes "info.SVTYPE"
    p.send("SELECT info.SVT\t").unwrap();
    p.flush().unwrap();
    p.exp_string("info.SVTYPE").unwrap();
    p.send_line(" AS kind FROM calls WHERE pos = 400;").unwrap();
    p.exp_string("kind").unwrap();
    p.exp_string("DEL").unwrap();
    done(&mut p);
    // \d NAME: columns, types and the header's descriptions
    p.send_line("\\d calls").unwrap();
    p.exp_string("info.AF").unwrap();
    p.exp_string("Allele frequency").unwrap();
    p.exp_string("genotypes[].GT").unwrap();
    p.send_line("\\q").unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn describes_a_lance_table_with_its_vector_indexes() {
    let home = tempfile::tempdir().unwrap();
    let dataset = home.path().join("pts.lance");
    let mut p = shell(home.path());
    p.send_line(&format!(
        "COPY (SELECT value AS id, arrow_cast(make_array(value, 1.0), 'FixedSizeList(2, Float32)') AS v FROM generate_series(1, 300)) TO '{}' STORED AS LANCE;",
        dataset.display()
    ))
    .unwrap();
    done(&mut p);
    p.send_line(&format!(
        "CREATE EXTERNAL TABLE pts STORED AS LANCE LOCATION '{}';",
        dataset.display()
    ))
    .unwrap();
    done(&mut p);
    p.send_line("\\d pts").unwrap();
    p.exp_string("float[2]").unwrap();
    p.exp_string("vector indexes: none").unwrap();
    p.send_line(
        "CREATE INDEX v_idx ON pts USING IVF_FLAT (v) WITH (num_partitions = 2, metric = 'l2');",
    )
    .unwrap();
    done(&mut p);
    p.send_line("\\d pts").unwrap();
    p.exp_string("vector indexes:").unwrap();
    p.exp_string("v_idx IVF_FLAT (v) l2, 300 of 300 rows indexed")
        .unwrap();
    p.send_line("\\q").unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn history_survives_a_restart_and_rc_file_runs() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join(".vcfqrc"),
        "CREATE VIEW rc_view AS SELECT 99 AS from_rc;\n",
    )
    .unwrap();
    let mut p = shell(home.path());
    p.send_line("SELECT 12345 AS marker FROM rc_view;").unwrap();
    p.exp_string("12345").unwrap();
    done(&mut p);
    p.send_line("\\q").unwrap();
    p.exp_eof().unwrap();
    let history = std::fs::read_to_string(home.path().join("data/vcfq/history")).unwrap();
    assert!(
        history.contains("SELECT 12345 AS marker FROM rc_view;"),
        "{history}"
    );

    let mut p = shell(home.path());
    // Up arrow brings the statement back (\q was the last entry)
    p.send("\x1b[A\x1b[A").unwrap();
    p.flush().unwrap();
    p.exp_string("SELECT 12345 AS marker FROM rc_view;")
        .unwrap();
    p.send_line("").unwrap();
    p.exp_string("marker").unwrap();
    p.exp_string("12345").unwrap();
    p.send_line("\\q").unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn ctrl_c_cancels_a_long_scan_and_keeps_the_shell() {
    let home = tempfile::tempdir().unwrap();
    let big = home.path().join("big.vcf.gz");
    let options = vcfq::generator::GenOptions {
        records: 2_000_000,
        samples: 0,
        seed: 1,
    };
    vcfq::generator::generate_file(&big, &options).unwrap();
    let mut p = shell(home.path());
    // three full decodes of a 2,000,000-record file: many seconds in a debug build
    let scan = format!("SELECT id, alt, info FROM '{}'", big.display());
    p.send_line(&format!(
        "SELECT count(DISTINCT id), max(alt[1]), sum(info.DP) FROM ({scan} UNION ALL {scan} UNION ALL {scan});"
    ))
    .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let sent = Instant::now();
    p.send_control('c').unwrap();
    p.exp_string("cancelled").unwrap();
    p.exp_string("vcfq> ").unwrap();
    let took = sent.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "back at the prompt after {took:?}"
    );
    p.send_line("SELECT 5 AS five;").unwrap();
    p.exp_string("five").unwrap();
    p.send_line("\\q").unwrap();
    p.exp_eof().unwrap();
}
