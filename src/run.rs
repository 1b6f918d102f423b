//! One path from a SQL statement to its printed result, for every front end that prints
//! (`vcfq -c`, `vcfq -f`, SQL on stdin, the shell): plan with [`crate::session::sql`], run on
//! a runtime worker, and write the batches as they arrive with [`crate::output`].
//!
//! ```no_run
//! # async fn demo() -> datafusion::error::Result<()> {
//! use vcfq::output::OutputFormat;
//! use vcfq::run::{Printing, Statement};
//! let ctx = vcfq::SessionBuilder::new().build()?;
//! let statement = Statement::plan(&ctx, "SELECT chrom, count(*) FROM 'calls.vcf.gz' GROUP BY chrom").await?;
//! let printing = Printing { format: OutputFormat::Tsv, ..Default::default() };
//! statement.print(&mut std::io::stdout().lock(), &printing).await?;
//! # Ok(()) }
//! ```

use std::io::Write;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::SessionContext;
use futures::StreamExt;

use crate::output::{OutputFormat, TableOptions, Written, write_stream};
use crate::session::GENERATED_COLUMN;
use crate::vcf::writer::Source;

/// How results are printed.
#[derive(Debug, Clone, Default)]
pub struct Printing {
    /// The format.
    pub format: OutputFormat,
    /// Table format: the terminal's width (`None` when printing to a file or a pipe).
    pub width: Option<usize>,
    /// Table format: rows shown at most (0: all); the query stops there.
    pub max_rows: usize,
    /// Table format: what the footer suggests when rows were left out.
    pub more_hint: &'static str,
}

/// A planned statement, ready to run.
#[derive(Debug)]
pub struct Statement {
    plan: Arc<dyn ExecutionPlan>,
    task: Arc<TaskContext>,
    /// The statement's text (for the `vcf` format's `##vcfqCommand`).
    sql: String,
    /// The header and selected samples of the first VCF table the statement reads (what
    /// the `vcf` format carries over).
    vcf_source: Option<Source>,
}

impl Statement {
    /// Plans `sql` (DDL and `SET` take effect here, as with [`SessionContext::sql`]).
    pub async fn plan(ctx: &SessionContext, sql: &str) -> Result<Self> {
        let df = crate::session::sql(ctx, sql).await?;
        let vcf_source = crate::vcf::writer::copy::source_of(df.logical_plan());
        let plan = df.create_physical_plan().await?;
        Ok(Statement {
            plan,
            task: ctx.task_ctx(),
            sql: sql.to_string(),
            vcf_source,
        })
    }

    /// The physical plan (for progress display).
    pub fn physical_plan(&self) -> &Arc<dyn ExecutionPlan> {
        &self.plan
    }

    /// The result's columns (none for DDL and `SET`).
    pub fn schema(&self) -> SchemaRef {
        self.plan.schema()
    }

    /// Whether the result has no end (a followed topic): rows are printed as they come.
    pub fn is_unbounded(&self) -> bool {
        self.plan.properties().boundedness.is_unbounded()
    }

    /// Runs the statement and writes its result to `out` as it arrives.
    pub async fn print(self, out: &mut dyn Write, printing: &Printing) -> Result<Written> {
        let stream = datafusion::physical_plan::execute_stream(self.plan, self.task)?;
        let mut stream = on_worker(stream);
        if printing.format == OutputFormat::Vcf {
            let rows = crate::vcf::writer::text::write_stream(
                &mut stream,
                out,
                self.vcf_source,
                &self.sql,
                |f| f.metadata().contains_key(GENERATED_COLUMN),
            )
            .await?;
            return Ok(Written {
                rows: rows as usize,
                truncated: false,
            });
        }
        let table = TableOptions {
            width: printing.width,
            max_rows: printing.max_rows,
            more_hint: printing.more_hint,
        };
        write_stream(&mut stream, printing.format, out, table).await
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Drives `stream` on a runtime worker, so that the caller's task stays free (the shell
/// notices Ctrl-C however long an operator computes); dropping the returned stream aborts the
/// work.
pub fn on_worker(stream: SendableRecordBatchStream) -> SendableRecordBatchStream {
    let schema = stream.schema();
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let task = tokio::spawn(async move {
        let mut stream = stream;
        while let Some(item) = stream.next().await {
            if tx.send(item).await.is_err() {
                break;
            }
        }
    });
    let guard = AbortOnDrop(task);
    let batches = futures::stream::unfold((rx, guard), |(mut rx, guard)| async move {
        rx.recv().await.map(|b| (b, (rx, guard)))
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, batches))
}
