//! The engine driven with datagrams and broker events, no sockets.

use super::*;
use coap_lite::RequestType;

fn peer() -> SocketAddr {
    "127.0.0.1:40000".parse().unwrap()
}

fn engine() -> Engine {
    Engine::new(Limits {
        max_body: 4096,
        ..Limits::default()
    })
}

/// A request: `path` like "ps/a/b", `query` like ["qos=1"].
fn request(kind: MessageType, method: RequestType, mid: u16, path: &str, query: &[&str]) -> Packet {
    let mut p = Packet::new();
    p.header.set_version(1);
    p.header.set_type(kind);
    p.header.code = MessageClass::Request(method);
    p.header.message_id = mid;
    p.set_token(vec![0xab, mid as u8]);
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        p.add_option(CoapOption::UriPath, seg.as_bytes().to_vec());
    }
    for q in query {
        p.add_option(CoapOption::UriQuery, q.as_bytes().to_vec());
    }
    p
}

fn con(method: RequestType, mid: u16, path: &str, query: &[&str]) -> Packet {
    request(MessageType::Confirmable, method, mid, path, query)
}

fn feed(e: &mut Engine, p: &Packet) {
    e.on_datagram(peer(), &p.to_bytes().unwrap(), Instant::now());
}

/// The packets sent to the device and the broker commands, emptying the effect list.
fn effects(e: &mut Engine) -> (Vec<Packet>, Vec<(Credentials, Command)>) {
    let mut sent = Vec::new();
    let mut commands = Vec::new();
    for effect in e.take_effects() {
        match effect {
            Effect::Send { bytes, .. } => sent.push(Packet::from_bytes(&bytes).unwrap()),
            Effect::Broker { session, command } => commands.push((session, command)),
        }
    }
    (sent, commands)
}

fn one_response(e: &mut Engine) -> Packet {
    let (sent, commands) = effects(e);
    assert!(commands.is_empty(), "{commands:?}");
    assert_eq!(sent.len(), 1, "{sent:?}");
    sent.into_iter().next().unwrap()
}

fn code_of(p: &Packet) -> u8 {
    p.header.code.into()
}

fn one_command(e: &mut Engine) -> Command {
    let (sent, mut commands) = effects(e);
    assert!(sent.is_empty(), "{sent:?}");
    assert_eq!(commands.len(), 1, "{commands:?}");
    commands.pop().unwrap().1
}

fn op_of(c: &Command) -> OpId {
    c.op().expect("a command with an op")
}

#[test]
fn ping_is_answered_with_rst() {
    let mut e = engine();
    e.on_datagram(peer(), &[0x40, 0x00, 0x12, 0x34], Instant::now());
    let rst = one_response(&mut e);
    assert_eq!(rst.header.get_type(), MessageType::Reset);
    assert_eq!(rst.header.message_id, 0x1234);
}

#[test]
fn malformed_datagrams() {
    let mut e = engine();
    let now = Instant::now();
    // Too short, wrong version: silence.
    e.on_datagram(peer(), &[0x40, 0x01], now);
    e.on_datagram(peer(), &[0x80, 0x01, 0, 1], now);
    // Truncated option in a CON: RST; in a NON: silence.
    e.on_datagram(peer(), &[0x40, 0x01, 0, 7, 0xbd], now);
    e.on_datagram(peer(), &[0x50, 0x01, 0, 8, 0xbd], now);
    // Token length 9 is a format error.
    e.on_datagram(peer(), &[0x49, 0x01, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9], now);
    let (sent, _) = effects(&mut e);
    let rsts: Vec<u16> = sent
        .iter()
        .inspect(|p| assert_eq!(p.header.get_type(), MessageType::Reset))
        .map(|p| p.header.message_id)
        .collect();
    assert_eq!(rsts, [7, 9]);
    // And a good request is still served.
    feed(&mut e, &con(RequestType::Get, 10, ".well-known/core", &[]));
    assert_eq!(code_of(&one_response(&mut e)), code::CONTENT);
}

#[test]
fn error_codes() {
    let cases: Vec<(Packet, u8)> = vec![
        (
            con(RequestType::Get, 1, "nothing/here", &[]),
            code::NOT_FOUND,
        ),
        (con(RequestType::Get, 2, "", &[]), code::NOT_FOUND),
        (
            con(RequestType::Delete, 3, "ps/a", &[]),
            code::METHOD_NOT_ALLOWED,
        ),
        (
            con(RequestType::Post, 4, ".well-known/core", &[]),
            code::METHOD_NOT_ALLOWED,
        ),
        (con(RequestType::Put, 5, "ps/a/+", &[]), code::BAD_REQUEST),
        (con(RequestType::Put, 6, "ps/a/#", &[]), code::BAD_REQUEST),
        (con(RequestType::Put, 7, "ps", &[]), code::BAD_REQUEST),
        (
            con(RequestType::Put, 8, "ps/a", &["qos=3"]),
            code::BAD_REQUEST,
        ),
        (
            con(RequestType::Put, 9, "ps/a", &["retain=maybe"]),
            code::BAD_REQUEST,
        ),
        (con(RequestType::Get, 10, "ps/a/+", &[]), code::BAD_REQUEST),
        (
            con(RequestType::Get, 11, "ps/a/#/b", &[]),
            code::BAD_REQUEST,
        ),
    ];
    let mut e = engine();
    for (packet, expected) in cases {
        feed(&mut e, &packet);
        let response = one_response(&mut e);
        assert_eq!(code_of(&response), expected, "{packet:?}");
        assert_eq!(response.header.get_type(), MessageType::Acknowledgement);
        assert_eq!(response.header.message_id, packet.header.message_id);
        assert_eq!(response.get_token(), packet.get_token());
    }
}

#[test]
fn unknown_critical_options_and_proxy_uri() {
    let mut e = engine();
    let mut p = con(RequestType::Put, 1, "ps/a", &[]);
    p.add_option(CoapOption::Unknown(2049), vec![1]);
    feed(&mut e, &p);
    assert_eq!(code_of(&one_response(&mut e)), code::BAD_OPTION);
    // An unknown elective option is ignored.
    let mut p = con(RequestType::Put, 2, "ps/a", &[]);
    p.add_option(CoapOption::Unknown(2048), vec![1]);
    feed(&mut e, &p);
    assert!(matches!(one_command(&mut e), Command::Publish { .. }));
    let mut p = con(RequestType::Get, 3, "ps/a", &[]);
    p.add_option(CoapOption::ProxyUri, b"coap://elsewhere/x".to_vec());
    feed(&mut e, &p);
    assert_eq!(code_of(&one_response(&mut e)), code::PROXYING_NOT_SUPPORTED);
}

#[test]
fn publish_answers_after_the_broker_and_duplicates_are_not_published_again() {
    let mut e = engine();
    let mut p = con(
        RequestType::Put,
        77,
        "ps/sensors/kitchen/temp",
        &["retain=true", "c=dev1"],
    );
    p.set_content_format(coap_lite::ContentFormat::ApplicationJSON);
    p.payload = b"{\"t\":21.5}".to_vec();
    feed(&mut e, &p);
    let (sent, commands) = effects(&mut e);
    assert!(sent.is_empty(), "no answer before the broker's");
    let [(session, command)] = &commands[..] else {
        panic!("{commands:?}");
    };
    assert_eq!(session.client_id.as_deref(), Some("dev1"));
    let op = op_of(command);
    assert_eq!(
        command,
        &Command::Publish {
            op,
            topic: "sensors/kitchen/temp".into(),
            payload: b"{\"t\":21.5}".to_vec(),
            qos: 1,
            retain: true,
            content_type: Some("application/json".into()),
        }
    );
    // The device retransmits while the broker has not answered: dropped.
    feed(&mut e, &p);
    assert_eq!(effects(&mut e), (vec![], vec![]));
    e.on_broker(
        Event::Done {
            op,
            outcome: Outcome::Published,
        },
        Instant::now(),
    );
    let ack = one_response(&mut e);
    assert_eq!(code_of(&ack), code::CHANGED);
    assert_eq!(ack.header.get_type(), MessageType::Acknowledgement);
    // Another retransmission gets the same answer, and nothing is published.
    feed(&mut e, &p);
    assert_eq!(one_response(&mut e), ack);
}

#[test]
fn non_requests_default_to_qos_0_and_get_non_responses() {
    let mut e = engine();
    let p = request(
        MessageType::NonConfirmable,
        RequestType::Post,
        5,
        "ps/x",
        &[],
    );
    feed(&mut e, &p);
    let command = one_command(&mut e);
    assert!(matches!(
        command,
        Command::Publish {
            qos: 0,
            retain: false,
            ..
        }
    ));
    e.on_broker(
        Event::Done {
            op: op_of(&command),
            outcome: Outcome::Published,
        },
        Instant::now(),
    );
    let response = one_response(&mut e);
    assert_eq!(response.header.get_type(), MessageType::NonConfirmable);
    assert_eq!(code_of(&response), code::CHANGED);
}

#[test]
fn broker_failures_map_to_codes() {
    let mut e = engine();
    for (i, (failure, expected)) in [
        (Failure::NotAuthorized, code::FORBIDDEN),
        (Failure::BadCredentials, code::UNAUTHORIZED),
        (Failure::Unreachable, code::SERVICE_UNAVAILABLE),
        (Failure::TopicInvalid, code::BAD_REQUEST),
    ]
    .into_iter()
    .enumerate()
    {
        feed(&mut e, &con(RequestType::Put, i as u16, "ps/a", &[]));
        let op = op_of(&one_command(&mut e));
        e.on_broker(
            Event::Done {
                op,
                outcome: Outcome::Failed(failure),
            },
            Instant::now(),
        );
        let response = one_response(&mut e);
        assert_eq!(code_of(&response), expected);
        if failure == Failure::Unreachable {
            assert_eq!(
                response.get_first_option(CoapOption::MaxAge),
                Some(&uint(RETRY_AFTER_SECS))
            );
        }
    }
}

fn block1(p: &mut Packet, num: u32, more: bool, szx: u8, tag: &[u8]) {
    p.add_option(CoapOption::Block1, Block { num, more, szx }.encode());
    p.add_option(CoapOption::Unknown(REQUEST_TAG), tag.to_vec());
}

#[test]
fn block1_upload_with_new_tokens_per_block() {
    let mut e = engine();
    let body: Vec<u8> = (0..100u8).collect();
    for (num, chunk) in body.chunks(32).enumerate() {
        let more = (num + 1) * 32 < body.len();
        let mut p = con(RequestType::Put, 100 + num as u16, "ps/up", &[]);
        block1(&mut p, num as u32, more, 1, b"tag");
        p.payload = chunk.to_vec();
        feed(&mut e, &p);
        if more {
            let r = one_response(&mut e);
            assert_eq!(code_of(&r), code::CONTINUE);
            assert_eq!(
                Block::decode(r.get_first_option(CoapOption::Block1).unwrap()),
                Some(Block {
                    num: num as u32,
                    more: true,
                    szx: 1
                })
            );
        }
    }
    let command = one_command(&mut e);
    let Command::Publish { op, payload, .. } = &command else {
        panic!("{command:?}")
    };
    assert_eq!(payload, &body);
    e.on_broker(
        Event::Done {
            op: *op,
            outcome: Outcome::Published,
        },
        Instant::now(),
    );
    let r = one_response(&mut e);
    assert_eq!(code_of(&r), code::CHANGED);
    assert_eq!(
        Block::decode(r.get_first_option(CoapOption::Block1).unwrap()),
        Some(Block {
            num: 3,
            more: false,
            szx: 1
        })
    );
}

#[test]
fn block1_errors() {
    let mut e = engine();
    // Announced too large.
    let mut p = con(RequestType::Put, 1, "ps/up", &[]);
    block1(&mut p, 0, true, 6, b"a");
    p.add_option(CoapOption::Size1, uint(1_000_000));
    p.payload = vec![0; 1024];
    feed(&mut e, &p);
    let r = one_response(&mut e);
    assert_eq!(code_of(&r), code::REQUEST_ENTITY_TOO_LARGE);
    assert_eq!(r.get_first_option(CoapOption::Size1), Some(&uint(4096)));
    // Growing too large without Size1.
    for num in 0..5u16 {
        let mut p = con(RequestType::Put, 10 + num, "ps/up", &[]);
        block1(&mut p, num.into(), true, 6, b"b");
        p.payload = vec![0; 1024];
        feed(&mut e, &p);
        let expected = if num < 4 {
            code::CONTINUE
        } else {
            code::REQUEST_ENTITY_TOO_LARGE
        };
        assert_eq!(code_of(&one_response(&mut e)), expected);
    }
    // A block out of order.
    let mut p = con(RequestType::Put, 20, "ps/up", &[]);
    block1(&mut p, 3, false, 6, b"c");
    feed(&mut e, &p);
    assert_eq!(
        code_of(&one_response(&mut e)),
        code::REQUEST_ENTITY_INCOMPLETE
    );
    // One big datagram.
    let mut p = con(RequestType::Put, 21, "ps/up", &[]);
    p.payload = vec![0; 5000];
    feed(&mut e, &p);
    assert_eq!(
        code_of(&one_response(&mut e)),
        code::REQUEST_ENTITY_TOO_LARGE
    );
}

fn message(topic: &str, payload: &[u8], qos: u8) -> Event {
    Event::Message {
        session: Credentials::default(),
        message: Message {
            topic: topic.into(),
            payload: payload.to_vec(),
            qos,
            retain: false,
            content_type: None,
        },
    }
}

fn observe(mid: u16, path: &str, value: u32) -> Packet {
    let mut p = con(RequestType::Get, mid, path, &[]);
    p.set_token(b"obs".to_vec());
    p.set_observe_value(value);
    p
}

/// Registers an observer on `path` and completes the subscription with `retained`.
fn registered(e: &mut Engine, path: &str, retained: Vec<Message>) -> Packet {
    feed(e, &observe(1, path, 0));
    let command = one_command(e);
    let filter = path.strip_prefix("ps/").unwrap();
    assert_eq!(
        command,
        Command::Subscribe {
            op: op_of(&command),
            filter: filter.into()
        }
    );
    e.on_broker(
        Event::Done {
            op: op_of(&command),
            outcome: Outcome::Subscribed { retained },
        },
        Instant::now(),
    );
    one_response(e)
}

#[test]
fn observe_relation_lifecycle() {
    let mut e = engine();
    let retained = Message {
        topic: "room/1".into(),
        payload: b"old".to_vec(),
        qos: 1,
        retain: true,
        content_type: Some("text/plain".into()),
    };
    let first = registered(&mut e, "ps/room/+", vec![retained]);
    assert_eq!(code_of(&first), code::CONTENT);
    assert_eq!(first.payload, b"old");
    assert_eq!(first.get_observe_value(), Some(Ok(1)));
    assert_eq!(
        first.get_first_option(CoapOption::ContentFormat),
        Some(&vec![])
    );
    assert_eq!(e.observer_count(), 1);

    // QoS 0: NON notification naming the concrete topic.
    e.on_broker(message("room/2", b"a", 0), Instant::now());
    let n = one_response(&mut e);
    assert_eq!(n.header.get_type(), MessageType::NonConfirmable);
    assert_eq!(n.get_token(), b"obs");
    assert_eq!(n.payload, b"a");
    assert_eq!(n.get_observe_value(), Some(Ok(2)));
    let location: Vec<&[u8]> = n
        .get_option(CoapOption::LocationPath)
        .unwrap()
        .iter()
        .map(Vec::as_slice)
        .collect();
    assert_eq!(location, [&b"ps"[..], b"room", b"2"]);
    // Non-matching topics and retained re-sends are not notified.
    e.on_broker(message("hall/2", b"x", 0), Instant::now());
    let mut again = message("room/3", b"x", 0);
    if let Event::Message { message, .. } = &mut again {
        message.retain = true;
    }
    e.on_broker(again, Instant::now());
    assert_eq!(effects(&mut e), (vec![], vec![]));

    // QoS 1: CON, one at a time.
    e.on_broker(message("room/1", b"b", 1), Instant::now());
    e.on_broker(message("room/1", b"c", 1), Instant::now());
    let b = one_response(&mut e);
    assert_eq!(
        (b.header.get_type(), &b.payload[..]),
        (MessageType::Confirmable, &b"b"[..])
    );
    let ack = [
        0x60,
        0,
        (b.header.message_id >> 8) as u8,
        b.header.message_id as u8,
    ];
    e.on_datagram(peer(), &ack, Instant::now());
    let c = one_response(&mut e);
    assert_eq!(c.payload, b"c");
    assert!(c.get_observe_value().unwrap().unwrap() > b.get_observe_value().unwrap().unwrap());

    // RST to a notification ends the relation and releases the subscription.
    let rst = [
        0x70,
        0,
        (c.header.message_id >> 8) as u8,
        c.header.message_id as u8,
    ];
    e.on_datagram(peer(), &rst, Instant::now());
    assert_eq!(
        one_command(&mut e),
        Command::Unsubscribe {
            filter: "room/+".into()
        }
    );
    assert_eq!(e.observer_count(), 0);
}

#[test]
fn deregistration_with_observe_1() {
    let mut e = engine();
    let first = registered(&mut e, "ps/t", vec![]);
    assert_eq!((code_of(&first), first.payload.len()), (code::CONTENT, 0));
    feed(&mut e, &observe(2, "ps/t", 1));
    let (sent, commands) = effects(&mut e);
    assert!(sent.is_empty());
    assert_eq!(commands.len(), 2, "{commands:?}");
    assert_eq!(commands[0].1, Command::Unsubscribe { filter: "t".into() });
    assert!(matches!(commands[1].1, Command::Read { .. }));
    assert_eq!(e.observer_count(), 0);
}

#[test]
fn unacknowledged_notifications_end_the_relation() {
    let mut e = engine();
    registered(&mut e, "ps/t", vec![]);
    let start = Instant::now();
    e.on_broker(message("t", b"v", 1), start);
    let first = one_response(&mut e);
    let mut copies = 0;
    let mut t = start;
    while t < start + Duration::from_secs(100) {
        t += Duration::from_millis(100);
        e.on_tick(t);
        let (sent, commands) = effects(&mut e);
        for p in sent {
            assert_eq!(p, first, "a retransmission is the same message");
            copies += 1;
        }
        if !commands.is_empty() {
            assert_eq!(commands[0].1, Command::Unsubscribe { filter: "t".into() });
            break;
        }
    }
    assert_eq!(copies, 4);
    assert_eq!(e.observer_count(), 0);
    // Between 2+4+8+16+32 = 62 s and 1.5 times that.
    let took = t - start;
    assert!(
        took >= Duration::from_secs(62) && took <= Duration::from_secs(94),
        "{took:?}"
    );
}

#[test]
fn link_down_ends_relations_with_5_03() {
    let mut e = engine();
    // A registration still waiting for its subscription is left to its own answer.
    let mut waiting = observe(9, "ps/w", 0);
    waiting.set_token(b"wait".to_vec());
    feed(&mut e, &waiting);
    let op = op_of(&one_command(&mut e));
    registered(&mut e, "ps/t", vec![]);
    e.on_broker(
        Event::LinkDown {
            session: Credentials::default(),
        },
        Instant::now(),
    );
    let n = one_response(&mut e);
    assert_eq!(code_of(&n), code::SERVICE_UNAVAILABLE);
    assert_eq!(n.get_token(), b"obs");
    assert_eq!(n.get_observe_value(), None);
    assert_eq!(e.observer_count(), 1);
    e.on_broker(
        Event::Done {
            op,
            outcome: Outcome::Failed(Failure::Unreachable),
        },
        Instant::now(),
    );
    let answer = one_response(&mut e);
    assert_eq!(
        (code_of(&answer), answer.header.message_id),
        (code::SERVICE_UNAVAILABLE, 9)
    );
    assert_eq!(e.observer_count(), 0);
}

#[test]
fn get_retained_and_block2() {
    let mut e = engine();
    // Nothing retained: 4.04.
    feed(&mut e, &con(RequestType::Get, 1, "ps/none", &[]));
    let op = op_of(&one_command(&mut e));
    e.on_broker(
        Event::Done {
            op,
            outcome: Outcome::Subscribed { retained: vec![] },
        },
        Instant::now(),
    );
    assert_eq!(code_of(&one_response(&mut e)), code::NOT_FOUND);

    // 3000 bytes retained: sent in 1024-byte blocks, the rest from the stored copy.
    let body: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    feed(&mut e, &con(RequestType::Get, 2, "ps/big", &[]));
    let op = op_of(&one_command(&mut e));
    let retained = Message {
        topic: "big".into(),
        payload: body.clone(),
        qos: 1,
        retain: true,
        content_type: Some("application/octet-stream".into()),
    };
    e.on_broker(
        Event::Done {
            op,
            outcome: Outcome::Subscribed {
                retained: vec![retained],
            },
        },
        Instant::now(),
    );
    let mut got = Vec::new();
    let mut r = one_response(&mut e);
    let etag = r.get_first_option(CoapOption::ETag).cloned();
    assert_eq!(r.get_first_option(CoapOption::Size2), Some(&uint(3000)));
    let mut num = 0;
    loop {
        assert_eq!(code_of(&r), code::CONTENT);
        assert_eq!(r.get_first_option(CoapOption::ETag).cloned(), etag);
        let block = Block::decode(r.get_first_option(CoapOption::Block2).unwrap()).unwrap();
        assert_eq!((block.num, block.szx), (num, 6));
        got.extend_from_slice(&r.payload);
        if !block.more {
            break;
        }
        num += 1;
        let mut p = con(RequestType::Get, 10 + num as u16, "ps/big", &[]);
        p.add_option(
            CoapOption::Block2,
            Block {
                num,
                more: false,
                szx: 6,
            }
            .encode(),
        );
        feed(&mut e, &p);
        r = one_response(&mut e);
    }
    assert_eq!(got, body);
}

#[test]
fn observer_limit_answers_without_observe() {
    let mut e = Engine::new(Limits {
        max_observers: 1,
        ..Limits::default()
    });
    registered(&mut e, "ps/a", vec![]);
    let mut p = observe(5, "ps/b", 0);
    p.set_token(b"other".to_vec());
    feed(&mut e, &p);
    assert!(matches!(one_command(&mut e), Command::Read { .. }));
    assert_eq!(e.observer_count(), 1);
}

#[test]
fn well_known_core() {
    let mut e = engine();
    feed(&mut e, &con(RequestType::Get, 1, ".well-known/core", &[]));
    let r = one_response(&mut e);
    assert_eq!(
        r.get_first_option(CoapOption::ContentFormat),
        Some(&uint(40))
    );
    let text = String::from_utf8(r.payload).unwrap();
    assert!(text.contains("</ps>;rt=\"core.ps\""), "{text}");
    assert!(text.contains("obs"), "{text}");
}

#[test]
fn floods_stay_bounded() {
    let mut e = Engine::new(Limits {
        max_pending: 10,
        dedup_entries: 100,
        ..Limits::default()
    });
    for mid in 0..1000u16 {
        feed(&mut e, &con(RequestType::Put, mid, "ps/a", &[]));
    }
    let (sent, commands) = effects(&mut e);
    assert_eq!(commands.len(), 10);
    assert_eq!(sent.len(), 990);
    assert!(sent.iter().all(|p| code_of(p) == code::SERVICE_UNAVAILABLE));
    assert_eq!(e.waiting_count(), 10);
    assert!(e.dedup.len() <= 100);
}

#[test]
fn large_notifications_go_block_wise() {
    let mut e = engine();
    registered(&mut e, "ps/big", vec![]);
    let body: Vec<u8> = (0..3000u32).map(|i| (i % 241) as u8).collect();
    e.on_broker(message("big", &body, 0), Instant::now());
    let n = one_response(&mut e);
    let block = Block::decode(n.get_first_option(CoapOption::Block2).unwrap()).unwrap();
    assert_eq!(
        block,
        Block {
            num: 0,
            more: true,
            szx: 6
        }
    );
    assert_eq!(n.get_first_option(CoapOption::Size2), Some(&uint(3000)));
    assert_eq!(n.payload, body[..1024]);
    // The client fetches the rest with plain GETs (RFC 7959 §3.4).
    let mut rest = n.payload.clone();
    for num in 1..3 {
        let mut p = con(RequestType::Get, 50 + num as u16, "ps/big", &[]);
        p.add_option(
            CoapOption::Block2,
            Block {
                num,
                more: false,
                szx: 6,
            }
            .encode(),
        );
        feed(&mut e, &p);
        let r = one_response(&mut e);
        assert_eq!(
            r.get_first_option(CoapOption::ETag),
            n.get_first_option(CoapOption::ETag)
        );
        rest.extend_from_slice(&r.payload);
    }
    assert_eq!(rest, body);
}

#[test]
fn relations_follow_the_client_id_to_a_new_address() {
    let mut e = engine();
    let mut p = observe(1, "ps/t", 0);
    p.add_option(CoapOption::UriQuery, b"clientid=dev7".to_vec());
    feed(&mut e, &p);
    let command = one_command(&mut e);
    e.on_broker(
        Event::Done {
            op: op_of(&command),
            outcome: Outcome::Subscribed { retained: vec![] },
        },
        Instant::now(),
    );
    one_response(&mut e);
    // The NAT gave the device a new port; its next request says who it is.
    let moved: SocketAddr = "127.0.0.1:40999".parse().unwrap();
    let ping = con(RequestType::Put, 2, "ps/other", &["clientid=dev7"]);
    e.on_datagram(moved, &ping.to_bytes().unwrap(), Instant::now());
    e.take_effects();
    let session = Credentials {
        client_id: Some("dev7".into()),
        ..Credentials::default()
    };
    e.on_broker(
        Event::Message {
            session,
            message: Message {
                topic: "t".into(),
                payload: b"v".to_vec(),
                qos: 0,
                retain: false,
                content_type: None,
            },
        },
        Instant::now(),
    );
    let sent = e.take_effects();
    assert!(
        matches!(&sent[..], [Effect::Send { to, .. }] if *to == moved),
        "{sent:?}"
    );
}

#[test]
fn accept_must_match_the_stored_format() {
    let mut e = engine();
    let mut p = con(RequestType::Get, 1, "ps/j", &[]);
    p.add_option(CoapOption::Accept, uint(60));
    feed(&mut e, &p);
    let op = op_of(&one_command(&mut e));
    let json = Message {
        topic: "j".into(),
        payload: b"{}".to_vec(),
        qos: 1,
        retain: true,
        content_type: Some("application/json".into()),
    };
    e.on_broker(
        Event::Done {
            op,
            outcome: Outcome::Subscribed {
                retained: vec![json],
            },
        },
        Instant::now(),
    );
    assert_eq!(code_of(&one_response(&mut e)), code::NOT_ACCEPTABLE);
}

#[test]
fn requests_the_broker_does_not_answer_time_out() {
    let mut e = engine();
    let start = Instant::now();
    e.on_datagram(
        peer(),
        &con(RequestType::Put, 1, "ps/a", &[]).to_bytes().unwrap(),
        start,
    );
    let publish = op_of(&one_command(&mut e));
    e.on_datagram(peer(), &observe(2, "ps/b", 0).to_bytes().unwrap(), start);
    let subscribe = op_of(&one_command(&mut e));
    e.on_tick(start + Duration::from_secs(29));
    assert_eq!(effects(&mut e), (vec![], vec![]));
    e.on_tick(start + Duration::from_secs(30));
    let (sent, commands) = effects(&mut e);
    let mut codes: Vec<(u16, u8)> = sent
        .iter()
        .map(|p| (p.header.message_id, code_of(p)))
        .collect();
    codes.sort_unstable();
    assert_eq!(
        codes,
        [(1, code::GATEWAY_TIMEOUT), (2, code::GATEWAY_TIMEOUT)]
    );
    // The subscription made later is released.
    assert_eq!(commands.len(), 1);
    assert_eq!(commands[0].1, Command::Unsubscribe { filter: "b".into() });
    assert_eq!(e.observer_count(), 0);
    // Late answers are dropped.
    for op in [publish, subscribe] {
        e.on_broker(
            Event::Done {
                op,
                outcome: Outcome::Published,
            },
            start + Duration::from_secs(31),
        );
    }
    assert_eq!(effects(&mut e), (vec![], vec![]));
}
