//! An in-process HTTP server (tiny_http on a thread) standing in for production's
//! callback route `/web/staging/callback/<id>?db=…`.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{json, Value};

use crate::util;

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct ReceivedRequest {
    /// HTTP method, e.g. `"POST"`.
    pub method: String,
    /// Path without the query, e.g. `"/web/staging/callback/42"`.
    pub path: String,
    /// Raw query string without `?` (empty when there is none), e.g. `"db=prod"`.
    pub query: String,
    /// Request headers (names as sent).
    pub headers: Vec<(String, String)>,
    /// Body parsed as JSON; `Value::Null` when empty, a JSON string when not JSON.
    pub body: Value,
    /// Body as text.
    pub body_text: String,
}

impl ReceivedRequest {
    /// Value of query parameter `name`, percent-decoded (`+` is a space).
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k) == name).then(|| decode(v))
        })
    }

    /// Value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How the receiver answers one request (see [`CallbackReceiver::respond_with`]).
#[derive(Clone, Debug)]
pub enum Answer {
    /// HTTP 200 with `{"jsonrpc":"2.0","id":null,"result":true}`: what production's
    /// callback route answers when it accepted the callback. The default.
    Ok,
    /// This HTTP status with this JSON body.
    Json(u16, Value),
    /// This HTTP status with a short plain-text body (e.g. 503 for "Odoo restarting").
    Status(u16),
    /// HTTP 200 carrying Odoo's JSON-RPC error envelope with this
    /// `error.data.message` (what an Odoo `type="json"` route answers on an exception).
    OdooError(String),
    /// No HTTP answer: bytes that are not HTTP are sent, so the client fails at
    /// once without a status, as when the connection drops.
    Close,
    /// Waits this long, then answers as the inner answer (for client time-outs).
    Delay(Duration, Box<Answer>),
}

impl Answer {
    /// The JSON body of Odoo's error envelope for `message`.
    pub fn odoo_error_body(message: &str) -> Value {
        json!({
            "jsonrpc": "2.0",
            "id": null,
            "error": {
                "code": 200,
                "message": "Odoo Server Error",
                "data": {
                    "name": "odoo.exceptions.UserError",
                    "debug": format!("Traceback (most recent call last):\nodoo.exceptions.UserError: {message}"),
                    "message": message,
                    "arguments": [message],
                    "context": {}
                }
            }
        })
    }
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<ReceivedRequest>>,
    answers: Mutex<VecDeque<Answer>>,
    arrived: Condvar,
}

struct Running {
    server: Arc<tiny_http::Server>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// A real HTTP server on `127.0.0.1` that records every request and answers as
/// scripted ([`respond_with`](Self::respond_with)), then with [`Answer::Ok`].
/// Every answer carries `Connection: close`, so that after [`stop`](Self::stop)
/// no kept-alive connection still reaches it. Stopped on `Drop`.
pub struct CallbackReceiver {
    port: u16,
    shared: Arc<Shared>,
    running: Option<Running>,
}

impl CallbackReceiver {
    /// Starts the receiver on a free port.
    pub fn start() -> anyhow::Result<CallbackReceiver> {
        let mut last_err = None;
        for _ in 0..5 {
            let mut r = CallbackReceiver { port: crate::free_port(), shared: Arc::default(), running: None };
            match r.start_again() {
                Ok(()) => return Ok(r),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap())
    }

    /// TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// URL of `path_and_query` on this receiver, e.g.
    /// `url("/web/staging/callback/42?db=prod")` → `http://127.0.0.1:PORT/web/staging/callback/42?db=prod`.
    pub fn url(&self, path_and_query: &str) -> String {
        let sep = if path_and_query.starts_with('/') { "" } else { "/" };
        format!("http://127.0.0.1:{}{sep}{path_and_query}", self.port)
    }

    /// Every request received so far, oldest first (also those answered with
    /// [`Answer::Close`] or an error status).
    pub fn received(&self) -> Vec<ReceivedRequest> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests were received and returns them all;
    /// fails after `timeout` saying how many arrived.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> anyhow::Result<Vec<ReceivedRequest>> {
        let deadline = Instant::now() + timeout;
        let mut got = self.shared.received.lock().unwrap();
        while got.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("expected {n} request(s) within {timeout:?}, got {}", got.len());
            }
            got = self.shared.arrived.wait_timeout(got, left).unwrap().0;
        }
        Ok(got.clone())
    }

    /// Queues answers for the next requests, one per request in order, after
    /// those still queued; once the queue is empty every request gets [`Answer::Ok`].
    pub fn respond_with(&self, answers: Vec<Answer>) {
        self.shared.answers.lock().unwrap().extend(answers);
    }

    /// Stops listening (clients then get "connection refused") and waits until the
    /// port is closed. Recorded requests and queued answers are kept.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(r) = self.running.take() {
            r.stop.store(true, Ordering::SeqCst);
            r.server.unblock();
            let _ = r.thread.join();
            drop(r.server); // the last reference: closes the listener
        }
        let port = self.port;
        if !util::wait_until(Duration::from_secs(10), || !util::port_open(port)) {
            bail!("callback receiver still listening on port {port} after stop");
        }
        Ok(())
    }

    /// Listens again on the same port after [`stop`](Self::stop). Does nothing
    /// when it is running.
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        if self.running.is_some() {
            return Ok(());
        }
        let addr = ("127.0.0.1", self.port);
        let mut server = tiny_http::Server::http(addr);
        // The old listener may linger for a moment after stop().
        let deadline = Instant::now() + Duration::from_secs(5);
        while server.is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            server = tiny_http::Server::http(addr);
        }
        let server = Arc::new(server.map_err(|e| anyhow::anyhow!("cannot listen on 127.0.0.1:{}: {e}", self.port))?);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (server, stop, shared) = (server.clone(), stop.clone(), self.shared.clone());
            std::thread::spawn(move || serve(&server, &stop, &shared))
        };
        self.running = Some(Running { server, stop, thread });
        Ok(())
    }
}

fn serve(server: &tiny_http::Server, stop: &AtomicBool, shared: &Shared) {
    while !stop.load(Ordering::SeqCst) {
        let mut request = match server.recv_timeout(Duration::from_millis(100)) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(_) => break,
        };
        let mut body_text = String::new();
        let _ = request.as_reader().read_to_string(&mut body_text);
        let (path, query) = match request.url().split_once('?') {
            Some((p, q)) => (p.to_owned(), q.to_owned()),
            None => (request.url().to_owned(), String::new()),
        };
        let body = if body_text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&body_text).unwrap_or_else(|_| Value::String(body_text.clone()))
        };
        let received = ReceivedRequest {
            method: request.method().as_str().to_owned(),
            path,
            query,
            headers: request.headers().iter().map(|h| (h.field.to_string(), h.value.to_string())).collect(),
            body,
            body_text,
        };
        let answer = shared.answers.lock().unwrap().pop_front().unwrap_or(Answer::Ok);
        shared.received.lock().unwrap().push(received);
        shared.arrived.notify_all();
        // Answer on its own thread so that a Delay does not hold up other requests.
        std::thread::spawn(move || answer_request(request, answer));
    }
}

fn answer_request(request: tiny_http::Request, answer: Answer) {
    let (status, content_type, body) = match answer {
        Answer::Delay(d, inner) => {
            std::thread::sleep(d);
            return answer_request(request, *inner);
        }
        Answer::Close => {
            let mut w = request.into_writer();
            let _ = w.write_all(b"NOT-HTTP connection dropped by the test\r\n\r\n");
            let _ = w.flush();
            return;
        }
        Answer::Ok => (200, "application/json", json!({"jsonrpc": "2.0", "id": null, "result": true}).to_string()),
        Answer::Json(status, v) => (status, "application/json", v.to_string()),
        Answer::Status(status) => (status, "text/plain; charset=utf-8", format!("status {status} from the test receiver")),
        Answer::OdooError(message) => (200, "application/json", Answer::odoo_error_body(&message).to_string()),
    };
    // Written by hand: tiny_http drops a `Connection` header set on its responses,
    // and without `Connection: close` a kept-alive connection would outlive stop().
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut w = request.into_writer();
    let _ = w.write_all(head.as_bytes());
    let _ = w.write_all(body.as_bytes());
    let _ = w.flush();
}

impl Drop for CallbackReceiver {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn decodes_query_values() {
        assert_eq!(decode("a%20b+c"), "a b c");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz"), "%zz");
    }
}
