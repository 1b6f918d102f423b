//! `vcfq serve` watched and entered from outside, with real parts only: its `/metrics` scraped
//! and parsed by the Prometheus project's Python client, its traces received by an OTLP
//! receiver built on the OpenTelemetry project's protobufs, bearer JWTs of an identity
//! provider through ADBC and JDBC, and mutual TLS client certificates through ADBC.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode, get_current_timestamp};
use serde_json::{Value, json};

use crate::fixtures::{GEN_RECORDS, data_dir};
use crate::flight::{
    PASSWORD, Server, client_script, jdbc_jar, openssl_ca as ca, openssl_signed as signed, python,
};

/// Runs statements through the ADBC driver with these connection options; one JSON value per
/// statement (`{"rows": …}` or `{"error": …}`).
fn adbc(uri: &str, options: Value, statements: &[&str]) -> Vec<Value> {
    let output = Command::new(python())
        .arg(client_script("adbc_query.py"))
        .arg(uri)
        .arg(options.to_string())
        .args(statements)
        .output()
        .expect("running python");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "adbc_query.py failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(results.len(), statements.len(), "{stdout}");
    results
}

/// The one value of a statement's result.
fn single(result: &Value) -> &Value {
    assert!(result.get("error").is_none(), "{result}");
    &result["rows"][0][0]
}

/// A statement's error text.
fn error(result: &Value) -> String {
    result["error"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error, got {result}"))
        .to_string()
}

/// One query through the JDBC driver: `value: …` or `error: …`.
fn jdbc(url: &str, sql: &str) -> String {
    let output = Command::new("java")
        .arg("--add-opens=java.base/java.nio=ALL-UNNAMED")
        .arg("-cp")
        .arg(jdbc_jar())
        .arg(client_script("JdbcQuery.java"))
        .arg(url)
        .arg(sql)
        .output()
        .expect("running java");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// The OTLP receiver (tests/clients/otlp_sink.py), its spans read as they come.
struct Sink {
    child: Child,
    grpc: u16,
    http: u16,
    lines: mpsc::Receiver<String>,
    spans: Vec<Value>,
}

impl Sink {
    fn start() -> Sink {
        let mut child = Command::new(python())
            .arg(client_script("otlp_sink.py"))
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting the OTLP receiver");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut first = String::new();
        stdout.read_line(&mut first).expect("the receiver's ports");
        let ports: Value = serde_json::from_str(&first)
            .unwrap_or_else(|_| panic!("the OTLP receiver did not start: {first:?}"));
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Sink {
            child,
            grpc: ports["grpc"].as_u64().expect("grpc port") as u16,
            http: ports["http"].as_u64().expect("http port") as u16,
            lines,
            spans: Vec::new(),
        }
    }

    /// Waits (up to 30 s) until the spans received satisfy `done`; all spans received.
    fn until(&mut self, done: impl Fn(&[Value]) -> bool) -> &[Value] {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done(&self.spans) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self
                    .spans
                    .push(serde_json::from_str(&line).expect("a JSON span")),
                Err(_) => panic!(
                    "spans received do not show what was expected:\n{}",
                    self.spans
                        .iter()
                        .map(Value::to_string)
                        .collect::<Vec<_>>()
                        .join("\n")
                ),
            }
        }
        &self.spans
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `/metrics` parsed by prometheus_client: (HTTP status, samples).
pub(crate) fn scrape(url: &str, token: Option<&str>) -> (u64, Vec<Value>) {
    let mut command = Command::new(python());
    command.arg(client_script("prom_scrape.py")).arg(url);
    if let Some(token) = token {
        command.arg(token);
    }
    let output = command.output().expect("running python");
    assert!(
        output.status.success(),
        "prom_scrape.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let v: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let samples = v["samples"].as_array().cloned().unwrap_or_default();
    (v["status"].as_u64().expect("status"), samples)
}

/// The sum of the samples named `name` whose labels include `labels`.
pub(crate) fn sample(samples: &[Value], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s["name"] == name)
        .filter(|s| labels.iter().all(|(k, v)| s["labels"][*k] == *v))
        .map(|s| s["value"].as_f64().unwrap_or(0.0))
        .sum()
}

fn base_config(extra: &str) -> String {
    let hash = vcfq::flight::auth::hash_password(PASSWORD).expect("hash");
    format!(
        "addr = \"127.0.0.1:0\"\n{extra}\n[[users]]\nname = \"alice\"\npassword_hash = \"{hash}\"\n\n[[tables]]\nname = \"calls\"\nlocation = \"{}\"\n\n[files]\nread = [\"{}\"]\n",
        data_dir().join("gen.vcf.gz").display(),
        data_dir().display()
    )
}

#[test]
fn metrics_and_traces_of_real_clients() {
    let mut sink = Sink::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = base_config("[metrics]\naddr = \"127.0.0.1:0\"\ntoken = \"scrape-secret\"\n");
    std::fs::write(dir.path().join("server.toml"), config).expect("config");
    let mut server = Server::start_with_env(
        dir,
        &[
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://127.0.0.1:{}", sink.grpc),
            ),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".into()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".into()),
            ("OTEL_SERVICE_NAME", "vcfq-test".into()),
        ],
    );
    let line = server.next_line();
    let metrics_url = line
        .strip_prefix("vcfq serve: metrics on ")
        .unwrap_or_else(|| panic!("no metrics address: {line:?}"))
        .to_string();

    assert_eq!(scrape(&metrics_url, None).0, 401, "a token is required");
    assert_eq!(scrape(&metrics_url, Some("wrong")).0, 401);
    let (status, before) = scrape(&metrics_url, Some("scrape-secret"));
    assert_eq!(status, 200);
    assert_eq!(
        sample(&before, "vcfq_statements_total", &[]),
        0.0,
        "nothing ran yet"
    );

    // a client that is itself traced: its calls carry a W3C traceparent
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    let results = adbc(
        &format!("grpc://{}", server.addr),
        json!({
            "username": "alice",
            "password": PASSWORD,
            "adbc.flight.sql.rpc.call_header.traceparent": format!("00-{trace_id}-{parent}-01"),
        }),
        &[
            "SELECT count(*) FROM calls WHERE info.AF[1] > 0.1",
            "SELECT nonsense FROM calls",
            "SELECT * FROM '/etc/passwd'",
        ],
    );
    let passing = single(&results[0]).as_i64().expect("a count");
    assert!(passing > 0 && passing < GEN_RECORDS as i64, "{passing}");
    assert!(error(&results[1]).contains("nonsense"), "{}", results[1]);
    assert!(
        error(&results[2]).contains("permission denied"),
        "{}",
        results[2]
    );

    let (_, after) = scrape(&metrics_url, Some("scrape-secret"));
    let at_least = |name: &str, labels: &[(&str, &str)], n: f64| {
        let v = sample(&after, name, labels);
        let all: Vec<&Value> = after.iter().filter(|s| s["name"] == name).collect();
        assert!(
            v >= n,
            "{name}{labels:?} = {v}, expected at least {n}; all: {all:?}"
        );
    };
    at_least(
        "vcfq_statements_total",
        &[("kind", "query"), ("outcome", "ok")],
        1.0,
    );
    at_least("vcfq_statements_total", &[("outcome", "error")], 1.0);
    at_least("vcfq_statements_total", &[("outcome", "denied")], 1.0);
    at_least(
        "vcfq_statement_duration_seconds_count",
        &[("kind", "query")],
        1.0,
    );
    // the VCF scan read every record (the filter runs inside it) and its bytes
    at_least("vcfq_scanned_rows_total", &[], GEN_RECORDS as f64);
    at_least("vcfq_scanned_bytes_total", &[], 1.0);
    at_least("vcfq_result_bytes_total", &[], 1.0);
    at_least(
        "vcfq_flight_rpcs_total",
        &[("method", "DoGet"), ("code", "OK")],
        1.0,
    );
    // ADBC prepares every statement (DoAction CreatePreparedStatement), so that is where the
    // bad column and the denied path fail
    at_least(
        "vcfq_flight_rpcs_total",
        &[("method", "DoAction"), ("code", "INVALID_ARGUMENT")],
        1.0,
    );
    at_least(
        "vcfq_flight_rpcs_total",
        &[("method", "DoAction"), ("code", "PERMISSION_DENIED")],
        1.0,
    );
    at_least(
        "vcfq_flight_rpcs_total",
        &[("method", "GetFlightInfo"), ("code", "OK")],
        1.0,
    );
    at_least(
        "vcfq_flight_rpc_duration_seconds_count",
        &[("method", "DoGet")],
        1.0,
    );
    at_least(
        "vcfq_logins_total",
        &[("method", "password"), ("outcome", "ok")],
        1.0,
    );
    at_least("vcfq_sessions", &[], 1.0);

    // the trace: the DoGet call is a child of the client's span, the plan's operators are
    // nested under it, and the VCF scan's span carries its metrics
    // (a parent ends after its children, so it can arrive in a later export)
    let spans = sink.until(|spans| {
        let ours: Vec<&Value> = spans.iter().filter(|s| s["trace_id"] == trace_id).collect();
        let failed = |code: &str| {
            ours.iter()
                .any(|s| s["attributes"]["rpc.grpc.status_code"] == code)
        };
        if !failed("INVALID_ARGUMENT") || !failed("PERMISSION_DENIED") {
            return false;
        }
        let Some(mut at) = ours.iter().find(|s| s["name"] == "VcfExec") else {
            return false;
        };
        while at["name"] != "DoGet" {
            match ours.iter().find(|s| s["span_id"] == at["parent_span_id"]) {
                Some(parent) => at = parent,
                None => return false,
            }
        }
        true
    });
    let ours: Vec<&Value> = spans.iter().filter(|s| s["trace_id"] == trace_id).collect();
    let scan = ours
        .iter()
        .find(|s| s["name"] == "VcfExec")
        .expect("a VcfExec span");
    // as DataFusion prints a count ("30.00 K")
    let records = datafusion::physical_plan::metrics::Count::new();
    records.add(GEN_RECORDS as usize);
    let shown = datafusion::physical_plan::metrics::MetricValue::Count {
        name: "records_scanned".into(),
        count: records,
    }
    .to_string();
    assert_eq!(
        scan["attributes"]["datafusion.metrics.records_scanned"], shown,
        "{scan}"
    );
    // from the scan up through the operators to the call that ran them (ADBC's connect ran a
    // DoGet of its own, for GetSqlInfo)
    let mut chain = vec![*scan];
    while chain.last().expect("a span")["name"] != "DoGet" {
        let parent_id = &chain.last().expect("a span")["parent_span_id"];
        chain.push(
            ours.iter()
                .find(|s| s["span_id"] == *parent_id)
                .expect("the walk above found every parent"),
        );
    }
    let names: Vec<&str> = chain.iter().filter_map(|s| s["name"].as_str()).collect();
    assert!(
        names.len() >= 4 && names.contains(&"AggregateExec"),
        "operators nested under the call: {names:?}"
    );
    let do_get = chain.last().expect("the call");
    assert_eq!(do_get["parent_span_id"], parent, "{do_get}");
    assert_eq!(do_get["service"], "vcfq-test");
    assert_eq!(do_get["attributes"]["rpc.grpc.status_code"], "OK");
    assert_eq!(
        do_get["attributes"]["db.query.text"],
        "SELECT count(*) FROM calls WHERE info.AF[1] > 0.1"
    );
    // the statement's planning call (ADBC's connect made one without SQL, for GetSqlInfo)
    assert!(
        ours.iter().any(|s| s["name"] == "GetFlightInfo"
            && s["attributes"]["db.query.text"]
                == "SELECT count(*) FROM calls WHERE info.AF[1] > 0.1"),
        "{ours:?}"
    );
    let failed = ours
        .iter()
        .find(|s| s["attributes"]["rpc.grpc.status_code"] == "INVALID_ARGUMENT")
        .expect("the failed call's span");
    assert_eq!(failed["name"], "DoAction");
    assert_eq!(
        failed["attributes"]["db.query.text"],
        "SELECT nonsense FROM calls"
    );
    assert_eq!(failed["status"], 2, "an error status: {failed}");
}

#[test]
fn the_cli_traces_each_statement_over_otlp_http() {
    let mut sink = Sink::start();
    let sql = format!(
        "SELECT chrom, count(*) FROM '{}' GROUP BY chrom",
        data_dir().join("gen.vcf.gz").display()
    );
    let output = Command::new(env!("CARGO_BIN_EXE_vcfq"))
        .args(["--trace", "--format", "tsv", "-c", &sql])
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{}", sink.http),
        )
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        .output()
        .expect("running vcfq");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // the spans were sent before the process exited
    let spans = sink.until(|spans| {
        spans.iter().any(|s| s["name"] == "statement")
            && spans.iter().any(|s| s["name"] == "VcfExec")
    });
    let statement = spans
        .iter()
        .find(|s| s["name"] == "statement")
        .expect("the statement's span");
    assert_eq!(statement["transport"], "http");
    assert_eq!(statement["attributes"]["db.query.text"], sql.as_str());
    assert_eq!(statement["parent_span_id"], "", "a trace of its own");
    let scan = spans
        .iter()
        .find(|s| s["name"] == "VcfExec")
        .expect("the scan's span");
    assert_eq!(scan["trace_id"], statement["trace_id"]);
}

/// An identity provider's signing key (P-256) and its JWKS.
struct Idp {
    signer: EncodingKey,
    jwks: String,
}

fn idp() -> Idp {
    let kp = rcgen::KeyPair::generate().expect("key");
    let raw = kp.public_key_raw();
    let jwks = json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": "idp-1", "alg": "ES256", "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(&raw[1..33]), "y": URL_SAFE_NO_PAD.encode(&raw[33..65]),
    }]});
    Idp {
        signer: EncodingKey::from_ec_der(kp.serialized_der()),
        jwks: jwks.to_string(),
    }
}

fn mint(idp: &Idp, claims: Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("idp-1".into());
    encode(&header, &claims, &idp.signer).expect("token")
}

#[test]
fn bearer_jwts_from_an_identity_provider() {
    let issuer = idp();
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("jwks.json"), &issuer.jwks).expect("jwks");
    let config = base_config(
        r#"
[jwt]
jwks = "jwks.json"
issuer = "https://idp.test"
audience = ["vcfq"]
role_map = { "lab-analysts" = "analyst" }

[audit]
path = "audit.jsonl"

[[roles]]
name = "analyst"
[[roles.grants]]
tables = ["calls"]
privileges = ["select"]
columns = ["chrom", "pos"]
"#,
    );
    std::fs::write(dir.path().join("server.toml"), config).expect("config");
    let server = Server::start_with(dir);
    let uri = format!("grpc://{}", server.addr);
    let now = get_current_timestamp();
    let claims = |roles: Value, exp: u64| json!({"sub": "carol", "iss": "https://idp.test", "aud": "vcfq", "exp": exp, "roles": roles});
    let bearer =
        |token: &str| json!({"adbc.flight.sql.authorization_header": format!("Bearer {token}")});

    // roles from the claims: the analyst's narrowed table
    let good = mint(&issuer, claims(json!(["lab-analysts"]), now + 600));
    let r = adbc(
        &uri,
        bearer(&good),
        &[
            "SELECT count(*) FROM calls",
            "SELECT ref FROM calls LIMIT 1",
        ],
    );
    assert_eq!(single(&r[0]).as_i64(), Some(GEN_RECORDS as i64));
    assert!(error(&r[1]).contains("ref"), "a hidden column: {}", r[1]);
    // a valid token without a role of this server grants nothing
    let no_roles = mint(&issuer, claims(json!(["other-group"]), now + 600));
    let r = adbc(&uri, bearer(&no_roles), &["SELECT count(*) FROM calls"]);
    assert!(error(&r[0]).contains("permission denied"), "{}", r[0]);
    // expired, signed by another key, for another audience
    let expired = mint(&issuer, claims(json!(["lab-analysts"]), now - 3600));
    let r = adbc(&uri, bearer(&expired), &["SELECT 1"]);
    let e = error(&r[0]);
    assert!(
        e.contains("Unauthenticated") && e.contains("expired"),
        "{e}"
    );
    let forged = mint(&idp(), claims(json!(["lab-analysts"]), now + 600));
    let r = adbc(&uri, bearer(&forged), &["SELECT 1"]);
    let e = error(&r[0]);
    assert!(
        e.contains("Unauthenticated") && e.contains("signature"),
        "{e}"
    );
    let mut elsewhere = claims(json!(["lab-analysts"]), now + 600);
    elsewhere["aud"] = "another-service".into();
    let r = adbc(&uri, bearer(&mint(&issuer, elsewhere)), &["SELECT 1"]);
    assert!(error(&r[0]).contains("audience"), "{}", r[0]);

    // JDBC logs in with the token (`token=`: a handshake with the bearer JWT)
    let port = server.addr.rsplit(':').next().unwrap_or("0").to_string();
    let url = |token: &str| {
        format!("jdbc:arrow-flight-sql://127.0.0.1:{port}/?useEncryption=false&token={token}")
    };
    assert_eq!(
        jdbc(&url(&good), "SELECT count(*) FROM calls"),
        format!("value: {GEN_RECORDS}")
    );
    let refused = jdbc(&url(&expired), "SELECT count(*) FROM calls");
    assert!(
        refused.starts_with("error:") && refused.contains("expired"),
        "{refused}"
    );

    // the audit trail has the logins: accepted (with the mapped role) and refused
    let dir = server.stop();
    let trail = std::fs::read_to_string(dir.path().join("audit.jsonl")).expect("audit trail");
    let logins: Vec<Value> = trail
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON"))
        .filter(|e| e["kind"] == "login")
        .collect();
    assert!(
        logins.iter().any(|e| e["user"] == "carol"
            && e["outcome"] == "ok"
            && e["roles"] == json!(["analyst"])),
        "{trail}"
    );
    assert!(
        logins
            .iter()
            .filter(|e| e["outcome"] == "error" && e["code"] == "UNAUTHENTICATED")
            .count()
            >= 3,
        "{trail}"
    );
}

#[test]
fn mutual_tls_client_certificates() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let client_ext = "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n";
    ca(d, "ca");
    ca(d, "rogue-ca");
    signed(
        d,
        "server",
        "/CN=localhost",
        "ca",
        "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
    );
    signed(d, "robot", "/O=Lab/CN=robot", "ca", client_ext);
    signed(d, "stranger", "/CN=stranger", "ca", client_ext);
    signed(d, "rogue", "/CN=robot", "rogue-ca", client_ext);
    let config = base_config(
        r#"
[tls]
cert = "server.pem"
key = "server.key"
client_ca = "ca.pem"
client_user = "cn"

[audit]
path = "audit.jsonl"
"#,
    ) + "\n[[users]]\nname = \"robot\"\n";
    std::fs::write(d.join("server.toml"), config).expect("config");
    let server = Server::start_with(dir);
    let port = server.addr.rsplit(':').next().unwrap_or("0").to_string();
    let uri = format!("grpc+tls://localhost:{port}");
    let at = |name: &str| format!("@{}", server.dir().join(name).display());
    let with_cert = |who: &str| {
        json!({
            "adbc.flight.sql.client_option.tls_root_certs": at("ca.pem"),
            "adbc.flight.sql.client_option.mtls_cert_chain": at(&format!("{who}.pem")),
            "adbc.flight.sql.client_option.mtls_private_key": at(&format!("{who}.key")),
        })
    };

    // the certificate is the login: robot has no password
    let r = adbc(
        &uri,
        with_cert("robot"),
        &[
            "SELECT count(*) FROM calls",
            "SELECT DISTINCT user FROM system.sessions",
        ],
    );
    assert_eq!(single(&r[0]).as_i64(), Some(GEN_RECORDS as i64));
    assert_eq!(single(&r[1]), "robot");
    // credentials sent over a certified connection still name their user
    let mut alice = with_cert("robot");
    alice["username"] = "alice".into();
    alice["password"] = PASSWORD.into();
    let r = adbc(&uri, alice, &["SELECT DISTINCT user FROM system.sessions"]);
    assert_eq!(single(&r[0]), "alice");
    // a certificate of the right CA naming nobody of this server
    let r = adbc(&uri, with_cert("stranger"), &["SELECT 1"]);
    let e = error(&r[0]);
    assert!(
        e.contains("Unauthenticated") && e.contains("stranger"),
        "{e}"
    );
    // refused in the TLS handshake, before any call: another CA's certificate (naming robot),
    // and none at all (alice's password does not help). TLS 1.3 clients see the refusal as
    // the connection failing (an alert, or a broken pipe when they write first)
    let refused = |e: &str| {
        let e = e.to_lowercase();
        e.contains("certificate") || e.contains("tls") || e.contains("unavailable")
    };
    let r = adbc(&uri, with_cert("rogue"), &["SELECT 1"]);
    assert!(refused(&error(&r[0])), "{}", r[0]);
    let r = adbc(
        &uri,
        json!({"adbc.flight.sql.client_option.tls_root_certs": at("ca.pem"),
               "username": "alice", "password": PASSWORD}),
        &["SELECT 1"],
    );
    assert!(refused(&error(&r[0])), "{}", r[0]);

    let dir = server.stop();
    let trail = std::fs::read_to_string(dir.path().join("audit.jsonl")).expect("audit trail");
    assert!(
        trail.lines().any(|l| {
            let e: Value = serde_json::from_str(l).expect("JSON");
            e["kind"] == "login" && e["user"] == "robot" && e["outcome"] == "ok"
        }),
        "{trail}"
    );
    assert!(
        trail.lines().any(|l| {
            let e: Value = serde_json::from_str(l).expect("JSON");
            e["kind"] == "login" && e["outcome"] == "error" && e["code"] == "UNAUTHENTICATED"
        }),
        "{trail}"
    );
}
