//! The VCF header, parsed leniently the way bcftools reads real files.
//!
//! Only the parts that shape the table are interpreted (`##fileformat`, `##INFO`, `##FORMAT`,
//! `##FILTER`, `##contig` and the `#CHROM` line); every other meta line is kept verbatim so
//! that `vcf_header()` can show it. Malformed meta lines are tolerated (kept as text), as
//! htslib does; a missing `#CHROM` line is an error because without it the columns are unknown.

use std::fmt;

/// How many values a field holds (the header's `Number=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Number {
    /// A fixed count (`Number=1`, `Number=0` for flags, `Number=2`, …).
    Count(usize),
    /// One value per alternate allele (`A`).
    A,
    /// One value per allele, reference included (`R`).
    R,
    /// One value per possible genotype (`G`).
    G,
    /// Unknown or varying (`.`), and anything not understood (negative numbers, 4.5's `P`, `LA`…).
    Unknown(String),
}

impl Number {
    fn parse(s: &str) -> Self {
        match s {
            "A" => Number::A,
            "R" => Number::R,
            "G" => Number::G,
            _ => s
                .parse::<usize>()
                .map(Number::Count)
                .unwrap_or_else(|_| Number::Unknown(s.to_string())),
        }
    }

    /// Whether a field with this number holds exactly one value per record (or sample).
    pub fn is_scalar(&self) -> bool {
        matches!(self, Number::Count(1))
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Number::Count(n) => write!(f, "{n}"),
            Number::A => f.write_str("A"),
            Number::R => f.write_str("R"),
            Number::G => f.write_str("G"),
            Number::Unknown(s) => f.write_str(s),
        }
    }
}

/// The value type of an INFO or FORMAT field (the header's `Type=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// `Integer`, read as Int32.
    Integer,
    /// `Float`, read as Float64 (so that decimal text compares as written: `0.1000 > 0.1` is false).
    Float,
    /// `Flag`, read as Boolean.
    Flag,
    /// `Character`, read as text.
    Character,
    /// `String` (and any type not understood), read as text.
    String,
}

impl ValueType {
    fn parse(s: &str) -> Self {
        match s {
            "Integer" => ValueType::Integer,
            "Float" => ValueType::Float,
            "Flag" => ValueType::Flag,
            "Character" => ValueType::Character,
            _ => ValueType::String,
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValueType::Integer => "Integer",
            ValueType::Float => "Float",
            ValueType::Flag => "Flag",
            ValueType::Character => "Character",
            ValueType::String => "String",
        })
    }
}

/// One `##INFO` or `##FORMAT` definition.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDef {
    /// The field's ID, spelled as in the header.
    pub id: String,
    /// `Number=`.
    pub number: Number,
    /// `Type=`.
    pub ty: ValueType,
    /// `Description=` without its quotes.
    pub description: String,
    /// False for fields found in records but not declared in the header (read as text).
    pub declared: bool,
}

impl FieldDef {
    /// A field used in the records without a header line: text, one value (or a flag when it has no value).
    pub fn undeclared(id: &str, has_value: bool) -> Self {
        FieldDef {
            id: id.to_string(),
            number: if has_value {
                Number::Count(1)
            } else {
                Number::Count(0)
            },
            ty: if has_value {
                ValueType::String
            } else {
                ValueType::Flag
            },
            description: "not declared in the header".to_string(),
            declared: false,
        }
    }
}

/// One `##contig` line.
#[derive(Debug, Clone, PartialEq)]
pub struct Contig {
    /// The contig's name.
    pub id: String,
    /// `length=`, when given.
    pub length: Option<u64>,
}

/// A parsed VCF header.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VcfHeader {
    /// `##fileformat=` (e.g. `VCFv4.3`), when present.
    pub file_format: Option<String>,
    /// `##INFO` definitions in header order (first definition wins for duplicate IDs).
    pub infos: Vec<FieldDef>,
    /// `##FORMAT` definitions in header order.
    pub formats: Vec<FieldDef>,
    /// `##FILTER` IDs and descriptions.
    pub filters: Vec<(String, String)>,
    /// `##contig` lines.
    pub contigs: Vec<Contig>,
    /// Sample names from the `#CHROM` line.
    pub samples: Vec<String>,
    /// Every other meta line as (key, value).
    pub other: Vec<(String, String)>,
    /// Every `##` meta line as written (without its line terminator), in header order: what
    /// a VCF writer carries over.
    pub meta_lines: Vec<String>,
    /// Number of header lines (the first record is on line `line_count + 1`).
    pub line_count: usize,
}

/// Why a header could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The input holds no bytes at all.
    #[error("empty file, not a VCF")]
    Empty,
    /// The first line is not a `##` meta line or `#CHROM` line.
    #[error("line 1: not a VCF header (expected '##fileformat=VCFv4.x' or '#CHROM')")]
    NotVcf,
    /// The header ends without a `#CHROM` line.
    #[error("line {0}: header has no '#CHROM' line")]
    NoChromLine(usize),
}

impl VcfHeader {
    /// Reads a header from its lines (each without the line terminator), stopping after `#CHROM`.
    ///
    /// `lines` yields `(text, is_last)`; the parser asks for lines until it sees `#CHROM`.
    pub fn parse_lines<'a, I>(lines: I) -> Result<Self, HeaderError>
    where
        I: IntoIterator<Item = &'a str>,
    {
        let mut header = VcfHeader::default();
        let mut seen_any = false;
        for line in lines {
            let line = line.strip_suffix('\r').unwrap_or(line);
            header.line_count += 1;
            if !seen_any {
                seen_any = true;
                if !line.starts_with('#') {
                    return Err(HeaderError::NotVcf);
                }
            }
            if line.starts_with("#CHROM") {
                header.parse_chrom_line(line);
                return Ok(header);
            }
            if let Some(meta) = line.strip_prefix("##") {
                header.meta_lines.push(line.to_string());
                header.add_meta(meta);
            } else if line.is_empty() {
                continue;
            } else {
                return Err(HeaderError::NoChromLine(header.line_count));
            }
        }
        if seen_any {
            Err(HeaderError::NoChromLine(header.line_count))
        } else {
            Err(HeaderError::Empty)
        }
    }

    /// Parses a complete header text (as produced by a VCF writer).
    pub fn parse_text(text: &str) -> Result<Self, HeaderError> {
        Self::parse_lines(text.lines())
    }

    fn parse_chrom_line(&mut self, line: &str) {
        // Real files sometimes separate the fixed columns with spaces; sample names may contain spaces.
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.len() > 9 {
            self.samples = fields[9..].iter().map(|s| s.to_string()).collect();
        }
    }

    fn add_meta(&mut self, meta: &str) {
        let Some((key, value)) = meta.split_once('=') else {
            self.other.push((meta.to_string(), String::new()));
            return;
        };
        let structured = value
            .strip_prefix('<')
            .map(|v| v.strip_suffix('>').unwrap_or(v));
        match (key, structured) {
            ("fileformat", _) => self.file_format = Some(value.to_string()),
            ("INFO" | "FORMAT", Some(body)) => {
                let kv = parse_structured(body);
                let get = |k: &str| kv.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
                let Some(id) = get("ID").filter(|id| !id.is_empty()) else {
                    self.other.push((key.to_string(), value.to_string()));
                    return;
                };
                let def = FieldDef {
                    id: id.to_string(),
                    number: Number::parse(get("Number").unwrap_or(".")),
                    ty: ValueType::parse(get("Type").unwrap_or("String")),
                    description: get("Description").unwrap_or("").to_string(),
                    declared: true,
                };
                let list = if key == "INFO" {
                    &mut self.infos
                } else {
                    &mut self.formats
                };
                if !list.iter().any(|d| d.id == def.id) {
                    list.push(def);
                }
            }
            ("FILTER", Some(body)) => {
                let kv = parse_structured(body);
                let get = |k: &str| kv.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
                if let Some(id) = get("ID") {
                    self.filters
                        .push((id, get("Description").unwrap_or_default()));
                }
            }
            ("contig", Some(body)) => {
                let kv = parse_structured(body);
                let get = |k: &str| kv.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
                if let Some(id) = get("ID") {
                    let length = get("length").and_then(|l| l.parse().ok());
                    self.contigs.push(Contig { id, length });
                }
            }
            _ => self.other.push((key.to_string(), value.to_string())),
        }
    }

    /// The INFO definition with this ID.
    pub fn info(&self, id: &str) -> Option<&FieldDef> {
        self.infos.iter().find(|d| d.id == id)
    }

    /// The FORMAT definition with this ID.
    pub fn format(&self, id: &str) -> Option<&FieldDef> {
        self.formats.iter().find(|d| d.id == id)
    }
}

/// Splits the inside of `<ID=x,Number=1,Description="a, \"b\"">` into key/value pairs.
pub fn parse_structured(body: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = body.chars().peekable();
    loop {
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            key.push(c);
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                value.push(n);
                            }
                        }
                        '"' => break,
                        _ => value.push(c),
                    }
                }
                // skip anything up to the next separator
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    chars.next();
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
            }
        }
        let key = key.trim().to_string();
        if !key.is_empty() {
            out.push((key, value));
        }
        if chars.next().is_none() {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "##fileformat=VCFv4.3\r\n##INFO=<ID=AF,Number=A,Type=Float,Description=\"Allele \\\"frequency\\\", per ALT\">\n##INFO=<ID=DB,Number=0,Type=Flag,Description=\"dbSNP\">\n##INFO=<ID=AF,Number=1,Type=Integer,Description=\"dup\">\n##FORMAT=<ID=GT,Number=1,Type=String,Description=\"Genotype\">\n##FILTER=<ID=q10,Description=\"Quality below 10\">\n##contig=<ID=chr1,length=248956422>\n##source=test\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tNA 1\tNA2\n";

    #[test]
    fn parses_definitions_and_samples() {
        let h = VcfHeader::parse_text(TEXT).unwrap();
        assert_eq!(h.file_format.as_deref(), Some("VCFv4.3"));
        assert_eq!(h.infos.len(), 2, "duplicate AF is ignored");
        assert_eq!(h.infos[0].number, Number::A);
        assert_eq!(h.infos[0].ty, ValueType::Float);
        assert_eq!(h.infos[0].description, "Allele \"frequency\", per ALT");
        assert_eq!(h.infos[1].ty, ValueType::Flag);
        assert_eq!(h.formats[0].id, "GT");
        assert_eq!(
            h.filters,
            vec![("q10".to_string(), "Quality below 10".to_string())]
        );
        assert_eq!(
            h.contigs,
            vec![Contig {
                id: "chr1".into(),
                length: Some(248956422)
            }]
        );
        assert_eq!(h.samples, vec!["NA 1", "NA2"]);
        assert_eq!(h.other, vec![("source".to_string(), "test".to_string())]);
        assert_eq!(h.line_count, 9);
    }

    #[test]
    fn rejects_headers_without_chrom_line() {
        assert_eq!(VcfHeader::parse_text(""), Err(HeaderError::Empty));
        assert_eq!(
            VcfHeader::parse_text("##fileformat=VCFv4.2\n"),
            Err(HeaderError::NoChromLine(1))
        );
        assert_eq!(
            VcfHeader::parse_text("##fileformat=VCFv4.2\n1\t2\n"),
            Err(HeaderError::NoChromLine(2))
        );
        assert_eq!(VcfHeader::parse_text("chr1\t1\n"), Err(HeaderError::NotVcf));
    }

    #[test]
    fn odd_numbers_are_kept_as_unknown() {
        let h = VcfHeader::parse_text(
            "##FORMAT=<ID=X,Number=-1,Type=Integer,Description=\"\">\n#CHROM\tPOS\n",
        )
        .unwrap();
        assert_eq!(h.formats[0].number, Number::Unknown("-1".into()));
        assert!(!h.formats[0].number.is_scalar());
    }
}
