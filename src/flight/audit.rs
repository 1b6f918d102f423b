//! The audit trail of `vcfq serve`: one JSON line per statement and per login attempt,
//! appended to a file. Each line carries `prev`, the SHA-256 of the line before it (64 zeros
//! for the first), and `seq`, its number from 0, so [`verify`] finds a line that was edited,
//! removed or inserted: the chain breaks at the next line. Removing lines from the end leaves
//! a shorter valid chain; `vcfq audit verify` prints the last hash, which a log shipper or a
//! periodic copy elsewhere anchors.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// The `prev` of the first line.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How a statement or login ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It succeeded.
    Ok,
    /// The grants or file roots refused it.
    Denied(String),
    /// It failed: the gRPC code and the message.
    Error(String, String),
}

/// One event of the trail (what [`AuditLog::append`] writes, plus time, `seq` and `prev`).
#[derive(Debug, Clone, Default)]
pub struct Event {
    /// `statement`, `prepare` or `login`.
    pub kind: &'static str,
    /// The user (`None`: anonymous).
    pub user: Option<String>,
    /// The user's roles.
    pub roles: Vec<String>,
    /// The client's address.
    pub peer: String,
    /// The session's id (not its token).
    pub session: Option<u64>,
    /// The statement's id within the session.
    pub statement: Option<u64>,
    /// The SQL text.
    pub sql: Option<String>,
    /// Bound parameter rows, as text.
    pub params: Vec<Vec<String>>,
    /// Tables and paths the statement touches.
    pub objects: Vec<String>,
    /// Rows returned or written.
    pub rows: Option<u64>,
    /// From the request to the last row.
    pub duration: Duration,
    /// How it ended.
    pub outcome: Option<Outcome>,
}

/// The trail file, appended to by every request (one writer at a time).
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    tail: Mutex<Tail>,
}

#[derive(Debug)]
struct Tail {
    file: File,
    prev: String,
    seq: u64,
}

impl AuditLog {
    /// Opens (or creates) the trail at `path`, continuing the chain of its last line.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let (mut prev, mut seq) = (GENESIS.to_string(), 0);
        if let Ok(existing) = File::open(path) {
            for line in BufReader::new(existing).lines() {
                let line = line?;
                prev = hash(&line);
                seq += 1;
            }
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(AuditLog {
            path: path.to_path_buf(),
            tail: Mutex::new(Tail { file, prev, seq }),
        })
    }

    /// Where the trail is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event; an I/O error is returned (the server reports it and refuses the
    /// request rather than run it unrecorded).
    pub fn append(&self, event: &Event) -> std::io::Result<()> {
        let mut tail = self.tail.lock().unwrap_or_else(|p| p.into_inner());
        let mut record = Map::new();
        record.insert("seq".into(), json!(tail.seq));
        record.insert("time".into(), json!(rfc3339(SystemTime::now())));
        record.insert("kind".into(), json!(event.kind));
        record.insert("user".into(), json!(event.user));
        record.insert("roles".into(), json!(event.roles));
        record.insert("peer".into(), json!(event.peer));
        record.insert("session".into(), json!(event.session));
        record.insert("statement".into(), json!(event.statement));
        record.insert("sql".into(), json!(event.sql));
        record.insert("params".into(), json!(event.params));
        record.insert("objects".into(), json!(event.objects));
        record.insert("rows".into(), json!(event.rows));
        record.insert(
            "duration_ms".into(),
            json!((event.duration.as_secs_f64() * 1e6).round() / 1e3),
        );
        let (outcome, code, error) = match &event.outcome {
            Some(Outcome::Ok) | None => ("ok", None, None),
            Some(Outcome::Denied(message)) => ("denied", Some("PERMISSION_DENIED"), Some(message)),
            Some(Outcome::Error(code, message)) => ("error", Some(code.as_str()), Some(message)),
        };
        record.insert("outcome".into(), json!(outcome));
        record.insert("code".into(), json!(code));
        record.insert("error".into(), json!(error));
        record.insert("prev".into(), json!(tail.prev));
        let line = Value::Object(record).to_string();
        tail.file.write_all(format!("{line}\n").as_bytes())?;
        tail.prev = hash(&line);
        tail.seq += 1;
        Ok(())
    }
}

/// A trail that verified: its number of records and the hash of its last line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Records read.
    pub records: u64,
    /// SHA-256 of the last line (the `prev` the next line will carry).
    pub head: String,
}

/// Checks a trail's chain; the error names the first line (1-based) where it breaks.
pub fn verify(path: &Path) -> Result<Verified, String> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (mut prev, mut seq) = (GENESIS.to_string(), 0u64);
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let n = i + 1;
        let line = line.map_err(|e| format!("{}:{n}: {e}", path.display()))?;
        let record: Value = serde_json::from_str(&line)
            .map_err(|e| format!("{}:{n}: not a JSON record ({e})", path.display()))?;
        let got_prev = record.get("prev").and_then(Value::as_str).unwrap_or("");
        if got_prev != prev {
            return Err(format!(
                "{}:{n}: the chain is broken: line {} was changed, removed or inserted",
                path.display(),
                n.saturating_sub(1).max(1)
            ));
        }
        if record.get("seq").and_then(Value::as_u64) != Some(seq) {
            return Err(format!(
                "{}:{n}: record {seq} expected here, found {}",
                path.display(),
                record
                    .get("seq")
                    .map_or("none".to_string(), Value::to_string)
            ));
        }
        prev = hash(&line);
        seq += 1;
    }
    Ok(Verified {
        records: seq,
        head: prev,
    })
}

fn hash(line: &str) -> String {
    let digest = Sha256::digest(line.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest.iter() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// `2026-12-04T15:20:01.123Z`.
fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // civil date from days since 1970-01-01 (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(sql: &str) -> Event {
        Event {
            kind: "statement",
            user: Some("alice".into()),
            sql: Some(sql.into()),
            outcome: Some(Outcome::Ok),
            ..Default::default()
        }
    }

    #[test]
    fn a_chain_survives_reopening_and_any_edit_breaks_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path).unwrap();
        log.append(&event("SELECT 1")).unwrap();
        log.append(&event("SELECT 2")).unwrap();
        drop(log);
        let log = AuditLog::open(&path).unwrap();
        log.append(&Event {
            outcome: Some(Outcome::Denied(
                "permission denied: select on table 'calls'".into(),
            )),
            ..event("SELECT * FROM calls")
        })
        .unwrap();
        let good = verify(&path).unwrap();
        assert_eq!(good.records, 3);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[2].contains("\"outcome\":\"denied\""), "{}", lines[2]);

        let tampered = dir.path().join("t.jsonl");
        let write = |lines: &[String]| std::fs::write(&tampered, lines.join("\n") + "\n").unwrap();
        let mut edited: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        edited[0] = edited[0].replace("SELECT 1", "SELECT 9");
        write(&edited);
        let e = verify(&tampered).unwrap_err();
        assert!(e.contains(":2: the chain is broken: line 1"), "{e}");

        let mut removed: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        removed.remove(1);
        write(&removed);
        let e = verify(&tampered).unwrap_err();
        assert!(e.contains(":2: the chain is broken"), "{e}");
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_399_999_123);
        assert_eq!(rfc3339(t), "2026-12-04T15:59:59.123Z");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }
}
