//! Lance tables and their plan nodes as they travel between a client, a Ballista scheduler and
//! its executors: a table as its dataset's location (the scheduler checks the columns when it
//! plans the scan), a scan as the dataset version, columns, filters and limit its planner chose
//! ([`ShippedLanceScan`] re-plans them with Lance where it runs), and a kNN search
//! ([`KnnExec`]) with its query vector and settings. Datasets are reached by path, as VCF files
//! are: every process must see them at the same place.

use std::sync::Arc;

use datafusion::arrow::array::Float32Array;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::logical_plan::from_proto::parse_exprs;
use datafusion_proto::logical_plan::to_proto::serialize_exprs;
use datafusion_proto::protobuf::LogicalExprNode;
use prost::Message;

use super::wire::{decode_error, internal, schema_bytes, schema_of};

use crate::lance::knn::{KnnExec, SearchSettings};
use crate::lance::{DatasetVersion, LanceTable, ShippedLanceScan};

/// A Lance table as it travels.
#[derive(Clone, PartialEq, Message)]
pub(super) struct LanceTableProto {
    /// The dataset's location (absolute path or URI).
    #[prost(string, tag = "1")]
    location: String,
}

/// A Lance scan as it travels.
#[derive(Clone, PartialEq, Message)]
pub(super) struct LanceScanProto {
    #[prost(string, tag = "1")]
    location: String,
    #[prost(uint64, tag = "2")]
    version: u64,
    #[prost(string, repeated, tag = "3")]
    columns: Vec<String>,
    #[prost(message, repeated, tag = "4")]
    filters: Vec<LogicalExprNode>,
    #[prost(uint64, optional, tag = "5")]
    limit: Option<u64>,
    /// The output schema (datafusion-proto's `Schema`, encoded).
    #[prost(bytes = "vec", tag = "6")]
    schema: Vec<u8>,
    #[prost(uint64, tag = "7")]
    partitions: u64,
}

/// A kNN search as it travels.
#[derive(Clone, PartialEq, Message)]
pub(super) struct KnnProto {
    #[prost(string, tag = "1")]
    location: String,
    #[prost(uint64, tag = "2")]
    version: u64,
    #[prost(string, repeated, tag = "3")]
    columns: Vec<String>,
    #[prost(message, repeated, tag = "4")]
    filters: Vec<LogicalExprNode>,
    #[prost(float, repeated, tag = "5")]
    query: Vec<f32>,
    #[prost(bytes = "vec", tag = "6")]
    schema: Vec<u8>,
    #[prost(string, tag = "7")]
    column: String,
    /// Lance's metric name (`cosine`, `l2`, `dot`).
    #[prost(string, tag = "8")]
    metric: String,
    #[prost(uint64, tag = "9")]
    k: u64,
    #[prost(string, optional, tag = "10")]
    index: Option<String>,
    #[prost(string, repeated, tag = "11")]
    segments: Vec<String>,
    #[prost(bool, tag = "12")]
    named: bool,
    #[prost(uint64, optional, tag = "13")]
    nprobes: Option<u64>,
    #[prost(uint32, optional, tag = "14")]
    refine_factor: Option<u32>,
}

/// The bytes of a Lance table.
pub(super) fn encode_table(table: &LanceTable, buf: &mut Vec<u8>) -> Result<()> {
    LanceTableProto {
        location: table.location().to_string(),
    }
    .encode(buf)
    .map_err(internal)
}

/// A Lance table from its bytes, with the columns the query was planned with (checked
/// against the dataset's when the table is scanned).
pub(super) fn decode_table(buf: &[u8], schema: SchemaRef) -> Result<Arc<dyn TableProvider>> {
    let t = LanceTableProto::decode(buf).map_err(|e| decode_error("Lance table", e))?;
    Ok(Arc::new(LanceTable::planned(t.location, schema)))
}

/// The bytes of a Lance scan (as planned, or as received).
pub(super) fn encode_scan(
    scan: &ShippedLanceScan,
    codec: &dyn LogicalExtensionCodec,
    buf: &mut Vec<u8>,
) -> Result<()> {
    LanceScanProto {
        location: scan.location.clone(),
        version: scan.version,
        columns: scan.columns.clone(),
        filters: serialize_exprs(&scan.filters, codec)?,
        limit: scan.limit.map(|l| l as u64),
        schema: schema_bytes(&scan.schema())?,
        partitions: scan.properties().partitioning.partition_count() as u64,
    }
    .encode(buf)
    .map_err(internal)
}

/// A Lance scan from its bytes.
pub(super) fn decode_scan(
    buf: &[u8],
    ctx: &TaskContext,
    codec: &dyn LogicalExtensionCodec,
) -> Result<Arc<dyn ExecutionPlan>> {
    let p = LanceScanProto::decode(buf).map_err(|e| decode_error("Lance scan", e))?;
    Ok(Arc::new(ShippedLanceScan::new(
        p.location,
        p.version,
        p.columns,
        parse_exprs(&p.filters, ctx, codec)?,
        p.limit.map(|l| l as usize),
        schema_of(&p.schema)?,
        p.partitions as usize,
    )))
}

/// The bytes of a kNN search.
pub(super) fn encode_knn(
    knn: &KnnExec,
    codec: &dyn LogicalExtensionCodec,
    buf: &mut Vec<u8>,
) -> Result<()> {
    let s = knn.settings();
    KnnProto {
        location: knn.location().to_string(),
        version: knn.dataset().version(),
        columns: knn.columns().to_vec(),
        filters: serialize_exprs(knn.filters(), codec)?,
        query: knn.query().values().to_vec(),
        schema: schema_bytes(&knn.schema())?,
        column: s.column.clone(),
        metric: crate::lance::index::metric_name(s.metric).to_string(),
        k: s.k as u64,
        index: s.index.clone(),
        segments: s.segments.iter().map(|u| u.to_string()).collect(),
        named: s.named,
        nprobes: s.nprobes.map(|n| n as u64),
        refine_factor: s.refine_factor,
    }
    .encode(buf)
    .map_err(internal)
}

/// A kNN search from its bytes: the same search of the same dataset version.
pub(super) fn decode_knn(
    buf: &[u8],
    ctx: &TaskContext,
    codec: &dyn LogicalExtensionCodec,
) -> Result<Arc<dyn ExecutionPlan>> {
    let p = KnnProto::decode(buf).map_err(|e| decode_error("kNN search", e))?;
    let metric = crate::lance::index::parse_metric(&p.metric)
        .ok_or_else(|| internal(format!("unknown Lance metric '{}'", p.metric)))?;
    let segments = p
        .segments
        .iter()
        .map(|s| uuid::Uuid::parse_str(s).map_err(internal))
        .collect::<Result<Vec<_>>>()?;
    let settings = SearchSettings {
        column: p.column,
        metric,
        k: p.k as usize,
        index: p.index,
        segments,
        named: p.named,
        nprobes: p.nprobes.map(|n| n as usize),
        refine_factor: p.refine_factor,
    };
    let filters: Vec<Expr> = parse_exprs(&p.filters, ctx, codec)?;
    Ok(Arc::new(KnnExec::new(
        p.location.clone(),
        DatasetVersion::At {
            uri: p.location,
            version: p.version,
        },
        p.columns,
        filters,
        Float32Array::from(p.query),
        settings,
        schema_of(&p.schema)?,
    )))
}
