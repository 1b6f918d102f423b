//! [`KnnExec`]: the k rows of a Lance table nearest to a query vector, found by Lance's
//! search (through the column's vector index, or exactly when there is none or index use is
//! off), with the table's filters applied before the search, so k rows come back whenever
//! k rows match.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float32Array, RecordBatchOptions};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::exec_err;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    SendableRecordBatchStream,
};
use futures::{StreamExt, TryStreamExt};
use lance_linalg::distance::DistanceType;

use super::index::{IndexInfo, metric_name};
use super::{DatasetVersion, lance_error};
use crate::config::VectorConfig;

/// The distance functions a search answers: SQL name, Lance's metric, and whether nearest
/// is smallest (`inner_product` is a similarity: nearest is largest).
const DISTANCES: [(&str, DistanceType, bool); 3] = [
    ("cosine_distance", DistanceType::Cosine, true),
    ("l2_distance", DistanceType::L2, true),
    ("inner_product", DistanceType::Dot, false),
];

/// The metric a distance function computes, and whether nearest is smallest.
pub fn distance_of(function: &str) -> Option<(DistanceType, bool)> {
    DISTANCES
        .iter()
        .find(|(name, _, _)| *name == function)
        .map(|(_, metric, ascending)| (*metric, *ascending))
}

/// The distance function of a metric, and whether nearest is smallest.
pub fn function_of(metric: DistanceType) -> Option<(&'static str, bool)> {
    DISTANCES
        .iter()
        .find(|(_, m, _)| *m == metric)
        .map(|(name, _, ascending)| (*name, *ascending))
}

/// How a search is run.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchSettings {
    /// The vector column searched.
    pub column: String,
    /// The distance.
    pub metric: DistanceType,
    /// Rows wanted.
    pub k: usize,
    /// The index searched (`None`: an exact search over every row).
    pub index: Option<String>,
    /// The segments of that index.
    pub segments: Vec<uuid::Uuid>,
    /// Whether the search must name the index (the column has other indexes, and Lance
    /// would take the first).
    pub named: bool,
    /// IVF partitions probed (`None`: Lance's default).
    pub nprobes: Option<usize>,
    /// Candidates re-ranked exactly, as a multiple of k.
    pub refine_factor: Option<u32>,
}

impl SearchSettings {
    /// A search of `column` by `metric` for `k` rows: through the column's index for that
    /// metric among `indexes` when there is one and `config` allows indexes (exact otherwise);
    /// `nprobes` and `refine_factor` as given, else the session's settings.
    pub fn new(
        column: &str,
        metric: DistanceType,
        k: usize,
        indexes: &[IndexInfo],
        config: &VectorConfig,
        nprobes: Option<usize>,
        refine_factor: Option<u32>,
    ) -> Self {
        let on_column = || indexes.iter().filter(|i| i.column == column);
        let index = on_column()
            .find(|i| i.metric == Some(metric))
            .filter(|_| config.use_index);
        SearchSettings {
            column: column.to_string(),
            metric,
            k,
            index: index.map(|i| i.name.clone()),
            segments: index.map(|i| i.segments.clone()).unwrap_or_default(),
            named: on_column().count() > 1,
            nprobes: nprobes.or((config.nprobes > 0).then_some(config.nprobes)),
            refine_factor: refine_factor
                .or((config.refine_factor > 0).then_some(config.refine_factor)),
        }
    }
}

/// The k nearest rows of a Lance dataset to a query vector, by Lance's search.
#[derive(Debug)]
pub struct KnnExec {
    location: String,
    dataset: DatasetVersion,
    columns: Vec<String>,
    filters: Vec<Expr>,
    query: Float32Array,
    settings: SearchSettings,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl KnnExec {
    /// A search returning `columns` (in this order, with `schema`) of the k rows nearest to
    /// `query` among those matching every filter.
    pub fn new(
        location: String,
        dataset: DatasetVersion,
        columns: Vec<String>,
        filters: Vec<Expr>,
        query: Float32Array,
        settings: SearchSettings,
        schema: SchemaRef,
    ) -> Self {
        KnnExec {
            location,
            dataset,
            columns,
            filters,
            query,
            settings,
            properties: single_partition(Arc::clone(&schema)),
            schema,
        }
    }

    /// Where the dataset is, as the table names it.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The dataset searched.
    pub fn dataset(&self) -> &DatasetVersion {
        &self.dataset
    }

    /// The columns returned, in order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The filters applied before the search.
    pub fn filters(&self) -> &[Expr] {
        &self.filters
    }

    /// The query vector.
    pub fn query(&self) -> &Float32Array {
        &self.query
    }

    /// How the search runs.
    pub fn settings(&self) -> &SearchSettings {
        &self.settings
    }

    async fn search(
        dataset: DatasetVersion,
        location: String,
        columns: Vec<String>,
        filters: Vec<Expr>,
        query: Float32Array,
        settings: SearchSettings,
        schema: SchemaRef,
    ) -> Result<SendableRecordBatchStream> {
        let dataset = dataset.dataset(&location).await?;
        let err = |e| lance_error(&location, e);
        let mut scan = dataset.scan();
        // filters first: the search runs over the rows that match them
        if let Some(filter) = filters.into_iter().reduce(Expr::and) {
            scan.prefilter(true);
            scan.filter_expr(filter);
        }
        scan.project(&columns).map_err(err)?;
        // only the columns asked for (Lance would add `_distance` and warn about it)
        scan.disable_scoring_autoprojection();
        scan.nearest(&settings.column, &query, settings.k)
            .map_err(err)?;
        scan.distance_metric(settings.metric);
        scan.use_index(settings.index.is_some());
        if settings.index.is_some() && !settings.segments.is_empty() && settings.named {
            // this index, not the column's first; and every fragment, so rows added since
            // the index was built are searched exactly rather than left out (a fragment
            // scan, slower: only when the column has several indexes)
            scan.prefilter(true);
            scan.with_index_segments(settings.segments.clone())
                .map_err(err)?;
            scan.with_fragments(dataset.fragments().as_ref().clone());
        }
        if let Some(n) = settings.nprobes {
            scan.nprobes(n);
        }
        if let Some(f) = settings.refine_factor {
            scan.refine(f);
        }
        let stream = scan.try_into_stream().await.map_err(err)?;
        let out = Arc::clone(&schema);
        let batches = stream.map(move |batch| {
            let batch = batch.map_err(|e| lance_error(&location, e))?;
            // the columns asked for, by name (whatever else Lance returns)
            let arrays = out
                .fields()
                .iter()
                .map(|f| match batch.column_by_name(f.name()) {
                    Some(a) if a.data_type() == f.data_type() => Ok(Arc::clone(a)),
                    Some(a) => Ok(cast(a, f.data_type())?),
                    None => exec_err!(
                        "lance search of '{location}' returned no column '{}'",
                        f.name()
                    ),
                })
                .collect::<Result<Vec<ArrayRef>>>()?;
            Ok(RecordBatch::try_new_with_options(
                Arc::clone(&out),
                arrays,
                &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
            )?)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }
}

impl DisplayAs for KnnExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let s = &self.settings;
        write!(
            f,
            "KnnExec: location={}, column={}, metric={}, k={}, {}",
            self.location,
            s.column,
            metric_name(s.metric),
            s.k,
            match &s.index {
                Some(name) => format!("index={name}"),
                None => "exact".to_string(),
            }
        )?;
        if let Some(n) = s.nprobes {
            write!(f, ", nprobes={n}")?;
        }
        if let Some(r) = s.refine_factor {
            write!(f, ", refine_factor={r}")?;
        }
        write!(f, ", projection=[{}]", self.columns.join(", "))?;
        if !self.filters.is_empty() {
            let filters: Vec<String> = self.filters.iter().map(|e| e.to_string()).collect();
            write!(f, ", prefilter=[{}]", filters.join(", "))?;
        }
        Ok(())
    }
}

impl ExecutionPlan for KnnExec {
    fn name(&self) -> &str {
        "KnnExec"
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
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return exec_err!("KnnExec has one partition, not {partition}");
        }
        let search = KnnExec::search(
            self.dataset.clone(),
            self.location.clone(),
            self.columns.clone(),
            self.filters.clone(),
            self.query.clone(),
            self.settings.clone(),
            Arc::clone(&self.schema),
        );
        let stream = futures::stream::once(search).try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            stream,
        )))
    }
}

/// The query vector a constant expression (no columns) gives, as `Float32` values; `None`
/// when it is NULL.
pub fn constant_vector(expr: &Arc<dyn PhysicalExpr>) -> Result<Option<Float32Array>> {
    let one_row = RecordBatch::try_new_with_options(
        Arc::new(Schema::empty()),
        vec![],
        &RecordBatchOptions::new().with_row_count(Some(1)),
    )?;
    let value = expr.evaluate(&one_row)?.into_array(1)?;
    vector_of(&value)
}

/// The first row of a list array as `Float32` values (`None` when it is NULL).
pub fn vector_of(value: &ArrayRef) -> Result<Option<Float32Array>> {
    if value.is_empty() || value.is_null(0) {
        return Ok(None);
    }
    let items = match value.data_type() {
        DataType::FixedSizeList(..) => value.as_fixed_size_list().value(0),
        DataType::List(_) => value.as_list::<i32>().value(0),
        DataType::LargeList(_) => value.as_list::<i64>().value(0),
        other => {
            return Err(DataFusionError::Plan(format!(
                "a query vector must be a list of numbers, not {other}"
            )));
        }
    };
    if items.null_count() > 0 {
        return Err(DataFusionError::Plan(
            "a query vector has a NULL element".to_string(),
        ));
    }
    let items = cast(&items, &DataType::Float32)?;
    Ok(Some(items.as_primitive().clone()))
}

/// Plan properties of a single-partition, bounded node with `schema` and no known order.
fn single_partition(schema: SchemaRef) -> Arc<PlanProperties> {
    Arc::new(PlanProperties::new(
        EquivalenceProperties::new(schema),
        Partitioning::UnknownPartitioning(1),
        EmissionType::Incremental,
        Boundedness::Bounded,
    ))
}
