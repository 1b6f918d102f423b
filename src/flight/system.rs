//! The `system` schema of a server session: `system.queries` (running and recent queries),
//! `system.sessions` (live sessions), `system.audit` (the audit trail, administrators only),
//! and `cancel_query(id)`. Users who are not administrators see their own queries and
//! sessions, and may cancel their own queries.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray, TimestampMillisecondArray,
    UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::streaming::StreamingTable;
use datafusion::catalog::{
    MemorySchemaProvider, SchemaProvider, Session, TableFunctionArgs, TableFunctionImpl,
    TableProvider,
};
use datafusion::common::{ScalarValue, plan_err};
use datafusion::datasource::{MemTable, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::physical_plan::{ExecutionPlan, SendableRecordBatchStream};
use datafusion::prelude::SessionContext;

use super::activity::{Activity, QueryInfo};
use crate::access::AccessError;

/// Who reads the system tables.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The user (`None`: anonymous).
    pub user: Option<String>,
    /// Whether the user sees everything (and may read the audit trail).
    pub admin: bool,
}

impl Viewer {
    fn sees(&self, user: &Option<String>) -> bool {
        self.admin || *user == self.user
    }
}

/// Registers the `system` schema and `cancel_query` in a session.
pub fn register(
    ctx: &SessionContext,
    activity: &Arc<Activity>,
    audit: Option<PathBuf>,
    viewer: Viewer,
) -> Result<()> {
    let schema = Arc::new(MemorySchemaProvider::new());
    let table = |kind| {
        Arc::new(SystemTable {
            kind,
            activity: Arc::clone(activity),
            viewer: viewer.clone(),
        }) as Arc<dyn TableProvider>
    };
    schema.register_table("queries".into(), table(Kind::Queries))?;
    schema.register_table("sessions".into(), table(Kind::Sessions))?;
    if let Some(path) = audit {
        schema.register_table("audit".into(), table(Kind::Audit(path)))?;
    }
    let catalog_name = ctx
        .state()
        .config()
        .options()
        .catalog
        .default_catalog
        .clone();
    if let Some(catalog) = ctx.catalog(&catalog_name) {
        catalog.register_schema("system", schema)?;
    }
    ctx.register_udtf(
        "cancel_query",
        Arc::new(CancelQuery {
            activity: Arc::clone(activity),
            viewer,
        }),
    );
    Ok(())
}

#[derive(Debug, Clone)]
enum Kind {
    Queries,
    Sessions,
    Audit(PathBuf),
}

#[derive(Debug)]
struct SystemTable {
    kind: Kind,
    activity: Arc<Activity>,
    viewer: Viewer,
}

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

fn queries_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::UInt64, false),
        Field::new("session", DataType::UInt64, false),
        Field::new("user", DataType::Utf8, true),
        Field::new("sql", DataType::Utf8, false),
        Field::new("state", DataType::Utf8, false),
        Field::new("start", timestamp(), false),
        Field::new("duration_ms", DataType::Float64, false),
        Field::new("rows", DataType::UInt64, false),
        Field::new("bytes", DataType::UInt64, false),
        Field::new("error", DataType::Utf8, true),
    ]))
}

fn sessions_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::UInt64, false),
        Field::new("user", DataType::Utf8, true),
        Field::new("start", timestamp(), false),
    ]))
}

fn audit_schema() -> SchemaRef {
    let list = |name: &str| {
        Field::new(
            name,
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        )
    };
    Arc::new(Schema::new(vec![
        Field::new("seq", DataType::UInt64, false),
        Field::new("time", timestamp(), false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("user", DataType::Utf8, true),
        list("roles"),
        Field::new("peer", DataType::Utf8, true),
        Field::new("session", DataType::UInt64, true),
        Field::new("statement", DataType::UInt64, true),
        Field::new("sql", DataType::Utf8, true),
        Field::new(
            "params",
            DataType::List(Arc::new(Field::new(
                "item",
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                true,
            ))),
            true,
        ),
        list("objects"),
        Field::new("rows", DataType::UInt64, true),
        Field::new("duration_ms", DataType::Float64, true),
        Field::new("outcome", DataType::Utf8, false),
        Field::new("code", DataType::Utf8, true),
        Field::new("error", DataType::Utf8, true),
        Field::new("prev", DataType::Utf8, false),
    ]))
}

fn millis(t: std::time::SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl SystemTable {
    fn queries_batch(&self) -> Result<RecordBatch> {
        let rows: Vec<QueryInfo> = self
            .activity
            .queries()
            .into_iter()
            .filter(|q| self.viewer.sees(&q.user))
            .collect();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(UInt64Array::from_iter_values(rows.iter().map(|q| q.id))),
            Arc::new(UInt64Array::from_iter_values(
                rows.iter().map(|q| q.session),
            )),
            Arc::new(StringArray::from_iter(
                rows.iter().map(|q| q.user.as_deref()),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|q| q.sql.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|q| q.state.as_str()),
            )),
            Arc::new(
                TimestampMillisecondArray::from_iter_values(rows.iter().map(|q| millis(q.started)))
                    .with_timezone("UTC"),
            ),
            Arc::new(Float64Array::from_iter_values(
                rows.iter().map(|q| q.duration.as_secs_f64() * 1e3),
            )),
            Arc::new(UInt64Array::from_iter_values(rows.iter().map(|q| q.rows))),
            Arc::new(UInt64Array::from_iter_values(rows.iter().map(|q| q.bytes))),
            Arc::new(StringArray::from_iter(
                rows.iter().map(|q| q.error.as_deref()),
            )),
        ];
        Ok(RecordBatch::try_new(queries_schema(), columns)?)
    }

    fn sessions_batch(&self) -> Result<RecordBatch> {
        let rows: Vec<_> = self
            .activity
            .sessions()
            .into_iter()
            .filter(|s| self.viewer.sees(&s.user))
            .collect();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(UInt64Array::from_iter_values(rows.iter().map(|s| s.id))),
            Arc::new(StringArray::from_iter(
                rows.iter().map(|s| s.user.as_deref()),
            )),
            Arc::new(
                TimestampMillisecondArray::from_iter_values(rows.iter().map(|s| millis(s.started)))
                    .with_timezone("UTC"),
            ),
        ];
        Ok(RecordBatch::try_new(sessions_schema(), columns)?)
    }
}

#[async_trait]
impl TableProvider for SystemTable {
    fn schema(&self) -> SchemaRef {
        match self.kind {
            Kind::Queries => queries_schema(),
            Kind::Sessions => sessions_schema(),
            Kind::Audit(_) => audit_schema(),
        }
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let batch = match &self.kind {
            Kind::Queries => self.queries_batch()?,
            Kind::Sessions => self.sessions_batch()?,
            Kind::Audit(path) => {
                if !self.viewer.admin {
                    return Err(AccessError::Table {
                        table: "system.audit".into(),
                        privilege: crate::access::Privilege::Select,
                    }
                    .into());
                }
                // the trail streams from its file (it grows without bound)
                let stream = Arc::new(AuditStream {
                    path: path.clone(),
                    schema: audit_schema(),
                });
                let table = StreamingTable::try_new(audit_schema(), vec![stream])?;
                return table.scan(state, projection, filters, limit).await;
            }
        };
        MemTable::try_new(batch.schema(), vec![vec![batch]])?
            .scan(state, projection, filters, limit)
            .await
    }
}

/// The audit trail read as it is on disk, batch by batch.
#[derive(Debug)]
struct AuditStream {
    path: PathBuf,
    schema: SchemaRef,
}

impl PartitionStream for AuditStream {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let schema = Arc::clone(&self.schema);
        let path = self.path.clone();
        let batches: Box<dyn Iterator<Item = Result<RecordBatch>> + Send> = match File::open(&path)
            .map_err(|e| DataFusionError::Execution(format!("{}: {e}", path.display())))
            .and_then(|file| {
                arrow_json::ReaderBuilder::new(Arc::clone(&schema))
                    .with_batch_size(8192)
                    .build(BufReader::new(file))
                    .map_err(|e| DataFusionError::ArrowError(Box::new(e), None))
            }) {
            Ok(reader) => Box::new(reader.map(move |b| {
                b.map_err(|e| DataFusionError::Execution(format!("{}: {e}", path.display())))
            })),
            Err(e) => Box::new(std::iter::once(Err(e))),
        };
        Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            futures::stream::iter(batches),
        ))
    }
}

/// `cancel_query(id)`: cancels a running query; one row (`id`, `cancelled`). It acts when the
/// statement is planned.
#[derive(Debug)]
struct CancelQuery {
    activity: Arc<Activity>,
    viewer: Viewer,
}

impl TableFunctionImpl for CancelQuery {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let id = match args.exprs() {
            [Expr::Literal(v, _)] => match v.cast_to(&DataType::UInt64) {
                Ok(ScalarValue::UInt64(Some(id))) => id,
                _ => return plan_err!("cancel_query(id): id must be a query id, got {v}"),
            },
            other => {
                return plan_err!(
                    "cancel_query(id) takes one query id (from system.queries), got {} arguments",
                    other.len()
                );
            }
        };
        if let Some(owner) = self.activity.owner(id)
            && !self.viewer.sees(&owner)
        {
            return Err(AccessError::Statement(format!(
                "cancel_query({id}): only an administrator may cancel another user's query"
            ))
            .into());
        }
        let cancelled = self.activity.cancel(id);
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::UInt64, false),
            Field::new("cancelled", DataType::Boolean, false),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(UInt64Array::from(vec![id])),
                Arc::new(BooleanArray::from(vec![cancelled])),
            ],
        )?;
        Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
    }
}
