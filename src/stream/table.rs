//! A topic as a table, whatever the platform: its columns (declared, those of a `like` file,
//! or VCF site columns, plus the metadata columns), filter pushdown into read positions, the
//! scan ([`super::scan::TopicExec`]) and `INSERT INTO` ([`super::sink::TopicDataSink`]).

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::DFSchema;
use datafusion::datasource::TableType;
use datafusion::datasource::sink::DataSinkExec;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

use super::codec::{Encoder, metadata_fields};
use super::options::{PlatformKind, TopicOptions};
use super::platform::Platform;
use super::scan::TopicExec;
use super::seek::{Seek, apply_filter, seek_from_filters};
use super::sink::TopicDataSink;

/// A topic of some platform as a table.
#[derive(Debug, Clone)]
pub struct TopicTable {
    platform: Arc<dyn Platform>,
    options: TopicOptions,
    /// The columns messages carry.
    variant: SchemaRef,
    /// The variant columns and the metadata columns.
    schema: SchemaRef,
    /// Whether the table has an `_id` column.
    ids: bool,
    /// How CREATE made it, when it did: what another process needs to open it again.
    origin: Option<Arc<TopicOrigin>>,
}

/// What `CREATE EXTERNAL TABLE … STORED AS KAFKA | IGGY` said: a process of a cluster opens
/// the same table from it ([`super::factory::reopen`]). Holds credentials: its `Debug` shows
/// the option names only.
#[derive(Clone, PartialEq, Eq)]
pub struct TopicOrigin {
    /// The platform.
    pub kind: PlatformKind,
    /// `LOCATION` as written.
    pub location: String,
    /// `OPTIONS`, sorted by name.
    pub options: Vec<(String, String)>,
}

impl std::fmt::Debug for TopicOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.options.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("TopicOrigin")
            .field("kind", &self.kind)
            .field("options", &names)
            .finish_non_exhaustive()
    }
}

/// The columns of a variant when neither columns nor `like` say otherwise: VCF site columns.
fn site_schema() -> Schema {
    let list = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
    Schema::new(vec![
        Field::new("chrom", DataType::Utf8, true),
        Field::new("pos", DataType::Int64, true),
        Field::new("id", DataType::Utf8, true),
        Field::new("ref", DataType::Utf8, true),
        Field::new("alt", list.clone(), true),
        Field::new("qual", DataType::Float64, true),
        Field::new("filter", list, true),
    ])
}

/// Every field nullable (messages may leave any value out), metadata of the VCF kept.
fn nullable(schema: &Schema) -> Schema {
    Schema::new_with_metadata(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
        schema.metadata().clone(),
    )
}

impl TopicTable {
    /// Checks the platform answers, makes the topic when it does not exist, and fixes the
    /// columns: `declared` (the column list of CREATE), else those of the `like` file, else
    /// VCF site columns; then the metadata columns.
    pub async fn open(
        platform: Arc<dyn Platform>,
        options: TopicOptions,
        declared: Option<SchemaRef>,
    ) -> Result<Self> {
        let ids = platform.has_message_ids();
        let table = Self::open_with_ids(platform, options, declared, ids)?;
        table.platform.ensure_topic().await?;
        Ok(table)
    }

    /// Like [`TopicTable::open`] without contacting the platform (the caller checks it with
    /// [`Platform::ensure_topic`]); with `ids` the table has an `_id` column on every platform
    /// (where messages carry no id, it is computed from key and value as the writer made it,
    /// [`super::codec::message_id`]).
    pub fn open_with_ids(
        platform: Arc<dyn Platform>,
        options: TopicOptions,
        declared: Option<SchemaRef>,
        ids: bool,
    ) -> Result<Self> {
        let ids = ids || platform.has_message_ids();
        let variant = match (&declared, &options.like) {
            (Some(schema), _) => nullable(schema),
            (None, Some(like)) => {
                let table = crate::vcf::table::VcfTable::open(like, Default::default())?;
                nullable(table.schema().as_ref())
            }
            (None, None) => site_schema(),
        };
        let metadata = metadata_fields(ids);
        for f in variant.fields() {
            if metadata.iter().any(|m| m.name() == f.name()) {
                return Err(DataFusionError::Plan(format!(
                    "column '{}' is added by the topic table; do not declare it",
                    f.name()
                )));
            }
        }
        let mut fields: Vec<Field> = variant
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.extend(metadata);
        let schema = Arc::new(Schema::new_with_metadata(
            fields,
            variant.metadata().clone(),
        ));
        Ok(TopicTable {
            platform,
            options,
            variant: Arc::new(variant),
            schema,
            ids,
            origin: None,
        })
    }

    /// The table, remembering how CREATE made it.
    pub fn with_origin(mut self, origin: TopicOrigin) -> Self {
        self.origin = Some(Arc::new(origin));
        self
    }

    /// How CREATE made the table (`None` for tables made otherwise, such as a coordinated
    /// table's members).
    pub fn origin(&self) -> Option<&TopicOrigin> {
        self.origin.as_deref()
    }

    /// Whether the table has an `_id` column.
    pub fn has_ids(&self) -> bool {
        self.ids
    }

    /// `kafka host:port/topic`, `iggy host:port/stream/topic`.
    pub fn target(&self) -> String {
        self.platform.target()
    }

    /// The platform behind the table.
    pub fn platform(&self) -> &Arc<dyn Platform> {
        &self.platform
    }

    /// The table's options.
    pub fn options(&self) -> &TopicOptions {
        &self.options
    }

    /// The columns messages carry (no metadata columns).
    pub fn variant(&self) -> &SchemaRef {
        &self.variant
    }
}

#[async_trait]
impl TableProvider for TopicTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        if self.options.follow {
            // an unbounded read filters its own batches: a FilterExec above it would hold rows
            // back until it had a full batch, and a followed topic may never give one
            return Ok(vec![TableProviderFilterPushDown::Exact; filters.len()]);
        }
        Ok(filters
            .iter()
            .map(|f| {
                if apply_filter(&mut Seek::default(), f) {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let seek = seek_from_filters(filters);
        let predicate = match (self.options.follow, conjunction(filters.iter().cloned())) {
            (true, Some(expr)) => {
                let df_schema = DFSchema::try_from(self.schema.as_ref().clone())?;
                Some(state.create_physical_expr(expr, &df_schema)?)
            }
            _ => None,
        };
        let ranges = self.platform.plan_ranges(&seek).await?;
        let readers = self
            .platform
            .readers(state.config().target_partitions(), ranges.len());
        Ok(Arc::new(TopicExec::new(
            self.clone(),
            ranges,
            readers,
            projection.cloned(),
            predicate,
            limit,
        )?))
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if insert_op != InsertOp::Append {
            return Err(DataFusionError::Plan(format!(
                "{}: a topic can only be appended to (INSERT INTO), not {insert_op}",
                self.target()
            )));
        }
        let sink = self.platform.sink()?;
        let encoder = Encoder::new(self.options.format, Arc::clone(&self.variant));
        let data_sink = TopicDataSink::new(sink, encoder, Arc::clone(&self.schema));
        Ok(Arc::new(DataSinkExec::new(
            input,
            Arc::new(data_sink),
            None,
        )))
    }
}
