//! The line editor's helper: context-aware completion and syntax highlighting.
//!
//! Completion offers, by context: file paths inside quotes; the fields of a struct column after
//! `column.` (so `info.` lists the INFO fields of the VCF header); the columns of a table after
//! `table.`; otherwise SQL keywords, registered tables, functions and the columns of the tables
//! named in the statement. Highlighting colours keywords, strings and numbers.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::prelude::SessionContext;
use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};

use crate::vcf::VcfTable;
use crate::vcf::table::has_vcf_extension;

/// SQL keywords offered by completion and coloured by the highlighter.
pub const KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP",
    "BY",
    "ORDER",
    "HAVING",
    "LIMIT",
    "OFFSET",
    "JOIN",
    "LEFT",
    "RIGHT",
    "FULL",
    "INNER",
    "OUTER",
    "CROSS",
    "ON",
    "USING",
    "AS",
    "AND",
    "OR",
    "NOT",
    "IN",
    "IS",
    "NULL",
    "LIKE",
    "ILIKE",
    "BETWEEN",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "DISTINCT",
    "UNION",
    "ALL",
    "EXCEPT",
    "INTERSECT",
    "WITH",
    "ASC",
    "DESC",
    "CREATE",
    "EXTERNAL",
    "TABLE",
    "VIEW",
    "STORED",
    "LOCATION",
    "OPTIONS",
    "DROP",
    "INSERT",
    "INTO",
    "VALUES",
    "COPY",
    "TO",
    "EXPLAIN",
    "ANALYZE",
    "SET",
    "SHOW",
    "DESCRIBE",
    "TRUE",
    "FALSE",
    "CAST",
    "OVER",
    "PARTITION",
    "EXISTS",
    "VCF",
    "PARQUET",
    "CSV",
    "COUNT",
];

/// Completion and highlighting for the shell.
pub struct ShellHelper {
    ctx: SessionContext,
    color: bool,
    files: FilenameCompleter,
    /// Schemas of tables and files named in statements, by name (a file is opened once).
    schemas: Mutex<HashMap<String, Option<SchemaRef>>>,
    /// Tables and files read by the statements run so far, newest last.
    recent: Mutex<Vec<String>>,
}

impl ShellHelper {
    /// A helper completing against `ctx`; `color` turns highlighting on.
    pub fn new(ctx: SessionContext, color: bool) -> Self {
        ShellHelper {
            ctx,
            color,
            files: FilenameCompleter::new(),
            schemas: Mutex::new(HashMap::new()),
            recent: Mutex::new(Vec::new()),
        }
    }

    /// Remembers the tables and files a statement read, for completing later statements.
    pub fn remember(&self, sql: &str) {
        if let Ok(mut recent) = self.recent.lock() {
            for t in Self::tables_in(sql) {
                recent.retain(|r| r != &t);
                recent.push(t);
            }
            let excess = recent.len().saturating_sub(16);
            recent.drain(..excess);
        }
    }

    /// The schema of a registered table or a VCF file path, if it can be found.
    pub fn schema_of(&self, name: &str) -> Option<SchemaRef> {
        if let Ok(cache) = self.schemas.lock()
            && let Some(s) = cache.get(name)
        {
            return s.clone();
        }
        let schema = if has_vcf_extension(name) {
            VcfTable::open(name, Default::default())
                .ok()
                .map(|t| datafusion::catalog::TableProvider::schema(&t))
        } else {
            let ctx = self.ctx.clone();
            let name = name.to_string();
            // catalog look-ups of registered tables do not wait on anything
            futures::executor::block_on(async move {
                ctx.table_provider(name.as_str())
                    .await
                    .ok()
                    .map(|t| t.schema())
            })
        };
        if let Ok(mut cache) = self.schemas.lock() {
            cache.insert(name.to_string(), schema.clone());
        }
        schema
    }

    /// Names of the registered tables.
    pub fn table_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        let state = self.ctx.state();
        for catalog in state.catalog_list().catalog_names() {
            let Some(cat) = state.catalog_list().catalog(&catalog) else {
                continue;
            };
            for schema in cat.schema_names() {
                if schema == "information_schema" {
                    continue;
                }
                if let Some(s) = cat.schema(&schema) {
                    names.extend(s.table_names());
                }
            }
        }
        names.sort();
        names
    }

    /// Names of every function (scalar, aggregate, window, table).
    pub fn function_names(&self) -> BTreeSet<String> {
        let state = self.ctx.state();
        let mut names: BTreeSet<String> = state.scalar_functions().keys().cloned().collect();
        names.extend(state.aggregate_functions().keys().cloned());
        names.extend(state.window_functions().keys().cloned());
        names.extend(state.table_functions().keys().cloned());
        names
    }

    /// Tables and quoted file paths that a statement reads (after FROM or JOIN).
    fn tables_in(line: &str) -> Vec<String> {
        let mut out = Vec::new();
        let tokens: Vec<&str> = line.split_whitespace().collect();
        for w in tokens.windows(2) {
            if w[0].eq_ignore_ascii_case("from") || w[0].eq_ignore_ascii_case("join") {
                let t = w[1].trim_end_matches([';', ',', ')']);
                let t = t.trim_matches('\'').trim_matches('"');
                if !t.is_empty() && !t.starts_with('(') {
                    out.push(t.to_string());
                }
            }
        }
        out
    }

    fn candidates(&self, line: &str, word: &str) -> Vec<String> {
        if let Some((owner, _)) = word.rsplit_once('.') {
            // fields of a struct column (of the statement's tables, or of any table while FROM is
            // not typed yet), or columns of a table
            let mut out = Vec::new();
            let mut tables = Self::tables_in(line);
            if tables.is_empty() {
                tables = self.table_names();
                if let Ok(recent) = self.recent.lock() {
                    tables.extend(recent.iter().rev().cloned());
                }
            }
            for table in tables {
                let Some(schema) = self.schema_of(&table) else {
                    continue;
                };
                if let Ok(field) = schema.field_with_name(owner)
                    && let DataType::Struct(children) = field.data_type()
                {
                    out.extend(children.iter().map(|c| format!("{owner}.{}", c.name())));
                }
            }
            if out.is_empty()
                && let Some(schema) = self.schema_of(owner)
            {
                out.extend(
                    schema
                        .fields()
                        .iter()
                        .map(|f| format!("{owner}.{}", f.name())),
                );
            }
            return out;
        }
        let mut out: Vec<String> = KEYWORDS.iter().map(|k| k.to_string()).collect();
        out.extend(self.table_names());
        out.extend(self.function_names());
        for table in Self::tables_in(line) {
            if let Some(schema) = self.schema_of(&table) {
                out.extend(schema.fields().iter().map(|f| f.name().clone()));
            }
        }
        out
    }
}

/// Whether `pos` is inside a single-quoted string of `line`.
fn in_quotes(line: &str, pos: usize) -> Option<usize> {
    let mut open = None;
    for (i, c) in line[..pos].char_indices() {
        if c == '\'' {
            open = if open.is_some() { None } else { Some(i) };
        }
    }
    open
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        if let Some(quote) = in_quotes(line, pos) {
            let (start, pairs) = self
                .files
                .complete_path(&line[quote + 1..pos], pos - quote - 1)?;
            return Ok((quote + 1 + start, pairs));
        }
        let start = line[..pos]
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_alphanumeric() || *c == '_' || *c == '.'))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let word = &line[start..pos];
        let lower = word.to_lowercase();
        let mut seen = BTreeSet::new();
        let pairs = self
            .candidates(line, word)
            .into_iter()
            .filter(|c| c.to_lowercase().starts_with(&lower))
            .filter(|c| seen.insert(c.clone()))
            .map(|c| Pair {
                display: c.clone(),
                replacement: c,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}

impl Validator for ShellHelper {}

impl Helper for ShellHelper {}

impl Highlighter for ShellHelper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        if !self.color || line.starts_with('\\') {
            return Cow::Borrowed(line);
        }
        Cow::Owned(highlight_sql(line))
    }

    fn highlight_char(&self, _line: &str, _pos: usize, _kind: CmdKind) -> bool {
        self.color
    }
}

const KEYWORD_COLOR: &str = "\x1b[1;34m";
const STRING_COLOR: &str = "\x1b[32m";
const NUMBER_COLOR: &str = "\x1b[33m";
const RESET: &str = "\x1b[0m";

/// Colours SQL keywords, quoted strings and numbers with ANSI escapes.
pub fn highlight_sql(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 32);
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            let start = i;
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            i = (i + 1).min(chars.len());
            out.push_str(STRING_COLOR);
            out.extend(&chars[start..i]);
            out.push_str(RESET);
        } else if c.is_ascii_digit()
            && (i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_'))
        {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            out.push_str(NUMBER_COLOR);
            out.extend(&chars[start..i]);
            out.push_str(RESET);
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let dotted = start > 0 && chars[start - 1] == '.';
            if !dotted && KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(&word)) {
                out.push_str(KEYWORD_COLOR);
                out.push_str(&word);
                out.push_str(RESET);
            } else {
                out.push_str(&word);
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highlights_keywords_strings_numbers() {
        let h = highlight_sql("select 'a' from t where x1 > 10");
        assert!(h.contains(&format!("{KEYWORD_COLOR}select{RESET}")));
        assert!(h.contains(&format!("{STRING_COLOR}'a'{RESET}")));
        assert!(h.contains(&format!("{NUMBER_COLOR}10{RESET}")));
        assert!(
            !h.contains(&format!("{NUMBER_COLOR}1{RESET}")),
            "digits inside names stay plain"
        );
    }

    #[test]
    fn finds_tables_and_quotes() {
        assert_eq!(
            ShellHelper::tables_in("SELECT * FROM 'a.vcf' JOIN b ON"),
            vec!["a.vcf", "b"]
        );
        assert_eq!(in_quotes("SELECT * FROM 'dir/fi", 20), Some(14));
        assert_eq!(in_quotes("SELECT 'x' FROM ", 16), None);
    }
}
