//! Hostile and careless clients: packets over the size limits, a CONNECT that stops
//! halfway, a thousand connections at once, garbage right after CONNECT, and subscribers
//! that never read while a publisher floods. Each test checks what happens to the
//! offender, then that midge is still running and serves well-behaved clients.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use midge_e2e::{
    Midge, RawClient, TIMEOUT, connect_packet, encode, fixed_header, publish_packet, rss_kib,
};
use midge_wire::{Connect, Packet, ProtocolVersion, QoS, QosPid, ReasonCode};

const VERSIONS: [ProtocolVersion; 2] = [ProtocolVersion::V3_1_1, ProtocolVersion::V5];

/// A connected client speaking `version`, with a clean session.
fn connected(midge: &Midge, version: ProtocolVersion, client_id: &str) -> RawClient {
    if version.is_v5() {
        RawClient::connected_v5(midge.port(), client_id)
    } else {
        RawClient::connected(midge.port(), client_id)
    }
}

/// Checks that midge closes `client`'s connection because of a packet over its maximum
/// size: MQTT 5 first hears DISCONNECT 0x95 (Packet too large), 3.1.1 nothing at all.
fn assert_closed_as_too_large(client: &mut RawClient) {
    if client.version.is_v5() {
        client.expect_disconnect(ReasonCode::PacketTooLarge);
    } else {
        assert_eq!(
            client.recv_frame(),
            None,
            "connection still open, or midge replied"
        );
    }
}

#[test]
fn publish_over_max_packet_size_closes_the_connection() {
    let mut midge = Midge::start_with_config("max_packet_size 1024\n");
    let mut bystander = midge.bystander();
    let payload = [b'x'; 2048];
    for version in VERSIONS {
        let mut client = connected(&midge, version, &format!("big-{version:?}"));
        client.send_packet(&publish_packet(
            "big/in",
            &[],
            QosPid::AtLeastOnce(1),
            &payload,
        ));
        assert_closed_as_too_large(&mut client);
    }
    midge.assert_delivers_to(&mut bystander);
    midge.assert_still_serving();
}

#[test]
fn oversize_publish_is_refused_from_its_fixed_header_alone() {
    let mut midge = Midge::start_with_config("max_packet_size 1024\n");
    let mut bystander = midge.bystander();
    // The first byte and the Remaining Length of a 100 MB PUBLISH, and not one byte of
    // its body: midge can only close the connection if it judges the fixed header.
    let header = fixed_header(0x30, 100_000_000);
    assert_eq!(header.len(), 5);
    for version in VERSIONS {
        let mut client = connected(&midge, version, &format!("huge-{version:?}"));
        client.send(&header);
        assert_closed_as_too_large(&mut client);
    }
    midge.assert_delivers_to(&mut bystander);
    midge.assert_still_serving();
}

#[test]
fn payload_over_message_size_limit_is_acknowledged_and_dropped() {
    let mut midge = Midge::start_with_config("message_size_limit 512\n");
    let mut subscriber = RawClient::connected(midge.port(), "sized-sub");
    subscriber.subscribe("sized/#", QoS::AtLeastOnce);
    let too_big = [b'b'; 1024];
    let at_limit = [b's'; 512];

    // 3.1.1: the usual PUBACK (RawClient::publish checks its bytes), and the connection
    // stays open; QoS 0 is dropped alike.
    let mut publisher = RawClient::connected(midge.port(), "sized-pub");
    publisher.publish("sized/big", &too_big, QoS::AtLeastOnce, false);
    publisher.publish("sized/big0", &too_big, QoS::AtMostOnce, false);
    publisher.publish("sized/fits", &at_limit, QoS::AtLeastOnce, false);
    // MQTT 5: PUBACK says Quota exceeded, a valid PUBACK reason (3.4.2.1).
    let mut publisher5 = RawClient::connected_v5(midge.port(), "sized-pub5");
    let reply = publisher5.publish_with("sized/big5", &too_big, QoS::AtLeastOnce, false, &[]);
    assert_eq!(reply.reason, ReasonCode::QuotaExceeded, "{reply:?}");
    publisher5.publish("sized/fits5", &at_limit, QoS::AtLeastOnce, false);

    // Messages from one client arrive in order, so the large ones were never delivered
    // if the next ones to arrive are those that fit.
    for topic in ["sized/fits", "sized/fits5"] {
        let p = subscriber.recv_publish();
        assert_eq!((&p.topic[..], p.payload.len()), (topic, 512));
        subscriber.acknowledge(&p);
    }
    subscriber.sync();
    assert_eq!(midge.log_count("Dropped too large PUBLISH"), 3);
    midge.assert_still_serving();
}

#[test]
fn connect_cut_short_is_closed_by_the_connect_timeout() {
    let mut midge = Midge::start();
    let mut bystander = midge.bystander();
    let connect = encode(
        ProtocolVersion::V3_1_1,
        &Packet::Connect(connect_packet("stalled")),
    );
    let mut stalled = RawClient::connect(midge.port());
    stalled.send(&connect[..5]);
    let sent = Instant::now();
    assert!(
        !stalled.is_closed_within(Duration::from_secs(1)),
        "closed within a second"
    );
    // Other clients are served while it waits...
    midge.assert_delivers_to(&mut bystander);
    midge.assert_still_serving();
    // ...and the connect timeout (10 s) ends it.
    let limit = Duration::from_secs(15).saturating_sub(sent.elapsed());
    assert!(stalled.is_closed_within(limit), "still open after 15 s");
    eprintln!(
        "half a CONNECT: connection closed {:.1} s after its last byte",
        sent.elapsed().as_secs_f64()
    );
    midge.assert_delivers_to(&mut bystander);
    midge.assert_still_serving();
}

#[test]
fn connect_trickled_a_byte_at_a_time_is_closed_by_the_connect_timeout() {
    // The connect timeout runs from the moment the connection opens ("a reasonable
    // amount of time after the Network Connection is established", MQTT 5 section 3.1),
    // not from the last byte: else one byte every few seconds holds a connection, and its
    // memory, open for ever without CONNECT.
    let mut midge = Midge::start();
    let connect = encode(
        ProtocolVersion::V3_1_1,
        &Packet::Connect(connect_packet("trickler")),
    );
    let mut trickler = RawClient::connect(midge.port());
    let opened = Instant::now();
    let limit = Duration::from_secs(15);
    let mut closed = false;
    for byte in connect.chunks(1) {
        let left = limit.saturating_sub(opened.elapsed());
        if left.is_zero() {
            break;
        }
        trickler.send(byte);
        if trickler.is_closed_within(left.min(Duration::from_secs(4))) {
            closed = true;
            break;
        }
    }
    assert!(
        closed,
        "a CONNECT trickled a byte every 4 s is still open after {:?}",
        opened.elapsed()
    );
    midge.assert_still_serving();
}

/// Limits a process's address space (RLIMIT_AS) with `prlimit` (util-linux).
fn limit_address_space(pid: u32, bytes: u64) {
    let status = std::process::Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--as={bytes}:{bytes}"))
        .status()
        .expect("run prlimit (util-linux)");
    assert!(status.success(), "prlimit --as={bytes} failed");
}

#[test]
fn headers_of_huge_packets_reserve_no_memory_up_front() {
    // A 32-bit Raspberry Pi OS process has 3 GiB of address space. Under the default
    // max_packet_size (256 MiB), a fixed header announcing the largest packet is allowed,
    // but its body has to arrive before it needs memory: 16 connections that each send
    // 5 bytes must not make midge reserve 16 × 256 MiB.
    let mut midge = Midge::start();
    limit_address_space(midge.pid(), 3 << 30);
    let mut bystander = midge.bystander();
    let header = fixed_header(0x10, 268_435_455); // a CONNECT of the largest size
    let mut waiting = Vec::new();
    for _ in 0..16 {
        let mut client = RawClient::connect(midge.port());
        client.send(&header);
        // midge waits for the rest of the packet.
        assert!(
            !client.is_closed_within(Duration::from_millis(100)),
            "connection {} closed after a fixed header: midge refused it or died",
            waiting.len() + 1
        );
        waiting.push(client);
    }
    midge.assert_delivers_to(&mut bystander);
    midge.assert_still_serving();
}

#[test]
fn a_thousand_clients_connect_at_once() {
    const CLIENTS: usize = 1000;
    let mut midge = Midge::start();
    let port = midge.port();
    // Every thread opens its connection as soon as all of them are ready.
    let ready = Arc::new(Barrier::new(CLIENTS + 1));
    let threads: Vec<JoinHandle<RawClient>> = (0..CLIENTS)
        .map(|i| {
            let ready = Arc::clone(&ready);
            thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    ready.wait();
                    // CONNACK 0 within TIMEOUT, or this panics.
                    RawClient::connected(port, &format!("crowd-{i}"))
                })
                .expect("spawn a client thread")
        })
        .collect();
    ready.wait();
    let started = Instant::now();
    let mut crowd: Vec<RawClient> = threads
        .into_iter()
        .map(|t| t.join().expect("a client got no CONNACK 0"))
        .collect();
    let connected_in = started.elapsed();
    eprintln!("{CLIENTS} clients connected in {connected_in:?}");
    assert!(
        connected_in < TIMEOUT,
        "{CLIENTS} CONNACKs took {connected_in:?}"
    );

    for client in &mut crowd {
        client.subscribe("crowd/news", QoS::AtLeastOnce);
    }
    let mut caller = RawClient::connected(port, "crowd-caller");
    caller.publish("crowd/news", b"hello all", QoS::AtLeastOnce, false);
    let mut reached = 0;
    for client in &mut crowd {
        let p = client.recv_publish();
        if (&p.topic[..], &p.payload[..]) == ("crowd/news", &b"hello all"[..]) {
            reached += 1;
        }
        client.acknowledge(&p);
    }
    assert_eq!(reached, CLIENTS, "clients that got the message");

    for client in crowd {
        client.disconnect();
    }
    caller.disconnect();
    midge.assert_still_serving();
    for level in ["ERROR", "WARN"] {
        assert_eq!(
            midge.log_lines_at(level),
            Vec::<String>::new(),
            "{level} lines in the log"
        );
    }
}

/// 64 bytes from a fixed-seed xorshift generator, the first with packet type 0, which is
/// reserved (section 2.2.1): otherwise the bytes could start a packet (a PUBLISH with a long
/// Remaining Length…) that midge rightly waits to receive in full.
fn garbage(seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut bytes: Vec<u8> = (0..64)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    bytes[0] &= 0x0f;
    bytes
}

#[test]
fn garbage_after_connect_in_the_same_write_is_answered_then_closed() {
    let mut midge = Midge::start();
    let mut bystander = midge.bystander();
    for (seed, version) in [
        (0x5eed, ProtocolVersion::V3_1_1),
        (0xbad, ProtocolVersion::V5),
    ] {
        let id = format!("garbage-{version:?}");
        let connect = Connect {
            version,
            ..connect_packet(&id)
        };
        let mut bytes = encode(version, &Packet::Connect(connect));
        bytes.extend_from_slice(&garbage(seed));
        let mut client = RawClient::connect(midge.port());
        client.version = version;
        client.send(&bytes);
        // CONNECT is handled before the garbage is looked at.
        let connack = client.recv(|packet| match packet {
            Packet::Connack(c) => c.reason,
            other => panic!("expected CONNACK, got {other:?}"),
        });
        assert_eq!(connack, ReasonCode::Success, "CONNACK to {bytes:02x?}");
        if version.is_v5() {
            client.expect_disconnect(ReasonCode::MalformedPacket);
        } else {
            assert_eq!(client.recv_frame(), None, "open after {bytes:02x?}");
        }
    }
    midge.assert_delivers_to(&mut bystander);
    midge.assert_still_serving();
}

/// Samples a process's resident set size every 10 ms and keeps the largest.
struct PeakRss {
    stop: Arc<AtomicBool>,
    sampler: JoinHandle<u64>,
}

impl PeakRss {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = thread::spawn({
            let stop = Arc::clone(&stop);
            move || {
                let mut peak = 0;
                while !stop.load(Ordering::Relaxed) {
                    peak = peak.max(rss_kib(pid).unwrap_or(0));
                    thread::sleep(Duration::from_millis(10));
                }
                peak
            }
        });
        Self { stop, sampler }
    }

    /// The peak in KiB.
    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.sampler.join().expect("RSS sampler")
    }
}

/// What a flood of PUBLISHes achieved.
#[derive(Debug)]
struct Flood {
    sent: u64,
    qos1_sent: u64,
    pubacks: u64,
    elapsed: Duration,
    /// The longest wait for the next PUBACK while some were due.
    longest_puback_gap: Duration,
}

/// Publishes 100-byte messages, QoS 0 and QoS 1 in turn, as fast as midge takes them, for
/// `duration`, while a second thread reads the PUBACKs; returns once
/// every PUBACK arrived (a PINGRESP to a final PINGREQ follows them). At most
/// `MAX_UNACKED` QoS 1 messages are left unacknowledged, so packet ids are never reused
/// while in use.
fn flood(port: u16, topic: &str, duration: Duration) -> Flood {
    const BATCH: u64 = 500;
    const MAX_UNACKED: u64 = 10_000;
    let mut writer = RawClient::connected(port, "flooder");
    let mut reader = writer.try_clone();
    let pubacks = Arc::new(AtomicU64::new(0));
    let reader = thread::spawn({
        let pubacks = Arc::clone(&pubacks);
        move || {
            let mut last = Instant::now();
            let mut longest = Duration::ZERO;
            loop {
                let frame = reader
                    .recv_frame()
                    .expect("connection closed during the flood");
                match frame[..] {
                    [0xd0, 0] => return longest,
                    [0x40, 2, _, _] => {
                        longest = longest.max(last.elapsed());
                        last = Instant::now();
                        pubacks.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => panic!("expected PUBACK or PINGRESP, got {frame:02x?}"),
                }
            }
        }
    });

    let payload = [b'p'; 100];
    let started = Instant::now();
    let (mut sent, mut qos1_sent) = (0u64, 0u64);
    let mut batch = Vec::new();
    while started.elapsed() < duration {
        let waiting = Instant::now();
        while qos1_sent - pubacks.load(Ordering::Relaxed) > MAX_UNACKED {
            assert!(waiting.elapsed() < TIMEOUT, "PUBACKs stopped coming");
            thread::sleep(Duration::from_millis(1));
        }
        batch.clear();
        for _ in 0..BATCH {
            let qos_pid = if sent % 2 == 0 {
                QosPid::AtMostOnce
            } else {
                qos1_sent += 1;
                QosPid::AtLeastOnce((qos1_sent % 65_535) as u16 + 1)
            };
            let packet = publish_packet(topic, &[], qos_pid, &payload);
            batch.extend_from_slice(&encode(ProtocolVersion::V3_1_1, &packet));
            sent += 1;
        }
        writer.send(&batch);
    }
    let elapsed = started.elapsed();
    writer.send(&[0xc0, 0]);
    let longest_puback_gap = reader.join().expect("PUBACK reader");
    Flood {
        sent,
        qos1_sent,
        pubacks: pubacks.load(Ordering::Relaxed),
        elapsed,
        longest_puback_gap,
    }
}

/// The value of `$SYS/broker/publish/messages/dropped` once it is over 0.
fn wait_for_dropped_count(sys: &mut RawClient) -> u64 {
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        let p = sys.recv_publish();
        let dropped: u64 = String::from_utf8_lossy(&p.payload)
            .parse()
            .expect("a count");
        if dropped > 0 {
            return dropped;
        }
    }
    panic!("$SYS/broker/publish/messages/dropped stayed 0");
}

#[test]
fn slow_reader_flooded_costs_bounded_memory() {
    // Two subscribers to everything that never read: the one at QoS 0 fills its socket
    // and its 64 KiB of pending output, then its queue; the one at QoS 1 its in-flight
    // window (20), then its queue. Each queue holds at most max_queued_messages (1000)
    // deliveries of 100-byte messages, so the flood costs midge well under a MiB; 64 MiB
    // in all leaves room for a debug build's allocator and runtime.
    const BOUND_KIB: u64 = 64 * 1024;
    let mut midge = Midge::start_with_config("sys_interval 1\n");
    let port = midge.port();
    let mut sys = RawClient::connected(port, "sys-watch");
    sys.subscribe("$SYS/broker/publish/messages/dropped", QoS::AtMostOnce);
    let mut slow_readers = Vec::new();
    for (id, qos) in [("slow-0", QoS::AtMostOnce), ("slow-1", QoS::AtLeastOnce)] {
        let mut client = RawClient::connected(port, id);
        client.subscribe("#", qos);
        slow_readers.push(client);
    }

    let before = midge.rss_kib();
    let peak = PeakRss::start(midge.pid());
    let flood = flood(port, "flood/data", Duration::from_secs(3));
    let peak = peak.stop();
    eprintln!(
        "slow reader: RSS before the flood {before} KiB, peak {peak} KiB (+{} KiB); {flood:?}, \
         {:.0} messages/s",
        peak.saturating_sub(before),
        flood.sent as f64 / flood.elapsed.as_secs_f64()
    );
    assert!(peak < BOUND_KIB, "peak RSS {peak} KiB over {BOUND_KIB} KiB");
    // The slow readers did not hold the publisher back.
    assert_eq!(flood.pubacks, flood.qos1_sent, "PUBACKs");
    assert!(
        flood.longest_puback_gap < Duration::from_secs(2),
        "the publisher waited {:?} for a PUBACK",
        flood.longest_puback_gap
    );
    let dropped = wait_for_dropped_count(&mut sys);
    eprintln!("slow reader: $SYS/broker/publish/messages/dropped {dropped}");
    assert!(midge.is_running());
    midge.assert_still_serving();
    drop(slow_readers);
}
