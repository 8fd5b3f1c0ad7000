//! A subscriber that stops reading: midge stops writing to it at its output's high-water
//! mark, keeps the rest queued, and sends every queued message once the client reads
//! again (a regression test: the queue's tail used to stay behind at QoS 0 once the
//! publishers had stopped, as nothing woke the connection again).

use std::time::Duration;

use midge_e2e::{Midge, RawClient};
use midge_wire::QoS;

#[test]
fn a_subscriber_that_stalled_gets_the_whole_queue_once_it_reads() {
    const COUNT: usize = 4000;
    let midge = Midge::start_with_config("max_queued_messages 0\n");
    let mut subscriber = RawClient::connected(midge.port(), "stalled");
    subscriber.subscribe("flood/#", QoS::AtMostOnce);
    // Far more than the socket buffers and midge's 64 KiB of output hold, sent while the
    // subscriber reads nothing.
    let payload = vec![b'x'; 4096];
    let mut publisher = RawClient::connected(midge.port(), "flooder");
    for i in 0..COUNT {
        publisher.publish(
            &format!("flood/{}", i % 8),
            &payload,
            QoS::AtMostOnce,
            false,
        );
    }
    publisher.sync();
    let mut received = 0;
    while subscriber.poll_publish(Duration::from_secs(5)).is_some() {
        received += 1;
        if received == COUNT {
            break;
        }
    }
    assert_eq!(received, COUNT, "messages never sent to the subscriber");
}
