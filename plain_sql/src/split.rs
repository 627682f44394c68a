//! Finds where statements end with PostgreSQL's own scanner (libpg_query), the way
//! psql does: a `;` outside quotes, comments, parentheses and the `BEGIN … END` body
//! of a `CREATE FUNCTION`/`PROCEDURE` ends a statement.

use std::ops::Range;

use pg_query::protobuf::{KeywordKind, ScanToken, Token};

/// What a buffer of whole lines holds.
#[derive(Debug, PartialEq)]
pub(crate) enum Split {
    /// It ends inside a statement, outside quotes.
    Incomplete,
    /// It ends inside a string, quoted identifier, dollar quote or comment that only a
    /// line holding this character can close (`None`: any line may).
    Open(Option<char>),
    /// A backslash outside quotes and comments at this byte: psql would run a
    /// meta-command from there.
    Backslash(usize),
    /// Complete statements, as byte ranges without their `;`; nothing but comments
    /// and blanks after the last one.
    Complete(Vec<Range<usize>>),
}

/// Tokens of `buf`, or, when it ends inside a string, identifier or comment, the
/// character that could close it (see [`Split::Open`]).
fn tokens(buf: &str) -> Result<Vec<ScanToken>, Option<char>> {
    match pg_query::scan(buf) {
        Ok(r) => Ok(r.tokens),
        Err(pg_query::Error::Scan(m)) if m.contains("dollar-quoted") => Err(Some('$')),
        Err(pg_query::Error::Scan(m)) if m.contains("comment") => Err(Some('/')),
        Err(pg_query::Error::Scan(m)) if m.contains("quoted identifier") => Err(Some('"')),
        Err(pg_query::Error::Scan(m)) if m.contains("string") || m.contains("literal") => Err(Some('\'')),
        Err(_) => Err(None),
    }
}

/// `None` when the end of `buf` is outside strings, quoted identifiers, dollar quotes
/// and comments (a line starting with `\` after it would be a psql meta-command),
/// else what [`Split::Open`] says.
pub(crate) fn open_quote(buf: &str) -> Option<Option<char>> {
    tokens(buf).err()
}

/// Whether `buf` holds nothing but comments and blanks.
pub(crate) fn only_comments(buf: &str) -> bool {
    tokens(buf).is_ok_and(|t| t.iter().all(is_comment))
}

fn is_comment(t: &ScanToken) -> bool {
    matches!(t.token(), Token::SqlComment | Token::CComment)
}

/// Where the statements of `buf` end.
pub(crate) fn split(buf: &str) -> Split {
    let tokens = match tokens(buf) {
        Ok(tokens) => tokens,
        Err(closer) => return Split::Open(closer),
    };
    let mut done = Vec::new();
    let mut current: Option<Statement> = None;
    for t in tokens.iter().filter(|t| !is_comment(t)) {
        if t.token() == Token::Ascii92 {
            return Split::Backslash(t.start as usize);
        }
        let st = current.get_or_insert_with(|| Statement::new(t.start as usize));
        if st.ends_at(t) {
            if st.start < t.start as usize {
                done.push(st.start..t.start as usize);
            }
            current = None;
        }
    }
    match current {
        None if !done.is_empty() => Split::Complete(done),
        _ => Split::Incomplete,
    }
}

/// psql's state while reading one statement (psqlscan.l: paren_depth, begin_depth,
/// identifiers).
struct Statement {
    start: usize,
    parens: u32,
    begins: u32,
    words: Vec<Token>,
}

impl Statement {
    fn new(start: usize) -> Self {
        Statement { start, parens: 0, begins: 0, words: Vec::new() }
    }

    /// Whether the statement starts `CREATE [OR REPLACE] FUNCTION|PROCEDURE`.
    fn is_routine(&self) -> bool {
        let routine = |t: Option<&Token>| matches!(t, Some(Token::Function | Token::Procedure));
        self.words.first() == Some(&Token::Create)
            && (routine(self.words.get(1))
                || (self.words.get(1) == Some(&Token::Or) && self.words.get(2) == Some(&Token::Replace) && routine(self.words.get(3))))
    }

    /// Takes token `t` in; true when it is the `;` that ends the statement.
    fn ends_at(&mut self, t: &ScanToken) -> bool {
        let token = t.token();
        let word = token == Token::Ident || t.keyword_kind() != KeywordKind::NoKeyword;
        if word && self.words.len() < 4 {
            self.words.push(token);
        }
        match token {
            Token::Ascii40 => self.parens += 1,
            Token::Ascii41 => self.parens = self.parens.saturating_sub(1),
            Token::Ascii59 => return self.parens == 0 && self.begins == 0,
            Token::BeginP | Token::Case | Token::EndP if self.parens == 0 && self.is_routine() => match token {
                Token::BeginP => self.begins += 1,
                Token::Case if self.begins >= 1 => self.begins += 1,
                Token::EndP => self.begins = self.begins.saturating_sub(1),
                _ => {}
            },
            _ => {}
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(buf: &str) -> Vec<&str> {
        match split(buf) {
            Split::Complete(r) => r.into_iter().map(|r| &buf[r]).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn statements() {
        assert_eq!(pieces("SET a = 1; SET b = 2; -- c;\n"), ["SET a = 1", "SET b = 2"]);
        assert_eq!(
            pieces("CREATE RULE r AS ON INSERT TO t DO (SELECT 1; SELECT 2);"),
            ["CREATE RULE r AS ON INSERT TO t DO (SELECT 1; SELECT 2)"]
        );
        let atomic = "CREATE FUNCTION f() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n SELECT CASE WHEN true THEN 1 END;\nEND;";
        assert_eq!(pieces(atomic), [&atomic[..atomic.len() - 1]]);
        assert_eq!(split("CREATE FUNCTION f() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n SELECT 1;"), Split::Incomplete);
        assert_eq!(pieces("BEGIN; SELECT 1; END;"), ["BEGIN", "SELECT 1", "END"]);
    }

    #[test]
    fn quotes_and_comments() {
        for (open, closer) in [
            ("SELECT 'a;\n", '\''),
            ("SELECT $$a;\n", '$'),
            ("SELECT $f$ $$;\n", '$'),
            ("/* ;\n", '/'),
            ("SELECT \"a;\n", '"'),
            ("SELECT E'\\';\n", '\''),
            ("SELECT B'01;\n", '\''),
        ] {
            assert_eq!(split(open), Split::Open(Some(closer)), "{open}");
            assert_eq!(open_quote(open), Some(Some(closer)));
        }
        assert_eq!(open_quote("SELECT 1"), None);
        assert_eq!(split("SELECT 1 -- ;\n"), Split::Incomplete);
        assert_eq!(pieces("SELECT $f$ ; $$ ; $f$;"), ["SELECT $f$ ; $$ ; $f$"]);
        assert!(only_comments("-- a\n/* b */\n"));
    }

    #[test]
    fn backslashes() {
        assert_eq!(split("SELECT 1; \\! ls\n"), Split::Backslash(10));
        assert_eq!(pieces("SELECT '\\!', E'\\\\', $$\\o$$;"), ["SELECT '\\!', E'\\\\', $$\\o$$"]);
    }
}
