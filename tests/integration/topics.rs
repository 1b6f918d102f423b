//! What the topic tests of every platform share: a session, running SQL, reading counts and
//! plans, and the column-by-column round-trip check.

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{Int64Type, UInt64Type};
use datafusion::prelude::SessionContext;

use crate::fixtures::data_dir;

/// A fresh session.
pub fn ctx() -> SessionContext {
    vcfq::SessionBuilder::new().build().expect("session")
}

/// Runs one statement the way every front end does.
pub async fn run(ctx: &SessionContext, sql: &str) -> datafusion::error::Result<Vec<RecordBatch>> {
    vcfq::session::sql(ctx, sql).await?.collect().await
}

/// The single Int64 a `SELECT count(*) …` gives.
pub async fn count(ctx: &SessionContext, sql: &str) -> i64 {
    let batches = run(ctx, sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    batches[0].column(0).as_primitive::<Int64Type>().value(0)
}

/// `EXPLAIN sql`, as text.
pub async fn explain(ctx: &SessionContext, sql: &str) -> String {
    let plan = run(ctx, &format!("EXPLAIN {sql}")).await.expect("explain");
    datafusion::arrow::util::pretty::pretty_format_batches(&plan)
        .expect("format")
        .to_string()
}

/// The row count an `INSERT` returns.
pub fn inserted(batches: &[RecordBatch]) -> u64 {
    batches[0].column(0).as_primitive::<UInt64Type>().value(0)
}

/// A fixture's path.
pub fn path(name: &str) -> String {
    data_dir().join(name).display().to_string()
}

/// Reads every column of `vcf` back from `table` (same order) and asserts each column equals
/// the file's.
pub async fn assert_rows_equal_the_file(ctx: &SessionContext, table: &str, vcf: &str) {
    let order = "ORDER BY chrom, pos, id, ref, array_to_string(alt, ','), qual";
    let columns = "chrom, pos, id, ref, alt, qual, filter, info, genotypes";
    let back = run(ctx, &format!("SELECT {columns} FROM {table} {order}"))
        .await
        .expect("read");
    let original = run(ctx, &format!("SELECT {columns} FROM '{vcf}' {order}"))
        .await
        .expect("vcf");
    let back = concat_batches(&back[0].schema(), &back).expect("concat");
    let original = concat_batches(&original[0].schema(), &original).expect("concat");
    assert_eq!(back.num_rows(), original.num_rows());
    for (i, field) in original.schema().fields().iter().enumerate() {
        assert_eq!(
            back.column(i).to_data(),
            original.column(i).to_data(),
            "column {} of {table} differs from {vcf}",
            field.name()
        );
    }
}
