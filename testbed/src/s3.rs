//! moto's S3 server (`moto_server`, PyPI `moto[server]`) on a free loopback port.
//!
//! Chosen over `s3s-fs` because moto lists, pages and does multipart uploads
//! like S3 and MinIO, and answers S3's error codes (`NoSuchBucket`).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context};
use futures::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::io::AsyncReadExt;

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
/// Uploads go through `object_store` (the client the sidecar uses), streaming
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

    /// An `object_store` client for `bucket` on this server (credentials set, path-style, HTTP).
    pub fn client(&self, bucket: &str) -> anyhow::Result<AmazonS3> {
        AmazonS3Builder::new()
            .with_endpoint(self.endpoint())
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .with_bucket_name(bucket)
            .with_region("us-east-1")
            .with_access_key_id(&self.access_key)
            .with_secret_access_key(&self.secret_key)
            .build()
            .context("cannot set up the object_store client")
    }

    /// Creates bucket `name`.
    pub fn create_bucket(&self, name: &str) -> anyhow::Result<()> {
        self.do_create_bucket(name)?;
        self.ops.lock().unwrap().push(Op::Bucket(name.to_owned()));
        Ok(())
    }

    /// A plain `PUT /bucket` (object_store has no bucket calls; moto takes it unsigned).
    fn do_create_bucket(&self, name: &str) -> anyhow::Result<()> {
        let request = format!("PUT /{name} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\n\r\n", self.port);
        let answer = util::probe(self.port, request.as_bytes()).unwrap_or_default();
        if !answer.starts_with("HTTP/1.0 200") && !answer.starts_with("HTTP/1.1 200") {
            bail!("cannot create bucket {name}: {}", answer.lines().next().unwrap_or("no answer"));
        }
        Ok(())
    }

    /// Uploads the file at `path` as `bucket`/`key`, streamed (multipart in
    /// 16 MiB parts above 16 MiB), never read into memory whole.
    pub fn put_file(&self, bucket: &str, key: &str, path: &Path) -> anyhow::Result<()> {
        self.do_put_file(bucket, key, path).with_context(|| format!("cannot upload {} as {bucket}/{key}", path.display()))?;
        self.record(Op::File(bucket.into(), key.into(), path.to_owned()));
        Ok(())
    }

    /// Uploads `bytes` as `bucket`/`key`.
    pub fn put_bytes(&self, bucket: &str, key: &str, bytes: impl Into<Vec<u8>>) -> anyhow::Result<()> {
        let bytes = bytes.into();
        self.do_put_bytes(bucket, key, bytes.clone()).with_context(|| format!("cannot upload {bucket}/{key}"))?;
        self.record(Op::Bytes(bucket.into(), key.into(), bytes));
        Ok(())
    }

    fn do_put_bytes(&self, bucket: &str, key: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
        let store = self.client(bucket)?;
        util::block_on(async move {
            store.put(&Key::parse(key)?, PutPayload::from(bytes)).await?;
            anyhow::Ok(())
        })
    }

    fn do_put_file(&self, bucket: &str, key: &str, path: &Path) -> anyhow::Result<()> {
        const PART: usize = 16 << 20;
        if std::fs::metadata(path)?.len() <= PART as u64 {
            return self.do_put_bytes(bucket, key, std::fs::read(path)?);
        }
        let store = self.client(bucket)?;
        util::block_on(async move {
            let mut file = tokio::fs::File::open(path).await?;
            let mut upload = WriteMultipart::new_with_chunk_size(store.put_multipart(&Key::parse(key)?).await?, PART);
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = file.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                upload.wait_for_capacity(2).await?;
                upload.write(&buf[..n]);
            }
            upload.finish().await?;
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
        let store = self.client(bucket)?;
        util::block_on(async move {
            store.delete(&Key::parse(key)?).await?;
            anyhow::Ok(())
        })
        .with_context(|| format!("cannot delete {bucket}/{key}"))?;
        self.ops.lock().unwrap().retain(|o| !matches!(o, Op::File(b, k, _) | Op::Bytes(b, k, _) if b == bucket && k == key));
        Ok(())
    }

    /// Keys and sizes of all objects of `bucket` (ListObjectsV2, recursive), by key.
    pub fn list(&self, bucket: &str) -> anyhow::Result<Vec<(String, u64)>> {
        let store = self.client(bucket)?;
        util::block_on(async move {
            let mut out: Vec<(String, u64)> = store.list(None).map_ok(|o| (o.location.to_string(), o.size)).try_collect().await?;
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
                Op::File(b, k, p) => {
                    self.do_put_file(b, k, p).with_context(|| format!("cannot upload {} again as {b}/{k}", p.display()))?
                }
                Op::Bytes(b, k, bytes) => self.do_put_bytes(b, k, bytes.clone())?,
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
