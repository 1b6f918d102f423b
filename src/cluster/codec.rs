//! The codecs that ship vcfq's tables and scans between a client, a Ballista scheduler and its
//! executors: VCF, Lance and topic tables in logical plans ([`VcfLogicalCodec`]), VCF scans,
//! Lance scans, kNN searches and topic scans in physical plans ([`VcfPhysicalCodec`]; the
//! Lance and topic parts are in `lance_wire` and `topic_wire`). Everything else goes to
//! Ballista's own codecs (its shuffle operators, DataFusion's file formats), behind a
//! one-byte tag that says whose bytes follow.
//!
//! A VCF table travels as its files (absolute paths: executors reach them through a shared
//! filesystem, with each file's size and modification time, checked there), its options and
//! the INFO/FORMAT fields it decodes; the receiving process reads the header again. A scan
//! travels as what its planning chose ([`ScanSpec`]) and runs ([`ScanOptions`]); the executor
//! plans the same scan from the same files and checks that it came out with as many
//! partitions.
//!
//! Functions travel by name: every process registers vcfq's UDFs and table functions.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::{DataFusionError, TableReference};
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Extension, LogicalPlan};
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};
use datafusion_proto::logical_plan::{DefaultLogicalExtensionCodec, LogicalExtensionCodec};
use datafusion_proto::physical_plan::PhysicalExtensionCodec;
use datafusion_proto::physical_plan::from_proto::parse_physical_expr;
use datafusion_proto::physical_plan::to_proto::serialize_physical_expr;
use datafusion_proto::protobuf::PhysicalExprNode;
use prost::Message;

use super::wire::{decode_error, internal};
use super::{lance_wire, topic_wire};
use crate::error::mark_for_client;
use crate::lance::knn::KnnExec;
use crate::lance::table::LanceScanExec;
use crate::lance::{LanceTable, ShippedLanceScan};
use crate::stamp::{FileStamp, check_unchanged};
use crate::stream::scan::TopicExec;
use crate::stream::table::TopicTable;
use crate::vcf::exec::{ScanOptions, ScanSpec, VcfExec};
use crate::vcf::{Layout, Region, VcfOptions, VcfTable};

/// The tag of a VCF table or scan that vcfq's codec wrote.
const VCFQ: u8 = b'V';
/// The tag of a Lance table or scan.
const LANCE: u8 = b'L';
/// The tag of a kNN search of a Lance table.
const KNN: u8 = b'K';
/// The tag of a topic table or scan.
const TOPIC: u8 = b'T';
/// The tag of bytes that Ballista's codec wrote.
const BALLISTA: u8 = b'B';

/// A VCF table as it travels.
#[derive(Clone, PartialEq, Message)]
struct TableProto {
    /// Absolute paths, in table order.
    #[prost(string, repeated, tag = "1")]
    files: Vec<String>,
    /// The table's region option.
    #[prost(message, optional, tag = "2")]
    region: Option<RegionProto>,
    /// The samples option (`all_samples` when there is none).
    #[prost(string, repeated, tag = "3")]
    samples: Vec<String>,
    #[prost(bool, tag = "4")]
    all_samples: bool,
    /// The long layout (`vcf_genotypes`) rather than the wide one.
    #[prost(bool, tag = "5")]
    long: bool,
    #[prost(uint64, tag = "6")]
    infer_records: u64,
    /// The INFO fields of its `info` struct.
    #[prost(string, repeated, tag = "7")]
    infos: Vec<String>,
    /// The FORMAT fields of its `genotypes` struct.
    #[prost(string, repeated, tag = "8")]
    formats: Vec<String>,
    /// Each file's size when the table was opened where the query was planned.
    #[prost(uint64, repeated, tag = "9")]
    sizes: Vec<u64>,
    /// Each file's modification time then (nanoseconds since the Unix epoch).
    #[prost(int64, repeated, tag = "10")]
    modified_ns: Vec<i64>,
}

/// A region as it travels (positions as they are, so POS=0 and open ends survive).
#[derive(Clone, PartialEq, Message)]
struct RegionProto {
    #[prost(string, tag = "1")]
    chrom: String,
    #[prost(int64, tag = "2")]
    start: i64,
    #[prost(int64, tag = "3")]
    end: i64,
}

/// A VCF scan as it travels.
#[derive(Clone, PartialEq, Message)]
struct ScanProto {
    #[prost(message, optional, tag = "1")]
    table: Option<TableProto>,
    #[prost(uint64, repeated, tag = "2")]
    indices: Vec<u64>,
    #[prost(uint64, tag = "3")]
    outputs: u64,
    #[prost(uint64, repeated, tag = "4")]
    selected: Vec<u64>,
    /// Whether `regions` applies (an empty list with it excludes everything).
    #[prost(bool, tag = "5")]
    has_regions: bool,
    #[prost(message, repeated, tag = "6")]
    regions: Vec<RegionProto>,
    #[prost(message, optional, tag = "7")]
    predicate: Option<PhysicalExprNode>,
    #[prost(uint64, tag = "8")]
    min_split_bytes: u64,
    #[prost(uint64, optional, tag = "9")]
    limit: Option<u64>,
    #[prost(bool, tag = "10")]
    skip_errors: bool,
    #[prost(uint64, tag = "11")]
    threads: u64,
    #[prost(bool, tag = "12")]
    preserve_order: bool,
    /// The partitions the scan had where it was planned.
    #[prost(uint64, tag = "13")]
    partitions: u64,
    /// At most this many partitions when order need not be kept.
    #[prost(uint64, tag = "14")]
    unordered_partitions: u64,
}

fn region_proto(r: &Region) -> RegionProto {
    RegionProto {
        chrom: r.chrom.clone(),
        start: r.start,
        end: r.end,
    }
}

fn region(r: &RegionProto) -> Region {
    Region {
        chrom: r.chrom.clone(),
        start: r.start,
        end: r.end,
    }
}

/// A path as every process of a cluster names it: absolute.
fn absolute(path: &std::path::Path) -> Result<String> {
    let abs = std::path::absolute(path)
        .map_err(|e| DataFusionError::Execution(format!("{}: {e}", path.display())))?;
    abs.to_str().map(str::to_string).ok_or_else(|| {
        DataFusionError::NotImplemented(format!(
            "{}: a path that is not UTF-8 cannot be sent to a cluster",
            path.display()
        ))
    })
}

fn table_proto(
    files: &[PathBuf],
    stamps: &[FileStamp],
    options: &VcfOptions,
    infos: Vec<String>,
    formats: Vec<String>,
) -> Result<TableProto> {
    Ok(TableProto {
        sizes: stamps.iter().map(|s| s.size).collect(),
        modified_ns: stamps.iter().map(|s| s.modified_ns).collect(),
        files: files.iter().map(|f| absolute(f)).collect::<Result<_>>()?,
        region: options.region.as_ref().map(region_proto),
        samples: options.samples.clone().unwrap_or_default(),
        all_samples: options.samples.is_none(),
        long: options.layout == Layout::Long,
        infer_records: options.infer_records as u64,
        infos,
        formats,
    })
}

fn open_table(t: &TableProto) -> Result<VcfTable> {
    let options = VcfOptions {
        region: t.region.as_ref().map(region),
        samples: (!t.all_samples).then(|| t.samples.clone()),
        layout: if t.long { Layout::Long } else { Layout::Wide },
        infer_records: t.infer_records as usize,
    };
    let files: Vec<PathBuf> = t.files.iter().map(PathBuf::from).collect();
    let table = VcfTable::reopen(files.clone(), options, &t.infos, &t.formats)?;
    // the same files as where the query was planned, not others at the same paths
    let planned: Vec<FileStamp> = t
        .sizes
        .iter()
        .zip(&t.modified_ns)
        .map(|(&size, &modified_ns)| FileStamp { size, modified_ns })
        .collect();
    check_unchanged(&files, &planned, table.stamps())?;
    Ok(table)
}

/// A VCF table sent by another process, opened here; its schema must be the one the
/// query was planned with.
fn decode_table(
    buf: &[u8],
    table_ref: &TableReference,
    schema: &SchemaRef,
) -> Result<Arc<dyn TableProvider>> {
    let t = TableProto::decode(buf).map_err(|e| decode_error("VCF table", e))?;
    let table = open_table(&t)?;
    if table.schema().fields() != schema.fields() {
        return Err(DataFusionError::Execution(format!(
            "{table_ref}: the files' schema is not the one the query was planned with \
             (a file changed, or another process sees other files at {})",
            t.files.join(", ")
        )));
    }
    Ok(Arc::new(table))
}

fn tagged(
    tag: u8,
    buf: &mut Vec<u8>,
    write: impl FnOnce(&mut Vec<u8>) -> Result<()>,
) -> Result<()> {
    buf.push(tag);
    write(buf)
}

fn untag(buf: &[u8]) -> Result<(u8, &[u8])> {
    match buf.split_first() {
        Some((&tag, rest)) if [VCFQ, LANCE, KNN, TOPIC, BALLISTA].contains(&tag) => Ok((tag, rest)),
        _ => Err(DataFusionError::Internal(
            "a plan node that neither vcfq's nor Ballista's codec wrote".into(),
        )),
    }
}

/// Logical plans: VCF tables (`'file.vcf.gz'`, `STORED AS VCF`, `read_vcf`, `vcf_genotypes`),
/// Lance tables and topic tables; the rest through Ballista's codec.
#[derive(Default)]
pub struct VcfLogicalCodec {
    ballista: BallistaLogicalExtensionCodec,
}

impl fmt::Debug for VcfLogicalCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VcfLogicalCodec")
    }
}

impl LogicalExtensionCodec for VcfLogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> Result<Extension> {
        match untag(buf)? {
            (BALLISTA, rest) => self.ballista.try_decode(rest, inputs, ctx),
            _ => Err(DataFusionError::Internal(
                "vcfq sends no logical extension nodes".into(),
            )),
        }
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        tagged(BALLISTA, buf, |b| self.ballista.try_encode(node, b))
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        match untag(buf)? {
            (BALLISTA, rest) => self
                .ballista
                .try_decode_table_provider(rest, table_ref, schema, ctx),
            (LANCE, rest) => lance_wire::decode_table(rest, schema).map_err(mark_for_client),
            (TOPIC, rest) => topic_wire::decode_table(rest, &schema).map_err(mark_for_client),
            (_, rest) => decode_table(rest, table_ref, &schema).map_err(mark_for_client),
        }
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        let any: &dyn std::any::Any = node.as_ref();
        if let Some(table) = any.downcast_ref::<VcfTable>() {
            let t = table_proto(
                table.files(),
                table.stamps(),
                table.options(),
                table.info_fields(),
                table.genotype_fields(),
            )?;
            buf.push(VCFQ);
            t.encode(buf).map_err(internal)?;
            return Ok(());
        }
        if let Some(table) = any.downcast_ref::<LanceTable>() {
            return tagged(LANCE, buf, |b| lance_wire::encode_table(table, b));
        }
        if let Some(table) = any.downcast_ref::<TopicTable>() {
            return tagged(TOPIC, buf, |b| topic_wire::encode_table(table, b));
        }
        tagged(BALLISTA, buf, |b| {
            self.ballista
                .try_encode_table_provider(table_ref, node, b)
                .map_err(|_| {
                    DataFusionError::NotImplemented(format!(
                        "table {table_ref} cannot be read on a cluster (VCF/BCF files, Lance \
                         datasets, topics read as snapshots and DataFusion's file formats \
                         can; in-memory tables cannot)"
                    ))
                })
        })
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn datafusion::datasource::file_format::FileFormatFactory>> {
        match untag(buf)? {
            (BALLISTA, rest) => self.ballista.try_decode_file_format(rest, ctx),
            _ => Err(DataFusionError::Internal(
                "vcfq sends no file formats".into(),
            )),
        }
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn datafusion::datasource::file_format::FileFormatFactory>,
    ) -> Result<()> {
        tagged(BALLISTA, buf, |b| {
            self.ballista.try_encode_file_format(b, node)
        })
    }
}

/// Physical plans: VCF scans, Lance scans, kNN searches and topic scans; the rest (Ballista's
/// shuffle operators) through Ballista's codec.
pub struct VcfPhysicalCodec {
    ballista: BallistaPhysicalExtensionCodec,
    /// For the logical expressions of Lance nodes (their filters).
    exprs: DefaultLogicalExtensionCodec,
}

impl Default for VcfPhysicalCodec {
    fn default() -> Self {
        VcfPhysicalCodec {
            ballista: BallistaPhysicalExtensionCodec::default(),
            exprs: DefaultLogicalExtensionCodec {},
        }
    }
}

impl fmt::Debug for VcfPhysicalCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VcfPhysicalCodec")
    }
}

impl VcfPhysicalCodec {
    fn encode_scan(&self, scan: &VcfExec, buf: &mut Vec<u8>) -> Result<()> {
        let origin = scan.origin().ok_or_else(|| {
            DataFusionError::NotImplemented(
                "a VCF scan that was not planned from a table cannot be sent to a cluster".into(),
            )
        })?;
        let spec = &origin.spec;
        let options = scan.options();
        let proto = ScanProto {
            table: Some(table_proto(
                &origin.files,
                &origin.stamps,
                &origin.table,
                origin.infos.clone(),
                origin.formats.clone(),
            )?),
            indices: spec.indices.iter().map(|&i| i as u64).collect(),
            outputs: spec.outputs as u64,
            selected: spec.selected.iter().map(|&i| i as u64).collect(),
            has_regions: spec.regions.is_some(),
            regions: spec.regions.iter().flatten().map(region_proto).collect(),
            predicate: spec
                .predicate
                .as_ref()
                .map(|p| serialize_physical_expr(p, self))
                .transpose()?,
            min_split_bytes: spec.min_split_bytes,
            limit: options.limit.map(|l| l as u64),
            skip_errors: options.skip_errors,
            threads: options.threads as u64,
            preserve_order: options.preserve_order,
            partitions: scan.partition_count() as u64,
            unordered_partitions: options.partitions as u64,
        };
        buf.push(VCFQ);
        proto.encode(buf).map_err(internal)
    }

    fn decode_scan(&self, buf: &[u8], ctx: &TaskContext) -> Result<Arc<dyn ExecutionPlan>> {
        let p = ScanProto::decode(buf).map_err(|e| decode_error("VCF scan", e))?;
        let t = p
            .table
            .as_ref()
            .ok_or_else(|| DataFusionError::Internal("a VCF scan without its table".into()))?;
        let table = open_table(t)?;
        let indices: Vec<usize> = p.indices.iter().map(|&i| i as usize).collect();
        let decoded = table.schema().project(&indices)?;
        let predicate = p
            .predicate
            .as_ref()
            .map(|e| parse_physical_expr(e, ctx, &decoded, self))
            .transpose()?;
        let spec = ScanSpec {
            indices,
            outputs: p.outputs as usize,
            selected: p.selected.iter().map(|&i| i as usize).collect(),
            regions: p
                .has_regions
                .then(|| p.regions.iter().map(region).collect()),
            predicate,
            min_split_bytes: p.min_split_bytes,
        };
        let options = ScanOptions {
            limit: p.limit.map(|l| l as usize),
            skip_errors: p.skip_errors,
            threads: p.threads as usize,
            preserve_order: p.preserve_order,
            partitions: p.unordered_partitions as usize,
        };
        let scan = table.plan_scan(spec, options)?;
        let partitions = scan.output_partitioning().partition_count() as u64;
        if partitions != p.partitions {
            return Err(DataFusionError::Execution(format!(
                "{}: the scan has {partitions} partitions here but had {} where it was planned \
                 (a file changed, or this process sees other files)",
                t.files.join(", "),
                p.partitions
            )));
        }
        Ok(scan)
    }
}

impl PhysicalExtensionCodec for VcfPhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match untag(buf)? {
            (BALLISTA, rest) => self.ballista.try_decode(rest, inputs, ctx),
            (LANCE, rest) => {
                lance_wire::decode_scan(rest, ctx, &self.exprs).map_err(mark_for_client)
            }
            (KNN, rest) => lance_wire::decode_knn(rest, ctx, &self.exprs).map_err(mark_for_client),
            (TOPIC, rest) => topic_wire::decode_scan(rest, ctx, self).map_err(mark_for_client),
            (_, rest) => self.decode_scan(rest, ctx).map_err(mark_for_client),
        }
    }

    fn try_encode(&self, node: Arc<dyn ExecutionPlan>, buf: &mut Vec<u8>) -> Result<()> {
        if let Some(scan) = node.downcast_ref::<VcfExec>() {
            return self.encode_scan(scan, buf);
        }
        if let Some(scan) = node.downcast_ref::<LanceScanExec>() {
            return tagged(LANCE, buf, |b| {
                lance_wire::encode_scan(&scan.shipped(), &self.exprs, b)
            });
        }
        if let Some(scan) = node.downcast_ref::<ShippedLanceScan>() {
            return tagged(LANCE, buf, |b| {
                lance_wire::encode_scan(scan, &self.exprs, b)
            });
        }
        if let Some(knn) = node.downcast_ref::<KnnExec>() {
            return tagged(KNN, buf, |b| lance_wire::encode_knn(knn, &self.exprs, b));
        }
        if let Some(scan) = node.downcast_ref::<TopicExec>() {
            return tagged(TOPIC, buf, |b| topic_wire::encode_scan(scan, self, b));
        }
        let name = node.name().to_string();
        tagged(BALLISTA, buf, |b| {
            self.ballista.try_encode(node, b).map_err(|e| {
                DataFusionError::NotImplemented(format!(
                    "{name} cannot be sent to a cluster's executors: {e}"
                ))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_keep_pos_zero_and_open_ends() {
        let r = Region {
            chrom: "chr1".into(),
            start: 0,
            end: i64::MAX,
        };
        let bytes = region_proto(&r).encode_to_vec();
        assert_eq!(region(&RegionProto::decode(bytes.as_slice()).unwrap()), r);
    }

    #[test]
    fn bytes_of_nobody_are_refused() {
        assert!(untag(&[]).is_err());
        assert!(untag(b"x").is_err());
        assert_eq!(untag(b"Vab").unwrap(), (VCFQ, &b"ab"[..]));
    }

    #[test]
    fn table_options_round_trip() {
        let options = VcfOptions {
            region: Some(Region {
                chrom: "2".into(),
                start: 5,
                end: 9,
            }),
            samples: Some(vec!["S1".into(), "S2".into()]),
            layout: Layout::Long,
            infer_records: 7,
        };
        let stamp = FileStamp {
            size: 10,
            modified_ns: 5,
        };
        let t = table_proto(
            &[PathBuf::from("/data/a.vcf.gz")],
            &[stamp],
            &options,
            vec!["AF".into()],
            vec!["GT".into()],
        )
        .unwrap();
        let back = TableProto::decode(t.encode_to_vec().as_slice()).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.files, ["/data/a.vcf.gz"]);
        assert!(!back.all_samples && back.long && back.infer_records == 7);
        let none = table_proto(
            &[PathBuf::from("rel.vcf")],
            &[],
            &VcfOptions::default(),
            vec![],
            vec![],
        )
        .unwrap();
        assert!(none.all_samples);
        assert!(std::path::Path::new(&none.files[0]).is_absolute());
    }
}
