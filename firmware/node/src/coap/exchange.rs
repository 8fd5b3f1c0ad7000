//! One confirmable request and its retransmission (RFC 7252 §4.2, §4.8): sans-IO, so the
//! timing rules are tested on the host.

use embassy_time::{Duration, Instant};

use super::message::{Code, Header, MessageType};

/// Transmission parameters (RFC 7252 §4.8). ACK_RANDOM_FACTOR is fixed at 1.5.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Params {
    pub ack_timeout: Duration,
    pub max_retransmit: u8,
}

impl Params {
    /// ACK_TIMEOUT 2 s, MAX_RETRANSMIT 4.
    pub const RFC7252: Self = Self {
        ack_timeout: Duration::from_secs(2),
        max_retransmit: 4,
    };

    /// MAX_TRANSMIT_WAIT: from the first transmission to giving up.
    pub fn max_transmit_wait(&self) -> Duration {
        let spans = (1u64 << (self.max_retransmit + 1)) - 1;
        self.ack_timeout * spans as u32 * 3 / 2
    }
}

/// What to do when the deadline passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Send the same datagram again (same message id).
    Retransmit,
    /// No answer after MAX_RETRANSMIT retransmissions (or no separate response in time).
    GiveUp,
}

/// What a received datagram means for the exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    /// Not ours (another message id or token): ignore it.
    Unrelated,
    /// The response code: piggybacked on the ACK or a separate response. For a
    /// confirmable separate response, `ack` is the message id to acknowledge.
    Response { code: Code, ack: Option<u16> },
    /// An empty ACK: the server has the request and answers later; stop retransmitting.
    Accepted,
    /// RST: the server refused to process the request.
    Reset,
}

#[derive(Debug)]
pub struct Exchange {
    message_id: u16,
    token: heapless::Vec<u8, { super::message::MAX_TOKEN }>,
    /// The current retransmission timeout, doubled at every retransmission.
    timeout: Duration,
    retransmits: u8,
    deadline: Instant,
    /// Set once an empty ACK arrived: only the separate response is awaited.
    accepted: bool,
    params: Params,
    started: Instant,
}

impl Exchange {
    /// The request went out for the first time at `now`. `random` picks the initial
    /// timeout uniformly in [ACK_TIMEOUT, ACK_TIMEOUT × 1.5].
    pub fn start(now: Instant, params: Params, message_id: u16, token: &[u8], random: u32) -> Self {
        let spread = params.ack_timeout.as_ticks() / 2;
        let jitter = spread * u64::from(random) / u64::from(u32::MAX);
        let timeout = params.ack_timeout + Duration::from_ticks(jitter);
        Self {
            message_id,
            token: heapless::Vec::from_slice(token).unwrap_or_default(),
            timeout,
            retransmits: 0,
            deadline: now + timeout,
            accepted: false,
            params,
            started: now,
        }
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    pub fn on_timeout(&mut self, now: Instant) -> Step {
        if self.accepted || self.retransmits >= self.params.max_retransmit {
            return Step::GiveUp;
        }
        self.retransmits += 1;
        self.timeout *= 2;
        self.deadline = now + self.timeout;
        Step::Retransmit
    }

    pub fn on_message(&mut self, header: &Header<'_>) -> Received {
        let our_id = header.message_id == self.message_id;
        let our_token = header.token == self.token.as_slice();
        match header.kind {
            MessageType::Acknowledgement if our_id && header.code == Code::EMPTY => {
                self.accepted = true;
                // Wait for the separate response as long as the request could have taken.
                self.deadline = self.started + self.params.max_transmit_wait();
                Received::Accepted
            }
            MessageType::Acknowledgement if our_id && our_token => Received::Response {
                code: header.code,
                ack: None,
            },
            MessageType::Reset if our_id => Received::Reset,
            MessageType::Confirmable | MessageType::NonConfirmable
                if our_token && header.code != Code::EMPTY && header.code.class() >= 2 =>
            {
                Received::Response {
                    code: header.code,
                    ack: (header.kind == MessageType::Confirmable).then_some(header.message_id),
                }
            }
            _ => Received::Unrelated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    fn header(kind: MessageType, code: Code, message_id: u16, token: &[u8]) -> Header<'_> {
        Header {
            kind,
            code,
            message_id,
            token,
        }
    }

    #[test]
    fn retransmits_with_doubling_timeouts_then_gives_up() {
        let p = Params::RFC7252;
        // random = 0: exactly ACK_TIMEOUT; then 4, 8, 16, 32 s.
        let mut x = Exchange::start(ms(0), p, 7, &[1, 2], 0);
        assert_eq!(x.deadline(), ms(2_000));
        let mut now = 2_000;
        for expected in [4_000, 8_000, 16_000, 32_000] {
            assert_eq!(x.on_timeout(ms(now)), Step::Retransmit);
            now += expected;
            assert_eq!(x.deadline(), ms(now));
        }
        assert_eq!(x.on_timeout(ms(now)), Step::GiveUp);
        assert_eq!(now, 62_000, "2 + 4 + 8 + 16 + 32 s");
        // The random factor stretches the first timeout up to 1.5 ×.
        let x = Exchange::start(ms(0), p, 7, &[1, 2], u32::MAX);
        assert_eq!(x.deadline(), ms(3_000));
        assert_eq!(p.max_transmit_wait(), Duration::from_secs(93));
    }

    #[test]
    fn piggybacked_response() {
        let mut x = Exchange::start(ms(0), Params::RFC7252, 7, &[1, 2], 0);
        let ack = |code, id, token| header(MessageType::Acknowledgement, code, id, token);
        assert_eq!(
            x.on_message(&ack(Code::CHANGED, 8, &[1, 2])),
            Received::Unrelated
        );
        assert_eq!(
            x.on_message(&ack(Code::CHANGED, 7, &[9])),
            Received::Unrelated
        );
        assert_eq!(
            x.on_message(&ack(Code::CHANGED, 7, &[1, 2])),
            Received::Response {
                code: Code::CHANGED,
                ack: None
            }
        );
        assert_eq!(
            x.on_message(&ack(Code(0x80), 7, &[1, 2])),
            Received::Response {
                code: Code(0x80),
                ack: None
            },
            "4.00 is a response too"
        );
    }

    #[test]
    fn empty_ack_then_separate_response() {
        let mut x = Exchange::start(ms(0), Params::RFC7252, 7, &[1, 2], 0);
        let empty = header(MessageType::Acknowledgement, Code::EMPTY, 7, &[]);
        assert_eq!(x.on_message(&empty), Received::Accepted);
        assert_eq!(x.deadline(), ms(93_000));
        let separate = header(MessageType::Confirmable, Code::CHANGED, 500, &[1, 2]);
        assert_eq!(
            x.on_message(&separate),
            Received::Response {
                code: Code::CHANGED,
                ack: Some(500)
            }
        );
        let non = header(MessageType::NonConfirmable, Code::CHANGED, 501, &[1, 2]);
        assert_eq!(
            x.on_message(&non),
            Received::Response {
                code: Code::CHANGED,
                ack: None
            }
        );
        // No retransmission once accepted: the deadline only ends the wait.
        assert_eq!(x.on_timeout(ms(93_000)), Step::GiveUp);
    }

    #[test]
    fn reset_and_stray_requests() {
        let mut x = Exchange::start(ms(0), Params::RFC7252, 7, &[1, 2], 0);
        let request = header(MessageType::Confirmable, Code::POST, 9, &[1, 2]);
        assert_eq!(x.on_message(&request), Received::Unrelated);
        let rst = header(MessageType::Reset, Code::EMPTY, 8, &[]);
        assert_eq!(x.on_message(&rst), Received::Unrelated);
        let rst = header(MessageType::Reset, Code::EMPTY, 7, &[]);
        assert_eq!(x.on_message(&rst), Received::Reset);
    }
}
