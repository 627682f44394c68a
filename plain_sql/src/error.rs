//! Why a load failed, in sentences an Odoo administrator can act on.

use std::path::PathBuf;

/// Why a plain SQL backup was refused or could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A psql meta-command outside COPY data: it never ran.
    #[error(
        "The backup's SQL holds the psql command `{command}` at line {line}: plain SQL backups \
         are loaded as data and may not run commands; make the backup with pg_dump or Odoo's \
         database manager."
    )]
    MetaCommand {
        /// 1-based line number.
        line: u64,
        /// The command as written, e.g. `\!`.
        command: String,
    },
    /// A `\restrict` or `\unrestrict` line that is not pg_dump's own pair.
    #[error(
        "The backup's SQL holds the psql command `{command}` at line {line} ({why}): plain SQL \
         backups are loaded as data and may not run commands, only pg_dump's own leading \
         `\\restrict` and matching trailing `\\unrestrict` are skipped; make the backup with \
         pg_dump or Odoo's database manager."
    )]
    Restrict {
        /// 1-based line number.
        line: u64,
        /// `\restrict` or `\unrestrict`.
        command: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// Something other than blank lines after pg_dump's closing `\unrestrict`.
    #[error(
        "The backup's SQL goes on at line {line}, after pg_dump's closing `\\unrestrict` line: a \
         plain SQL backup ends there; make the backup with pg_dump or Odoo's database manager."
    )]
    AfterUnrestrict {
        /// 1-based line number.
        line: u64,
    },
    /// A `\restrict` without its closing `\unrestrict`: the file was cut short.
    #[error(
        "The backup's SQL ends without the `\\unrestrict` line that closes its `\\restrict` at \
         line {line}: the backup is incomplete; make it again."
    )]
    MissingUnrestrict {
        /// Line of the `\restrict`.
        line: u64,
    },
    /// A statement that reads or writes the database server's files or runs a program there.
    #[error(
        "The backup's SQL statement at line {line} (`{head}`) reads or writes files or runs a \
         program on the database server: plain SQL backups are loaded as data; make the backup \
         with pg_dump or Odoo's database manager."
    )]
    ServerSide {
        /// 1-based line number.
        line: u64,
        /// The statement's first words.
        head: String,
    },
    /// The dump turns `standard_conforming_strings` off, which this loader cannot read safely.
    #[error(
        "The backup's SQL turns standard_conforming_strings off at line {line}: its strings \
         cannot be read safely; make the backup with a current pg_dump."
    )]
    NonStandardStrings {
        /// 1-based line number.
        line: u64,
    },
    /// The stream is not pg_dump's plain format at this point.
    #[error("The backup's SQL at line {line} is not pg_dump's plain format: {why}.")]
    Format {
        /// 1-based line number.
        line: u64,
        /// What was found.
        why: String,
    },
    /// The stream ended inside a statement or inside COPY data.
    #[error(
        "The backup's SQL ends inside the {what} that starts at line {line} (`{head}`): the \
         backup is incomplete; make it again."
    )]
    Truncated {
        /// Line where the unfinished part starts.
        line: u64,
        /// `statement` or `COPY data`.
        what: &'static str,
        /// The statement's first words.
        head: String,
    },
    /// A statement failed on the server and is not one of the tolerated ones.
    #[error("The backup's SQL statement at line {line} (`{head}`) failed: {message}")]
    Statement {
        /// 1-based line number.
        line: u64,
        /// The statement's first words.
        head: String,
        /// PostgreSQL's message.
        message: String,
    },
    /// Loading the data of a `COPY … FROM stdin` block failed.
    #[error("The COPY data of the statement at line {line} (`{head}`) did not load: {message}")]
    Copy {
        /// Line of the COPY statement.
        line: u64,
        /// The statement's first words.
        head: String,
        /// PostgreSQL's message.
        message: String,
    },
    /// No connection to the target database.
    #[error("cannot connect to the target database: {0}")]
    Connect(#[source] tokio_postgres::Error),
    /// Reading the backup stream failed.
    #[error("cannot read the backup: {0}")]
    Read(#[source] std::io::Error),
    /// Writing or reading the spool file failed.
    #[error("cannot use the spool file in {dir}: {source}")]
    Spool {
        /// The spool directory.
        dir: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The decompressed SQL outgrew the room the caller allowed for its spool file.
    #[error("the decompressed SQL of the backup is larger than the {} MiB of room for it in {}: free some disk space there, or restore it with numikube_staging_restore_jobs = 1 (no spool file)", limit >> 20, dir.display())]
    SpoolFull {
        /// The spool directory.
        dir: PathBuf,
        /// The room allowed, in bytes.
        limit: u64,
    },
}

/// PostgreSQL's message of `e`: the server's message, detail and SQLSTATE when it is a
/// server error, else the client's description.
pub(crate) fn pg_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = db.message().to_owned();
            if let Some(detail) = db.detail() {
                s.push_str(" (");
                s.push_str(detail);
                s.push(')');
            }
            s.push_str(&format!(" [SQLSTATE {}]", db.code().code()));
            s
        }
        None => e.to_string(),
    }
}

/// The first words of a statement, on one line, for messages.
pub(crate) fn head(text: &str) -> String {
    const MAX: usize = 72;
    let mut out = String::new();
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
        if out.chars().count() > MAX {
            let cut: String = out.chars().take(MAX).collect();
            return format!("{cut}…");
        }
    }
    out.chars().filter(|c| !c.is_control()).collect()
}
