//! Meta-commands of the shell (`\d`, `\timing`, …): parsing, and the help text.

use std::path::PathBuf;

use crate::output::OutputFormat;

/// A meta-command.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaCommand {
    /// `\?`: help.
    Help,
    /// `\q`: leave the shell.
    Quit,
    /// `\d`: the tables.
    ListTables,
    /// `\d NAME`: the columns of a table or VCF file, with types and header descriptions.
    Describe(String),
    /// `\df [PATTERN]`: functions with their signatures.
    Functions(Option<String>),
    /// `\timing [on|off]`: show elapsed time after each statement.
    Timing(Option<bool>),
    /// `\format NAME`: output format.
    Format(OutputFormat),
    /// `\maxrows N`: rows shown in table format.
    MaxRows(usize),
    /// `\i FILE`: run a script.
    Include(PathBuf),
    /// `\o [FILE]`: send results to a file (`\o` alone: back to the terminal).
    Output(Option<PathBuf>),
    /// `\errverbose`: the last error with its causes.
    ErrVerbose,
}

/// The help text of `\?`.
pub const HELP: &str = "\
SQL statements end with ';' and may span lines. Ctrl-C cancels a running query; \\q or Ctrl-D leaves.
  \\?                 this help
  \\d                 list tables
  \\d NAME            columns of a table or VCF file, with types and header descriptions
                     (and a Lance table's vector indexes)
  \\df [PATTERN]      functions (and their signatures)
  \\timing [on|off]   show the time each statement takes
  \\format FORMAT     table, csv, tsv, json, ndjson, markdown or vcf
  \\maxrows N         rows shown in table format (0: all)
  \\i FILE            run the statements of a script
  \\o [FILE]          write results to FILE (\\o alone: back to the terminal)
  \\errverbose        the last error with its causes
  \\q                 quit
";

/// Parses a line starting with `\`.
pub fn parse(line: &str) -> Result<MetaCommand, String> {
    let line = line.trim().trim_end_matches(';').trim();
    let (cmd, arg) = match line.split_once(char::is_whitespace) {
        Some((c, a)) => (c, Some(a.trim()).filter(|a| !a.is_empty())),
        None => (line, None),
    };
    let on_off = |a: Option<&str>| -> Result<Option<bool>, String> {
        match a.map(str::to_ascii_lowercase).as_deref() {
            None => Ok(None),
            Some("on") => Ok(Some(true)),
            Some("off") => Ok(Some(false)),
            Some(other) => Err(format!("\\timing takes on or off, not '{other}'")),
        }
    };
    Ok(match (cmd, arg) {
        ("\\?" | "\\h" | "\\help", _) => MetaCommand::Help,
        ("\\q" | "\\quit", _) => MetaCommand::Quit,
        ("\\d" | "\\dt", None) => MetaCommand::ListTables,
        ("\\d", Some(name)) => MetaCommand::Describe(name.trim_matches('\'').to_string()),
        ("\\df", pattern) => MetaCommand::Functions(pattern.map(str::to_string)),
        ("\\timing", a) => MetaCommand::Timing(on_off(a)?),
        ("\\format", Some(f)) => MetaCommand::Format(f.parse()?),
        ("\\format", None) => {
            return Err(
                "\\format takes one of table, csv, tsv, json, ndjson, markdown, vcf".into(),
            );
        }
        ("\\maxrows", Some(n)) => MetaCommand::MaxRows(
            n.parse()
                .map_err(|_| format!("\\maxrows takes a number, not '{n}'"))?,
        ),
        ("\\i", Some(f)) => MetaCommand::Include(PathBuf::from(f)),
        ("\\o", f) => MetaCommand::Output(f.map(PathBuf::from)),
        ("\\errverbose", _) => MetaCommand::ErrVerbose,
        (other, _) => {
            return Err(format!(
                "unknown command '{other}' (\\? lists the commands)"
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands() {
        assert_eq!(parse("\\d"), Ok(MetaCommand::ListTables));
        assert_eq!(
            parse("\\d 'calls.vcf.gz';"),
            Ok(MetaCommand::Describe("calls.vcf.gz".into()))
        );
        assert_eq!(parse("\\timing on"), Ok(MetaCommand::Timing(Some(true))));
        assert_eq!(
            parse("\\format csv"),
            Ok(MetaCommand::Format(OutputFormat::Csv))
        );
        assert_eq!(parse("\\maxrows 10"), Ok(MetaCommand::MaxRows(10)));
        assert_eq!(parse("\\o"), Ok(MetaCommand::Output(None)));
        assert!(parse("\\timing maybe").is_err());
        assert!(parse("\\nope").unwrap_err().contains("unknown command"));
    }
}
