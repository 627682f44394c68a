//! A deliberately dumb HTTP/1.1 client over a raw TCP socket, so the tests see the bytes on the wire.

#![allow(dead_code)] // each test binary uses part of it

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A response as read off the socket.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Sends one request with `Connection: close` and reads the whole answer.
pub async fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("the server answered within 10 s")
        .unwrap();
    let raw = String::from_utf8(raw).expect("a UTF-8 answer");
    let (head, rest) = raw.split_once("\r\n\r\n").expect("a complete head");
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    let mut reply = Reply { status, headers, body: String::new() };
    reply.body = if reply.header("transfer-encoding") == Some("chunked") { dechunk(rest) } else { rest.to_owned() };
    reply
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").expect("a chunk size line");
        let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
}

/// Parses a scrape with the `prometheus-parse` crate, first checking that it skipped no line.
///
/// That parser silently ignores lines it cannot read, so a malformed line would otherwise pass.
pub fn parse_scrape(text: &str) -> prometheus_parse::Scrape {
    for line in text.lines() {
        let known_comment = line == "# EOF" || line.starts_with("# UNIT ");
        let ignored = matches!(prometheus_parse::LineInfo::parse(line), prometheus_parse::LineInfo::Ignored);
        assert!(!ignored || known_comment, "unparsable line {line:?} in:\n{text}");
    }
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("a scrape")
}
