//! The shell's table display: column names with their types, cells cut to fit the terminal,
//! at most `maxrows` rows with a note when there are more.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

/// Widest a column may be before its cells are cut.
const MAX_CELL: usize = 40;

/// A short name for a type, as shown under a column name.
pub fn type_name(t: &DataType) -> String {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text".into(),
        DataType::Int8 | DataType::Int16 | DataType::Int32 => "int".into(),
        DataType::Int64 => "bigint".into(),
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => "uint".into(),
        DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Boolean => "bool".into(),
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            format!("{}[]", type_name(f.data_type()))
        }
        DataType::Struct(_) => "struct".into(),
        DataType::Dictionary(_, v) => type_name(v),
        other => other.to_string().to_lowercase(),
    }
}

fn cut(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(width.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Renders the first rows of a result as an aligned table that fits `width` columns of text.
/// `total` is the number of rows the query returned, when known (`None`: more than shown).
pub fn render(
    schema: &Schema,
    batches: &[RecordBatch],
    width: usize,
    total: Option<usize>,
) -> Result<String, ArrowError> {
    let options = FormatOptions::default().with_null("NULL");
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let types: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| type_name(f.data_type()))
        .collect();
    let mut rows: Vec<Vec<String>> = Vec::new();
    for batch in batches {
        let fmts: Vec<ArrayFormatter> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<_, _>>()?;
        for r in 0..batch.num_rows() {
            rows.push(
                fmts.iter()
                    .map(|f| f.value(r).to_string().replace(['\n', '\t'], " "))
                    .collect(),
            );
        }
    }
    let mut widths: Vec<usize> = (0..names.len())
        .map(|c| {
            let cells = rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0);
            cells
                .max(names[c].chars().count())
                .max(types[c].chars().count())
                .min(MAX_CELL)
        })
        .collect();
    // keep the columns that fit; say how many do not
    let mut shown = 0;
    let mut used = 1;
    for w in &widths {
        if used + w + 3 > width.max(20) && shown > 0 {
            break;
        }
        used += w + 3;
        shown += 1;
    }
    widths.truncate(shown);
    let hidden = names.len() - shown;
    let line = |l: char, m: char, r: char| -> String {
        let mut s = String::new();
        s.push(l);
        for (i, w) in widths.iter().enumerate() {
            s.push_str(&"─".repeat(w + 2));
            s.push(if i + 1 == widths.len() { r } else { m });
        }
        s
    };
    let row = |cells: &[String]| -> String {
        let mut s = String::from("│");
        for (i, w) in widths.iter().enumerate() {
            let c = cut(&cells[i], *w);
            s.push_str(&format!(" {c:<w$} │", w = *w));
        }
        s
    };
    let mut out = String::new();
    out.push_str(&line('┌', '┬', '┐'));
    out.push('\n');
    out.push_str(&row(&names));
    out.push('\n');
    out.push_str(&row(&types));
    out.push('\n');
    out.push_str(&line('├', '┼', '┤'));
    out.push('\n');
    for r in &rows {
        out.push_str(&row(r));
        out.push('\n');
    }
    out.push_str(&line('└', '┴', '┘'));
    out.push('\n');
    let count = match total {
        Some(n) if n == rows.len() => format!("{n} row{}", if n == 1 { "" } else { "s" }),
        Some(n) => format!("{n} rows ({} shown)", rows.len()),
        None => format!(
            "more than {} rows ({} shown; \\maxrows N shows more)",
            rows.len(),
            rows.len()
        ),
    };
    out.push_str(&count);
    if hidden > 0 {
        out.push_str(&format!(
            ", {hidden} column{} not shown",
            if hidden == 1 { "" } else { "s" }
        ));
    }
    out.push('\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::Field;
    use std::sync::Arc;

    #[test]
    fn renders_types_and_cuts_to_width() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("chrom", DataType::Utf8, true),
            Field::new("pos", DataType::Int64, true),
            Field::new("note", DataType::Utf8, true),
        ]));
        let long = "x".repeat(100);
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec![Some("chr1"), None])),
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec![long.as_str(), "y"])),
            ],
        )
        .unwrap();
        let text = render(&schema, &[batch.clone()], 200, Some(2)).unwrap();
        assert!(text.contains("│ chrom │ pos    │"), "{text}");
        assert!(text.contains("│ text  │ bigint │"), "{text}");
        assert!(text.contains("│ NULL  │ 2      │"), "{text}");
        assert!(text.contains('…'));
        assert!(text.ends_with("2 rows\n"));
        let narrow = render(&schema, &[batch], 30, None).unwrap();
        assert!(narrow.contains("1 column not shown"), "{narrow}");
        assert!(narrow.contains("more than 2 rows"), "{narrow}");
    }
}
