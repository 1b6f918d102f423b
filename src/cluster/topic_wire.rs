//! Topic tables (Kafka, Iggy) and their scans as they travel between a client, a Ballista
//! scheduler and its executors. A table travels as what CREATE said (platform, LOCATION,
//! OPTIONS: credentials included, so a cluster's network must be trusted as the brokers' is)
//! and its message columns; the scheduler plans its scan (it takes the snapshot's end offsets
//! then), and each executor reads the partition ranges of its task from the brokers itself.
//! Follow-mode tables and tables CREATE did not make (a coordinated table's members) stay on
//! the client ([`travels`]).

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::DataFusionError;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::physical_plan::PhysicalExtensionCodec;
use datafusion_proto::physical_plan::from_proto::parse_physical_expr;
use datafusion_proto::physical_plan::to_proto::serialize_physical_expr;
use datafusion_proto::protobuf::PhysicalExprNode;
use prost::Message;

use super::wire::{decode_error, internal, schema_bytes, schema_of};

use crate::stream::factory::reopen;
use crate::stream::options::PlatformKind;
use crate::stream::platform::PartitionRange;
use crate::stream::scan::TopicExec;
use crate::stream::table::{TopicOrigin, TopicTable};

/// A topic table as it travels.
#[derive(Clone, PartialEq, Message)]
pub(super) struct TopicTableProto {
    /// `kafka` or `iggy`.
    #[prost(string, tag = "1")]
    platform: String,
    #[prost(string, tag = "2")]
    location: String,
    #[prost(string, repeated, tag = "3")]
    option_names: Vec<String>,
    #[prost(string, repeated, tag = "4")]
    option_values: Vec<String>,
    /// The message columns (datafusion-proto's `Schema`, encoded).
    #[prost(bytes = "vec", tag = "5")]
    variant: Vec<u8>,
    #[prost(bool, tag = "6")]
    ids: bool,
}

/// A partition range as it travels.
#[derive(Clone, PartialEq, Message)]
pub(super) struct RangeProto {
    #[prost(int32, tag = "1")]
    partition: i32,
    #[prost(int64, tag = "2")]
    start: i64,
    #[prost(int64, optional, tag = "3")]
    end: Option<i64>,
}

/// One reader's partition ranges.
#[derive(Clone, PartialEq, Message)]
pub(super) struct GroupProto {
    #[prost(message, repeated, tag = "1")]
    ranges: Vec<RangeProto>,
}

/// A topic scan as it travels.
#[derive(Clone, PartialEq, Message)]
pub(super) struct TopicScanProto {
    #[prost(message, optional, tag = "1")]
    table: Option<TopicTableProto>,
    #[prost(message, repeated, tag = "2")]
    groups: Vec<GroupProto>,
    #[prost(bool, tag = "3")]
    projected: bool,
    #[prost(uint64, repeated, tag = "4")]
    projection: Vec<u64>,
    #[prost(message, optional, tag = "5")]
    predicate: Option<PhysicalExprNode>,
    #[prost(uint64, optional, tag = "6")]
    limit: Option<u64>,
}

/// Whether a topic table can be read on a cluster: made by CREATE, and a snapshot (a
/// followed topic never ends, and a cluster's stages wait for the one before to end).
pub fn travels(table: &TopicTable) -> bool {
    table.origin().is_some() && !table.options().follow
}

fn table_proto(table: &TopicTable) -> Result<TopicTableProto> {
    let origin = table.origin().ok_or_else(|| {
        DataFusionError::NotImplemented(format!(
            "{}: a topic table not made by CREATE EXTERNAL TABLE cannot be sent to a cluster",
            table.target()
        ))
    })?;
    Ok(TopicTableProto {
        platform: origin.kind.name_lowercase().to_string(),
        location: origin.location.clone(),
        option_names: origin.options.iter().map(|(k, _)| k.clone()).collect(),
        option_values: origin.options.iter().map(|(_, v)| v.clone()).collect(),
        variant: schema_bytes(table.variant())?,
        ids: table.has_ids(),
    })
}

fn open_table(t: &TopicTableProto) -> Result<TopicTable> {
    let kind = match t.platform.as_str() {
        "kafka" => PlatformKind::Kafka,
        "iggy" => PlatformKind::Iggy,
        other => return Err(internal(format!("unknown streaming platform '{other}'"))),
    };
    let variant = schema_of(&t.variant)?;
    let origin = TopicOrigin {
        kind,
        location: t.location.clone(),
        options: t
            .option_names
            .iter()
            .cloned()
            .zip(t.option_values.iter().cloned())
            .collect(),
    };
    reopen(origin, variant, t.ids)
}

/// The bytes of a topic table.
pub(super) fn encode_table(table: &TopicTable, buf: &mut Vec<u8>) -> Result<()> {
    table_proto(table)?.encode(buf).map_err(internal)
}

/// A topic table from its bytes; its columns must be those the query was planned with.
pub(super) fn decode_table(buf: &[u8], schema: &SchemaRef) -> Result<Arc<dyn TableProvider>> {
    let t = TopicTableProto::decode(buf).map_err(|e| decode_error("topic table", e))?;
    let table = open_table(&t)?;
    if table.schema().fields() != schema.fields() {
        return Err(DataFusionError::Execution(format!(
            "{}: the topic table's columns are not the ones the query was planned with",
            table.target()
        )));
    }
    Ok(Arc::new(table))
}

/// The bytes of a topic scan.
pub(super) fn encode_scan(
    scan: &TopicExec,
    codec: &dyn PhysicalExtensionCodec,
    buf: &mut Vec<u8>,
) -> Result<()> {
    TopicScanProto {
        table: Some(table_proto(scan.table())?),
        groups: scan
            .groups()
            .iter()
            .map(|g| GroupProto {
                ranges: g
                    .iter()
                    .map(|r| RangeProto {
                        partition: r.partition,
                        start: r.start,
                        end: r.end,
                    })
                    .collect(),
            })
            .collect(),
        projected: scan.projection().is_some(),
        projection: scan
            .projection()
            .unwrap_or_default()
            .iter()
            .map(|&i| i as u64)
            .collect(),
        predicate: scan
            .predicate()
            .map(|p| serialize_physical_expr(p, codec))
            .transpose()?,
        limit: scan.limit().map(|l| l as u64),
    }
    .encode(buf)
    .map_err(internal)
}

/// A topic scan from its bytes: the same partition ranges, read from here.
pub(super) fn decode_scan(
    buf: &[u8],
    ctx: &TaskContext,
    codec: &dyn PhysicalExtensionCodec,
) -> Result<Arc<dyn ExecutionPlan>> {
    let p = TopicScanProto::decode(buf).map_err(|e| decode_error("topic scan", e))?;
    let t = p
        .table
        .as_ref()
        .ok_or_else(|| internal("a topic scan without its table"))?;
    let table = open_table(t)?;
    let predicate = p
        .predicate
        .as_ref()
        .map(|e| parse_physical_expr(e, ctx, &table.schema(), codec))
        .transpose()?;
    let groups = p
        .groups
        .iter()
        .map(|g| {
            g.ranges
                .iter()
                .map(|r| PartitionRange {
                    partition: r.partition,
                    start: r.start,
                    end: r.end,
                })
                .collect()
        })
        .collect();
    let projection = p
        .projected
        .then(|| p.projection.iter().map(|&i| i as usize).collect());
    Ok(Arc::new(TopicExec::with_groups(
        table,
        groups,
        projection,
        predicate,
        p.limit.map(|l| l as usize),
    )?))
}
