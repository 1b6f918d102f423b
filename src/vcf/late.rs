//! Late materialisation for scans that evaluate filters: the columns the filters read are
//! decoded first, for a batch of records kept as they came (record lines or BCF records);
//! the filters run on those; the other output columns are decoded only for the records that
//! pass. A selective filter over an INFO field then costs little more than decoding that
//! field, instead of building CHROM, REF and ALT strings for records that are dropped.
//!
//! Errors are not traded for speed: the first phase takes every record apart as far as the
//! whole scan would (the line's columns; a BCF record's shared section when any column needs
//! it), so a damaged record is an error (or skipped, with `vcf.on_error = 'skip'`) whether or
//! not it passes. Only sites-level scans (one row per record) qualify, and a scan whose output
//! reads sample columns only when its filters read them too (so that the first phase checks
//! the samples); other scans decode every column and filter after ([`LatePlan::new`]).

use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, RecordBatch, RecordBatchOptions, UInt32Array,
};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::error::Result;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column as ColumnExpr;
use datafusion::physical_expr::utils::collect_columns;

use super::batch::{BatchBuilder, ColumnKind, DecodePlan};
use super::bcf::{BcfRecord, SharedParts, TypedAt};
use super::bcf_decode::needs_shared;
use super::input::BcfDictionary;
use super::opener::ScanFilter;
use super::record::split_record;
use super::schema::Layout;
use super::warnings::{Location, Warnings};

/// Where an output column comes from.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// A column of the first phase (read by the filters), by index.
    Filtered(usize),
    /// A column of the second phase, by index.
    Rest(usize),
}

/// How a filtered scan decodes in two phases.
#[derive(Debug)]
pub struct LatePlan {
    /// The columns the filters read.
    filtered: Arc<DecodePlan>,
    /// The filters over [`Self::filtered`]'s schema.
    predicate: Arc<dyn PhysicalExpr>,
    /// The output columns the filters do not read.
    rest: Arc<DecodePlan>,
    output: Vec<Source>,
    schema: SchemaRef,
    /// Whether the first phase takes a BCF record's shared section apart although its own
    /// columns do not need it (the second phase's do).
    check_shared: bool,
}

/// `plan` narrowed to its columns `columns` (indices into its columns).
fn narrowed(plan: &DecodePlan, columns: &[usize]) -> Result<DecodePlan> {
    Ok(DecodePlan {
        schema: Arc::new(plan.schema.project(columns)?),
        columns: columns.iter().map(|&i| plan.columns[i]).collect(),
        ..plan.clone()
    })
}

impl LatePlan {
    /// The two phases for `plan` filtered by `filter`, or `None` when decoding in one pass is
    /// as good or the only exact way: a long-form scan (rows per sample), filters that read
    /// every output column (or none), or output sample columns the filters do not read.
    pub fn new(plan: &DecodePlan, filter: &ScanFilter) -> Result<Option<Self>> {
        if plan.layout != Layout::Wide {
            return Ok(None);
        }
        let used: BTreeSet<usize> = collect_columns(&filter.predicate)
            .iter()
            .map(|c| c.index())
            .collect();
        let filtered: Vec<usize> = used.iter().copied().collect();
        let rest: Vec<usize> = filter
            .output
            .iter()
            .copied()
            .filter(|i| !used.contains(i))
            .collect();
        if filtered.is_empty() || rest.is_empty() {
            return Ok(None);
        }
        let kinds =
            |cols: &[usize]| -> Vec<ColumnKind> { cols.iter().map(|&i| plan.columns[i]).collect() };
        let (first, second) = (kinds(&filtered), kinds(&rest));
        if second.iter().any(ColumnKind::reads_samples)
            && !first.iter().any(ColumnKind::reads_samples)
        {
            return Ok(None);
        }
        let predicate = Arc::clone(&filter.predicate)
            .transform(|e| {
                let Some(c) = e.downcast_ref::<ColumnExpr>() else {
                    return Ok(Transformed::no(e));
                };
                let at = filtered.iter().position(|&i| i == c.index()).unwrap_or(0);
                Ok(Transformed::yes(
                    Arc::new(ColumnExpr::new(c.name(), at)) as Arc<dyn PhysicalExpr>
                ))
            })
            .data()?;
        let output = filter
            .output
            .iter()
            .map(|o| match filtered.iter().position(|i| i == o) {
                Some(at) => Source::Filtered(at),
                None => Source::Rest(rest.iter().position(|i| i == o).unwrap_or(0)),
            })
            .collect();
        Ok(Some(LatePlan {
            check_shared: second.iter().any(needs_shared) && !first.iter().any(needs_shared),
            filtered: Arc::new(narrowed(plan, &filtered)?),
            predicate,
            rest: Arc::new(narrowed(plan, &rest)?),
            output,
            schema: Arc::clone(&filter.schema),
        }))
    }
}

/// The records of one batch, as they came, waiting for the two phases.
#[derive(Default)]
struct Stash {
    bytes: Vec<u8>,
    records: Vec<(Range<usize>, Location)>,
    /// The BCF dictionary of the records (`None`: record lines).
    bcf: Option<Arc<BcfDictionary>>,
}

/// The shared sections of a batch's BCF records as the first phase took them apart, kept
/// in a few flat vectors (one per kind of part, not two per record: the second phase reads
/// them back in order, from memory that is still close), so that the second phase does not
/// take them apart again.
#[derive(Default)]
struct PartsStore {
    /// Per stash index: the record's parts, if the first phase took them apart.
    heads: Vec<Option<PartsHead>>,
    alleles: Vec<Range<usize>>,
    info: Vec<(i32, TypedAt)>,
}

/// Where one record's parts are in a [`PartsStore`].
struct PartsHead {
    id: Option<TypedAt>,
    filter: Option<TypedAt>,
    alleles: Range<usize>,
    info: Range<usize>,
}

impl PartsStore {
    fn clear(&mut self) {
        self.heads.clear();
        self.alleles.clear();
        self.info.clear();
    }

    /// Keeps `parts` (when `parsed`) as the next record's.
    fn keep(&mut self, parts: &SharedParts, parsed: bool) {
        if !parsed {
            self.heads.push(None);
            return;
        }
        let (a, i) = (self.alleles.len(), self.info.len());
        self.alleles.extend_from_slice(&parts.alleles);
        self.info.extend_from_slice(&parts.info);
        self.heads.push(Some(PartsHead {
            id: parts.id,
            filter: parts.filter,
            alleles: a..self.alleles.len(),
            info: i..self.info.len(),
        }));
    }

    /// Puts record `i`'s kept parts into `parts`; false when there are none.
    fn restore(&self, i: usize, parts: &mut SharedParts) -> bool {
        let Some(Some(head)) = self.heads.get(i) else {
            return false;
        };
        parts.id = head.id;
        parts.filter = head.filter;
        parts.alleles.clear();
        parts
            .alleles
            .extend_from_slice(&self.alleles[head.alleles.clone()]);
        parts.info.clear();
        parts.info.extend_from_slice(&self.info[head.info.clone()]);
        true
    }
}

/// One reader's two-phase decoding: the records kept, and a builder per phase.
pub struct LateDecoder {
    plan: Arc<LatePlan>,
    stash: Stash,
    filtered: BatchBuilder,
    rest: BatchBuilder,
    record: BcfRecord,
    /// BCF shared sections taken apart by the first phase.
    first_parts: PartsStore,
    /// The shared section of the record being appended.
    parts: SharedParts,
    /// Stash indices of the records that decoded in the first phase.
    alive: Vec<usize>,
}

impl LateDecoder {
    /// A decoder for `plan`.
    pub fn new(plan: Arc<LatePlan>) -> Self {
        let mut filtered = BatchBuilder::new(Arc::clone(&plan.filtered));
        filtered.check_shared = plan.check_shared;
        LateDecoder {
            rest: BatchBuilder::new(Arc::clone(&plan.rest)),
            filtered,
            plan,
            stash: Stash::default(),
            record: BcfRecord::default(),
            first_parts: PartsStore::default(),
            parts: SharedParts::default(),
            alive: Vec::new(),
        }
    }

    /// Records kept for the next batch.
    pub fn len(&self) -> usize {
        self.stash.records.len()
    }

    /// Whether no record is kept.
    pub fn is_empty(&self) -> bool {
        self.stash.records.is_empty()
    }

    /// Keeps a record line.
    pub fn push_line(&mut self, line: &[u8], at: Location) {
        let start = self.stash.bytes.len();
        self.stash.bytes.extend_from_slice(line);
        self.stash.records.push((start..self.stash.bytes.len(), at));
    }

    /// Keeps a BCF record read with `dictionary`.
    pub fn push_bcf(&mut self, rec: &BcfRecord, dictionary: &Arc<BcfDictionary>, at: Location) {
        if self
            .stash
            .bcf
            .as_ref()
            .is_none_or(|d| !Arc::ptr_eq(d, dictionary))
        {
            self.stash.bcf = Some(Arc::clone(dictionary));
        }
        let start = self.stash.bytes.len();
        rec.write_to(&mut self.stash.bytes);
        self.stash.records.push((start..self.stash.bytes.len(), at));
    }

    /// Decodes the kept records into the batch of those that pass the filters, in the output
    /// columns. `failed` is told of each record that does not decode (its location and why):
    /// an error from it ends the batch (the scan fails), `Ok` skips the record.
    pub fn finish(
        &mut self,
        warnings: &mut Warnings,
        mut failed: impl FnMut(Location, String) -> Result<()>,
    ) -> Result<RecordBatch> {
        let outcome = self.phases(warnings, &mut failed);
        self.stash.bytes.clear();
        self.stash.records.clear();
        self.first_parts.clear();
        self.alive.clear();
        outcome
    }

    fn phases(
        &mut self,
        warnings: &mut Warnings,
        failed: &mut impl FnMut(Location, String) -> Result<()>,
    ) -> Result<RecordBatch> {
        let bcf = self.stash.bcf.clone();
        for (i, (range, at)) in self.stash.records.iter().enumerate() {
            warnings.at = *at;
            let bytes = &self.stash.bytes[range.clone()];
            let mut parsed = false;
            let outcome = decode(
                &mut self.filtered,
                &mut self.record,
                &mut self.parts,
                &mut parsed,
                bytes,
                bcf.as_ref(),
                warnings,
            );
            self.first_parts
                .keep(&self.parts, parsed && outcome.is_ok());
            match outcome {
                Ok(()) => self.alive.push(i),
                Err(message) => failed(*at, message)?,
            }
        }
        let first = self.filtered.finish()?;
        let mask = self
            .plan
            .predicate
            .evaluate(&first)
            .and_then(|m| m.into_array(first.num_rows()))?;
        let mask = mask.as_boolean();
        // rows of the first batch whose records pass and decode in the second phase too
        let mut kept: Vec<u32> = Vec::new();
        for (row, &i) in self.alive.iter().enumerate() {
            if !(mask.is_valid(row) && mask.value(row)) {
                continue;
            }
            let (range, at) = &self.stash.records[i];
            warnings.at = *at;
            let bytes = &self.stash.bytes[range.clone()];
            let mut parsed = self.first_parts.restore(i, &mut self.parts);
            let outcome = decode(
                &mut self.rest,
                &mut self.record,
                &mut self.parts,
                &mut parsed,
                bytes,
                bcf.as_ref(),
                warnings,
            );
            match outcome {
                Ok(()) => kept.push(row as u32),
                Err(message) => failed(*at, message)?,
            }
        }
        let second = self.rest.finish()?;
        let kept = UInt32Array::from(kept);
        let all = kept.len() == first.num_rows();
        let columns = self
            .plan
            .output
            .iter()
            .map(|source| match *source {
                Source::Filtered(c) if all => Ok(Arc::clone(first.column(c))),
                Source::Filtered(c) => Ok(take(first.column(c), &kept, None)?),
                Source::Rest(c) => Ok(Arc::clone(second.column(c))),
            })
            .collect::<Result<Vec<ArrayRef>>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(kept.len()));
        Ok(RecordBatch::try_new_with_options(
            Arc::clone(&self.plan.schema),
            columns,
            &options,
        )?)
    }
}

/// Decodes one kept record into `builder`: a record line, or a BCF record (read into
/// `record`) whose shared section `parts` holds when `*parsed` (and keeps, with `*parsed` set,
/// when it is taken apart now).
fn decode(
    builder: &mut BatchBuilder,
    record: &mut BcfRecord,
    parts: &mut SharedParts,
    parsed: &mut bool,
    mut bytes: &[u8],
    bcf: Option<&Arc<BcfDictionary>>,
    warnings: &mut Warnings,
) -> std::result::Result<(), String> {
    let Some(dictionary) = bcf else {
        return split_record(bytes).and_then(|rec| builder.append(&rec, warnings));
    };
    match record.read_from(&mut bytes) {
        Ok(true) => builder.append_bcf_parsed(record, dictionary, warnings, parts, parsed),
        Ok(false) => Err("empty BCF record".to_string()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::logical_expr::Operator;
    use datafusion::physical_expr::expressions::{BinaryExpr, lit};

    /// A plan decoding `kinds` (each a column named after its kind), in `layout`.
    fn plan(layout: Layout, kinds: &[ColumnKind]) -> DecodePlan {
        let fields: Vec<Field> = kinds
            .iter()
            .map(|k| Field::new(format!("{k:?}"), DataType::Int64, true))
            .collect();
        DecodePlan {
            layout,
            schema: Arc::new(Schema::new(fields)),
            columns: kinds.to_vec(),
            infos: Vec::new(),
            skipped_infos: Vec::new(),
            formats: Vec::new(),
            skipped_formats: Vec::new(),
            sample_names: Vec::new(),
            selected: Vec::new(),
        }
    }

    /// `column > 5` over decoded column `at`, outputting `output`.
    fn filter(plan: &DecodePlan, at: usize, output: &[usize]) -> ScanFilter {
        let name = plan.schema.field(at).name().clone();
        ScanFilter {
            predicate: Arc::new(BinaryExpr::new(
                Arc::new(ColumnExpr::new(&name, at)),
                Operator::Gt,
                lit(5i64),
            )),
            output: output.to_vec(),
            schema: Arc::new(plan.schema.project(output).unwrap()),
        }
    }

    use ColumnKind::*;

    #[test]
    fn parts_taken_apart_once_come_back_for_the_second_phase() {
        use super::super::bcf::Kind;
        let typed = |at| TypedAt {
            kind: Kind::Int8,
            count: 1,
            at,
        };
        let mut store = PartsStore::default();
        let first = SharedParts {
            id: Some(typed(24)),
            alleles: vec![26..27, 28..30],
            filter: None,
            info: vec![(3, typed(40)), (5, typed(44))],
        };
        let second = SharedParts {
            id: None,
            alleles: std::iter::once(30..31).collect(),
            filter: Some(typed(33)),
            info: Vec::new(),
        };
        store.keep(&first, true);
        store.keep(&second, false);
        store.keep(&second, true);
        let mut parts = SharedParts::default();
        assert!(store.restore(0, &mut parts));
        assert_eq!(
            (parts.id, &parts.alleles, parts.filter, &parts.info),
            (first.id, &first.alleles, first.filter, &first.info)
        );
        // a record the first phase did not take apart: the second phase does
        assert!(!store.restore(1, &mut parts));
        assert!(store.restore(2, &mut parts));
        assert_eq!(
            (parts.id, &parts.alleles, parts.filter, &parts.info),
            (second.id, &second.alleles, second.filter, &second.info)
        );
        assert!(!store.restore(3, &mut parts));
        store.clear();
        assert!(!store.restore(0, &mut parts));
    }

    #[test]
    fn the_filters_columns_come_first_and_the_rest_only_for_passing_rows() {
        // decoded: chrom, ref, pos (pos read by the filter only)
        let p = plan(Layout::Wide, &[Chrom, Ref, Pos]);
        let late = LatePlan::new(&p, &filter(&p, 2, &[0, 1])).unwrap().unwrap();
        assert_eq!(late.filtered.columns, vec![Pos]);
        assert_eq!(late.rest.columns, vec![Chrom, Ref]);
        // the predicate now reads the first phase's only column
        let columns = collect_columns(&late.predicate);
        assert_eq!(
            columns.iter().map(|c| c.index()).collect::<Vec<_>>(),
            vec![0]
        );
        assert!(matches!(
            late.output[..],
            [Source::Rest(0), Source::Rest(1)]
        ));
        // REF needs a BCF record's shared section, POS does not: the first phase checks it
        assert!(late.check_shared);

        // an output column the filter reads comes from the first phase
        let late = LatePlan::new(&p, &filter(&p, 2, &[2, 1])).unwrap().unwrap();
        assert!(matches!(
            late.output[..],
            [Source::Filtered(0), Source::Rest(0)]
        ));
    }

    #[test]
    fn one_pass_where_two_would_not_help_or_not_be_exact() {
        // the filter reads every output column
        let p = plan(Layout::Wide, &[Pos, Ref]);
        assert!(LatePlan::new(&p, &filter(&p, 0, &[0])).unwrap().is_none());
        // rows per sample
        let p = plan(Layout::Long, &[Chrom, Pos]);
        assert!(LatePlan::new(&p, &filter(&p, 1, &[0])).unwrap().is_none());
        // genotypes out, a filter that does not read them: the first phase would not check
        // the samples of records that fail it
        let p = plan(Layout::Wide, &[Genotypes, Pos]);
        assert!(LatePlan::new(&p, &filter(&p, 1, &[0])).unwrap().is_none());
        // a filter on INFO takes the shared section apart itself
        let p = plan(Layout::Wide, &[Ref, Info]);
        let late = LatePlan::new(&p, &filter(&p, 1, &[0])).unwrap().unwrap();
        assert!(!late.check_shared);
    }
}
