//! Table functions: `read_vcf(path [, region [, samples]])`,
//! `vcf_genotypes(path [, region [, samples]])` and `vcf_header(path)`.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Builder, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{ScalarValue, plan_err};
use datafusion::datasource::MemTable;
use datafusion::error::Result;
use datafusion::logical_expr::Expr;

use super::header::VcfHeader;
use super::input::VcfInput;
use super::region::Region;
use super::schema::Layout;
use super::table::{VcfOptions, VcfTable, parse_region_arg, parse_samples_arg, resolve_paths};
use crate::config::VcfConfig;

/// The text value of a literal argument; NULL is `None`.
fn text_arg(name: &str, args: &[Expr], i: usize) -> Result<Option<String>> {
    match args.get(i) {
        None => Ok(None),
        Some(Expr::Literal(v, _)) => match v {
            ScalarValue::Utf8(s) | ScalarValue::Utf8View(s) | ScalarValue::LargeUtf8(s) => {
                Ok(s.clone())
            }
            ScalarValue::Null => Ok(None),
            other => plan_err!("{name}: argument {} must be a string, not {other}", i + 1),
        },
        Some(other) => plan_err!(
            "{name}: argument {} must be a string literal, not {other}",
            i + 1
        ),
    }
}

/// `read_vcf` (wide layout) and `vcf_genotypes` (long layout).
#[derive(Debug)]
pub struct ReadVcf {
    layout: Layout,
}

impl ReadVcf {
    /// `read_vcf`: one row per record.
    pub fn wide() -> Self {
        ReadVcf {
            layout: Layout::Wide,
        }
    }

    /// `vcf_genotypes`: one row per record × sample.
    pub fn long() -> Self {
        ReadVcf {
            layout: Layout::Long,
        }
    }

    fn name(&self) -> &'static str {
        match self.layout {
            Layout::Wide => "read_vcf",
            Layout::Long => "vcf_genotypes",
        }
    }
}

impl TableFunctionImpl for ReadVcf {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let name = self.name();
        let exprs = args.exprs();
        if exprs.is_empty() || exprs.len() > 3 {
            return plan_err!(
                "{name}(path [, region [, samples]]) takes 1 to 3 arguments, got {}",
                exprs.len()
            );
        }
        let Some(path) = text_arg(name, exprs, 0)? else {
            return plan_err!("{name}: the path must not be NULL");
        };
        let region_text = text_arg(name, exprs, 1)?.unwrap_or_default();
        let samples = parse_samples_arg(&text_arg(name, exprs, 2)?.unwrap_or_default());
        let mut options = VcfOptions::default()
            .with_layout(self.layout)
            .with_samples(samples);
        if let Some(config) = args
            .session()
            .config_options()
            .extensions
            .get::<VcfConfig>()
        {
            options = options.with_config(config);
        }
        let table = VcfTable::open(&path, options)?;
        // a contig of the header named like a region ("HLA-A*01:01") is that contig
        let region = match table
            .header()
            .contigs
            .iter()
            .find(|c| c.id == region_text.trim())
        {
            Some(contig) => Some(Region {
                chrom: contig.id.clone(),
                start: 0,
                end: i64::MAX,
            }),
            None => parse_region_arg(&region_text)?,
        };
        Ok(Arc::new(table.with_region(region)))
    }
}

/// `vcf_header(path)`: the header as rows (`section, id, number, type, description, length, value`).
#[derive(Debug, Default)]
pub struct VcfHeaderFunction;

impl TableFunctionImpl for VcfHeaderFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        if exprs.len() != 1 {
            return plan_err!("vcf_header(path) takes 1 argument, got {}", exprs.len());
        }
        let Some(path) = text_arg("vcf_header", exprs, 0)? else {
            return plan_err!("vcf_header: the path must not be NULL");
        };
        let files = resolve_paths(&path)?;
        let input = VcfInput::open(&files[0], 1)?;
        let batch = header_batch(input.header())?;
        Ok(Arc::new(MemTable::try_new(
            batch.schema(),
            vec![vec![batch]],
        )?))
    }
}

/// One row per header fact, in the order of the sections.
pub fn header_batch(h: &VcfHeader) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("section", DataType::Utf8, false),
        Field::new("id", DataType::Utf8, true),
        Field::new("number", DataType::Utf8, true),
        Field::new("type", DataType::Utf8, true),
        Field::new("description", DataType::Utf8, true),
        Field::new("length", DataType::Int64, true),
        Field::new("value", DataType::Utf8, true),
    ]));
    let mut section = StringBuilder::new();
    let mut id = StringBuilder::new();
    let mut number = StringBuilder::new();
    let mut ty = StringBuilder::new();
    let mut desc = StringBuilder::new();
    let mut length = Int64Builder::new();
    let mut value = StringBuilder::new();
    let mut row = |s: &str,
                   i: Option<&str>,
                   n: Option<String>,
                   t: Option<String>,
                   d: Option<&str>,
                   l: Option<u64>,
                   v: Option<&str>| {
        section.append_value(s);
        id.append_option(i);
        number.append_option(n);
        ty.append_option(t);
        desc.append_option(d);
        length.append_option(l.and_then(|l| i64::try_from(l).ok()));
        value.append_option(v);
    };
    if let Some(ff) = &h.file_format {
        row("fileformat", None, None, None, None, None, Some(ff));
    }
    for (name, defs) in [("INFO", &h.infos), ("FORMAT", &h.formats)] {
        for d in defs {
            row(
                name,
                Some(&d.id),
                Some(d.number.to_string()),
                Some(d.ty.to_string()),
                Some(&d.description),
                None,
                None,
            );
        }
    }
    for (fid, d) in &h.filters {
        row("FILTER", Some(fid), None, None, Some(d), None, None);
    }
    for c in &h.contigs {
        row("contig", Some(&c.id), None, None, None, c.length, None);
    }
    for s in &h.samples {
        row("sample", Some(s), None, None, None, None, None);
    }
    for (k, v) in &h.other {
        row("meta", Some(k), None, None, None, None, Some(v));
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(section.finish()),
        Arc::new(id.finish()),
        Arc::new(number.finish()),
        Arc::new(ty.finish()),
        Arc::new(desc.finish()),
        Arc::new(length.finish()),
        Arc::new(value.finish()),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}
