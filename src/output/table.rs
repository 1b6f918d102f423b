//! The table display, for every front end: column names with their types, written batch by
//! batch as results arrive. Column widths come from the names, the types and the first batch;
//! a later cell that is wider is cut (`…`). On a terminal, cells are at most [`MAX_CELL`]
//! characters and columns that do not fit its width are left out (the footer says how many);
//! `max_rows` stops the output (and the query) after that many rows.

use std::io::Write;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

use super::io_err;

/// Widest a column may be on a terminal before its cells are cut.
pub const MAX_CELL: usize = 40;

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
        DataType::List(f) | DataType::LargeList(f) => format!("{}[]", type_name(f.data_type())),
        // vectors show their length, as they are declared (`FLOAT[384]`)
        DataType::FixedSizeList(f, n) => format!("{}[{n}]", type_name(f.data_type())),
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

/// How a table is laid out.
#[derive(Debug, Clone, Default)]
pub struct TableOptions {
    /// The terminal's width: columns that do not fit are left out and cells are at most
    /// [`MAX_CELL`] characters. `None` (a file, a pipe): every column, cells as wide as the
    /// widest of the first batch.
    pub width: Option<usize>,
    /// Rows shown at most (0: all).
    pub max_rows: usize,
    /// What the footer suggests when rows were left out (`\maxrows N shows more`).
    pub more_hint: &'static str,
}

/// Whether the writer wants more rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wants {
    /// Send the next batch.
    More,
    /// `max_rows` are shown; the rest is not wanted.
    Enough,
}

/// Writes a result as a table, batch by batch.
#[derive(Debug)]
pub struct TableWriter {
    schema: SchemaRef,
    options: TableOptions,
    /// Column widths and the number of columns shown, fixed by the first batch.
    layout: Option<(Vec<usize>, usize)>,
    rows: usize,
    /// Rows exist beyond those shown.
    more: bool,
}

impl TableWriter {
    /// A table of `schema`'s columns.
    pub fn new(schema: SchemaRef, options: TableOptions) -> Self {
        TableWriter {
            schema,
            options,
            layout: None,
            rows: 0,
            more: false,
        }
    }

    /// Rows shown so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Whether rows were left out because of `max_rows`.
    pub fn truncated(&self) -> bool {
        self.more
    }

    fn cells(batch: &RecordBatch) -> Result<Vec<Vec<String>>, ArrowError> {
        let options = FormatOptions::default().with_null("NULL");
        let fmts: Vec<ArrayFormatter> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<_, _>>()?;
        Ok((0..batch.num_rows())
            .map(|r| {
                fmts.iter()
                    .map(|f| f.value(r).to_string().replace(['\n', '\t'], " "))
                    .collect()
            })
            .collect())
    }

    /// Fixes the widths from the names, types and `rows`, and writes the head of the table.
    fn start(&mut self, out: &mut dyn Write, rows: &[Vec<String>]) -> Result<(), ArrowError> {
        let names: Vec<String> = self
            .schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let types: Vec<String> = self
            .schema
            .fields()
            .iter()
            .map(|f| type_name(f.data_type()))
            .collect();
        let cap = if self.options.width.is_some() {
            MAX_CELL
        } else {
            usize::MAX
        };
        let widths: Vec<usize> = (0..names.len())
            .map(|c| {
                let cells = rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0);
                cells
                    .max(names[c].chars().count())
                    .max(types[c].chars().count())
                    .min(cap)
            })
            .collect();
        // keep the columns that fit; the footer says how many do not
        let shown = match self.options.width {
            None => widths.len(),
            Some(width) => {
                let mut shown = 0;
                let mut used = 1;
                for w in &widths {
                    if used + w + 3 > width.max(20) && shown > 0 {
                        break;
                    }
                    used += w + 3;
                    shown += 1;
                }
                shown
            }
        };
        self.layout = Some((widths, shown));
        let mut text = self.line('┌', '┬', '┐');
        text.push_str(&self.row(&names));
        text.push_str(&self.row(&types));
        text.push_str(&self.line('├', '┼', '┤'));
        out.write_all(text.as_bytes()).map_err(io_err)
    }

    fn line(&self, l: char, m: char, r: char) -> String {
        let Some((widths, shown)) = &self.layout else {
            return String::new();
        };
        let mut s = String::new();
        s.push(l);
        for (i, w) in widths[..*shown].iter().enumerate() {
            s.push_str(&"─".repeat(w + 2));
            s.push(if i + 1 == *shown { r } else { m });
        }
        s.push('\n');
        s
    }

    fn row(&self, cells: &[String]) -> String {
        let Some((widths, shown)) = &self.layout else {
            return String::new();
        };
        let mut s = String::from("│");
        for (w, cell) in widths[..*shown].iter().zip(cells) {
            let c = cut(cell, *w);
            s.push_str(&format!(" {c:<w$} │", w = *w));
        }
        s.push('\n');
        s
    }

    /// Writes the rows of a batch (up to `max_rows` in all).
    pub fn write(&mut self, out: &mut dyn Write, batch: &RecordBatch) -> Result<Wants, ArrowError> {
        if self.more {
            return Ok(Wants::Enough);
        }
        if batch.num_rows() == 0 {
            return Ok(Wants::More);
        }
        let limit = match self.options.max_rows {
            0 => usize::MAX,
            n => n,
        };
        if self.rows >= limit {
            self.more = true;
            return Ok(Wants::Enough);
        }
        let take = batch.num_rows().min(limit - self.rows);
        let rows = Self::cells(&batch.slice(0, take))?;
        if self.layout.is_none() {
            self.start(out, &rows)?;
        }
        let mut text = String::new();
        for r in &rows {
            text.push_str(&self.row(r));
        }
        out.write_all(text.as_bytes()).map_err(io_err)?;
        self.rows += take;
        if take < batch.num_rows() {
            self.more = true;
            return Ok(Wants::Enough);
        }
        Ok(Wants::More)
    }

    /// Writes the foot of the table: its last line, the row count and the columns left out.
    pub fn finish(&mut self, out: &mut dyn Write) -> Result<(), ArrowError> {
        if self.schema.fields().is_empty() {
            return Ok(());
        }
        if self.layout.is_none() {
            self.start(out, &[])?;
        }
        let mut text = self.line('└', '┴', '┘');
        let n = self.rows;
        text.push_str(&if self.more {
            let hint = self.options.more_hint;
            if hint.is_empty() {
                format!("more than {n} rows ({n} shown)")
            } else {
                format!("more than {n} rows ({n} shown; {hint})")
            }
        } else {
            format!("{n} row{}", if n == 1 { "" } else { "s" })
        });
        if let Some((widths, shown)) = &self.layout {
            let hidden = widths.len() - shown;
            if hidden > 0 {
                text.push_str(&format!(
                    ", {hidden} column{} not shown",
                    if hidden == 1 { "" } else { "s" }
                ));
            }
        }
        text.push('\n');
        out.write_all(text.as_bytes()).map_err(io_err)?;
        out.flush().map_err(io_err)
    }
}

/// A table of all of `batches` at once (for tests and small results).
pub fn render(
    schema: &Schema,
    batches: &[RecordBatch],
    options: TableOptions,
) -> Result<String, ArrowError> {
    let mut out = Vec::new();
    let mut table = TableWriter::new(std::sync::Arc::new(schema.clone()), options);
    for b in batches {
        if table.write(&mut out, b)? == Wants::Enough {
            break;
        }
    }
    table.finish(&mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::Field;
    use std::sync::Arc;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("chrom", DataType::Utf8, true),
            Field::new("pos", DataType::Int64, true),
            Field::new("note", DataType::Utf8, true),
        ]))
    }

    fn batch(notes: Vec<&str>) -> RecordBatch {
        let n = notes.len();
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(StringArray::from(
                    (0..n)
                        .map(|i| (i > 0).then_some("chr1"))
                        .collect::<Vec<_>>(),
                )),
                Arc::new(Int64Array::from((0..n as i64).collect::<Vec<_>>())),
                Arc::new(StringArray::from(notes)),
            ],
        )
        .unwrap()
    }

    #[test]
    fn renders_types_and_cuts_to_the_terminal() {
        let long = "x".repeat(100);
        let b = batch(vec![long.as_str(), "y"]);
        let terminal = TableOptions {
            width: Some(200),
            ..Default::default()
        };
        let text = render(&b.schema(), std::slice::from_ref(&b), terminal).unwrap();
        assert!(text.contains("│ chrom │ pos    │"), "{text}");
        assert!(text.contains("│ text  │ bigint │"), "{text}");
        assert!(text.contains("│ NULL  │ 0      │"), "{text}");
        assert!(text.contains('…'));
        assert!(text.ends_with("2 rows\n"), "{text}");
        let narrow = TableOptions {
            width: Some(30),
            max_rows: 1,
            more_hint: "\\maxrows N shows more",
        };
        let text = render(&b.schema(), std::slice::from_ref(&b), narrow).unwrap();
        assert!(text.contains("1 column not shown"), "{text}");
        assert!(
            text.contains("more than 1 rows (1 shown; \\maxrows N shows more)"),
            "{text}"
        );
        // not a terminal: whole cells
        let text = render(&b.schema(), &[b], TableOptions::default()).unwrap();
        assert!(text.contains(&long), "{text}");
    }

    #[test]
    fn later_batches_keep_the_first_batch_widths() {
        let mut out = Vec::new();
        let mut t = TableWriter::new(schema(), TableOptions::default());
        t.write(&mut out, &batch(vec!["ab"])).unwrap();
        let head = out.len();
        t.write(&mut out, &batch(vec!["abcdef"])).unwrap();
        t.finish(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        // the header was written before the second batch, and its cell was cut to fit
        assert!(text[..head].contains("│ ab   │"), "{text}");
        assert!(text[head..].contains("│ abc… │"), "{text}");
        assert!(text.ends_with("2 rows\n"));
    }

    #[test]
    fn max_rows_exactly_at_a_batch_end_needs_the_next_batch() {
        let mut out = Vec::new();
        let mut t = TableWriter::new(
            schema(),
            TableOptions {
                max_rows: 2,
                ..Default::default()
            },
        );
        assert_eq!(
            t.write(&mut out, &batch(vec!["a", "b"])).unwrap(),
            Wants::More
        );
        assert!(!t.truncated());
        assert_eq!(t.write(&mut out, &batch(vec!["c"])).unwrap(), Wants::Enough);
        assert!(t.truncated());
        t.finish(&mut out).unwrap();
        assert!(
            String::from_utf8(out)
                .unwrap()
                .ends_with("more than 2 rows (2 shown)\n")
        );
    }

    #[test]
    fn an_empty_result_still_shows_its_columns() {
        let text = render(&schema(), &[], TableOptions::default()).unwrap();
        assert!(text.contains("│ chrom │ pos    │ note │"), "{text}");
        assert!(text.ends_with("0 rows\n"));
    }
}
