//! A Lance dataset as a table (`CREATE EXTERNAL TABLE t STORED AS LANCE LOCATION 'dir'`):
//! every scan reads the dataset's latest version, with projection, filters and limit pushed
//! into Lance's scanner; `INSERT INTO t` appends (`INSERT OVERWRITE` replaces) a version.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider, TableProviderFactory, UrlTableFactory};
use datafusion::common::{DataFusionError, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{CreateExternalTable, Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    SendableRecordBatchStream,
};
use futures::TryStreamExt;
use lance::Dataset;
use lance::datafusion::LanceTableProvider;

use super::index::{IndexInfo, indexes_of};
use super::sink::{LanceSink, WriteKind, write_plan};
use super::{DatasetVersion, dataset_uri, lance_error, open_dataset};

/// A Lance dataset as a table.
#[derive(Debug, Clone)]
pub struct LanceTable {
    location: String,
    schema: SchemaRef,
}

impl LanceTable {
    /// Opens the dataset at `location`. When there is none and `declared` has columns, an
    /// empty dataset with those columns is created; otherwise a missing dataset is an error.
    pub async fn open(location: &str, declared: Option<SchemaRef>) -> Result<Self> {
        let uri = dataset_uri(location);
        let schema = match open_dataset(&uri).await {
            Ok(dataset) => {
                let schema: Schema = dataset.schema().into();
                if let Some(declared) = &declared
                    && !same_columns(declared, &schema)
                {
                    return plan_err!(
                        "lance dataset '{location}' has the columns ({}), not the declared ({})",
                        column_list(&schema),
                        column_list(declared)
                    );
                }
                Arc::new(schema)
            }
            Err(lance::Error::DatasetNotFound { .. }) if declared.is_some() => {
                let declared = declared.expect("checked");
                LanceSink::create_empty(&uri, Arc::clone(&declared))
                    .await
                    .map_err(|e| lance_error(location, e))?;
                // the columns as Lance stores them (text as Utf8, whatever SQL declared)
                let created = open_dataset(&uri)
                    .await
                    .map_err(|e| lance_error(location, e))?;
                Arc::new(created.schema().into())
            }
            Err(lance::Error::DatasetNotFound { .. }) => {
                return plan_err!(
                    "no lance dataset at '{location}' (declare its columns to create an empty one)"
                );
            }
            Err(e) => return Err(lance_error(location, e)),
        };
        Ok(LanceTable {
            location: uri,
            schema,
        })
    }

    /// The table of the dataset at `location` ([`dataset_uri`]'s form) whose columns are
    /// `schema`, as a client planned it, without opening the dataset: a cluster's scheduler
    /// receives tables this way, and their scans check the columns.
    pub fn planned(location: String, schema: SchemaRef) -> Self {
        LanceTable { location, schema }
    }

    /// Where the dataset is (an absolute path or a URI).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The dataset's latest version, whose columns must still be the table's.
    pub async fn dataset(&self) -> Result<Arc<Dataset>> {
        let dataset = open_dataset(&self.location)
            .await
            .map_err(|e| lance_error(&self.location, e))?;
        let now: Schema = dataset.schema().into();
        if !same_columns(&self.schema, &now) {
            return plan_err!(
                "lance dataset '{}' now has the columns ({}), not ({}) as when the table was created; create the table again",
                self.location,
                column_list(&now),
                column_list(&self.schema)
            );
        }
        Ok(Arc::new(dataset))
    }
}

/// Whether two schemas have the same column names and types (nullability aside: Lance and
/// SQL declarations differ in what they mark; and text is text, as SQL's VARCHAR is Utf8View
/// and Lance stores Utf8).
fn same_columns(a: &Schema, b: &Schema) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields()
            .iter()
            .zip(b.fields())
            .all(|(x, y)| x.name() == y.name() && same_type(x.data_type(), y.data_type()))
}

fn same_type(a: &DataType, b: &DataType) -> bool {
    use DataType::*;
    match (a, b) {
        (Utf8 | LargeUtf8 | Utf8View, Utf8 | LargeUtf8 | Utf8View) => true,
        (Binary | LargeBinary | BinaryView, Binary | LargeBinary | BinaryView) => true,
        (List(x) | LargeList(x), List(y) | LargeList(y)) => same_type(x.data_type(), y.data_type()),
        (FixedSizeList(x, n), FixedSizeList(y, m)) => {
            n == m && same_type(x.data_type(), y.data_type())
        }
        (Struct(xs), Struct(ys)) => {
            xs.len() == ys.len()
                && xs
                    .iter()
                    .zip(ys.iter())
                    .all(|(x, y)| x.name() == y.name() && same_type(x.data_type(), y.data_type()))
        }
        _ => a.equals_datatype(b),
    }
}

fn column_list(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| format!("{} {}", f.name(), f.data_type()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[async_trait]
impl TableProvider for LanceTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let dataset = self.dataset().await?;
        let inner = LanceTableProvider::new(Arc::clone(&dataset), false, false)
            .scan(state, projection, filters, limit)
            .await
            .map_err(|e| match e {
                DataFusionError::External(_) => {
                    DataFusionError::Execution(format!("lance dataset '{}': {e}", self.location))
                }
                e => e,
            })?;
        let columns = match projection {
            Some(p) => p
                .iter()
                .map(|i| self.schema.field(*i).name().clone())
                .collect(),
            None => self
                .schema
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect(),
        };
        // the vector indexes, for the kNN rewrite (found now: optimizer rules cannot wait)
        let has_vectors = self
            .schema
            .fields()
            .iter()
            .any(|f| matches!(f.data_type(), DataType::FixedSizeList(..)));
        let indexes = if has_vectors {
            indexes_of(&self.location, &dataset).await?
        } else {
            Vec::new()
        };
        Ok(Arc::new(LanceScanExec {
            location: self.location.clone(),
            indexes,
            dataset,
            columns,
            filters: filters.to_vec(),
            limit,
            inner,
        }))
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // Lance evaluates any filter with DataFusion's own expressions
        Ok(vec![TableProviderFilterPushDown::Exact; filters.len()])
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let kind = match insert_op {
            InsertOp::Append => WriteKind::Append,
            InsertOp::Overwrite => WriteKind::Overwrite,
            InsertOp::Replace => {
                return plan_err!(
                    "lance dataset '{}': REPLACE INTO is not supported (INSERT INTO appends, INSERT OVERWRITE replaces)",
                    self.location
                );
            }
        };
        Ok(write_plan(
            input,
            self.location.clone(),
            kind,
            Arc::clone(&self.schema),
        ))
    }
}

/// Makes [`LanceTable`]s for `CREATE EXTERNAL TABLE … STORED AS LANCE`.
#[derive(Debug, Default, Clone, Copy)]
pub struct LanceTableFactory;

#[async_trait]
impl TableProviderFactory for LanceTableFactory {
    async fn create(
        &self,
        _state: &dyn Session,
        cmd: &CreateExternalTable,
    ) -> Result<Arc<dyn TableProvider>> {
        if let Some((key, _)) = cmd.options.iter().next() {
            let key = key.strip_prefix("format.").unwrap_or(key);
            return plan_err!(
                "lance tables take no OPTIONS, got '{key}' (index settings go in CREATE INDEX … WITH (…))"
            );
        }
        if !cmd.table_partition_cols.is_empty() {
            return plan_err!("lance tables have no PARTITIONED BY columns");
        }
        let declared: Schema = cmd.schema.as_arrow().clone();
        let declared = (!declared.fields().is_empty()).then(|| Arc::new(declared));
        Ok(Arc::new(LanceTable::open(&cmd.location, declared).await?))
    }
}

/// Whether `location` is a local Lance dataset (a directory with a `_versions` folder).
pub fn is_lance_dataset(location: &str) -> bool {
    let plain = location.strip_prefix("file://").unwrap_or(location);
    std::path::Path::new(plain).join("_versions").is_dir()
}

/// Resolves paths used as table names: a Lance dataset's directory (`SELECT * FROM
/// 'variants.lance'`) becomes a [`LanceTable`]; anything else goes to `fallback`.
#[derive(Debug)]
pub struct LanceUrlTableFactory {
    fallback: Arc<dyn UrlTableFactory>,
}

impl LanceUrlTableFactory {
    /// A factory trying Lance datasets first, then `fallback`.
    pub fn new(fallback: Arc<dyn UrlTableFactory>) -> Self {
        LanceUrlTableFactory { fallback }
    }
}

#[async_trait]
impl UrlTableFactory for LanceUrlTableFactory {
    async fn try_new(&self, url: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if is_lance_dataset(url) {
            return Ok(Some(Arc::new(LanceTable::open(url, None).await?)));
        }
        self.fallback.try_new(url).await
    }
}

/// The scan of a Lance table: Lance's own plan for the pushed projection, filters and limit,
/// with what was pushed shown in EXPLAIN and kept for the kNN rewrite
/// ([`super::rewrite::VectorSearchRewrite`]), which replaces this node by a search.
#[derive(Debug)]
pub struct LanceScanExec {
    /// Where the dataset is.
    pub location: String,
    /// The version scanned.
    pub dataset: Arc<Dataset>,
    /// The columns read, in output order.
    pub columns: Vec<String>,
    /// The filters Lance applies (all of them exactly).
    pub filters: Vec<Expr>,
    /// At most this many rows.
    pub limit: Option<usize>,
    /// The dataset's vector indexes.
    pub indexes: Vec<IndexInfo>,
    inner: Arc<dyn ExecutionPlan>,
}

impl DisplayAs for LanceScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        fmt_scan(
            f,
            &self.location,
            self.dataset.version().version,
            &self.columns,
            &self.filters,
            self.limit,
        )
    }
}

/// How EXPLAIN shows a Lance scan, planned here or received by an executor.
fn fmt_scan(
    f: &mut fmt::Formatter,
    location: &str,
    version: u64,
    columns: &[String],
    filters: &[Expr],
    limit: Option<usize>,
) -> fmt::Result {
    write!(
        f,
        "LanceScanExec: location={location}, version={version}, projection=[{}]",
        columns.join(", ")
    )?;
    if !filters.is_empty() {
        let filters: Vec<String> = filters.iter().map(|e| e.to_string()).collect();
        write!(f, ", filter=[{}]", filters.join(", "))?;
    }
    if let Some(limit) = limit {
        write!(f, ", limit={limit}")?;
    }
    Ok(())
}

impl LanceScanExec {
    /// What an executor needs to scan the same rows: see [`ShippedLanceScan`].
    pub fn shipped(&self) -> ShippedLanceScan {
        ShippedLanceScan::new(
            self.location.clone(),
            self.dataset.version().version,
            self.columns.clone(),
            self.filters.clone(),
            self.limit,
            self.schema(),
            self.properties().partitioning.partition_count(),
        )
    }
}

impl ExecutionPlan for LanceScanExec {
    fn name(&self) -> &str {
        "LanceScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.inner.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.inner.execute(partition, context)
    }
}

/// A [`LanceScanExec`] as a cluster's executor receives it: the dataset version, columns,
/// filters and limit its client planned, planned again by Lance where it runs (each
/// partition opens that version, so a write since planning changes nothing), with as many
/// partitions as where it was planned (checked).
#[derive(Debug, Clone)]
pub struct ShippedLanceScan {
    /// Where the dataset is.
    pub location: String,
    /// The version scanned.
    pub version: u64,
    /// The columns read, in output order.
    pub columns: Vec<String>,
    /// The filters Lance applies.
    pub filters: Vec<Expr>,
    /// At most this many rows.
    pub limit: Option<usize>,
    properties: Arc<PlanProperties>,
}

impl ShippedLanceScan {
    /// The scan of `version` of the dataset at `location` giving `schema` in `partitions`
    /// partitions.
    pub fn new(
        location: String,
        version: u64,
        columns: Vec<String>,
        filters: Vec<Expr>,
        limit: Option<usize>,
        schema: SchemaRef,
        partitions: usize,
    ) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        ShippedLanceScan {
            location,
            version,
            columns,
            filters,
            limit,
            properties,
        }
    }

    /// Lance's plan of this scan, made here.
    async fn plan(&self, context: &TaskContext) -> Result<Arc<dyn ExecutionPlan>> {
        let dataset = DatasetVersion::At {
            uri: self.location.clone(),
            version: self.version,
        }
        .dataset(&self.location)
        .await?;
        let schema: Schema = dataset.schema().into();
        let projection = self
            .columns
            .iter()
            .map(|c| schema.index_of(c))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let state = SessionStateBuilder::new()
            .with_config(context.session_config().clone())
            .with_runtime_env(context.runtime_env())
            .with_scalar_functions(context.scalar_functions().values().cloned().collect())
            .with_aggregate_functions(context.aggregate_functions().values().cloned().collect())
            .with_window_functions(context.window_functions().values().cloned().collect())
            .build();
        let inner = LanceTableProvider::new(dataset, false, false)
            .scan(&state, Some(&projection), &self.filters, self.limit)
            .await?;
        let partitions = inner.properties().partitioning.partition_count();
        let planned = self.properties.partitioning.partition_count();
        if partitions != planned {
            return exec_err!(
                "lance dataset '{}' version {}: the scan has {partitions} partitions here but had {planned} where it was planned",
                self.location,
                self.version
            );
        }
        Ok(inner)
    }
}

impl DisplayAs for ShippedLanceScan {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        fmt_scan(
            f,
            &self.location,
            self.version,
            &self.columns,
            &self.filters,
            self.limit,
        )
    }
}

impl ExecutionPlan for ShippedLanceScan {
    fn name(&self) -> &str {
        "LanceScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let scan = self.clone();
        let stream = async move {
            let inner = scan.plan(&context).await?;
            inner.execute(partition, context)
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema(),
            futures::stream::once(stream).try_flatten(),
        )))
    }
}
