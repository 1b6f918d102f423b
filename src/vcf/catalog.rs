//! How VCF files become tables: file paths in `FROM` (`SELECT … FROM 'calls.vcf.gz'`) and
//! `CREATE EXTERNAL TABLE … STORED AS VCF`.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider, TableProviderFactory, UrlTableFactory};
use datafusion::error::Result;
use datafusion::logical_expr::CreateExternalTable;

use datafusion_session::SessionStore;

use super::input::{Container, sniff};
use super::table::{VcfOptions, VcfTable, has_vcf_extension, resolve_paths};
use crate::config::VcfConfig;

/// Resolves file paths used as table names: VCF/BCF files (by name, or by content for files
/// with other names) become [`VcfTable`]s; anything else goes to `fallback` (DataFusion's
/// CSV/Parquet/JSON listing tables).
#[derive(Debug)]
pub struct VcfUrlTableFactory {
    fallback: Arc<dyn UrlTableFactory>,
    /// The session whose `vcf.*` settings apply (set once the session exists).
    session: SessionStore,
}

impl VcfUrlTableFactory {
    /// A factory trying VCF first, then `fallback`.
    pub fn new(fallback: Arc<dyn UrlTableFactory>) -> Self {
        VcfUrlTableFactory {
            fallback,
            session: SessionStore::new(),
        }
    }

    /// The store of the session the factory serves; [`SessionStore::with_state`] must be called
    /// on it before the factory is used.
    pub fn session_store(&self) -> &SessionStore {
        &self.session
    }

    fn options(&self) -> VcfOptions {
        let session = self.session.get_session().upgrade();
        let config = session.and_then(|s| {
            s.read()
                .config_options()
                .extensions
                .get::<VcfConfig>()
                .cloned()
        });
        VcfOptions::default().with_config(&config.unwrap_or_default())
    }
}

/// Whether `location` names VCF/BCF data: by its name; for an existing file with another name,
/// by its first bytes; for a directory, when it holds VCF/BCF files.
pub fn looks_like_vcf(location: &str) -> bool {
    let plain = location.strip_prefix("file://").unwrap_or(location);
    let path = Path::new(plain);
    if has_vcf_extension(plain) {
        true
    } else if path.is_file() {
        match sniff(path) {
            Ok(kind) if kind.container == Container::Bcf => true,
            Ok(_) => super::input::VcfInput::open(path, 1).is_ok_and(|i| {
                i.header()
                    .file_format
                    .as_deref()
                    .is_some_and(|f| f.starts_with("VCF"))
            }),
            Err(_) => false,
        }
    } else {
        path.is_dir() && resolve_paths(plain).is_ok()
    }
}

#[async_trait]
impl UrlTableFactory for VcfUrlTableFactory {
    async fn try_new(&self, url: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if looks_like_vcf(url) {
            let table = VcfTable::open(url, self.options())?;
            return Ok(Some(Arc::new(table)));
        }
        self.fallback.try_new(url).await
    }
}

/// `CREATE EXTERNAL TABLE t STORED AS VCF LOCATION 'file | dir/ | glob' [OPTIONS (…)]`.
#[derive(Debug, Default)]
pub struct VcfTableFactory;

#[async_trait]
impl TableProviderFactory for VcfTableFactory {
    async fn create(
        &self,
        state: &dyn Session,
        cmd: &CreateExternalTable,
    ) -> Result<Arc<dyn TableProvider>> {
        let config = state
            .config_options()
            .extensions
            .get::<VcfConfig>()
            .cloned()
            .unwrap_or_default();
        let options = VcfOptions::from_sql_options(&cmd.options)?.with_config(&config);
        Ok(Arc::new(VcfTable::open(&cmd.location, options)?))
    }
}
