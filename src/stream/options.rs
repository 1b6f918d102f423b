//! `OPTIONS (…)` of a topic table, pulled one by one; anything left over (or an option of the
//! other platform) is an error.
//!
//! | option | platform | values | default |
//! |---|---|---|---|
//! | `format` | both | `json`, `arrow` (Arrow IPC, one row per message) | `json` |
//! | `mode` | both | `snapshot` (earliest → high watermark at query start), `follow` (unbounded) | `snapshot` |
//! | `start` | both | `earliest`, `latest`, or a timestamp (ms since epoch or RFC 3339) | `earliest` |
//! | `group.id` | both | consumer group (Kafka) or consumer name (Iggy) given to the platform; offsets are never committed | `vcfq` |
//! | `on_error` | both | `fail` or `skip` (count and report undecodable messages) | `fail` |
//! | `like` | both | a VCF/BCF file whose columns the messages carry | VCF site columns |
//! | `transactional` | Kafka | `true`: each `INSERT` is one transaction (all or nothing) | `false` |
//! | `transactional.id` | Kafka | a fixed transactional id (then one `INSERT` at a time uses it) | `vcfq-<topic>-<random>`, one per producer |
//! | `partitions`, `replication` | both (`replication`: Kafka) | for a topic that `CREATE` makes because it does not exist | 1, 1 |
//! | `timeout.ms` | both | every call to the platform (metadata, reads, writes, transactions) | 10000 |
//! | `kafka.*` | Kafka | passed to librdkafka without the prefix (`kafka.security.protocol`, `kafka.sasl.username`, `kafka.message.timeout.ms`, …) | |
//! | `user`, `password` | Iggy | credentials (also `iggy://user:password@host:port/…`); never shown in errors or plans | |

use std::collections::HashMap;
use std::time::Duration;

use crate::VcfError;

/// The platform a topic table is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlatformKind {
    /// Apache Kafka (`STORED AS KAFKA`).
    Kafka,
    /// Apache Iggy (`STORED AS IGGY`).
    Iggy,
}

impl PlatformKind {
    /// `KAFKA`, `IGGY`.
    pub fn name(self) -> &'static str {
        match self {
            PlatformKind::Kafka => "KAFKA",
            PlatformKind::Iggy => "IGGY",
        }
    }

    /// `kafka`, `iggy` (the `_platform` value of its rows on a coordinated table).
    pub fn name_lowercase(self) -> &'static str {
        match self {
            PlatformKind::Kafka => "kafka",
            PlatformKind::Iggy => "iggy",
        }
    }
}

/// A password or token: never printed (`Debug` shows `***`).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// How messages are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per message, the row's columns as keys.
    Json,
    /// One Arrow IPC stream (schema + one-row batch) per message.
    ArrowIpc,
}

/// Where a read starts in each partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The oldest message kept.
    Earliest,
    /// The end at query start (with `follow`, only new messages).
    Latest,
    /// The first message at or after this time (ms since the epoch).
    Timestamp(i64),
}

/// What to do with a message that does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Fail the query, naming partition and offset.
    Fail,
    /// Skip it, count it and report the count as a warning.
    Skip,
}

/// The options of a topic table.
#[derive(Debug, Clone)]
pub struct TopicOptions {
    /// Message encoding.
    pub format: Format,
    /// Unbounded reads.
    pub follow: bool,
    /// Start position.
    pub start: Start,
    /// Consumer group id.
    pub group_id: String,
    /// Undecodable messages.
    pub on_error: OnError,
    /// A VCF/BCF whose schema the messages carry.
    pub like: Option<String>,
    /// Each INSERT is a transaction.
    pub transactional: bool,
    /// Transactional id (when transactional).
    pub transactional_id: Option<String>,
    /// Partitions of a topic made by CREATE.
    pub partitions: i32,
    /// Replication factor of a topic made by CREATE.
    pub replication: i32,
    /// Timeout of metadata and transaction calls.
    pub timeout: Duration,
    /// librdkafka settings.
    pub client: Vec<(String, String)>,
    /// User name (Iggy).
    pub user: Option<String>,
    /// Password (Iggy).
    pub password: Option<Secret>,
}

impl Default for TopicOptions {
    fn default() -> Self {
        TopicOptions {
            format: Format::Json,
            follow: false,
            start: Start::Earliest,
            group_id: "vcfq".to_string(),
            on_error: OnError::Fail,
            like: None,
            transactional: false,
            transactional_id: None,
            partitions: 1,
            replication: 1,
            timeout: Duration::from_secs(10),
            client: Vec::new(),
            user: None,
            password: None,
        }
    }
}

fn invalid(key: &str, value: &str, expected: &str) -> VcfError {
    VcfError::Invalid(format!("option '{key}' = '{value}': expected {expected}"))
}

fn parse_bool(key: &str, value: &str) -> Result<bool, VcfError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(invalid(key, value, "true or false")),
    }
}

fn parse_positive(key: &str, value: &str) -> Result<i32, VcfError> {
    value
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| invalid(key, value, "a positive number"))
}

/// Milliseconds since the epoch from digits or an RFC 3339 time.
pub fn parse_timestamp(value: &str) -> Option<i64> {
    if let Ok(ms) = value.trim().parse::<i64>() {
        return Some(ms);
    }
    let ts =
        datafusion::arrow::compute::kernels::cast_utils::string_to_timestamp_nanos(value.trim())
            .ok()?;
    Some(ts / 1_000_000)
}

impl TopicOptions {
    /// Reads `CREATE EXTERNAL TABLE … STORED AS <platform> OPTIONS`.
    pub fn from_sql_options(
        options: &HashMap<String, String>,
        platform: PlatformKind,
    ) -> Result<Self, VcfError> {
        let mut out = TopicOptions::default();
        let only = |wanted: PlatformKind, key: &str| -> Result<(), VcfError> {
            if platform == wanted {
                Ok(())
            } else {
                Err(VcfError::Invalid(format!(
                    "option '{key}' is for STORED AS {} tables, not {}",
                    wanted.name(),
                    platform.name()
                )))
            }
        };
        let mut keys: Vec<&String> = options.keys().collect();
        keys.sort();
        for raw_key in keys {
            let value = &options[raw_key];
            let key = raw_key.strip_prefix("format.").unwrap_or(raw_key);
            match key {
                "format" => {
                    out.format = match value.to_ascii_lowercase().as_str() {
                        "json" => Format::Json,
                        "arrow" | "ipc" | "arrow_ipc" => Format::ArrowIpc,
                        _ => return Err(invalid(key, value, "'json' or 'arrow'")),
                    }
                }
                "mode" => {
                    out.follow = match value.to_ascii_lowercase().as_str() {
                        "snapshot" => false,
                        "follow" => true,
                        _ => return Err(invalid(key, value, "'snapshot' or 'follow'")),
                    }
                }
                "start" => {
                    out.start = match value.to_ascii_lowercase().as_str() {
                        "earliest" => Start::Earliest,
                        "latest" => Start::Latest,
                        _ => Start::Timestamp(parse_timestamp(value).ok_or_else(|| {
                            invalid(key, value, "'earliest', 'latest' or a timestamp")
                        })?),
                    }
                }
                "group.id" => out.group_id = value.clone(),
                "on_error" => {
                    out.on_error = match value.to_ascii_lowercase().as_str() {
                        "fail" => OnError::Fail,
                        "skip" => OnError::Skip,
                        _ => return Err(invalid(key, value, "'fail' or 'skip'")),
                    }
                }
                "like" => out.like = Some(value.clone()),
                "transactional" => {
                    only(PlatformKind::Kafka, key)?;
                    out.transactional = parse_bool(key, value)?
                }
                "transactional.id" => {
                    only(PlatformKind::Kafka, key)?;
                    out.transactional_id = Some(value.clone())
                }
                "partitions" => out.partitions = parse_positive(key, value)?,
                "replication" => {
                    only(PlatformKind::Kafka, key)?;
                    out.replication = parse_positive(key, value)?
                }
                "user" => {
                    only(PlatformKind::Iggy, key)?;
                    out.user = Some(value.clone())
                }
                "password" => {
                    only(PlatformKind::Iggy, key)?;
                    out.password = Some(Secret(value.clone()))
                }
                "timeout.ms" => {
                    out.timeout = Duration::from_millis(
                        value
                            .parse()
                            .map_err(|_| invalid(key, value, "milliseconds"))?,
                    )
                }
                _ => {
                    if let Some(setting) = key.strip_prefix("kafka.") {
                        only(PlatformKind::Kafka, key)?;
                        out.client.push((setting.to_string(), value.clone()));
                    } else {
                        let known = match platform {
                            PlatformKind::Kafka => {
                                "format, mode, start, group.id, on_error, like, transactional, transactional.id, partitions, replication, timeout.ms, kafka.*"
                            }
                            PlatformKind::Iggy => {
                                "format, mode, start, group.id, on_error, like, partitions, timeout.ms, user, password"
                            }
                        };
                        return Err(VcfError::Invalid(format!(
                            "unknown option '{key}' for STORED AS {} (known: {known})",
                            platform.name()
                        )));
                    }
                }
            }
        }
        Ok(out)
    }
}

/// `host:port[,host:port…]/topic` → (bootstrap servers, topic).
pub fn parse_kafka_location(location: &str) -> Result<(String, String), VcfError> {
    let plain = location.strip_prefix("kafka://").unwrap_or(location);
    match plain.rsplit_once('/') {
        Some((servers, topic)) if !servers.is_empty() && !topic.is_empty() => {
            Ok((servers.to_string(), topic.to_string()))
        }
        _ => Err(VcfError::Invalid(format!(
            "kafka location '{location}': expected 'host:port/topic'"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> Result<TopicOptions, VcfError> {
        let map = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TopicOptions::from_sql_options(&map, PlatformKind::Kafka)
    }

    #[test]
    fn options_are_parsed_and_kafka_settings_pass_through() {
        let o = opts(&[
            ("format", "arrow"),
            ("mode", "follow"),
            ("start", "2026-01-01T00:00:00Z"),
            ("kafka.security.protocol", "SASL_SSL"),
            ("on_error", "skip"),
        ])
        .unwrap();
        assert_eq!(o.format, Format::ArrowIpc);
        assert!(o.follow);
        assert_eq!(o.start, Start::Timestamp(1_767_225_600_000));
        assert_eq!(o.on_error, OnError::Skip);
        assert_eq!(
            o.client,
            vec![("security.protocol".to_string(), "SASL_SSL".to_string())]
        );
    }

    #[test]
    fn unknown_options_and_bad_values_are_rejected() {
        let e = opts(&[("formatt", "json")]).unwrap_err().to_string();
        assert!(e.contains("unknown option 'formatt'"), "{e}");
        let e = opts(&[("mode", "live")]).unwrap_err().to_string();
        assert!(e.contains("'snapshot' or 'follow'"), "{e}");
        assert!(opts(&[("partitions", "0")]).is_err());
    }

    #[test]
    fn options_of_the_other_platform_are_rejected_and_passwords_never_print() {
        let map = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let e =
            TopicOptions::from_sql_options(&map(&[("transactional", "true")]), PlatformKind::Iggy)
                .unwrap_err()
                .to_string();
        assert!(
            e.contains("'transactional' is for STORED AS KAFKA tables, not IGGY"),
            "{e}"
        );
        let e = TopicOptions::from_sql_options(&map(&[("kafka.acks", "1")]), PlatformKind::Iggy)
            .unwrap_err()
            .to_string();
        assert!(e.contains("for STORED AS KAFKA"), "{e}");
        let e = opts(&[("password", "x")]).unwrap_err().to_string();
        assert!(e.contains("for STORED AS IGGY tables, not KAFKA"), "{e}");
        let o = TopicOptions::from_sql_options(
            &map(&[("user", "u"), ("password", "hunter2"), ("partitions", "3")]),
            PlatformKind::Iggy,
        )
        .unwrap();
        assert_eq!(o.partitions, 3);
        assert!(!format!("{o:?}").contains("hunter2"));
    }

    #[test]
    fn locations_name_servers_and_topic() {
        assert_eq!(
            parse_kafka_location("a:9092,b:9092/calls").unwrap(),
            ("a:9092,b:9092".to_string(), "calls".to_string())
        );
        assert!(parse_kafka_location("localhost:9092").is_err());
    }
}
