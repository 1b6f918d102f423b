//! `vector_search(table, column, query, k [, filter, nprobes, refine_factor, metric])`: the k
//! rows of a Lance table nearest to `query` (a vector constant, or a scalar subquery giving
//! one), with their distance as `_distance`, nearest first. Arguments after `k` may be
//! named: `vector_search('t', 'emb', (SELECT emb FROM t WHERE id = 'rs1'), 10,
//! filter => 'chrom = ''22''', nprobes => 40)`.
//!
//! `filter` is applied before the search (k rows come back whenever k rows match); a `WHERE`
//! on the result filters the k rows found. `metric` (`cosine`, `l2`, `dot`) defaults to that
//! of the column's index, else cosine. The column's index is used when it was built for the
//! metric and `vector.use_index` is on; otherwise the search is exact. `_distance` is the
//! value of `cosine_distance` / `l2_distance` / `inner_product` (nearest = largest for
//! `dot`), computed on the rows found.

use std::ops::ControlFlow;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::FixedSizeListArray;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{DFSchema, DataFusionError, ScalarValue, TableReference, plan_err};
use datafusion::error::Result;
use datafusion::execution::SessionState;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{Expr, TableType, col, lit};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{LexOrdering, PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::{ExecutionPlan, collect};
use datafusion::sql::sqlparser::ast;
use futures::FutureExt;
use lance_linalg::distance::DistanceType;

use super::DatasetVersion;
use super::index::{indexes_of, parse_metric};
use super::knn::{KnnExec, SearchSettings, constant_vector, function_of, vector_of};
use super::table::LanceTable;
use crate::config::VectorConfig;

/// The parameters of `vector_search`, in their positional order.
const PARAMETERS: [&str; 8] = [
    "table",
    "column",
    "query",
    "k",
    "filter",
    "nprobes",
    "refine_factor",
    "metric",
];

/// The column of the distance in `vector_search`'s result.
pub const DISTANCE_COLUMN: &str = "_distance";

/// Rewrites named arguments of `vector_search(…)` in a statement into positions (missing ones
/// NULL), as DataFusion passes table functions positional arguments only.
pub fn positional_arguments(statement: &mut ast::Statement) -> Result<()> {
    struct Positional(Option<DataFusionError>);
    impl ast::VisitorMut for Positional {
        type Break = ();
        fn pre_visit_table_factor(
            &mut self,
            factor: &mut ast::TableFactor,
        ) -> ControlFlow<Self::Break> {
            if let ast::TableFactor::Table {
                name,
                args: Some(args),
                ..
            } = factor
                && name
                    .0
                    .last()
                    .and_then(|p| p.as_ident())
                    .is_some_and(|i| i.value.eq_ignore_ascii_case("vector_search"))
                && let Err(e) = reorder(&mut args.args)
            {
                self.0 = Some(e);
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }
    }
    let mut visitor = Positional(None);
    let _ = ast::VisitMut::visit(statement, &mut visitor);
    visitor.0.map_or(Ok(()), Err)
}

fn reorder(args: &mut Vec<ast::FunctionArg>) -> Result<()> {
    if !args
        .iter()
        .any(|a| matches!(a, ast::FunctionArg::Named { .. }))
    {
        return Ok(());
    }
    let mut slots: Vec<Option<ast::FunctionArg>> = vec![None; PARAMETERS.len()];
    let mut next = 0;
    for arg in args.drain(..) {
        let (slot, arg) = match arg {
            ast::FunctionArg::Named { name, arg, .. } => {
                let Some(slot) = PARAMETERS
                    .iter()
                    .position(|p| p.eq_ignore_ascii_case(&name.value))
                else {
                    return plan_err!(
                        "vector_search: unknown argument '{}' (arguments: {})",
                        name.value,
                        PARAMETERS.join(", ")
                    );
                };
                (slot, ast::FunctionArg::Unnamed(arg))
            }
            unnamed => {
                if slots.iter().skip(next).any(Option::is_some) || next >= PARAMETERS.len() {
                    return plan_err!("vector_search: a positional argument after named ones");
                }
                next += 1;
                (next - 1, unnamed)
            }
        };
        if slots[slot].is_some() {
            return plan_err!("vector_search: '{}' given twice", PARAMETERS[slot]);
        }
        slots[slot] = Some(arg);
    }
    let last = slots.iter().rposition(Option::is_some).unwrap_or(0);
    args.extend(slots.into_iter().take(last + 1).map(|a| {
        a.unwrap_or_else(|| {
            ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(ast::Expr::value(
                ast::Value::Null,
            )))
        })
    }));
    Ok(())
}

/// The `vector_search` table function.
#[derive(Debug, Default)]
pub struct VectorSearchFunction;

fn text_arg(args: &[Expr], i: usize) -> Result<Option<String>> {
    match args.get(i) {
        None | Some(Expr::Literal(ScalarValue::Null, _)) => Ok(None),
        Some(Expr::Literal(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::Utf8View(Some(s))
            | ScalarValue::LargeUtf8(Some(s)),
            _,
        )) => Ok(Some(s.clone())),
        Some(other) => plan_err!(
            "vector_search: {} must be a string, got {other}",
            PARAMETERS[i]
        ),
    }
}

fn count_arg(args: &[Expr], i: usize) -> Result<Option<usize>> {
    match args.get(i) {
        None | Some(Expr::Literal(ScalarValue::Null, _)) => Ok(None),
        Some(Expr::Literal(v, _)) => match v.clone().cast_to(&DataType::UInt64) {
            Ok(ScalarValue::UInt64(Some(n))) if n > 0 => Ok(Some(n as usize)),
            _ => plan_err!(
                "vector_search: {} must be a positive whole number, got {v}",
                PARAMETERS[i]
            ),
        },
        Some(other) => plan_err!(
            "vector_search: {} must be a positive whole number, got {other}",
            PARAMETERS[i]
        ),
    }
}

impl TableFunctionImpl for VectorSearchFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        if exprs.len() < 4 || exprs.len() > PARAMETERS.len() {
            return plan_err!(
                "vector_search takes (table, column, query, k [, filter, nprobes, refine_factor, metric]), got {} arguments",
                exprs.len()
            );
        }
        let Some(state) = args.session().as_any().downcast_ref::<SessionState>() else {
            return plan_err!("vector_search needs a vcfq session");
        };
        let Some(table_name) = text_arg(exprs, 0)? else {
            return plan_err!("vector_search: the table name is NULL");
        };
        let Some(column) = text_arg(exprs, 1)? else {
            return plan_err!("vector_search: the column name is NULL");
        };
        let Some(k) = count_arg(exprs, 3)? else {
            return plan_err!("vector_search: k is NULL");
        };
        let reference = TableReference::from(table_name.as_str());
        let provider = state
            .schema_for_ref(reference.clone())?
            .table(reference.table())
            .now_or_never()
            .transpose()?
            .flatten();
        let Some(provider) = provider else {
            return plan_err!("vector_search: no table named '{table_name}'");
        };
        let Some(table) = provider.downcast_ref::<LanceTable>() else {
            return plan_err!(
                "vector_search: '{table_name}' is not a Lance table (CREATE EXTERNAL TABLE … STORED AS LANCE)"
            );
        };
        let table_schema = table.schema();
        let Ok(field) = table_schema.field_with_name(&column) else {
            return plan_err!("vector_search: table '{table_name}' has no column '{column}'");
        };
        let &DataType::FixedSizeList(ref item, dim) = field.data_type() else {
            return plan_err!(
                "vector_search: column '{column}' is {}, not a vector (FixedSizeList)",
                field.data_type()
            );
        };
        let metric = match text_arg(exprs, 7)? {
            None => None,
            Some(m) => match parse_metric(&m) {
                Some(metric) => Some(metric),
                None => {
                    return plan_err!(
                        "vector_search: metric must be 'cosine', 'l2' or 'dot', not '{}'",
                        m.to_ascii_lowercase()
                    );
                }
            },
        };
        let refine_factor = count_arg(exprs, 6)?
            .map(|n| {
                u32::try_from(n).map_err(|_| {
                    DataFusionError::Plan("vector_search: refine_factor is too large".into())
                })
            })
            .transpose()?;
        let query = exprs[2].clone();
        if let Expr::Literal(ScalarValue::Null, _) = query {
            return plan_err!("vector_search: the query vector is NULL");
        }
        let mut fields: Vec<Field> = table_schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        // the distance functions' type for two vectors of the column's (they share it)
        let Some(distance) = state.scalar_functions().get("l2_distance") else {
            return plan_err!("vector_search: no function l2_distance");
        };
        let vector_type = field.data_type().clone();
        let distance_type = distance.return_type(&[vector_type.clone(), vector_type])?;
        fields.push(Field::new(DISTANCE_COLUMN, distance_type, true));
        Ok(Arc::new(VectorSearchTable {
            table: table.clone(),
            column,
            item: item.data_type().clone(),
            dim: dim as usize,
            query,
            k,
            filter: text_arg(exprs, 4)?,
            nprobes: count_arg(exprs, 5)?,
            refine_factor,
            metric,
            schema: Arc::new(Schema::new(fields)),
        }))
    }
}

/// One call of `vector_search`, run at scan time (the query vector may need a subquery run).
#[derive(Debug)]
struct VectorSearchTable {
    table: LanceTable,
    column: String,
    item: DataType,
    dim: usize,
    query: Expr,
    k: usize,
    filter: Option<String>,
    nprobes: Option<usize>,
    refine_factor: Option<u32>,
    metric: Option<DistanceType>,
    schema: SchemaRef,
}

impl VectorSearchTable {
    /// The query vector: a constant, or the one value of a scalar subquery.
    async fn query_vector(
        &self,
        state: &SessionState,
    ) -> Result<datafusion::arrow::array::Float32Array> {
        let vector = match &self.query {
            Expr::ScalarSubquery(sub) => {
                let plan = state.create_physical_plan(&sub.subquery).await?;
                let batches = collect(plan, state.task_ctx()).await?;
                let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
                if rows != 1 {
                    return plan_err!(
                        "vector_search: the query subquery gave {rows} rows, not one vector"
                    );
                }
                let batch = batches.iter().find(|b| b.num_rows() == 1).expect("one row");
                if batch.num_columns() != 1 {
                    return plan_err!("vector_search: the query subquery must give one column");
                }
                vector_of(batch.column(0))?
            }
            other => {
                let expr = state.create_physical_expr(other.clone(), &DFSchema::empty())?;
                constant_vector(&expr)?
            }
        };
        let Some(vector) = vector else {
            return plan_err!("vector_search: the query vector is NULL");
        };
        if vector.len() != self.dim {
            return plan_err!(
                "vector_search: the query vector has {} values, column '{}' has vectors of {}",
                vector.len(),
                self.column,
                self.dim
            );
        }
        Ok(vector)
    }
}

#[async_trait]
impl TableProvider for VectorSearchTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let Some(state) = state.as_any().downcast_ref::<SessionState>() else {
            return plan_err!("vector_search needs a vcfq session");
        };
        let query = self.query_vector(state).await?;
        let dataset = self.table.dataset().await?;
        let table_schema = self.table.schema();
        let table_df = DFSchema::try_from(table_schema.as_ref().clone())?;
        let filters = match &self.filter {
            Some(sql) => vec![state.create_logical_expr(sql, &table_df)?],
            None => Vec::new(),
        };
        let indexes = indexes_of(self.table.location(), &dataset).await?;
        let metric = self
            .metric
            .or_else(|| indexes.iter().find(|i| i.column == self.column)?.metric)
            .unwrap_or(DistanceType::Cosine);
        let config = state
            .config()
            .options()
            .extensions
            .get::<VectorConfig>()
            .cloned()
            .unwrap_or_default();
        let search = SearchSettings::new(
            &self.column,
            metric,
            self.k,
            &indexes,
            &config,
            self.nprobes,
            self.refine_factor,
        );
        let knn: Arc<dyn ExecutionPlan> = Arc::new(KnnExec::new(
            self.table.location().to_string(),
            DatasetVersion::Opened(dataset),
            table_schema
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect(),
            filters,
            query.clone(),
            search,
            Arc::clone(&table_schema),
        ));
        // _distance: the distance function's own value on the rows found
        let Some((function, ascending)) = function_of(metric) else {
            return plan_err!("vector_search: no distance function for {metric:?}");
        };
        let Some(udf) = state.scalar_functions().get(function) else {
            return plan_err!("vector_search: no function {function}");
        };
        let values = cast(&query, &self.item)?;
        let item = Arc::new(Field::new_list_field(self.item.clone(), true));
        let list = FixedSizeListArray::try_new(item, self.dim as i32, values, None)?;
        let call = Expr::ScalarFunction(ScalarFunction::new_udf(
            Arc::clone(udf),
            vec![
                col(&self.column),
                lit(ScalarValue::FixedSizeList(Arc::new(list))),
            ],
        ));
        let distance = state.create_physical_expr(call, &table_df)?;
        let all: Vec<usize> = (0..table_schema.fields().len()).collect();
        let mut exprs = column_exprs(&table_schema, &all);
        exprs.push((distance, DISTANCE_COLUMN.to_string()));
        let with_distance: Arc<dyn ExecutionPlan> = Arc::new(ProjectionExec::try_new(exprs, knn)?);
        let distance_column = Arc::new(Column::new(DISTANCE_COLUMN, table_schema.fields().len()));
        let order = PhysicalSortExpr::new(
            distance_column,
            datafusion::arrow::compute::SortOptions {
                descending: !ascending,
                nulls_first: false,
            },
        );
        let sorted: Arc<dyn ExecutionPlan> = Arc::new(
            SortExec::new(
                LexOrdering::new(vec![order]).expect("one key"),
                with_distance,
            )
            .with_fetch(Some(self.k)),
        );
        match projection {
            None => Ok(sorted),
            Some(p) => {
                let exprs = column_exprs(&sorted.schema(), p);
                Ok(Arc::new(ProjectionExec::try_new(exprs, sorted)?))
            }
        }
    }
}

/// References to the columns `indices` of `schema`, under their names (projection items).
fn column_exprs(schema: &Schema, indices: &[usize]) -> Vec<(Arc<dyn PhysicalExpr>, String)> {
    indices
        .iter()
        .map(|&i| {
            let name = schema.field(i).name();
            (
                Arc::new(Column::new(name, i)) as Arc<dyn PhysicalExpr>,
                name.clone(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn rewritten(sql: &str) -> Result<String> {
        let mut s = Parser::parse_sql(&GenericDialect {}, sql)
            .unwrap()
            .remove(0);
        positional_arguments(&mut s)?;
        Ok(s.to_string())
    }

    #[test]
    fn named_arguments_become_positions() {
        assert_eq!(
            rewritten("SELECT * FROM vector_search('t', 'e', [1, 2], 5, nprobes => 4)").unwrap(),
            "SELECT * FROM vector_search('t', 'e', [1, 2], 5, NULL, 4)"
        );
        assert_eq!(
            rewritten("SELECT * FROM vector_search(k => 3, query => [1], column => 'e', table => 't', metric => 'l2')").unwrap(),
            "SELECT * FROM vector_search('t', 'e', [1], 3, NULL, NULL, NULL, 'l2')"
        );
        // positional only, and other functions, are left as they are
        assert_eq!(
            rewritten("SELECT * FROM vector_search('t', 'e', [1], 3)").unwrap(),
            "SELECT * FROM vector_search('t', 'e', [1], 3)"
        );
        assert!(
            rewritten("SELECT * FROM vector_search('t', 'e', [1], 3, nprobe => 2)")
                .unwrap_err()
                .to_string()
                .contains("unknown argument 'nprobe'")
        );
        assert!(
            rewritten("SELECT * FROM vector_search('t', 'e', [1], 3, k => 2)")
                .unwrap_err()
                .to_string()
                .contains("'k' given twice")
        );
    }
}
