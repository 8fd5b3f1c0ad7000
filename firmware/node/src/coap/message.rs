//! The few CoAP messages a publishing node needs (RFC 7252 §3): a confirmable POST with
//! Uri-Path, Content-Format and Uri-Query options, the empty ACK, and the header of
//! whatever comes back. Written here because coap-lite needs an allocator.

use core::fmt;

/// Message types (RFC 7252 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MessageType {
    Confirmable = 0,
    NonConfirmable = 1,
    Acknowledgement = 2,
    Reset = 3,
}

/// A message code `class.detail`, e.g. `Code(0x44)` is 2.04 Changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Code(pub u8);

impl Code {
    pub const EMPTY: Self = Self(0x00);
    pub const POST: Self = Self(0x02);
    /// 2.04, the gateway's answer to an accepted publish.
    pub const CHANGED: Self = Self(0x44);

    pub const fn class(self) -> u8 {
        self.0 >> 5
    }

    pub const fn detail(self) -> u8 {
        self.0 & 0x1f
    }

    /// 2.xx.
    pub const fn is_success(self) -> bool {
        self.class() == 2
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.class(), self.detail())
    }
}

/// Option numbers used here (RFC 7252 §5.10).
const URI_PATH: u16 = 11;
const CONTENT_FORMAT: u16 = 12;
const URI_QUERY: u16 = 15;

/// Content-Format of the readings: `application/json`.
pub const APPLICATION_JSON: u16 = 50;

/// The longest token this node uses and accepts (the protocol maximum).
pub const MAX_TOKEN: usize = 8;

/// A confirmable `POST /ps/{topic}` that publishes `payload` through midge's gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Post<'a> {
    pub message_id: u16,
    pub token: &'a [u8],
    /// The MQTT topic; each level becomes one Uri-Path option after `ps`.
    pub topic: &'a str,
    pub content_format: Option<u16>,
    /// Uri-Query options (`retain=true`, `qos=1`, …), in order.
    pub queries: &'a [&'a str],
    pub payload: &'a [u8],
}

/// Why a message could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum EncodeError {
    BufferTooSmall,
    TokenTooLong,
    /// An option value over 65,535 + 269 bytes.
    OptionTooLong,
}

impl Post<'_> {
    /// Writes the datagram into `buf` and returns its length.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        if self.token.len() > MAX_TOKEN {
            return Err(EncodeError::TokenTooLong);
        }
        let mut w = Writer { buf, len: 0 };
        w.header(
            MessageType::Confirmable,
            Code::POST,
            self.message_id,
            self.token,
        )?;
        let mut last = 0;
        for segment in core::iter::once("ps").chain(self.topic.split('/')) {
            w.option(&mut last, URI_PATH, segment.as_bytes())?;
        }
        if let Some(format) = self.content_format {
            w.option(&mut last, CONTENT_FORMAT, uint(format).as_slice())?;
        }
        for query in self.queries {
            w.option(&mut last, URI_QUERY, query.as_bytes())?;
        }
        if !self.payload.is_empty() {
            w.bytes(&[0xff])?;
            w.bytes(self.payload)?;
        }
        Ok(w.len)
    }
}

/// An empty message (ACK or RST) for `message_id`: four bytes.
pub fn encode_empty(kind: MessageType, message_id: u16) -> [u8; 4] {
    let [hi, lo] = message_id.to_be_bytes();
    [0x40 | ((kind as u8) << 4), Code::EMPTY.0, hi, lo]
}

/// The fixed part of a received message. Options and payload are not needed to match a
/// response to its request, so they are not parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    pub kind: MessageType,
    pub code: Code,
    pub message_id: u16,
    pub token: &'a [u8],
}

/// Why a datagram is not a CoAP message we can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ParseError {
    /// Shorter than its header and token.
    Truncated,
    /// Version other than 1 (to be ignored silently, RFC 7252 §3).
    Version(u8),
    /// Token length 9–15, reserved.
    TokenLength(u8),
    /// An empty message (code 0.00) with a token or more bytes (RFC 7252 §4.1).
    NonEmptyEmpty,
}

pub fn parse(datagram: &[u8]) -> Result<Header<'_>, ParseError> {
    let [first, code, hi, lo, rest @ ..] = datagram else {
        return Err(ParseError::Truncated);
    };
    let version = first >> 6;
    if version != 1 {
        return Err(ParseError::Version(version));
    }
    let token_len = first & 0x0f;
    if usize::from(token_len) > MAX_TOKEN {
        return Err(ParseError::TokenLength(token_len));
    }
    let token = rest
        .get(..usize::from(token_len))
        .ok_or(ParseError::Truncated)?;
    let code = Code(*code);
    if code == Code::EMPTY && datagram.len() != 4 {
        return Err(ParseError::NonEmptyEmpty);
    }
    let kind = match (first >> 4) & 0x03 {
        0 => MessageType::Confirmable,
        1 => MessageType::NonConfirmable,
        2 => MessageType::Acknowledgement,
        _ => MessageType::Reset,
    };
    Ok(Header {
        kind,
        code,
        message_id: u16::from_be_bytes([*hi, *lo]),
        token,
    })
}

/// A uint option value in its shortest form (RFC 7252 §3.2).
fn uint(value: u16) -> heapless::Vec<u8, 2> {
    let bytes = value.to_be_bytes();
    let skip = match value {
        0 => 2,
        1..=0xff => 1,
        _ => 0,
    };
    heapless::Vec::from_slice(&bytes[skip..]).unwrap_or_default()
}

struct Writer<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl Writer<'_> {
    fn bytes(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        let end = self.len + bytes.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(EncodeError::BufferTooSmall)?
            .copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    fn header(
        &mut self,
        kind: MessageType,
        code: Code,
        message_id: u16,
        token: &[u8],
    ) -> Result<(), EncodeError> {
        let [hi, lo] = message_id.to_be_bytes();
        // Token length is at most 8 (checked by the caller), so it fits the nibble.
        self.bytes(&[
            0x40 | ((kind as u8) << 4) | token.len() as u8,
            code.0,
            hi,
            lo,
        ])?;
        self.bytes(token)
    }

    /// One option, its number given as a delta to the previous one (options are written
    /// in ascending order), with the 13/14 extended forms of RFC 7252 §3.1.
    fn option(&mut self, last: &mut u16, number: u16, value: &[u8]) -> Result<(), EncodeError> {
        let delta = number - *last;
        *last = number;
        let length = u16::try_from(value.len()).map_err(|_| EncodeError::OptionTooLong)?;
        let (delta_nibble, delta_ext) = extended(delta).ok_or(EncodeError::OptionTooLong)?;
        let (length_nibble, length_ext) = extended(length).ok_or(EncodeError::OptionTooLong)?;
        self.bytes(&[(delta_nibble << 4) | length_nibble])?;
        self.bytes(&delta_ext)?;
        self.bytes(&length_ext)?;
        self.bytes(value)
    }
}

/// The nibble and extension bytes for an option delta or length.
fn extended(value: u16) -> Option<(u8, heapless::Vec<u8, 2>)> {
    Some(match value {
        0..=12 => (value as u8, heapless::Vec::new()),
        13..=268 => (13, heapless::Vec::from_slice(&[(value - 13) as u8]).ok()?),
        _ => (
            14,
            heapless::Vec::from_slice(&value.checked_sub(269)?.to_be_bytes()).ok()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;
    use std::{format, vec};

    #[test]
    fn post_bytes() {
        let post = Post {
            message_id: 0x1234,
            token: &[0xaa, 0xbb],
            topic: "sensors/kitchen/temperature",
            content_format: Some(APPLICATION_JSON),
            queries: &["retain=true"],
            payload: b"{}",
        };
        let mut buf = [0u8; 96];
        let n = post.encode(&mut buf).unwrap();
        let mut expected = vec![0x42, 0x02, 0x12, 0x34, 0xaa, 0xbb];
        expected.extend([0xb2]); // Uri-Path (delta 11), length 2
        expected.extend(b"ps");
        expected.extend([0x07]);
        expected.extend(b"sensors");
        expected.extend([0x07]);
        expected.extend(b"kitchen");
        expected.extend([0x0b]);
        expected.extend(b"temperature");
        expected.extend([0x11, 50]); // Content-Format (delta 1), 1 byte
        expected.extend([0x3b]); // Uri-Query (delta 3), length 11
        expected.extend(b"retain=true");
        expected.extend([0xff]);
        expected.extend(b"{}");
        assert_eq!(&buf[..n], &expected[..]);
        // Our own parser reads the header back.
        let header = parse(&buf[..n]).unwrap();
        assert_eq!(
            header,
            Header {
                kind: MessageType::Confirmable,
                code: Code::POST,
                message_id: 0x1234,
                token: &[0xaa, 0xbb],
            }
        );
    }

    #[test]
    fn extended_option_lengths() {
        let long = "x".repeat(13);
        let longer = "y".repeat(300);
        let topic = format!("{long}/{longer}");
        let post = Post {
            message_id: 1,
            token: &[],
            topic: &topic,
            content_format: None,
            queries: &[],
            payload: &[],
        };
        let mut buf = [0u8; 400];
        let n = post.encode(&mut buf).unwrap();
        // Header (4), ps (3), 13 bytes: nibble 13 + ext 0 (2 + 13), 300 bytes: nibble 14
        // + ext 300 - 269 = 31 as two bytes (3 + 300). No payload marker.
        assert_eq!(n, 4 + 3 + 15 + 303);
        assert_eq!(buf[7], 0x0d);
        assert_eq!(buf[8], 0);
        assert_eq!(&buf[22..25], &[0x0e, 0x00, 31]);
        assert_eq!(
            post.encode(&mut [0u8; 100]),
            Err(EncodeError::BufferTooSmall)
        );
        let bad = Post {
            token: &[0; 9],
            ..post
        };
        assert_eq!(bad.encode(&mut buf), Err(EncodeError::TokenTooLong));
    }

    #[test]
    fn empty_messages_and_parse_errors() {
        let ack = encode_empty(MessageType::Acknowledgement, 0xbeef);
        assert_eq!(ack, [0x60, 0x00, 0xbe, 0xef]);
        assert_eq!(parse(&ack).unwrap().kind, MessageType::Acknowledgement);
        assert_eq!(encode_empty(MessageType::Reset, 1), [0x70, 0, 0, 1]);
        assert_eq!(parse(&[0x60, 0x00, 0x01]), Err(ParseError::Truncated));
        assert_eq!(parse(&[0x80, 0x44, 0, 1]), Err(ParseError::Version(2)));
        assert_eq!(parse(&[0x69, 0x44, 0, 1]), Err(ParseError::TokenLength(9)));
        assert_eq!(parse(&[0x62, 0x44, 0, 1, 0xaa]), Err(ParseError::Truncated));
        assert_eq!(
            parse(&[0x61, 0x00, 0, 1, 0xaa]),
            Err(ParseError::NonEmptyEmpty)
        );
        assert_eq!(Code::CHANGED.to_string(), "2.04");
        assert!(Code::CHANGED.is_success());
        assert!(!Code(0x84).is_success());
    }
}
