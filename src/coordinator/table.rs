//! The coordinated table (`STORED AS STREAM`), its options, and `vcfq.stream_health`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider, TableProviderFactory};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::sink::DataSinkExec;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{CreateExternalTable, Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

use super::breaker::BreakerConfig;
use super::dedup::Dedup;
use super::health::{self, PlatformHealth};
use super::router::{Lane, Routing};
use super::scan::{CoordinatedExec, CoordinatedRead, OutColumn, VariantColumns};
use super::writer::{CoordinatedSink, Lanes, WriteSettings};
use crate::VcfError;
use crate::stream::codec::{Encoder, GENERATED_COLUMN};
use crate::stream::iggy::IggyPlatform;
use crate::stream::kafka::KafkaPlatform;
use crate::stream::options::{PlatformKind, TopicOptions};
use crate::stream::platform::Platform;
use crate::stream::sink::TopicDataSink;
use crate::stream::table::TopicTable;

/// The options a coordinated table takes itself (the others go to both platforms).
#[derive(Debug, Clone)]
pub struct CoordinatedOptions {
    /// `iggy://…` or `kafka://…` of each lane.
    pub locations: [String; 2],
    /// Breakers of both platforms.
    pub breaker: BreakerConfig,
    /// Routing, retries, window.
    pub write: WriteSettings,
    /// Distinct ids (and, with `'dedup' 'variant'`, keys) one read keeps at most.
    pub max_ids: usize,
    /// Which rows are the same row.
    pub dedup: Dedup,
}

const OWN: &str = "primary, fallback, routing, breaker.failures, breaker.open_ms, breaker.probes, \
                   retry.max, retry.backoff_ms, ack.timeout_ms, window, dedup, dedup.max_ids";

impl CoordinatedOptions {
    /// Splits `options` into the coordinator's and those of the platforms.
    pub fn parse(
        options: &HashMap<String, String>,
    ) -> Result<(Self, HashMap<String, String>), VcfError> {
        let mut primary = None;
        let mut fallback = None;
        let mut breaker = BreakerConfig::default();
        let mut write = WriteSettings {
            routing: Routing::Failover,
            retry_max: 2,
            retry_backoff: Duration::from_millis(50),
            ack_timeout: Duration::from_secs(2),
            window: 65_536,
        };
        let mut max_ids = 20_000_000usize;
        let mut dedup = Dedup::Message;
        let mut rest = HashMap::new();
        let invalid = |key: &str, value: &str, want: &str| {
            VcfError::Invalid(format!("option '{key}' = '{value}': expected {want}"))
        };
        let number = |key: &str, value: &str| -> Result<u64, VcfError> {
            value
                .parse()
                .map_err(|_| invalid(key, value, "a whole number"))
        };
        for (raw, value) in options {
            let key = raw.strip_prefix("format.").unwrap_or(raw);
            match key {
                "primary" => primary = Some(value.clone()),
                "fallback" => fallback = Some(value.clone()),
                "routing" => {
                    write.routing = match value.to_ascii_lowercase().as_str() {
                        "failover" => Routing::Failover,
                        "health" => Routing::Health,
                        _ => return Err(invalid(key, value, "failover or health")),
                    }
                }
                "breaker.failures" => breaker.failures = number(key, value)?.max(1) as u32,
                "breaker.open_ms" => breaker.open_for = Duration::from_millis(number(key, value)?),
                "breaker.probes" => breaker.probes = number(key, value)?.max(1) as u32,
                "retry.max" => write.retry_max = number(key, value)? as u32,
                "retry.backoff_ms" => {
                    write.retry_backoff = Duration::from_millis(number(key, value)?)
                }
                "ack.timeout_ms" => {
                    write.ack_timeout = Duration::from_millis(number(key, value)?.max(1))
                }
                "window" => write.window = number(key, value)?.max(1) as usize,
                "dedup" => {
                    dedup = match value.as_str() {
                        "message" => Dedup::Message,
                        "variant" => Dedup::Variant,
                        _ => {
                            return Err(invalid(
                                key,
                                value,
                                "message (one row per message id) or variant (one row per \
                                 variant key, the last written)",
                            ));
                        }
                    }
                }
                "dedup.max_ids" => max_ids = number(key, value)?.max(1) as usize,
                _ => {
                    rest.insert(raw.clone(), value.clone());
                }
            }
        }
        let missing = |what: &str| {
            VcfError::Invalid(format!(
                "a STREAM table needs option '{what}' (iggy://… or kafka://…); its own options: {OWN}"
            ))
        };
        let primary = primary.ok_or_else(|| missing("primary"))?;
        let fallback = fallback.ok_or_else(|| missing("fallback"))?;
        Ok((
            CoordinatedOptions {
                locations: [primary, fallback],
                breaker,
                write,
                max_ids,
                dedup,
            },
            rest,
        ))
    }
}

/// The platform of a `iggy://…` / `kafka://…` location and the location its table takes.
fn platform_of(location: &str) -> Result<(PlatformKind, String), VcfError> {
    if location.starts_with("iggy://") {
        Ok((PlatformKind::Iggy, location.to_string()))
    } else if let Some(rest) = location.strip_prefix("kafka://") {
        Ok((PlatformKind::Kafka, rest.to_string()))
    } else {
        Err(VcfError::Invalid(format!(
            "a STREAM table's platforms are iggy://user:pass@host:port/stream/topic or \
             kafka://host:port/topic, not '{}'",
            crate::stream::iggy::redact(location)
        )))
    }
}

/// The options meant for one platform: the shared ones, plus its own (`kafka.*`; `user`,
/// `password`).
fn options_for(kind: PlatformKind, rest: &HashMap<String, String>) -> HashMap<String, String> {
    rest.iter()
        .filter(|(k, _)| {
            let key = k.strip_prefix("format.").unwrap_or(k);
            match kind {
                PlatformKind::Kafka => key != "user" && key != "password",
                PlatformKind::Iggy => {
                    !key.starts_with("kafka.")
                        && key != "transactional"
                        && key != "transactional.id"
                        && key != "replication"
                }
            }
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A table over a primary and a fallback platform.
#[derive(Debug)]
pub struct CoordinatedTable {
    name: String,
    /// The primary's and the fallback's topic tables (with `_id` on both).
    tables: [TopicTable; 2],
    lanes: Arc<Lanes>,
    options: CoordinatedOptions,
    /// The topic tables' columns, then `_platform`.
    schema: SchemaRef,
}

impl CoordinatedTable {
    /// Opens both platforms (each must answer; missing topics are made).
    pub async fn open(
        name: &str,
        options: &HashMap<String, String>,
        declared: Option<SchemaRef>,
    ) -> Result<Self> {
        let (options, rest) = CoordinatedOptions::parse(options)?;
        let mut tables = Vec::new();
        let mut health = Vec::new();
        let mut unreachable = Vec::new();
        for (lane, location) in [Lane::Primary, Lane::Fallback]
            .iter()
            .zip(&options.locations)
        {
            let (kind, location) = platform_of(location)?;
            let topic = TopicOptions::from_sql_options(&options_for(kind, &rest), kind)?;
            let platform: Arc<dyn Platform> = match kind {
                PlatformKind::Kafka => Arc::new(KafkaPlatform::new(&location, topic.clone())?),
                PlatformKind::Iggy => Arc::new(IggyPlatform::new(&location, topic.clone())?),
            };
            let table =
                TopicTable::open_with_ids(Arc::clone(&platform), topic, declared.clone(), true)?;
            let lane_health = PlatformHealth::register(
                name,
                *lane,
                kind.name_lowercase(),
                platform.target(),
                options.breaker,
            );
            // one platform down is what the table is for: it is made, with that platform's
            // breaker counting the failure; a permanent error (wrong credentials, bad topic)
            // is the statement's
            if let Err(e) = platform.ensure_topic().await {
                if !e.retryable {
                    return Err(DataFusionError::Plan(format!(
                        "coordinated table {name}: {} {e}",
                        lane.name()
                    )));
                }
                log::warn!("coordinated table {name}: {} {e}", lane.name());
                unreachable.push(e.to_string());
                lane_health.failed(0, &e.to_string(), health::now());
            }
            health.push(lane_health);
            tables.push(table);
        }
        if unreachable.len() == 2 {
            return Err(DataFusionError::Plan(format!(
                "coordinated table {name}: no platform answers: primary {}; fallback {}",
                unreachable[0], unreachable[1]
            )));
        }
        let [primary, fallback]: [TopicTable; 2] = tables.try_into().expect("two lanes");
        let [hp, hf]: [Arc<PlatformHealth>; 2] = health.try_into().expect("two lanes");
        if primary.variant().fields() != fallback.variant().fields() {
            return Err(DataFusionError::Plan(format!(
                "coordinated table {name}: the platforms' columns differ"
            )));
        }
        let base = TableProvider::schema(&primary);
        let mut fields: Vec<Field> = base.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(
            Field::new("_platform", DataType::Utf8, true).with_metadata(HashMap::from([(
                GENERATED_COLUMN.to_string(),
                "true".to_string(),
            )])),
        );
        let schema = Arc::new(Schema::new_with_metadata(fields, base.metadata().clone()));
        let lanes = Arc::new(Lanes {
            sinks: [primary.platform().sink()?, fallback.platform().sink()?],
            health: [hp, hf],
        });
        Ok(CoordinatedTable {
            name: name.to_string(),
            tables: [primary, fallback],
            lanes,
            options,
            schema,
        })
    }

    fn follow(&self) -> bool {
        self.tables[0].options().follow
    }
}

/// Whether `expr` names `_platform` (which the platforms' scans do not have).
fn names_platform(expr: &Expr) -> bool {
    expr.column_refs().iter().any(|c| c.name == "_platform")
}

#[async_trait]
impl TableProvider for CoordinatedTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        let answers = self.tables[0].supports_filters_pushdown(filters)?;
        Ok(filters
            .iter()
            .zip(answers)
            .map(|(f, answer)| {
                if names_platform(f) {
                    TableProviderFilterPushDown::Unsupported
                } else {
                    answer
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let child_len = self.schema.fields().len() - 1;
        let child_schema = TableProvider::schema(&self.tables[0]);
        let index_of = |name: &str| {
            child_schema
                .index_of(name)
                .map_err(|e| DataFusionError::Internal(e.to_string()))
        };
        let id_column = index_of("_id")?;
        let variant = self.options.dedup == Dedup::Variant;
        if variant && self.follow() {
            return Err(DataFusionError::Plan(format!(
                "coordinated table {}: 'dedup' 'variant' reads a snapshot (the last row of a \
                 variant is known only once all are read); follow it with 'dedup' 'message'",
                self.name
            )));
        }
        let variant_columns = if variant {
            Some([
                index_of("_key")?,
                index_of("_timestamp")?,
                index_of("_offset")?,
            ])
        } else {
            None
        };
        let wanted: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..=child_len).collect(),
        };
        // the children read the wanted columns and `_id`
        let mut child_projection: Vec<usize> =
            wanted.iter().copied().filter(|i| *i < child_len).collect();
        child_projection.sort_unstable();
        child_projection.dedup();
        for needed in std::iter::once(id_column).chain(variant_columns.into_iter().flatten()) {
            if !child_projection.contains(&needed) {
                child_projection.push(needed);
            }
        }
        let at = |column: usize| {
            child_projection
                .iter()
                .position(|c| *c == column)
                .expect("added above")
        };
        let variant = variant_columns.map(|[key, timestamp, offset]| VariantColumns {
            key_at: at(key),
            timestamp_at: at(timestamp),
            offset_at: at(offset),
        });
        let columns: Vec<OutColumn> = wanted
            .iter()
            .map(|i| match child_projection.iter().position(|c| c == i) {
                Some(at) => OutColumn::Child(at),
                None => OutColumn::Platform,
            })
            .collect();
        let id_at = at(id_column);
        let filters: Vec<Expr> = filters
            .iter()
            .filter(|f| !names_platform(f))
            .cloned()
            .collect();
        let mut children = Vec::new();
        for table in &self.tables {
            children.push(
                table
                    .scan(state, Some(&child_projection), &filters, None)
                    .await?,
            );
        }
        let [primary, fallback]: [Arc<dyn ExecutionPlan>; 2] =
            children.try_into().expect("two lanes");
        let schema = Arc::new(self.schema.project(&wanted)?);
        let read = CoordinatedRead {
            name: self.name.clone(),
            platforms: [self.lanes.health[0].platform, self.lanes.health[1].platform],
            id_at,
            columns,
            variant,
            max_ids: self.options.max_ids,
            follow: self.follow(),
            limit,
            schema,
        };
        Ok(Arc::new(CoordinatedExec::new(read, [primary, fallback])))
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if insert_op != InsertOp::Append {
            return Err(DataFusionError::Plan(format!(
                "coordinated table {}: a stream can only be appended to (INSERT INTO), not {insert_op}",
                self.name
            )));
        }
        let sink = CoordinatedSink {
            name: format!("coordinated table {}", self.name),
            lanes: Arc::clone(&self.lanes),
            settings: self.options.write,
        };
        let encoder = Encoder::new(
            self.tables[0].options().format,
            Arc::clone(self.tables[0].variant()),
        );
        let data_sink = TopicDataSink::new(Arc::new(sink), encoder, Arc::clone(&self.schema));
        Ok(Arc::new(DataSinkExec::new(
            input,
            Arc::new(data_sink),
            None,
        )))
    }
}

/// Makes coordinated tables: `CREATE EXTERNAL TABLE t STORED AS STREAM LOCATION 't' OPTIONS
/// ('primary' …, 'fallback' …)`.
#[derive(Debug, Clone, Copy)]
pub struct CoordinatedTableFactory;

#[async_trait]
impl TableProviderFactory for CoordinatedTableFactory {
    async fn create(
        &self,
        _state: &dyn Session,
        cmd: &CreateExternalTable,
    ) -> Result<Arc<dyn TableProvider>> {
        let declared: Schema = cmd.schema.as_arrow().clone();
        let declared = (!declared.fields().is_empty()).then(|| Arc::new(declared));
        Ok(Arc::new(
            CoordinatedTable::open(cmd.name.table(), &cmd.options, declared).await?,
        ))
    }
}

/// `vcfq.stream_health`: one row per platform of every coordinated table, as of the query.
#[derive(Debug, Default)]
pub struct StreamHealthTable;

#[async_trait]
impl TableProvider for StreamHealthTable {
    fn schema(&self) -> SchemaRef {
        health::schema()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let batch = health::snapshot();
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            health::schema(),
            projection.cloned(),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn own_options_are_taken_and_the_rest_go_to_the_platforms() {
        let (o, rest) = CoordinatedOptions::parse(&opts(&[
            ("primary", "iggy://u:p@h:1/s/t"),
            ("format.fallback", "kafka://h:2/t"),
            ("breaker.failures", "5"),
            ("breaker.open_ms", "250"),
            ("routing", "health"),
            ("window", "100"),
            ("like", "x.vcf"),
            ("kafka.linger.ms", "1"),
            ("user", "u"),
        ]))
        .unwrap();
        assert_eq!(
            o.locations,
            [
                "iggy://u:p@h:1/s/t".to_string(),
                "kafka://h:2/t".to_string()
            ]
        );
        assert_eq!(o.breaker.failures, 5);
        assert_eq!(o.breaker.open_for, Duration::from_millis(250));
        assert_eq!(o.write.routing, Routing::Health);
        assert_eq!(o.write.window, 100);
        assert_eq!(rest.len(), 3);
        let kafka = options_for(PlatformKind::Kafka, &rest);
        assert!(kafka.contains_key("kafka.linger.ms") && !kafka.contains_key("user"));
        let iggy = options_for(PlatformKind::Iggy, &rest);
        assert!(iggy.contains_key("user") && !iggy.contains_key("kafka.linger.ms"));
    }

    #[test]
    fn bad_or_missing_options_are_errors() {
        let e = CoordinatedOptions::parse(&opts(&[("primary", "iggy://h:1/s/t")])).unwrap_err();
        assert!(e.to_string().contains("needs option 'fallback'"), "{e}");
        let e = CoordinatedOptions::parse(&opts(&[
            ("primary", "a"),
            ("fallback", "b"),
            ("routing", "random"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("failover or health"), "{e}");
        let e = CoordinatedOptions::parse(&opts(&[
            ("primary", "a"),
            ("fallback", "b"),
            ("dedup", "row"),
        ]))
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("message (one row per message id) or variant"),
            "{e}"
        );
        assert!(platform_of("http://h/t").is_err());
        assert_eq!(
            platform_of("kafka://h:1/t").unwrap(),
            (PlatformKind::Kafka, "h:1/t".to_string())
        );
    }
}
