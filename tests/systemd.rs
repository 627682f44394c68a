//! `notify_ready` and `notify_stopping` against a real unix datagram socket as NOTIFY_SOCKET.
//!
//! One test in its own binary: it sets NOTIFY_SOCKET, which no other test may see.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use numikube_staging::systemd::{notify_ready, notify_stopping};

#[test]
fn readiness_reaches_the_notify_socket() {
    // Without NOTIFY_SOCKET both are silent no-ops.
    std::env::remove_var("NOTIFY_SOCKET");
    notify_ready();
    notify_stopping();

    let dir = std::env::temp_dir().join(format!("sd-notify-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("notify.sock");
    let _ = std::fs::remove_file(&path);
    let systemd = UnixDatagram::bind(&path).unwrap();
    systemd.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    std::env::set_var("NOTIFY_SOCKET", &path);

    let mut buf = [0u8; 256];
    notify_ready();
    let n = systemd.recv(&mut buf).expect("READY=1 within 5 s");
    assert_eq!(std::str::from_utf8(&buf[..n]).unwrap(), "READY=1\n");
    notify_stopping();
    let n = systemd.recv(&mut buf).expect("STOPPING=1 within 5 s");
    assert_eq!(std::str::from_utf8(&buf[..n]).unwrap(), "STOPPING=1\n");

    // A socket that went away is logged, not fatal.
    drop(systemd);
    notify_ready();
    std::env::remove_var("NOTIFY_SOCKET");
    std::fs::remove_dir_all(&dir).unwrap();
}
