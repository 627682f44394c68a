//! The job journal: one small JSON file per job that must still be reported,
//! and the owner (host, pid, start time) of each piece of work.
//!
//! A job's *promise to report* must outlive the process, and nothing else
//! needs to. So each accepted job gets one JSON file in
//! `<data_dir>/numikube_staging/jobs/<job>.json`, written atomically (temp
//! file, fsync, rename, fsync of the directory) when the job is admitted —
//! admission is refused if it cannot be written — and again when it ends; it
//! is removed once production (or the requester, by mail) was told. The file
//! names its owner process (pid and start time), so a restarted sidecar, or
//! the periodic sweep, adopts only entries whose owner is gone: an entry
//! still `running` was interrupted and is reported as such (or as done if its
//! database did reach its final name), an ended one is reported again.
//!
//! The *databases* are not trusted to the journal: every database the
//! sidecar makes while working has a name no final name can have
//! (`numikube_tmp_<32 hex>`, `numikube_old_<32 hex>`: final names always hold
//! a `-`), so the sweep finds leftovers in `pg_database` itself, even one
//! whose marker was never written, and drops them with `DROP DATABASE … WITH
//! (FORCE)`, which does not wait for an orphaned `pg_restore` session. A
//! sweep that fails (PostgreSQL down) is simply run again later. No second
//! server, no lock file, nothing to migrate: the journal is as durable as
//! `data_dir`, which already holds the filestores.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use numikube_staging_rpc::time::rfc3339_option;
use numikube_staging_rpc::{AnonymizeReport, JobState, JobStatus, Phase};
use serde::{Deserialize, Serialize};

use crate::process::Owner;

/// A journal entry: enough to clean up and report after a restart.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JournalEntry {
    /// The job id.
    pub job_id: String,
    /// Final name.
    pub db_name: String,
    /// Callback URL.
    pub callback: Option<String>,
    /// Requester's address.
    pub email: Option<String>,
    /// `running`, `done` or `error`.
    pub state: JobState,
    /// Error sentence when failed.
    pub error: Option<String>,
    /// Detail for the traceback.
    pub detail: Option<String>,
    /// Client technical name.
    #[serde(default)]
    pub client: Option<String>,
    /// RFC 3339 time the job was accepted.
    #[serde(default, with = "rfc3339_option")]
    pub started_at: Option<DateTime<Utc>>,
    /// RFC 3339 time the job ended.
    #[serde(default, with = "rfc3339_option")]
    pub finished_at: Option<DateTime<Utc>>,
    /// The process working on it or reporting it.
    #[serde(default)]
    pub owner: Option<Owner>,
    /// Production's id of the run (`request_id`), so that a repeat after a restart gets the first answer.
    #[serde(default)]
    pub request_id: Option<String>,
    /// Where a done copy's filestore came from (`zip`, `companion <key>`, `source <folder>`, `none`).
    #[serde(default)]
    pub filestore: Option<String>,
    /// How many attachments of a done copy point to a missing file.
    #[serde(default)]
    pub missing_attachments: Option<u64>,
    /// Whether the copy is anonymized (older journals: no).
    #[serde(default)]
    pub anonymize: bool,
    /// What the anonymization masked, once the copy is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymized: Option<AnonymizeReport>,
}

impl JournalEntry {
    /// A new running job's entry, owned by this process.
    pub fn new(job_id: &str, db_name: &str, callback: Option<String>, email: Option<String>) -> JournalEntry {
        JournalEntry {
            job_id: job_id.into(),
            db_name: db_name.into(),
            callback,
            email,
            state: JobState::Running,
            error: None,
            detail: None,
            client: None,
            started_at: Some(Utc::now()),
            finished_at: None,
            owner: Some(Owner::me()),
            request_id: None,
            filestore: None,
            missing_attachments: None,
            anonymize: false,
            anonymized: None,
        }
    }
}

impl JournalEntry {
    /// The job's status as far as the entry knows it: a running job is
    /// queued, an ended one done (progress 1) or failed.
    pub fn status(&self) -> JobStatus {
        let phase = self.state.last_phase().unwrap_or(Phase::Queued);
        let progress = (self.state == JobState::Done).then_some(1.0);
        JobStatus {
            job_id: self.job_id.clone(),
            db_name: self.db_name.clone(),
            state: self.state,
            phase,
            progress,
            error: self.error.clone(),
            started_at: self.started_at.unwrap_or_default(),
            finished_at: self.finished_at,
            backup: None,
            neutralized: None,
            filestore: self.filestore.clone(),
            missing_attachments: self.missing_attachments,
            anonymize: self.anonymize,
            anonymized: self.anonymized.clone(),
        }
    }
}

/// The directory of journal entries, `<data_dir>/numikube_staging/jobs/`.
pub struct Journal {
    dir: PathBuf,
}

impl Journal {
    /// The journal in `dir` (created on first write).
    pub fn new(dir: PathBuf) -> Journal {
        Journal { dir }
    }

    /// Where the entries are.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Writes a job's entry atomically and durably.
    pub fn write(&self, entry: &JournalEntry) -> std::io::Result<()> {
        crate::durable::write(&self.dir.join(format!("{}.json", entry.job_id)), &serde_json::to_vec(entry)?)
    }

    /// As [`Journal::write`], for a job already under way: a full disk must
    /// not fail the job, so a failure is only logged.
    pub fn write_or_log(&self, entry: &JournalEntry) {
        if let Err(e) = self.write(entry) {
            tracing::error!(job = %entry.job_id, "cannot write the job journal in {}: {e}; a restart now would forget this job", self.dir.display());
        }
    }

    /// Forgets a job's journal entry once production (or the requester) was told.
    pub fn forget(&self, job_id: &str) {
        let _ = std::fs::remove_file(self.dir.join(format!("{job_id}.json")));
    }

    /// Journal entries on disk (of this process and of others).
    pub fn entries(&self) -> Vec<JournalEntry> {
        let Ok(dir) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        dir.filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_entries_of_older_versions_still_read() {
        let old = r#"{"job_id":"j","db_name":"d","callback":null,"email":null,"state":"running","error":null,"detail":null}"#;
        let e: JournalEntry = serde_json::from_str(old).unwrap();
        assert!(e.owner.is_none() && e.state == JobState::Running);
    }

    #[test]
    fn entries_are_written_read_and_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::new(dir.path().join("jobs"));
        journal.write(&JournalEntry::new("j1", "cosmos-lab", None, None)).unwrap();
        assert_eq!(journal.entries().len(), 1);
        journal.forget("j1");
        assert!(journal.entries().is_empty());
    }
}
