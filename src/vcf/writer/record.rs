//! Rows → VCF record lines, as the specification writes them.
//!
//! NULL is `.`; lists are comma-separated with `.` for NULL elements; a true INFO flag is its
//! key alone, a false or NULL one is left out; a FORMAT key is written when any sample of the
//! record has a value for it (GT first); floats take the fewest digits that read back as the
//! same number (`0.1`, not `0.10000000149011612`; `1e-7`), integers as written.
//!
//! How values become text (and what is percent-encoded) is [`super::values`].

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListArray, StringArray, StructArray};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::compute::cast_with_options;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;

use super::header::{FillTag, Scalar, shape_of};
use super::values::{
    ALLELE, FILTER, FORMAT, INFO, PLAIN, STRICT, Values, push_escaped, push_f32, write_joined,
    write_or_dot,
};
use crate::vcf::schema::{GENOTYPES, SAMPLE};

/// Where each VCF column is in the written rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Columns {
    /// `chrom` (required).
    pub chrom: usize,
    /// `pos` (required).
    pub pos: usize,
    /// `id`.
    pub id: Option<usize>,
    /// `ref` (required).
    pub reference: usize,
    /// `alt`: a list of alleles, or their comma-separated text.
    pub alt: Option<usize>,
    /// `qual`.
    pub qual: Option<usize>,
    /// `filter`: a list of names, or their `;`-separated text.
    pub filter: Option<usize>,
    /// `info`: a struct, one field per INFO key.
    pub info: Option<usize>,
    /// `genotypes`: a list of structs (`sample`, then one field per FORMAT key).
    pub genotypes: Option<usize>,
}

fn is_text(dt: &DataType) -> bool {
    matches!(shape_of(dt), Some(s) if s.scalar == Scalar::Str && s.list.is_none())
}

fn is_text_or_list(dt: &DataType) -> bool {
    matches!(shape_of(dt), Some(s) if s.scalar == Scalar::Str)
}

impl Columns {
    /// Finds the VCF columns of `schema`. Columns for which `leave_out` is true (generated
    /// columns of a topic) are ignored; any other column that is not a VCF column is an error.
    pub fn of(schema: &Schema, leave_out: &dyn Fn(&Field) -> bool) -> Result<Self, String> {
        let mut found: [Option<usize>; 9] = [None; 9];
        const NAMES: [&str; 9] = [
            "chrom", "pos", "id", "ref", "alt", "qual", "filter", "info", GENOTYPES,
        ];
        for (i, field) in schema.fields().iter().enumerate() {
            let Some(slot) = NAMES.iter().position(|n| n == field.name()) else {
                if leave_out(field) {
                    continue;
                }
                return Err(format!(
                    "column '{}' is not a VCF column (chrom, pos, id, ref, alt, qual, filter, info, genotypes): put a computed value inside info (named_struct) or leave it out",
                    field.name()
                ));
            };
            let dt = field.data_type();
            let ok = match NAMES[slot] {
                "chrom" | "id" | "ref" => is_text(dt),
                "pos" => {
                    matches!(shape_of(dt), Some(s) if s.scalar == Scalar::Int && s.list.is_none())
                }
                "alt" | "filter" => is_text_or_list(dt),
                "qual" => {
                    matches!(shape_of(dt), Some(s) if matches!(s.scalar, Scalar::Int | Scalar::Float) && s.list.is_none())
                }
                "info" => matches!(dt, DataType::Struct(_)),
                _ => genotype_fields(dt).is_some(),
            };
            if !ok {
                let want = match NAMES[slot] {
                    "chrom" | "id" | "ref" => "text",
                    "pos" => "an integer",
                    "alt" | "filter" => "text or a list of text",
                    "qual" => "a number",
                    "info" => "a struct",
                    _ => "a list of structs with a 'sample' text field",
                };
                return Err(format!(
                    "column '{}' has type {dt}; a VCF needs {want} there",
                    field.name()
                ));
            }
            found[slot] = Some(i);
        }
        let required = |slot: usize| {
            found[slot].ok_or_else(|| {
                format!(
                    "a VCF needs the columns chrom, pos and ref; '{}' is missing",
                    NAMES[slot]
                )
            })
        };
        Ok(Columns {
            chrom: required(0)?,
            pos: required(1)?,
            id: found[2],
            reference: required(3)?,
            alt: found[4],
            qual: found[5],
            filter: found[6],
            info: found[7],
            genotypes: found[8],
        })
    }
}

/// The FORMAT fields of a `genotypes` type (its struct's fields without `sample`), or `None`
/// when it is not a list of structs with a text `sample` field.
pub fn genotype_fields(dt: &DataType) -> Option<Vec<Field>> {
    let item = match dt {
        DataType::List(f) | DataType::LargeList(f) => f,
        _ => return None,
    };
    let DataType::Struct(fields) = item.data_type() else {
        return None;
    };
    let sample = fields.iter().find(|f| f.name() == SAMPLE)?;
    if !is_text(sample.data_type()) {
        return None;
    }
    Some(
        fields
            .iter()
            .filter(|f| f.name() != SAMPLE)
            .map(|f| f.as_ref().clone())
            .collect(),
    )
}

/// Where a written record starts and ends in the genome, and where its line ends in the
/// output buffer: what an index needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// The row in its batch (its chromosome is [`RecordWriter::chrom`]).
    pub row: usize,
    /// POS.
    pub start: i64,
    /// The last base: `INFO/END` when written, otherwise POS + len(REF) − 1.
    pub end: i64,
    /// The offset just past the record's newline in the buffer.
    pub line_end: usize,
}

/// One FORMAT field of the written genotypes.
#[derive(Debug)]
struct FormatField {
    key: Vec<u8>,
    /// The field's index in the genotype struct.
    child: usize,
}

/// Formats record batches of one schema as VCF lines.
#[derive(Debug)]
pub struct RecordWriter {
    columns: Columns,
    /// INFO keys by struct field, `None` for fields that a filled tag replaces.
    info_keys: Vec<Option<Vec<u8>>>,
    /// The index of an integer `END` among the INFO fields.
    info_end: Option<usize>,
    /// FORMAT fields, GT first.
    formats: Vec<FormatField>,
    /// The index of GT among the genotype struct's fields.
    gt: Option<usize>,
    /// The index of `sample` among the genotype struct's fields.
    sample: usize,
    /// The sample names every row's genotypes must hold, in order (set by the first row
    /// that has them, unless given).
    row_samples: Option<Vec<String>>,
    /// The positions within a row's genotypes that are written (all when `None`).
    picked: Option<Vec<usize>>,
    /// The samples to write, by name (all when `None`).
    wanted: Option<Vec<String>>,
    fill_tags: Vec<FillTag>,
    /// Rows formatted so far (for messages).
    rows: u64,
    /// The last batch's chromosome names.
    chrom: Option<StringArray>,
}

/// A row that cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("row {row}{at}: {message}")]
pub struct RowError {
    /// 1-based, over the whole write.
    pub row: u64,
    /// ` (chrom:pos)` when known.
    pub at: String,
    /// What is wrong.
    pub message: String,
}

impl RecordWriter {
    /// A writer for rows of `schema` whose VCF columns are `columns`. `samples`, when given,
    /// are the samples to write, in that order (each must be in every row's genotypes).
    pub fn new(
        schema: &Schema,
        columns: Columns,
        samples: Option<Vec<String>>,
        fill_tags: Vec<FillTag>,
    ) -> Result<Self, String> {
        let filled: Vec<&str> = fill_tags.iter().map(|t| t.id()).collect();
        let (info_keys, info_end) = match columns.info {
            Some(i) => {
                let DataType::Struct(fields) = schema.field(i).data_type() else {
                    return Err("info is not a struct".into());
                };
                let keys = fields
                    .iter()
                    .map(|f| {
                        (!filled.contains(&f.name().as_str())).then(|| f.name().as_bytes().to_vec())
                    })
                    .collect();
                let end = fields.iter().position(|f| {
                    f.name() == "END"
                        && matches!(shape_of(f.data_type()), Some(s) if s.scalar == Scalar::Int && s.list.is_none())
                });
                (keys, end)
            }
            None => (Vec::new(), None),
        };
        let mut formats = Vec::new();
        let (mut gt, mut sample) = (None, 0);
        if let Some(g) = columns.genotypes {
            let item = match schema.field(g).data_type() {
                DataType::List(f) | DataType::LargeList(f) => f,
                _ => return Err("genotypes is not a list".into()),
            };
            let DataType::Struct(fields) = item.data_type() else {
                return Err("genotypes entries are not structs".into());
            };
            for (child, f) in fields.iter().enumerate() {
                if f.name() == SAMPLE {
                    sample = child;
                    continue;
                }
                if f.name() == "GT" {
                    gt = Some(child);
                }
                formats.push(FormatField {
                    key: f.name().as_bytes().to_vec(),
                    child,
                });
            }
            // GT comes first, as the specification requires
            formats.sort_by_key(|f| f.key.as_slice() != b"GT");
        }
        if !fill_tags.is_empty() && gt.is_none() {
            return Err(format!(
                "fill_tags ({}) needs the genotypes column with its GT field",
                filled.join(",")
            ));
        }
        Ok(RecordWriter {
            columns,
            info_keys,
            info_end,
            formats,
            gt,
            sample,
            row_samples: None,
            picked: None,
            wanted: samples,
            fill_tags,
            rows: 0,
            chrom: None,
        })
    }

    /// The sample names of the first row that has genotypes, narrowed to the wanted samples:
    /// the samples of the header. `None` when `batch` has no such row.
    pub fn samples_of(&mut self, batch: &RecordBatch) -> Result<Option<Vec<String>>, String> {
        let Some(g) = self.columns.genotypes else {
            return Ok(Some(Vec::new()));
        };
        let list = genotype_list(batch.column(g))?;
        let Some(row) = (0..list.len()).find(|&r| list.is_valid(r)) else {
            return Ok(None);
        };
        let entries = list.value(row);
        let names =
            Values::new(entries.as_struct().column(self.sample)).map_err(|e| e.to_string())?;
        let Values::Str(names) = names else {
            return Err("sample is not text".into());
        };
        let all: Vec<String> = (0..names.len())
            .map(|i| names.value(i).to_string())
            .collect();
        self.set_samples(all).map(Some)
    }

    /// Sets the samples every row's genotypes hold (from the first row that has them, or the
    /// source's when no row does); returns those written, narrowed to the wanted samples.
    pub fn set_samples(&mut self, all: Vec<String>) -> Result<Vec<String>, String> {
        let picked = match &self.wanted {
            None => None,
            Some(wanted) => Some(
                wanted
                    .iter()
                    .map(|w| {
                        all.iter().position(|n| n == w).ok_or_else(|| {
                            format!(
                                "sample '{w}' is not in the written genotypes ({} samples)",
                                all.len()
                            )
                        })
                    })
                    .collect::<Result<Vec<usize>, String>>()?,
            ),
        };
        let written = match &picked {
            None => all.clone(),
            Some(p) => p.iter().map(|&i| all[i].clone()).collect(),
        };
        self.row_samples = Some(all);
        self.picked = picked;
        Ok(written)
    }

    /// The chromosome of row `row` of the last batch written.
    pub fn chrom(&self, row: usize) -> &str {
        self.chrom.as_ref().map_or("", |c| c.value(row))
    }

    /// Appends the lines of `batch` to `out`; with `spans`, records where each starts and ends.
    pub fn write_batch(
        &mut self,
        batch: &RecordBatch,
        out: &mut Vec<u8>,
        mut spans: Option<&mut Vec<Span>>,
    ) -> Result<(), RowError> {
        let c = &self.columns;
        let prepare = |i: usize| Values::new(batch.column(i));
        let error = |rows: u64, message: String| RowError {
            row: rows + 1,
            at: String::new(),
            message,
        };
        let prepared = (|| -> Result<_, ArrowError> {
            let chrom = cast_with_options(batch.column(c.chrom), &DataType::Utf8, &STRICT)?;
            let Values::Int(pos) = prepare(c.pos)? else {
                return Err(ArrowError::CastError("pos is not an integer".into()));
            };
            let Values::Str(reference) = prepare(c.reference)? else {
                return Err(ArrowError::CastError("ref is not text".into()));
            };
            Ok((
                chrom.as_string::<i32>().clone(),
                pos,
                reference,
                c.id.map(prepare).transpose()?,
                c.alt.map(prepare).transpose()?,
                c.qual.map(prepare).transpose()?,
                c.filter.map(prepare).transpose()?,
            ))
        })();
        let (chrom, pos, reference, id, alt, qual, filter) =
            prepared.map_err(|e| error(self.rows, e.to_string()))?;
        let info: Vec<Values> = match c.info {
            Some(i) => batch
                .column(i)
                .as_struct()
                .columns()
                .iter()
                .map(Values::new)
                .collect::<Result<_, _>>()
                .map_err(|e| error(self.rows, e.to_string()))?,
            None => Vec::new(),
        };
        let info_nulls = c.info.and_then(|i| batch.column(i).nulls().cloned());
        let genotypes = match c.genotypes {
            Some(g) => Some(
                GenotypeColumns::new(batch.column(g), self.sample)
                    .map_err(|e| error(self.rows, e))?,
            ),
            None => None,
        };
        if let Some(g) = &genotypes
            && self.row_samples.is_none()
            && g.list.null_count() < g.list.len()
        {
            self.samples_of(batch).map_err(|e| error(self.rows, e))?;
        }
        let mut counts: Vec<u32> = Vec::new();
        for row in 0..batch.num_rows() {
            self.rows += 1;
            let at = |message: String| RowError {
                row: self.rows,
                at: if chrom.is_valid(row) && pos.is_valid(row) {
                    format!(" ({}:{})", chrom.value(row), pos.value(row))
                } else {
                    String::new()
                },
                message,
            };
            if chrom.is_null(row) || pos.is_null(row) || reference.is_null(row) {
                return Err(at("chrom, pos and ref cannot be NULL in a VCF".into()));
            }
            let p = pos.value(row);
            if p < 0 {
                return Err(at(format!("pos {p} is negative")));
            }
            push_escaped(out, chrom.value(row).as_bytes(), PLAIN.value);
            out.push(b'\t');
            out.extend_from_slice(itoa::Buffer::new().format(p).as_bytes());
            out.push(b'\t');
            write_or_dot(out, id.as_ref(), row, &PLAIN);
            out.push(b'\t');
            let r = reference.value(row);
            push_escaped(out, r.as_bytes(), PLAIN.value);
            out.push(b'\t');
            write_joined(out, alt.as_ref(), row, b',', &ALLELE);
            out.push(b'\t');
            write_or_dot(out, qual.as_ref(), row, &PLAIN);
            out.push(b'\t');
            write_joined(out, filter.as_ref(), row, b';', &FILTER);
            out.push(b'\t');
            // INFO
            let info_start = out.len();
            let info_valid = info_nulls.as_ref().is_none_or(|n| n.is_valid(row));
            if info_valid {
                for (values, key) in info.iter().zip(&self.info_keys) {
                    let Some(key) = key else { continue };
                    if !values.is_present(row) {
                        continue;
                    }
                    if out.len() > info_start {
                        out.push(b';');
                    }
                    out.extend_from_slice(key);
                    if !matches!(values, Values::Flag(_)) {
                        out.push(b'=');
                        values.write(row, out, &INFO);
                    }
                }
            }
            if !self.fill_tags.is_empty()
                && let Some(g) = &genotypes
            {
                let alts = alt.as_ref().map_or(0, |a| a.count(row));
                counts.clear();
                counts.resize(alts, 0);
                let an = g.allele_counts(row, self.gt, self.picked.as_deref(), &mut counts);
                for tag in &self.fill_tags {
                    if *tag != FillTag::An && alts == 0 {
                        continue;
                    }
                    if out.len() > info_start {
                        out.push(b';');
                    }
                    out.extend_from_slice(tag.id().as_bytes());
                    out.push(b'=');
                    match tag {
                        FillTag::An => {
                            out.extend_from_slice(itoa::Buffer::new().format(an).as_bytes())
                        }
                        FillTag::Ac | FillTag::Af => {
                            for (k, &n) in counts.iter().enumerate() {
                                if k > 0 {
                                    out.push(b',');
                                }
                                match tag {
                                    FillTag::Ac => out.extend_from_slice(
                                        itoa::Buffer::new().format(n).as_bytes(),
                                    ),
                                    _ if an == 0 => out.push(b'.'),
                                    _ => push_f32(out, n as f32 / an as f32),
                                }
                            }
                        }
                    }
                }
            }
            if out.len() == info_start {
                out.push(b'.');
            }
            // FORMAT and the samples
            if let Some(g) = &genotypes {
                self.write_samples(g, row, out).map_err(at)?;
            }
            out.push(b'\n');
            if let Some(spans) = spans.as_deref_mut() {
                let end = self
                    .info_end
                    .filter(|_| info_valid)
                    .and_then(|e| match &info[e] {
                        Values::Int(a) if a.is_valid(row) => Some(a.value(row)),
                        _ => None,
                    })
                    .unwrap_or(p + r.len().max(1) as i64 - 1);
                spans.push(Span {
                    row,
                    start: p,
                    end: end.max(p),
                    line_end: out.len(),
                });
            }
        }
        self.chrom = Some(chrom);
        Ok(())
    }

    fn write_samples(
        &self,
        g: &GenotypeColumns,
        row: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        let samples = self.row_samples.as_deref().unwrap_or(&[]);
        let written = self.picked.as_ref().map_or(samples.len(), Vec::len);
        if written == 0 {
            return Ok(());
        }
        if g.list.is_null(row) {
            out.extend_from_slice(b"\t.");
            for _ in 0..written {
                out.extend_from_slice(b"\t.");
            }
            return Ok(());
        }
        let (start, end) = (g.offsets[row] as usize, g.offsets[row + 1] as usize);
        if end - start != samples.len()
            || (0..samples.len()).any(|k| g.names.value(start + k) != samples[k])
        {
            return Err(format!(
                "its genotypes hold other samples than the first row's ({} samples, {} here): every row must list the same samples in the same order",
                samples.len(),
                end - start
            ));
        }
        let entry = |k: usize| start + self.picked.as_ref().map_or(k, |p| p[k]);
        out.push(b'\t');
        let keys_start = out.len();
        let mut present: [usize; 64] = [0; 64];
        let mut n_present = 0;
        let mut many: Vec<usize> = Vec::new();
        for (f, field) in self.formats.iter().enumerate() {
            let values = &g.fields[field.child];
            let any = (0..written).any(|k| {
                let e = entry(k);
                g.entries_valid(e) && !values.is_null(e)
            });
            if !any {
                continue;
            }
            if out.len() > keys_start {
                out.push(b':');
            }
            out.extend_from_slice(&field.key);
            if n_present < present.len() {
                present[n_present] = f;
            } else {
                many.push(f);
            }
            n_present += 1;
        }
        if n_present == 0 {
            out.push(b'.');
        }
        let present: Vec<usize> = present[..n_present.min(64)]
            .iter()
            .copied()
            .chain(many)
            .collect();
        for k in 0..written {
            out.push(b'\t');
            let e = entry(k);
            if !g.entries_valid(e) || present.is_empty() {
                out.push(b'.');
                continue;
            }
            for (i, &f) in present.iter().enumerate() {
                if i > 0 {
                    out.push(b':');
                }
                g.fields[self.formats[f].child].write(e, out, &FORMAT);
            }
        }
        Ok(())
    }
}

fn genotype_list(array: &ArrayRef) -> Result<ListArray, String> {
    match array.data_type() {
        DataType::List(_) => Ok(array.as_list::<i32>().clone()),
        DataType::LargeList(f) => cast_with_options(array, &DataType::List(Arc::clone(f)), &STRICT)
            .map(|a| a.as_list::<i32>().clone())
            .map_err(|e| e.to_string()),
        other => Err(format!("genotypes has type {other}")),
    }
}

/// One batch's `genotypes`: the list, its entries' validity, the sample names and the
/// FORMAT values (by struct field; `sample`'s slot holds the names again).
struct GenotypeColumns {
    list: ListArray,
    offsets: OffsetBuffer<i32>,
    entry_nulls: Option<NullBuffer>,
    names: StringArray,
    fields: Vec<Values>,
}

impl GenotypeColumns {
    fn new(array: &ArrayRef, sample: usize) -> Result<Self, String> {
        let list = genotype_list(array)?;
        let entries: &StructArray = list.values().as_struct();
        let fields: Vec<Values> = entries
            .columns()
            .iter()
            .map(Values::new)
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        let Values::Str(names) = Values::new(entries.column(sample)).map_err(|e| e.to_string())?
        else {
            return Err("sample is not text".into());
        };
        Ok(GenotypeColumns {
            offsets: list.offsets().clone(),
            entry_nulls: entries.nulls().cloned(),
            names,
            fields,
            list,
        })
    }

    fn entries_valid(&self, e: usize) -> bool {
        self.entry_nulls.as_ref().is_none_or(|n| n.is_valid(e))
    }

    /// Counts the alleles of the written samples' GT in row `row`: per alternate allele into
    /// `counts` (alleles beyond it are not counted), and returns AN, the called alleles.
    fn allele_counts(
        &self,
        row: usize,
        gt: Option<usize>,
        picked: Option<&[usize]>,
        counts: &mut [u32],
    ) -> u32 {
        let (Some(gt), false) = (gt, self.list.is_null(row)) else {
            return 0;
        };
        let Values::Str(calls) = &self.fields[gt] else {
            return 0;
        };
        let start = self.offsets[row] as usize;
        let n = self.offsets[row + 1] as usize - start;
        let mut an = 0;
        let mut count = |e: usize| {
            if !self.entries_valid(e) || calls.is_null(e) {
                return;
            }
            for allele in calls.value(e).split(['/', '|']) {
                if let Ok(a) = allele.parse::<usize>() {
                    an += 1;
                    if a >= 1 && a <= counts.len() {
                        counts[a - 1] += 1;
                    }
                }
            }
        };
        match picked {
            Some(p) => p.iter().for_each(|&k| count(start + k)),
            None => (0..n).for_each(|k| count(start + k)),
        }
        an
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{
        BooleanArray, Float64Array, Int32Array, Int64Array, ListBuilder, StringBuilder, StructArray,
    };
    use datafusion::arrow::datatypes::Fields;

    fn text(values: &[Option<&str>]) -> ArrayRef {
        Arc::new(StringArray::from(values.to_vec()))
    }

    fn text_lists(rows: &[Option<Vec<Option<&str>>>]) -> ArrayRef {
        let mut b = ListBuilder::new(StringBuilder::new());
        for row in rows {
            match row {
                Some(items) => {
                    for i in items {
                        b.values().append_option(*i);
                    }
                    b.append(true);
                }
                None => b.append(false),
            }
        }
        Arc::new(b.finish())
    }

    fn write(
        batch: &RecordBatch,
        samples: Option<Vec<String>>,
        fill: Vec<FillTag>,
    ) -> Result<String, String> {
        let columns = Columns::of(&batch.schema(), &|_| false)?;
        let mut w = RecordWriter::new(&batch.schema(), columns, samples, fill)?;
        w.samples_of(batch)?;
        let mut out = Vec::new();
        w.write_batch(batch, &mut out, None)
            .map_err(|e| e.to_string())?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn sites_with_nulls_lists_flags_and_reserved_characters() {
        let info = StructArray::from(vec![
            (
                Arc::new(Field::new("DP", DataType::Int32, true)),
                Arc::new(Int32Array::from(vec![Some(7), None])) as ArrayRef,
            ),
            (
                Arc::new(Field::new("DB", DataType::Boolean, true)),
                Arc::new(BooleanArray::from(vec![Some(true), Some(false)])) as ArrayRef,
            ),
            (
                Arc::new(Field::new("NOTE", DataType::Utf8, true)),
                text(&[Some("a;b=c\td"), Some("50%")]),
            ),
            (
                Arc::new(Field::new(
                    "TAGS",
                    DataType::new_list(DataType::Utf8, true),
                    true,
                )),
                text_lists(&[Some(vec![Some("x,y"), None]), Some(vec![])]),
            ),
        ]);
        let schema = Schema::new(vec![
            Field::new("chrom", DataType::Utf8, false),
            Field::new("pos", DataType::Int64, false),
            Field::new("id", DataType::Utf8, true),
            Field::new("ref", DataType::Utf8, false),
            Field::new("alt", DataType::new_list(DataType::Utf8, true), true),
            Field::new("qual", DataType::Float64, true),
            Field::new("filter", DataType::new_list(DataType::Utf8, true), true),
            Field::new("info", info.data_type().clone(), true),
        ]);
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![
                text(&[Some("chr1"), Some("chr2")]),
                Arc::new(Int64Array::from(vec![10, 20])),
                text(&[Some("rs1"), None]),
                text(&[Some("A"), Some("ACG")]),
                text_lists(&[Some(vec![Some("C"), Some("<DEL>")]), None]),
                Arc::new(Float64Array::from(vec![Some(0.1), None])),
                text_lists(&[Some(vec![Some("q10"), Some("s50")]), None]),
                Arc::new(info),
            ],
        )
        .unwrap();
        assert_eq!(
            write(&batch, None, vec![]).unwrap(),
            "chr1\t10\trs1\tA\tC,<DEL>\t0.1\tq10;s50\tDP=7;DB;NOTE=a%3Bb=c%09d;TAGS=x%2Cy,.\n\
             chr2\t20\t.\tACG\t.\t.\t.\tNOTE=50%\n"
        );
    }

    /// A sample's name, GT and DP.
    type Cell<'a> = (&'a str, Option<&'a str>, Option<i32>);

    fn genotypes(rows: &[Vec<Cell>]) -> ArrayRef {
        let mut samples = Vec::new();
        let mut gts = Vec::new();
        let mut dps = Vec::new();
        let mut offsets = vec![0i32];
        for row in rows {
            for (s, gt, dp) in row {
                samples.push(Some(*s));
                gts.push(*gt);
                dps.push(*dp);
            }
            offsets.push(samples.len() as i32);
        }
        let fields: Fields = vec![
            Field::new("sample", DataType::Utf8, false),
            Field::new("GT", DataType::Utf8, true),
            Field::new("DP", DataType::Int32, true),
        ]
        .into();
        let entries = StructArray::new(
            fields.clone(),
            vec![text(&samples), text(&gts), Arc::new(Int32Array::from(dps))],
            None,
        );
        Arc::new(ListArray::new(
            Arc::new(Field::new_list_field(DataType::Struct(fields), false)),
            OffsetBuffer::new(offsets.into()),
            Arc::new(entries),
            None,
        ))
    }

    fn sample_batch(g: ArrayRef, alts: &[Option<Vec<Option<&str>>>]) -> RecordBatch {
        let n = alts.len();
        let schema = Schema::new(vec![
            Field::new("chrom", DataType::Utf8, false),
            Field::new("pos", DataType::Int32, false),
            Field::new("ref", DataType::Utf8, false),
            Field::new("alt", DataType::new_list(DataType::Utf8, true), true),
            Field::new("genotypes", g.data_type().clone(), true),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                text(&vec![Some("1"); n]),
                Arc::new(Int32Array::from((1..=n as i32).collect::<Vec<_>>())),
                text(&vec![Some("A"); n]),
                text_lists(alts),
                g,
            ],
        )
        .unwrap()
    }

    #[test]
    fn samples_keys_present_in_the_record_and_subsets() {
        let g = genotypes(&[
            vec![("S1", Some("0|1"), Some(3)), ("S2", Some("./."), None)],
            vec![("S1", Some("1/1"), None), ("S2", None, None)],
        ]);
        let batch = sample_batch(g, &[Some(vec![Some("C")]), Some(vec![Some("G")])]);
        assert_eq!(
            write(&batch, None, vec![]).unwrap(),
            "1\t1\t.\tA\tC\t.\t.\t.\tGT:DP\t0|1:3\t./.:.\n1\t2\t.\tA\tG\t.\t.\t.\tGT\t1/1\t.\n"
        );
        assert_eq!(
            write(
                &batch,
                Some(vec!["S2".into()]),
                vec![FillTag::Ac, FillTag::An, FillTag::Af]
            )
            .unwrap(),
            "1\t1\t.\tA\tC\t.\t.\tAC=0;AN=0;AF=.\tGT\t./.\n1\t2\t.\tA\tG\t.\t.\tAC=0;AN=0;AF=.\t.\t.\n"
        );
        let err = write(&batch, Some(vec!["S3".into()]), vec![]).unwrap_err();
        assert!(
            err.contains("sample 'S3' is not in the written genotypes"),
            "{err}"
        );
    }

    #[test]
    fn fill_tags_count_alleles_of_the_written_calls() {
        let g = genotypes(&[vec![
            ("S1", Some("0|1"), None),
            ("S2", Some("1/2"), None),
            ("S3", Some("./1"), None),
        ]]);
        let batch = sample_batch(g, &[Some(vec![Some("C"), Some("T")])]);
        let out = write(&batch, None, vec![FillTag::Ac, FillTag::An, FillTag::Af]).unwrap();
        assert!(out.contains("\tAC=3,1;AN=5;AF=0.6,0.2\t"), "{out}");
    }

    #[test]
    fn rows_with_other_samples_are_refused() {
        let g = genotypes(&[
            vec![("S1", Some("0|1"), None)],
            vec![("S2", Some("0|1"), None)],
        ]);
        let batch = sample_batch(g, &[Some(vec![Some("C")]), Some(vec![Some("C")])]);
        let err = write(&batch, None, vec![]).unwrap_err();
        assert!(
            err.starts_with("row 2 (1:2): its genotypes hold other samples"),
            "{err}"
        );
    }

    #[test]
    fn columns_must_be_vcf_columns() {
        let schema = Schema::new(vec![
            Field::new("chrom", DataType::Utf8, false),
            Field::new("pos", DataType::Int64, false),
            Field::new("ref", DataType::Utf8, false),
            Field::new("extra", DataType::Int64, false),
        ]);
        let err = Columns::of(&schema, &|_| false).unwrap_err();
        assert!(
            err.starts_with("column 'extra' is not a VCF column"),
            "{err}"
        );
        assert!(Columns::of(&schema, &|f| f.name() == "extra").is_ok());
        let schema = Schema::new(vec![
            Field::new("chrom", DataType::Utf8, false),
            Field::new("pos", DataType::Utf8, false),
        ]);
        let err = Columns::of(&schema, &|_| false).unwrap_err();
        assert!(
            err.contains("'pos' has type Utf8; a VCF needs an integer"),
            "{err}"
        );
    }
}
