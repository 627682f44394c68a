//! psql meta-commands (`\!`, `\o`, `\copy`, `\connect`, …): every one is refused, but
//! for the pair pg_dump 15.14 and later writes around a plain dump: one leading
//! `\restrict <key>` and the matching trailing `\unrestrict <key>`, which are skipped.

use crate::error::LoadError;

/// Where the stream stands with respect to pg_dump's `\restrict` pair.
#[derive(Debug, Default)]
pub(crate) struct Restrict {
    /// Key and line of the leading `\restrict`.
    opened: Option<(String, u64)>,
    /// Line of the closing `\unrestrict`.
    closed: Option<u64>,
}

/// The command of a meta-command line, e.g. `\!` or `\copy`, as psql reads it: a
/// backslash then letters and digits (and psql's `+`/`x` suffixes), or one other
/// character.
pub(crate) fn command(line: &str) -> String {
    let rest = line.trim_start().strip_prefix('\\').unwrap_or(line);
    let word: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '+').take(24).collect();
    let name = if word.is_empty() {
        rest.chars().next().filter(|c| !c.is_whitespace() && !c.is_control()).map(String::from).unwrap_or_default()
    } else {
        word
    };
    format!("\\{name}")
}

/// Whether a key is one pg_dump could have written (psql accepts only alphanumerics).
fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric())
}

impl Restrict {
    /// Whether the closing `\unrestrict` was read: only blank lines may follow.
    pub(crate) fn closed(&self) -> Option<u64> {
        self.closed
    }

    /// Judges a line that starts with a backslash at a statement boundary (outside
    /// COPY data, quotes and comments): `Ok` only for pg_dump's own pair.
    /// `statements_seen` tells whether any statement came before.
    pub(crate) fn meta_line(&mut self, line_no: u64, line: &str, statements_seen: bool) -> Result<(), LoadError> {
        let command = command(line);
        let mut words = line.split_whitespace();
        let _ = words.next();
        let key = words.next().unwrap_or("");
        let extra = words.next().is_some();
        let refuse = |why| Err(LoadError::Restrict { line: line_no, command: command.clone(), why });
        match command.as_str() {
            "\\restrict" => {
                if self.opened.is_some() {
                    return refuse("a second `\\restrict`");
                }
                if statements_seen {
                    return refuse("after the first statement");
                }
                if !valid_key(key) || extra {
                    return refuse("not followed by one alphanumeric key");
                }
                self.opened = Some((key.to_owned(), line_no));
                Ok(())
            }
            "\\unrestrict" => match &self.opened {
                None => refuse("without a leading `\\restrict`"),
                Some((k, _)) if k != key || extra => refuse("with a key other than the leading `\\restrict`'s"),
                Some(_) => {
                    self.closed = Some(line_no);
                    Ok(())
                }
            },
            _ => Err(LoadError::MetaCommand { line: line_no, command }),
        }
    }

    /// At the end of the stream: a `\restrict` needs its `\unrestrict`.
    pub(crate) fn finish(&self) -> Result<(), LoadError> {
        match (&self.opened, self.closed) {
            (Some((_, line)), None) => Err(LoadError::MissingUnrestrict { line: *line }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        assert_eq!(command("\\! touch /tmp/x"), "\\!");
        assert_eq!(command("  \\copy t from program 'x'"), "\\copy");
        assert_eq!(command("\\c db"), "\\c");
        assert_eq!(command("\\dt+ x"), "\\dt+");
        assert_eq!(command("\\"), "\\");
    }

    #[test]
    fn pair() {
        let mut r = Restrict::default();
        assert!(r.meta_line(2, "\\restrict abc12", false).is_ok());
        assert!(matches!(r.meta_line(3, "\\restrict abc12", false), Err(LoadError::Restrict { line: 3, .. })));
        assert!(r.finish().is_err());
        assert!(matches!(r.meta_line(9, "\\unrestrict other", true), Err(LoadError::Restrict { line: 9, .. })));
        assert!(r.meta_line(9, "\\unrestrict abc12", true).is_ok());
        assert_eq!(r.closed(), Some(9));
        assert!(r.finish().is_ok());
        let mut late = Restrict::default();
        assert!(late.meta_line(5, "\\restrict abc", true).is_err());
        assert!(late.meta_line(5, "\\unrestrict abc", true).is_err());
        assert!(matches!(late.meta_line(7, "\\o /tmp/x", true), Err(LoadError::MetaCommand { line: 7, .. })));
    }
}
