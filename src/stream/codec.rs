//! Rows ↔ messages. One variant per message: the value is the row as JSON (default) or as an
//! Arrow IPC stream; the key is the canonical variant key (`chrom:pos:ref:alt`, see
//! [`crate::vcf::key`]); each message also has a 128-bit id made from its key and content
//! ([`message_id`]: a re-sent row has the same id). Reading adds the metadata columns
//! `_partition`, `_offset`, `_timestamp`, `_key` (and `_id` where the platform keeps ids).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Cursor;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int32Array, Int64Array, RecordBatch, RecordBatchOptions, StringArray,
    StringBuilder, TimestampMillisecondArray, UInt32Array,
};
use datafusion::arrow::compute::{concat_batches, take_record_batch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;

use bytes::Bytes;
use twox_hash::XxHash3_128;

use super::StreamError;
use super::json::JsonDecoder;
use super::json_rows;
use super::options::{Format, OnError};
use crate::vcf::key::write_variant_key;

/// Field metadata key marking a column that a table fills itself (`_partition`, `_offset`, …
/// of a topic table): an `INSERT` without a column list leaves such columns out.
pub const GENERATED_COLUMN: &str = "vcfq.generated";

/// Where `_key` sits among [`metadata_fields`].
pub const KEY_COLUMN: usize = 3;
/// Where `_id` sits among [`metadata_fields`] (when there).
pub const ID_COLUMN: usize = 4;

/// The columns a topic table adds to the variant columns, marked as generated (`with_id`:
/// also `_id`, the message id as 32 hex digits, on platforms that keep one). They are
/// nullable because an `INSERT` fills them with NULL (the topic assigns them); reads never
/// leave them NULL, except `_timestamp`/`_key` of messages without one.
pub fn metadata_fields(with_id: bool) -> Vec<Field> {
    let generated = HashMap::from([(GENERATED_COLUMN.to_string(), "true".to_string())]);
    let mut fields = vec![
        Field::new("_partition", DataType::Int32, true).with_metadata(generated.clone()),
        Field::new("_offset", DataType::Int64, true).with_metadata(generated.clone()),
        Field::new(
            "_timestamp",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            true,
        )
        .with_metadata(generated.clone()),
        Field::new("_key", DataType::Utf8, true).with_metadata(generated.clone()),
    ];
    if with_id {
        fields.push(Field::new("_id", DataType::Utf8, true).with_metadata(generated));
    }
    fields
}

/// The 128-bit id of a message: XXH3-128 over a tag, its key, a separator and its value, so
/// that the same row sent twice has the same id and two different rows (even of one variant)
/// do not. Never 0 (which Iggy reads as "assign one").
pub fn message_id(key: Option<&str>, value: &[u8]) -> u128 {
    let mut h = XxHash3_128::new();
    match key {
        Some(k) => {
            h.write(&[1]);
            h.write(k.as_bytes());
        }
        None => h.write(&[0]),
    }
    h.write(&[0xff]);
    h.write(value);
    h.finish_128().max(1)
}

/// The partition (of `partitions`) a key goes to: FNV-1a 64 of the key, so one variant
/// always lands in one partition (rows without a key go to partition 0).
pub fn partition_of(key: Option<&str>, partitions: u32) -> u32 {
    let Some(key) = key else {
        return 0;
    };
    let mut h: u64 = 0xcbf29ce484222325;
    for b in key.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    (h % u64::from(partitions.max(1))) as u32
}

/// One message to write.
#[derive(Debug, Clone)]
pub struct OutMessage {
    /// Canonical variant key (`None` when the row has no chrom/pos/ref).
    pub key: Option<String>,
    /// Its id, from key and value ([`message_id`]).
    pub id: u128,
    /// Encoded row.
    pub value: Bytes,
}

/// Turns rows into messages.
#[derive(Debug, Clone)]
pub struct Encoder {
    format: Format,
    schema: SchemaRef,
    /// The schema Arrow IPC messages carry: the columns without the table's metadata (a VCF
    /// header's contigs and samples would otherwise travel in every message).
    message_schema: SchemaRef,
}

/// `schema` without its own metadata and its columns' (what nested types hold stays: it is
/// part of their type).
fn bare(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_metadata(HashMap::new()))
            .collect::<Vec<_>>(),
    ))
}

impl Encoder {
    /// Messages carrying the columns of `schema` (the table's variant columns).
    pub fn new(format: Format, schema: SchemaRef) -> Self {
        Encoder {
            format,
            message_schema: bare(&schema),
            schema,
        }
    }

    /// One message per row of `batch` (columns matched to the variant columns by name;
    /// generated columns such as `_offset` are not written).
    pub fn encode(&self, batch: &RecordBatch) -> Result<Vec<OutMessage>, String> {
        let columns =
            self.schema
                .fields()
                .iter()
                .map(|f| {
                    batch.column_by_name(f.name()).cloned().ok_or_else(|| {
                        format!("column '{}' missing from the rows to write", f.name())
                    })
                })
                .collect::<Result<Vec<ArrayRef>, String>>()?;
        let rows =
            RecordBatch::try_new(Arc::clone(&self.schema), columns).map_err(|e| e.to_string())?;
        let keys = keys_of(&rows);
        let values = match self.format {
            Format::Json => json_rows(&rows)?,
            Format::ArrowIpc => {
                let bare =
                    RecordBatch::try_new(Arc::clone(&self.message_schema), rows.columns().to_vec())
                        .map_err(|e| e.to_string())?;
                // each row copied into arrays of its own first: a slice's buffers would carry
                // bytes that depend on its neighbours, so the same row would not always encode
                // to the same message (and id)
                (0..bare.num_rows())
                    .map(|i| {
                        let row = take_record_batch(&bare, &UInt32Array::from(vec![i as u32]))
                            .map_err(|e| e.to_string())?;
                        ipc_row(&row)
                    })
                    .collect::<Result<Vec<_>, String>>()?
            }
        };
        Ok(keys
            .into_iter()
            .zip(values)
            .map(|(key, value)| OutMessage {
                id: message_id(key.as_deref(), &value),
                key,
                value,
            })
            .collect())
    }
}

/// The one-pass decoder for JSON messages of `variant` columns, where it reads their types.
fn json_decoder(format: Format, variant: &SchemaRef) -> Option<JsonDecoder> {
    match format {
        Format::Json => JsonDecoder::new(Arc::clone(variant)),
        Format::ArrowIpc => None,
    }
}

fn json_rows(rows: &RecordBatch) -> Result<Vec<Bytes>, String> {
    let mut buf = Vec::new();
    let mut ends = Vec::new();
    // bytes between one row and the next
    let mut gap = 0;
    if !json_rows::write_rows(rows, &mut buf, &mut ends) {
        // a type the fast writer does not cover: arrow_json, whose lines are rows (JSON
        // escapes newlines inside strings)
        let mut writer = arrow_json::LineDelimitedWriter::new(&mut buf);
        writer.write(rows).map_err(|e| e.to_string())?;
        writer.finish().map_err(|e| e.to_string())?;
        drop(writer);
        ends = memchr::memchr_iter(b'\n', &buf).collect();
        gap = 1;
    }
    // messages are slices of one buffer
    let buf = Bytes::from(buf);
    let mut start = 0;
    let mut messages = Vec::with_capacity(ends.len());
    for end in ends {
        messages.push(buf.slice(start..end));
        start = end + gap;
    }
    Ok(messages)
}

fn ipc_row(row: &RecordBatch) -> Result<Bytes, String> {
    let mut buf = Vec::new();
    let mut writer = StreamWriter::try_new(&mut buf, &row.schema()).map_err(|e| e.to_string())?;
    writer.write(row).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    drop(writer);
    Ok(buf.into())
}

/// The canonical key of each row, from its `chrom`, `pos`, `ref` and `alt` columns.
fn keys_of(rows: &RecordBatch) -> Vec<Option<String>> {
    let n = rows.num_rows();
    // whatever string or integer type the rows came in (Utf8View from VALUES, Int32, …)
    let as_type = |name: &str, to: &DataType| {
        rows.column_by_name(name)
            .and_then(|c| datafusion::arrow::compute::cast(c, to).ok())
    };
    let chrom = as_type("chrom", &DataType::Utf8).and_then(|c| c.as_string_opt::<i32>().cloned());
    let pos = as_type("pos", &DataType::Int64).and_then(|c| {
        c.as_primitive_opt::<datafusion::arrow::datatypes::Int64Type>()
            .cloned()
    });
    let reference = as_type("ref", &DataType::Utf8).and_then(|c| c.as_string_opt::<i32>().cloned());
    let (Some(chrom), Some(pos), Some(reference)) = (chrom, pos, reference) else {
        return vec![None; n];
    };
    let alt = rows
        .column_by_name("alt")
        .and_then(|a| match a.data_type() {
            DataType::Utf8 => Some(Arc::clone(a)),
            DataType::List(item) if item.data_type() == &DataType::Utf8 => Some(Arc::clone(a)),
            DataType::List(_) | DataType::LargeList(_) | DataType::ListView(_) => {
                let item = Arc::new(Field::new("item", DataType::Utf8, true));
                datafusion::arrow::compute::cast(a, &DataType::List(item)).ok()
            }
            _ => datafusion::arrow::compute::cast(a, &DataType::Utf8).ok(),
        });
    let alt = alt.as_ref();
    // one buffer of alleles for every row (they borrow from the arrays)
    let mut alleles: Vec<&str> = Vec::new();
    (0..n)
        .map(|i| {
            if chrom.is_null(i) || pos.is_null(i) || reference.is_null(i) {
                return None;
            }
            alleles.clear();
            if let Some(alt) = alt {
                alleles_at(alt, i, &mut alleles);
            }
            let (chrom, reference) = (chrom.value(i), reference.value(i));
            let mut key = String::with_capacity(chrom.len() + reference.len() + 16);
            write_variant_key(&mut key, chrom, pos.value(i), reference, &alleles);
            Some(key)
        })
        .collect()
}

/// The ALT alleles of row `i` of an `alt` column (List<Utf8>, or Utf8 with `,` between),
/// pushed to `out` (a null allele is `.`).
fn alleles_at<'a>(alt: &'a ArrayRef, i: usize, out: &mut Vec<&'a str>) {
    if alt.is_null(i) {
        return;
    }
    match alt.data_type() {
        DataType::List(_) => {
            let list = alt.as_list::<i32>();
            if let Some(s) = list.values().as_string_opt::<i32>() {
                let offsets = list.value_offsets();
                let (start, end) = (offsets[i] as usize, offsets[i + 1] as usize);
                out.extend((start..end).map(|j| if s.is_null(j) { "." } else { s.value(j) }));
            }
        }
        DataType::Utf8 => out.extend(alt.as_string::<i32>().value(i).split(',')),
        _ => {}
    }
}

/// One received message.
#[derive(Debug, Clone)]
pub struct InMessage {
    /// Partition it came from.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Broker or producer time, ms since the epoch.
    pub timestamp: Option<i64>,
    /// Its key, as text.
    pub key: Option<String>,
    /// Its id, on platforms that keep one.
    pub id: Option<u128>,
    /// Its value (`None`: a tombstone).
    pub value: Option<Bytes>,
}

/// Metadata column `column` (an index into [`metadata_fields`]) of `messages`.
fn metadata_column(column: usize, messages: &[InMessage]) -> ArrayRef {
    match column {
        0 => Arc::new(Int32Array::from_iter_values(
            messages.iter().map(|m| m.partition),
        )),
        1 => Arc::new(Int64Array::from_iter_values(
            messages.iter().map(|m| m.offset),
        )),
        2 => Arc::new(
            TimestampMillisecondArray::from_iter(messages.iter().map(|m| m.timestamp))
                .with_timezone("UTC"),
        ),
        3 => Arc::new(StringArray::from_iter(
            messages.iter().map(|m| m.key.as_deref()),
        )),
        _ => {
            let mut id = StringBuilder::with_capacity(messages.len(), messages.len() * 32);
            let mut hex = String::with_capacity(32);
            for m in messages {
                // a platform that keeps no ids: the id the writer gave the message
                let computed = || {
                    m.value
                        .as_deref()
                        .map(|value| message_id(m.key.as_deref(), value))
                };
                match m.id.or_else(computed) {
                    Some(value) => {
                        hex.clear();
                        let _ = write!(hex, "{value:032x}");
                        id.append_value(&hex);
                    }
                    None => id.append_null(),
                }
            }
            Arc::new(id.finish())
        }
    }
}

/// Turns messages into rows of the full table schema (variant columns + metadata columns).
pub struct Decoder {
    format: Format,
    on_error: OnError,
    /// The variant columns decoded (all of them unless [`Decoder::only`] chose some).
    variant: SchemaRef,
    /// Which of the message's columns those are (`None`: all).
    columns: Option<Vec<usize>>,
    /// Every column a message carries, when only some are decoded.
    message: Option<SchemaRef>,
    full: SchemaRef,
    with_id: bool,
    /// The metadata columns made (indices into [`metadata_fields`]; all unless
    /// [`Decoder::only`] chose some).
    metadata: Vec<usize>,
    target: String,
    pending: Vec<InMessage>,
    /// The one-pass JSON decoder for [`Decoder::variant`] (`None`: a column type it leaves to
    /// `arrow_json`, or Arrow messages).
    json: Option<JsonDecoder>,
    /// Messages skipped because they did not decode (`on_error = 'skip'`).
    pub skipped: u64,
}

impl Decoder {
    /// A decoder for messages carrying `variant` columns (and `_id` when `with_id`); `target`
    /// names the topic in errors.
    pub fn new(
        format: Format,
        on_error: OnError,
        variant: SchemaRef,
        with_id: bool,
        target: String,
    ) -> Self {
        let mut fields: Vec<Field> = variant
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.extend(metadata_fields(with_id));
        Decoder {
            json: json_decoder(format, &variant),
            format,
            on_error,
            full: Arc::new(Schema::new_with_metadata(
                fields,
                variant.metadata().clone(),
            )),
            variant,
            columns: None,
            message: None,
            metadata: (0..metadata_fields(with_id).len()).collect(),
            with_id,
            target,
            pending: Vec::new(),
            skipped: 0,
        }
    }

    /// Decodes only these variant columns (indices into the message's columns, ascending) and
    /// makes only these metadata columns (indices into [`metadata_fields`], ascending): batches
    /// then hold them, variant columns first. Like a CSV or JSON file reader with a projection,
    /// values of other columns are not converted (a JSON message must still be one JSON
    /// object; an Arrow message must still be a stream of this table's columns).
    pub fn only(mut self, columns: Vec<usize>, metadata: Vec<usize>) -> Result<Self, String> {
        let variant = Arc::new(self.variant.project(&columns).map_err(|e| e.to_string())?);
        let all = metadata_fields(self.with_id);
        let mut fields: Vec<Field> = variant
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        for &i in &metadata {
            fields.push(
                all.get(i)
                    .ok_or_else(|| format!("no metadata column {i}"))?
                    .clone(),
            );
        }
        self.full = Arc::new(Schema::new_with_metadata(
            fields,
            self.variant.metadata().clone(),
        ));
        self.json = json_decoder(self.format, &variant);
        self.message = Some(std::mem::replace(&mut self.variant, variant));
        self.columns = Some(columns);
        self.metadata = metadata;
        Ok(self)
    }

    /// The schema of the batches made.
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.full)
    }

    /// Messages waiting for [`Decoder::flush`].
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether no message waits.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Adds a message.
    pub fn push(&mut self, message: InMessage) {
        self.pending.push(message);
    }

    /// Decodes the waiting messages into one batch (`None` when none waited).
    pub fn flush(&mut self) -> Result<Option<RecordBatch>, StreamError> {
        if self.pending.is_empty() {
            return Ok(None);
        }
        let messages = std::mem::take(&mut self.pending);
        let fast = match &mut self.json {
            Some(json) if messages.iter().all(|m| m.value.is_some()) => json.decode(
                messages
                    .iter()
                    .map(|m| m.value.as_deref().unwrap_or_default()),
            ),
            _ => None,
        };
        let decoded = match fast {
            Some(batch) => Ok(batch),
            None => self.decode_all(&messages),
        };
        let (variant, kept) = match decoded {
            Ok(batch) => (batch, messages),
            Err(_) => {
                // find the bad messages one by one
                let mut good = Vec::with_capacity(messages.len());
                let mut batches = Vec::new();
                for m in messages {
                    match self.decode_all(std::slice::from_ref(&m)) {
                        Ok(batch) => {
                            batches.push(batch);
                            good.push(m);
                        }
                        Err(e) => match self.on_error {
                            OnError::Fail => {
                                return Err(StreamError::permanent(
                                    format!(
                                        "{} partition {} offset {}",
                                        self.target, m.partition, m.offset
                                    ),
                                    format!("message does not decode: {e}"),
                                ));
                            }
                            OnError::Skip => self.skipped += 1,
                        },
                    }
                }
                let batch = concat_batches(&self.variant, &batches)
                    .map_err(|e| StreamError::permanent(self.target.clone(), e))?;
                (batch, good)
            }
        };
        let mut columns: Vec<ArrayRef> = variant.columns().to_vec();
        for &column in &self.metadata {
            columns.push(metadata_column(column, &kept));
        }
        RecordBatch::try_new(Arc::clone(&self.full), columns)
            .map(Some)
            .map_err(|e| StreamError::permanent(self.target.clone(), e))
    }

    fn decode_all(&self, messages: &[InMessage]) -> Result<RecordBatch, String> {
        match self.format {
            Format::Json => {
                let mut decoder = arrow_json::ReaderBuilder::new(Arc::clone(&self.variant))
                    .with_batch_size(messages.len().max(1))
                    .build_decoder()
                    .map_err(|e| e.to_string())?;
                for m in messages {
                    let value = m.value.as_deref().ok_or("empty message (tombstone)")?;
                    let used = decoder.decode(value).map_err(|e| e.to_string())?;
                    if used < value.len() || decoder.has_partial_record() {
                        return Err("not one complete JSON object".to_string());
                    }
                }
                let batch = decoder.flush().map_err(|e| e.to_string())?;
                let batch =
                    batch.unwrap_or_else(|| RecordBatch::new_empty(Arc::clone(&self.variant)));
                if batch.num_rows() != messages.len() {
                    return Err(format!(
                        "{} rows from {} messages",
                        batch.num_rows(),
                        messages.len()
                    ));
                }
                Ok(batch)
            }
            Format::ArrowIpc => {
                let mut batches = Vec::with_capacity(messages.len());
                for m in messages {
                    let value = m.value.as_deref().ok_or("empty message (tombstone)")?;
                    let reader = StreamReader::try_new(Cursor::new(value), self.columns.clone())
                        .map_err(|e| e.to_string())?;
                    // (a projected reader still reports the message's whole schema)
                    let schema = self.message.as_ref().unwrap_or(&self.variant);
                    let same =
                        reader.schema().fields().len() == schema.fields().len()
                            && reader.schema().fields().iter().zip(schema.fields()).all(
                                |(a, b)| a.name() == b.name() && a.data_type() == b.data_type(),
                            );
                    if !same {
                        return Err("Arrow schema differs from the table's".to_string());
                    }
                    for batch in reader {
                        let batch = batch.map_err(|e| e.to_string())?;
                        batches.push(
                            RecordBatch::try_new_with_options(
                                Arc::clone(&self.variant),
                                batch.columns().to_vec(),
                                &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
                            )
                            .map_err(|e| e.to_string())?,
                        );
                    }
                }
                let batch = concat_batches(&self.variant, &batches).map_err(|e| e.to_string())?;
                if batch.num_rows() != messages.len() {
                    return Err(format!(
                        "{} rows from {} messages",
                        batch.num_rows(),
                        messages.len()
                    ));
                }
                Ok(batch)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vcf::key::variant_key;
    use datafusion::arrow::array::ListBuilder;
    use datafusion::arrow::datatypes::Int64Type;

    fn variant_schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("chrom", DataType::Utf8, true),
            Field::new("pos", DataType::Int64, true),
            Field::new("ref", DataType::Utf8, true),
            Field::new(
                "alt",
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                true,
            ),
        ]))
    }

    #[test]
    fn keys_come_from_any_string_or_integer_type() {
        use datafusion::arrow::array::{Int32Array, StringViewArray};
        // what VALUES lists make: Utf8View strings, Int32 positions, a comma-separated ALT
        let schema = Arc::new(Schema::new(vec![
            Field::new("chrom", DataType::Utf8View, true),
            Field::new("pos", DataType::Int32, true),
            Field::new("ref", DataType::Utf8View, true),
            Field::new("alt", DataType::Utf8View, true),
        ]));
        let rows = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringViewArray::from(vec![Some("chr1"), None])),
                Arc::new(Int32Array::from(vec![10, 20])),
                Arc::new(StringViewArray::from(vec!["A", "G"])),
                Arc::new(StringViewArray::from(vec!["C,T", "A"])),
            ],
        )
        .unwrap();
        let keys = keys_of(&rows);
        assert_eq!(keys[0], Some(variant_key("chr1", 10, "A", &["C", "T"])));
        assert_eq!(keys[1], None, "no chrom, no key");
        // the same variant in the usual types has the same key
        assert_eq!(
            keys_of(&self::tests::rows())[0],
            Some(variant_key("chr1", 10, "CA", &["T"]))
        );
    }

    fn rows() -> RecordBatch {
        let mut alt = ListBuilder::new(StringBuilder::new());
        alt.values().append_value("T");
        alt.append(true);
        alt.values().append_value("G");
        alt.values().append_value("GA");
        alt.append(true);
        RecordBatch::try_new(
            variant_schema(),
            vec![
                Arc::new(StringArray::from(vec!["chr1", "chr2"])),
                Arc::new(Int64Array::from(vec![10, 20])),
                Arc::new(StringArray::from(vec!["CA", "G"])),
                Arc::new(alt.finish()),
            ],
        )
        .unwrap()
    }

    fn round_trip(format: Format) {
        let encoded = Encoder::new(format, variant_schema())
            .encode(&rows())
            .unwrap();
        assert_eq!(encoded[0].key.as_deref(), Some("chr1:10:CA:T"));
        assert_eq!(encoded[1].key.as_deref(), Some("chr2:20:G:G,GA"));
        let mut decoder = Decoder::new(format, OnError::Fail, variant_schema(), false, "t".into());
        for (i, m) in encoded.into_iter().enumerate() {
            decoder.push(InMessage {
                partition: 0,
                offset: i as i64,
                timestamp: Some(1000),
                key: m.key,
                id: None,
                value: Some(m.value),
            });
        }
        let batch = decoder.flush().unwrap().unwrap();
        assert_eq!(batch.num_columns(), 8);
        let original = rows();
        for c in 0..4 {
            assert_eq!(batch.column(c).as_ref(), original.column(c).as_ref());
        }
        assert_eq!(
            batch
                .column_by_name("_offset")
                .unwrap()
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                .value(1),
            1
        );
    }

    #[test]
    fn message_ids_follow_key_and_content_and_keys_pick_one_partition() {
        let a = message_id(Some("chr1:10:A:T"), b"{\"pos\":10}");
        assert_eq!(a, message_id(Some("chr1:10:A:T"), b"{\"pos\":10}"));
        assert_ne!(a, message_id(Some("chr1:10:A:T"), b"{\"pos\":11}"));
        assert_ne!(a, message_id(Some("chr1:10:A:C"), b"{\"pos\":10}"));
        assert_ne!(message_id(None, b"x"), message_id(Some(""), b"x"));
        let p = partition_of(Some("chr1:10:A:T"), 7);
        assert!(p < 7);
        assert_eq!(p, partition_of(Some("chr1:10:A:T"), 7));
        let spread: std::collections::HashSet<u32> = (0..100)
            .map(|i| partition_of(Some(&format!("chr1:{i}:A:T")), 4))
            .collect();
        assert_eq!(spread.len(), 4);
        assert_eq!(partition_of(None, 4), 0);
    }

    #[test]
    fn a_decoder_may_decode_only_some_columns() {
        for format in [Format::Json, Format::ArrowIpc] {
            let encoded = Encoder::new(format, variant_schema())
                .encode(&rows())
                .unwrap();
            let mut decoder =
                Decoder::new(format, OnError::Fail, variant_schema(), true, "t".into())
                    .only(vec![1], vec![1, 4])
                    .unwrap();
            for (i, m) in encoded.into_iter().enumerate() {
                decoder.push(InMessage {
                    partition: 0,
                    offset: i as i64,
                    timestamp: None,
                    key: m.key,
                    id: Some(7),
                    value: Some(m.value),
                });
            }
            let batch = decoder.flush().unwrap().unwrap();
            let schema = batch.schema();
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            assert_eq!(names, ["pos", "_offset", "_id"]);
            assert_eq!(batch.column(0).as_ref(), rows().column(1).as_ref());
            assert_eq!(
                batch
                    .column(1)
                    .as_primitive::<Int64Type>()
                    .values()
                    .to_vec(),
                (0..rows().num_rows() as i64).collect::<Vec<_>>()
            );
            assert_eq!(
                batch.column(2).as_string::<i32>().value(0),
                "00000000000000000000000000000007"
            );
        }
    }

    #[test]
    fn a_row_encodes_to_the_same_message_wherever_it_sits_in_a_batch() {
        for format in [Format::Json, Format::ArrowIpc] {
            let encoder = Encoder::new(format, variant_schema());
            let both = encoder.encode(&rows()).unwrap();
            let second_alone = encoder.encode(&rows().slice(1, 1)).unwrap();
            assert_eq!(both[1].value, second_alone[0].value, "{format:?}");
            assert_eq!(both[1].id, second_alone[0].id, "{format:?}");
        }
    }

    #[test]
    fn rows_round_trip_as_json_and_arrow() {
        round_trip(Format::Json);
        round_trip(Format::ArrowIpc);
    }

    #[test]
    fn arrow_messages_do_not_carry_the_table_metadata() {
        let header = HashMap::from([("vcf.contigs".to_string(), "chrUn,".repeat(10_000))]);
        let with_header = Arc::new(variant_schema().as_ref().clone().with_metadata(header));
        let plain = Encoder::new(Format::ArrowIpc, variant_schema())
            .encode(&rows())
            .unwrap();
        let encoded = Encoder::new(Format::ArrowIpc, Arc::clone(&with_header))
            .encode(&rows())
            .unwrap();
        assert_eq!(encoded[0].value.len(), plain[0].value.len());
        let mut decoder = Decoder::new(
            Format::ArrowIpc,
            OnError::Fail,
            with_header,
            false,
            "t".into(),
        );
        decoder.push(InMessage {
            partition: 0,
            offset: 0,
            timestamp: None,
            key: None,
            id: None,
            value: Some(encoded[0].value.clone()),
        });
        let batch = decoder.flush().unwrap().unwrap();
        assert_eq!(batch.num_rows(), 1);
        assert!(batch.schema().metadata().contains_key("vcf.contigs"));
    }

    #[test]
    fn undecodable_messages_fail_with_their_offset_or_are_skipped() {
        let good = Encoder::new(Format::Json, variant_schema())
            .encode(&rows())
            .unwrap();
        for on_error in [OnError::Fail, OnError::Skip] {
            let mut decoder = Decoder::new(
                Format::Json,
                on_error,
                variant_schema(),
                false,
                "kafka x/t".into(),
            );
            for (offset, value) in [
                (0, Some(good[0].value.clone())),
                (
                    1,
                    Some(Bytes::from_static(b"{\"chrom\": \"1\", \"pos\": \"ten\"}")),
                ),
                (2, Some(Bytes::from_static(b"not json"))),
                (3, None),
                (4, Some(good[1].value.clone())),
            ] {
                decoder.push(InMessage {
                    partition: 2,
                    offset,
                    timestamp: None,
                    key: None,
                    id: None,
                    value,
                });
            }
            match on_error {
                OnError::Fail => {
                    let e = decoder.flush().unwrap_err().to_string();
                    assert!(
                        e.starts_with("kafka x/t partition 2 offset 1: message does not decode"),
                        "{e}"
                    );
                }
                OnError::Skip => {
                    let batch = decoder.flush().unwrap().unwrap();
                    assert_eq!(batch.num_rows(), 2);
                    assert_eq!(decoder.skipped, 3);
                }
            }
        }
    }
}
