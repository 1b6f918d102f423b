//! The one place a vcfq session is put together: VCF formats and table functions, file paths
//! as tables, UDFs and `vcf.*` settings. The CLI, the shell and the server all start here.

use std::sync::Arc;

use datafusion::catalog::{
    DynamicFileCatalog, MemorySchemaProvider, SchemaProvider, UrlTableFactory,
};
use datafusion::common::plan_err;
use datafusion::datasource::dynamic_file::DynamicListTableFactory;
use datafusion::error::Result;
use datafusion::execution::SessionState;
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::{SessionStateBuilder, SessionStateDefaults};
use datafusion::logical_expr::planner::ExprPlanner;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};
use datafusion::sql::parser::{CopyToSource, CopyToStatement, Statement as DFStatement};
use datafusion::sql::planner::object_name_to_table_reference;
use datafusion::sql::sqlparser::ast;
use datafusion_session::SessionStore;

use crate::access::Guard;
use crate::access::guard::{GuardedUrlTableFactory, PathFunction};
use crate::config::{VcfConfig, VectorConfig};
use crate::coordinator::{CoordinatedTableFactory, StreamHealthTable};
use crate::lance::index::VectorIndexesFunction;
use crate::lance::rewrite::VectorSearchRewrite;
use crate::lance::search::VectorSearchFunction;
use crate::lance::{LanceTableFactory, LanceUrlTableFactory};
use crate::stream::factory::TopicTableFactory;
use crate::stream::options::PlatformKind;
use crate::vcf::catalog::{VcfTableFactory, VcfUrlTableFactory};
use crate::vcf::functions::{ReadVcf, VcfHeaderFunction};
use crate::vcf::parquet::BoundParquetRowGroups;
use crate::vcf::prune::{PruneGenotypeFields, PruneInfoFields};
use crate::vcf::unordered::ParallelAggregateScans;
use vcfq_udfs::literal::NumberArrayLiterals;

/// Builds [`SessionContext`]s with everything vcfq adds to DataFusion.
///
/// ```no_run
/// # async fn demo() -> datafusion::error::Result<()> {
/// let ctx = vcfq::SessionBuilder::new().build()?;
/// let df = ctx.sql("SELECT chrom, count(*) FROM 'calls.vcf.gz' GROUP BY chrom").await?;
/// df.show().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SessionBuilder {
    config: SessionConfig,
    runtime: Option<Arc<RuntimeEnv>>,
    /// Plans statements instead of DataFusion's planner (a cluster's, [`crate::cluster`]).
    planner: Option<Arc<dyn QueryPlanner + Send + Sync>>,
}

impl Default for SessionBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl SessionBuilder {
    /// The default configuration: `vcf.*` settings, information_schema, and case-preserving
    /// identifiers (so `info.AF` and `GT` are written as in the VCF header).
    pub fn new() -> Self {
        let mut config = SessionConfig::new()
            .with_information_schema(true)
            .with_option_extension(VcfConfig::default())
            .with_option_extension(VectorConfig::default());
        config.options_mut().sql_parser.enable_ident_normalization = false;
        // VCF scans read in parallel but return records in file order; round-robin
        // repartitioning after them would shuffle the rows of plain SELECTs
        config
            .options_mut()
            .optimizer
            .enable_round_robin_repartition = false;
        SessionBuilder {
            config,
            runtime: None,
            planner: None,
        }
    }

    /// Replaces the DataFusion configuration (the `vcf` and `vector` extensions are added
    /// when missing).
    pub fn with_config(mut self, mut config: SessionConfig) -> Self {
        if config.options().extensions.get::<VcfConfig>().is_none() {
            config = config.with_option_extension(VcfConfig::default());
        }
        if config.options().extensions.get::<VectorConfig>().is_none() {
            config = config.with_option_extension(VectorConfig::default());
        }
        self.config = config;
        self
    }

    /// Sets a setting as `SET key = value` would (`vcf.on_error`, `datafusion.execution.…`);
    /// an unknown key or a bad value is an error.
    pub fn with_setting(mut self, key: &str, value: &str) -> Result<Self> {
        self.config.options_mut().set(key, value)?;
        Ok(self)
    }

    /// The configuration the sessions get.
    pub fn config(&self) -> SessionConfig {
        self.config.clone()
    }

    /// Shares a runtime (memory pool, disk manager) with other sessions, as the server does.
    pub fn with_runtime(mut self, runtime: Arc<RuntimeEnv>) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// Plans the sessions' statements with `planner` (which sends them elsewhere, as
    /// [`crate::cluster::attach`] makes sessions do) instead of DataFusion's planner.
    pub fn with_query_planner(mut self, planner: Arc<dyn QueryPlanner + Send + Sync>) -> Self {
        self.planner = Some(planner);
        self
    }

    /// A new session.
    pub fn build(self) -> Result<SessionContext> {
        let mut builder = SessionStateBuilder::new();
        if let Some(runtime) = self.runtime {
            builder = builder.with_runtime_env(runtime);
        }
        if let Some(planner) = self.planner {
            builder = builder.with_query_planner(planner);
        }
        builder = builder
            .with_config(self.config)
            .with_default_features()
            // array literals of numbers (query vectors) as one constant, before DataFusion's
            // planners (which would plan make_array with one argument per number)
            .with_expr_planners(
                std::iter::once(Arc::new(NumberArrayLiterals) as Arc<dyn ExprPlanner>)
                    .chain(SessionStateDefaults::default_expr_planners())
                    .collect(),
            )
            .with_optimizer_rule(Arc::new(PruneInfoFields))
            .with_optimizer_rule(Arc::new(PruneGenotypeFields))
            .with_physical_optimizer_rule(Arc::new(BoundParquetRowGroups))
            .with_physical_optimizer_rule(Arc::new(ParallelAggregateScans))
            .with_physical_optimizer_rule(Arc::new(VectorSearchRewrite));
        if crate::telemetry::operator_spans() {
            // last, so that every rule before it sees the plain plan
            builder = builder.with_physical_optimizer_rule(crate::telemetry::operator_spans_rule());
        }
        let mut state = builder.build();
        state
            .table_factories_mut()
            .insert("VCF".to_string(), Arc::new(VcfTableFactory));
        state
            .table_factories_mut()
            .insert("BCF".to_string(), Arc::new(VcfTableFactory));
        state.table_factories_mut().insert(
            "KAFKA".to_string(),
            Arc::new(TopicTableFactory(PlatformKind::Kafka)),
        );
        state.table_factories_mut().insert(
            "IGGY".to_string(),
            Arc::new(TopicTableFactory(PlatformKind::Iggy)),
        );
        state
            .table_factories_mut()
            .insert("STREAM".to_string(), Arc::new(CoordinatedTableFactory));
        state
            .table_factories_mut()
            .insert("LANCE".to_string(), Arc::new(LanceTableFactory));
        let ctx = SessionContext::new_with_state(state);
        // vcfq.stream_health: the coordinated tables' platforms, process-wide
        let vcfq_schema = Arc::new(MemorySchemaProvider::new());
        vcfq_schema.register_table("stream_health".to_string(), Arc::new(StreamHealthTable))?;
        if let Some(catalog) = ctx.catalog(&ctx.state().config().options().catalog.default_catalog)
        {
            catalog.register_schema("vcfq", vcfq_schema)?;
        }
        // functions that open a path check it against the session's guard first (a no-op in
        // sessions without one)
        ctx.register_udtf(
            "read_vcf",
            Arc::new(PathFunction::new(Arc::new(ReadVcf::wide()))),
        );
        ctx.register_udtf(
            "vcf_genotypes",
            Arc::new(PathFunction::new(Arc::new(ReadVcf::long()))),
        );
        ctx.register_udtf(
            "vcf_header",
            Arc::new(PathFunction::new(Arc::new(VcfHeaderFunction))),
        );
        ctx.register_udtf("vector_search", Arc::new(VectorSearchFunction));
        ctx.register_udtf("vector_indexes", Arc::new(VectorIndexesFunction));
        vcfq_udfs::register_all(&ctx);

        // file paths as table names: Lance datasets, VCF/BCF, DataFusion's formats otherwise
        let listing = Arc::new(DynamicListTableFactory::new(SessionStore::new()));
        let factory = Arc::new(VcfUrlTableFactory::new(
            Arc::clone(&listing) as Arc<dyn UrlTableFactory>
        ));
        // Lance datasets (directories) before both
        let lance = Arc::new(LanceUrlTableFactory::new(
            Arc::clone(&factory) as Arc<dyn UrlTableFactory>
        ));
        // and before them all, the session's guard (when it has one)
        let guarded = Arc::new(GuardedUrlTableFactory::new(
            lance as Arc<dyn UrlTableFactory>,
        ));
        let catalogs = Arc::new(DynamicFileCatalog::new(
            Arc::clone(ctx.state().catalog_list()),
            Arc::clone(&guarded) as Arc<dyn UrlTableFactory>,
        ));
        let session_id = ctx.session_id();
        let ctx: SessionContext = ctx
            .into_state_builder()
            .with_session_id(session_id)
            .with_catalog_list(catalogs)
            .build()
            .into();
        listing.session_store().with_state(ctx.state_weak_ref());
        factory.session_store().with_state(ctx.state_weak_ref());
        guarded.session_store().with_state(ctx.state_weak_ref());
        Ok(ctx)
    }
}

pub use crate::stream::codec::GENERATED_COLUMN;

/// Plans one SQL statement as [`SessionContext::sql`] does (DDL runs at once), except that
/// `INSERT INTO t SELECT …` without a column list targets only the columns `t` does not
/// generate itself, so `INSERT INTO topic SELECT * FROM 'calls.vcf.gz'` works; and with
/// vcfq's own statements: `CREATE INDEX` / `DROP INDEX` on Lance tables (run at once, as DDL),
/// `COPY … STORED AS LANCE`, `COPY … STORED AS VCF|BCF` (and `TO '….vcf[.gz]' | '….bcf'`), and named
/// arguments of `vector_search(…)`.
pub async fn sql(ctx: &SessionContext, sql: &str) -> Result<DataFrame> {
    let plan = logical_plan(ctx, sql).await?;
    ctx.execute_logical_plan(plan).await
}

/// The logical plan of one SQL statement (nothing runs), with the `INSERT` rule of [`sql`].
/// In a session with a [`Guard`], the statement is checked before it is planned and the plan
/// before it is returned: a refusal is an [`crate::access::AccessError`].
pub async fn logical_plan(ctx: &SessionContext, sql: &str) -> Result<LogicalPlan> {
    let state = ctx.state();
    let dialect = state.config().options().sql_parser.dialect;
    let statement = state.sql_to_statement(sql, &dialect)?;
    let guard = Guard::of(state.config());
    if let Some(guard) = &guard {
        guard.check_statement(&statement)?;
    }
    let plan = plan_statement(ctx, &state, statement, sql).await?;
    if let Some(guard) = &guard {
        guard.check_plan(&plan)?;
    }
    Ok(plan)
}

async fn plan_statement(
    ctx: &SessionContext,
    state: &SessionState,
    mut statement: DFStatement,
    sql: &str,
) -> Result<LogicalPlan> {
    match statement {
        DFStatement::CopyTo(copy) if is_own_copy(&copy) => {
            return own_copy(state, copy, sql).await;
        }
        DFStatement::Explain(explain)
            if explain.format.is_none()
                && matches!(explain.statement.as_ref(), DFStatement::CopyTo(c) if is_own_copy(c)) =>
        {
            let (verbose, analyze) = (explain.verbose, explain.analyze);
            let DFStatement::CopyTo(copy) = *explain.statement else {
                return plan_err!("EXPLAIN: not a COPY");
            };
            let plan = own_copy(state, copy, sql).await?;
            return LogicalPlanBuilder::from(plan)
                .explain(verbose, analyze)?
                .build();
        }
        DFStatement::Statement(ref mut inner) => {
            match inner.as_ref() {
                ast::Statement::CreateIndex(create) => {
                    return crate::lance::index::create_index(ctx, create).await;
                }
                ast::Statement::Drop {
                    object_type: ast::ObjectType::Index,
                    names,
                    table,
                    if_exists,
                    ..
                } => {
                    return crate::lance::index::drop_index(ctx, names, table.as_ref(), *if_exists)
                        .await;
                }
                _ => {}
            }
            crate::lance::search::positional_arguments(inner)?;
        }
        _ => {}
    }
    if let DFStatement::Statement(inner) = &mut statement
        && let ast::Statement::Insert(insert) = inner.as_mut()
        && insert.columns.is_empty()
        && let ast::TableObject::TableName(name) = &insert.table
    {
        let reference = object_name_to_table_reference(name.clone(), false)?;
        if let Ok(table) = ctx.table_provider(reference).await {
            let schema = table.schema();
            if schema
                .fields()
                .iter()
                .any(|f| f.metadata().contains_key(GENERATED_COLUMN))
            {
                insert.columns = schema
                    .fields()
                    .iter()
                    .filter(|f| !f.metadata().contains_key(GENERATED_COLUMN))
                    .map(|f| ast::ObjectName::from(vec![ast::Ident::with_quote('"', f.name())]))
                    .collect();
            }
        }
    }
    state.statement_to_plan(statement).await
}

/// Whether vcfq plans a COPY itself: to a Lance dataset, or to VCF/BCF.
fn is_own_copy(copy: &CopyToStatement) -> bool {
    crate::lance::copy::is_lance_copy(copy) || crate::vcf::writer::copy::is_vcf_copy(copy)
}

/// Plans a COPY to a Lance dataset or to VCF/BCF (`sql` is the statement's text, recorded in
/// a written VCF's header).
async fn own_copy(state: &SessionState, copy: CopyToStatement, sql: &str) -> Result<LogicalPlan> {
    let input = copy_input(state, &copy.source).await?;
    if crate::lance::copy::is_lance_copy(&copy) {
        return crate::lance::copy::plan_copy(copy, input).await;
    }
    crate::vcf::writer::copy::plan_copy(state, &copy, input, sql, |f| {
        f.metadata().contains_key(GENERATED_COLUMN)
    })
}

/// The query of a COPY, planned: its `(SELECT …)`, or all of the table it names.
async fn copy_input(state: &SessionState, source: &CopyToSource) -> Result<LogicalPlan> {
    let query = match source {
        CopyToSource::Query(query) => query.clone(),
        CopyToSource::Relation(name) => {
            let sql = format!("SELECT * FROM {name}");
            let dialect = state.config().options().sql_parser.dialect;
            match state.sql_to_statement(&sql, &dialect)? {
                DFStatement::Statement(s) => match *s {
                    ast::Statement::Query(q) => q,
                    _ => return plan_err!("COPY {name}: not a table"),
                },
                _ => return plan_err!("COPY {name}: not a table"),
            }
        }
    };
    state
        .statement_to_plan(DFStatement::Statement(Box::new(ast::Statement::Query(
            query,
        ))))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::execution::FunctionRegistry;

    /// Regression: `build` rebuilds the state from its functions, in a map's order; DataFusion's
    /// `inner_product`, still in the map under its alias `dot_product`, came back under its
    /// name in about half the sessions (Float64 results, no NULL-element check).
    #[test]
    fn vcfq_distance_functions_replace_the_built_ins_in_every_session() {
        for _ in 0..32 {
            let ctx = SessionBuilder::new().build().unwrap();
            for name in [
                "inner_product",
                "dot_product",
                "cosine_distance",
                "l2_distance",
            ] {
                let udf = ctx.udf(name).unwrap();
                let inner: &dyn std::any::Any = udf.inner().as_ref();
                assert!(
                    inner.is::<vcfq_udfs::distance::Distance>(),
                    "{name}: {udf:?}"
                );
            }
        }
    }
}
