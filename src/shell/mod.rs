//! The interactive shell: multi-line SQL, history, completion, meta-commands, cancellation.
//!
//! Statements are read until a `;` (the prompt changes to `   -> ` on continuation lines),
//! checked by the SQL parser (a syntax error is reported with its position before anything
//! runs), then executed; Ctrl-C while a query runs cancels it (dropping its stream stops the
//! VCF readers) and returns to the prompt. History lives in the user's data directory; an rc
//! file (`~/.vcfqrc`, or `vcfqrc` in the config directory) runs at start-up.

pub mod command;
pub mod helper;
pub mod progress;

use std::fs::File;
use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::time::Instant;

use datafusion::prelude::SessionContext;
use datafusion::sql::parser::DFParser;
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{CompletionType, Config, Editor};
use std::sync::Arc;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;

use self::command::{HELP, MetaCommand};
use self::helper::ShellHelper;
use crate::output::OutputFormat;
use crate::output::table::type_name;
use crate::run::{Printing, Statement};
use crate::script::split_statements;

/// Shell settings from the command line.
#[derive(Debug, Clone)]
pub struct ShellOptions {
    /// Colour the input and prompts.
    pub color: bool,
    /// The initial output format.
    pub format: OutputFormat,
    /// Rows shown at most in table format (`\maxrows`).
    pub max_rows: usize,
}

/// Where results go.
enum Sink {
    Terminal,
    File(File),
}

struct Shell {
    ctx: SessionContext,
    format: OutputFormat,
    max_rows: usize,
    timing: bool,
    sink: Sink,
    last_error: Option<String>,
    /// Woken by SIGINT while a query runs (Ctrl-C at the prompt is read as a key by the editor).
    cancel: Arc<Notify>,
    width: usize,
}

/// `$XDG_DATA_HOME/vcfq/history` (or `~/.local/share/vcfq/history`).
pub fn history_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(base.join("vcfq").join("history"))
}

/// The rc file: `~/.vcfqrc`, else `$XDG_CONFIG_HOME/vcfq/vcfqrc` (or `~/.config/vcfq/vcfqrc`).
pub fn rc_path() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    if let Some(h) = &home
        && h.join(".vcfqrc").is_file()
    {
        return Some(h.join(".vcfqrc"));
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| home.map(|h| h.join(".config")))?;
    Some(config.join("vcfq").join("vcfqrc")).filter(|p| p.is_file())
}

/// Whether a statement buffer is complete: it ends with `;` outside quotes and comments.
pub fn is_complete(buffer: &str) -> bool {
    let statements = split_statements(buffer);
    let trimmed = strip_trailing_comments(buffer);
    !statements.is_empty() && trimmed.ends_with(';') && !in_open_quote(buffer)
}

fn strip_trailing_comments(buffer: &str) -> &str {
    let mut end = buffer.trim_end();
    while let Some(i) = end.rfind("--") {
        let line_start = end[..i].rfind('\n').map_or(0, |n| n + 1);
        if end[line_start..i].contains('\'') {
            break;
        }
        end = end[..i].trim_end();
    }
    end
}

fn in_open_quote(buffer: &str) -> bool {
    let mut single = false;
    let mut double = false;
    for c in buffer.chars() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            _ => {}
        }
    }
    single || double
}

/// Runs the shell until `\q` or Ctrl-D.
pub async fn run(ctx: SessionContext, options: ShellOptions) -> anyhow::Result<()> {
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .auto_add_history(false)
        .build();
    let mut editor: Editor<ShellHelper, DefaultHistory> = Editor::with_config(config)?;
    editor.set_helper(Some(ShellHelper::new(ctx.clone(), options.color)));
    let history = history_path();
    if let Some(h) = &history {
        if let Some(dir) = h.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = editor.load_history(h);
    }
    let width = editor.dimensions().map_or(120, |(w, _)| w as usize);
    let mut shell = Shell {
        ctx,
        format: options.format,
        max_rows: options.max_rows,
        timing: true,
        sink: Sink::Terminal,
        last_error: None,
        cancel: sigint_watcher()?,
        width,
    };
    println!(
        "vcfq {} — SQL over VCF/BCF files. \\? for help, \\q to quit.",
        env!("CARGO_PKG_VERSION")
    );
    if let Some(rc) = rc_path() {
        shell.run_file(&rc).await;
    }
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() {
            "vcfq> "
        } else {
            "   -> "
        };
        match editor.readline(prompt) {
            Ok(line) => {
                if line.trim_start().starts_with('\\') {
                    let _ = editor.add_history_entry(line.trim());
                    if let Some(h) = &history {
                        let _ = editor.append_history(h);
                    }
                    if !shell.meta(line.trim()).await {
                        break;
                    }
                    continue;
                }
                if buffer.is_empty() && line.trim().is_empty() {
                    continue;
                }
                buffer.push_str(&line);
                buffer.push('\n');
                if !is_complete(&buffer) {
                    continue;
                }
                let text = std::mem::take(&mut buffer);
                let _ = editor.add_history_entry(text.trim());
                if let Some(h) = &history {
                    let _ = editor.append_history(h);
                }
                for st in split_statements(&text) {
                    shell.statement(&st.sql).await;
                    if let Some(h) = editor.helper() {
                        h.remember(&st.sql);
                    }
                }
            }
            Err(ReadlineError::Interrupted) => {
                // Ctrl-C at the prompt drops the statement being typed
                buffer.clear();
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

impl Shell {
    fn error(&mut self, message: String, verbose: String) {
        eprintln!("error: {}", message.replace('\n', " "));
        self.last_error = Some(verbose);
    }

    /// Runs one statement; errors are printed, never fatal.
    async fn statement(&mut self, sql: &str) {
        // report syntax errors before running anything
        if let Err(e) = DFParser::parse_sql(sql) {
            self.error(format!("syntax: {e}"), format!("{e:?}"));
            return;
        }
        let start = Instant::now();
        let cancel = Arc::clone(&self.cancel);
        let cancelled = cancel.notified();
        tokio::pin!(cancelled);
        // listen from now on: a Ctrl-C before this statement does not cancel it
        cancelled.as_mut().enable();
        let outcome = tokio::select! {
            r = tracing::Instrument::instrument(
                self.execute(sql),
                crate::telemetry::statement_span(sql),
            ) => Some(r),
            _ = cancelled => None,
        };
        match outcome {
            None => eprintln!("cancelled after {:.2} s", start.elapsed().as_secs_f64()),
            Some(Ok(summary)) => {
                let timing = if self.timing {
                    format!("({:.3} s)", start.elapsed().as_secs_f64())
                } else {
                    String::new()
                };
                match summary {
                    Some(s) => eprintln!("{s} {timing}"),
                    None if self.timing => eprintln!("{timing}"),
                    None => {}
                }
            }
            Some(Err(e)) => {
                let verbose = format!("{e:?}");
                self.error(crate::error::one_line(&e), verbose);
            }
        }
    }

    /// Executes a statement and prints its result; returns a summary line for stderr.
    async fn execute(&mut self, sql: &str) -> anyhow::Result<Option<String>> {
        let statement = Statement::plan(&self.ctx, sql).await?;
        let _progress = io::stderr()
            .is_terminal()
            .then(|| progress::Progress::start(Arc::clone(statement.physical_plan())));
        if statement.schema().fields().is_empty() {
            statement
                .print(&mut io::sink(), &Printing::default())
                .await?;
            return Ok(Some("ok".to_string()));
        }
        let terminal = matches!(self.sink, Sink::Terminal);
        let printing = Printing {
            format: self.format,
            width: terminal.then(|| terminal_width().unwrap_or(self.width)),
            max_rows: self.max_rows,
            more_hint: "\\maxrows N shows more",
        };
        let written = match &mut self.sink {
            Sink::Terminal => statement.print(&mut io::stdout().lock(), &printing).await?,
            Sink::File(f) => statement.print(f, &printing).await?,
        };
        if self.format == OutputFormat::Table && terminal {
            // the table's foot counts the rows
            return Ok(None);
        }
        let rows = written.rows;
        Ok(Some(format!(
            "{rows} row{}",
            if rows == 1 { "" } else { "s" }
        )))
    }

    /// Runs a meta-command; false means leave the shell.
    async fn meta(&mut self, line: &str) -> bool {
        let cmd = match command::parse(line) {
            Ok(c) => c,
            Err(e) => {
                self.error(e.clone(), e);
                return true;
            }
        };
        match cmd {
            MetaCommand::Quit => return false,
            MetaCommand::Help => print!("{HELP}"),
            MetaCommand::ListTables => self.statement("SELECT table_catalog, table_schema, table_name, table_type FROM information_schema.tables WHERE table_schema <> 'information_schema' ORDER BY table_name").await,
            MetaCommand::Describe(name) => self.describe(&name).await,
            MetaCommand::Functions(pattern) => self.functions(pattern.as_deref()),
            MetaCommand::Timing(v) => {
                self.timing = v.unwrap_or(!self.timing);
                println!("timing is {}", if self.timing { "on" } else { "off" });
            }
            MetaCommand::Format(f) => self.format = f,
            MetaCommand::MaxRows(n) => self.max_rows = n,
            MetaCommand::Include(path) => self.run_file(&path).await,
            MetaCommand::Output(None) => self.sink = Sink::Terminal,
            MetaCommand::Output(Some(path)) => match File::create(&path) {
                Ok(f) => self.sink = Sink::File(f),
                Err(e) => self.error(format!("{}: cannot write: {e}", path.display()), e.to_string()),
            },
            MetaCommand::ErrVerbose => match &self.last_error {
                Some(e) => println!("{e}"),
                None => println!("no error yet"),
            },
        }
        true
    }

    async fn run_file(&mut self, path: &Path) {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                for st in split_statements(&text) {
                    if st.sql.starts_with('\\') {
                        Box::pin(self.meta(&st.sql)).await;
                    } else {
                        Box::pin(self.statement(&st.sql)).await;
                    }
                }
            }
            Err(e) => self.error(
                format!("{}: cannot read: {e}", path.display()),
                e.to_string(),
            ),
        }
    }

    async fn describe(&mut self, name: &str) {
        let helper = ShellHelper::new(self.ctx.clone(), false);
        let Some(schema) = helper.schema_of(name) else {
            self.error(
                format!("no table or VCF file named '{name}'"),
                String::new(),
            );
            return;
        };
        let mut out = String::new();
        for f in schema.fields() {
            out.push_str(&format!("{:<24} {}\n", f.name(), type_name(f.data_type())));
            let children = match f.data_type() {
                datafusion::arrow::datatypes::DataType::Struct(c) => Some((".", c.clone())),
                datafusion::arrow::datatypes::DataType::List(item) => match item.data_type() {
                    datafusion::arrow::datatypes::DataType::Struct(c) => Some(("[].", c.clone())),
                    _ => None,
                },
                _ => None,
            };
            if let Some((sep, children)) = children {
                for c in children.iter() {
                    let desc = c
                        .metadata()
                        .get("vcf.description")
                        .map(String::as_str)
                        .unwrap_or("");
                    let number = c
                        .metadata()
                        .get("vcf.number")
                        .map(|n| format!("Number={n} "))
                        .unwrap_or_default();
                    out.push_str(&format!(
                        "  {:<22} {:<12} {number}{desc}\n",
                        format!("{}{sep}{}", f.name(), c.name()),
                        type_name(c.data_type())
                    ));
                }
            }
        }
        // a Lance table's vector indexes
        if let Ok(provider) = self.ctx.table_provider(name).await
            && let Some(table) = provider.downcast_ref::<crate::lance::LanceTable>()
        {
            let indexes = match table.dataset().await {
                Ok(d) => crate::lance::index::indexes_of(name, &d).await,
                Err(e) => Err(e),
            };
            match indexes {
                Ok(list) if list.is_empty() => out.push_str("vector indexes: none\n"),
                Ok(list) => {
                    out.push_str("vector indexes:\n");
                    for i in list {
                        out.push_str(&format!("  {i}\n"));
                    }
                }
                Err(e) => out.push_str(&format!("vector indexes: {e}\n")),
            }
        }
        print!("{out}");
    }

    fn functions(&self, pattern: Option<&str>) {
        let state = self.ctx.state();
        let mut lines = Vec::new();
        let syntax = |name: &str, doc: Option<&datafusion::logical_expr::Documentation>| {
            doc.map(|d| d.syntax_example.clone())
                .unwrap_or_else(|| format!("{name}(…)"))
        };
        for (name, f) in state.scalar_functions() {
            lines.push((name.clone(), "scalar", syntax(name, f.documentation())));
        }
        for (name, f) in state.aggregate_functions() {
            lines.push((name.clone(), "aggregate", syntax(name, f.documentation())));
        }
        for (name, f) in state.window_functions() {
            lines.push((name.clone(), "window", syntax(name, f.documentation())));
        }
        for name in state.table_functions().keys() {
            lines.push((name.clone(), "table", format!("{name}(…)")));
        }
        lines.sort();
        for (name, kind, sig) in lines {
            if pattern.is_none_or(|p| name.contains(p)) {
                println!("{name:<28} {kind:<10} {sig}");
            }
        }
    }
}

/// Watches SIGINT on a thread and runtime of its own, so that a Ctrl-C is noticed at once even
/// while every worker of the query runtime is busy computing.
fn sigint_watcher() -> anyhow::Result<Arc<Notify>> {
    let notify = Arc::new(Notify::new());
    let waker = Arc::clone(&notify);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    std::thread::spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(r) => r,
            Err(e) => {
                let _ = ready_tx.send(Err(e.to_string()));
                return;
            }
        };
        runtime.block_on(async move {
            match signal(SignalKind::interrupt()) {
                Ok(mut sigint) => {
                    let _ = ready_tx.send(Ok(()));
                    while sigint.recv().await.is_some() {
                        waker.notify_waiters();
                    }
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                }
            }
        })
    });
    // wait (briefly) until SIGINT is handled, so that Ctrl-C never kills the shell
    ready_rx
        .recv()?
        .map_err(|e| anyhow::anyhow!("cannot handle Ctrl-C: {e}"))?;
    Ok(notify)
}

/// The terminal's width in columns, when standard output is a terminal.
pub fn terminal_width() -> Option<usize> {
    rustix::termios::tcgetwinsize(io::stdout())
        .ok()
        .map(|w| usize::from(w.ws_col))
        .filter(|w| *w > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_end_with_a_semicolon() {
        assert!(!is_complete("SELECT 1"));
        assert!(is_complete("SELECT 1;"));
        assert!(is_complete("SELECT 1; -- done"));
        assert!(!is_complete("SELECT ';"));
        assert!(!is_complete("SELECT 1 -- ;"));
        assert!(is_complete("SELECT\n 1\n;"));
    }
}
