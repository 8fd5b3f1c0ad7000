//! Memory with many Observe relations: the gateway's resident size grows by a bounded
//! amount per relation. `MIDGE_GW_OBSERVERS=10000` measures the figure in the README
//! (the default keeps CI quick); the numbers are printed with `--nocapture`.

use coap_lite::{Packet, RequestType};
use midge_e2e::Midge;
use midge_e2e::gateway::{CoapSocket, Gateway, code, con, unique_topic};

fn count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Registers `n` relations on distinct topics in batches, from one socket, each with
/// its own token, and checks every first response. `query` identifies the devices.
fn register(coap: &CoapSocket, base: &str, n: usize, query: impl Fn(usize) -> Vec<String>) {
    const BATCH: usize = 250;
    for start in (0..n).step_by(BATCH) {
        let end = (start + BATCH).min(n);
        for i in start..end {
            let q = query(i);
            let q: Vec<&str> = q.iter().map(String::as_str).collect();
            let mut p: Packet = con(RequestType::Get, i as u16, &format!("ps/{base}/{i}"), &q);
            p.set_token((i as u32).to_be_bytes().to_vec());
            p.set_observe_value(0);
            coap.send_packet(&p);
        }
        for _ in start..end {
            let answer = coap.recv();
            assert_eq!(code(&answer), "2.05", "{answer:?}");
            assert!(answer.get_observe_value().is_some(), "registered");
        }
    }
}

fn per_relation(before: u64, after: u64, n: usize) -> f64 {
    (after.saturating_sub(before) as f64 * 1024.0) / n as f64
}

/// Anonymous devices share the gateway's broker connection: a relation costs the
/// gateway a few hundred bytes.
#[test]
fn observers_on_the_shared_connection() {
    let n = count("MIDGE_GW_OBSERVERS", 2000);
    let midge = Midge::start();
    let gateway = Gateway::start(&midge);
    let coap = CoapSocket::new(&gateway);
    let base = unique_topic("gw-mem");
    // Warm up: the broker connection and the socket exist before the first measurement.
    register(&coap, &format!("{base}/warm"), 10, |_| Vec::new());
    let before = gateway.rss_kib();
    let started = std::time::Instant::now();
    register(&coap, &base, n, |_| Vec::new());
    let after = gateway.rss_kib();
    let bytes = per_relation(before, after, n);
    eprintln!(
        "{n} relations on one connection: RSS {before} KiB -> {after} KiB, {bytes:.0} B per relation, registered in {:?}",
        started.elapsed()
    );
    assert!(bytes < 4096.0, "{bytes:.0} bytes per relation");
    // Every one of them is live: a message to the last topic is notified.
    midge.mosquitto_pub_ok(&["-t", &format!("{base}/{}", n - 1), "-m", "last"]);
    let notification = coap.recv();
    assert_eq!(notification.payload, b"last");
    assert_eq!(notification.get_token(), ((n - 1) as u32).to_be_bytes());
}

/// Devices that give a client id get a broker connection each (the broker checks their
/// credentials and ACL): that costs tens of kilobytes per device, in the gateway and in
/// the broker.
#[test]
fn observers_with_their_own_connections() {
    let n = count("MIDGE_GW_DEVICES", 200);
    let midge = Midge::start();
    let gateway = Gateway::start(&midge);
    let coap = CoapSocket::new(&gateway);
    let base = unique_topic("gw-dev");
    register(&coap, &format!("{base}/warm"), 5, |i| {
        vec![format!("c={base}-warm-{i}")]
    });
    let before = gateway.rss_kib();
    register(&coap, &base, n, |i| vec![format!("c={base}-{i}")]);
    let after = gateway.rss_kib();
    let bytes = per_relation(before, after, n);
    eprintln!(
        "{n} devices with their own connections: RSS {before} KiB -> {after} KiB, {bytes:.0} B per device"
    );
    assert!(bytes < 256.0 * 1024.0, "{bytes:.0} bytes per device");
}
