//! Per module: every installed module's `data/anonymize.sql`, searched
//! exactly like `data/neutralize.sql` (`addons_path`, then Odoo's own
//! `odoo/addons`; first match wins; module order), so that a custom module
//! masks its own fields.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;
use tokio_postgres::Transaction;

/// `UPDATE [ONLY] [schema.]table`, to know a script's tables before it runs.
static UPDATE_TARGET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)\bUPDATE\s+(?:ONLY\s+)?(?:(?:"[^"]+"|[A-Za-z_][A-Za-z0-9_$]*)\s*\.\s*)?("[^"]+"|[A-Za-z_][A-Za-z0-9_$]*)"#)
        .expect("the pattern compiles")
});

/// SQL comments, taken out before looking for `UPDATE`s.
static COMMENT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?s)--[^\n]*|/\*.*?\*/").expect("the pattern compiles"));

/// One module's script.
pub struct Script {
    /// The module.
    pub module: String,
    /// Where its `data/anonymize.sql` is.
    pub path: PathBuf,
    /// Its text.
    pub text: String,
}

impl Script {
    /// The tables its `UPDATE` statements name (lower case unless quoted).
    pub fn targets(&self) -> Vec<String> {
        let code = COMMENT.replace_all(&self.text, " ");
        let mut tables: Vec<String> = UPDATE_TARGET
            .captures_iter(&code)
            .map(|c| {
                let name = &c[1];
                match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
                    Some(quoted) => quoted.to_string(),
                    None => name.to_ascii_lowercase(),
                }
            })
            .collect();
        tables.sort();
        tables.dedup();
        tables
    }
}

/// Finds `<module>/data/anonymize.sql` on the search path (the first folder holding the module wins, as in Odoo).
pub fn script_of(search_path: &[PathBuf], module: &str) -> Option<PathBuf> {
    search_path
        .iter()
        .map(|dir| dir.join(module))
        .find(|dir| dir.join("__manifest__.py").is_file() || dir.join("__openerp__.py").is_file())
        .map(|dir| dir.join("data").join("anonymize.sql"))
        .filter(|p| p.is_file())
}

/// The scripts of the installed modules, in module order (`ir_module_module.id`).
pub async fn installed(tx: &Transaction<'_>, search_path: &[PathBuf]) -> Result<Vec<(String, PathBuf)>, tokio_postgres::Error> {
    let exists: bool = tx.query_one("SELECT to_regclass('ir_module_module') IS NOT NULL", &[]).await?.get(0);
    if !exists {
        return Ok(Vec::new());
    }
    let rows = tx
        .query("SELECT name::text FROM ir_module_module WHERE state IN ('installed', 'to upgrade', 'to remove') ORDER BY id", &[])
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let module: String = r.get(0);
            script_of(search_path, &module).map(|path| (module, path))
        })
        .collect())
}

/// Rows updated, inserted or deleted so far in this transaction, per table.
pub async fn changed_rows(tx: &Transaction<'_>) -> Result<HashMap<String, i64>, tokio_postgres::Error> {
    let rows = tx
        .query(
            "SELECT relname::text, n_tup_upd + n_tup_ins + n_tup_del FROM pg_stat_xact_user_tables
              WHERE schemaname NOT LIKE 'pg\\_temp%' AND to_regclass(quote_ident(relname::text)) = relid",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1))).collect())
}

/// Reads a script.
pub fn read(module: String, path: &Path) -> std::io::Result<Script> {
    Ok(Script { text: std::fs::read_to_string(path)?, module, path: path.into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_found_like_neutralize_sql_and_their_tables_read() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("loyalty");
        std::fs::create_dir_all(m.join("data")).unwrap();
        std::fs::write(m.join("__manifest__.py"), "{}").unwrap();
        std::fs::write(m.join("data/anonymize.sql"), "SELECT 1;").unwrap();
        std::fs::create_dir_all(dir.path().join("web")).unwrap();
        std::fs::write(dir.path().join("web/__manifest__.py"), "{}").unwrap();
        let path = vec![dir.path().to_path_buf()];
        assert!(script_of(&path, "loyalty").is_some());
        assert!(script_of(&path, "web").is_none());
        assert!(script_of(&path, "sale").is_none());
        let script = Script {
            module: "loyalty".into(),
            path: "x".into(),
            text: "update loyalty_card set holder = 'x';\nUPDATE ONLY public.\"Odd Table\" SET a = 1;\n-- update\nUPDATE Loyalty_Card SET b = 2;"
                .into(),
        };
        assert_eq!(script.targets(), vec!["Odd Table".to_string(), "loyalty_card".to_string()]);
    }
}
