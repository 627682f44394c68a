//! Free loopback ports.

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Mutex;

static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// Returns a TCP port on `127.0.0.1` that is free right now.
///
/// The kernel picks it (bind to port 0); a port is never handed out twice by one
/// process, so helpers started in parallel by one test binary do not collide with
/// each other. Another process may still take it before it is used: the helpers
/// that start external servers retry with a new port when that happens.
pub fn free_port() -> u16 {
    let mut guard = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let seen = guard.get_or_insert_with(HashSet::new);
    loop {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("cannot bind a TCP socket on 127.0.0.1");
        let port = listener.local_addr().expect("local_addr").port();
        if seen.insert(port) {
            return port;
        }
    }
}
