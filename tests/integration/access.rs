//! `vcfq serve` with file roots, roles and an audit trail, used by real clients (arrow-flight's
//! Rust client, the Python ADBC driver): paths outside the roots refused whatever their
//! spelling (`..`, links, globs), grants hiding tables and narrowing rows and columns through
//! joins, views and prepared statements, and a hash-chained trail that `vcfq audit verify`
//! checks.

use std::path::{Path, PathBuf};
use std::process::Command;

use arrow_flight::sql::CommandGetTables;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use futures::TryStreamExt;
use tonic::Code;

use crate::fixtures::data_dir;
use crate::flight::{
    PASSWORD, Server, assert_code, client, client_script, error_of, python, query, rows,
    single_i64, strings,
};

/// The directories of one server: a read root with a public and a private part and a link out
/// of it, a write root, and a directory outside both.
struct Layout {
    root: PathBuf,
    out: PathBuf,
    outside: PathBuf,
    audit: PathBuf,
}

fn layout(dir: &Path) -> Layout {
    let root = dir.join("root");
    let out = dir.join("out");
    let outside = dir.join("outside");
    for d in [
        root.join("public"),
        root.join("private"),
        out.clone(),
        outside.clone(),
    ] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    let sample = data_dir().join("sample.vcf");
    std::fs::copy(&sample, root.join("public/s.vcf")).expect("copy");
    std::fs::copy(&sample, root.join("private/p.vcf")).expect("copy");
    std::fs::copy(&sample, outside.join("secret.vcf")).expect("copy");
    std::os::unix::fs::symlink(&outside, root.join("link")).expect("symlink");
    Layout {
        root,
        out,
        outside,
        audit: dir.join("audit.jsonl"),
    }
}

/// A server whose config grants `analyst` (alice) a narrowed `cohort`, `admin` everything
/// within the roots, and `nobody` nothing.
fn start(dir: tempfile::TempDir) -> (Server, Layout) {
    let l = layout(dir.path());
    let hash = vcfq::flight::auth::hash_password(PASSWORD).expect("hash");
    let private = l.root.join("private/p.vcf");
    let config = format!(
        r#"addr = "127.0.0.1:0"

[[users]]
name = "alice"
password_hash = "{hash}"
roles = ["analyst"]

[[users]]
name = "admin"
password_hash = "{hash}"
roles = ["admin"]

[[users]]
name = "nobody"
password_hash = "{hash}"

[[tables]]
name = "cohort"
location = "{private}"

[[tables]]
name = "secret_calls"
location = "{private}"

[files]
read = ["root"]
write = ["out"]

[[roles]]
name = "analyst"
[[roles.grants]]
tables = ["cohort"]
privileges = ["select"]
columns = ["chrom", "pos", "id", "ref", "alt", "genotypes"]
masks = {{ id = "NULL" }}
row_filter = "chrom = 'chr1'"
[[roles.grants]]
tables = ["mine_*"]
privileges = ["create"]
[[roles.grants]]
locations = ["root/public"]
privileges = ["select", "create"]
[[roles.grants]]
locations = ["out"]
privileges = ["insert"]

[[roles]]
name = "admin"
admin = true
[[roles.grants]]
tables = ["*"]
privileges = ["select", "insert", "create"]
[[roles.grants]]
locations = ["root", "out"]
privileges = ["select", "insert", "create"]

[audit]
path = "audit.jsonl"
"#,
        private = private.display(),
    );
    std::fs::write(dir.path().join("server.toml"), config).expect("config");
    (Server::start_with(dir), l)
}

async fn as_user(
    addr: &str,
    user: &str,
) -> arrow_flight::sql::client::FlightSqlServiceClient<tonic::transport::Channel> {
    let mut c = client(addr).await;
    c.handshake(user, PASSWORD).await.expect("handshake");
    c
}

async fn count(
    c: &mut arrow_flight::sql::client::FlightSqlServiceClient<tonic::transport::Channel>,
    sql: &str,
) -> i64 {
    single_i64(&query(c, sql).await)
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roots_grants_and_the_audit_trail() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, l) = start(dir);
    let addr = server.addr.as_str();

    // --- file roots, as the administrator (who may read and write anywhere inside them)
    let mut admin = as_user(addr, "admin").await;
    assert_eq!(count(&mut admin, "SELECT count(*) FROM cohort").await, 6);
    assert_eq!(count(&mut admin, "SELECT count(id) FROM cohort").await, 3);
    let private = l.root.join("private/p.vcf");
    assert_eq!(
        count(
            &mut admin,
            &format!("SELECT count(*) FROM '{}'", p(&private))
        )
        .await,
        6
    );
    let secret = l.outside.join("secret.vcf");
    let missing = l.outside.join("missing.vcf");
    let escapes = [
        "/etc/passwd".to_string(),
        p(&secret),
        p(&missing),
        format!("{}/../outside/secret.vcf", p(&l.root)),
        format!("{}/link/secret.vcf", p(&l.root)),
        format!("{}/link/missing.vcf", p(&l.root)),
        format!("file://{}", p(&secret)),
    ];
    for path in &escapes {
        let e = error_of(&mut admin, &format!("SELECT * FROM '{path}'")).await;
        assert_code(
            &e,
            Code::PermissionDenied,
            &format!("select on path '{path}'"),
        );
        // the refusal is the same whether the file exists or not
        assert!(!e.contains("no such file"), "{e}");
    }
    // a glob inside the root that matches a file through the link
    let glob = format!("{}/*/secret.vcf", p(&l.root));
    let e = error_of(&mut admin, &format!("SELECT * FROM '{glob}'")).await;
    assert_code(&e, Code::PermissionDenied, "link/secret.vcf");
    for sql in [
        format!("SELECT * FROM read_vcf('{}')", p(&secret)),
        format!("SELECT * FROM vcf_genotypes('{}')", p(&secret)),
        format!("SELECT * FROM vcf_header('{}')", p(&missing)),
        format!(
            "CREATE EXTERNAL TABLE e STORED AS VCF LOCATION '{}'",
            p(&secret)
        ),
        format!(
            "CREATE EXTERNAL TABLE e2 STORED AS VCF LOCATION '{}' OPTIONS ('like' '{}')",
            p(&private),
            p(&secret)
        ),
    ] {
        let e = error_of(&mut admin, &sql).await;
        assert_code(&e, Code::PermissionDenied, "permission denied");
    }
    // writing: only under the write root
    let written = l.out.join("all.vcf");
    let n = admin
        .execute_update(
            format!("COPY (SELECT * FROM cohort) TO '{}'", p(&written)),
            None,
        )
        .await
        .expect("copy into the write root");
    assert_eq!(n, 6);
    for target in [
        l.root.join("public/x.vcf"),
        l.outside.join("x.csv"),
        l.out.join("../outside/y.csv"),
    ] {
        let e = error_of(
            &mut admin,
            &format!("COPY (SELECT 1 AS a) TO '{}'", p(&target)),
        )
        .await;
        assert_code(&e, Code::PermissionDenied, "insert on path");
    }
    assert!(!l.outside.join("x.csv").exists());
    // a stream location not in [streams]
    let e = error_of(
        &mut admin,
        "CREATE EXTERNAL TABLE k STORED AS KAFKA LOCATION '127.0.0.1:9/calls'",
    )
    .await;
    assert_code(
        &e,
        Code::PermissionDenied,
        "stream location '127.0.0.1:9/calls'",
    );

    // --- a narrowing grant: alice sees chr1 of `cohort`, without ids and INFO
    let mut alice = as_user(addr, "alice").await;
    assert_eq!(count(&mut alice, "SELECT count(*) FROM cohort").await, 4);
    assert_eq!(count(&mut alice, "SELECT count(id) FROM cohort").await, 0);
    // a filter on a masked column compares the mask, never the hidden value
    assert_eq!(
        count(&mut alice, "SELECT count(*) FROM cohort WHERE id = 'rs1'").await,
        0
    );
    let all = query(&mut alice, "SELECT * FROM cohort").await;
    let names: Vec<String> = all[0]
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, ["chrom", "pos", "id", "ref", "alt", "genotypes"]);
    assert_eq!(rows(&all), 4);
    let e = error_of(&mut alice, "SELECT info FROM cohort").await;
    assert_code(&e, Code::InvalidArgument, "info");
    // through a join, a subquery and a view of her own
    assert_eq!(
        count(
            &mut alice,
            "SELECT count(*) FROM cohort a JOIN cohort b ON a.chrom = b.chrom AND a.pos = b.pos"
        )
        .await,
        4
    );
    assert_eq!(
        count(
            &mut alice,
            "SELECT count(*) FROM (SELECT DISTINCT chrom FROM cohort) WHERE chrom <> 'chr1'"
        )
        .await,
        0
    );
    alice
        .execute_update(
            "CREATE VIEW mine_v AS SELECT * FROM cohort".to_string(),
            None,
        )
        .await
        .expect("a view of her own");
    assert_eq!(count(&mut alice, "SELECT count(*) FROM mine_v").await, 4);
    // a prepared statement with a parameter
    let mut prepared = alice
        .prepare(
            "SELECT count(*) FROM cohort WHERE chrom = ?".to_string(),
            None,
        )
        .await
        .expect("prepare");
    for (chrom, expected) in [("chr2", 0), ("chr1", 4)] {
        let param = RecordBatch::try_new(
            std::sync::Arc::new(Schema::new(vec![Field::new("$1", DataType::Utf8, false)])),
            vec![std::sync::Arc::new(
                datafusion::arrow::array::StringArray::from(vec![chrom]),
            )],
        )
        .expect("batch");
        prepared.set_parameters(param).expect("bind");
        let info = prepared.execute().await.expect("execute");
        let ticket = info.endpoint[0].ticket.clone().expect("ticket");
        let batches: Vec<RecordBatch> = alice
            .do_get(ticket)
            .await
            .expect("do_get")
            .try_collect()
            .await
            .expect("batches");
        assert_eq!(single_i64(&batches), expected, "chrom {chrom}");
    }
    // what she may not see: another table, the same file by path, a view over it
    let e = error_of(&mut alice, "SELECT * FROM secret_calls").await;
    assert_code(&e, Code::PermissionDenied, "select on table 'secret_calls'");
    let e = error_of(
        &mut alice,
        &format!("SELECT * FROM read_vcf('{}')", p(&private)),
    )
    .await;
    assert_code(&e, Code::PermissionDenied, "select on path");
    let e = error_of(
        &mut alice,
        "CREATE VIEW mine_w AS SELECT * FROM secret_calls",
    )
    .await;
    assert_code(&e, Code::PermissionDenied, "secret_calls");
    let e = error_of(&mut alice, "CREATE TABLE other AS SELECT 1 AS a").await;
    assert_code(&e, Code::PermissionDenied, "create on table 'other'");
    let e = error_of(
        &mut alice,
        &format!(
            "CREATE EXTERNAL TABLE mine_p STORED AS VCF LOCATION '{}'",
            p(&private)
        ),
    )
    .await;
    assert_code(&e, Code::PermissionDenied, "create on path");
    // what she may: the public part of the root, and tables over it
    let public = l.root.join("public/s.vcf");
    assert_eq!(
        count(
            &mut alice,
            &format!("SELECT count(*) FROM '{}'", p(&public))
        )
        .await,
        6
    );
    alice
        .execute_update(
            format!(
                "CREATE EXTERNAL TABLE mine_pub STORED AS VCF LOCATION '{}'",
                p(&public)
            ),
            None,
        )
        .await
        .expect("create over a granted location");
    assert_eq!(count(&mut alice, "SELECT count(*) FROM mine_pub").await, 6);
    // metadata shows what she may see
    let tables = query(
        &mut alice,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
    )
    .await;
    let listed = strings(&tables, "table_name");
    assert!(listed.contains(&"cohort".to_string()), "{listed:?}");
    assert!(!listed.contains(&"secret_calls".to_string()), "{listed:?}");
    let info = alice
        .get_tables(CommandGetTables {
            include_schema: false,
            ..Default::default()
        })
        .await
        .expect("GetTables");
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let batches: Vec<RecordBatch> = alice
        .do_get(ticket)
        .await
        .expect("do_get")
        .try_collect()
        .await
        .expect("batches");
    let names = strings(&batches, "table_name");
    assert!(names.contains(&"cohort".to_string()), "{names:?}");
    assert!(!names.contains(&"secret_calls".to_string()), "{names:?}");
    // a copy of what she sees, into the write root
    let hers = l.out.join("alice.vcf");
    let n = alice
        .execute_update(
            format!("COPY (SELECT * FROM cohort) TO '{}'", p(&hers)),
            None,
        )
        .await
        .expect("copy");
    assert_eq!(n, 4);

    // --- system tables: alice sees her own queries; the administrator sees and cancels hers
    let addr_owned = addr.to_string();
    let running = tokio::spawn(async move {
        let mut c = as_user(&addr_owned, "alice").await;
        error_of(
            &mut c,
            "SELECT count(*) FROM generate_series(1, 100000000000) AS t(v) WHERE v % 7 = 3",
        )
        .await
    });
    let mut id = None;
    for _ in 0..200 {
        let found = query(
            &mut admin,
            "SELECT id FROM system.queries WHERE state = 'running' AND \"user\" = 'alice' AND sql LIKE '%generate_series%'",
        )
        .await;
        if rows(&found) == 1 {
            id = strings(&found, "id").first().cloned();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let id = id.expect("alice's query in system.queries");
    let theirs = query(
        &mut alice,
        "SELECT count(*) FROM system.queries WHERE \"user\" IS DISTINCT FROM 'alice'",
    )
    .await;
    assert_eq!(single_i64(&theirs), 0, "alice sees only her own queries");
    // a query may be cancelled by its owner or an administrator, nobody else
    let mut other = as_user(addr, "nobody").await;
    let e = error_of(&mut other, &format!("SELECT * FROM cancel_query({id})")).await;
    assert_code(&e, Code::PermissionDenied, "");
    let e = error_of(&mut alice, "SELECT * FROM system.audit").await;
    assert_code(&e, Code::PermissionDenied, "system.audit");
    let sessions = query(
        &mut admin,
        "SELECT DISTINCT \"user\" FROM system.sessions ORDER BY 1",
    )
    .await;
    let users = strings(&sessions, "user");
    assert!(
        users.contains(&"alice".to_string()) && users.contains(&"admin".to_string()),
        "{users:?}"
    );
    let cancelled = query(
        &mut admin,
        &format!("SELECT cancelled FROM cancel_query({id})"),
    )
    .await;
    assert_eq!(strings(&cancelled, "cancelled"), ["true"]);
    let e = tokio::time::timeout(std::time::Duration::from_secs(30), running)
        .await
        .expect("the cancelled query ends")
        .expect("task");
    assert_code(&e, Code::Cancelled, "cancelled");
    let state = query(
        &mut admin,
        &format!("SELECT state FROM system.queries WHERE id = {id}"),
    )
    .await;
    assert_eq!(strings(&state, "state"), ["cancelled"]);
    let denied = query(
        &mut admin,
        "SELECT count(*) FROM system.audit WHERE outcome = 'denied' AND \"user\" = 'alice'",
    )
    .await;
    assert!(single_i64(&denied) >= 5, "{denied:?}");

    // --- a user without roles
    let mut nobody = as_user(addr, "nobody").await;
    assert_eq!(
        count(&mut nobody, "SELECT count(*) FROM (SELECT 1)").await,
        1
    );
    let e = error_of(&mut nobody, "SELECT * FROM cohort").await;
    assert_code(&e, Code::PermissionDenied, "table 'cohort'");
    let e = error_of(&mut nobody, &format!("SELECT * FROM '{}'", p(&public))).await;
    assert_code(&e, Code::PermissionDenied, "select on path");
    let _ = client(addr)
        .await
        .handshake("alice", "wrong password")
        .await
        .expect_err("a wrong password");

    // --- the Python ADBC driver meets the same grants
    let output = Command::new(python())
        .arg(client_script("adbc_access.py"))
        .arg(format!("grpc://{addr}"))
        .arg(PASSWORD)
        .output()
        .expect("running python");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "adbc client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("adbc access: all checks passed"),
        "{stdout}"
    );

    // --- the audit trail: every case recorded, and a tampered copy detected
    drop(alice);
    drop(admin);
    drop(nobody);
    let _dir = server.stop();
    let text = std::fs::read_to_string(&l.audit).expect("audit trail");
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON line"))
        .collect();
    let find =
        |pred: &dyn Fn(&serde_json::Value) -> bool| records.iter().find(|r| pred(r)).cloned();
    let denied = find(&|r| {
        r["user"] == "alice" && r["outcome"] == "denied" && r["sql"] == "SELECT * FROM secret_calls"
    })
    .expect("alice's denied query is recorded");
    assert_eq!(denied["code"], "PERMISSION_DENIED");
    assert_eq!(denied["roles"], serde_json::json!(["analyst"]));
    assert!(
        denied["peer"]
            .as_str()
            .is_some_and(|p| p.starts_with("127.0.0.1:"))
    );
    let counted = find(&|r| {
        r["user"] == "alice" && r["sql"] == "SELECT * FROM cohort" && r["outcome"] == "ok"
    })
    .expect("alice's scan is recorded");
    assert_eq!(counted["rows"], 4);
    assert_eq!(counted["objects"], serde_json::json!(["cohort"]));
    let bound = find(&|r| r["user"] == "alice" && r["params"] == serde_json::json!([["chr2"]]))
        .expect("a prepared statement's parameters are recorded");
    assert_eq!(bound["outcome"], "ok");
    let copy = find(&|r| {
        r["user"] == "admin"
            && r["rows"] == 6
            && r["sql"].as_str().is_some_and(|s| s.starts_with("COPY"))
    })
    .expect("the admin's COPY is recorded");
    assert_eq!(copy["outcome"], "ok");
    let login = find(&|r| r["kind"] == "login" && r["user"] == "alice" && r["outcome"] == "error")
        .expect("the failed login is recorded");
    assert_eq!(login["code"], "UNAUTHENTICATED");
    assert!(
        find(&|r| r["kind"] == "login" && r["user"] == "nobody" && r["outcome"] == "ok").is_some()
    );
    assert!(
        find(&|r| r["outcome"] == "denied"
            && r["sql"].as_str().is_some_and(|s| s.contains("/etc/passwd")))
        .is_some()
    );
    assert!(!text.contains(PASSWORD), "a password in the trail");

    let vcfq = env!("CARGO_BIN_EXE_vcfq");
    let ok = Command::new(vcfq)
        .args(["audit", "verify"])
        .arg(&l.audit)
        .output()
        .expect("vcfq audit verify");
    let said = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        said.contains(&format!("{} records, chain intact", records.len())),
        "{said}"
    );
    // one edited field in the middle of the trail
    let tampered = l.out.join("tampered.jsonl");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let middle = lines.len() / 2;
    lines[middle] = lines[middle].replacen("\"time\":\"20", "\"time\":\"19", 1);
    assert_ne!(
        lines[middle],
        text.lines().nth(middle).unwrap(),
        "the edit changed nothing"
    );
    std::fs::write(&tampered, lines.join("\n") + "\n").expect("write");
    let bad = Command::new(vcfq)
        .args(["audit", "verify"])
        .arg(&tampered)
        .output()
        .expect("vcfq audit verify");
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success());
    assert!(
        err.contains(&format!(
            ":{}: the chain is broken: line {}",
            middle + 2,
            middle + 1
        )),
        "{err}"
    );
}
