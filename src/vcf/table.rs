//! The VCF table: resolving paths, inferring the schema from the header (the "format"), and the
//! [`TableProvider`] that plans scans with projection, sample and limit pushdown.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::DFSchema;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::TableType;
use datafusion::error::Result;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;

pub use super::options::{VcfOptions, parse_region_arg, parse_samples_arg};

use super::batch::{ColumnKind, DecodePlan};
use super::exec::{ScanOptions, ScanOrigin, ScanSpec, VcfExec};
use super::header::{FieldDef, VcfHeader};
use super::input::{Container, VcfInput};
use super::opener::ScanFilter;
use super::partition;
use super::record::split_record;
use super::region::{Region, is_region_filter, regions_from_filters, string_literal};
use super::schema::{Layout, SAMPLE, table_schema};
use crate::config::VcfConfig;
use crate::error::VcfError;
use crate::stamp::FileStamp;

/// Whether a path's name says it is a VCF or BCF file.
pub fn has_vcf_extension(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    [
        ".vcf",
        ".vcf.gz",
        ".vcf.bgz",
        ".vcf.bgzf",
        ".bcf",
        ".bcf.gz",
        ".gvcf",
        ".gvcf.gz",
    ]
    .iter()
    .any(|e| lower.ends_with(e))
}

/// Expands a location (file, directory of VCF/BCF files, or glob) into files, sorted.
pub fn resolve_paths(location: &str) -> Result<Vec<PathBuf>, VcfError> {
    let location = location.strip_prefix("file://").unwrap_or(location);
    let path = Path::new(location);
    let mut files = if location.contains(['*', '?', '[']) {
        let entries = glob::glob(location)
            .map_err(|e| VcfError::Invalid(format!("{location}: invalid glob: {e}")))?;
        entries
            .filter_map(|e| e.ok())
            .filter(|p| p.is_file())
            .collect::<Vec<_>>()
    } else if path.is_dir() {
        let entries = std::fs::read_dir(path).map_err(|e| VcfError::io(path, e))?;
        entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && has_vcf_extension(&p.to_string_lossy()))
            .collect()
    } else if path.exists() {
        vec![path.to_path_buf()]
    } else {
        vec![]
    };
    if files.is_empty() {
        return Err(VcfError::NotFound(location.to_string()));
    }
    files.sort();
    Ok(files)
}

/// The schema-defining facts of a set of files: the header of the first, and the INFO/FORMAT
/// fields found in records but not declared (read as text).
#[derive(Debug, Clone)]
pub struct VcfFormat {
    /// The header (of the first file).
    pub header: Arc<VcfHeader>,
    /// Declared INFO fields, then undeclared ones.
    pub infos: Vec<FieldDef>,
    /// Declared FORMAT fields, then undeclared ones.
    pub formats: Vec<FieldDef>,
}

impl VcfFormat {
    /// Reads the first file's header and its first `infer_records` records; checks that the
    /// other files name the same samples.
    pub fn infer(files: &[PathBuf], infer_records: usize) -> Result<Self, VcfError> {
        let first = files
            .first()
            .ok_or_else(|| VcfError::NotFound("(no files)".into()))?;
        let mut input = VcfInput::open(first, 1)?;
        let header = input.header().clone();
        let mut infos = header.infos.clone();
        let mut formats = header.formats.clone();
        let mut line = Vec::new();
        // a BCF record can only name fields of the header's dictionary: nothing to infer
        let records = match input.kind().container {
            Container::Bcf => 0,
            Container::Vcf => infer_records,
        };
        for _ in 0..records {
            if !input.next_line(&mut line)? {
                break;
            }
            let Ok(rec) = split_record(&line) else {
                continue;
            };
            if rec.info != b"." {
                for item in rec.info.split(|&b| b == b';') {
                    let (key, has_value) = match memchr::memchr(b'=', item) {
                        Some(eq) => (&item[..eq], true),
                        None => (item, false),
                    };
                    add_undeclared(first, "INFO", &mut infos, key, has_value);
                }
            }
            if let Some(format) = rec.format
                && !rec.samples.is_empty()
            {
                for key in format.split(|&b| b == b':') {
                    add_undeclared(first, "FORMAT", &mut formats, key, true);
                }
            }
        }
        for other in &files[1..] {
            let o = VcfInput::open(other, 1)?;
            if o.header().samples != header.samples {
                return Err(VcfError::Header {
                    path: other.clone(),
                    message: format!("samples differ from those of {}", first.display()),
                });
            }
        }
        Ok(VcfFormat {
            header: Arc::new(header),
            infos,
            formats,
        })
    }

    /// The table schema in a layout.
    pub fn schema(&self, layout: Layout) -> SchemaRef {
        table_schema(&self.header, &self.infos, &self.formats, layout)
    }
}

fn add_undeclared(path: &Path, kind: &str, defs: &mut Vec<FieldDef>, key: &[u8], has_value: bool) {
    if key.is_empty() || key == b"." || defs.iter().any(|d| d.id.as_bytes() == key) {
        return;
    }
    let id = String::from_utf8_lossy(key);
    log::warn!(
        "{}: {kind} field '{id}' is not declared in the header; read as text",
        path.display()
    );
    defs.push(FieldDef::undeclared(&id, has_value || kind == "FORMAT"));
}

/// A set of VCF/BCF files as one table.
#[derive(Debug, Clone)]
pub struct VcfTable {
    files: Vec<PathBuf>,
    format: VcfFormat,
    options: VcfOptions,
    schema: SchemaRef,
    /// Indices of the samples the options select.
    selected: Vec<usize>,
    /// The INFO fields in the `info` struct (all, unless narrowed to those a query reads).
    infos: Vec<FieldDef>,
    /// The FORMAT fields in the `genotypes` struct (all, unless narrowed likewise).
    formats: Vec<FieldDef>,
    /// What each file was when the table opened it.
    stamps: Vec<FileStamp>,
}

impl VcfTable {
    /// Whether a filter narrows what the scan reads (to regions, or samples of the long
    /// layout) rather than being evaluated on its rows.
    fn is_narrowing_filter(&self, f: &Expr) -> bool {
        (self.options.layout == Layout::Long && sample_filter_names(f).is_some())
            || is_region_filter(f)
    }

    /// Opens the files of `location` and infers the schema.
    pub fn open(location: &str, options: VcfOptions) -> Result<Self, VcfError> {
        VcfTable::open_files(resolve_paths(location)?, options)
    }

    /// Opens these files (in this order) as one table and infers the schema.
    pub fn open_files(files: Vec<PathBuf>, options: VcfOptions) -> Result<Self, VcfError> {
        let stamps = files
            .iter()
            .map(|f| FileStamp::of(f))
            .collect::<Result<Vec<_>, _>>()?;
        let format = VcfFormat::infer(&files, options.infer_records)?;
        let schema = format.schema(options.layout);
        let selected = select_samples(&format.header.samples, options.samples.as_deref())?;
        let infos = format.infos.clone();
        let formats = format.formats.clone();
        Ok(VcfTable {
            files,
            format,
            options,
            schema,
            selected,
            infos,
            formats,
            stamps,
        })
    }

    /// What each file was when the table opened it (size, modification time).
    pub fn stamps(&self) -> &[FileStamp] {
        &self.stamps
    }

    /// The same table reading only records that overlap `region`.
    pub fn with_region(mut self, region: Option<Region>) -> Self {
        self.options.region = region;
        self
    }

    /// The same table with only the INFO fields named in `keys` in its `info` struct (header
    /// order); `None` when that is what it already has.
    pub fn with_info_fields(&self, keys: &[String]) -> Option<Self> {
        let infos: Vec<FieldDef> = self
            .format
            .infos
            .iter()
            .filter(|d| keys.contains(&d.id))
            .cloned()
            .collect();
        if infos
            .iter()
            .map(|d| &d.id)
            .eq(self.infos.iter().map(|d| &d.id))
        {
            return None;
        }
        let schema = table_schema(
            &self.format.header,
            &infos,
            &self.formats,
            self.options.layout,
        );
        Some(VcfTable {
            schema,
            infos,
            ..self.clone()
        })
    }

    /// The same table with only the FORMAT fields named in `keys` in the struct of its
    /// `genotypes` column (header order; wide layout); `None` when that is what it already has.
    pub fn with_genotype_fields(&self, keys: &[String]) -> Option<Self> {
        if self.options.layout != Layout::Wide {
            return None;
        }
        let formats: Vec<FieldDef> = self
            .format
            .formats
            .iter()
            .filter(|d| keys.contains(&d.id))
            .cloned()
            .collect();
        if formats
            .iter()
            .map(|d| &d.id)
            .eq(self.formats.iter().map(|d| &d.id))
        {
            return None;
        }
        let schema = table_schema(
            &self.format.header,
            &self.infos,
            &formats,
            self.options.layout,
        );
        Some(VcfTable {
            schema,
            formats,
            ..self.clone()
        })
    }

    /// The files scanned.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The header of the first file.
    pub fn header(&self) -> &VcfHeader {
        &self.format.header
    }

    /// The header of the first file, shared.
    pub fn shared_header(&self) -> Arc<VcfHeader> {
        Arc::clone(&self.format.header)
    }

    /// The names of the samples the table reads, in order.
    pub fn selected_samples(&self) -> Vec<String> {
        self.selected
            .iter()
            .map(|&i| self.format.header.samples[i].clone())
            .collect()
    }
}

/// Indices of the named samples (all when `names` is None); an unknown name is an error.
pub fn select_samples(header: &[String], names: Option<&[String]>) -> Result<Vec<usize>, VcfError> {
    let Some(names) = names else {
        return Ok((0..header.len()).collect());
    };
    let mut idx = Vec::with_capacity(names.len());
    for n in names {
        match header.iter().position(|h| h == n) {
            Some(i) => idx.push(i),
            None => {
                return Err(VcfError::Invalid(format!(
                    "unknown sample '{n}' (the file has {} samples)",
                    header.len()
                )));
            }
        }
    }
    idx.sort_unstable();
    idx.dedup();
    Ok(idx)
}

/// Whether a filter can be evaluated by the scan over its own columns: no subqueries, no
/// references to an outer query, no parameters left unbound.
fn evaluable_in_scan(e: &Expr) -> bool {
    let mut ok = true;
    let _ = e.apply(|e| {
        if matches!(
            e,
            Expr::ScalarSubquery(_)
                | Expr::Exists(_)
                | Expr::InSubquery(_)
                | Expr::OuterReferenceColumn(..)
                | Expr::Placeholder(_)
                | Expr::AggregateFunction(_)
                | Expr::WindowFunction(_)
        ) {
            ok = false;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    ok
}

/// The sample names a filter on `sample` allows (`sample = 'x'`, `sample IN ('x', 'y')`), if it is one.
fn sample_filter_names(expr: &Expr) -> Option<Vec<String>> {
    let lit = string_literal;
    fn is_sample(e: &Expr) -> bool {
        match e {
            Expr::Column(c) => c.name == SAMPLE,
            Expr::Cast(c) => is_sample(&c.expr),
            _ => false,
        }
    }
    match expr {
        Expr::BinaryExpr(b) if b.op == Operator::Eq => {
            if is_sample(&b.left) {
                lit(&b.right).map(|s| vec![s])
            } else if is_sample(&b.right) {
                lit(&b.left).map(|s| vec![s])
            } else {
                None
            }
        }
        Expr::InList(l) if !l.negated && is_sample(&l.expr) => l.list.iter().map(lit).collect(),
        _ => None,
    }
}

#[async_trait]
impl TableProvider for VcfTable {
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
        // the scan narrows to samples or regions (the filter stays above for exactness) and
        // evaluates every other filter itself, in its reader threads, before rows leave it
        Ok(filters
            .iter()
            .map(|f| {
                if self.is_narrowing_filter(f) {
                    TableProviderFilterPushDown::Inexact
                } else if evaluable_in_scan(f) {
                    TableProviderFilterPushDown::Exact
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
        let config = state
            .config_options()
            .extensions
            .get::<VcfConfig>()
            .cloned()
            .unwrap_or_default();
        let wanted: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        // the filters the scan evaluates may read columns the query does not output
        let exact: Vec<&Expr> = filters
            .iter()
            .filter(|f| !self.is_narrowing_filter(f))
            .collect();
        let mut indices = wanted.clone();
        for f in &exact {
            for c in f.column_refs() {
                if let Ok(i) = self.schema.index_of(&c.name)
                    && !indices.contains(&i)
                {
                    indices.push(i);
                }
            }
        }
        let mut selected = self.selected.clone();
        let mut limit = limit;
        for f in filters {
            if let Some(names) = sample_filter_names(f) {
                let allowed: Vec<usize> = names
                    .iter()
                    .filter_map(|n| self.format.header.samples.iter().position(|h| h == n))
                    .collect();
                selected.retain(|i| allowed.contains(i));
                limit = None;
            }
        }
        let predicate = match conjunction(exact.iter().map(|f| (*f).clone())) {
            Some(expr) => {
                let schema = self.schema.project(&indices)?;
                let df_schema = DFSchema::try_from(schema)?;
                Some(state.create_physical_expr(expr, &df_schema)?)
            }
            None => None,
        };
        let narrowing: Vec<Expr> = filters
            .iter()
            .filter(|f| self.is_narrowing_filter(f))
            .cloned()
            .collect();
        let spec = ScanSpec {
            outputs: wanted.len(),
            indices,
            selected,
            regions: regions_from_filters(&narrowing, self.options.region.as_ref()),
            predicate,
            min_split_bytes: config.min_split_bytes.0 as u64,
        };
        let target_partitions = state.config_options().execution.target_partitions;
        let options = ScanOptions {
            limit,
            skip_errors: config.skip_errors(),
            threads: target_partitions,
            preserve_order: config.preserve_order,
            partitions: match config.scan_partitions {
                0 => target_partitions,
                n => n,
            },
        };
        self.plan_scan(spec, options)
    }
}

impl VcfTable {
    /// Opens a table as another process described it: the same files and options, with the
    /// INFO fields `infos` in its `info` struct and the FORMAT fields `formats` in its
    /// `genotypes` struct ([`VcfTable::info_fields`], [`VcfTable::genotype_fields`]).
    pub fn reopen(
        files: Vec<PathBuf>,
        options: VcfOptions,
        infos: &[String],
        formats: &[String],
    ) -> Result<Self, VcfError> {
        let mut table = VcfTable::open_files(files, options)?;
        if let Some(t) = table.with_info_fields(infos) {
            table = t;
        }
        if let Some(t) = table.with_genotype_fields(formats) {
            table = t;
        }
        Ok(table)
    }

    /// The table's options.
    pub fn options(&self) -> &VcfOptions {
        &self.options
    }

    /// The INFO fields of its `info` struct.
    pub fn info_fields(&self) -> Vec<String> {
        self.infos.iter().map(|d| d.id.clone()).collect()
    }

    /// The FORMAT fields of its `genotypes` struct.
    pub fn genotype_fields(&self) -> Vec<String> {
        self.formats.iter().map(|d| d.id.clone()).collect()
    }

    /// The scan that `spec` describes, run as `options` say (an empty plan when the regions
    /// exclude every record).
    pub fn plan_scan(
        &self,
        spec: ScanSpec,
        options: ScanOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let schema = Arc::new(self.schema.project(&spec.indices)?);
        let columns = spec
            .indices
            .iter()
            .map(|&i| ColumnKind::of(self.options.layout, i))
            .collect();
        let filter = match &spec.predicate {
            Some(predicate) => {
                let output: Vec<usize> = (0..spec.outputs).collect();
                Some(ScanFilter {
                    predicate: Arc::clone(predicate),
                    schema: Arc::new(schema.project(&output)?),
                    output,
                })
            }
            None => None,
        };
        let plan = DecodePlan {
            layout: self.options.layout,
            schema,
            columns,
            infos: self.infos.clone(),
            skipped_infos: self
                .format
                .infos
                .iter()
                .filter(|d| !self.infos.iter().any(|k| k.id == d.id))
                .map(|d| d.id.clone())
                .collect(),
            // the wide layout's `genotypes` holds the (possibly narrowed) FORMAT fields; the
            // long layout's columns are all of them
            formats: match self.options.layout {
                Layout::Wide => self.formats.clone(),
                Layout::Long => self.format.formats.clone(),
            },
            skipped_formats: self
                .format
                .formats
                .iter()
                .filter(|d| {
                    self.options.layout == Layout::Wide
                        && !self.formats.iter().any(|k| k.id == d.id)
                })
                .map(|d| d.id.clone())
                .collect(),
            sample_names: self.format.header.samples.clone(),
            selected: spec.selected.clone(),
        };
        if spec.regions.as_ref().is_some_and(|r| r.is_empty()) {
            // the filters exclude every row
            let output = filter
                .as_ref()
                .map_or_else(|| Arc::clone(&plan.schema), |f| Arc::clone(&f.schema));
            return Ok(Arc::new(EmptyExec::new(output)));
        }
        let layout = partition::plan(&self.files, spec.regions.as_deref(), spec.min_split_bytes)?;
        let regions = spec.regions.clone().unwrap_or_default();
        let origin = ScanOrigin {
            files: self.files.clone(),
            table: self.options.clone(),
            infos: self.info_fields(),
            formats: self.genotype_fields(),
            stamps: self.stamps.clone(),
            spec,
        };
        Ok(Arc::new(
            VcfExec::new(layout, Arc::new(plan), regions, options, filter).with_origin(origin),
        ))
    }
}
