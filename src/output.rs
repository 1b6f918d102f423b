//! Writing query results: aligned table, CSV, TSV, JSON, NDJSON and Markdown.
//!
//! CSV, TSV and NDJSON stream batch by batch; the table, Markdown and JSON array forms need the
//! whole result. TSV and CSV print a header line, then one line per row; NULL is empty.

use std::borrow::Cow;
use std::io::Write;
use std::str::FromStr;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::arrow::util::pretty::pretty_format_batches_with_options;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;

/// Writes every batch of `stream` to `out` in `format`; returns the rows written. Nothing is
/// written for statements without columns (DDL, SET).
pub async fn write_stream<W: Write>(
    stream: &mut SendableRecordBatchStream,
    format: OutputFormat,
    out: W,
    schema: &Schema,
) -> Result<usize, DataFusionError> {
    let mut writer = ResultWriter::new(format, out);
    while let Some(batch) = stream.next().await {
        writer.write(&batch?)?;
    }
    let rows = writer.rows();
    if !schema.fields().is_empty() {
        writer.finish(schema)?;
    }
    Ok(rows)
}

/// An output format of results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// Aligned table with borders (the default on a terminal).
    #[default]
    Table,
    /// Comma-separated values with a header line.
    Csv,
    /// Tab-separated values with a header line.
    Tsv,
    /// One JSON array of objects.
    Json,
    /// One JSON object per line.
    Ndjson,
    /// A Markdown table.
    Markdown,
}

impl FromStr for OutputFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "table" => OutputFormat::Table,
            "csv" => OutputFormat::Csv,
            "tsv" => OutputFormat::Tsv,
            "json" => OutputFormat::Json,
            "ndjson" | "jsonl" => OutputFormat::Ndjson,
            "markdown" | "md" => OutputFormat::Markdown,
            other => {
                return Err(format!(
                    "unknown format '{other}' (table, csv, tsv, json, ndjson, markdown)"
                ));
            }
        })
    }
}

/// Writes results in one format; call [`ResultWriter::write`] per batch, then [`ResultWriter::finish`].
pub struct ResultWriter<W: Write> {
    format: OutputFormat,
    out: W,
    header_written: bool,
    held: Vec<RecordBatch>,
    rows: usize,
}

fn io_err(e: std::io::Error) -> ArrowError {
    ArrowError::IoError(e.to_string(), e)
}

impl<W: Write> ResultWriter<W> {
    /// A writer of `format` into `out`.
    pub fn new(format: OutputFormat, out: W) -> Self {
        ResultWriter {
            format,
            out,
            header_written: false,
            held: Vec::new(),
            rows: 0,
        }
    }

    /// Rows written so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Writes (or, for whole-result formats, keeps) one batch.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), ArrowError> {
        self.rows += batch.num_rows();
        match self.format {
            OutputFormat::Csv | OutputFormat::Tsv => {
                let tsv = self.format == OutputFormat::Tsv;
                if !self.header_written {
                    self.write_header(&batch.schema(), tsv)?;
                }
                self.write_delimited(batch, tsv)
            }
            OutputFormat::Ndjson => {
                let mut w = datafusion::arrow::json::LineDelimitedWriter::new(&mut self.out);
                w.write(batch)?;
                w.finish()
            }
            OutputFormat::Table | OutputFormat::Json | OutputFormat::Markdown => {
                self.held.push(batch.clone());
                Ok(())
            }
        }
    }

    /// Ends the output; `schema` gives the header when no batch had rows.
    pub fn finish(mut self, schema: &Schema) -> Result<W, ArrowError> {
        match self.format {
            OutputFormat::Csv | OutputFormat::Tsv => {
                if !self.header_written {
                    self.write_header(schema, self.format == OutputFormat::Tsv)?;
                }
            }
            OutputFormat::Ndjson => {}
            OutputFormat::Json => {
                let mut w = datafusion::arrow::json::ArrayWriter::new(&mut self.out);
                let refs: Vec<&RecordBatch> = self.held.iter().collect();
                w.write_batches(&refs)?;
                w.finish()?;
                if self.held.iter().all(|b| b.num_rows() == 0) {
                    write!(self.out, "[]").map_err(io_err)?;
                }
                writeln!(self.out).map_err(io_err)?;
            }
            OutputFormat::Table => {
                if schema.fields().is_empty() {
                    return Ok(self.out);
                }
                let batches: Vec<RecordBatch> = if self.held.is_empty() {
                    vec![RecordBatch::new_empty(std::sync::Arc::new(schema.clone()))]
                } else {
                    std::mem::take(&mut self.held)
                };
                let options = FormatOptions::default().with_null("NULL");
                writeln!(
                    self.out,
                    "{}",
                    pretty_format_batches_with_options(&batches, &options)?
                )
                .map_err(io_err)?;
            }
            OutputFormat::Markdown => {
                let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                writeln!(self.out, "| {} |", names.join(" | ")).map_err(io_err)?;
                writeln!(self.out, "|{}", "---|".repeat(names.len())).map_err(io_err)?;
                let held = std::mem::take(&mut self.held);
                for batch in &held {
                    let options = FormatOptions::default().with_null("");
                    let fmts = formatters(batch, &options)?;
                    for row in 0..batch.num_rows() {
                        let cells: Vec<String> = fmts
                            .iter()
                            .map(|f| f.value(row).to_string().replace('|', "\\|"))
                            .collect();
                        writeln!(self.out, "| {} |", cells.join(" | ")).map_err(io_err)?;
                    }
                }
            }
        }
        self.out.flush().map_err(io_err)?;
        Ok(self.out)
    }

    fn write_header(&mut self, schema: &Schema, tsv: bool) -> Result<(), ArrowError> {
        self.header_written = true;
        let names: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| escape(f.name(), tsv).into_owned())
            .collect();
        writeln!(self.out, "{}", names.join(if tsv { "\t" } else { "," })).map_err(io_err)
    }

    fn write_delimited(&mut self, batch: &RecordBatch, tsv: bool) -> Result<(), ArrowError> {
        let options = FormatOptions::default().with_null("");
        let fmts = formatters(batch, &options)?;
        let mut cell = String::new();
        for row in 0..batch.num_rows() {
            for (i, f) in fmts.iter().enumerate() {
                if i > 0 {
                    self.out
                        .write_all(if tsv { b"\t" } else { b"," })
                        .map_err(io_err)?;
                }
                cell.clear();
                use std::fmt::Write as _;
                write!(cell, "{}", f.value(row))
                    .map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
                self.out
                    .write_all(escape(&cell, tsv).as_bytes())
                    .map_err(io_err)?;
            }
            self.out.write_all(b"\n").map_err(io_err)?;
        }
        Ok(())
    }
}

fn formatters<'a>(
    batch: &'a RecordBatch,
    options: &FormatOptions<'a>,
) -> Result<Vec<ArrayFormatter<'a>>, ArrowError> {
    batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), options))
        .collect()
}

/// TSV: tabs and line breaks inside a value are written as `\t`, `\n`, `\r` (everything else,
/// backslashes included, as is, like bcftools query); CSV: quoted when needed (RFC 4180).
fn escape(value: &str, tsv: bool) -> Cow<'_, str> {
    if tsv {
        if value.contains(['\t', '\n', '\r']) {
            Cow::Owned(
                value
                    .replace('\t', "\\t")
                    .replace('\n', "\\n")
                    .replace('\r', "\\r"),
            )
        } else {
            Cow::Borrowed(value)
        }
    } else if value.contains([',', '"', '\n', '\r']) {
        Cow::Owned(format!("\"{}\"", value.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field};
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("chrom", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec![Some("chr1"), Some("a,\"b\""), None])),
                Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])),
            ],
        )
        .unwrap()
    }

    fn render(format: OutputFormat) -> String {
        let b = batch();
        let mut w = ResultWriter::new(format, Vec::new());
        w.write(&b).unwrap();
        String::from_utf8(w.finish(&b.schema()).unwrap()).unwrap()
    }

    #[test]
    fn delimited_formats() {
        assert_eq!(
            render(OutputFormat::Tsv),
            "chrom\tn\nchr1\t1\na,\"b\"\t\n\t3\n"
        );
        assert_eq!(
            render(OutputFormat::Csv),
            "chrom,n\nchr1,1\n\"a,\"\"b\"\"\",\n,3\n"
        );
    }

    #[test]
    fn json_formats() {
        assert_eq!(
            render(OutputFormat::Ndjson),
            "{\"chrom\":\"chr1\",\"n\":1}\n{\"chrom\":\"a,\\\"b\\\"\"}\n{\"n\":3}\n"
        );
        assert!(render(OutputFormat::Json).starts_with("[{\"chrom\":\"chr1\",\"n\":1},"));
    }

    #[test]
    fn header_without_rows() {
        let b = batch();
        let w = ResultWriter::new(OutputFormat::Tsv, Vec::new());
        assert_eq!(
            String::from_utf8(w.finish(&b.schema()).unwrap()).unwrap(),
            "chrom\tn\n"
        );
    }
}
