//! How answers are shown: readable tables on a terminal, the API's JSON
//! with `--json`; refusals on stderr (and as JSON on stdout), with the exit code.

use std::process::ExitCode;

use jsonrpsee::types::ErrorObjectOwned;
use numikube_staging_rpc::{codes, Backups, Cancelled, DatabaseInfo, DropResult, Extended, Health, JobStatus};

use super::exit::Exit;
use bytesize::ByteSize;

/// Prints an answer as JSON or as text, and exits with `exit`.
pub fn print<T: serde::Serialize + ?Sized>(json: bool, value: &T, text: impl Fn(&T) -> String, exit: Exit) -> ExitCode {
    if json {
        println!("{}", serde_json::to_string_pretty(value).expect("serializable"));
    } else {
        print!("{}", text(value));
    }
    exit.into()
}

/// Reports a refusal: always on stderr, also as JSON on stdout with `--json`.
pub fn fail(json: bool, e: ErrorObjectOwned) -> ExitCode {
    if json {
        println!("{}", serde_json::json!({"error": {"code": e.code(), "message": e.message()}}));
    }
    eprintln!("error: {}", e.message());
    match e.code() {
        codes::UNAVAILABLE => Exit::Unavailable,
        codes::NOT_FOUND => Exit::NotFound,
        codes::INVALID_INPUT | codes::BAD_TOKEN => Exit::Usage,
        _ => Exit::Refused,
    }
    .into()
}

/// `list` as a table.
pub fn list_table(rows: &[DatabaseInfo]) -> String {
    if rows.is_empty() {
        return "This instance has no databases.\n".into();
    }
    table(
        &["NAME", "SIZE", "OURS", "CREATED", "BACKUP"],
        rows.iter()
            .map(|r| {
                vec![
                    r.name.clone(),
                    ByteSize(r.size_bytes.max(0) as u64).to_string(),
                    match (r.template, r.made_by_staging) {
                        (true, _) => "template",
                        (false, true) => "yes",
                        (false, false) => "no",
                    }
                    .into(),
                    r.created_at.map(short_time).unwrap_or_else(|| "-".into()),
                    r.backup.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect(),
    )
}

/// `drop` as a table.
pub fn drop_table(r: &DropResult) -> String {
    let mut rows: Vec<Vec<String>> = Vec::new();
    rows.extend(r.dropped.iter().map(|n| vec![n.clone(), "dropped".into(), String::new()]));
    rows.extend(r.missing.iter().map(|n| vec![n.clone(), "missing".into(), "no such database".into()]));
    rows.extend(r.refused.iter().map(|n| vec![n.name.clone(), "refused".into(), n.reason.clone()]));
    table(&["NAME", "RESULT", "WHY"], rows)
}

/// `status` as a table.
pub fn status_table(s: &JobStatus) -> String {
    let progress = s.progress.map(|p| format!("{:.0}%", p * 100.0));
    let rows = [
        ("job", Some(s.job_id.clone())),
        ("database", Some(s.db_name.clone())),
        ("state", Some(format!("{:?}", s.state).to_lowercase())),
        ("phase", Some(format!("{:?}", s.phase).to_lowercase())),
        ("progress", progress),
        ("backup", s.backup.clone()),
        ("started", Some(short_time(s.started_at))),
        ("finished", s.finished_at.map(short_time)),
        ("error", s.error.clone()),
    ];
    rows.iter().map(|(k, v)| format!("{k:<9} {}\n", v.as_deref().unwrap_or("-"))).collect()
}

/// `backups` as a table, newest first.
pub fn backups_table(b: &Backups) -> String {
    if b.backups.is_empty() {
        return "No backup of this client in the bucket.\n".into();
    }
    let rows = b.backups.iter().map(|b| vec![b.key.clone(), ByteSize(b.size_bytes).to_string(), short_time(b.last_modified)]).collect();
    table(&["KEY", "SIZE", "MODIFIED"], rows)
}

/// `health` as a table: PostgreSQL, the bucket, then pre-warm per client.
pub fn health_table(h: &Health) -> String {
    let mut rows = vec![
        vec!["version".into(), h.version.clone()],
        vec!["postgres".into(), h.postgres.to_string()],
        vec!["storage".into(), h.storage.to_string()],
    ];
    rows.extend(h.prewarm.iter().map(|p| vec![format!("prewarm {}", p.client), p.state.to_string()]));
    table(&["WHAT", "STATE"], rows)
}

/// `cancel`'s answer as a line.
pub fn cancelled_text(c: &Cancelled) -> String {
    format!("{}\n", c.error)
}

/// `extend`'s answer as a line.
pub fn extended_text(e: &Extended) -> String {
    format!("expires at {}\n", short_time(e.expires_at))
}

/// Left-aligned columns as wide as their widest cell, two spaces apart, no
/// borders (comfy-table). Names may be hostile: control characters are shown
/// escaped, so none reaches the terminal.
fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let printable = |cell: String| -> String {
        cell.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
    };
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING).set_header(headers.to_vec());
    for row in rows {
        table.add_row(row.into_iter().map(printable).collect::<Vec<_>>());
    }
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    table.lines().map(|line| line.trim_end().to_string() + "\n").collect()
}

/// `2026-11-24T13:02:05.123+00:00` → `2026-11-24 13:02 UTC`.
fn short_time(time: chrono::DateTime<chrono::Utc>) -> String {
    time.format("%Y-%m-%d %H:%M UTC").to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_table_is_columns_two_spaces_apart_and_escapes_control_characters() {
        let text =
            super::table(&["NAME", "RESULT"], vec![vec!["a\x1b[2J".into(), "dropped".into()], vec!["longer-name".into(), "x".into()]]);
        assert_eq!(text, "NAME         RESULT\na\\u{1b}[2J   dropped\nlonger-name  x\n");
    }
}
