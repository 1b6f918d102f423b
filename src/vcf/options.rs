//! The options of a VCF table: `OPTIONS (…)` of `CREATE EXTERNAL TABLE`, table-function
//! arguments and the `vcf.*` settings that concern opening a table.

use std::collections::HashMap;

use super::region::Region;
use super::schema::Layout;
use crate::config::VcfConfig;
use crate::error::VcfError;

/// Options of a VCF table (`OPTIONS (…)` of `CREATE EXTERNAL TABLE`, or table-function arguments).
#[derive(Debug, Clone)]
pub struct VcfOptions {
    /// Only records overlapping this region are read.
    pub region: Option<Region>,
    /// Only these samples are read (all when `None`).
    pub samples: Option<Vec<String>>,
    /// Wide (one row per record) or long (record × sample).
    pub layout: Layout,
    /// Records read to find undeclared INFO/FORMAT fields.
    pub infer_records: usize,
}

impl Default for VcfOptions {
    fn default() -> Self {
        VcfOptions {
            region: None,
            samples: None,
            layout: Layout::Wide,
            infer_records: 1000,
        }
    }
}

impl VcfOptions {
    /// Sets the region.
    pub fn with_region(mut self, region: Option<Region>) -> Self {
        self.region = region;
        self
    }

    /// Sets the samples to read.
    pub fn with_samples(mut self, samples: Option<Vec<String>>) -> Self {
        self.samples = samples;
        self
    }

    /// Sets the layout.
    pub fn with_layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }

    /// Takes what the session's `vcf.*` settings say about opening a table
    /// (`vcf.infer_records`).
    pub fn with_config(mut self, config: &VcfConfig) -> Self {
        self.infer_records = config.infer_records;
        self
    }

    /// Takes the options vcfq knows from a `CREATE EXTERNAL TABLE … OPTIONS` map and rejects the rest.
    pub fn from_sql_options(options: &HashMap<String, String>) -> Result<Self, VcfError> {
        let mut out = VcfOptions::default();
        for (key, value) in options {
            let key = key.strip_prefix("format.").unwrap_or(key);
            match key {
                "region" => out.region = parse_region_arg(value)?,
                "samples" => out.samples = parse_samples_arg(value),
                "layout" => {
                    out.layout = match value.to_ascii_lowercase().as_str() {
                        "wide" => Layout::Wide,
                        "long" => Layout::Long,
                        _ => {
                            return Err(VcfError::Invalid(format!(
                                "option layout must be 'wide' or 'long', not '{value}'"
                            )));
                        }
                    }
                }
                _ => {
                    return Err(VcfError::Invalid(format!(
                        "unknown option '{key}' for STORED AS VCF (known: region, samples, layout)"
                    )));
                }
            }
        }
        Ok(out)
    }
}

/// Parses a region argument; empty means none.
pub fn parse_region_arg(text: &str) -> Result<Option<Region>, VcfError> {
    if text.trim().is_empty() {
        Ok(None)
    } else {
        Region::parse(text).map(Some).map_err(VcfError::Invalid)
    }
}

/// Parses a comma-separated sample list; empty means all samples.
pub fn parse_samples_arg(text: &str) -> Option<Vec<String>> {
    let names: Vec<String> = text
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if names.is_empty() { None } else { Some(names) }
}
