//! `CREATE EXTERNAL TABLE … STORED AS KAFKA | IGGY`: the one place that names every platform.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider, TableProviderFactory};
use datafusion::error::Result;
use datafusion::logical_expr::CreateExternalTable;

use super::iggy::IggyPlatform;
use super::kafka::KafkaPlatform;
use super::options::{PlatformKind, TopicOptions};
use super::platform::Platform;
use super::table::{TopicOrigin, TopicTable};

/// Makes topic tables of one platform.
#[derive(Debug, Clone, Copy)]
pub struct TopicTableFactory(pub PlatformKind);

#[async_trait]
impl TableProviderFactory for TopicTableFactory {
    async fn create(
        &self,
        _state: &dyn Session,
        cmd: &CreateExternalTable,
    ) -> Result<Arc<dyn TableProvider>> {
        let options = TopicOptions::from_sql_options(&cmd.options, self.0)?;
        let declared: Schema = cmd.schema.as_arrow().clone();
        let declared = (!declared.fields().is_empty()).then(|| Arc::new(declared));
        let platform = platform(self.0, &cmd.location, &options)?;
        let mut written: Vec<(String, String)> = cmd
            .options
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        written.sort();
        let origin = TopicOrigin {
            kind: self.0,
            location: cmd.location.clone(),
            options: written,
        };
        Ok(Arc::new(
            TopicTable::open(platform, options, declared)
                .await?
                .with_origin(origin),
        ))
    }
}

fn platform(
    kind: PlatformKind,
    location: &str,
    options: &TopicOptions,
) -> Result<Arc<dyn Platform>> {
    Ok(match kind {
        PlatformKind::Kafka => Arc::new(KafkaPlatform::new(location, options.clone())?),
        PlatformKind::Iggy => Arc::new(IggyPlatform::new(location, options.clone())?),
    })
}

/// The table `origin` describes, with the message columns `variant` (as the process that
/// created it found them) and an `_id` column when `ids`; the platform is not contacted (its
/// scans do that). A cluster's scheduler and executors open topic tables this way.
pub fn reopen(origin: TopicOrigin, variant: SchemaRef, ids: bool) -> Result<TopicTable> {
    let map: HashMap<String, String> = origin.options.iter().cloned().collect();
    let options = TopicOptions::from_sql_options(&map, origin.kind)?;
    let platform = platform(origin.kind, &origin.location, &options)?;
    Ok(TopicTable::open_with_ids(platform, options, Some(variant), ids)?.with_origin(origin))
}
