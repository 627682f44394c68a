//! How many of a copy's attachments point to a file its filestore lacks:
//! the rows of `ir_attachment` stored in the filestore (`type` binary,
//! `store_fname` set) whose file is not there, found the way Odoo's
//! `_full_path` finds it. Counted after loading, before publishing.
//!
//! The backup's own code never runs here: a read-only transaction with
//! `row_security = off` and `search_path = pg_catalog`, reading only an
//! ordinary table whose two columns are of PostgreSQL's own text types (no
//! view, no operator, cast or function of the backup's).

use std::path::{Path, PathBuf};

use futures::TryStreamExt;
use tokio_postgres::Client;

use crate::pg::describe;

/// Rows checked on one blocking thread at a time.
const BATCH: usize = 10_000;

/// Why the attachments could not be counted.
#[derive(Debug, thiserror::Error)]
pub enum CountError {
    /// PostgreSQL failed.
    #[error("reading ir_attachment failed: {0}")]
    Db(String),
    /// `ir_attachment` is not Odoo's table.
    #[error("ir_attachment is {0}, not Odoo's table; its attachments are not counted")]
    Shape(String),
}

fn db(e: tokio_postgres::Error) -> CountError {
    CountError::Db(describe(&e))
}

/// What `public.ir_attachment` is, read from the catalogs only: its kind and
/// the types of `store_fname` and `type`; `None` when there is no such table.
const SHAPE: &str = "SELECT c.relkind::text, \
     (SELECT format_type(a.atttypid, NULL) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'store_fname' AND NOT a.attisdropped), \
     (SELECT format_type(a.atttypid, NULL) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'type' AND NOT a.attisdropped) \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relname = 'ir_attachment'";

/// The attachments of the database behind `client` whose file is missing from `dir`; 0 without `ir_attachment`.
pub async fn missing(client: &mut Client, dir: &Path) -> Result<u64, CountError> {
    let tx = client.transaction().await.map_err(db)?;
    tx.batch_execute("SET TRANSACTION READ ONLY; SET LOCAL row_security = off; SET LOCAL search_path = pg_catalog").await.map_err(db)?;
    let Some(shape) = tx.query_opt(SHAPE, &[]).await.map_err(db)? else { return Ok(0) };
    let (kind, store_fname, type_): (String, Option<String>, Option<String>) = (shape.get(0), shape.get(1), shape.get(2));
    let text = |t: &Option<String>| matches!(t.as_deref(), Some("character varying" | "text"));
    if !matches!(kind.as_str(), "r" | "p") || !text(&store_fname) || !text(&type_) {
        return Err(CountError::Shape(format!("of kind {kind:?} with store_fname {store_fname:?} and type {type_:?}")));
    }
    let rows = tx
        .query_raw("SELECT store_fname, type FROM public.ir_attachment WHERE store_fname IS NOT NULL", std::iter::empty::<&str>())
        .await
        .map_err(db)?;
    tokio::pin!(rows);
    let (mut missing, mut batch) = (0, Vec::with_capacity(BATCH));
    while let Some(row) = rows.try_next().await.map_err(db)? {
        let (fname, kind): (Option<String>, Option<String>) = (row.get(0), row.get(1));
        match fname {
            Some(fname) if !fname.is_empty() && kind.as_deref() == Some("binary") => batch.push(fname),
            _ => continue,
        }
        if batch.len() == BATCH {
            missing += absent(dir, std::mem::take(&mut batch)).await;
        }
    }
    missing += absent(dir, batch).await;
    tx.commit().await.map_err(db)?;
    Ok(missing)
}

/// How many of `names` have no file in `dir`, looked up on a blocking thread.
async fn absent(dir: &Path, names: Vec<String>) -> u64 {
    if names.is_empty() {
        return 0;
    }
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || names.iter().filter(|n| !full_path(&dir, n).is_file()).count() as u64).await.unwrap_or(0)
}

/// Where Odoo looks for `store_fname` (`ir.attachment._full_path`): dots
/// removed, slashes stripped at both ends, below the filestore.
fn full_path(dir: &Path, store_fname: &str) -> PathBuf {
    let name: String = store_fname.chars().filter(|c| *c != '.').collect();
    dir.join(name.trim_matches(|c| c == '/' || c == '\\'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_found_where_odoo_finds_them() {
        let d = Path::new("/data/filestore/db");
        assert_eq!(full_path(d, "ab/abcdef"), PathBuf::from("/data/filestore/db/ab/abcdef"));
        assert_eq!(full_path(d, "../../../etc/passwd"), PathBuf::from("/data/filestore/db/etc/passwd"));
        assert_eq!(full_path(d, "/ab/x.txt"), PathBuf::from("/data/filestore/db/ab/xtxt"));
    }
}
