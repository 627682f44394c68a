//! Where backups come from: the bucket of production backups, which of its
//! objects are a client's, the newest one, read as a stream. The S3 client
//! (`object_store`, Apache Arrow's) stays behind this module.

pub mod companion;
mod ownership;

pub use ownership::Ownership;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use numikube_staging_rpc::Reach;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::path::Path;
use object_store::{BackoffConfig, ClientOptions, ObjectStoreExt, RetryConfig};
use tokio::io::AsyncRead;
use tokio_util::io::StreamReader;

use crate::config::StorageConfig;

/// One backup object in the bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct Backup {
    /// Object key.
    pub key: String,
    /// ETag, which changes when the object is replaced.
    pub etag: String,
    /// Size in bytes.
    pub size: u64,
    /// Last-modified time, which decides which backup is newest.
    pub modified: DateTime<Utc>,
}

/// Why no backup could be had; each says what to check.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// `minio_endpoint` is not set.
    #[error("no object storage is configured: set minio_endpoint (or MINIO_ENDPOINT) in the staging odoo.conf")]
    NotConfigured,
    /// The bucket does not exist.
    #[error("the backup bucket \"{0}\" does not exist on the object storage; check backups_minio_bucket")]
    NoBucket(String),
    /// No key of the client in the bucket.
    #[error("no backup of client \"{client}\" in bucket \"{bucket}\" (looked for keys like \"{client}-daily-1.dump\", \"{client}_2026-11-24_03-00-00.zip\", \"{client}/…\" or \"{client}.zip\", or numikube_staging_backup_pattern)")]
    NoBackup {
        /// The client asked for.
        client: String,
        /// The bucket searched.
        bucket: String,
    },
    /// The backup asked for is not one of the client's.
    #[error("the backup \"{key}\" is not one of client \"{client}\"'s backups; pick one of those the environment lists")]
    NotTheClients {
        /// The key asked for.
        key: String,
        /// The client.
        client: String,
    },
    /// The server cannot be reached or answered an error.
    #[error("the object storage at {endpoint} cannot be read: {detail}")]
    Unavailable {
        /// The endpoint tried.
        endpoint: String,
        /// What the client said.
        detail: String,
    },
}

/// A byte stream of a backup, with its size.
pub type BackupReader = Pin<Box<dyn AsyncRead + Send>>;

/// The bucket of production backups.
#[derive(Clone)]
pub struct BackupSource {
    store: Option<Arc<AmazonS3>>,
    endpoint: String,
    bucket: String,
    ownership: Ownership,
}

/// How often a failed request is tried again: a few times within seconds, so
/// that a storage that is down is told as such quickly (object_store's default
/// tries for three minutes).
fn retry() -> RetryConfig {
    let backoff = BackoffConfig { init_backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(2), base: 2.0 };
    RetryConfig { backoff, max_retries: 3, retry_timeout: Duration::from_secs(15) }
}

impl BackupSource {
    /// Prepares a client for `storage`; nothing is contacted yet.
    pub fn new(storage: &StorageConfig, ownership: Ownership) -> anyhow::Result<Self> {
        let endpoint = storage.endpoint.clone().unwrap_or_default();
        let store = match &storage.endpoint {
            None => None,
            Some(url) => {
                reqwest::Url::parse(url).map_err(|e| anyhow::anyhow!("minio_endpoint `{url}` is not a URL: {e}"))?;
                // No whole-request timeout: a backup of many GB streams for minutes.
                let options =
                    ClientOptions::new().with_allow_http(true).with_timeout_disabled().with_connect_timeout(Duration::from_secs(10));
                let mut builder = AmazonS3Builder::new()
                    .with_endpoint(url.trim_end_matches('/'))
                    .with_allow_http(true)
                    .with_virtual_hosted_style_request(false)
                    .with_bucket_name(&storage.bucket)
                    .with_region(&storage.region)
                    .with_client_options(options)
                    .with_retry(retry());
                builder = match (&storage.access_key, &storage.secret_key) {
                    (Some(a), Some(s)) => builder.with_access_key_id(a).with_secret_access_key(s),
                    _ => builder.with_skip_signature(true),
                };
                let store = builder.build().map_err(|e| anyhow::anyhow!("cannot set up the object storage client for {url}: {e}"))?;
                Some(Arc::new(store))
            }
        };
        Ok(BackupSource { store, endpoint, bucket: storage.bucket.clone(), ownership })
    }

    fn store(&self) -> Result<&AmazonS3, SourceError> {
        self.store.as_deref().ok_or(SourceError::NotConfigured)
    }

    fn unavailable(&self, e: impl std::error::Error) -> SourceError {
        let detail = detail(&e);
        // S3's error body, which object_store keeps in its message.
        if detail.contains("<Code>NoSuchBucket</Code>") {
            return SourceError::NoBucket(self.bucket.clone());
        }
        SourceError::Unavailable { endpoint: self.endpoint.clone(), detail }
    }

    /// `ok` when the bucket can be read, else why not (for `staging_health`).
    pub async fn health(&self) -> Reach {
        let store = match self.store() {
            Ok(s) => s,
            Err(e) => return Reach::Down(e.to_string()),
        };
        // One key of the bucket's root: S3 answers NoSuchBucket for a missing bucket.
        let options = PaginatedListOptions { max_keys: Some(1), ..Default::default() };
        match store.list_paginated(None, options).await {
            Ok(_) => Reach::Ok,
            Err(e) => Reach::Down(self.unavailable(e).to_string()),
        }
    }

    /// Every object whose key starts with `prefix` (folders excluded).
    async fn objects(&self, prefix: String) -> Result<Vec<Backup>, SourceError> {
        let store = self.store()?;
        let mut found = Vec::new();
        let mut page_token = None;
        loop {
            let options = PaginatedListOptions { page_token, ..Default::default() };
            let page = store.list_paginated(Some(&prefix), options).await.map_err(|e| self.unavailable(e))?;
            found.extend(page.result.objects.into_iter().map(|o| Backup {
                etag: o.e_tag.unwrap_or_default().trim_matches('"').to_string(),
                size: o.size,
                modified: o.last_modified,
                key: o.location.to_string(),
            }));
            page_token = page.page_token;
            if page_token.is_none() {
                return Ok(found);
            }
        }
    }

    /// Every backup of `client`, by the ownership rule.
    pub async fn backups(&self, client: &str) -> Result<Vec<Backup>, SourceError> {
        let mut found = self.objects(self.ownership.prefix(client)).await?;
        found.retain(|b| self.ownership.belongs_to(&b.key, client));
        Ok(found)
    }

    /// The newest backup of `client` by last-modified time (key breaks ties).
    pub async fn newest(&self, client: &str) -> Result<Backup, SourceError> {
        let backups = self.backups(client).await?;
        backups
            .into_iter()
            .max_by(|a, b| a.modified.cmp(&b.modified).then_with(|| a.key.cmp(&b.key)))
            .ok_or_else(|| SourceError::NoBackup { client: client.into(), bucket: self.bucket.clone() })
    }

    /// The backup `key` of `client`, or the newest when `key` is `None`.
    pub async fn chosen(&self, client: &str, key: Option<&str>) -> Result<Backup, SourceError> {
        let Some(key) = key else { return self.newest(client).await };
        self.backups(client)
            .await?
            .into_iter()
            .find(|b| b.key == key)
            .ok_or_else(|| SourceError::NotTheClients { key: key.into(), client: client.into() })
    }

    /// The companion archive of `backup` (its filestore, beside it in the
    /// bucket), if there is one; the newest when there are several.
    pub async fn companion(&self, backup: &Backup) -> Result<Option<Backup>, SourceError> {
        let candidates = companion::candidates(&backup.key);
        let found = self.objects(format!("{}.filestore.tar", companion::stem(&backup.key))).await?;
        Ok(found
            .into_iter()
            .filter(|o| candidates.contains(&o.key))
            .max_by(|a, b| a.modified.cmp(&b.modified).then_with(|| a.key.cmp(&b.key))))
    }

    /// Opens `backup` as a stream; nothing is held in memory beyond a chunk.
    pub async fn open(&self, backup: &Backup) -> Result<BackupReader, SourceError> {
        let store = self.store()?;
        let path = Path::parse(&backup.key).map_err(|e| self.unavailable(e))?;
        let response = store.get(&path).await.map_err(|e| self.unavailable(e))?;
        let stream = response.into_stream().map_err(std::io::Error::other);
        Ok(Box::pin(StreamReader::new(stream)))
    }
}

/// The error and its causes on one line, as the S3 client gives them.
fn detail(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text = format!("{text}: {said}");
        }
        source = cause.source();
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
