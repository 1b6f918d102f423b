//! Record lines → Arrow record batches, decoding only the projected columns.
//!
//! A [`BatchBuilder`] is made once per scanned file for the columns a query needs. INFO is split
//! only when `info` is projected, the sample columns only when genotype data is, and only the
//! selected samples' columns are split into FORMAT values.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, DictionaryArray, Float64Builder, Int32Array, Int64Builder, ListArray, ListBuilder,
    RecordBatch, RecordBatchOptions, StringArray, StringBuilder, StructArray,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::Int32Type;
use datafusion::arrow::datatypes::{DataType, FieldRef, Fields, SchemaRef};
use datafusion::arrow::error::ArrowError;
use memchr::memchr_iter;

use super::header::FieldDef;
use super::record::RecordFields;
use super::schema::{Layout, value_data_type};
use super::values::{ValueBuilder, Warnings};

/// Which table column an output column is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// `chrom`.
    Chrom,
    /// `pos`.
    Pos,
    /// `id`.
    Id,
    /// `ref`.
    Ref,
    /// `alt`.
    Alt,
    /// `qual`.
    Qual,
    /// `filter`.
    Filter,
    /// `info` (struct of all INFO fields).
    Info,
    /// `genotypes` (wide layout).
    Genotypes,
    /// `sample` (long layout).
    Sample,
    /// One FORMAT field (long layout), by index into the FORMAT definitions.
    Format(usize),
}

impl ColumnKind {
    /// Whether the column is made from the sample columns.
    pub fn reads_samples(&self) -> bool {
        matches!(self, ColumnKind::Genotypes | ColumnKind::Format(_))
    }

    /// The kind of the table column at `index` in a layout.
    pub fn of(layout: Layout, index: usize) -> Self {
        use ColumnKind::*;
        match layout {
            Layout::Wide => [Chrom, Pos, Id, Ref, Alt, Qual, Filter, Info, Genotypes][index.min(8)],
            Layout::Long => match index {
                0 => Chrom,
                1 => Pos,
                2 => Ref,
                3 => Alt,
                4 => Sample,
                i => Format(i - 5),
            },
        }
    }
}

/// One output column being built (shared with the BCF decoder, [`super::bcf_decode`]).
pub(super) enum Column {
    Text(
        StringBuilder,
        for<'r> fn(&RecordFields<'r>) -> &'r [u8],
        bool,
    ),
    Pos(Int64Builder),
    List(
        ListBuilder<StringBuilder>,
        for<'r> fn(&RecordFields<'r>) -> &'r [u8],
        u8,
    ),
    Qual(Float64Builder),
    Info(Vec<ValueBuilder>, Fields),
    Genotypes {
        sample: StringBuilder,
        values: Vec<ValueBuilder>,
        offsets: Vec<i32>,
        item: FieldRef,
    },
    /// `sample` (long layout): keys into the selected samples' names, the same `0, 1, …, n-1`
    /// for every record, so one buffer of them serves every batch (sliced).
    Sample {
        /// `0, 1, …, n-1` repeated, at least as long as the last batch.
        keys: Int32Array,
        /// Samples per record.
        per_record: usize,
        names: ArrayRef,
    },
    Format(usize, ValueBuilder),
}

/// What a scan decodes: the layout, output schema and the samples it reads.
#[derive(Debug, Clone)]
pub struct DecodePlan {
    /// Wide or long.
    pub layout: Layout,
    /// The output (projected) schema.
    pub schema: SchemaRef,
    /// One kind per output column.
    pub columns: Vec<ColumnKind>,
    /// The INFO fields decoded into the `info` struct.
    pub infos: Vec<FieldDef>,
    /// INFO fields of the file that this scan does not decode (skipped without a warning).
    pub skipped_infos: Vec<String>,
    /// The FORMAT fields of the table that this scan may decode (wide layout: those of the
    /// `genotypes` struct; long layout: all).
    pub formats: Vec<FieldDef>,
    /// FORMAT fields of the file that this scan does not decode (skipped without a warning).
    pub skipped_formats: Vec<String>,
    /// Sample names of the header.
    pub sample_names: Vec<String>,
    /// Indices of the samples read, ascending.
    pub selected: Vec<usize>,
}

impl DecodePlan {
    /// Whether the sample columns must be split.
    pub fn needs_samples(&self) -> bool {
        self.columns.iter().any(ColumnKind::reads_samples)
    }

    /// Output rows produced per record.
    pub fn rows_per_record(&self) -> usize {
        match self.layout {
            Layout::Wide => 1,
            Layout::Long => self.selected.len(),
        }
    }

    /// Records per batch: `batch_size` rows for sites; for genotype data, about `MAX_CELLS`
    /// genotype entries, so that batches are large enough for a reader to run ahead by whole
    /// units (a long-form row is one entry) and small enough for bounded memory.
    pub fn records_per_batch(&self, batch_size: usize) -> usize {
        const MAX_CELLS: usize = 1 << 17;
        let per_record = if self.needs_samples() || self.layout == Layout::Long {
            self.selected.len().max(1)
        } else {
            1
        };
        match self.layout {
            Layout::Wide => batch_size.min(MAX_CELLS / per_record).max(1),
            Layout::Long => (MAX_CELLS / per_record).max(1),
        }
    }
}

/// Builds record batches from record lines, one file at a time.
pub struct BatchBuilder {
    pub(super) plan: Arc<DecodePlan>,
    pub(super) columns: Vec<Column>,
    pub(super) rows: usize,
    pub(super) records: usize,
    info_index: KeyIndex,
    info_slots: Vec<Option<Range<usize>>>,
    /// FORMAT key → field index, `None` for fields this scan does not decode.
    format_index: KeyIndex,
    last_format: Vec<u8>,
    format_keys: Vec<Option<usize>>,
    /// Position in FORMAT of the last key decoded: sample columns are split no further.
    last_needed_key: usize,
    /// Offsets of the tabs between the sample columns of the current record.
    tabs: Vec<usize>,
    /// Value ranges (into the sample text) per selected sample × FORMAT field.
    sample_slots: Vec<Option<Range<usize>>>,
    need_samples: bool,
    /// How BCF records' dictionary indices map to this scan's fields (made on first use).
    pub(super) bcf: Option<Box<super::bcf_decode::BcfLookup>>,
    /// Whether a BCF record's shared section is taken apart (and so checked) even when no
    /// column needs it ([`super::late`]: a later phase's columns do).
    pub(super) check_shared: bool,
}

impl BatchBuilder {
    /// A builder for `plan`.
    pub fn new(plan: Arc<DecodePlan>) -> Self {
        let nf = plan.formats.len();
        let columns = plan
            .columns
            .iter()
            .enumerate()
            .map(|(i, kind)| match kind {
                ColumnKind::Chrom => Column::Text(StringBuilder::new(), |r| r.chrom, false),
                ColumnKind::Id => Column::Text(StringBuilder::new(), |r| r.id, true),
                ColumnKind::Ref => Column::Text(StringBuilder::new(), |r| r.reference, false),
                ColumnKind::Pos => Column::Pos(Int64Builder::new()),
                ColumnKind::Alt => {
                    Column::List(ListBuilder::new(StringBuilder::new()), |r| r.alt, b',')
                }
                ColumnKind::Filter => {
                    Column::List(ListBuilder::new(StringBuilder::new()), |r| r.filter, b';')
                }
                ColumnKind::Qual => Column::Qual(Float64Builder::new()),
                ColumnKind::Info => {
                    let fields = match plan.schema.field(i).data_type() {
                        DataType::Struct(f) => f.clone(),
                        _ => Fields::empty(),
                    };
                    Column::Info(
                        fields
                            .iter()
                            .map(|f| ValueBuilder::new(f.data_type()))
                            .collect(),
                        fields,
                    )
                }
                ColumnKind::Genotypes => {
                    let item = match plan.schema.field(i).data_type() {
                        DataType::List(item) => item.clone(),
                        other => Arc::new(datafusion::arrow::datatypes::Field::new(
                            "item",
                            other.clone(),
                            false,
                        )),
                    };
                    let values = plan
                        .formats
                        .iter()
                        .map(|d| ValueBuilder::new(&value_data_type(d)))
                        .collect();
                    Column::Genotypes {
                        sample: StringBuilder::new(),
                        values,
                        offsets: vec![0],
                        item,
                    }
                }
                ColumnKind::Sample => Column::Sample {
                    keys: Int32Array::from(Vec::<i32>::new()),
                    per_record: plan.selected.len(),
                    names: Arc::new(StringArray::from_iter_values(
                        plan.selected.iter().map(|&s| plan.sample_names[s].as_str()),
                    )),
                },
                ColumnKind::Format(f) => {
                    Column::Format(*f, ValueBuilder::new(plan.schema.field(i).data_type()))
                }
            })
            .collect();
        let info_index = KeyIndex::new(
            plan.infos
                .iter()
                .enumerate()
                .map(|(i, d)| (d.id.as_bytes().to_vec(), Some(i)))
                .chain(
                    plan.skipped_infos
                        .iter()
                        .map(|id| (id.as_bytes().to_vec(), None)),
                ),
        );
        // the long layout decodes only the FORMAT columns it outputs; `genotypes` needs them all
        let wide = plan.columns.contains(&ColumnKind::Genotypes);
        let format_index = KeyIndex::new(
            plan.formats
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    let needed = wide || plan.columns.contains(&ColumnKind::Format(i));
                    (d.id.as_bytes().to_vec(), needed.then_some(i))
                })
                .chain(
                    plan.skipped_formats
                        .iter()
                        .map(|id| (id.as_bytes().to_vec(), None)),
                ),
        );
        let need_samples = plan.needs_samples();
        BatchBuilder {
            info_slots: vec![None; plan.infos.len()],
            sample_slots: vec![None; plan.selected.len() * nf],
            plan,
            columns,
            rows: 0,
            records: 0,
            info_index,
            format_index,
            last_format: Vec::new(),
            format_keys: Vec::new(),
            last_needed_key: 0,
            tabs: Vec::new(),
            need_samples,
            bcf: None,
            check_shared: false,
        }
    }

    /// Rows appended since the last [`Self::finish`].
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Records appended since the last [`Self::finish`].
    pub fn records(&self) -> usize {
        self.records
    }

    /// Counts one record without decoding it (for queries that read no column).
    pub fn append_empty(&mut self) {
        self.rows += self.plan.rows_per_record();
        self.records += 1;
    }

    /// Appends one record. Fails, appending nothing, when the sample columns do not match the
    /// header (the message is for the caller to place at its line).
    pub fn append(
        &mut self,
        rec: &RecordFields<'_>,
        warnings: &mut Warnings,
    ) -> Result<(), String> {
        // GT alone of the long layout (the cohort-sized case): the calls go straight from the
        // sample columns into the dictionary, in one pass
        let mut fused = None;
        if self.need_samples {
            self.read_format_keys(rec, warnings);
            if let Some(Some(f)) = self.format_keys.first()
                && self.last_needed_key == 0
                && let Some(i) = self.sole_dictionary_column(*f)
            {
                fused = Some(i);
                let one_key = self.format_keys.len() == 1;
                let Column::Format(_, ValueBuilder::Dict(d)) = &mut self.columns[i] else {
                    return Ok(());
                };
                let before = d.len();
                let outcome = first_fields(rec, &self.plan, one_key, |_, r| {
                    let raw = &rec.samples[r];
                    if matches!(raw, b"." | b"") {
                        d.append_null()
                    } else {
                        d.append(raw)
                    }
                });
                if let Err(e) = outcome {
                    d.truncate(before);
                    return Err(e);
                }
            } else {
                self.split_samples(rec, warnings)?;
            }
        }
        let copies = self.plan.rows_per_record();
        let plan = Arc::clone(&self.plan);
        for (i, col) in self.columns.iter_mut().enumerate() {
            if fused == Some(i) {
                continue;
            }
            match col {
                Column::Text(b, get, dot_is_null) => {
                    let v = get(rec);
                    for _ in 0..copies {
                        if *dot_is_null && v == b"." {
                            b.append_null();
                        } else {
                            b.append_value(String::from_utf8_lossy(v));
                        }
                    }
                }
                Column::Pos(b) => {
                    for _ in 0..copies {
                        b.append_value(rec.pos);
                    }
                }
                Column::List(b, get, sep) => {
                    let v = get(rec);
                    for _ in 0..copies {
                        if v == b"." || v.is_empty() {
                            b.append_null();
                        } else {
                            for item in v.split(|c| c == sep) {
                                b.values().append_value(String::from_utf8_lossy(item));
                            }
                            b.append(true);
                        }
                    }
                }
                Column::Qual(b) => {
                    let q = if rec.qual == b"." || rec.qual.is_empty() {
                        None
                    } else {
                        super::values::parse_float(rec.qual, "QUAL", warnings)
                    };
                    b.append_option(q);
                }
                Column::Info(values, _) => {
                    split_info(rec.info, &self.info_index, &mut self.info_slots, warnings);
                    for (i, b) in values.iter_mut().enumerate() {
                        let raw = self.info_slots[i].clone().map(|r| &rec.info[r]);
                        b.append_info(raw, &plan.infos[i].id, warnings);
                    }
                }
                Column::Genotypes {
                    sample,
                    values,
                    offsets,
                    ..
                } => {
                    let nf = plan.formats.len();
                    for (j, &s) in plan.selected.iter().enumerate() {
                        sample.append_value(&plan.sample_names[s]);
                        for (f, b) in values.iter_mut().enumerate() {
                            let raw = self.sample_slots[j * nf + f]
                                .clone()
                                .map(|r| &rec.samples[r]);
                            b.append(raw, &plan.formats[f].id, warnings);
                        }
                    }
                    let last = offsets.last().copied().unwrap_or(0);
                    offsets.push(last + plan.selected.len() as i32);
                }
                // made at the end of the batch, from the number of rows
                Column::Sample { .. } => {}
                Column::Format(f, ValueBuilder::Dict(d)) => {
                    // GT of the long layout: the cohort-sized loop, kept tight
                    let nf = plan.formats.len();
                    for j in 0..plan.selected.len() {
                        match self.sample_slots[j * nf + *f].clone() {
                            Some(r) if !matches!(&rec.samples[r.clone()], b"." | b"") => {
                                d.append(&rec.samples[r])
                            }
                            _ => d.append_null(),
                        }
                    }
                }
                Column::Format(f, b) => {
                    let nf = plan.formats.len();
                    for j in 0..plan.selected.len() {
                        let raw = self.sample_slots[j * nf + *f]
                            .clone()
                            .map(|r| &rec.samples[r]);
                        b.append(raw, &plan.formats[*f].id, warnings);
                    }
                }
            }
        }
        self.rows += copies;
        self.records += 1;
        Ok(())
    }

    fn split_samples(
        &mut self,
        rec: &RecordFields<'_>,
        warnings: &mut Warnings,
    ) -> Result<(), String> {
        let _ = warnings;
        self.sample_slots.iter_mut().for_each(|s| *s = None);
        // the common case of genotype-only queries: only the first FORMAT field is needed
        if let Some(Some(f)) = self.format_keys.first()
            && self.last_needed_key == 0
        {
            let f = *f;
            return self.split_first_fields(rec, f);
        }
        let n = self.plan.sample_names.len();
        self.tabs.clear();
        self.tabs.extend(memchr_iter(b'\t', rec.samples));
        let found = if rec.samples.is_empty() {
            0
        } else {
            1 + self.tabs.len()
        };
        if found != n {
            return Err(sample_count_error(found, n));
        }
        let format = rec.format.unwrap_or(b"");
        let last_needed = self.last_needed_key;
        let nf = self.plan.formats.len();
        for (j, &s) in self.plan.selected.iter().enumerate() {
            let start = if s == 0 { 0 } else { self.tabs[s - 1] + 1 };
            let end = self.tabs.get(s).copied().unwrap_or(rec.samples.len());
            let column = &rec.samples[start..end];
            let mut offset = start;
            for (k, value) in column.split(|&b| b == b':').enumerate() {
                if k > last_needed && k < self.format_keys.len() {
                    // nothing more to decode in this column (and no need to count its fields)
                    break;
                }
                match self.format_keys.get(k) {
                    Some(Some(f)) => {
                        self.sample_slots[j * nf + f] = Some(offset..offset + value.len())
                    }
                    Some(None) => {}
                    None if column == b"." => {}
                    None => {
                        return Err(format!(
                            "sample '{}' has more fields than FORMAT '{}'",
                            self.plan.sample_names[s],
                            String::from_utf8_lossy(format)
                        ));
                    }
                }
                offset += value.len() + 1;
            }
        }
        Ok(())
    }

    /// One pass over the sample columns taking each selected sample's first field (the FORMAT
    /// field `f`) and counting the columns, for records where nothing after it is needed.
    fn split_first_fields(&mut self, rec: &RecordFields<'_>, f: usize) -> Result<(), String> {
        let nf = self.plan.formats.len();
        let slots = &mut self.sample_slots;
        first_fields(rec, &self.plan, self.format_keys.len() == 1, |j, r| {
            slots[j * nf + f] = Some(r)
        })
    }

    /// The column that is the only sample data the scan decodes, when it is FORMAT field `f`
    /// as dictionary text (GT of the long layout).
    fn sole_dictionary_column(&self, f: usize) -> Option<usize> {
        let mut found = None;
        for (i, c) in self.columns.iter().enumerate() {
            match c {
                Column::Format(g, ValueBuilder::Dict(_)) if *g == f && found.is_none() => {
                    found = Some(i)
                }
                Column::Format(..) | Column::Genotypes { .. } => return None,
                _ => {}
            }
        }
        found
    }

    /// The FORMAT keys of `rec` as this scan's field indices (worked out again only when the
    /// FORMAT text changes).
    fn read_format_keys(&mut self, rec: &RecordFields<'_>, warnings: &mut Warnings) {
        let format = rec.format.unwrap_or(b"");
        if format != self.last_format.as_slice() {
            self.last_format = format.to_vec();
            self.format_keys.clear();
            for key in format.split(|&b| b == b':') {
                let idx = match self.format_index.get(key) {
                    Some(idx) => idx,
                    None => {
                        if key != b"." && !key.is_empty() {
                            warnings.add(
                                "FORMAT/",
                                key,
                                "not in the table schema, ignored",
                                || None,
                            );
                        }
                        None
                    }
                };
                // a key repeated in FORMAT keeps its first value, as htslib does
                let idx = idx.filter(|i| !self.format_keys.contains(&Some(*i)));
                self.format_keys.push(idx);
            }
            self.last_needed_key = self
                .format_keys
                .iter()
                .rposition(Option::is_some)
                .unwrap_or(0);
        }
    }

    /// The batch of everything appended since the last call.
    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let rows = self.rows;
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|c| finish_column(c, rows))
            .collect::<Result<_, _>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(self.rows));
        self.rows = 0;
        self.records = 0;
        RecordBatch::try_new_with_options(Arc::clone(&self.plan.schema), arrays, &options)
    }
}

fn finish_column(col: &mut Column, rows: usize) -> Result<ArrayRef, ArrowError> {
    Ok(match col {
        Column::Text(b, ..) => Arc::new(b.finish()),
        Column::Sample {
            keys,
            per_record,
            names,
        } => {
            if keys.len() < rows {
                let n = (*per_record).max(1);
                *keys = (0..rows.next_multiple_of(n))
                    .map(|i| (i % n) as i32)
                    .collect();
            }
            Arc::new(DictionaryArray::<Int32Type>::try_new(
                keys.slice(0, rows),
                Arc::clone(names),
            )?)
        }
        Column::Pos(b) => Arc::new(b.finish()),
        Column::List(b, ..) => Arc::new(b.finish()),
        Column::Qual(b) => Arc::new(b.finish()),
        Column::Format(_, b) => b.finish(),
        Column::Info(values, fields) => {
            let children: Vec<ArrayRef> = values.iter_mut().map(|v| v.finish()).collect();
            if fields.is_empty() {
                Arc::new(StructArray::new_empty_fields(rows, None))
            } else {
                Arc::new(StructArray::try_new(fields.clone(), children, None)?)
            }
        }
        Column::Genotypes {
            sample,
            values,
            offsets,
            item,
        } => {
            let mut children: Vec<ArrayRef> = vec![Arc::new(sample.finish())];
            children.extend(values.iter_mut().map(|v| v.finish()));
            let DataType::Struct(fields) = item.data_type() else {
                return Err(ArrowError::SchemaError(
                    "genotypes items must be structs".into(),
                ));
            };
            let entries = StructArray::try_new(fields.clone(), children, None)?;
            let offs = OffsetBuffer::new(std::mem::replace(offsets, vec![0]).into());
            Arc::new(ListArray::try_new(
                Arc::clone(item),
                offs,
                Arc::new(entries),
                None,
            )?)
        }
    })
}

/// Field keys → field index (`None`: known but not decoded). Files have a handful to a few
/// dozen keys, for which comparing bytes beats hashing them.
struct KeyIndex {
    keys: Vec<(Vec<u8>, Option<usize>)>,
    map: Option<HashMap<Vec<u8>, Option<usize>>>,
}

impl KeyIndex {
    const LINEAR_MAX: usize = 32;

    fn new(entries: impl Iterator<Item = (Vec<u8>, Option<usize>)>) -> Self {
        let keys: Vec<_> = entries.collect();
        let map = (keys.len() > Self::LINEAR_MAX).then(|| keys.iter().cloned().collect());
        KeyIndex { keys, map }
    }

    /// `None` for an unknown key, `Some(None)` for a known key that is not decoded.
    fn get(&self, key: &[u8]) -> Option<Option<usize>> {
        match &self.map {
            Some(map) => map.get(key).copied(),
            None => self
                .keys
                .iter()
                .find(|(k, _)| k.as_slice() == key)
                .map(|(_, i)| *i),
        }
    }
}

/// Visits the first field of each selected sample's column (`visit(j, range)`, `j` indexing
/// the selected samples) in one pass over the sample columns, checking their number; with
/// `one_key` (FORMAT has one key), a column with more fields than that is an error.
#[inline]
fn first_fields(
    rec: &RecordFields<'_>,
    plan: &DecodePlan,
    one_key: bool,
    mut visit: impl FnMut(usize, Range<usize>),
) -> Result<(), String> {
    let n = plan.sample_names.len();
    let bytes = rec.samples;
    if bytes.is_empty() {
        return if n == 0 {
            Ok(())
        } else {
            Err(sample_count_error(0, n))
        };
    }
    let selected = &plan.selected;
    let all = selected.len() == n;
    let mut next = 0;
    let mut start = 0;
    let mut sample = 0;
    loop {
        // the first field: up to ':' or the end of the column
        let mut end = start;
        while end < bytes.len() && bytes[end] != b'\t' && bytes[end] != b':' {
            end += 1;
        }
        let column_end = if end < bytes.len() && bytes[end] == b':' {
            if one_key {
                let whole =
                    memchr::memchr(b'\t', &bytes[start..]).map_or(bytes.len(), |p| start + p);
                if &bytes[start..whole] != b"." {
                    return Err(format!(
                        "sample '{}' has more fields than FORMAT '{}'",
                        plan.sample_names.get(sample).map_or("?", String::as_str),
                        String::from_utf8_lossy(rec.format.unwrap_or(b""))
                    ));
                }
            }
            memchr::memchr(b'\t', &bytes[end..]).map_or(bytes.len(), |p| end + p)
        } else {
            end
        };
        if all {
            if sample < n {
                visit(sample, start..end);
            }
        } else if next < selected.len() && selected[next] == sample {
            visit(next, start..end);
            next += 1;
        }
        sample += 1;
        if column_end >= bytes.len() {
            break;
        }
        start = column_end + 1;
    }
    if sample != n {
        return Err(sample_count_error(sample, n));
    }
    Ok(())
}

fn sample_count_error(found: usize, n: usize) -> String {
    format!("record has {found} sample columns, the header names {n} samples")
}

/// Splits INFO into value ranges per declared field (first occurrence wins).
fn split_info(
    info: &[u8],
    index: &KeyIndex,
    slots: &mut [Option<Range<usize>>],
    warnings: &mut Warnings,
) {
    slots.iter_mut().for_each(|s| *s = None);
    if info == b"." || info.is_empty() {
        return;
    }
    let mut offset = 0;
    for item in info.split(|&b| b == b';') {
        let (key, value) = match memchr::memchr(b'=', item) {
            Some(eq) => (&item[..eq], offset + eq + 1..offset + item.len()),
            None => (item, offset + item.len()..offset + item.len()),
        };
        offset += item.len() + 1;
        if key.is_empty() || key == b"." {
            continue;
        }
        match index.get(key) {
            Some(Some(i)) => {
                if slots[i].is_none() {
                    slots[i] = Some(value);
                }
            }
            Some(None) => {}
            None => warnings.add("INFO/", key, "not in the table schema, ignored", || None),
        }
    }
}
