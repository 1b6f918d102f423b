//! Header → Arrow schema: the column contract of DESIGN.md §3.
//!
//! Wide layout (one row per record): `chrom, pos, id, ref, alt, qual, filter, info`, then
//! `genotypes` (one list entry per sample) when the file has samples.
//! Long layout (`vcf_genotypes`, one row per record × sample): `chrom, pos, ref, alt, sample`,
//! then one column per FORMAT field; `sample` and `GT` are dictionary-encoded text.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};

use super::header::{FieldDef, ValueType, VcfHeader};

/// Which shape of table a scan produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    /// One row per VCF record; samples in the `genotypes` list column.
    Wide,
    /// One row per record × sample (`vcf_genotypes`).
    Long,
}

/// Names of the fixed columns of the wide layout, in order.
pub const WIDE_CORE: [&str; 8] = ["chrom", "pos", "id", "ref", "alt", "qual", "filter", "info"];
/// Name of the per-sample list column of the wide layout.
pub const GENOTYPES: &str = "genotypes";
/// Name of the sample column (inside `genotypes`, and in the long layout).
pub const SAMPLE: &str = "sample";

/// The Arrow type of one INFO/FORMAT field, from its header definition.
///
/// Integer → Int32, Float → Float64, Flag → Boolean, String/Character → Utf8; `Number=1` (or a
/// flag) is a scalar, every other Number a List whose `.` elements are NULL. GT is always text.
pub fn value_data_type(def: &FieldDef) -> DataType {
    if def.id == "GT" {
        return DataType::Utf8;
    }
    let scalar = match def.ty {
        ValueType::Integer => DataType::Int32,
        ValueType::Float => DataType::Float64,
        ValueType::Flag => return DataType::Boolean,
        ValueType::Character | ValueType::String => DataType::Utf8,
    };
    if def.number.is_scalar() {
        scalar
    } else {
        DataType::List(Arc::new(Field::new_list_field(scalar, true)))
    }
}

fn field_for(def: &FieldDef) -> Field {
    let mut meta = HashMap::new();
    meta.insert("vcf.number".to_string(), def.number.to_string());
    meta.insert("vcf.type".to_string(), def.ty.to_string());
    meta.insert("vcf.description".to_string(), def.description.clone());
    if !def.declared {
        meta.insert("vcf.declared".to_string(), "false".to_string());
    }
    // Flags are false when absent; everything else may be missing.
    let nullable = def.ty != ValueType::Flag || def.id == "GT";
    Field::new(def.id.clone(), value_data_type(def), nullable).with_metadata(meta)
}

/// The fields of the `info` struct, one per INFO definition (declared first, then undeclared).
pub fn info_fields(infos: &[FieldDef]) -> Fields {
    infos.iter().map(field_for).collect()
}

/// The FORMAT fields as columns (long layout) or struct members (wide layout).
pub fn format_fields(formats: &[FieldDef]) -> Vec<Field> {
    formats.iter().map(field_for).collect()
}

/// Text whose few distinct values are stored once per batch: `sample` and `GT` of the long
/// layout (a cohort has thousands of samples but a handful of distinct calls). It displays and
/// compares as text.
pub fn dictionary_text() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// The FORMAT columns of the long layout: as [`format_fields`], with GT dictionary-encoded.
pub fn long_format_fields(formats: &[FieldDef]) -> Vec<Field> {
    formats
        .iter()
        .map(|d| {
            let f = field_for(d);
            if d.id == "GT" && f.data_type() == &DataType::Utf8 {
                f.with_data_type(dictionary_text())
            } else {
                f
            }
        })
        .collect()
}

fn list_of_utf8() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)))
}

/// The struct type of one entry of the `genotypes` list.
pub fn genotype_struct(formats: &[FieldDef]) -> DataType {
    let mut fields = vec![Field::new(SAMPLE, DataType::Utf8, false)];
    fields.extend(format_fields(formats));
    DataType::Struct(fields.into())
}

/// The table schema of a file with this header, INFO and FORMAT definitions (declared and
/// undeclared), in the given layout. Header facts travel in the schema metadata.
pub fn table_schema(
    header: &VcfHeader,
    infos: &[FieldDef],
    formats: &[FieldDef],
    layout: Layout,
) -> SchemaRef {
    let mut fields = Vec::new();
    match layout {
        Layout::Wide => {
            fields.push(Field::new("chrom", DataType::Utf8, false));
            fields.push(Field::new("pos", DataType::Int64, false));
            fields.push(Field::new("id", DataType::Utf8, true));
            fields.push(Field::new("ref", DataType::Utf8, false));
            fields.push(Field::new("alt", list_of_utf8(), true));
            fields.push(Field::new("qual", DataType::Float64, true));
            fields.push(Field::new("filter", list_of_utf8(), true));
            fields.push(Field::new(
                "info",
                DataType::Struct(info_fields(infos)),
                false,
            ));
            if !header.samples.is_empty() {
                let item = Field::new_list_field(genotype_struct(formats), false);
                fields.push(Field::new(GENOTYPES, DataType::List(Arc::new(item)), true));
            }
        }
        Layout::Long => {
            fields.push(Field::new("chrom", DataType::Utf8, false));
            fields.push(Field::new("pos", DataType::Int64, false));
            fields.push(Field::new("ref", DataType::Utf8, false));
            fields.push(Field::new("alt", list_of_utf8(), true));
            fields.push(Field::new(SAMPLE, dictionary_text(), false));
            fields.extend(long_format_fields(formats));
        }
    }
    Arc::new(Schema::new_with_metadata(fields, schema_metadata(header)))
}

/// Header facts as schema metadata: `vcf.fileformat`, `vcf.samples` and `vcf.contigs`
/// (tab-separated), `vcf.filters` (tab-separated IDs).
pub fn schema_metadata(header: &VcfHeader) -> HashMap<String, String> {
    let mut meta = HashMap::new();
    if let Some(ff) = &header.file_format {
        meta.insert("vcf.fileformat".to_string(), ff.clone());
    }
    meta.insert("vcf.samples".to_string(), header.samples.join("\t"));
    let contigs: Vec<String> = header
        .contigs
        .iter()
        .map(|c| match c.length {
            Some(l) => format!("{}:{l}", c.id),
            None => c.id.clone(),
        })
        .collect();
    meta.insert("vcf.contigs".to_string(), contigs.join("\t"));
    let filters: Vec<&str> = header.filters.iter().map(|(id, _)| id.as_str()).collect();
    meta.insert("vcf.filters".to_string(), filters.join("\t"));
    meta
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(id: &str, number: &str, ty: &str) -> FieldDef {
        let text =
            format!("##INFO=<ID={id},Number={number},Type={ty},Description=\"d\">\n#CHROM\tPOS\n");
        VcfHeader::parse_text(&text).unwrap().infos.remove(0)
    }

    #[test]
    fn maps_number_and_type() {
        assert_eq!(value_data_type(&def("DP", "1", "Integer")), DataType::Int32);
        assert_eq!(value_data_type(&def("MQ", "1", "Float")), DataType::Float64);
        assert_eq!(value_data_type(&def("DB", "0", "Flag")), DataType::Boolean);
        assert_eq!(value_data_type(&def("C", "1", "Character")), DataType::Utf8);
        let af = value_data_type(&def("AF", "A", "Float"));
        assert_eq!(
            af,
            DataType::List(Arc::new(Field::new_list_field(DataType::Float64, true)))
        );
        for n in ["R", "G", ".", "2", "-1"] {
            assert!(
                matches!(value_data_type(&def("X", n, "Integer")), DataType::List(_)),
                "Number={n}"
            );
        }
        assert_eq!(
            value_data_type(&def("GT", "1", "Integer")),
            DataType::Utf8,
            "GT is always text"
        );
    }

    #[test]
    fn wide_and_long_columns() {
        let h = VcfHeader::parse_text(
            "##INFO=<ID=AF,Number=A,Type=Float,Description=\"x\">\n##FORMAT=<ID=GT,Number=1,Type=String,Description=\"g\">\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n",
        )
        .unwrap();
        let wide = table_schema(&h, &h.infos, &h.formats, Layout::Wide);
        let names: Vec<&str> = wide.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(
            names,
            [
                "chrom",
                "pos",
                "id",
                "ref",
                "alt",
                "qual",
                "filter",
                "info",
                "genotypes"
            ]
        );
        assert_eq!(wide.metadata()["vcf.samples"], "S1");
        let long = table_schema(&h, &h.infos, &h.formats, Layout::Long);
        let names: Vec<&str> = long.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["chrom", "pos", "ref", "alt", "sample", "GT"]);
        let info = wide.field_with_name("info").unwrap();
        let DataType::Struct(children) = info.data_type() else {
            panic!("info is a struct")
        };
        assert_eq!(children[0].metadata()["vcf.description"], "x");
    }
}
