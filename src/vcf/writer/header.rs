//! The header of a written VCF: the source's header carried over, narrowed to what is written,
//! with lines derived for the fields that the SQL added or changed.
//!
//! Carried: every meta line of the source (the first VCF table the query reads) in its order,
//! `##contig`, `##FILTER`, `##ALT` and the rest verbatim (BCF's `IDX=` dropped); an `##INFO` or
//! `##FORMAT` line only while its field is written with the type the line declares. Dropped:
//! lines of fields that are not written, `##SAMPLE` lines of samples that are not. Derived:
//! a line for each written field without a fitting source line, its `Number` and `Type` from
//! the Arrow type (or the field's `vcf.*` metadata, or the statement's options). Added:
//! `##vcfqVersion` and `##vcfqCommand` (the statement).

use std::collections::{HashMap, HashSet};

use datafusion::arrow::datatypes::{DataType, Fields};

use crate::vcf::header::{FieldDef, ValueType, VcfHeader, parse_structured};
use crate::vcf::schema::value_data_type;

/// The scalar kind of a written value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    /// Any integer type.
    Int,
    /// Any floating-point or decimal type.
    Float,
    /// Boolean: an INFO flag.
    Flag,
    /// Any text type.
    Str,
}

/// The shape of a written field: a scalar, or a list of scalars (of a fixed length or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// The kind of each value.
    pub scalar: Scalar,
    /// `None` for one value; `Some(None)` for a list; `Some(Some(n))` for `n` values each.
    pub list: Option<Option<usize>>,
}

fn scalar_of(dt: &DataType) -> Option<Scalar> {
    use DataType::*;
    Some(match dt {
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 => Scalar::Int,
        Float16 | Float32 | Float64 | Decimal32(..) | Decimal64(..) | Decimal128(..)
        | Decimal256(..) => Scalar::Float,
        Boolean => Scalar::Flag,
        Utf8 | LargeUtf8 | Utf8View => Scalar::Str,
        Dictionary(_, value) => return scalar_of(value),
        _ => return None,
    })
}

/// The shape of an Arrow type as a VCF field, or `None` when it cannot be one.
pub fn shape_of(dt: &DataType) -> Option<Shape> {
    match dt {
        DataType::List(f) | DataType::LargeList(f) | DataType::ListView(f) => {
            let scalar = scalar_of(f.data_type())?;
            (scalar != Scalar::Flag).then_some(Shape {
                scalar,
                list: Some(None),
            })
        }
        DataType::FixedSizeList(f, n) => {
            let scalar = scalar_of(f.data_type())?;
            (scalar != Scalar::Flag).then_some(Shape {
                scalar,
                list: Some(Some(*n as usize)),
            })
        }
        other => Some(Shape {
            scalar: scalar_of(other)?,
            list: None,
        }),
    }
}

/// Whether a field declared by `def` holds values of `shape` as vcfq reads them (a list of
/// fixed length counts as a list).
fn fits(def: &FieldDef, shape: Shape) -> bool {
    shape_of(&value_data_type(def)).is_some_and(|declared| {
        declared.scalar == shape.scalar && declared.list.is_some() == shape.list.is_some()
    })
}

/// Which part of the header a field belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Section {
    /// `##INFO`.
    Info,
    /// `##FORMAT`.
    Format,
}

impl Section {
    fn key(self) -> &'static str {
        match self {
            Section::Info => "INFO",
            Section::Format => "FORMAT",
        }
    }
}

/// What the statement's options say about one field's header line (`info.DP.number 'A'`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldOverride {
    /// `Number=`.
    pub number: Option<String>,
    /// `Type=`.
    pub ty: Option<String>,
    /// `Description=`.
    pub description: Option<String>,
}

/// The INFO tags that a write can compute from the written genotypes (`fill_tags`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FillTag {
    /// Alternate allele counts (`Number=A`).
    Ac,
    /// Called alleles (`Number=1`).
    An,
    /// Alternate allele frequencies, AC / AN (`Number=A`).
    Af,
}

impl FillTag {
    /// The INFO ID.
    pub fn id(self) -> &'static str {
        match self {
            FillTag::Ac => "AC",
            FillTag::An => "AN",
            FillTag::Af => "AF",
        }
    }

    /// Parses `AC`, `AN` or `AF` (any case).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "AC" => Some(FillTag::Ac),
            "AN" => Some(FillTag::An),
            "AF" => Some(FillTag::Af),
            _ => None,
        }
    }

    fn line(self) -> &'static str {
        match self {
            FillTag::Ac => {
                "##INFO=<ID=AC,Number=A,Type=Integer,Description=\"Allele count in genotypes\">"
            }
            FillTag::An => {
                "##INFO=<ID=AN,Number=1,Type=Integer,Description=\"Total number of alleles in called genotypes\">"
            }
            FillTag::Af => {
                "##INFO=<ID=AF,Number=A,Type=Float,Description=\"Allele frequency from the genotypes: AC / AN\">"
            }
        }
    }
}

/// What the header of a write is made from.
#[derive(Debug, Clone, Default)]
pub struct HeaderInputs<'a> {
    /// The header of the first VCF table the query reads, if any.
    pub source: Option<&'a VcfHeader>,
    /// The fields of the written `info` struct (`None`: no `info` column).
    pub info: Option<&'a Fields>,
    /// The FORMAT fields of the written `genotypes` entries, `sample` left out.
    pub formats: Option<&'a Fields>,
    /// The written samples, in column order.
    pub samples: &'a [String],
    /// Header lines set by the statement's options, by section and ID.
    pub overrides: Option<&'a HashMap<(Section, String), FieldOverride>>,
    /// INFO tags computed from the genotypes.
    pub fill_tags: &'a [FillTag],
    /// The statement, for `##vcfqCommand`.
    pub command: Option<&'a str>,
    /// Contigs named by the source's index (htslib names contigs from it when the header has
    /// no `##contig` lines): written as `##contig` lines when the source header lacks them.
    pub index_contigs: &'a [String],
    /// Whether fields the source used without declaring them get derived lines (BCF needs
    /// every key in its dictionary); otherwise they stay undeclared, as in the source, so
    /// that tools read them as they read the source.
    pub declare_undeclared: bool,
}

/// A derived header: its text, through the `#CHROM` line and its newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputHeader {
    /// The header text.
    pub text: String,
    /// The `##contig` IDs, in header order (the order a sorted output follows).
    pub contigs: Vec<String>,
}

/// Why a header cannot be derived.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// A field's Arrow type has no VCF form.
    #[error(
        "{section} field '{id}' has type {ty}, which a VCF cannot hold (integers, floats, text, booleans for INFO flags, or lists of them)"
    )]
    Unwritable {
        /// INFO or FORMAT.
        section: &'static str,
        /// The field.
        id: String,
        /// Its Arrow type.
        ty: String,
    },
}

/// The line of a field of `section`: from `def` (or derived from `shape`), with `over` applied.
fn field_line(
    section: Section,
    id: &str,
    def: Option<&FieldDef>,
    shape: Shape,
    over: Option<&FieldOverride>,
) -> String {
    let (mut number, mut ty, mut description) = match def {
        Some(d) => (
            d.number.to_string(),
            d.ty.to_string(),
            d.description.clone(),
        ),
        None => {
            let number = match shape.list {
                None if shape.scalar == Scalar::Flag => "0".to_string(),
                None => "1".to_string(),
                Some(Some(n)) => n.to_string(),
                Some(None) => ".".to_string(),
            };
            let ty = match shape.scalar {
                Scalar::Int => "Integer",
                Scalar::Float => "Float",
                Scalar::Flag => "Flag",
                Scalar::Str => "String",
            };
            (number, ty.to_string(), "Written by vcfq".to_string())
        }
    };
    if let Some(o) = over {
        if let Some(n) = &o.number {
            number = n.clone();
        }
        if let Some(t) = &o.ty {
            ty = t.clone();
        }
        if let Some(d) = &o.description {
            description = d.clone();
        }
    }
    let description = description.replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        "##{}=<ID={id},Number={number},Type={ty},Description=\"{description}\">",
        section.key()
    )
}

/// The definition a field's Arrow metadata carries (a field read from a VCF, or from Parquet
/// written from one), when it fits the field's shape.
fn def_from_metadata(
    id: &str,
    metadata: &HashMap<String, String>,
    shape: Shape,
) -> Option<FieldDef> {
    let number = metadata.get("vcf.number")?;
    let ty = metadata.get("vcf.type")?;
    if metadata.get("vcf.declared").is_some_and(|d| d == "false") {
        return None;
    }
    let text = format!(
        "##INFO=<ID={id},Number={number},Type={ty},Description=\"{}\">\n#CHROM\n",
        metadata
            .get("vcf.description")
            .map(|d| d.replace('\\', "\\\\").replace('"', "\\\""))
            .unwrap_or_default()
    );
    let def = VcfHeader::parse_text(&text).ok()?.infos.pop()?;
    fits(&def, shape).then_some(def)
}

/// The `##KEY=<…>` parts of a meta line: its key and the ID of its structured value.
fn key_and_id(line: &str) -> Option<(&str, String)> {
    let meta = line.strip_prefix("##")?;
    let (key, value) = meta.split_once('=')?;
    let body = value.strip_prefix('<')?;
    let body = body.strip_suffix('>').unwrap_or(body);
    let id = parse_structured(body)
        .into_iter()
        .find(|(k, _)| k == "ID")
        .map(|(_, v)| v)?;
    Some((key, id))
}

/// `line` without BCF's `,IDX=n` (a VCF header has no dictionary indices).
fn without_idx(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find(",IDX=") {
        let digits = rest[at + 5..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        let after = &rest[at + 5 + digits..];
        out.push_str(&rest[..at]);
        if digits == 0 || !(after.starts_with(',') || after.starts_with('>')) {
            out.push_str(",IDX=");
            rest = &rest[at + 5..];
        } else {
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The fields of a section to write, with their shapes.
fn shapes(section: Section, fields: Option<&Fields>) -> Result<Vec<(String, Shape)>, HeaderError> {
    let Some(fields) = fields else {
        return Ok(Vec::new());
    };
    fields
        .iter()
        .map(|f| {
            let shape = shape_of(f.data_type())
                .filter(|s| !(section == Section::Format && s.scalar == Scalar::Flag))
                .ok_or_else(|| HeaderError::Unwritable {
                    section: section.key(),
                    id: f.name().clone(),
                    ty: f.data_type().to_string(),
                })?;
            Ok((f.name().clone(), shape))
        })
        .collect()
}

/// Derives the header of a write.
pub fn derive(inputs: &HeaderInputs<'_>) -> Result<OutputHeader, HeaderError> {
    let info = shapes(Section::Info, inputs.info)?;
    let formats = shapes(Section::Format, inputs.formats)?;
    let filled: HashSet<&str> = inputs.fill_tags.iter().map(|t| t.id()).collect();
    let overridden = |section: Section, id: &str| {
        inputs
            .overrides
            .and_then(|o| o.get(&(section, id.to_string())))
    };
    let samples: HashSet<&str> = inputs.samples.iter().map(String::as_str).collect();
    let mut lines: Vec<String> = Vec::new();
    let mut carried: HashSet<(Section, String)> = HashSet::new();
    let mut file_format = "##fileformat=VCFv4.2".to_string();
    let mut contigs = Vec::new();
    if let Some(source) = inputs.source {
        for line in &source.meta_lines {
            if line.starts_with("##fileformat=") {
                file_format = line.clone();
                continue;
            }
            let Some((key, id)) = key_and_id(line) else {
                lines.push(line.clone());
                continue;
            };
            let section = match key {
                "INFO" => Section::Info,
                "FORMAT" => Section::Format,
                "SAMPLE" => {
                    if samples.contains(id.as_str()) {
                        lines.push(line.clone());
                    }
                    continue;
                }
                "contig" => {
                    contigs.push(id);
                    lines.push(without_idx(line));
                    continue;
                }
                _ => {
                    lines.push(without_idx(line));
                    continue;
                }
            };
            let (written, def) = match section {
                Section::Info => (&info, source.info(&id)),
                Section::Format => (&formats, source.format(&id)),
            };
            if section == Section::Info && filled.contains(id.as_str()) {
                continue;
            }
            let Some(&(_, shape)) = written.iter().find(|(name, _)| *name == id) else {
                continue;
            };
            let Some(def) = def.filter(|d| fits(d, shape)) else {
                continue;
            };
            if !carried.insert((section, id.clone())) {
                continue;
            }
            match overridden(section, &id) {
                Some(over) => lines.push(field_line(section, &id, Some(def), shape, Some(over))),
                None => lines.push(without_idx(line)),
            }
        }
    }
    let declare_undeclared = inputs.declare_undeclared;
    for name in inputs.index_contigs {
        if !contigs.contains(name) {
            lines.push(format!("##contig=<ID={name}>"));
            contigs.push(name.clone());
        }
    }
    let derived = |lines: &mut Vec<String>,
                   section: Section,
                   written: &[(String, Shape)],
                   fields: Option<&Fields>| {
        for (i, (id, shape)) in written.iter().enumerate() {
            if carried.contains(&(section, id.clone()))
                || (section == Section::Info && filled.contains(id.as_str()))
            {
                continue;
            }
            let metadata = fields.map(|f| f[i].metadata().clone()).unwrap_or_default();
            if !declare_undeclared
                && metadata.get("vcf.declared").is_some_and(|d| d == "false")
                && overridden(section, id).is_none()
            {
                continue;
            }
            let def = def_from_metadata(id, &metadata, *shape);
            lines.push(field_line(
                section,
                id,
                def.as_ref(),
                *shape,
                overridden(section, id),
            ));
        }
    };
    derived(&mut lines, Section::Info, &info, inputs.info);
    for tag in inputs.fill_tags {
        lines.push(tag.line().to_string());
    }
    derived(&mut lines, Section::Format, &formats, inputs.formats);
    lines.push(format!("##vcfqVersion={}", env!("CARGO_PKG_VERSION")));
    if let Some(command) = inputs.command {
        let one_line: Vec<&str> = command.split_whitespace().collect();
        lines.push(format!("##vcfqCommand={}", one_line.join(" ")));
    }
    let mut text = String::new();
    text.push_str(&file_format);
    text.push('\n');
    for line in &lines {
        text.push_str(line);
        text.push('\n');
    }
    text.push_str("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO");
    if !inputs.samples.is_empty() {
        text.push_str("\tFORMAT");
        for s in inputs.samples {
            text.push('\t');
            text.push_str(s);
        }
    }
    text.push('\n');
    Ok(OutputHeader { text, contigs })
}

/// The ValueType a `Type=` text names, for checking an override.
pub fn parse_type(s: &str) -> Option<ValueType> {
    match s {
        "Integer" => Some(ValueType::Integer),
        "Float" => Some(ValueType::Float),
        "Flag" => Some(ValueType::Flag),
        "Character" => Some(ValueType::Character),
        "String" => Some(ValueType::String),
        _ => None,
    }
}

/// Whether a `Number=` text is one the VCF specification allows.
pub fn valid_number(s: &str) -> bool {
    matches!(s, "A" | "R" | "G" | ".") || s.parse::<usize>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::Field;
    use std::sync::Arc;

    const SOURCE: &str = "##fileformat=VCFv4.3\n##FILTER=<ID=PASS,Description=\"All filters passed\",IDX=0>\n##INFO=<ID=DP,Number=1,Type=Integer,Description=\"Depth\",IDX=1>\n##INFO=<ID=AF,Number=A,Type=Float,Description=\"Freq\">\n##INFO=<ID=DB,Number=0,Type=Flag,Description=\"dbSNP\">\n##FORMAT=<ID=GT,Number=1,Type=String,Description=\"Genotype\">\n##FORMAT=<ID=AD,Number=R,Type=Integer,Description=\"Depths\">\n##contig=<ID=chr1,length=100>\n##contig=<ID=chr2>\n##SAMPLE=<ID=S1,Assay=WGS>\n##SAMPLE=<ID=S2,Assay=WGS>\n##source=test\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\tS2\n";

    fn list(dt: DataType) -> DataType {
        DataType::List(Arc::new(Field::new_list_field(dt, true)))
    }

    #[test]
    fn carries_the_source_and_narrows_it() {
        let source = VcfHeader::parse_text(SOURCE).unwrap();
        // DP changed to a float in SQL, AF kept, DB dropped, a new list field
        let info: Fields = vec![
            Field::new("DP", DataType::Float64, true),
            Field::new("AF", list(DataType::Float64), true),
            Field::new("NEW", list(DataType::Int64), true),
        ]
        .into();
        let formats: Fields = vec![Field::new("GT", DataType::Utf8, true)].into();
        let samples = vec!["S2".to_string()];
        let header = derive(&HeaderInputs {
            source: Some(&source),
            info: Some(&info),
            formats: Some(&formats),
            samples: &samples,
            command: Some("COPY (SELECT *\n  FROM t) TO 'o.vcf'"),
            ..Default::default()
        })
        .unwrap();
        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(
            header.text,
            format!(
                "##fileformat=VCFv4.3\n##FILTER=<ID=PASS,Description=\"All filters passed\">\n##INFO=<ID=AF,Number=A,Type=Float,Description=\"Freq\">\n##FORMAT=<ID=GT,Number=1,Type=String,Description=\"Genotype\">\n##contig=<ID=chr1,length=100>\n##contig=<ID=chr2>\n##SAMPLE=<ID=S2,Assay=WGS>\n##source=test\n##INFO=<ID=DP,Number=1,Type=Float,Description=\"Written by vcfq\">\n##INFO=<ID=NEW,Number=.,Type=Integer,Description=\"Written by vcfq\">\n##vcfqVersion={version}\n##vcfqCommand=COPY (SELECT * FROM t) TO 'o.vcf'\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS2\n"
            )
        );
        assert_eq!(header.contigs, ["chr1", "chr2"]);
    }

    #[test]
    fn derives_everything_without_a_source() {
        let info: Fields = vec![
            Field::new("FLAG", DataType::Boolean, true),
            Field::new("N", DataType::UInt8, true),
            Field::new(
                "PAIR",
                DataType::FixedSizeList(
                    Arc::new(Field::new_list_field(DataType::Float32, true)),
                    2,
                ),
                true,
            ),
            Field::new("S", DataType::Utf8View, true),
        ]
        .into();
        let mut overrides = HashMap::new();
        overrides.insert(
            (Section::Info, "N".to_string()),
            FieldOverride {
                number: Some("A".into()),
                description: Some("a \"count\"".into()),
                ..Default::default()
            },
        );
        let header = derive(&HeaderInputs {
            info: Some(&info),
            overrides: Some(&overrides),
            fill_tags: &[FillTag::An],
            ..Default::default()
        })
        .unwrap();
        let lines: Vec<&str> = header.text.lines().collect();
        assert_eq!(lines[0], "##fileformat=VCFv4.2");
        assert_eq!(
            lines[1..6],
            [
                "##INFO=<ID=FLAG,Number=0,Type=Flag,Description=\"Written by vcfq\">",
                "##INFO=<ID=N,Number=A,Type=Integer,Description=\"a \\\"count\\\"\">",
                "##INFO=<ID=PAIR,Number=2,Type=Float,Description=\"Written by vcfq\">",
                "##INFO=<ID=S,Number=1,Type=String,Description=\"Written by vcfq\">",
                FillTag::An.line(),
            ]
        );
        assert_eq!(
            lines.last().unwrap(),
            &"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"
        );
    }

    #[test]
    fn field_metadata_keeps_the_numbers_of_a_field_read_from_a_vcf() {
        let meta: HashMap<String, String> = [
            ("vcf.number", "R"),
            ("vcf.type", "Integer"),
            ("vcf.description", "per \"allele\""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let formats: Fields =
            vec![Field::new("AD", list(DataType::Int32), true).with_metadata(meta)].into();
        let header = derive(&HeaderInputs {
            formats: Some(&formats),
            samples: &["A".to_string()],
            ..Default::default()
        })
        .unwrap();
        assert!(
            header.text.contains(
                "##FORMAT=<ID=AD,Number=R,Type=Integer,Description=\"per \\\"allele\\\"\">\n"
            ),
            "{}",
            header.text
        );
    }

    #[test]
    fn rejects_what_a_vcf_cannot_hold() {
        let info: Fields = vec![Field::new("D", DataType::Date32, true)].into();
        let err = derive(&HeaderInputs {
            info: Some(&info),
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("INFO field 'D' has type Date32"),
            "{err}"
        );
        let formats: Fields = vec![Field::new("B", DataType::Boolean, true)].into();
        assert!(
            derive(&HeaderInputs {
                formats: Some(&formats),
                ..Default::default()
            })
            .is_err(),
            "FORMAT has no flags"
        );
    }

    #[test]
    fn idx_is_removed_only_where_it_is_a_dictionary_index() {
        assert_eq!(
            without_idx("##contig=<ID=1,length=5,IDX=3>"),
            "##contig=<ID=1,length=5>"
        );
        assert_eq!(
            without_idx("##INFO=<ID=X,Description=\"a,IDX=b\">"),
            "##INFO=<ID=X,Description=\"a,IDX=b\">"
        );
    }
}
