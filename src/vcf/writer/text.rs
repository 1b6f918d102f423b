//! The records of a query's result printed as VCF text (`vcfq -c "SELECT …" --format vcf`):
//! the header a COPY would write, then the records batch by batch as they arrive.

use std::io::Write;
use std::path::PathBuf;

use datafusion::arrow::datatypes::Field;
use datafusion::common::plan_err;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;

use super::record::{Columns, RecordWriter};
use super::{Source, WriteOptions, header_for};
use crate::error::VcfError;

/// Writes the rows of `stream` to `out` as VCF text, with the header of `source` (the first
/// VCF table the query reads, and the samples it selects) carried over; returns the rows
/// written. Columns for which `leave_out` is true are not written; `command` is recorded in
/// `##vcfqCommand`.
pub async fn write_stream(
    stream: &mut SendableRecordBatchStream,
    out: &mut dyn Write,
    source: Option<Source>,
    command: &str,
    leave_out: fn(&Field) -> bool,
) -> Result<u64> {
    let schema = stream.schema();
    let columns = match Columns::of(&schema, &leave_out) {
        Ok(c) => c,
        Err(m) => return plan_err!("--format vcf: {m}"),
    };
    let options = WriteOptions::for_target("-", None);
    let mut records = RecordWriter::new(&schema, columns.clone(), None, Vec::new())
        .map_err(|m| DataFusionError::Plan(format!("--format vcf: {m}")))?;
    let fallback = source
        .as_ref()
        .map(|s| s.samples.clone())
        .unwrap_or_default();
    let stdout = PathBuf::from("<stdout>");
    let invalid = |message: String| VcfError::Write {
        path: stdout.clone(),
        message,
    };
    let io = |e: std::io::Error| VcfError::io(&stdout, e);
    let first = stream.next().await.transpose()?;
    let samples = match &first {
        Some(b) => records.samples_of(b).map_err(invalid)?,
        None => None,
    };
    let samples = match samples {
        Some(s) => s,
        None => records.set_samples(fallback).map_err(invalid)?,
    };
    let text = header_for(
        &schema,
        &columns,
        source.as_ref(),
        &samples,
        &options,
        Some(command),
    )
    .map_err(|e| invalid(e.to_string()))?;
    out.write_all(text.text.as_bytes()).map_err(io)?;
    let mut rows = 0u64;
    let mut buffer = Vec::with_capacity(1 << 16);
    let mut next = first;
    loop {
        let batch = match next.take() {
            Some(b) => b,
            None => match stream.next().await {
                Some(b) => b?,
                None => break,
            },
        };
        buffer.clear();
        records
            .write_batch(&batch, &mut buffer, None)
            .map_err(|e| invalid(e.to_string()))?;
        out.write_all(&buffer).map_err(io)?;
        out.flush().map_err(io)?;
        rows += batch.num_rows() as u64;
    }
    Ok(rows)
}
