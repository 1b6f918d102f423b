//! Vector indexes from SQL, on Lance tables:
//!
//! ```sql
//! CREATE INDEX emb_idx ON t USING IVF_PQ (emb) WITH (metric = 'cosine', num_partitions = 256, num_sub_vectors = 48);
//! CREATE INDEX emb_hnsw ON t USING IVF_HNSW_SQ (emb) WITH (metric = 'l2', m = 20, ef_construction = 150);
//! DROP INDEX emb_idx;            -- or DROP INDEX emb_idx ON t
//! SELECT * FROM vector_indexes();
//! ```
//!
//! `USING` is `IVF_PQ` (the default), `IVF_HNSW_SQ`, `IVF_HNSW_PQ` or `IVF_FLAT`; the index is
//! built when the statement runs, over the rows the dataset has then (rows added later are
//! searched exactly until the index is built again: `CREATE INDEX … WITH (replace = true)`).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableFunctionImpl, TableProvider};
use datafusion::common::{TableReference, plan_err};
use datafusion::datasource::MemTable;
use datafusion::error::Result;
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Expr, LogicalPlan, TableType};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::planner::object_name_to_table_reference;
use datafusion::sql::sqlparser::ast;
use lance::Dataset;
use lance::index::DatasetIndexExt;
use lance::index::vector::VectorIndexParams;
use lance_index::IndexType;
use lance_index::vector::hnsw::builder::HnswBuildParams;
use lance_index::vector::ivf::IvfBuildParams;
use lance_index::vector::pq::PQBuildParams;
use lance_index::vector::sq::builder::SQBuildParams;
use lance_linalg::distance::DistanceType;

use super::table::LanceTable;
use super::{Kept, lance_error, open_dataset};

/// The kinds of vector index `CREATE INDEX … USING` builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    /// IVF partitions, product-quantised vectors (small, approximate distances).
    IvfPq,
    /// IVF partitions, an HNSW graph per partition over 8-bit scalar-quantised vectors.
    IvfHnswSq,
    /// IVF partitions, an HNSW graph per partition over product-quantised vectors.
    IvfHnswPq,
    /// IVF partitions holding the vectors as they are (exact distances within a partition).
    IvfFlat,
}

impl IndexKind {
    fn parse(name: &str) -> Result<Self> {
        Ok(match name.to_ascii_uppercase().as_str() {
            "IVF_PQ" => IndexKind::IvfPq,
            "IVF_HNSW_SQ" => IndexKind::IvfHnswSq,
            "IVF_HNSW_PQ" => IndexKind::IvfHnswPq,
            "IVF_FLAT" => IndexKind::IvfFlat,
            other => {
                return plan_err!(
                    "CREATE INDEX: unknown index type '{other}' (IVF_PQ, IVF_HNSW_SQ, IVF_HNSW_PQ, IVF_FLAT)"
                );
            }
        })
    }

    fn lance_type(self) -> IndexType {
        match self {
            IndexKind::IvfPq => IndexType::IvfPq,
            IndexKind::IvfHnswSq => IndexType::IvfHnswSq,
            IndexKind::IvfHnswPq => IndexType::IvfHnswPq,
            IndexKind::IvfFlat => IndexType::IvfFlat,
        }
    }
}

/// What `CREATE INDEX … WITH (…)` asks for; every key is checked, unknown ones rejected.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexSpec {
    /// The index structure.
    pub kind: IndexKind,
    /// The distance the index orders by: `cosine` (default), `l2` or `dot`. Only queries
    /// by the same distance use it (`cosine_distance`, `l2_distance`, `inner_product`).
    pub metric: DistanceType,
    /// IVF partitions (default: about √rows, as Lance chooses).
    pub num_partitions: Option<usize>,
    /// PQ sub-vectors (default: dimension / 16, at least 1, a divisor of the dimension).
    pub num_sub_vectors: Option<usize>,
    /// Bits per PQ code (8) or SQ value (8).
    pub num_bits: Option<usize>,
    /// HNSW neighbours per node (20).
    pub m: Option<usize>,
    /// HNSW candidates while building (150).
    pub ef_construction: Option<usize>,
    /// Training rows per centroid for k-means (256).
    pub sample_rate: Option<usize>,
    /// k-means iterations (50).
    pub max_iterations: Option<usize>,
    /// Replace an index of the same name (otherwise that is an error).
    pub replace: bool,
}

impl IndexSpec {
    /// Reads `USING kind` and `WITH (key = value, …)`.
    pub fn parse(using: Option<&str>, with: &[(String, String)]) -> Result<Self> {
        let mut spec = IndexSpec {
            kind: IndexKind::parse(using.unwrap_or("IVF_PQ"))?,
            metric: DistanceType::Cosine,
            num_partitions: None,
            num_sub_vectors: None,
            num_bits: None,
            m: None,
            ef_construction: None,
            sample_rate: None,
            max_iterations: None,
            replace: false,
        };
        for (key, value) in with {
            let number = || -> Result<usize> {
                match value.parse::<usize>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => plan_err!(
                        "CREATE INDEX: {key} must be a positive whole number, not '{value}'"
                    ),
                }
            };
            match key.to_ascii_lowercase().as_str() {
                "metric" | "distance_type" => {
                    let Some(metric) = parse_metric(value) else {
                        return plan_err!(
                            "CREATE INDEX: metric must be 'cosine', 'l2' or 'dot', not '{}'",
                            value.to_ascii_lowercase()
                        );
                    };
                    spec.metric = metric;
                }
                "num_partitions" => spec.num_partitions = Some(number()?),
                "num_sub_vectors" => spec.num_sub_vectors = Some(number()?),
                "num_bits" => spec.num_bits = Some(number()?),
                "m" => spec.m = Some(number()?),
                "ef_construction" => spec.ef_construction = Some(number()?),
                "sample_rate" => spec.sample_rate = Some(number()?),
                "max_iterations" => spec.max_iterations = Some(number()?),
                "replace" => {
                    spec.replace = match value.to_ascii_lowercase().as_str() {
                        "true" => true,
                        "false" => false,
                        _ => return plan_err!("CREATE INDEX: replace must be true or false"),
                    }
                }
                other => {
                    return plan_err!(
                        "CREATE INDEX: unknown setting '{other}' (metric, num_partitions, num_sub_vectors, num_bits, m, ef_construction, sample_rate, max_iterations, replace)"
                    );
                }
            }
        }
        let pq = matches!(spec.kind, IndexKind::IvfPq | IndexKind::IvfHnswPq);
        let hnsw = matches!(spec.kind, IndexKind::IvfHnswSq | IndexKind::IvfHnswPq);
        if !pq && spec.num_sub_vectors.is_some() {
            return plan_err!("CREATE INDEX: num_sub_vectors is a setting of PQ indexes");
        }
        if !hnsw && (spec.m.is_some() || spec.ef_construction.is_some()) {
            return plan_err!("CREATE INDEX: m and ef_construction are settings of HNSW indexes");
        }
        if spec.kind == IndexKind::IvfFlat && spec.num_bits.is_some() {
            return plan_err!("CREATE INDEX: num_bits is a setting of PQ and SQ indexes");
        }
        Ok(spec)
    }

    /// Lance's build parameters for vectors of `dim` values.
    fn params(&self, dim: usize) -> Result<VectorIndexParams> {
        let mut ivf = IvfBuildParams {
            num_partitions: self.num_partitions,
            ..Default::default()
        };
        if let Some(n) = self.max_iterations {
            ivf.max_iters = n;
        }
        if let Some(n) = self.sample_rate {
            ivf.sample_rate = n;
        }
        let pq = || -> Result<PQBuildParams> {
            let sub = self.num_sub_vectors.unwrap_or_else(|| {
                (1..=(dim / 16).max(1))
                    .rev()
                    .find(|&d| dim.is_multiple_of(d))
                    .unwrap_or(1)
            });
            if !dim.is_multiple_of(sub) {
                return plan_err!(
                    "CREATE INDEX: num_sub_vectors ({sub}) must divide the vector length ({dim})"
                );
            }
            let mut p = PQBuildParams {
                num_sub_vectors: sub,
                num_bits: self.num_bits.unwrap_or(8),
                ..Default::default()
            };
            if let Some(n) = self.max_iterations {
                p.max_iters = n;
            }
            if let Some(n) = self.sample_rate {
                p.sample_rate = n;
            }
            Ok(p)
        };
        let mut hnsw = HnswBuildParams::default();
        if let Some(m) = self.m {
            hnsw.m = m;
        }
        if let Some(ef) = self.ef_construction {
            hnsw.ef_construction = ef;
        }
        let mut sq = SQBuildParams::default();
        if let Some(bits) = self.num_bits {
            sq.num_bits = bits as u16;
        }
        if let Some(n) = self.sample_rate {
            sq.sample_rate = n;
        }
        Ok(match self.kind {
            IndexKind::IvfPq => VectorIndexParams::with_ivf_pq_params(self.metric, ivf, pq()?),
            IndexKind::IvfHnswSq => {
                VectorIndexParams::with_ivf_hnsw_sq_params(self.metric, ivf, hnsw, sq)
            }
            IndexKind::IvfHnswPq => {
                VectorIndexParams::with_ivf_hnsw_pq_params(self.metric, ivf, hnsw, pq()?)
            }
            IndexKind::IvfFlat => VectorIndexParams::with_ivf_flat_params(self.metric, ivf),
        })
    }
}

/// `key = value` pairs of `WITH (…)`, values unquoted.
fn with_pairs(with: &[ast::Expr]) -> Result<Vec<(String, String)>> {
    with.iter()
        .map(|e| match e {
            ast::Expr::BinaryOp {
                left,
                op: ast::BinaryOperator::Eq,
                right,
            } => {
                let key = match left.as_ref() {
                    ast::Expr::Identifier(id) => id.value.clone(),
                    other => {
                        return plan_err!("CREATE INDEX: expected a setting name, got {other}");
                    }
                };
                let value = match right.as_ref() {
                    ast::Expr::Value(v) => match &v.value {
                        ast::Value::SingleQuotedString(s) | ast::Value::DoubleQuotedString(s) => {
                            s.clone()
                        }
                        other => other.to_string(),
                    },
                    ast::Expr::Identifier(id) => id.value.clone(),
                    other => other.to_string(),
                };
                Ok((key, value))
            }
            other => plan_err!("CREATE INDEX: expected WITH (name = value, …), got {other}"),
        })
        .collect()
}

/// The Lance table `name` names, or an error saying what it is instead.
async fn lance_table(
    ctx: &SessionContext,
    name: TableReference,
    statement: &str,
) -> Result<LanceTable> {
    let provider = ctx.table_provider(name.clone()).await?;
    match provider.downcast_ref::<LanceTable>() {
        Some(t) => Ok(t.clone()),
        None => plan_err!(
            "{statement}: '{name}' is not a Lance table (vector indexes exist on Lance tables: CREATE EXTERNAL TABLE … STORED AS LANCE)"
        ),
    }
}

/// Runs `CREATE INDEX` on a Lance table (the index is built now) and returns an empty plan.
pub async fn create_index(ctx: &SessionContext, create: &ast::CreateIndex) -> Result<LogicalPlan> {
    let table_name = object_name_to_table_reference(create.table_name.clone(), false)?;
    let table = lance_table(ctx, table_name.clone(), "CREATE INDEX").await?;
    if create.unique {
        return plan_err!("CREATE INDEX: a vector index cannot be UNIQUE");
    }
    if create.predicate.is_some() || !create.include.is_empty() {
        return plan_err!("CREATE INDEX: a vector index takes no WHERE or INCLUDE");
    }
    let [column] = &create.columns[..] else {
        return plan_err!("CREATE INDEX: a vector index is on one column");
    };
    let column = match &column.column.expr {
        ast::Expr::Identifier(id) => id.value.clone(),
        other => return plan_err!("CREATE INDEX: expected a column name, got {other}"),
    };
    let using = create.using.as_ref().map(|u| match u {
        ast::IndexType::Custom(id) => id.value.clone(),
        other => other.to_string(),
    });
    let spec = IndexSpec::parse(using.as_deref(), &with_pairs(&create.with)?)?;
    let schema = table.schema();
    let Ok(field) = schema.field_with_name(&column) else {
        return plan_err!("CREATE INDEX: table '{table_name}' has no column '{column}'");
    };
    let dim = match field.data_type() {
        DataType::FixedSizeList(item, n)
            if matches!(
                item.data_type(),
                DataType::Float16 | DataType::Float32 | DataType::Float64 | DataType::UInt8
            ) =>
        {
            *n as usize
        }
        other => {
            return plan_err!(
                "CREATE INDEX: column '{column}' is {other}; a vector index needs fixed-length vectors (FixedSizeList<Float32>)"
            );
        }
    };
    let params = spec.params(dim)?;
    let mut dataset = open_dataset(table.location())
        .await
        .map_err(|e| lance_error(table.location(), e))?;
    let name = create.name.as_ref().map(|n| n.to_string());
    if let Some(name) = &name
        && !spec.replace
        && dataset
            .load_indices()
            .await
            .map_err(|e| lance_error(table.location(), e))?
            .iter()
            .any(|i| &i.name == name)
    {
        if create.if_not_exists {
            return Ok(empty_plan());
        }
        return plan_err!(
            "CREATE INDEX: table '{table_name}' has an index named '{name}' already (WITH (replace = true) rebuilds it)"
        );
    }
    dataset
        .create_index(
            &[column.as_str()],
            spec.kind.lance_type(),
            name,
            &params,
            true,
        )
        .await
        .map_err(|e| lance_error(table.location(), e))?;
    Ok(empty_plan())
}

/// Runs `DROP INDEX name [ON t]`: without `ON`, the index is looked for in every Lance table
/// of the session and must be in exactly one.
pub async fn drop_index(
    ctx: &SessionContext,
    names: &[ast::ObjectName],
    table: Option<&ast::ObjectName>,
    if_exists: bool,
) -> Result<LogicalPlan> {
    for name in names {
        let name = name.to_string();
        let holders: Vec<(String, String)> = match table {
            Some(t) => {
                let reference = object_name_to_table_reference(t.clone(), false)?;
                let table = lance_table(ctx, reference.clone(), "DROP INDEX").await?;
                vec![(reference.to_string(), table.location().to_string())]
            }
            None => indexes_of_session(&ctx.state())
                .await?
                .into_iter()
                .filter(|i| i.name == name)
                .map(|i| (i.table, i.location))
                .collect(),
        };
        let (table_name, location) = match &holders[..] {
            [one] => one.clone(),
            [] if if_exists => continue,
            [] => return plan_err!("DROP INDEX: no vector index named '{name}'"),
            many => {
                let tables: Vec<&str> = many.iter().map(|(t, _)| t.as_str()).collect();
                return plan_err!(
                    "DROP INDEX: '{name}' is an index of several tables ({}); say which: DROP INDEX {name} ON <table>",
                    tables.join(", ")
                );
            }
        };
        let mut dataset = open_dataset(&location)
            .await
            .map_err(|e| lance_error(&location, e))?;
        match dataset.drop_index(&name).await {
            Ok(()) => {}
            Err(lance::Error::IndexNotFound { .. }) if if_exists => {}
            Err(lance::Error::IndexNotFound { .. }) => {
                return plan_err!("DROP INDEX: table '{table_name}' has no index named '{name}'");
            }
            Err(e) => return Err(lance_error(&location, e)),
        }
    }
    Ok(empty_plan())
}

fn empty_plan() -> LogicalPlan {
    LogicalPlan::EmptyRelation(datafusion::logical_expr::EmptyRelation {
        produce_one_row: false,
        schema: Arc::new(datafusion::common::DFSchema::empty()),
    })
}

/// One vector index of a Lance table.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexInfo {
    /// The table, as the session names it.
    pub table: String,
    /// The dataset's location.
    pub location: String,
    /// The index name.
    pub name: String,
    /// The indexed column.
    pub column: String,
    /// Lance's name of the index type (`IVF_PQ`, `IVF_HNSW_SQ`, …).
    pub index_type: String,
    /// The distance it was built for (`cosine`, `l2`, `dot`), when Lance records it.
    pub metric: Option<DistanceType>,
    /// Rows covered by the index (rows added since are searched exactly).
    pub rows_indexed: u64,
    /// Rows in the dataset.
    pub rows: u64,
    /// The index's segments (a search names them: Lance would otherwise search the first
    /// index of the column, whatever its metric).
    pub segments: Vec<uuid::Uuid>,
}

/// The vector indexes of one dataset.
pub async fn indexes_of(table: &str, dataset: &Dataset) -> Result<Vec<IndexInfo>> {
    // a version's indexes do not change: found once per version of a dataset (by URI and
    // version, with the stamp of that version's manifest)
    static FOUND: Kept<(String, u64), Vec<IndexInfo>> = Kept::new();
    let key = (dataset.uri().to_string(), dataset.version().version);
    let stamp = super::manifest_stamp(dataset);
    if let Some(stamp) = stamp
        && let Some((infos, was)) = FOUND.get(&key)
        && was == stamp
    {
        return Ok(named(infos, table));
    }
    let infos = describe(dataset).await?;
    if let Some(stamp) = stamp {
        FOUND.put(key, infos.clone(), stamp);
    }
    Ok(named(infos, table))
}

fn named(mut infos: Vec<IndexInfo>, table: &str) -> Vec<IndexInfo> {
    for info in &mut infos {
        info.table = table.to_string();
    }
    infos
}

/// The vector indexes of a dataset version, as Lance describes them (no table name yet).
async fn describe(dataset: &Dataset) -> Result<Vec<IndexInfo>> {
    let location = dataset.uri().to_string();
    let descriptions = dataset
        .describe_indices(None)
        .await
        .map_err(|e| lance_error(&location, e))?;
    let rows = dataset
        .count_rows(None)
        .await
        .map_err(|e| lance_error(&location, e))? as u64;
    let mut out = Vec::new();
    for d in descriptions {
        let details = d.details().unwrap_or_default();
        let metric = serde_json::from_str::<serde_json::Value>(&details)
            .ok()
            .and_then(|v| v.get("metric_type")?.as_str().map(str::to_string))
            .and_then(|m| match m.as_str() {
                "COSINE" => Some(DistanceType::Cosine),
                "L2" => Some(DistanceType::L2),
                "DOT" => Some(DistanceType::Dot),
                _ => None,
            });
        let column = d
            .field_ids()
            .first()
            .and_then(|id| dataset.schema().field_by_id(*id as i32))
            .map(|f| f.name.clone())
            .unwrap_or_default();
        out.push(IndexInfo {
            table: String::new(),
            location: location.clone(),
            name: d.name().to_string(),
            column,
            index_type: d.index_type().to_string(),
            metric,
            rows_indexed: d.rows_indexed(),
            rows,
            segments: d.metadata().iter().map(|m| m.uuid).collect(),
        });
    }
    Ok(out)
}

/// The vector indexes of every Lance table registered in the session.
pub async fn indexes_of_session(state: &SessionState) -> Result<Vec<IndexInfo>> {
    let mut out = Vec::new();
    let catalogs = state.catalog_list();
    for catalog_name in catalogs.catalog_names() {
        let Some(catalog) = catalogs.catalog(&catalog_name) else {
            continue;
        };
        for schema_name in catalog.schema_names() {
            let Some(schema) = catalog.schema(&schema_name) else {
                continue;
            };
            for table_name in schema.table_names() {
                let Ok(Some(provider)) = schema.table(&table_name).await else {
                    continue;
                };
                if let Some(table) = provider.downcast_ref::<LanceTable>() {
                    let dataset = table.dataset().await?;
                    let shown = if schema_name == state.config().options().catalog.default_schema {
                        table_name.clone()
                    } else {
                        format!("{schema_name}.{table_name}")
                    };
                    out.extend(indexes_of(&shown, &dataset).await?);
                }
            }
        }
    }
    Ok(out)
}

/// The distance a metric name means (`cosine`, `l2` or `euclidean`, `dot` or
/// `inner_product`, in any case).
pub fn parse_metric(name: &str) -> Option<DistanceType> {
    match name.to_ascii_lowercase().as_str() {
        "cosine" => Some(DistanceType::Cosine),
        "l2" | "euclidean" => Some(DistanceType::L2),
        "dot" | "inner_product" => Some(DistanceType::Dot),
        _ => None,
    }
}

/// The name of a distance as `CREATE INDEX … WITH (metric = …)` takes it.
pub fn metric_name(metric: DistanceType) -> &'static str {
    match metric {
        DistanceType::Cosine => "cosine",
        DistanceType::L2 => "l2",
        DistanceType::Dot => "dot",
        DistanceType::Hamming => "hamming",
    }
}

/// `vector_indexes()`: a table of the session's vector indexes (table, name, column, type,
/// metric, rows indexed, rows).
#[derive(Debug, Default)]
pub struct VectorIndexesFunction;

impl TableFunctionImpl for VectorIndexesFunction {
    fn call(&self, args: &[Expr]) -> Result<Arc<dyn TableProvider>> {
        if !args.is_empty() {
            return plan_err!("vector_indexes() takes no arguments");
        }
        Ok(Arc::new(VectorIndexesTable))
    }
}

#[derive(Debug)]
struct VectorIndexesTable;

fn indexes_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("table_name", DataType::Utf8, false),
        Field::new("index_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("index_type", DataType::Utf8, false),
        Field::new("metric", DataType::Utf8, true),
        Field::new("rows_indexed", DataType::UInt64, false),
        Field::new("rows", DataType::UInt64, false),
        Field::new("location", DataType::Utf8, false),
    ]))
}

#[async_trait]
impl TableProvider for VectorIndexesTable {
    fn schema(&self) -> SchemaRef {
        indexes_schema()
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
        let Some(state) = state.as_any().downcast_ref::<SessionState>() else {
            return plan_err!("vector_indexes() needs a vcfq session");
        };
        let infos = indexes_of_session(state).await?;
        let text = |f: &dyn Fn(&IndexInfo) -> String| -> ArrayRef {
            Arc::new(StringArray::from_iter_values(infos.iter().map(f)))
        };
        let columns: Vec<ArrayRef> = vec![
            text(&|i| i.table.clone()),
            text(&|i| i.name.clone()),
            text(&|i| i.column.clone()),
            text(&|i| i.index_type.clone()),
            Arc::new(StringArray::from_iter(
                infos.iter().map(|i| i.metric.map(metric_name)),
            )),
            Arc::new(UInt64Array::from_iter_values(
                infos.iter().map(|i| i.rows_indexed),
            )),
            Arc::new(UInt64Array::from_iter_values(infos.iter().map(|i| i.rows))),
            text(&|i| i.location.clone()),
        ];
        let batch = RecordBatch::try_new(indexes_schema(), columns)?;
        MemTable::try_new(indexes_schema(), vec![vec![batch]])?
            .scan(state, projection, filters, limit)
            .await
    }
}

impl fmt::Display for IndexInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} ({}) {}, {} of {} rows indexed",
            self.name,
            self.index_type,
            self.column,
            self.metric.map(metric_name).unwrap_or("?"),
            self.rows_indexed,
            self.rows
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn settings_are_read_and_checked() {
        let s = IndexSpec::parse(
            Some("ivf_hnsw_sq"),
            &pairs(&[("metric", "L2"), ("m", "16"), ("num_partitions", "8")]),
        )
        .unwrap();
        assert_eq!(s.kind, IndexKind::IvfHnswSq);
        assert_eq!(s.metric, DistanceType::L2);
        assert_eq!((s.m, s.num_partitions), (Some(16), Some(8)));
        let d = IndexSpec::parse(None, &[]).unwrap();
        assert_eq!((d.kind, d.metric), (IndexKind::IvfPq, DistanceType::Cosine));
        for (using, with, message) in [
            (Some("btree"), vec![], "unknown index type 'BTREE'"),
            (None, vec![("metric", "manhattan")], "metric must be"),
            (None, vec![("num_partitions", "0")], "positive whole number"),
            (None, vec![("nprobes", "4")], "unknown setting 'nprobes'"),
            (None, vec![("m", "4")], "settings of HNSW indexes"),
            (
                Some("IVF_FLAT"),
                vec![("num_sub_vectors", "4")],
                "setting of PQ",
            ),
        ] {
            let e = IndexSpec::parse(using, &pairs(&with))
                .unwrap_err()
                .to_string();
            assert!(e.contains(message), "{e}");
        }
    }

    #[test]
    fn sub_vectors_default_to_a_divisor_of_the_length() {
        let spec = IndexSpec::parse(None, &[]).unwrap();
        for (dim, sub) in [(384, 24), (42, 2), (8, 1), (100, 5)] {
            let p = spec.params(dim).unwrap();
            let n = p
                .stages
                .iter()
                .find_map(|s| match s {
                    lance::index::vector::StageParams::PQ(pq) => Some(pq.num_sub_vectors),
                    _ => None,
                })
                .unwrap();
            assert_eq!(n, sub, "dim {dim}");
        }
        let bad = IndexSpec::parse(None, &pairs(&[("num_sub_vectors", "7")])).unwrap();
        assert!(bad.params(384).is_err());
    }
}
