//! Runs every `tests/slt/*.slt` file against a fresh vcfq session; `__DATA__` in a file is the
//! fixture directory, `__TMP__` an empty directory of its own.

use std::path::Path;

use async_trait::async_trait;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType};

use crate::fixtures::data_dir;

struct Vcfq {
    ctx: SessionContext,
}

#[async_trait]
impl AsyncDB for Vcfq {
    type Error = DataFusionError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, DataFusionError> {
        let df = vcfq::session::sql(&self.ctx, sql).await?;
        let width = df.schema().fields().len();
        let batches = df.collect().await?;
        if width == 0 {
            return Ok(DBOutput::StatementComplete(0));
        }
        let options = FormatOptions::default().with_null("NULL");
        let mut rows = Vec::new();
        for batch in &batches {
            let fmts = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                .collect::<Result<Vec<_>, _>>()?;
            for r in 0..batch.num_rows() {
                rows.push(
                    fmts.iter()
                        .map(|f| {
                            let s = f.value(r).to_string();
                            if s.is_empty() {
                                "(empty)".to_string()
                            } else {
                                s
                            }
                        })
                        .collect(),
                );
            }
        }
        Ok(DBOutput::Rows {
            types: vec![DefaultColumnType::Any; width],
            rows,
        })
    }

    async fn shutdown(&mut self) {}
}

async fn run_file(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let tmp = tempfile::tempdir().map_err(|e| format!("{}: {e}", path.display()))?;
    let script = text
        .replace("__DATA__", &data_dir().display().to_string())
        .replace("__TMP__", &tmp.path().display().to_string());
    let mut runner = sqllogictest::Runner::new(|| async {
        Ok::<_, DataFusionError>(Vcfq {
            ctx: vcfq::SessionBuilder::new().build()?,
        })
    });
    runner
        .run_script_async(&script)
        .await
        .map_err(|e| format!("{}: {}", path.display(), e.display(true)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqllogictests() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "slt"));
    files.sort();
    assert!(!files.is_empty(), "no .slt files in {}", dir.display());
    let mut failures = Vec::new();
    for f in &files {
        if let Err(e) = run_file(f).await {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} slt files failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}
