//! testbed::S3 is a real S3 server: object_store (the sidecar's client)
//! uploads in parts, lists with ListObjectsV2 and streams objects back.

use std::io::Write;
use std::time::Duration;

use futures::StreamExt;
use numikube_testbed::S3;
use object_store::aws::AmazonS3;
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::path::Path;
use object_store::{ObjectStoreExt, WriteMultipart};

const MIB: usize = 1024 * 1024;

/// Deterministic, non-repeating-looking content.
fn pattern(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// ListObjectsV2 of the keys starting with `prefix` (a plain string prefix, as the sidecar lists).
async fn list(client: &AmazonS3, prefix: Option<&str>) -> Vec<(String, u64, String)> {
    let page = client.list_paginated(prefix, PaginatedListOptions::default()).await.expect("list");
    assert!(page.page_token.is_none(), "one page");
    let mut out: Vec<_> = page.result.objects.into_iter().map(|o| (o.location.to_string(), o.size, o.e_tag.unwrap_or_default())).collect();
    out.sort();
    out
}

async fn get(client: &AmazonS3, key: &str) -> Vec<u8> {
    let mut stream = client.get(&Path::parse(key).unwrap()).await.expect("get").into_stream();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_store_uploads_multipart_lists_and_streams_back() {
    let s3 = S3::start().expect("start moto_server");
    assert_eq!(s3.endpoint(), format!("http://127.0.0.1:{}", s3.port));
    s3.create_bucket("dev-backups").unwrap();
    let client = s3.client("dev-backups").unwrap();

    // 12 MiB in 5 MiB parts: a real multipart upload (ETag "<md5>-3").
    let big = pattern(12 * MIB);
    let upload = client.put_multipart(&Path::from("cosmos/2026-11-24.dump")).await.unwrap();
    let mut upload = WriteMultipart::new_with_chunk_size(upload, 5 * MIB);
    upload.write(&big);
    upload.finish().await.expect("multipart upload");
    s3.put_bytes("dev-backups", "cosmos_small.zip", b"PK small".to_vec()).unwrap();
    s3.put_bytes("dev-backups", "other-client.dump", b"PGDMP other".to_vec()).unwrap();

    let all = list(&client, None).await;
    let names: Vec<&str> = all.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, ["cosmos/2026-11-24.dump", "cosmos_small.zip", "other-client.dump"]);
    assert_eq!(all[0].1, (12 * MIB) as u64);
    assert!(all[0].2.trim_matches('"').ends_with("-3"), "multipart ETag, got {}", all[0].2);
    let cosmos = list(&client, Some("cosmos")).await;
    assert_eq!(cosmos.len(), 2);

    assert!(get(&client, "cosmos/2026-11-24.dump").await == big, "round trip of 12 MiB");
    assert_eq!(get(&client, "cosmos_small.zip").await, b"PK small");

    // The helper's own listing and delete.
    s3.delete("dev-backups", "other-client.dump").unwrap();
    let keys: Vec<String> = s3.list("dev-backups").unwrap().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["cosmos/2026-11-24.dump", "cosmos_small.zip"]);
}

#[test]
fn put_file_streams_a_file_and_storage_comes_back_after_stop() {
    let mut s3 = S3::start().unwrap();
    s3.create_bucket("bkt").unwrap();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    let content = pattern(7 * MIB);
    file.write_all(&content).unwrap();
    file.flush().unwrap();
    s3.put_file("bkt", "cosmos-prod.dump", file.path()).unwrap();
    s3.put_bytes("bkt", "gone", b"x".to_vec()).unwrap();
    s3.delete("bkt", "gone").unwrap();
    assert_eq!(s3.list("bkt").unwrap(), [("cosmos-prod.dump".to_owned(), (7 * MIB) as u64)]);

    // Storage down: clients get an error, not a hang.
    s3.stop().unwrap();
    let err = s3.list("bkt").unwrap_err();
    assert!(!format!("{err:#}").is_empty());
    assert!(std::net::TcpStream::connect(("127.0.0.1", s3.port)).is_err());

    // Back on the same port, with what the helper had put.
    s3.start_again().unwrap();
    assert_eq!(s3.list("bkt").unwrap(), [("cosmos-prod.dump".to_owned(), (7 * MIB) as u64)]);
    let client = s3.client("bkt").unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let back = rt.block_on(async { tokio::time::timeout(Duration::from_secs(60), get(&client, "cosmos-prod.dump")).await.unwrap() });
    assert!(back == content);
}
