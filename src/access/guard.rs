//! The [`Guard`] of a session: what its principal may read, write and create, checked
//!
//! 1. as a path is resolved into a table (a path in `FROM`, `read_vcf`, `vcf_genotypes`,
//!    `vcf_header`), before the file is opened, so a refusal says nothing about the file;
//! 2. on the statement, before it is planned (`COPY … TO`'s target, `CREATE INDEX`, which runs
//!    at planning);
//! 3. on the logical plan, before anything runs: every scan (through views and subqueries),
//!    insert, `COPY`, and DDL statement.
//!
//! The guard lives in the session's configuration (an extension), so every way into the
//! session (queries, prepared statements, views, joins) meets the same checks.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider, UrlTableFactory};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{ScalarValue, TableReference};
use datafusion::datasource::listing::ListingTable;
use datafusion::datasource::source_as_provider;
use datafusion::error::Result;
use datafusion::logical_expr::{DdlStatement, DmlStatement, Expr, LogicalPlan, WriteOp};
use datafusion::prelude::SessionConfig;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast;
use datafusion_session::SessionStore;

use super::AccessError;
use super::paths::{FileRoots, glob_base, resolve};
use super::rules::{Privilege, Rules, is_stream_location, without_credentials};
use crate::copy_target::CopyTarget;
use crate::lance::LanceTable;
use crate::vcf::VcfTable;

/// What one session's principal may touch.
#[derive(Debug, Clone)]
pub struct Guard {
    roots: FileRoots,
    streams: Vec<String>,
    rules: Rules,
    shared: HashSet<String>,
}

impl Guard {
    /// A guard over `roots` (files), `streams` (stream location prefixes clients may make
    /// tables on), the principal's `rules`, and `shared`: the names of the tables the server
    /// registers (those the principal may not see included), which grants govern; a session's
    /// own tables are its principal's.
    pub fn new(
        roots: FileRoots,
        streams: Vec<String>,
        rules: Rules,
        shared: HashSet<String>,
    ) -> Self {
        Guard {
            roots,
            streams: streams.iter().map(|s| without_credentials(s)).collect(),
            rules,
            shared,
        }
    }

    /// The guard of a session, if it has one.
    pub fn of(config: &SessionConfig) -> Option<Arc<Guard>> {
        config.get_extension::<Guard>()
    }

    /// Puts the guard on a session: every later statement is checked.
    pub fn install(self, ctx: &datafusion::prelude::SessionContext) {
        ctx.state_ref()
            .write()
            .config_mut()
            .set_extension(Arc::new(self));
    }

    /// The principal's grants.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Whether `name` is one of the server's tables.
    pub fn is_shared(&self, name: &str) -> bool {
        self.shared.contains(name)
    }

    /// Whether a reference names one of the server's tables (they are in the default schema).
    fn is_shared_ref(&self, name: &TableReference) -> bool {
        matches!(name.schema(), None | Some("public")) && self.shared.contains(name.table())
    }

    /// Reading the file(s) at `path` (a glob is checked at its fixed directories; the files it
    /// lists are checked again in the plan).
    pub fn read_path(&self, path: &str) -> Result<(), AccessError> {
        let resolved = resolve(glob_base(path));
        let inside = self
            .roots
            .read_roots()
            .iter()
            .any(|r| resolved.starts_with(r));
        if inside && self.rules.path_allows(&resolved, Privilege::Select) {
            Ok(())
        } else {
            Err(AccessError::Path {
                path: path.to_string(),
                privilege: Privilege::Select,
            })
        }
    }

    /// Writing at `path` (`COPY … TO`, an insert into a file table).
    pub fn write_path(&self, path: &str) -> Result<(), AccessError> {
        let resolved = resolve(path);
        let inside = self
            .roots
            .write_roots()
            .iter()
            .any(|r| resolved.starts_with(r));
        if inside && self.rules.path_allows(&resolved, Privilege::Insert) {
            Ok(())
        } else {
            Err(AccessError::Path {
                path: path.to_string(),
                privilege: Privilege::Insert,
            })
        }
    }

    /// Making a table over the file(s) at `path`.
    fn create_path(&self, path: &str) -> Result<(), AccessError> {
        let resolved = resolve(glob_base(path));
        let inside = self
            .roots
            .read_roots()
            .iter()
            .any(|r| resolved.starts_with(r));
        if inside && self.rules.path_allows(&resolved, Privilege::Create) {
            Ok(())
        } else {
            Err(AccessError::Path {
                path: path.to_string(),
                privilege: Privilege::Create,
            })
        }
    }

    /// Making a table over the stream at `location`.
    fn create_stream(&self, location: &str) -> Result<(), AccessError> {
        let plain = without_credentials(location);
        let listed = self.streams.iter().any(|p| plain.starts_with(p.as_str()));
        if listed && self.rules.stream_allows(&plain, Privilege::Create) {
            Ok(())
        } else {
            Err(AccessError::Stream {
                location: plain,
                privilege: Privilege::Create,
            })
        }
    }

    /// `privilege` on a table: the server's tables by their grants; a session's own tables
    /// are its principal's, except that creating (or dropping) always needs a grant.
    pub fn table(&self, name: &str, privilege: Privilege) -> Result<(), AccessError> {
        let own = !self.shared.contains(name) && privilege != Privilege::Create;
        if own || self.rules.table_allows(name, privilege) {
            Ok(())
        } else {
            Err(AccessError::Table {
                table: name.to_string(),
                privilege,
            })
        }
    }

    /// Checks a statement before it is planned: the target of a `COPY`, the table of
    /// `CREATE INDEX` / `DROP INDEX` (which vcfq runs while planning).
    pub fn check_statement(&self, statement: &DFStatement) -> Result<(), AccessError> {
        match statement {
            DFStatement::CopyTo(copy) => self.write_path(&copy.target),
            DFStatement::Explain(explain) => self.check_statement(&explain.statement),
            DFStatement::Statement(inner) => match inner.as_ref() {
                ast::Statement::CreateIndex(create) => {
                    self.table(&last_part(&create.table_name), Privilege::Create)
                }
                ast::Statement::Drop {
                    object_type: ast::ObjectType::Index,
                    table: Some(table),
                    ..
                } => self.table(&last_part(table), Privilege::Create),
                ast::Statement::Drop {
                    object_type: ast::ObjectType::Index,
                    ..
                } => Err(AccessError::Statement(
                    "DROP INDEX needs ON <table>".to_string(),
                )),
                _ => Ok(()),
            },
            DFStatement::CreateExternalTable(_) | DFStatement::Reset(_) => Ok(()),
        }
    }

    /// Checks every node of a logical plan (subqueries and views included).
    pub fn check_plan(&self, plan: &LogicalPlan) -> Result<()> {
        plan.apply_with_subqueries(|node| {
            self.check_node(node)?;
            Ok(TreeNodeRecursion::Continue)
        })?;
        Ok(())
    }

    fn check_node(&self, node: &LogicalPlan) -> Result<()> {
        match node {
            LogicalPlan::TableScan(scan) => match source_as_provider(&scan.source) {
                Ok(provider) => self.check_scan(&scan.table_name, provider.as_ref()),
                // not a table's source (a recursive query's work table): nothing to read
                Err(_) => Ok(()),
            },
            LogicalPlan::Dml(dml) => self.check_write(dml),
            LogicalPlan::Copy(copy) => Ok(self.write_path(&copy.output_url)?),
            LogicalPlan::Ddl(ddl) => self.check_ddl(ddl),
            _ => Ok(()),
        }
    }

    fn check_scan(&self, name: &TableReference, provider: &dyn TableProvider) -> Result<()> {
        if let Some(view) = provider.get_logical_plan() {
            // a view reads what its plan reads (a restricted table: the server's table)
            return self.check_plan(&view);
        }
        if self.is_shared_ref(name) {
            return Ok(self.table(name.table(), Privilege::Select)?);
        }
        for path in files_of(provider) {
            self.read_path(&path)?;
        }
        Ok(())
    }

    fn check_write(&self, dml: &DmlStatement) -> Result<()> {
        let provider = source_as_provider(&dml.target)?;
        let name = dml.table_name.table();
        if provider.is::<CopyTarget>() {
            return Ok(self.write_path(name)?);
        }
        if self.is_shared_ref(&dml.table_name) {
            return Ok(self.table(name, Privilege::Insert)?);
        }
        if matches!(dml.op, WriteOp::Ctas) {
            return Ok(self.table(name, Privilege::Create)?);
        }
        // a session's own table over files writes into its location
        for path in files_of(provider.as_ref()) {
            self.write_path(&path)?;
        }
        Ok(())
    }

    fn check_ddl(&self, ddl: &DdlStatement) -> Result<()> {
        match ddl {
            DdlStatement::CreateExternalTable(create) => {
                self.table(create.name.table(), Privilege::Create)?;
                let kind = create.file_type.to_ascii_uppercase();
                match kind.as_str() {
                    "KAFKA" | "IGGY" => self.create_stream(&create.location)?,
                    "STREAM" => {
                        for (key, value) in &create.options {
                            if matches!(key.as_str(), "primary" | "fallback") {
                                self.create_stream(value)?;
                            }
                        }
                    }
                    _ if is_stream_location(&create.location) => {
                        self.create_stream(&create.location)?
                    }
                    _ => self.create_path(&create.location)?,
                }
                // options that name files the table reads (`like`, TLS keys and CAs, …)
                for (key, value) in &create.options {
                    if names_a_file(key) {
                        self.read_path(value)?;
                    }
                }
                Ok(())
            }
            DdlStatement::CreateMemoryTable(c) => {
                Ok(self.table(c.name.table(), Privilege::Create)?)
            }
            DdlStatement::CreateView(c) => Ok(self.table(c.name.table(), Privilege::Create)?),
            DdlStatement::CreateIndex(c) => Ok(self.table(c.table.table(), Privilege::Create)?),
            DdlStatement::DropTable(d) => Ok(self.table(d.name.table(), Privilege::Create)?),
            DdlStatement::DropView(d) => Ok(self.table(d.name.table(), Privilege::Create)?),
            DdlStatement::CreateCatalogSchema(_)
            | DdlStatement::CreateCatalog(_)
            | DdlStatement::DropCatalogSchema(_)
            | DdlStatement::CreateFunction(_)
            | DdlStatement::DropFunction(_) => {
                if self.rules.table_allows("*", Privilege::Create) {
                    Ok(())
                } else {
                    Err(AccessError::Statement(
                        "creating or dropping schemas, catalogs and functions needs create on all tables ('*')"
                            .to_string(),
                    )
                    .into())
                }
            }
        }
    }
}

/// Whether a table option holds a file's path (DataFusion prefixes a plain key with
/// `format.`, so only the last dotted part counts).
fn names_a_file(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    let key = key.rsplit('.').next().unwrap_or(&key);
    key == "like" || key.ends_with("location") || key.ends_with("file") || key.ends_with("path")
}

fn last_part(name: &ast::ObjectName) -> String {
    name.0
        .last()
        .and_then(|p| p.as_ident())
        .map_or_else(|| name.to_string(), |i| i.value.clone())
}

/// The files (or their directories) a table reads, where its type says.
fn files_of(provider: &dyn TableProvider) -> Vec<String> {
    if let Some(vcf) = provider.downcast_ref::<VcfTable>() {
        return vcf
            .files()
            .iter()
            .map(|p| p.display().to_string())
            .collect();
    }
    if let Some(lance) = provider.downcast_ref::<LanceTable>() {
        return vec![lance.location().to_string()];
    }
    if let Some(listing) = provider.downcast_ref::<ListingTable>() {
        let mut out = Vec::new();
        for url in listing.table_paths() {
            let base = url.as_str().strip_prefix("file://").unwrap_or(url.as_str());
            out.push(base.to_string());
            // what is under a directory, links included, is read too
            listed(&resolve(glob_base(base)), &mut out, 0);
        }
        return out;
    }
    Vec::new()
}

/// Every entry under `dir` (to a bounded depth and count), as paths to check.
fn listed(dir: &std::path::Path, out: &mut Vec<String>, depth: usize) {
    const MAX_DEPTH: usize = 16;
    const MAX_ENTRIES: usize = 100_000;
    if depth > MAX_DEPTH || out.len() > MAX_ENTRIES {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path: PathBuf = entry.path();
        out.push(path.display().to_string());
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            listed(&path, out, depth + 1);
        }
    }
}

/// The objects a plan touches, for the audit trail: tables by name, files by path, each once,
/// in the order met.
pub fn touched(plan: &LogicalPlan) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |s: String| {
        if !out.contains(&s) {
            out.push(s);
        }
    };
    let _ = plan.apply_with_subqueries(|node| {
        match node {
            LogicalPlan::TableScan(scan) => add(scan.table_name.to_string()),
            LogicalPlan::Dml(dml) => add(dml.table_name.to_string()),
            LogicalPlan::Copy(copy) => add(copy.output_url.clone()),
            LogicalPlan::Ddl(DdlStatement::CreateExternalTable(c)) => {
                add(c.name.to_string());
                add(without_credentials(&c.location));
            }
            LogicalPlan::Ddl(ddl) => {
                if let Some(name) = ddl_name(ddl) {
                    add(name);
                }
            }
            _ => {}
        }
        Ok(TreeNodeRecursion::Continue)
    });
    out
}

fn ddl_name(ddl: &DdlStatement) -> Option<String> {
    Some(match ddl {
        DdlStatement::CreateMemoryTable(c) => c.name.to_string(),
        DdlStatement::CreateView(c) => c.name.to_string(),
        DdlStatement::CreateIndex(c) => c.table.to_string(),
        DdlStatement::DropTable(d) => d.name.to_string(),
        DdlStatement::DropView(d) => d.name.to_string(),
        _ => return None,
    })
}

/// Paths as tables, checked against the session's guard before the inner factory opens them.
#[derive(Debug)]
pub struct GuardedUrlTableFactory {
    inner: Arc<dyn UrlTableFactory>,
    session: SessionStore,
}

impl GuardedUrlTableFactory {
    /// Guards `inner`; the session is set with [`Self::session_store`].
    pub fn new(inner: Arc<dyn UrlTableFactory>) -> Self {
        GuardedUrlTableFactory {
            inner,
            session: SessionStore::new(),
        }
    }

    /// Where the session (and so its guard) is found.
    pub fn session_store(&self) -> &SessionStore {
        &self.session
    }
}

#[async_trait]
impl UrlTableFactory for GuardedUrlTableFactory {
    async fn try_new(&self, url: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let guard = self
            .session
            .get_session()
            .upgrade()
            .and_then(|state| Guard::of(state.read().config()));
        if let Some(guard) = guard {
            if guard.is_shared(url) {
                // one of the server's tables that this principal does not see
                return Err(AccessError::Table {
                    table: url.to_string(),
                    privilege: Privilege::Select,
                }
                .into());
            }
            if let Err(denied) = guard.read_path(url) {
                if !url.contains(['/', '.', '*', '?', '[', ':']) {
                    // a name, not a path: an unknown table, as without a guard
                    return Ok(None);
                }
                return Err(denied.into());
            }
        }
        self.inner.try_new(url).await
    }
}

/// A table function whose first argument is a path, checked against the session's guard
/// before the function opens it.
#[derive(Debug)]
pub struct PathFunction {
    inner: Arc<dyn TableFunctionImpl>,
}

impl PathFunction {
    /// Guards `inner`.
    pub fn new(inner: Arc<dyn TableFunctionImpl>) -> Self {
        PathFunction { inner }
    }
}

impl TableFunctionImpl for PathFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        if let Some(guard) = Guard::of(args.session().config())
            && let Some(Expr::Literal(value, _)) = args.exprs().first()
        {
            match value {
                ScalarValue::Utf8(Some(path))
                | ScalarValue::LargeUtf8(Some(path))
                | ScalarValue::Utf8View(Some(path)) => guard.read_path(path)?,
                _ => {}
            }
        }
        self.inner.call_with_args(args)
    }
}

#[cfg(test)]
mod tests {
    use super::names_a_file;

    #[test]
    fn options_naming_files_are_found_under_any_prefix() {
        for key in [
            "like",
            "format.like",
            "LIKE",
            "tls.ca_file",
            "ssl.ca.location",
            "key_path",
        ] {
            assert!(names_a_file(key), "{key}");
        }
        for key in ["format", "format.mode", "partitions", "region"] {
            assert!(!names_a_file(key), "{key}");
        }
    }
}
