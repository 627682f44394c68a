//! moto's S3 server (`moto_server`, PyPI `moto[server]`) on a free loopback port.
//!
//! Chosen over `s3s-fs` because the minio 0.4 crate always sends an empty
//! `delimiter=` when listing: moto lists like S3 and MinIO there, s3s-fs lists nothing.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context};
use futures::StreamExt;
use minio::s3::builders::ObjectContent;
use minio::s3::creds::StaticProvider;
use minio::s3::http::BaseUrl;
use minio::s3::types::{S3Api, ToStream};
use minio::s3::{MinioClient, MinioClientBuilder};

use crate::util;

/// What this helper put into the server, replayed by [`S3::start_again`]
/// (moto keeps everything in memory).
enum Op {
    Bucket(String),
    File(String, String, PathBuf),
    Bytes(String, String, Vec<u8>),
}

/// A real S3-compatible server (moto) on `127.0.0.1`, stopped on `Drop`.
///
/// Uploads go through the `minio` crate (the client the sidecar uses), streaming
/// files in multipart parts, so a large backup is never read into memory.
/// moto accepts any credentials; use [`access_key`](Self::access_key) and
/// [`secret_key`](Self::secret_key).
pub struct S3 {
    /// TCP port on 127.0.0.1.
    pub port: u16,
    /// Access key to give clients (moto accepts any).
    pub access_key: String,
    /// Secret key to give clients (moto accepts any).
    pub secret_key: String,
    program: PathBuf,
    child: Option<Child>,
    ops: Mutex<Vec<Op>>,
    // Holds the server's log; removed on drop.
    dir: tempfile::TempDir,
}

impl S3 {
    /// Starts `moto_server` (found on `PATH`, else in the venv of
    /// `scripts/install-deps`) on a free port; returns once it answers HTTP.
    pub fn start() -> anyhow::Result<S3> {
        let mut s3 = S3 {
            port: 0,
            access_key: "testkey".into(),
            secret_key: "testsecret".into(),
            program: util::venv_tool("moto_server")?,
            child: None,
            ops: Mutex::new(Vec::new()),
            dir: tempfile::Builder::new().prefix("numikube-s3-").tempdir()?,
        };
        let mut last_err = None;
        for _ in 0..5 {
            s3.port = crate::free_port();
            match s3.spawn() {
                Ok(()) => return Ok(s3),
                Err(e) if util::tail(&s3.log_file(), 4000).contains("already in use") => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap())
    }

    fn log_file(&self) -> PathBuf {
        self.dir.path().join("moto.log")
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = File::options().create(true).append(true).open(self.log_file())?;
        let mut child = Command::new(&self.program)
            .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot run {}", self.program.display()))?;
        let port = self.port;
        let mut exited = false;
        let up = util::wait_until(Duration::from_secs(60), || {
            exited = matches!(child.try_wait(), Ok(Some(_)));
            exited || util::probe(port, b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_some_and(|a| a.starts_with("HTTP/"))
        });
        if !up || exited {
            util::terminate(&mut child);
            bail!("moto_server did not start on port {port}:\n{}", util::tail(&self.log_file(), 2000));
        }
        self.child = Some(child);
        Ok(())
    }

    /// The server's URL, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A `minio` client for this server (credentials set, region lookup skipped).
    pub fn client(&self) -> anyhow::Result<MinioClient> {
        let base_url: BaseUrl = self.endpoint().parse().context("base url")?;
        Ok(MinioClientBuilder::new(base_url)
            .provider(Some(StaticProvider::new(&self.access_key, &self.secret_key, None)))
            .skip_region_lookup(true)
            .build()?)
    }

    /// Creates bucket `name`.
    pub fn create_bucket(&self, name: &str) -> anyhow::Result<()> {
        self.do_create_bucket(name)?;
        self.ops.lock().unwrap().push(Op::Bucket(name.to_owned()));
        Ok(())
    }

    fn do_create_bucket(&self, name: &str) -> anyhow::Result<()> {
        let client = self.client()?;
        util::block_on(async move {
            client.create_bucket(name)?.build().send().await?;
            anyhow::Ok(())
        })
        .with_context(|| format!("cannot create bucket {name}"))
    }

    /// Uploads the file at `path` as `bucket`/`key`, streamed (multipart above
    /// 64 MiB parts), never read into memory whole.
    pub fn put_file(&self, bucket: &str, key: &str, path: &Path) -> anyhow::Result<()> {
        self.do_put(bucket, key, ObjectContent::from(path))
            .with_context(|| format!("cannot upload {} as {bucket}/{key}", path.display()))?;
        self.record(Op::File(bucket.into(), key.into(), path.to_owned()));
        Ok(())
    }

    /// Uploads `bytes` as `bucket`/`key`.
    pub fn put_bytes(&self, bucket: &str, key: &str, bytes: impl Into<Vec<u8>>) -> anyhow::Result<()> {
        let bytes = bytes.into();
        self.do_put(bucket, key, ObjectContent::from(bytes.clone())).with_context(|| format!("cannot upload {bucket}/{key}"))?;
        self.record(Op::Bytes(bucket.into(), key.into(), bytes));
        Ok(())
    }

    fn do_put(&self, bucket: &str, key: &str, content: ObjectContent) -> anyhow::Result<()> {
        let client = self.client()?;
        util::block_on(async move {
            client.put_object_content(bucket, key, content)?.build().send().await?;
            anyhow::Ok(())
        })
    }

    fn record(&self, op: Op) {
        let mut ops = self.ops.lock().unwrap();
        if let Op::File(b, k, _) | Op::Bytes(b, k, _) = &op {
            ops.retain(|o| !matches!(o, Op::File(b2, k2, _) | Op::Bytes(b2, k2, _) if b2 == b && k2 == k));
        }
        ops.push(op);
    }

    /// Deletes object `bucket`/`key`.
    pub fn delete(&self, bucket: &str, key: &str) -> anyhow::Result<()> {
        let client = self.client()?;
        util::block_on(async move {
            client.delete_object(bucket, key)?.build().send().await?;
            anyhow::Ok(())
        })
        .with_context(|| format!("cannot delete {bucket}/{key}"))?;
        self.ops.lock().unwrap().retain(|o| !matches!(o, Op::File(b, k, _) | Op::Bytes(b, k, _) if b == bucket && k == key));
        Ok(())
    }

    /// Keys and sizes of all objects of `bucket` (ListObjectsV2, recursive), by key.
    pub fn list(&self, bucket: &str) -> anyhow::Result<Vec<(String, u64)>> {
        let client = self.client()?;
        util::block_on(async move {
            let mut out = Vec::new();
            let mut pages = client.list_objects(bucket)?.recursive(true).use_api_v1(false).build().to_stream().await;
            while let Some(page) = pages.next().await {
                for entry in page?.contents {
                    out.push((entry.name, entry.size.unwrap_or(0)));
                }
            }
            out.sort();
            anyhow::Ok(out)
        })
    }

    /// Stops the server, so that clients get "connection refused" (a "storage
    /// down" test). moto keeps its data in memory: [`start_again`](Self::start_again)
    /// restores what was put through this helper.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            util::terminate(&mut child);
        }
        let port = self.port;
        if !util::wait_until(Duration::from_secs(10), || !util::port_open(port)) {
            bail!("moto_server still answers on port {port} after being stopped");
        }
        Ok(())
    }

    /// Starts the server again on the same port after [`stop`](Self::stop) and puts
    /// back, in their original order, the buckets and objects this helper had
    /// created (files are read again from their paths). Objects uploaded by other
    /// clients are lost. Does nothing when the server is running.
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        if self.child.is_some() {
            return Ok(());
        }
        // The old socket may linger for a moment.
        let mut tries = 0;
        loop {
            match self.spawn() {
                Ok(()) => break,
                Err(e) if tries < 20 && util::tail(&self.log_file(), 4000).contains("already in use") => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(100));
                    let _ = e;
                }
                Err(e) => return Err(e),
            }
        }
        let ops = std::mem::take(&mut *self.ops.lock().unwrap());
        for op in &ops {
            match op {
                Op::Bucket(b) => self.do_create_bucket(b)?,
                Op::File(b, k, p) => self
                    .do_put(b, k, ObjectContent::from(p.as_path()))
                    .with_context(|| format!("cannot upload {} again as {b}/{k}", p.display()))?,
                Op::Bytes(b, k, bytes) => self.do_put(b, k, ObjectContent::from(bytes.clone()))?,
            }
        }
        *self.ops.lock().unwrap() = ops;
        Ok(())
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            util::terminate(&mut child);
        }
    }
}
