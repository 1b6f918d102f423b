//! `COPY (SELECT …) TO 'out.vcf[.gz]' | 'out.bcf' [STORED AS VCF|BCF] [OPTIONS (…)]`, planned
//! as an insert of the query into a write-only target whose sink is [`VcfSink`]: rows stream
//! into the file and the statement returns the number written, as COPY does.
//!
//! The header comes from the first VCF table the query reads (found in the logical plan, so
//! that it is known even when the filters leave no rows to scan); `sort` sorts the rows by
//! that header's contig order (contigs it does not list after them, by name), then position.

use std::any::Any;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int64Builder, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Column, plan_err};
use datafusion::datasource::sink::DataSinkExec;
use datafusion::datasource::source_as_provider;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlan, LogicalPlanBuilder, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};
use datafusion::sql::parser::CopyToStatement;
use datafusion::sql::sqlparser::ast;

use super::record::{Columns, RecordWriter};
use super::sink::VcfSink;
use super::{Container, Source, WriteOptions, header_for};
use crate::copy_target::CopyTarget;
use crate::vcf::VcfTable;
use crate::vcf::partition::index_contigs;

/// Whether a COPY writes VCF or BCF: `STORED AS VCF|BCF`, or a target named `….vcf`,
/// `….vcf.gz`, `….vcf.bgz` or `….bcf` without `STORED AS`.
pub fn is_vcf_copy(copy: &CopyToStatement) -> bool {
    match &copy.stored_as {
        Some(format) => format.eq_ignore_ascii_case("vcf") || format.eq_ignore_ascii_case("bcf"),
        None => {
            let lower = copy.target.to_ascii_lowercase();
            [".vcf", ".vcf.gz", ".vcf.bgz", ".bcf"]
                .iter()
                .any(|e| lower.ends_with(e))
        }
    }
}

/// What a write carries from the first VCF table `plan` reads.
pub fn source_of(plan: &LogicalPlan) -> Option<Source> {
    let mut found = None;
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && let Ok(provider) = source_as_provider(&scan.source)
        {
            let any: &dyn Any = provider.as_ref();
            if let Some(table) = any.downcast_ref::<VcfTable>() {
                let header = table.shared_header();
                let index_contigs = match (header.contigs.is_empty(), table.files().first()) {
                    (true, Some(first)) => index_contigs(first),
                    _ => Vec::new(),
                };
                found = Some(Source {
                    header,
                    samples: table.selected_samples(),
                    index_contigs,
                });
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// Plans a VCF/BCF COPY of `input` (the COPY's query, planned). `sql` is the statement (for
/// `##vcfqCommand`); columns for which `leave_out` is true (a topic's generated columns) are
/// not written.
pub fn plan_copy(
    state: &dyn Session,
    copy: &CopyToStatement,
    input: LogicalPlan,
    sql: &str,
    leave_out: fn(&Field) -> bool,
) -> Result<LogicalPlan> {
    let what = match copy.stored_as.as_deref() {
        Some(s) if s.eq_ignore_ascii_case("bcf") => "BCF",
        Some(_) => "VCF",
        None if copy.target.to_ascii_lowercase().ends_with(".bcf") => "BCF",
        None => "VCF",
    };
    if !copy.partitioned_by.is_empty() {
        return plan_err!("COPY … STORED AS {what} takes no PARTITIONED BY");
    }
    let mut options = WriteOptions::for_target(&copy.target, copy.stored_as.as_deref());
    options.threads = state.config().target_partitions().max(1);
    for (key, value) in &copy.options {
        let value = match value {
            ast::Value::SingleQuotedString(s) | ast::Value::DoubleQuotedString(s) => s.clone(),
            other => other.to_string(),
        };
        // DataFusion's own COPY options are prefixed by the format (`format.compression`)
        let key = key
            .strip_prefix("format.")
            .filter(|k| !k.contains('.'))
            .unwrap_or(key);
        if let Err(m) = options.set(key, &value) {
            return plan_err!("COPY … STORED AS {what}: {m}");
        }
    }
    if let Err(m) = options.check() {
        return plan_err!("COPY … STORED AS {what}: {m}");
    }
    let schema = Arc::new(input.schema().as_arrow().clone());
    let columns = match Columns::of(&schema, &leave_out) {
        Ok(c) => c,
        Err(m) => return plan_err!("COPY … STORED AS {what}: {m}"),
    };
    // what can be checked before any row is read: the options against the columns, and the
    // header (the samples are the source's until the rows tell)
    if let Err(m) = RecordWriter::new(
        &schema,
        columns.clone(),
        options.samples.clone(),
        options.fill_tags.clone(),
    ) {
        return plan_err!("COPY … STORED AS {what}: {m}");
    }
    let source = source_of(&input);
    let samples = source
        .as_ref()
        .map(|s| s.samples.clone())
        .unwrap_or_default();
    let header = header_for(&schema, &columns, source.as_ref(), &samples, &options, None);
    if let Err(e) = header {
        return plan_err!("COPY … STORED AS {what}: {e}");
    }
    if options.format == Container::Bcf && source.is_none() {
        return plan_err!(
            "COPY … STORED AS BCF needs the header of a VCF table (its ##contig lines make BCF's dictionary); write these rows as VCF"
        );
    }
    let path = PathBuf::from(copy.target.strip_prefix("file://").unwrap_or(&copy.target));
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && !parent.is_dir()
    {
        return plan_err!(
            "COPY … STORED AS {what}: cannot write '{}': no directory '{}'",
            path.display(),
            parent.display()
        );
    }
    let input = if options.sort {
        sorted(input, &columns, source.as_ref())?
    } else {
        input
    };
    let command = sql.trim().to_string();
    let target = CopyTarget::new(Arc::clone(&schema), move |input| {
        let sink = VcfSink::new(
            path.clone(),
            Arc::clone(&schema),
            columns.clone(),
            options.clone(),
            source.clone(),
            Some(command.clone()),
        );
        Arc::new(DataSinkExec::new(input, Arc::new(sink), None))
    });
    Ok(target.insert(&copy.target, input))
}

/// `input` ordered by the contig order of `header`, then by contig name (contigs it does not
/// list), then by position.
fn sorted(input: LogicalPlan, columns: &Columns, source: Option<&Source>) -> Result<LogicalPlan> {
    let column = |i: usize| Expr::Column(Column::from(input.schema().qualified_field(i)));
    let mut contigs: Vec<String> = source
        .map(|s| s.header.contigs.iter().map(|c| c.id.clone()).collect())
        .unwrap_or_default();
    if contigs.is_empty() {
        contigs = source.map(|s| s.index_contigs.clone()).unwrap_or_default();
    }
    let rank = ScalarUDF::new_from_impl(ContigRank::new(contigs)).call(vec![column(columns.chrom)]);
    let keys = vec![
        rank.sort(true, false),
        column(columns.chrom).sort(true, false),
        column(columns.pos).sort(true, false),
    ];
    LogicalPlanBuilder::from(input).sort(keys)?.build()
}

/// The rank of a contig in a header's contig order (contigs it does not list rank last).
#[derive(Debug)]
struct ContigRank {
    contigs: Vec<String>,
    ranks: HashMap<String, i64>,
    signature: Signature,
}

impl ContigRank {
    fn new(contigs: Vec<String>) -> Self {
        let ranks = contigs
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), i as i64))
            .collect();
        ContigRank {
            contigs,
            ranks,
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl PartialEq for ContigRank {
    fn eq(&self, other: &Self) -> bool {
        self.contigs == other.contigs
    }
}

impl Eq for ContigRank {}

impl std::hash::Hash for ContigRank {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.contigs.hash(state);
    }
}

impl ScalarUDFImpl for ContigRank {
    fn name(&self) -> &str {
        "vcfq_contig_rank"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let names = cast(&arrays[0], &DataType::Utf8)?;
        let names = names
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("cast to Utf8");
        let last = self.contigs.len() as i64;
        let mut out = Int64Builder::with_capacity(names.len());
        for i in 0..names.len() {
            if names.is_null(i) {
                out.append_null();
            } else {
                out.append_value(*self.ranks.get(names.value(i)).unwrap_or(&last));
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish()) as ArrayRef))
    }
}
