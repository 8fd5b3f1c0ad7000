//! midge under systemd's `Type=notify`: the test plays the service manager, binding the
//! datagram socket that `NOTIFY_SOCKET` names and reading what the broker sends there.

use std::fs::File;
use std::net::TcpListener;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use midge_e2e::{RawClient, TIMEOUT, midge_binary, unique_temp_path};

/// A midge started with `NOTIFY_SOCKET` (and `env`) set, and the socket it notifies.
struct Notified {
    child: Child,
    port: u16,
    socket: UnixDatagram,
    socket_path: PathBuf,
    log_path: PathBuf,
}

impl Notified {
    /// `env` is set last, so it may also replace `NOTIFY_SOCKET`.
    fn start(env: &[(&str, &str)]) -> Self {
        let socket_path = unique_temp_path("notify.sock");
        let socket = UnixDatagram::bind(&socket_path).expect("bind the notify socket");
        socket.set_read_timeout(Some(TIMEOUT)).expect("set timeout");
        let port = free_port();
        let log_path = unique_temp_path("midge.log");
        let child = Command::new(midge_binary())
            .args([
                "--bind",
                &format!("127.0.0.1:{port}"),
                "--log-level",
                "info",
                // Each test's broker on its own: the default data directory is shared.
                "--persistence",
                "off",
            ])
            .env("NOTIFY_SOCKET", &socket_path)
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .envs(env.iter().copied())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log_path).expect("create log file"))
            .spawn()
            .expect("start midge");
        Self {
            child,
            port,
            socket,
            socket_path,
            log_path,
        }
    }

    /// The next notification, as text.
    fn recv(&self) -> String {
        let mut buf = [0u8; 4096];
        let n = self.socket.recv(&mut buf).unwrap_or_else(|e| {
            panic!(
                "no notification from midge: {e}\n--- log ---\n{}",
                self.log()
            )
        });
        String::from_utf8(buf[..n].to_vec()).expect("UTF-8 notification")
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([name, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {name}");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for Notified {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket_path);
        let _ = std::fs::remove_file(&self.log_path);
    }
}

/// A loopback port nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("pick a free port")
        .port()
}

#[test]
fn ready_once_listening_reloading_around_sighup_stopping_on_sigterm() {
    let mut midge = Notified::start(&[]);
    assert_eq!(midge.recv(), "READY=1\n");
    // Ready means ready: a client is served at once.
    RawClient::connected(midge.port, "after-ready").disconnect();

    midge.signal("-HUP");
    let reloading = midge.recv();
    let mut lines = reloading.lines();
    assert_eq!(lines.next(), Some("RELOADING=1"), "{reloading:?}");
    let usec = lines
        .next()
        .and_then(|l| l.strip_prefix("MONOTONIC_USEC="))
        .and_then(|v| v.parse::<u64>().ok());
    assert!(usec.is_some_and(|u| u > 0), "{reloading:?}");
    assert_eq!(midge.recv(), "READY=1\n", "after the reload");

    midge.signal("-TERM");
    assert_eq!(midge.recv(), "STOPPING=1\n");
    let status = midge.child.wait().expect("wait for midge");
    assert!(status.success(), "midge exited with {status}");
}

#[test]
fn watchdog_pings_at_half_the_interval() {
    // A 1 s watchdog: a ping every 500 ms, the first at once.
    let midge = Notified::start(&[("WATCHDOG_USEC", "1000000")]);
    assert_eq!(midge.recv(), "READY=1\n");
    assert_eq!(midge.recv(), "WATCHDOG=1\n");
    let start = Instant::now();
    for _ in 0..3 {
        assert_eq!(midge.recv(), "WATCHDOG=1\n");
    }
    // Three intervals: 1.5 s at half the timeout; 3 s (a ping only as the timeout runs
    // out) would be too late for systemd. The upper bound leaves room for a busy machine.
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1400) && elapsed < Duration::from_millis(2500),
        "three watchdog intervals took {elapsed:?}"
    );
}

#[test]
fn watchdog_meant_for_another_process_is_left_alone() {
    // systemd sets WATCHDOG_PID to the main process; a child that inherited it must not ping.
    let midge = Notified::start(&[("WATCHDOG_USEC", "100000"), ("WATCHDOG_PID", "1")]);
    assert_eq!(midge.recv(), "READY=1\n");
    midge
        .socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 64];
    let got = midge.socket.recv(&mut buf);
    assert!(
        got.is_err(),
        "unexpected notification {:?}",
        got.map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
    );
}

#[test]
fn unreachable_notify_socket_is_logged_and_the_broker_serves_on() {
    // NOTIFY_SOCKET names a path where nothing listens.
    let missing = unique_temp_path("nobody-listens.sock");
    let mut midge = Notified::start(&[("NOTIFY_SOCKET", missing.to_str().expect("UTF-8"))]);
    let deadline = Instant::now() + TIMEOUT;
    while !midge.log().contains("cannot notify systemd (READY=1)") {
        assert!(
            Instant::now() < deadline,
            "no warning about the notify socket:\n{}",
            midge.log()
        );
        assert!(
            matches!(midge.child.try_wait(), Ok(None)),
            "midge exited:\n{}",
            midge.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    RawClient::connected(midge.port, "no-systemd").disconnect();
    assert!(matches!(midge.child.try_wait(), Ok(None)), "midge exited");
}
