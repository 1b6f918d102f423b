//! Writing query results: table, CSV, TSV, JSON, NDJSON and Markdown, every format batch by
//! batch as the results arrive (nothing holds a whole result).
//!
//! TSV and CSV print a header line, then one line per row; NULL is empty. The table format is
//! [`table::TableWriter`], the one table renderer of every front end.

pub mod table;

use std::borrow::Cow;
use std::io::Write;
use std::str::FromStr;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;

use self::table::TableWriter;
pub use self::table::{TableOptions, Wants};

/// What [`write_stream`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Rows written.
    pub rows: usize,
    /// Rows were left out (table format with `max_rows`); the query was stopped there.
    pub truncated: bool,
}

/// Writes the batches of `stream` to `out` in `format` as they arrive, flushing `out` after
/// each; nothing is written for statements without columns (DDL, SET).
pub async fn write_stream(
    stream: &mut SendableRecordBatchStream,
    format: OutputFormat,
    out: &mut dyn Write,
    table: TableOptions,
) -> Result<Written, DataFusionError> {
    let schema = stream.schema();
    let mut writer = ResultWriter::new(format, Arc::clone(&schema), table);
    while let Some(batch) = stream.next().await {
        if writer.write(out, &batch?)? == Wants::Enough {
            break;
        }
        out.flush().map_err(io_err)?;
    }
    let written = Written {
        rows: writer.rows(),
        truncated: writer.truncated(),
    };
    if !schema.fields().is_empty() {
        writer.finish(out)?;
    }
    Ok(written)
}

/// An output format of results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// Aligned table with borders and column types (the default).
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
    /// VCF text: the header carried from the VCF table the query reads, then one record per
    /// row (printed by [`crate::run::Statement::print`], which knows the statement).
    Vcf,
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
            "vcf" => OutputFormat::Vcf,
            other => {
                return Err(format!(
                    "unknown format '{other}' (table, csv, tsv, json, ndjson, markdown, vcf)"
                ));
            }
        })
    }
}

/// Writes results in one format; call [`ResultWriter::write`] per batch, then
/// [`ResultWriter::finish`].
pub struct ResultWriter {
    format: OutputFormat,
    schema: SchemaRef,
    table: TableWriter,
    started: bool,
    rows: usize,
    /// JSON objects written.
    objects: usize,
}

pub(crate) fn io_err(e: std::io::Error) -> ArrowError {
    ArrowError::IoError(e.to_string(), e)
}

impl ResultWriter {
    /// A writer of `format` for rows of `schema`; `table` lays out the table format.
    pub fn new(format: OutputFormat, schema: SchemaRef, table: TableOptions) -> Self {
        ResultWriter {
            format,
            table: TableWriter::new(Arc::clone(&schema), table),
            schema,
            started: false,
            rows: 0,
            objects: 0,
        }
    }

    /// Rows written so far.
    pub fn rows(&self) -> usize {
        match self.format {
            OutputFormat::Table => self.table.rows(),
            _ => self.rows,
        }
    }

    /// Whether rows were left out (table format with `max_rows`).
    pub fn truncated(&self) -> bool {
        self.format == OutputFormat::Table && self.table.truncated()
    }

    /// Writes one batch.
    pub fn write(&mut self, out: &mut dyn Write, batch: &RecordBatch) -> Result<Wants, ArrowError> {
        if self.format == OutputFormat::Table {
            return self.table.write(out, batch);
        }
        if self.format == OutputFormat::Vcf {
            return Err(ArrowError::InvalidArgumentError(
                "the vcf format prints the result of one statement (vcfq -c, -f, the shell)".into(),
            ));
        }
        if !self.started {
            self.start(out)?;
        }
        self.rows += batch.num_rows();
        match self.format {
            OutputFormat::Csv | OutputFormat::Tsv => {
                write_delimited(out, batch, self.format == OutputFormat::Tsv)?
            }
            OutputFormat::Ndjson => {
                let mut w = datafusion::arrow::json::LineDelimitedWriter::new(&mut *out);
                w.write(batch)?;
                w.finish()?;
            }
            OutputFormat::Json => {
                let mut lines = Vec::new();
                {
                    let mut w = datafusion::arrow::json::LineDelimitedWriter::new(&mut lines);
                    w.write(batch)?;
                    w.finish()?;
                }
                // JSON escapes newlines inside strings, so each line is one object
                for line in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                    if self.objects > 0 {
                        out.write_all(b",").map_err(io_err)?;
                    }
                    out.write_all(line).map_err(io_err)?;
                    self.objects += 1;
                }
            }
            OutputFormat::Markdown => {
                let options = FormatOptions::default().with_null("");
                let fmts = formatters(batch, &options)?;
                for row in 0..batch.num_rows() {
                    let cells: Vec<String> = fmts
                        .iter()
                        .map(|f| f.value(row).to_string().replace('|', "\\|"))
                        .collect();
                    writeln!(out, "| {} |", cells.join(" | ")).map_err(io_err)?;
                }
            }
            OutputFormat::Table | OutputFormat::Vcf => {}
        }
        Ok(Wants::More)
    }

    /// What comes before the first row: header lines, the opening bracket.
    fn start(&mut self, out: &mut dyn Write) -> Result<(), ArrowError> {
        self.started = true;
        let names = || self.schema.fields().iter().map(|f| f.name().as_str());
        match self.format {
            OutputFormat::Csv | OutputFormat::Tsv => {
                let tsv = self.format == OutputFormat::Tsv;
                let names: Vec<String> = names().map(|n| escape(n, tsv).into_owned()).collect();
                writeln!(out, "{}", names.join(if tsv { "\t" } else { "," })).map_err(io_err)
            }
            OutputFormat::Markdown => {
                let names: Vec<&str> = names().collect();
                writeln!(out, "| {} |", names.join(" | ")).map_err(io_err)?;
                writeln!(out, "|{}", "---|".repeat(names.len())).map_err(io_err)
            }
            OutputFormat::Json => out.write_all(b"[").map_err(io_err),
            OutputFormat::Ndjson | OutputFormat::Table | OutputFormat::Vcf => Ok(()),
        }
    }

    /// Ends the output (the header alone when no row came; the table's foot).
    pub fn finish(mut self, out: &mut dyn Write) -> Result<(), ArrowError> {
        if self.format == OutputFormat::Table {
            return self.table.finish(out);
        }
        if !self.started {
            self.start(out)?;
        }
        if self.format == OutputFormat::Json {
            writeln!(out, "]").map_err(io_err)?;
        }
        out.flush().map_err(io_err)
    }
}

fn write_delimited(out: &mut dyn Write, batch: &RecordBatch, tsv: bool) -> Result<(), ArrowError> {
    let options = FormatOptions::default().with_null("");
    let fmts = formatters(batch, &options)?;
    let mut cell = String::new();
    let mut line = Vec::with_capacity(256);
    for row in 0..batch.num_rows() {
        line.clear();
        for (i, f) in fmts.iter().enumerate() {
            if i > 0 {
                line.push(if tsv { b'\t' } else { b',' });
            }
            cell.clear();
            use std::fmt::Write as _;
            write!(cell, "{}", f.value(row)).map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
            line.extend_from_slice(escape(&cell, tsv).as_bytes());
        }
        line.push(b'\n');
        out.write_all(&line).map_err(io_err)?;
    }
    Ok(())
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
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

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
        let mut out = Vec::new();
        let mut w = ResultWriter::new(format, b.schema(), TableOptions::default());
        // two batches: formats join them as one result
        w.write(&mut out, &b.slice(0, 1)).unwrap();
        w.write(&mut out, &b.slice(1, 2)).unwrap();
        w.finish(&mut out).unwrap();
        String::from_utf8(out).unwrap()
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
        assert_eq!(
            render(OutputFormat::Json),
            "[{\"chrom\":\"chr1\",\"n\":1},{\"chrom\":\"a,\\\"b\\\"\"},{\"n\":3}]\n"
        );
        assert_eq!(
            render(OutputFormat::Markdown),
            "| chrom | n |\n|---|---|\n| chr1 | 1 |\n| a,\"b\" |  |\n|  | 3 |\n"
        );
    }

    #[test]
    fn header_without_rows() {
        let b = batch();
        for (format, text) in [
            (OutputFormat::Tsv, "chrom\tn\n"),
            (OutputFormat::Json, "[]\n"),
        ] {
            let mut out = Vec::new();
            let w = ResultWriter::new(format, b.schema(), TableOptions::default());
            w.finish(&mut out).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), text);
        }
    }
}
