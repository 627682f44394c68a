//! testbed::S3 is a real S3 server: the minio crate (the sidecar's client)
//! uploads in parts, lists with ListObjectsV2 and streams objects back.

use std::io::Write;
use std::time::Duration;

use futures::StreamExt;
use minio::s3::builders::ObjectContent;
use minio::s3::types::{S3Api, ToStream};
use numikube_testbed::S3;

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

async fn list(client: &minio::s3::MinioClient, bucket: &str, prefix: Option<&str>) -> Vec<(String, u64, String)> {
    let mut stream = client
        .list_objects(bucket)
        .unwrap()
        .recursive(true)
        .use_api_v1(false) // ListObjectsV2
        .prefix(prefix.map(str::to_owned))
        .build()
        .to_stream()
        .await;
    let mut out = Vec::new();
    while let Some(page) = stream.next().await {
        for e in page.expect("list page").contents {
            out.push((e.name, e.size.unwrap(), e.etag.unwrap_or_default()));
        }
    }
    out.sort();
    out
}

async fn get(client: &minio::s3::MinioClient, bucket: &str, key: &str) -> Vec<u8> {
    let resp = client.get_object(bucket, key).unwrap().build().send().await.expect("get_object");
    let (mut stream, _size) = resp.content().unwrap().to_stream().await.unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minio_crate_uploads_multipart_lists_and_streams_back() {
    let s3 = S3::start().expect("start moto_server");
    assert_eq!(s3.endpoint(), format!("http://127.0.0.1:{}", s3.port));
    s3.create_bucket("dev-backups").unwrap();
    let client = s3.client().unwrap();

    // 12 MiB in 5 MiB parts: a real multipart upload (ETag "<md5>-3").
    let big = pattern(12 * MIB);
    client
        .put_object_content("dev-backups", "cosmos/2026-11-24.dump", ObjectContent::from(big.clone()))
        .unwrap()
        .part_size(Some(5 * MIB as u64))
        .build()
        .send()
        .await
        .expect("multipart upload");
    s3.put_bytes("dev-backups", "cosmos_small.zip", b"PK small".to_vec()).unwrap();
    s3.put_bytes("dev-backups", "other-client.dump", b"PGDMP other".to_vec()).unwrap();

    let all = list(&client, "dev-backups", None).await;
    let names: Vec<&str> = all.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, ["cosmos/2026-11-24.dump", "cosmos_small.zip", "other-client.dump"]);
    assert_eq!(all[0].1, (12 * MIB) as u64);
    assert!(all[0].2.trim_matches('"').ends_with("-3"), "multipart ETag, got {}", all[0].2);
    let cosmos = list(&client, "dev-backups", Some("cosmos")).await;
    assert_eq!(cosmos.len(), 2);

    assert!(get(&client, "dev-backups", "cosmos/2026-11-24.dump").await == big, "round trip of 12 MiB");
    assert_eq!(get(&client, "dev-backups", "cosmos_small.zip").await, b"PK small");

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
    let client = s3.client().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let back = rt.block_on(async { tokio::time::timeout(Duration::from_secs(60), get(&client, "bkt", "cosmos-prod.dump")).await.unwrap() });
    assert!(back == content);
}
