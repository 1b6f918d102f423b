//! The target of a `COPY` that vcfq plans itself (to a Lance dataset, to VCF/BCF): a table
//! that can only be written. The COPY is planned as an insert of its query into it, so the rows
//! stream into the sink its closure plans and the statement returns the number written.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{TableReference, plan_err};
use datafusion::datasource::provider_as_source;
use datafusion::error::Result;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{DmlStatement, Expr, LogicalPlan, TableType, WriteOp};
use datafusion::physical_plan::ExecutionPlan;

/// Makes the plan that writes an input (a `DataSinkExec` over the input, typically).
type SinkPlan = Box<dyn Fn(Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> + Send + Sync>;

/// A write-only table: what a COPY writes into.
pub struct CopyTarget {
    schema: SchemaRef,
    sink: SinkPlan,
}

impl fmt::Debug for CopyTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CopyTarget")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl CopyTarget {
    /// A target for rows of `schema`, written by the plan `sink` makes of its input.
    pub fn new(
        schema: SchemaRef,
        sink: impl Fn(Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> + Send + Sync + 'static,
    ) -> Self {
        CopyTarget {
            schema,
            sink: Box::new(sink),
        }
    }

    /// The insert of `input` into this target, named `name` (the COPY's target).
    pub fn insert(self, name: &str, input: LogicalPlan) -> LogicalPlan {
        LogicalPlan::Dml(DmlStatement::new(
            TableReference::bare(name),
            provider_as_source(Arc::new(self)),
            WriteOp::Insert(InsertOp::Append),
            Arc::new(input),
        ))
    }
}

#[async_trait]
impl TableProvider for CopyTarget {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        _projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan_err!("the target of a COPY cannot be read")
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        _insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok((self.sink)(input))
    }
}
