//! One click, one copy: a run whose `request_id` was answered in the last
//! [`WINDOW`] gets that first answer again and makes nothing new (Odoo retries
//! a transaction on a serialization failure; a user double-clicks).
//!
//! Requests with the same id wait for each other, so two at once still make
//! one copy. Answers live in memory and in `<data_dir>/numikube_staging/requests.json`
//! (written atomically at each new answer), so a restart keeps them; at load,
//! ids of the journal's entries are added too. Refusals are not remembered:
//! they made nothing, and a retry may succeed.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};
use numikube_staging_rpc::{RunResult, RunStarted};
use serde::{Deserialize, Serialize};

use crate::report::journal::JournalEntry;

/// How long an answer is given again.
pub const WINDOW: TimeDelta = TimeDelta::hours(24);

/// The most answers kept: the newest, so that a flood of ids cannot grow the store without bound.
pub const MAX_ANSWERS: usize = 10_000;

/// The key of a request id: one client's id never answers another client's request.
pub fn key(client: Option<&str>, request_id: &str) -> String {
    match client.filter(|c| !c.is_empty()) {
        Some(client) => format!("{client}/{request_id}"),
        None => request_id.to_string(),
    }
}

/// One remembered answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Answered {
    /// When it was first given.
    at: DateTime<Utc>,
    /// The answer.
    answer: RunResult,
}

/// The answers by `request_id`, and who is answering which id now.
pub struct Replay {
    path: PathBuf,
    answers: Mutex<BTreeMap<String, Answered>>,
    answering: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Replay {
    /// The answers kept in `state_dir`, plus the request ids of `journal`'s entries.
    pub fn load(state_dir: PathBuf, journal: &[JournalEntry]) -> Replay {
        let path = state_dir.join("requests.json");
        let mut answers: BTreeMap<String, Answered> = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!("{} cannot be read ({e}); repeated requests are not recognized until it is written again", path.display());
                BTreeMap::new()
            }),
            Err(_) => BTreeMap::new(),
        };
        for entry in journal {
            let Some(id) = &entry.request_id else {
                continue;
            };
            let at = entry.started_at.unwrap_or_else(Utc::now);
            let answer = RunResult::Started(RunStarted {
                db_name: entry.db_name.clone(),
                job_id: entry.job_id.clone(),
                backup: None,
                anonymize: entry.anonymize,
            });
            answers.entry(key(entry.client.as_deref(), id)).or_insert(Answered { at, answer });
        }
        Replay { path, answers: Mutex::new(answers), answering: Mutex::new(HashMap::new()) }
    }

    /// The first answer to `id` if there was one in the last [`WINDOW`], else
    /// `run`'s, which is remembered when it succeeds.
    pub async fn once<E, F>(&self, id: &str, run: F) -> Result<RunResult, E>
    where
        F: Future<Output = Result<RunResult, E>>,
    {
        let turn = self.answering.lock().unwrap().entry(id.to_string()).or_default().clone();
        let _one_at_a_time = turn.lock().await;
        if let Some(answer) = self.remembered(id) {
            tracing::info!(request_id = %id, "a repeated request gets the first answer");
            return Ok(answer);
        }
        let answer = run.await?;
        self.remember(id, &answer);
        Ok(answer)
    }

    /// The answer to `id` within the window.
    fn remembered(&self, id: &str) -> Option<RunResult> {
        let answers = self.answers.lock().unwrap();
        answers.get(id).filter(|a| Utc::now() - a.at < WINDOW).map(|a| a.answer.clone())
    }

    /// Keeps the answer to `id`, forgets those out of the window, writes the file.
    fn remember(&self, id: &str, answer: &RunResult) {
        let mut answers = self.answers.lock().unwrap();
        let now = Utc::now();
        answers.retain(|_, a| now - a.at < WINDOW);
        if answers.len() >= MAX_ANSWERS {
            let mut ages: Vec<DateTime<Utc>> = answers.values().map(|a| a.at).collect();
            ages.sort_unstable();
            let cut = ages[answers.len() - MAX_ANSWERS];
            answers.retain(|_, a| a.at > cut);
        }
        answers.insert(id.to_string(), Answered { at: now, answer: answer.clone() });
        self.answering.lock().unwrap().retain(|k, turn| answers.contains_key(k) || Arc::strong_count(turn) > 1);
        if let Err(e) = crate::durable::write(&self.path, &serde_json::to_vec(&*answers).expect("answers serialize")) {
            tracing::error!(
                "cannot write {}: {e}; after a restart, a repeat of request {id} would make a second copy",
                self.path.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(job: &str) -> RunResult {
        RunResult::Started(RunStarted { db_name: "cosmos-lab".into(), job_id: job.into(), backup: None, anonymize: false })
    }

    #[tokio::test]
    async fn a_repeat_gets_the_first_answer_even_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let replay = Replay::load(dir.path().to_path_buf(), &[]);
        let first: Result<_, ()> = replay.once("r1", async { Ok(started("j1")) }).await;
        let again: Result<_, ()> = replay.once("r1", async { Ok(started("j2")) }).await;
        assert_eq!(first, again);
        let refused: Result<RunResult, &str> = replay.once("r2", async { Err("no") }).await;
        assert!(refused.is_err());
        let retried: Result<_, ()> = replay.once("r2", async { Ok(started("j3")) }).await;
        assert_eq!(retried, Ok(started("j3")));
        let restarted = Replay::load(dir.path().to_path_buf(), &[]);
        let after: Result<_, ()> = restarted.once("r1", async { Ok(started("j4")) }).await;
        assert_eq!(after, Ok(started("j1")));
    }

    #[tokio::test]
    async fn request_ids_of_the_journal_are_known_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let entry = JournalEntry {
            request_id: Some("r".into()),
            client: Some("cosmos".into()),
            ..JournalEntry::new("j1", "cosmos-lab", None, None)
        };
        let replay = Replay::load(dir.path().to_path_buf(), &[entry]);
        let again: Result<_, ()> = replay.once(&key(Some("cosmos"), "r"), async { Ok(started("j2")) }).await;
        assert_eq!(again, Ok(started("j1")));
        let other: Result<_, ()> = replay.once(&key(Some("flex"), "r"), async { Ok(started("j3")) }).await;
        assert_eq!(other, Ok(started("j3")), "another client's id is another request");
    }

    #[tokio::test]
    async fn the_store_keeps_the_newest_answers_only() {
        let dir = tempfile::tempdir().unwrap();
        let replay = Replay::load(dir.path().to_path_buf(), &[]);
        {
            let mut answers = replay.answers.lock().unwrap();
            let old = Utc::now() - TimeDelta::hours(1);
            for i in 0..MAX_ANSWERS {
                answers.insert(format!("r{i}"), Answered { at: old + TimeDelta::milliseconds(i as i64), answer: started("j") });
            }
        }
        let _: Result<_, ()> = replay.once("new", async { Ok(started("j-new")) }).await;
        let answers = replay.answers.lock().unwrap();
        assert!(answers.len() <= MAX_ANSWERS, "{}", answers.len());
        assert!(answers.contains_key("new") && !answers.contains_key("r0"));
    }
}
