//! `vcfq serve` started as a real process on an OS-chosen port, used by real clients: arrow-flight's
//! Rust `FlightSqlServiceClient`, the Python ADBC driver and the Arrow Flight SQL JDBC driver.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{CommandGetDbSchemas, CommandGetTables, SqlInfo};
use arrow_flight::{
    Action, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus, FlightInfo,
};
use datafusion::arrow::array::{Array, AsArray, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema};
use futures::TryStreamExt;
use prost::Message;
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

use crate::fixtures::{GEN_RECORDS, data_dir};

pub(crate) const PASSWORD: &str = "correct horse";

/// A running `vcfq serve`, killed when dropped.
pub(crate) struct Server {
    child: Child,
    pub(crate) addr: String,
    dir: Option<tempfile::TempDir>,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Server {
    /// Starts the server with this config (the user `alice` is added, and the test data's
    /// directory as the one file root) and waits for its port.
    pub(crate) fn start(extra_config: &str) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let hash = vcfq::flight::auth::hash_password(PASSWORD).expect("hash");
        let config = format!(
            "addr = \"127.0.0.1:0\"\n{extra_config}\n[[users]]\nname = \"alice\"\npassword_hash = \"{hash}\"\n\n[[tables]]\nname = \"calls\"\nlocation = \"{}\"\n\n[files]\nread = [\"{}\"]\n",
            data_dir().join("gen.vcf.gz").display(),
            data_dir().display()
        );
        std::fs::write(dir.path().join("server.toml"), config).expect("config");
        Self::start_with(dir)
    }

    /// Starts the server with the `server.toml` in `dir`.
    pub(crate) fn start_with(dir: tempfile::TempDir) -> Server {
        Self::start_as(dir, &[], &[])
    }

    /// Starts the server with the `server.toml` in `dir` and these environment variables.
    pub(crate) fn start_with_env(dir: tempfile::TempDir, env: &[(&str, String)]) -> Server {
        Self::start_as(dir, &[], env)
    }

    /// The server's directory (its config, the files it names).
    pub(crate) fn dir(&self) -> &Path {
        self.dir.as_ref().expect("the server's directory").path()
    }

    /// The next line the server prints on stdout (after `listening on …`).
    pub(crate) fn next_line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("reading stdout");
        line.trim().to_string()
    }

    /// Starts the server through `wrapper` (a command that runs the rest of its arguments).
    fn start_as(dir: tempfile::TempDir, wrapper: &[&str], env: &[(&str, String)]) -> Server {
        let binary = env!("CARGO_BIN_EXE_vcfq");
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(binary);
                c
            }
            None => Command::new(binary),
        };
        let mut child = command
            .envs(env.iter().map(|(k, v)| (k, v)))
            .args(["serve", "--config"])
            .arg(dir.path().join("server.toml"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting vcfq serve");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("reading the port");
        let addr = line
            .trim()
            .rsplit("://")
            .next()
            .filter(|a| a.contains(':'))
            .unwrap_or_else(|| panic!("server did not start: {line:?}"))
            .to_string();
        Server {
            child,
            addr,
            dir: Some(dir),
            stdout,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Server {
    /// Stops the server and hands back its directory (the config, the audit trail, …).
    pub(crate) fn stop(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.dir.take().expect("the server's directory")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) async fn client(addr: &str) -> FlightSqlServiceClient<Channel> {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connecting");
    FlightSqlServiceClient::new(channel)
}

pub(crate) async fn login(addr: &str) -> FlightSqlServiceClient<Channel> {
    let mut c = client(addr).await;
    c.handshake("alice", PASSWORD).await.expect("handshake");
    c
}

async fn fetch(c: &mut FlightSqlServiceClient<Channel>, info: FlightInfo) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.expect("ticket");
        let batches: Vec<RecordBatch> = c
            .do_get(ticket)
            .await
            .expect("do_get")
            .try_collect()
            .await
            .expect("batches");
        out.extend(batches);
    }
    out
}

pub(crate) async fn query(c: &mut FlightSqlServiceClient<Channel>, sql: &str) -> Vec<RecordBatch> {
    let info = c.execute(sql.to_string(), None).await.expect(sql);
    fetch(c, info).await
}

pub(crate) async fn error_of(c: &mut FlightSqlServiceClient<Channel>, sql: &str) -> String {
    match c.execute(sql.to_string(), None).await {
        Ok(info) => {
            let ticket = info.endpoint[0].ticket.clone().expect("ticket");
            match c.do_get(ticket).await {
                Ok(stream) => match stream.try_collect::<Vec<_>>().await {
                    Ok(_) => panic!("{sql}: no error"),
                    Err(e) => e.to_string(),
                },
                Err(e) => e.to_string(),
            }
        }
        Err(e) => e.to_string(),
    }
}

/// The gRPC code named in a client error's text (clients print the code's description).
fn code_of(e: &str) -> Option<Code> {
    [
        Code::InvalidArgument,
        Code::NotFound,
        Code::Unauthenticated,
        Code::PermissionDenied,
        Code::FailedPrecondition,
        Code::ResourceExhausted,
        Code::Cancelled,
        Code::Unimplemented,
        Code::Internal,
        Code::Unavailable,
    ]
    .into_iter()
    .find(|c| e.contains(c.description()))
}

pub(crate) fn assert_code(e: &str, code: Code, also: &str) {
    assert_eq!(code_of(e), Some(code), "{e}");
    assert!(e.contains(also), "{also:?} not in {e}");
}

pub(crate) fn single_i64(batches: &[RecordBatch]) -> i64 {
    let column = batches[0].column(0);
    column
        .as_any()
        .downcast_ref::<Int64Array>()
        .map(|a| a.value(0))
        .unwrap_or_else(|| panic!("not Int64: {:?}", column.data_type()))
}

pub(crate) fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

pub(crate) fn strings(batches: &[RecordBatch], column: &str) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        let col = b.column_by_name(column).expect(column);
        let col = datafusion::arrow::compute::cast(col, &DataType::Utf8).expect("cast");
        let col = col.as_string::<i32>();
        out.extend((0..col.len()).map(|i| col.value(i).to_string()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_client_queries_prepares_updates_and_reads_metadata() {
    let server = Server::start("");
    let addr = server.addr.as_str();

    // no credentials, wrong password
    let mut anonymous = client(addr).await;
    let e = error_of(&mut anonymous, "SELECT 1").await;
    assert_code(&e, Code::Unauthenticated, "authentication required");
    let e = client(addr)
        .await
        .handshake("alice", "wrong")
        .await
        .unwrap_err()
        .to_string();
    assert_code(&e, Code::Unauthenticated, "invalid username or password");

    let mut c = login(addr).await;
    // a table of the config file, and a file path as a table
    let n = single_i64(&query(&mut c, "SELECT count(*) FROM calls").await);
    assert_eq!(n, GEN_RECORDS as i64);
    let sample = data_dir().join("sample.vcf");
    let batches = query(
        &mut c,
        &format!(
            "SELECT chrom, pos FROM '{}' ORDER BY chrom, pos LIMIT 2",
            sample.display()
        ),
    )
    .await;
    assert_eq!(strings(&batches, "pos"), vec!["100", "200"]);

    // prepared statement, `?` placeholders, several parameter rows
    let mut prepared = c
        .prepare(
            "SELECT count(*) AS n FROM calls WHERE pos > ? AND chrom = ?".to_string(),
            None,
        )
        .await
        .expect("prepare");
    let params = prepared
        .parameter_schema()
        .expect("parameter schema")
        .clone();
    assert_eq!(params.fields().len(), 2);
    assert_eq!(params.field(0).data_type(), &DataType::Int64);
    let bound = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("p1", DataType::Int64, false),
            Field::new("p2", DataType::Utf8, false),
        ])),
        vec![
            Arc::new(Int64Array::from(vec![0, i64::MAX])),
            Arc::new(datafusion::arrow::array::StringArray::from(vec![
                "chr1", "chr1",
            ])),
        ],
    )
    .expect("batch");
    prepared.set_parameters(bound).expect("bind");
    let info = prepared.execute().await.expect("execute prepared");
    let batches = fetch(&mut c, info).await;
    let counts: Vec<i64> = batches
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect();
    let chr1 = single_i64(&query(&mut c, "SELECT count(*) FROM calls WHERE chrom = 'chr1'").await);
    assert!(chr1 > 0);
    assert_eq!(counts, vec![chr1, 0]);
    prepared.close().await.expect("close");

    // updates: DDL, INSERT with its row count, a prepared INSERT
    assert_eq!(
        c.execute_update(
            "CREATE TABLE picked (chrom VARCHAR, pos BIGINT)".into(),
            None
        )
        .await
        .expect("create"),
        0
    );
    let inserted = c
        .execute_update(
            "INSERT INTO picked SELECT chrom, pos FROM calls WHERE pos < 1000000".into(),
            None,
        )
        .await
        .expect("insert");
    let expected =
        single_i64(&query(&mut c, "SELECT count(*) FROM calls WHERE pos < 1000000").await);
    assert_eq!(inserted, expected);
    let mut insert = c
        .prepare("INSERT INTO picked VALUES (?, ?)".into(), None)
        .await
        .expect("prepare insert");
    insert
        .set_parameters(
            RecordBatch::try_new(
                Arc::new(Schema::new(vec![
                    Field::new("c", DataType::Utf8, false),
                    Field::new("p", DataType::Int64, false),
                ])),
                vec![
                    Arc::new(datafusion::arrow::array::StringArray::from(vec![
                        "chrX", "chrY",
                    ])),
                    Arc::new(Int64Array::from(vec![1, 2])),
                ],
            )
            .expect("batch"),
        )
        .expect("bind");
    assert_eq!(insert.execute_update().await.expect("prepared insert"), 2);
    let total = single_i64(&query(&mut c, "SELECT count(*) FROM picked").await);
    assert_eq!(total, expected + 2);

    // CREATE EXTERNAL TABLE over the wire
    let created = c
        .execute_update(
            format!(
                "CREATE EXTERNAL TABLE ext STORED AS VCF LOCATION '{}'",
                sample.display()
            ),
            None,
        )
        .await
        .expect("create external table");
    assert_eq!(created, 0);
    assert_eq!(
        single_i64(&query(&mut c, "SELECT count(*) FROM ext").await),
        6
    );

    // errors carry the right gRPC code and name the object
    let e = error_of(&mut c, "SELEC 1").await;
    assert_code(&e, Code::InvalidArgument, "SELEC");
    let e = error_of(&mut c, "SELECT * FROM no_such_table").await;
    assert_code(&e, Code::NotFound, "no_such_table");
    let e = error_of(&mut c, "SELECT no_such_column FROM calls").await;
    assert_code(&e, Code::InvalidArgument, "no_such_column");
    let e = error_of(
        &mut c,
        &format!(
            "SELECT * FROM '{}'",
            data_dir().join("malformed.vcf").display()
        ),
    )
    .await;
    assert_code(&e, Code::FailedPrecondition, "malformed.vcf:5");

    // catalog metadata
    let info = c.get_catalogs().await.expect("catalogs");
    assert_eq!(
        strings(&fetch(&mut c, info).await, "catalog_name"),
        vec!["datafusion"]
    );
    let info = c
        .get_db_schemas(CommandGetDbSchemas {
            catalog: None,
            db_schema_filter_pattern: None,
        })
        .await
        .expect("schemas");
    let schemas = strings(&fetch(&mut c, info).await, "db_schema_name");
    assert!(
        schemas.contains(&"public".to_string())
            && schemas.contains(&"information_schema".to_string()),
        "{schemas:?}"
    );
    let info = c
        .get_tables(CommandGetTables {
            catalog: None,
            db_schema_filter_pattern: Some("public".into()),
            table_name_filter_pattern: Some("%".into()),
            table_types: vec![],
            include_schema: true,
        })
        .await
        .expect("tables");
    let tables = fetch(&mut c, info).await;
    assert_eq!(
        strings(&tables, "table_name"),
        vec!["calls", "ext", "picked"]
    );
    assert_eq!(
        strings(&tables, "table_type"),
        vec!["TABLE", "TABLE", "TABLE"]
    );
    let schema_bytes = tables[0]
        .column_by_name("table_schema")
        .expect("table_schema")
        .as_binary::<i32>()
        .value(0)
        .to_vec();
    let decoded = datafusion::arrow::ipc::convert::try_schema_from_ipc_buffer(&schema_bytes)
        .expect("table schema");
    let names: Vec<&str> = decoded
        .fields()
        .iter()
        .take(5)
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(names, vec!["chrom", "pos", "id", "ref", "alt"]);
    let info = c.get_table_types().await.expect("table types");
    assert_eq!(
        strings(&fetch(&mut c, info).await, "table_type"),
        vec!["LOCAL TEMPORARY", "SYSTEM TABLE", "TABLE", "VIEW"]
    );
    let info = c
        .get_sql_info(vec![
            SqlInfo::FlightSqlServerName,
            SqlInfo::FlightSqlServerVersion,
        ])
        .await
        .expect("sql info");
    let info_batches = fetch(&mut c, info).await;
    assert_eq!(rows(&info_batches), 2);
    let info = c
        .get_xdbc_type_info(arrow_flight::sql::CommandGetXdbcTypeInfo { data_type: None })
        .await
        .expect("xdbc");
    assert!(strings(&fetch(&mut c, info).await, "type_name").contains(&"VARCHAR".to_string()));
    let info = c
        .get_primary_keys(arrow_flight::sql::CommandGetPrimaryKeys {
            catalog: None,
            db_schema: None,
            table: "calls".into(),
        })
        .await
        .expect("primary keys");
    assert_eq!(rows(&fetch(&mut c, info).await), 0);
    let info = c
        .get_imported_keys(arrow_flight::sql::CommandGetImportedKeys {
            catalog: None,
            db_schema: None,
            table: "calls".into(),
        })
        .await
        .expect("imported keys");
    assert_eq!(rows(&fetch(&mut c, info).await), 0);

    // another login is another session: no `picked` table, its own settings
    let mut other = login(addr).await;
    let e = error_of(&mut other, "SELECT * FROM picked").await;
    assert_code(&e, Code::NotFound, "picked");
    query(&mut other, "SET datafusion.execution.batch_size = 123").await;
    let mine = strings(
        &query(&mut c, "SELECT value FROM information_schema.df_settings WHERE name = 'datafusion.execution.batch_size'").await,
        "value",
    );
    assert_eq!(mine, vec!["8192"]);
}

/// Whether the tests run as root, who reads any file whatever its mode.
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_keep_their_kind_to_the_client() {
    // regression: vcfq's errors reached the server as text, and their codes were guessed from
    // words in it; now each code comes from the error's type
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("server.toml"),
        format!(
            "addr = \"127.0.0.1:0\"\nallow_anonymous = true\n[files]\nread = [\"{}\", \"{}\"]\n[streams]\nallow = [\"127.0.0.1:9\"]\n",
            dir.path().display(),
            data_dir().display()
        ),
    )
    .expect("config");
    let secret = dir.path().join("secret.vcf");
    std::fs::copy(data_dir().join("sample.vcf"), &secret).expect("copy");
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o000))
        .expect("chmod");
    let missing = dir.path().join("missing.vcf");
    // root may read any file: run that server without the capabilities that allow it
    let wrapper: &[&str] = if is_root() {
        &[
            "setpriv",
            "--bounding-set=-dac_override,-dac_read_search",
            "--",
        ]
    } else {
        &[]
    };
    let server = Server::start_as(dir, wrapper, &[]);
    let mut c = client(&server.addr).await;

    let e = error_of(&mut c, &format!("SELECT * FROM '{}'", missing.display())).await;
    assert_code(&e, Code::NotFound, "missing.vcf: no such file");
    let e = error_of(&mut c, &format!("SELECT * FROM '{}'", secret.display())).await;
    assert_code(&e, Code::PermissionDenied, "secret.vcf: cannot open");
    let e = error_of(
        &mut c,
        "CREATE EXTERNAL TABLE k STORED AS KAFKA LOCATION '127.0.0.1:9/calls' OPTIONS ('timeout.ms' '1500')",
    )
    .await;
    assert_code(&e, Code::Unavailable, "kafka 127.0.0.1:9/calls");
    let malformed = data_dir().join("malformed.vcf");
    let e = error_of(&mut c, &format!("SELECT * FROM '{}'", malformed.display())).await;
    assert_code(&e, Code::FailedPrecondition, "malformed.vcf:5: POS 'ten'");
    let e = error_of(
        &mut c,
        &format!(
            "SELECT * FROM read_vcf('{}', 'chr1:10-5')",
            data_dir().join("sample.vcf").display()
        ),
    )
    .await;
    assert_code(&e, Code::InvalidArgument, "invalid region 'chr1:10-5'");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_stream_and_queries_can_be_cancelled() {
    let server = Server::start("");
    let mut c = login(&server.addr).await;

    // 10^11 rows cannot be materialised: the first batch arriving proves results stream
    let info = c
        .execute(
            "SELECT value FROM generate_series(1, 100000000000)".into(),
            None,
        )
        .await
        .expect("plan");
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let mut stream = c.do_get(ticket).await.expect("do_get");
    let first = stream
        .try_next()
        .await
        .expect("first batch")
        .expect("a batch");
    assert!(first.num_rows() > 0);

    let action = Action::new(
        "CancelFlightInfo",
        CancelFlightInfoRequest::new(info.clone()).encode_to_vec(),
    );
    let results: Vec<_> = c
        .do_action(action.clone())
        .await
        .expect("cancel")
        .try_collect()
        .await
        .expect("cancel result");
    let status = CancelFlightInfoResult::decode(results[0].body.clone())
        .expect("result")
        .status;
    assert_eq!(status, CancelStatus::Cancelled as i32);
    let mut ended = None;
    while ended.is_none() {
        match stream.try_next().await {
            Ok(Some(_)) => {}
            Ok(None) => ended = Some("ended without error".to_string()),
            Err(e) => ended = Some(e.to_string()),
        }
    }
    let ended = ended.unwrap_or_default();
    assert_code(&ended, Code::Cancelled, "query cancelled");

    // a second cancel of the same query has nothing to cancel
    let results: Vec<_> = c
        .do_action(action)
        .await
        .expect("cancel")
        .try_collect()
        .await
        .expect("cancel result");
    let status = CancelFlightInfoResult::decode(results[0].body.clone())
        .expect("result")
        .status;
    assert_eq!(status, CancelStatus::NotCancellable as i32);

    // a query cancelled before it is fetched is gone
    let info = c.execute("SELECT 1".into(), None).await.expect("plan");
    let action = Action::new(
        "CancelFlightInfo",
        CancelFlightInfoRequest::new(info.clone()).encode_to_vec(),
    );
    let _: Vec<_> = c
        .do_action(action)
        .await
        .expect("cancel")
        .try_collect()
        .await
        .expect("ok");
    let e = match c
        .do_get(info.endpoint[0].ticket.clone().expect("ticket"))
        .await
    {
        Ok(s) => s
            .try_collect::<Vec<_>>()
            .await
            .map(|_| ())
            .unwrap_err()
            .to_string(),
        Err(e) => e.to_string(),
    };
    assert_code(&e, Code::NotFound, "not found in this session");
}

/// A CA and a server certificate for `localhost`/127.0.0.1 signed by it: (ca, cert, key).
fn openssl_cert(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    openssl_ca(dir, "ca");
    openssl_signed(
        dir,
        "server",
        "/CN=localhost",
        "ca",
        "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
    );
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

/// openssl in `dir`.
fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("openssl (apt install openssl)");
    assert!(status.success(), "openssl {args:?}");
}

/// A CA `name.pem` / `name.key` (P-256).
pub(crate) fn openssl_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
        ],
    );
}

/// A certificate `name.pem` / `name.key` for `subject`, signed by CA `by`, with `ext` (its
/// X.509 v3 extensions: without them openssl makes a v1 certificate, which rustls refuses).
pub(crate) fn openssl_signed(dir: &Path, name: &str, subject: &str, by: &str, ext: &str) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            subject,
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ],
    );
    std::fs::write(dir.join(format!("{name}.ext")), ext).expect("ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{by}.pem"),
            "-CAkey",
            &format!("{by}.key"),
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.pem"),
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_anonymous_connections_get_separate_sessions_and_a_session_limit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (ca, cert, key) = openssl_cert(dir.path());
    std::fs::write(
        dir.path().join("server.toml"),
        format!(
            "addr = \"127.0.0.1:0\"\nallow_anonymous = true\nmax_sessions = 2\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
            cert.display(),
            key.display()
        ),
    )
    .expect("config");
    let server = Server::start_with(dir);
    let pem = std::fs::read(&ca).expect("ca");
    let tls_client = || async {
        let channel = Channel::from_shared(format!(
            "https://localhost:{}",
            server.addr.rsplit(':').next().unwrap_or("0")
        ))
        .expect("uri")
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(&pem))
                .domain_name("localhost"),
        )
        .expect("tls")
        .connect()
        .await
        .expect("tls connect");
        FlightSqlServiceClient::new(channel)
    };
    let mut a = tls_client().await;
    let mut b = tls_client().await;
    assert_eq!(
        single_i64(&query(&mut a, "SELECT CAST(41 + 1 AS BIGINT)").await),
        42
    );
    query(&mut a, "CREATE TABLE mine AS VALUES (1)").await;
    assert_eq!(rows(&query(&mut a, "SELECT * FROM mine").await), 1);
    let e = error_of(&mut b, "SELECT * FROM mine").await;
    assert_code(&e, Code::NotFound, "mine");
    let mut third = tls_client().await;
    let e = error_of(&mut third, "SELECT 1").await;
    assert_code(&e, Code::ResourceExhausted, "too many sessions");
    // a closed connection ends its session at once, making room
    drop(a);
    let mut freed = false;
    for _ in 0..100 {
        if third.execute("SELECT 1".into(), None).await.is_ok() {
            freed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(freed, "the session of a closed connection was not dropped");

    // plain gRPC against a TLS server fails to connect or to call
    let plain = Channel::from_shared(format!("http://{}", server.addr))
        .expect("uri")
        .connect()
        .await;
    if let Ok(channel) = plain {
        let mut c = FlightSqlServiceClient::new(channel);
        assert!(c.execute("SELECT 1".into(), None).await.is_err());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_grace_period_run_then_cancels() {
    let mut server = Server::start("shutdown_grace_secs = 1");
    let mut c = login(&server.addr).await;
    let info = c
        .execute(
            "SELECT value FROM generate_series(1, 100000000000)".into(),
            None,
        )
        .await
        .expect("plan");
    let mut stream = c
        .do_get(info.endpoint[0].ticket.clone().expect("ticket"))
        .await
        .expect("do_get");
    stream.try_next().await.expect("first").expect("batch");
    let started = std::time::Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let mut outcome = String::new();
    loop {
        match stream.try_next().await {
            Ok(Some(_)) => {}
            Ok(None) => {
                outcome = "ended".into();
                break;
            }
            Err(e) => {
                outcome.push_str(&e.to_string());
                break;
            }
        }
    }
    assert_code(&outcome, Code::Cancelled, "query cancelled");
    let exit = server.child.wait().expect("wait");
    assert!(exit.success(), "{exit:?}");
    let took = started.elapsed();
    assert!(took >= std::time::Duration::from_millis(900), "{took:?}");
}

/// A client `scripts/clients.sh` installs: the path in `env`, else `under_home` in $HOME.
fn installed(env: &str, under_home: &str, what: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let path = home.join(under_home);
    assert!(
        path.exists(),
        "no {what}: run `. scripts/clients.sh` (scripts/test.sh does) or set {env}"
    );
    path
}

/// Python with adbc-driver-flightsql.
pub(crate) fn python() -> PathBuf {
    installed(
        "VCFQ_PYTHON",
        ".cache/vcfq/venv/bin/python",
        "Python with adbc-driver-flightsql",
    )
}

/// The Flight SQL JDBC driver jar.
pub(crate) fn jdbc_jar() -> PathBuf {
    installed(
        "VCFQ_JDBC_JAR",
        ".m2/repository/org/apache/arrow/flight-sql-jdbc-driver/18.3.0/flight-sql-jdbc-driver-18.3.0.jar",
        "Flight SQL JDBC driver",
    )
}

pub(crate) fn client_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(name)
}

#[test]
fn python_adbc_driver() {
    let server = Server::start("");
    let output = Command::new(python())
        .arg(client_script("adbc_client.py"))
        .arg(format!("grpc://{}", server.addr))
        .arg("alice")
        .arg(PASSWORD)
        .arg(GEN_RECORDS.to_string())
        .output()
        .expect("running python");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "adbc client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("adbc: all checks passed"), "{stdout}");
}

#[test]
fn jdbc_driver_as_dbeaver_uses_it() {
    let server = Server::start("");
    let port = server.addr.rsplit(':').next().unwrap_or("0").to_string();
    let output = Command::new("java")
        .arg("--add-opens=java.base/java.nio=ALL-UNNAMED")
        .arg("-cp")
        .arg(jdbc_jar())
        .arg(client_script("JdbcClient.java"))
        .arg(format!(
            "jdbc:arrow-flight-sql://127.0.0.1:{port}/?useEncryption=false&user=alice&password={}",
            PASSWORD.replace(' ', "%20")
        ))
        .arg(GEN_RECORDS.to_string())
        .output()
        .expect("running java");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "jdbc client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("jdbc: all checks passed"), "{stdout}");
}
