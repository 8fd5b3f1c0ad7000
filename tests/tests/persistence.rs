//! Persistence across real process kills: what midge acknowledged survives SIGKILL,
//! QoS 2 stays exactly once across it, retained messages and sessions come back (expired
//! ones do not), and a damaged data file never stops midge from starting.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use midge_e2e::{Midge, RawClient, TIMEOUT, connect_v5_with, unique_temp_path};
use midge_wire::{Ack, Connect, Packet, Property, Publish, QoS, QosPid, ReasonCode};

/// A data directory removed at the end of the test.
struct DataDir(PathBuf);

impl DataDir {
    fn new() -> Self {
        Self(unique_temp_path("persist"))
    }

    fn start(&self) -> Midge {
        Midge::start_with(&["--data-dir", self.0.to_str().expect("UTF-8 path")])
    }

    fn files(&self, prefix: &str) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.0)
            .expect("read data dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(prefix))
            })
            .collect();
        files.sort();
        files
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A small xorshift generator seeded from the clock; the seed is printed so a failing
/// run can be told apart.
struct Random(u64);

impl Random {
    fn new() -> Self {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1;
        eprintln!("random seed {seed}");
        Self(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

const TOPIC: &str = "crash/readings";

/// A persistent (clean session 0) 3.1.1 client.
fn persistent(midge: &Midge, id: &str) -> (RawClient, bool) {
    RawClient::persistent(midge.port(), id)
}

fn publish_packet(qos: QoS, packet_id: u16, dup: bool, payload: &[u8]) -> Packet<'_> {
    Packet::Publish(Publish {
        dup,
        qos_pid: QosPid::new(qos, packet_id),
        retain: false,
        topic: TOPIC,
        properties: midge_wire::Properties::EMPTY,
        payload,
    })
}

/// Message `n`'s payload, and its packet id (one id per message: fewer than 65,535).
fn payload(n: u32) -> Vec<u8> {
    format!("reading {n:05}").into_bytes()
}

fn packet_id(n: u32) -> u16 {
    n as u16
}

/// What the publisher saw before the broker died.
#[derive(Debug, Default)]
struct Seen {
    /// PUBACK (QoS 1) or PUBREC (QoS 2) received.
    acknowledged: BTreeSet<u32>,
    /// QoS 2: PUBCOMP received.
    completed: BTreeSet<u32>,
}

/// Publishes `settled` messages one by one to completion, then `in_flight` more without
/// waiting, then kills midge with SIGKILL after a random pause, and collects whatever
/// acknowledgements arrived before the connection died.
fn publish_until_killed(
    midge: &mut Midge,
    publisher: &mut RawClient,
    qos: QoS,
    settled: u32,
    in_flight: u32,
    pause: Duration,
) -> Seen {
    let mut seen = Seen::default();
    for n in 1..=settled {
        publisher.send_packet(&publish_packet(qos, packet_id(n), false, &payload(n)));
        match qos {
            QoS::AtLeastOnce => {
                publisher.recv(|p| {
                    assert!(matches!(p, Packet::Puback(a) if a.packet_id == packet_id(n)))
                });
            }
            _ => {
                publisher.recv(|p| {
                    assert!(matches!(p, Packet::Pubrec(a) if a.packet_id == packet_id(n)))
                });
                publisher.send_packet(&Packet::Pubrel(Ack::new(packet_id(n))));
                publisher.recv(|p| {
                    assert!(matches!(p, Packet::Pubcomp(a) if a.packet_id == packet_id(n)))
                });
                seen.completed.insert(n);
            }
        }
        seen.acknowledged.insert(n);
    }
    for n in settled + 1..=settled + in_flight {
        publisher.send_packet(&publish_packet(qos, packet_id(n), false, &payload(n)));
    }
    std::thread::sleep(pause);
    midge.kill();
    while let Some(frame) = publisher.recv_frame() {
        let id = u16::from_be_bytes([frame[2], frame[3]]);
        assert!(matches!(frame[0] >> 4, 4 | 5), "unexpected {frame:02x?}");
        seen.acknowledged.insert(u32::from(id));
    }
    seen
}

/// What a subscriber's application receives: how many times each message number arrived.
/// It reads until messages 1 to `total` all came (or nothing came for the harness's
/// timeout: a loaded CI machine may stall on fsync), then a little longer for duplicates. It answers as a client does with several
/// deliveries in flight: PUBACK for QoS 1; PUBREC for QoS 2, and PUBCOMP for each PUBREL.
/// A QoS 2 PUBLISH whose id awaits PUBREL is the same message again, not a new one.
fn drain(subscriber: &mut RawClient, total: u32) -> BTreeMap<u32, usize> {
    let mut counts = BTreeMap::new();
    let mut awaiting_pubrel = BTreeSet::new();
    loop {
        let all = (1..=total).all(|n| counts.contains_key(&n));
        let patience = if all {
            Duration::from_millis(500)
        } else {
            TIMEOUT
        };
        if !subscriber.poll_frame(patience) {
            break;
        }
        let reply = subscriber.recv(|packet| match packet {
            Packet::Publish(p) => {
                let text = String::from_utf8_lossy(p.payload);
                let n: u32 = text
                    .strip_prefix("reading ")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("unexpected payload {text:?}"));
                match p.qos_pid {
                    QosPid::ExactlyOnce(id) => {
                        if awaiting_pubrel.insert(id) {
                            *counts.entry(n).or_default() += 1;
                        }
                        Packet::Pubrec(Ack::new(id))
                    }
                    QosPid::AtLeastOnce(id) => {
                        *counts.entry(n).or_default() += 1;
                        Packet::Puback(Ack::new(id))
                    }
                    QosPid::AtMostOnce => panic!("QoS 0 delivery of {n}"),
                }
            }
            Packet::Pubrel(ack) => {
                awaiting_pubrel.remove(&ack.packet_id);
                Packet::Pubcomp(Ack::new(ack.packet_id))
            }
            other => panic!("unexpected {other:?}"),
        });
        subscriber.send_packet(&reply);
    }
    counts
}

/// One crash round: an offline persistent subscriber, a publisher killed mid-stream,
/// then restart, the publisher finishing its unacknowledged messages as its session
/// demands, and the subscriber collecting everything.
fn crash_round(qos: QoS, random: &mut Random) {
    let data = DataDir::new();
    let mut midge = data.start();
    let (mut subscriber, _) = persistent(&midge, "crash-sub");
    subscriber.subscribe(TOPIC, qos);
    subscriber.disconnect();
    let (mut publisher, _) = persistent(&midge, "crash-pub");

    let settled = 1 + random.below(60) as u32;
    let in_flight = 1 + random.below(40) as u32;
    let pause = Duration::from_micros(random.below(3000));
    let seen = publish_until_killed(&mut midge, &mut publisher, qos, settled, in_flight, pause);
    let total = settled + in_flight;
    eprintln!(
        "{qos:?}: {settled} settled, {in_flight} in flight, killed after {pause:?}: {} acknowledged",
        seen.acknowledged.len()
    );

    let midge = data.start();
    // The publisher resumes its session and does what MQTT asks of it: PUBLISH again
    // (DUP) what was not acknowledged, PUBREL what was received (QoS 2).
    let (mut publisher, present) = persistent(&midge, "crash-pub");
    assert!(present, "the publisher's session survived the crash");
    for n in 1..=total {
        if seen.completed.contains(&n) {
            continue;
        }
        let id = packet_id(n);
        if !seen.acknowledged.contains(&n) {
            publisher.send_packet(&publish_packet(qos, id, true, &payload(n)));
            match qos {
                QoS::AtLeastOnce => {
                    publisher
                        .recv(|p| assert!(matches!(p, Packet::Puback(a) if a.packet_id == id)));
                    continue;
                }
                _ => {
                    publisher.recv(|p| assert!(matches!(p, Packet::Pubrec(a) if a.packet_id == id)))
                }
            }
        }
        if qos == QoS::ExactlyOnce {
            publisher.send_packet(&Packet::Pubrel(Ack::new(id)));
            publisher.recv(|p| match p {
                Packet::Pubcomp(a) => {
                    assert_eq!(a.packet_id, id);
                    // Known: the broker had it. Its PUBREC was lost with the broker.
                    assert_eq!(a.reason, ReasonCode::Success, "PUBCOMP {id}");
                }
                other => panic!("expected PUBCOMP {id}, got {other:?}"),
            });
        }
    }

    let (mut subscriber, present) = persistent(&midge, "crash-sub");
    assert!(present, "the subscriber's session survived the crash");
    let counts = drain(&mut subscriber, total);
    let missing: Vec<u32> = (1..=total).filter(|n| !counts.contains_key(n)).collect();
    assert!(
        missing.is_empty(),
        "{qos:?}: messages never delivered: {missing:?} (acknowledged before the kill: {:?})",
        seen.acknowledged
    );
    if qos == QoS::ExactlyOnce {
        let twice: Vec<(&u32, &usize)> = counts.iter().filter(|(_, c)| **c > 1).collect();
        assert!(
            twice.is_empty(),
            "QoS 2 delivered more than once: {twice:?}"
        );
    }
    let unknown: Vec<&u32> = counts.keys().filter(|&&n| n > total).collect();
    assert!(unknown.is_empty(), "never published: {unknown:?}");
}

#[test]
fn qos1_acknowledged_messages_survive_sigkill() {
    let mut random = Random::new();
    for _ in 0..4 {
        crash_round(QoS::AtLeastOnce, &mut random);
    }
}

#[test]
fn qos2_is_exactly_once_across_sigkill() {
    let mut random = Random::new();
    for _ in 0..4 {
        crash_round(QoS::ExactlyOnce, &mut random);
    }
}

fn v5_persistent<'a>(id: &'a str, props: &'a [Property<'a>]) -> Connect<'a> {
    connect_v5_with(id, false, props)
}

#[test]
fn retained_messages_and_sessions_survive_restart_and_expired_ones_do_not() {
    let data = DataDir::new();
    let mut midge = data.start();
    let port = midge.port();
    let mut publisher = RawClient::connected_v5(port, "retainer");
    publisher.publish_with("r/keep", b"kept", QoS::AtLeastOnce, true, &[]);
    publisher.publish_with(
        "r/expires",
        b"gone",
        QoS::AtLeastOnce,
        true,
        &[Property::MessageExpiryInterval(1)],
    );
    publisher.publish_with("r/cleared", b"x", QoS::AtLeastOnce, true, &[]);
    publisher.publish_with("r/cleared", b"", QoS::AtLeastOnce, true, &[]);
    let long = [Property::SessionExpiryInterval(3600)];
    let (mut keeper, _) = RawClient::connected_with(port, v5_persistent("keeper", &long));
    keeper.subscribe("s/#", QoS::AtLeastOnce);
    keeper.disconnect();
    let short = [Property::SessionExpiryInterval(1)];
    let (mut brief, _) = RawClient::connected_with(port, v5_persistent("brief", &short));
    brief.subscribe("s/#", QoS::AtLeastOnce);
    brief.disconnect();
    // Queued for the offline session while the broker runs, then the broker is killed.
    publisher.publish_with("s/queued", b"while away", QoS::AtLeastOnce, false, &[]);
    midge.kill();
    std::thread::sleep(Duration::from_millis(1500)); // past both short expiries

    let midge = data.start();
    let port = midge.port();
    let mut reader = RawClient::connected_v5(port, "reader");
    reader.subscribe("r/#", QoS::AtLeastOnce);
    let first = reader
        .poll_publish(Duration::from_secs(2))
        .expect("the retained message survived");
    assert_eq!(
        (first.topic.as_str(), &first.payload[..]),
        ("r/keep", &b"kept"[..])
    );
    assert!(first.retain);
    assert!(
        reader.poll_publish(Duration::from_millis(500)).is_none(),
        "expired and cleared retained messages stay gone"
    );

    let (mut keeper, connack) = RawClient::connected_with(port, v5_persistent("keeper", &long));
    assert!(connack.session_present, "the long session survived");
    let queued = keeper.recv_publish();
    assert_eq!(
        (queued.topic.as_str(), &queued.payload[..]),
        ("s/queued", &b"while away"[..])
    );
    keeper.acknowledge(&queued);
    let mut publisher = RawClient::connected_v5(port, "publisher-2");
    publisher.publish_with("s/after", b"1", QoS::AtLeastOnce, false, &[]);
    let after = keeper.recv_publish();
    assert_eq!(after.topic, "s/after", "its subscription survived");

    let (_, connack) = RawClient::connected_with(port, v5_persistent("brief", &short));
    assert!(
        !connack.session_present,
        "the expired session did not come back"
    );
}

/// Stops midge after it stored some retained messages, returning the newest log segment.
fn log_with_retained(data: &DataDir, count: u32) -> PathBuf {
    let mut midge = data.start();
    let mut publisher = RawClient::connected(midge.port(), "filler");
    for n in 0..count {
        publisher.publish(&format!("keep/{n}"), b"value", QoS::AtLeastOnce, true);
    }
    midge.kill();
    data.files("log.").pop().expect("a log segment")
}

fn retained_count(midge: &Midge) -> usize {
    let mut reader = RawClient::connected(midge.port(), "counter");
    reader.subscribe("keep/#", QoS::AtMostOnce);
    let mut n = 0;
    while reader.poll_publish(Duration::from_millis(500)).is_some() {
        n += 1;
    }
    n
}

fn wait_for_log(midge: &Midge, needle: &str) {
    assert!(
        midge.wait_for_log(needle),
        "no log line containing {needle:?}:\n{}",
        midge.log()
    );
}

#[test]
fn a_torn_tail_is_cut_off_and_startup_goes_on() {
    let data = DataDir::new();
    let log = log_with_retained(&data, 20);
    let bytes = std::fs::read(&log).unwrap();
    // The log ends with the last message's Retain record (28 bytes framed) and the Unpin
    // after its routing (17): cut inside the Retain.
    std::fs::write(&log, &bytes[..bytes.len() - 17 - 5]).unwrap();
    let midge = data.start();
    wait_for_log(&midge, "incomplete write");
    assert_eq!(retained_count(&midge), 19, "all but the torn last record");
}

#[test]
fn a_corrupt_file_is_reported_moved_aside_and_startup_goes_on() {
    let data = DataDir::new();
    let log = log_with_retained(&data, 20);
    let mut bytes = std::fs::read(&log).unwrap();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 16] {
        *b ^= 0x5a;
    }
    std::fs::write(&log, &bytes).unwrap();
    let midge = data.start();
    wait_for_log(&midge, "is corrupt");
    wait_for_log(&midge, "moved aside");
    let recovered = retained_count(&midge);
    assert!(
        (1..20).contains(&recovered),
        "the records before the damage are kept: {recovered}"
    );
    assert!(
        data.files("log.")
            .iter()
            .chain(&data.files("snapshot."))
            .count()
            >= 1
            && std::fs::read_dir(&data.0)
                .unwrap()
                .filter_map(|e| e.ok())
                .any(|e| e.file_name().to_string_lossy().contains(".corrupt-")),
        "the damaged file is kept aside"
    );
    // A second start finds a clean directory.
    drop(midge);
    let midge = data.start();
    assert_eq!(retained_count(&midge), recovered);
    assert!(!midge.log().contains("is corrupt"));
}

#[test]
fn a_second_broker_on_the_same_data_dir_is_refused_clearly() {
    let data = DataDir::new();
    let _first = data.start();
    let out = std::process::Command::new(midge_e2e::midge_binary())
        .args(["--bind", "127.0.0.1:0", "--data-dir"])
        .arg(&data.0)
        .output()
        .expect("run midge");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("in use by another midge"), "{stderr}");
}

#[test]
fn periodic_mode_writes_within_its_interval_and_off_writes_nothing() {
    let data = DataDir::new();
    let dir = data.0.to_str().expect("UTF-8 path");
    let mut midge = Midge::start_with(&["--data-dir", dir, "--persistence", "periodic"]);
    let mut publisher = RawClient::connected(midge.port(), "periodic");
    publisher.publish("keep/periodic", b"1", QoS::AtLeastOnce, true);
    std::thread::sleep(Duration::from_millis(1500)); // one interval (1 s) and some
    midge.kill();
    let midge = data.start();
    assert_eq!(retained_count(&midge), 1, "written within the interval");
    drop(midge);

    let memory_only = unique_temp_path("off");
    let mut midge = Midge::start_with(&[
        "--data-dir",
        memory_only.to_str().expect("UTF-8 path"),
        "--persistence",
        "off",
    ]);
    let mut publisher = RawClient::connected(midge.port(), "off");
    publisher.publish("keep/off", b"1", QoS::AtLeastOnce, true);
    midge.kill();
    assert!(
        !memory_only.exists(),
        "nothing is written with persistence off"
    );
}
