//! Writing VCF and BCF: `COPY (SELECT …) TO 'out.vcf' | 'out.vcf.gz' | 'out.bcf'
//! [STORED AS VCF|BCF] [OPTIONS (…)]`.
//!
//! `copy` plans the statement (options, the source header, sorting), `header` derives the
//! written header from the source's, `record` formats rows as record lines (`values`: each value's text), `sink` streams them
//! into the file (BGZF, BCF, an index built in the same pass); `text` prints the records of a
//! query's result (`vcfq -c … --format vcf`).

pub mod copy;
pub mod header;
pub mod record;
pub mod sink;
pub mod text;
pub mod values;

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Fields, Schema};

use self::header::{
    FieldOverride, FillTag, HeaderError, HeaderInputs, OutputHeader, Section, parse_type,
    valid_number,
};
use self::record::{Columns, genotype_fields};
use crate::vcf::VcfHeader;

/// What a file holds: VCF text or BCF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// VCF text.
    Vcf,
    /// Binary VCF (always BGZF-compressed).
    Bcf,
}

/// How a VCF text file is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain text.
    None,
    /// BGZF (gzip-compatible, indexable).
    Bgzf,
}

/// The index written beside a BGZF file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    /// Tabix (`.tbi`), for VCF.
    Tbi,
    /// CSI (`.csi`), for VCF or BCF (and contigs longer than 2^29).
    Csi,
}

/// The options of a VCF/BCF write (`COPY … OPTIONS (…)`).
#[derive(Debug, Clone, PartialEq)]
pub struct WriteOptions {
    /// VCF or BCF.
    pub format: Container,
    /// For VCF: plain or BGZF.
    pub compression: Compression,
    /// The deflate level, 0–9.
    pub level: u8,
    /// An index written beside the file.
    pub index: Option<IndexKind>,
    /// Compression threads.
    pub threads: usize,
    /// Sort the rows by the header's contig order, then position.
    pub sort: bool,
    /// Only these samples, in this order.
    pub samples: Option<Vec<String>>,
    /// INFO tags computed from the written genotypes.
    pub fill_tags: Vec<FillTag>,
    /// Header lines set by options (`info.DP.number`, …).
    pub overrides: HashMap<(Section, String), FieldOverride>,
}

/// What a write carries from the first VCF table its query reads.
#[derive(Debug, Clone)]
pub struct Source {
    /// The header of its first file.
    pub header: Arc<VcfHeader>,
    /// The samples the table reads, in order (the header's samples when no row tells).
    pub samples: Vec<String>,
    /// The contigs its index names, when its header has no `##contig` lines.
    pub index_contigs: Vec<String>,
}

/// The header of rows of `schema` (whose VCF columns are `columns`) holding `samples`.
pub fn header_for(
    schema: &Schema,
    columns: &Columns,
    source: Option<&Source>,
    samples: &[String],
    options: &WriteOptions,
    command: Option<&str>,
) -> Result<OutputHeader, HeaderError> {
    let info: Option<Fields> = columns
        .info
        .and_then(|i| match schema.field(i).data_type() {
            DataType::Struct(f) => Some(f.clone()),
            _ => None,
        });
    let formats: Option<Fields> = columns
        .genotypes
        .and_then(|g| genotype_fields(schema.field(g).data_type()))
        .map(Fields::from);
    header::derive(&HeaderInputs {
        source: source.map(|s| s.header.as_ref()),
        info: info.as_ref(),
        formats: formats.as_ref().filter(|_| !samples.is_empty()),
        samples,
        overrides: Some(&options.overrides),
        fill_tags: &options.fill_tags,
        command,
        index_contigs: source.map_or(&[], |s| s.index_contigs.as_slice()),
        declare_undeclared: options.format == Container::Bcf,
    })
}

/// The option names, for messages.
pub const OPTION_NAMES: &str = "compression, level, index, threads, sort, samples, fill_tags, info.<ID>.number|type|description, format.<ID>.number|type|description";

impl WriteOptions {
    /// The defaults for a target: BCF for `.bcf` (or `STORED AS BCF`), BGZF for `.gz`/`.bgz`.
    pub fn for_target(target: &str, stored_as: Option<&str>) -> Self {
        let lower = target.to_ascii_lowercase();
        let format = match stored_as {
            Some(s) if s.eq_ignore_ascii_case("bcf") => Container::Bcf,
            Some(_) => Container::Vcf,
            None if lower.ends_with(".bcf") => Container::Bcf,
            None => Container::Vcf,
        };
        let compression = if format == Container::Bcf
            || [".gz", ".bgz", ".bgzf"].iter().any(|e| lower.ends_with(e))
        {
            Compression::Bgzf
        } else {
            Compression::None
        };
        WriteOptions {
            format,
            compression,
            level: 6,
            index: None,
            threads: 1,
            sort: false,
            samples: None,
            fill_tags: Vec::new(),
            overrides: HashMap::new(),
        }
    }

    /// Sets one option from its SQL key and value.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let lower = key.to_ascii_lowercase();
        let flag = |v: &str| match v.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" | "on" => Ok(true),
            "false" | "no" | "0" | "off" => Ok(false),
            other => Err(format!("option '{key}' is true or false, not '{other}'")),
        };
        match lower.as_str() {
            "compression" => {
                self.compression = match value.to_ascii_lowercase().as_str() {
                    "none" | "uncompressed" => Compression::None,
                    "bgzf" | "gzip" | "gz" => Compression::Bgzf,
                    other => {
                        return Err(format!("compression is 'bgzf' or 'none', not '{other}'"));
                    }
                }
            }
            "level" => {
                self.level = value
                    .parse::<u8>()
                    .ok()
                    .filter(|l| *l <= 9)
                    .ok_or_else(|| format!("level is 0-9, not '{value}'"))?
            }
            "index" => {
                self.index = match value.to_ascii_lowercase().as_str() {
                    "none" | "false" => None,
                    "tbi" | "tabix" => Some(IndexKind::Tbi),
                    "csi" => Some(IndexKind::Csi),
                    "true" => Some(match self.format {
                        Container::Vcf => IndexKind::Tbi,
                        Container::Bcf => IndexKind::Csi,
                    }),
                    other => return Err(format!("index is 'tbi', 'csi' or 'none', not '{other}'")),
                }
            }
            "threads" => {
                self.threads = value
                    .parse::<usize>()
                    .ok()
                    .filter(|t| (1..=256).contains(t))
                    .ok_or_else(|| format!("threads is 1-256, not '{value}'"))?
            }
            "sort" => self.sort = flag(value)?,
            "samples" => {
                let names: Vec<String> = value
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                if names.is_empty() {
                    return Err("samples is a comma-separated list of sample names".into());
                }
                if let Some(d) = names
                    .iter()
                    .enumerate()
                    .find_map(|(i, n)| names[..i].contains(n).then_some(n))
                {
                    return Err(format!("samples names '{d}' twice"));
                }
                self.samples = Some(names);
            }
            "fill_tags" => {
                let mut tags = Vec::new();
                for t in value.split(',').filter(|t| !t.trim().is_empty()) {
                    let tag = FillTag::parse(t).ok_or_else(|| {
                        format!("fill_tags takes AC, AN and AF, not '{}'", t.trim())
                    })?;
                    if !tags.contains(&tag) {
                        tags.push(tag);
                    }
                }
                self.fill_tags = tags;
            }
            _ => {
                let parts: Vec<&str> = key.splitn(3, '.').collect();
                let (section, id, what) = match parts.as_slice() {
                    [s, id, what] if s.eq_ignore_ascii_case("info") => (Section::Info, *id, *what),
                    [s, id, what] if s.eq_ignore_ascii_case("format") => {
                        (Section::Format, *id, *what)
                    }
                    _ => {
                        return Err(format!("unknown option '{key}' (known: {OPTION_NAMES})"));
                    }
                };
                let over = self.overrides.entry((section, id.to_string())).or_default();
                match what.to_ascii_lowercase().as_str() {
                    "number" if valid_number(value) => over.number = Some(value.to_string()),
                    "number" => {
                        return Err(format!(
                            "{key}: Number is an integer, A, R, G or '.', not '{value}'"
                        ));
                    }
                    "type" if parse_type(value).is_some() => over.ty = Some(value.to_string()),
                    "type" => {
                        return Err(format!(
                            "{key}: Type is Integer, Float, Flag, Character or String, not '{value}'"
                        ));
                    }
                    "description" => over.description = Some(value.to_string()),
                    _ => return Err(format!("unknown option '{key}' (known: {OPTION_NAMES})")),
                }
            }
        }
        Ok(())
    }

    /// Checks that the options go together.
    pub fn check(&self) -> Result<(), String> {
        match (self.format, self.compression, self.index) {
            (Container::Bcf, Compression::None, _) => Err(
                "a BCF file is always BGZF-compressed (compression 'none' is for VCF text)".into(),
            ),
            (Container::Bcf, _, Some(IndexKind::Tbi)) => {
                Err("a BCF file is indexed with CSI (index 'csi'), not tabix".into())
            }
            (Container::Vcf, Compression::None, Some(_)) => Err(
                "an index needs a BGZF-compressed file ('….vcf.gz' or compression 'bgzf')".into(),
            ),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_target() {
        let o = WriteOptions::for_target("out.vcf.gz", None);
        assert_eq!(
            (o.format, o.compression),
            (Container::Vcf, Compression::Bgzf)
        );
        let o = WriteOptions::for_target("out.vcf", None);
        assert_eq!(o.compression, Compression::None);
        let o = WriteOptions::for_target("out.bcf", None);
        assert_eq!(
            (o.format, o.compression),
            (Container::Bcf, Compression::Bgzf)
        );
        let o = WriteOptions::for_target("out.txt", Some("BCF"));
        assert_eq!(o.format, Container::Bcf);
    }

    #[test]
    fn options_are_checked() {
        let mut o = WriteOptions::for_target("out.vcf", None);
        o.set("index", "tbi").unwrap();
        assert!(o.check().unwrap_err().contains("BGZF"));
        assert!(o.set("level", "12").is_err());
        assert!(o.set("fill_tags", "AC,XX").unwrap_err().contains("'XX'"));
        o.set("fill_tags", "an, AC").unwrap();
        assert_eq!(o.fill_tags, [FillTag::An, FillTag::Ac]);
        o.set("info.DP.Number", "A").unwrap();
        o.set("info.DP.description", "depth").unwrap();
        assert_eq!(
            o.overrides[&(Section::Info, "DP".to_string())],
            FieldOverride {
                number: Some("A".into()),
                ty: None,
                description: Some("depth".into())
            }
        );
        assert!(o.set("info.DP.number", "Z").is_err());
        assert!(o.set("format.GT.type", "Text").is_err());
        assert!(
            o.set("bogus", "1")
                .unwrap_err()
                .starts_with("unknown option 'bogus'")
        );
        assert!(o.set("samples", "A,B,A").unwrap_err().contains("'A' twice"));
    }
}
