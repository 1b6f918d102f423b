//! `CREATE EXTERNAL TABLE … STORED AS KAFKA | IGGY`: the one place that names every platform.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::Schema;
use datafusion::catalog::{Session, TableProvider, TableProviderFactory};
use datafusion::error::Result;
use datafusion::logical_expr::CreateExternalTable;

use super::iggy::IggyPlatform;
use super::kafka::KafkaPlatform;
use super::options::{PlatformKind, TopicOptions};
use super::platform::Platform;
use super::table::TopicTable;

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
        let platform: Arc<dyn Platform> = match self.0 {
            PlatformKind::Kafka => Arc::new(KafkaPlatform::new(&cmd.location, options.clone())?),
            PlatformKind::Iggy => Arc::new(IggyPlatform::new(&cmd.location, options.clone())?),
        };
        Ok(Arc::new(
            TopicTable::open(platform, options, declared).await?,
        ))
    }
}
