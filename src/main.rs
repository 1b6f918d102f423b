//! The `vcfq` command: the interactive shell (no arguments, on a terminal), `-c SQL`,
//! `-f script.sql`, SQL piped on stdin, `vcfq serve` (Flight SQL), `vcfq scheduler` and
//! `vcfq executor` (a Ballista cluster), `vcfq hash-password` and `vcfq gen`.
//!
//! Exit codes: 0 success, 1 a statement failed (the message names the script line, file or
//! object), 2 bad command-line usage.

use std::io::{self, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use datafusion::prelude::SessionContext;
use vcfq::output::OutputFormat;
use vcfq::run::{Printing, Statement};
use vcfq::script::split_statements;

/// SQL over VCF/BCF files.
#[derive(Parser, Debug)]
#[command(
    name = "vcfq",
    version,
    about = "SQL over VCF/BCF files, built on Apache DataFusion"
)]
struct Cli {
    /// Run these SQL statements (several `;`-separated statements are allowed; repeatable).
    #[arg(short = 'c', long = "command", value_name = "SQL")]
    commands: Vec<String>,
    /// Run the statements of these script files in order; stop at the first error.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Output format: table, csv, tsv, json, ndjson, markdown or vcf (records with the header of
    /// the VCF the query reads).
    #[arg(long, default_value = "table", value_parser = parse_format)]
    format: OutputFormat,
    /// Table format: show at most N rows of each result and stop its query there (0: all;
    /// the shell's default is 40).
    #[arg(long, value_name = "N")]
    maxrows: Option<usize>,
    /// A session setting, as `SET key = value` would make it (repeatable):
    /// `--set vcf.on_error=skip`, `--set datafusion.execution.target_partitions=4`.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_setting)]
    settings: Vec<(String, String)>,
    /// Do not print warnings (undeclared fields, values read as NULL, skipped lines).
    #[arg(short, long)]
    quiet: bool,
    /// No syntax highlighting in the shell (it is off anyway when output is not a terminal).
    #[arg(long)]
    no_color: bool,
    /// Send a trace of each statement (with a span per operator) to the OpenTelemetry
    /// collector that the OTEL_* variables name (`OTEL_EXPORTER_OTLP_ENDPOINT`, by default
    /// http://localhost:4317 over gRPC); with `serve`, a trace per Flight SQL call.
    #[arg(long, global = true)]
    trace: bool,
    /// Run queries on the Ballista cluster whose scheduler (`vcfq scheduler`) is at this
    /// address (`df://host:port`); the files they read must be at the same paths on its
    /// executors (a shared filesystem).
    #[arg(long, value_name = "URL")]
    cluster: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write a realistic generated VCF (BGZF when OUTPUT ends in .gz/.bgz).
    Gen {
        /// Output file.
        output: PathBuf,
        /// Number of records.
        #[arg(long, default_value_t = 10_000)]
        records: u64,
        /// Number of samples (0: sites only).
        #[arg(long, default_value_t = 0)]
        samples: usize,
        /// Seed of the generator (same seed, same file).
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Serve the engine over Arrow Flight SQL (ADBC, JDBC/DBeaver, any Flight SQL client).
    Serve {
        /// Address to listen on (port 0 picks a free port); overrides the config file's.
        #[arg(long)]
        addr: Option<std::net::SocketAddr>,
        /// TOML config: users, roles, file roots, TLS, tables registered at start, limits,
        /// audit (see the README).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// A directory whose files clients may read (repeatable; added to the config's
        /// `[files] read`). Without any, clients reach no file by path.
        #[arg(long, value_name = "DIR")]
        read_root: Vec<PathBuf>,
        /// A directory clients may write files into with `COPY … TO` (repeatable).
        #[arg(long, value_name = "DIR")]
        write_root: Vec<PathBuf>,
    },
    /// Print an Argon2 hash of the password read from stdin, for a server config's [[users]].
    HashPassword,
    /// A Ballista scheduler that runs vcfq's queries on `vcfq executor`s (`--cluster` sends
    /// queries to it). Prints `df://HOST:PORT` once it listens.
    Scheduler {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        bind_host: String,
        /// Port (0 picks a free one).
        #[arg(long, default_value_t = vcfq::cluster::DEFAULT_SCHEDULER_PORT)]
        port: u16,
        /// The host name executors and clients reach it by (default: the bind address).
        #[arg(long)]
        external_host: Option<String>,
        /// How tasks reach executors: pushed as soon as a slot is free, or pulled by
        /// executors' polls (executors must be started with the same).
        #[arg(long, value_enum, default_value_t = SchedulingArg::Push)]
        scheduling: SchedulingArg,
    },
    /// A Ballista executor of vcfq's tasks, for the scheduler at `--scheduler`.
    Executor {
        /// The scheduler's address (`host:port` or `df://host:port`).
        #[arg(long)]
        scheduler: String,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        bind_host: String,
        /// Port that results are fetched from.
        #[arg(long, default_value_t = 50051)]
        port: u16,
        /// Port the scheduler sends tasks to (push scheduling).
        #[arg(long, default_value_t = 50052)]
        task_port: u16,
        /// How tasks reach it: as the scheduler was started.
        #[arg(long, value_enum, default_value_t = SchedulingArg::Push)]
        scheduling: SchedulingArg,
        /// The host name others reach it by (default: the bind address).
        #[arg(long)]
        external_host: Option<String>,
        /// Tasks run at once (0: one per core).
        #[arg(long, default_value_t = 0)]
        concurrency: usize,
        /// Where intermediate (shuffle) files go.
        #[arg(long, value_name = "DIR")]
        work_dir: Option<PathBuf>,
    },
    /// The audit trail of `vcfq serve`.
    Audit {
        #[command(subcommand)]
        action: AuditCommand,
    },
}

/// `--scheduling` of `vcfq scheduler` / `vcfq executor`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum SchedulingArg {
    Push,
    Pull,
}

impl From<SchedulingArg> for vcfq::cluster::process::Scheduling {
    fn from(s: SchedulingArg) -> Self {
        match s {
            SchedulingArg::Push => Self::Push,
            SchedulingArg::Pull => Self::Pull,
        }
    }
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Check a trail's hash chain: prints the records and the last hash, or fails naming the
    /// first line where a record was changed, removed or inserted.
    Verify {
        /// The JSON-lines file (`[audit] path` of the server config).
        file: PathBuf,
    },
}

fn parse_format(s: &str) -> Result<OutputFormat, String> {
    s.parse()
}

/// `key=value`, checked against the session's settings (a bad key or value is a usage error).
fn parse_setting(s: &str) -> Result<(String, String), String> {
    let (key, value) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}' is not KEY=VALUE"))?;
    let (key, value) = (key.trim().to_string(), value.trim().to_string());
    let mut config = vcfq::SessionBuilder::new().config();
    config
        .options_mut()
        .set(&key, &value)
        .map_err(|e| e.strip_backtrace())?;
    Ok((key, value))
}

/// Prints vcfq's warnings as `warning: …` lines on stderr; with `VCFQ_LOG=info|debug|trace`,
/// every library's messages of that level too (Ballista's job timings, for instance), with
/// their level and origin.
struct StderrLogger {
    /// Messages of every library up to this level (`VCFQ_LOG`), else only vcfq's warnings.
    all: Option<log::LevelFilter>,
}

impl log::Log for StderrLogger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        match self.all {
            Some(level) => m.level() <= level,
            None => m.level() <= log::Level::Warn && m.target().starts_with("vcfq"),
        }
    }
    fn log(&self, r: &log::Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        if self.all.is_some() {
            let _ = writeln!(io::stderr(), "{} {}: {}", r.level(), r.target(), r.args());
        } else {
            let level = match r.level() {
                log::Level::Error => "error",
                _ => "warning",
            };
            let _ = writeln!(io::stderr(), "{level}: {}", r.args());
        }
    }
    fn flush(&self) {}
}

/// Keeps freed memory in the process instead of handing it back to the kernel at once.
///
/// glibc returns the top of its heap to the kernel once 128 KiB is free there and serves large
/// blocks with fresh `mmap`s, so a scan that allocates and frees a few MiB per batch (message
/// buffers, decoded columns) pays a page fault per 4 KiB, again and again: reading 2 M Kafka
/// messages spent 1.5 s of 4.3 s CPU in the kernel zeroing pages. Freed blocks up to 64 MiB
/// are now reused and up to 256 MiB of free heap is kept (2 M messages: sys 1.5 s → 0.3 s).
/// Applies to librdkafka's allocations too, which a Rust allocator would not.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; any value is valid for these two.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    keep_freed_memory();
    let cli = Cli::parse();
    let all = std::env::var("VCFQ_LOG")
        .ok()
        .and_then(|l| l.parse::<log::LevelFilter>().ok());
    if !cli.quiet || all.is_some() {
        let logger = Box::leak(Box::new(StderrLogger { all }));
        let max = all
            .unwrap_or(log::LevelFilter::Warn)
            .max(log::LevelFilter::Warn);
        let _ = log::set_logger(logger).map(|()| log::set_max_level(max));
    }
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            let _ = writeln!(io::stderr(), "error: {}", vcfq::error::one_line(&e));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    if let Some(Command::Serve {
        addr,
        config,
        read_root,
        write_root,
    }) = &cli.command
    {
        return serve(*addr, config.as_deref(), read_root, write_root, cli.trace).await;
    }
    if let Some(Command::Audit {
        action: AuditCommand::Verify { file },
    }) = &cli.command
    {
        let verified = vcfq::flight::audit::verify(file).map_err(anyhow::Error::msg)?;
        println!(
            "{}: {} records, chain intact; last hash {}",
            file.display(),
            verified.records,
            verified.head
        );
        return Ok(());
    }
    if let Some(Command::Scheduler {
        bind_host,
        port,
        external_host,
        scheduling,
    }) = &cli.command
    {
        let options = vcfq::cluster::process::SchedulerOptions {
            bind_host: bind_host.clone(),
            port: *port,
            external_host: external_host.clone(),
            scheduling: (*scheduling).into(),
        };
        let shown = external_host.clone();
        vcfq::cluster::process::run_scheduler(session_builder(&cli)?, options, move |addr| {
            let host = shown.unwrap_or_else(|| addr.ip().to_string());
            println!("df://{host}:{}", addr.port());
            let _ = io::stdout().flush();
        })
        .await?;
        return Ok(());
    }
    if let Some(Command::Executor {
        scheduler,
        bind_host,
        port,
        task_port,
        scheduling,
        external_host,
        concurrency,
        work_dir,
    }) = &cli.command
    {
        let options = vcfq::cluster::process::ExecutorOptions {
            scheduler: scheduler.clone(),
            bind_host: bind_host.clone(),
            port: *port,
            task_port: *task_port,
            scheduling: (*scheduling).into(),
            external_host: external_host.clone(),
            concurrency: *concurrency,
            work_dir: work_dir.clone(),
        };
        vcfq::cluster::process::run_executor(session_builder(&cli)?, options).await?;
        return Ok(());
    }
    if let Some(Command::HashPassword) = cli.command {
        let mut password = String::new();
        io::stdin()
            .read_line(&mut password)
            .context("cannot read the password from stdin")?;
        let password = password.trim_end_matches(['\n', '\r']);
        if password.is_empty() {
            anyhow::bail!("empty password on stdin");
        }
        let hash = vcfq::flight::auth::hash_password(password).map_err(anyhow::Error::msg)?;
        println!("{hash}");
        return Ok(());
    }
    if let Some(Command::Gen {
        output,
        records,
        samples,
        seed,
    }) = cli.command
    {
        let options = vcfq::generator::GenOptions {
            records,
            samples,
            seed,
        };
        return vcfq::generator::generate_file(&output, &options)
            .with_context(|| format!("{}: cannot write", output.display()));
    }
    // before the session is made: its plans then get a span per operator
    let tracing = if cli.trace {
        Some(vcfq::telemetry::Tracing::start(&Default::default())?)
    } else {
        None
    };
    let result = run_sql(cli).await;
    if let Some(tracing) = tracing {
        tracing.shutdown().await;
    }
    result
}

/// The session the command line's `--set`s describe (without a cluster).
fn session_builder(cli: &Cli) -> Result<vcfq::SessionBuilder> {
    let mut builder = vcfq::SessionBuilder::new();
    for (key, value) in &cli.settings {
        builder = builder.with_setting(key, value)?;
    }
    Ok(builder)
}

/// The shell, or the statements of `-c`, `-f` and stdin.
async fn run_sql(cli: Cli) -> Result<()> {
    let mut builder = session_builder(&cli)?;
    if let Some(url) = &cli.cluster {
        builder = vcfq::cluster::attach(builder, url)?;
    }
    let ctx = builder.build()?;
    if cli.commands.is_empty() && cli.files.is_empty() && io::stdin().is_terminal() {
        let color =
            !cli.no_color && io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let options = vcfq::shell::ShellOptions {
            color,
            format: cli.format,
            max_rows: cli.maxrows.unwrap_or(40),
        };
        return vcfq::shell::run(ctx, options).await;
    }
    let printing = Printing {
        format: cli.format,
        // on a terminal, tables fit its width; in a file or pipe they keep whole cells
        width: io::stdout().is_terminal().then(terminal_width).flatten(),
        max_rows: cli.maxrows.unwrap_or(0),
        more_hint: "--maxrows N shows more",
    };
    if cli.commands.is_empty() && cli.files.is_empty() {
        let mut text = String::new();
        io::stdin()
            .read_to_string(&mut text)
            .context("cannot read SQL from stdin")?;
        return run_script(&ctx, &text, "<stdin>", &printing).await;
    }
    for sql in &cli.commands {
        run_script(&ctx, sql, "-c", &printing).await?;
    }
    for file in &cli.files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("{}: cannot read script", file.display()))?;
        run_script(&ctx, &text, &file.display().to_string(), &printing).await?;
    }
    Ok(())
}

/// The terminal's width in columns (`COLUMNS`, else asked of the terminal).
fn terminal_width() -> Option<usize> {
    if let Some(n) = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()) {
        return Some(n);
    }
    vcfq::shell::terminal_width()
}

/// `vcfq serve`: without a config file, anonymous access on a loopback address only.
async fn serve(
    addr: Option<std::net::SocketAddr>,
    config: Option<&std::path::Path>,
    read_roots: &[PathBuf],
    write_roots: &[PathBuf],
    trace: bool,
) -> Result<()> {
    let mut settings = match config {
        Some(path) => vcfq::flight::config::ServerConfig::load(path)?,
        None => vcfq::flight::config::ServerConfig {
            allow_anonymous: true,
            ..Default::default()
        },
    };
    if addr.is_some() {
        settings.addr = addr;
    }
    if trace && settings.tracing.is_none() {
        settings.tracing = Some(Default::default());
    }
    // roots from the command line are relative to the working directory
    let cwd = std::env::current_dir().context("the working directory")?;
    settings
        .files
        .read
        .extend(read_roots.iter().map(|d| cwd.join(d)));
    settings
        .files
        .write
        .extend(write_roots.iter().map(|d| cwd.join(d)));
    settings.file_roots().map_err(anyhow::Error::msg)?;
    if config.is_none() && settings.addr.is_some_and(|a| !a.ip().is_loopback()) {
        anyhow::bail!(
            "without --config the server takes anonymous clients and listens on loopback only; \
             write a config with [[users]] (or allow_anonymous = true) to listen on {}",
            settings.addr.map(|a| a.to_string()).unwrap_or_default()
        );
    }
    vcfq::flight::serve(settings).await
}

/// Runs the statements of `text` in order; the first failure names `origin` and its line.
async fn run_script(
    ctx: &SessionContext,
    text: &str,
    origin: &str,
    printing: &Printing,
) -> Result<()> {
    let statements = split_statements(text);
    for st in &statements {
        let located = || {
            if origin == "-c" && statements.len() == 1 {
                String::new()
            } else {
                format!("{origin}:{}: ", st.line)
            }
        };
        run_statement(ctx, &st.sql, printing).await.map_err(|e| {
            if is_broken_pipe(&e) {
                e
            } else {
                anyhow::anyhow!("{}{}", located(), vcfq::error::one_line(&e))
            }
        })?;
    }
    Ok(())
}

async fn run_statement(ctx: &SessionContext, sql: &str, printing: &Printing) -> Result<()> {
    tracing::Instrument::instrument(
        async {
            let statement = Statement::plan(ctx, sql).await?;
            let mut out = io::BufWriter::new(io::stdout().lock());
            statement.print(&mut out, printing).await?;
            out.flush()?;
            Ok(())
        },
        vcfq::telemetry::statement_span(sql),
    )
    .await
}

/// Whether the error is output closed by its reader (`vcfq … | head`), which is no failure.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}
