//! Where backups come from: the bucket of production backups, which of its
//! objects are a client's, the newest one, read as a stream. The `minio`
//! crate stays behind this module (its API changes at every release).

pub mod companion;
mod ownership;

pub use ownership::Ownership;

use std::pin::Pin;

use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt, TryStreamExt};
use minio::s3::client::{MinioClient, MinioClientBuilder};
use minio::s3::creds::StaticProvider;
use minio::s3::error::{Error as MinioError, S3ServerError};
use minio::s3::http::BaseUrl;
use minio::s3::types::minio_error_response::MinioErrorCode;
use minio::s3::types::{S3Api, ToStream};
use numikube_staging_rpc::Reach;
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
    client: Option<MinioClient>,
    endpoint: String,
    bucket: String,
    ownership: Ownership,
}

impl BackupSource {
    /// Prepares a client for `storage`; nothing is contacted yet.
    pub fn new(storage: &StorageConfig, ownership: Ownership) -> anyhow::Result<Self> {
        let endpoint = storage.endpoint.clone().unwrap_or_default();
        let client = match &storage.endpoint {
            None => None,
            Some(url) => {
                let mut base: BaseUrl = url.parse().map_err(|e| anyhow::anyhow!("minio_endpoint `{url}` is not a URL: {e}"))?;
                base.region = minio::s3::types::Region::new(storage.region.clone())
                    .map_err(|e| anyhow::anyhow!("minio_region `{}` is not valid: {e}", storage.region))?;
                let provider = match (&storage.access_key, &storage.secret_key) {
                    (Some(a), Some(s)) => Some(StaticProvider::new(a, s, None)),
                    _ => None,
                };
                let client = MinioClientBuilder::new(base)
                    .provider(provider)
                    .skip_region_lookup(true)
                    .build()
                    .map_err(|e| anyhow::anyhow!("cannot set up the object storage client for {url}: {e}"))?;
                Some(client)
            }
        };
        Ok(BackupSource { client, endpoint, bucket: storage.bucket.clone(), ownership })
    }

    fn client(&self) -> Result<&MinioClient, SourceError> {
        self.client.as_ref().ok_or(SourceError::NotConfigured)
    }

    fn unavailable(&self, e: impl Into<MinioError>) -> SourceError {
        let e = e.into();
        if let MinioError::S3Server(S3ServerError::S3Error(response)) = &e {
            if matches!(response.code(), MinioErrorCode::NoSuchBucket) {
                return SourceError::NoBucket(self.bucket.clone());
            }
        }
        SourceError::Unavailable { endpoint: self.endpoint.clone(), detail: e.to_string() }
    }

    /// `ok` when the bucket can be read, else why not (for `staging_health`).
    pub async fn health(&self) -> Reach {
        let client = match self.client() {
            Ok(c) => c,
            Err(e) => return Reach::Down(e.to_string()),
        };
        let request = match client.bucket_exists(self.bucket.as_str()) {
            Ok(r) => r,
            Err(e) => return Reach::Down(self.unavailable(e).to_string()),
        };
        match request.build().send().await {
            Ok(r) if r.exists() => Reach::Ok,
            Ok(_) => Reach::Down(SourceError::NoBucket(self.bucket.clone()).to_string()),
            Err(e) => Reach::Down(self.unavailable(e).to_string()),
        }
    }

    /// Every object whose key starts with `prefix` (folders excluded).
    async fn objects(&self, prefix: String) -> Result<Vec<Backup>, SourceError> {
        let minio = self.client()?;
        let mut pages = minio
            .list_objects(self.bucket.as_str())
            .map_err(|e| self.unavailable(e))?
            .prefix(Some(prefix))
            .recursive(true)
            .build()
            .to_stream()
            .await;
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.unavailable(e))?;
            for entry in page.contents.into_iter().filter(|e| !e.is_prefix) {
                found.push(Backup {
                    etag: entry.etag.unwrap_or_default().trim_matches('"').to_string(),
                    size: entry.size.unwrap_or(0),
                    modified: entry.last_modified.unwrap_or_default(),
                    key: entry.name,
                });
            }
        }
        Ok(found)
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
        let minio = self.client()?;
        let response = minio
            .get_object(self.bucket.as_str(), backup.key.as_str())
            .map_err(|e| self.unavailable(e))?
            .build()
            .send()
            .await
            .map_err(|e| self.unavailable(e))?;
        let (stream, _size) = response.into_boxed_stream().map_err(|e| self.unavailable(e))?;
        let stream: Pin<Box<dyn Stream<Item = std::io::Result<bytes::Bytes>> + Send>> = Box::pin(stream.map_err(std::io::Error::other));
        Ok(Box::pin(StreamReader::new(stream)))
    }
}
