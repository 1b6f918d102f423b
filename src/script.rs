//! Splitting SQL scripts into statements, remembering the line each starts on.
//!
//! Semicolons inside quotes ('…', "…"), `--` comments and `/* … */` comments do not end a
//! statement. A final statement without `;` counts too.

/// One statement of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// 1-based line of the statement's first non-blank, non-comment character.
    pub line: usize,
    /// The statement text, without the terminating `;`.
    pub sql: String,
}

/// Splits `text` into statements; blank and comment-only pieces are dropped.
pub fn split_statements(text: &str) -> Vec<Statement> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut start_line: Option<usize> = None;
    let mut line = 1;
    let mut chars = text.chars().peekable();
    let mut push = |current: &mut String, start: &mut Option<usize>| {
        if let Some(l) = start.take() {
            let sql = current.trim().to_string();
            if !sql.is_empty() {
                out.push(Statement { line: l, sql });
            }
        }
        current.clear();
    };
    while let Some(c) = chars.next() {
        match c {
            '\n' => {
                line += 1;
                current.push(c);
            }
            '-' if chars.peek() == Some(&'-') => {
                // comment to end of line
                for n in chars.by_ref() {
                    if n == '\n' {
                        line += 1;
                        current.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for n in chars.by_ref() {
                    if n == '\n' {
                        line += 1;
                        current.push('\n');
                    }
                    if prev == '*' && n == '/' {
                        break;
                    }
                    prev = n;
                }
                current.push(' ');
            }
            '\'' | '"' => {
                start_line.get_or_insert(line);
                current.push(c);
                while let Some(n) = chars.next() {
                    current.push(n);
                    if n == '\n' {
                        line += 1;
                    }
                    if n == c {
                        // a doubled quote is an escaped quote
                        if chars.peek() == Some(&c) {
                            current.push(c);
                            chars.next();
                            continue;
                        }
                        break;
                    }
                }
            }
            ';' => push(&mut current, &mut start_line),
            c => {
                if !c.is_whitespace() {
                    start_line.get_or_insert(line);
                }
                current.push(c);
            }
        }
    }
    push(&mut current, &mut start_line);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_with_lines() {
        let text =
            "-- header; comment\nSELECT 1;\n\n/* a; b */ SELECT ';' AS x,\n  'it''s;';\nSELECT 3";
        let s = split_statements(text);
        assert_eq!(s.len(), 3);
        assert_eq!(
            s[0],
            Statement {
                line: 2,
                sql: "SELECT 1".into()
            }
        );
        assert_eq!(s[1].line, 4);
        assert!(s[1].sql.ends_with("'it''s;'"));
        assert_eq!(
            s[2],
            Statement {
                line: 6,
                sql: "SELECT 3".into()
            }
        );
    }

    #[test]
    fn comment_only_scripts_are_empty() {
        assert!(split_statements("-- nothing\n/* here */\n;;").is_empty());
    }
}
