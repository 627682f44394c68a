//! The copy's filestore filled beside the load: a companion archive unpacked,
//! or production's filestore linked, on a blocking thread while the database
//! loads. The first failure of either stops the other; a dropped job stops
//! the thread too, and a stopped thread removes what it wrote, so that
//! nothing is left behind.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::task::JoinHandle;

use super::companion::CompanionError;
use crate::storage::SourceError;

/// Why filling the filestore failed.
#[derive(Debug, thiserror::Error)]
pub enum FillError {
    /// The companion archive was refused or could not be unpacked.
    #[error(transparent)]
    Companion(#[from] CompanionError),
    /// Production's filestore could not be linked (or copied).
    #[error("linking {} failed: {source}", folder.display())]
    Link {
        /// The source folder.
        folder: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The thread died (a bug).
    #[error("the filling thread failed: {0}")]
    Thread(String),
}

/// Why a copy's filestore could not be had.
#[derive(Debug, thiserror::Error)]
pub enum FilestoreError {
    /// The companion archive could not be looked up or read from the bucket.
    #[error("the object {key} could not be read: {source}")]
    Open {
        /// Its key.
        key: String,
        /// Why.
        source: SourceError,
    },
    /// Filling failed.
    #[error("filling the filestore from {origin}: {source}")]
    Fill {
        /// Where it was filled from (`companion <key>`, `source <folder>`).
        origin: String,
        /// Why.
        source: FillError,
    },
}

/// A filestore being filled; dropping it stops the thread.
pub struct Filling {
    /// Where the files come from, as the job report says it.
    origin: String,
    handle: Option<JoinHandle<Result<u64, FillError>>>,
    stop: Arc<AtomicBool>,
}

impl Filling {
    /// Starts `work` (which checks the stop flag it is given) on a blocking
    /// thread, filling `dir` from `origin`.
    pub fn start(origin: String, dir: &Path, work: impl FnOnce(&AtomicBool) -> Result<u64, FillError> + Send + 'static) -> Filling {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, dir) = (stop.clone(), dir.to_path_buf());
        let handle = tokio::task::spawn_blocking(move || {
            let outcome = work(&flag);
            if flag.load(Ordering::Relaxed) {
                // The job failed meanwhile: its discard may have run already.
                let _ = std::fs::remove_dir_all(&dir);
            }
            outcome
        });
        Filling { origin, handle: Some(handle), stop }
    }

    /// Runs `load` while the filestore fills; fails with the first failure of
    /// either, after the other stopped.
    pub async fn beside<T, E: From<FilestoreError>>(mut self, load: impl Future<Output = Result<T, E>>) -> Result<T, E> {
        let mut handle = self.handle.take().expect("a filling is awaited once");
        let started = Instant::now();
        tokio::pin!(load);
        tokio::select! {
            loaded = &mut load => match loaded {
                Ok(value) => {
                    self.finished((&mut handle).await, started).map_err(E::from)?;
                    Ok(value)
                }
                Err(e) => {
                    self.stop.store(true, Ordering::Relaxed);
                    let _ = handle.await;
                    Err(e)
                }
            },
            filled = &mut handle => {
                // On failure the load is dropped here, which stops it (its tools are killed on drop).
                self.finished(filled, started).map_err(E::from)?;
                load.await
            }
        }
    }

    fn finished(&self, filled: Result<Result<u64, FillError>, tokio::task::JoinError>, started: Instant) -> Result<(), FilestoreError> {
        let files = filled.map_err(|e| FillError::Thread(e.to_string())).and_then(|r| r).map_err(|source| self.failed(source))?;
        tracing::info!(origin = %self.origin, files, "filestore filled in {:.1?}", started.elapsed());
        Ok(())
    }

    fn failed(&self, source: FillError) -> FilestoreError {
        FilestoreError::Fill { origin: self.origin.clone(), source }
    }
}

impl Drop for Filling {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
