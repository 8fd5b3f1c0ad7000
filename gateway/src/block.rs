//! Block-wise transfers (RFC 7959): the Block1/Block2 option value, reassembly of Block1
//! uploads, and the representations kept for Block2 follow-up requests.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A Block1 or Block2 option value: block number, "more" flag and size exponent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    pub num: u32,
    pub more: bool,
    /// The size is `1 << (szx + 4)`: 16 to 1024 bytes.
    pub szx: u8,
}

impl Block {
    /// Decodes an option value; `None` for values longer than 3 bytes or the reserved
    /// size exponent 7 (both answered with 4.00).
    pub fn decode(value: &[u8]) -> Option<Self> {
        if value.len() > 3 {
            return None;
        }
        let raw = value.iter().fold(0u32, |acc, b| acc << 8 | u32::from(*b));
        let szx = (raw & 0x7) as u8;
        if szx == 7 {
            return None;
        }
        Some(Self {
            num: raw >> 4,
            more: raw & 0x8 != 0,
            szx,
        })
    }

    pub fn encode(self) -> Vec<u8> {
        let raw = self.num << 4 | u32::from(self.more) << 3 | u32::from(self.szx);
        let bytes = raw.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        bytes[skip..].to_vec()
    }

    pub fn size(self) -> usize {
        1 << (self.szx + 4)
    }
}

/// The size exponent for a block size in bytes (rounded down to a power of two, 16..=1024).
pub fn szx_for(size: usize) -> u8 {
    let size = size.clamp(16, 1024);
    (usize::BITS - 1 - size.leading_zeros()) as u8 - 4
}

/// Block `num` of `body` at size exponent `szx`, and whether more follow; `None` when the
/// block starts past the end of the body.
pub fn slice(body: &[u8], num: u32, szx: u8) -> Option<(&[u8], bool)> {
    let size = 1usize << (szx + 4);
    let start = (num as usize).checked_mul(size)?;
    if start > body.len() || (start == body.len() && num > 0) {
        return None;
    }
    let end = (start + size).min(body.len());
    Some((&body[start..end], end < body.len()))
}

/// Why a Block1 upload cannot continue.
#[derive(Debug, PartialEq, Eq)]
pub enum UploadError {
    /// The body would exceed the cap: 4.13 with Size1 = cap.
    TooLarge,
    /// A block out of order or the start missing: 4.08.
    Incomplete,
    /// A non-final block whose payload is not exactly the block size: 4.00.
    BadBlockSize,
}

/// One upload in progress is identified by the peer, the request's URI and its
/// Request-Tag (RFC 9175): libcoap sends every block with a new token, so the token
/// cannot be the key.
pub type UploadKey = (SocketAddr, String, Vec<u8>);

#[derive(Debug)]
struct Upload {
    body: Vec<u8>,
    expires: Instant,
}

/// Block1 uploads being reassembled, bounded in number, size and age.
#[derive(Debug)]
pub struct Uploads {
    uploads: HashMap<UploadKey, Upload>,
    started: VecDeque<UploadKey>,
    max_uploads: usize,
    max_body: usize,
    lifetime: Duration,
}

impl Uploads {
    pub fn new(max_uploads: usize, max_body: usize, lifetime: Duration) -> Self {
        Self {
            uploads: HashMap::new(),
            started: VecDeque::new(),
            max_uploads,
            max_body,
            lifetime,
        }
    }

    pub fn max_body(&self) -> usize {
        self.max_body
    }

    /// Adds one block; `Ok(Some(body))` once the last block arrived.
    pub fn add(
        &mut self,
        key: UploadKey,
        block: Block,
        payload: &[u8],
        now: Instant,
    ) -> Result<Option<Vec<u8>>, UploadError> {
        if block.more && payload.len() != block.size() {
            self.uploads.remove(&key);
            return Err(UploadError::BadBlockSize);
        }
        if block.num == 0 {
            if !self.uploads.contains_key(&key) {
                self.make_room(now);
                self.started.push_back(key.clone());
            }
            self.uploads.insert(
                key.clone(),
                Upload {
                    body: Vec::new(),
                    expires: now + self.lifetime,
                },
            );
        }
        let Some(upload) = self.uploads.get_mut(&key) else {
            return Err(UploadError::Incomplete);
        };
        // Blocks are a fixed size apart, so a repeated or skipped block shows in its number.
        // The offset is what counts (RFC 7959 §2.5 lets the size shrink mid-transfer).
        let offset = block.num as usize * block.size();
        if offset != upload.body.len() {
            self.uploads.remove(&key);
            return Err(UploadError::Incomplete);
        }
        if upload.body.len() + payload.len() > self.max_body {
            self.uploads.remove(&key);
            return Err(UploadError::TooLarge);
        }
        upload.body.extend_from_slice(payload);
        upload.expires = now + self.lifetime;
        if block.more {
            return Ok(None);
        }
        Ok(self.uploads.remove(&key).map(|u| u.body))
    }

    /// Drops uploads nobody continued within the lifetime.
    pub fn expire(&mut self, now: Instant) {
        self.uploads.retain(|_, u| u.expires > now);
        let uploads = &self.uploads;
        self.started.retain(|k| uploads.contains_key(k));
    }

    fn make_room(&mut self, now: Instant) {
        if self.uploads.len() < self.max_uploads {
            return;
        }
        self.expire(now);
        while self.uploads.len() >= self.max_uploads {
            let Some(oldest) = self.started.pop_front() else {
                break;
            };
            self.uploads.remove(&oldest);
        }
    }

    pub fn len(&self) -> usize {
        self.uploads.len()
    }

    pub fn is_empty(&self) -> bool {
        self.uploads.is_empty()
    }
}

/// A body sent block-wise, kept so that the client's follow-up GETs for blocks 1, 2, …
/// see the same representation even if a newer message arrives meanwhile.
#[derive(Debug, Clone)]
pub struct Representation {
    pub body: Vec<u8>,
    pub content_format: Option<u16>,
    pub etag: Vec<u8>,
    expires: Instant,
}

/// Representations keyed by peer and Uri-Path, bounded in number and age.
#[derive(Debug)]
pub struct Representations {
    entries: HashMap<(SocketAddr, String), Representation>,
    order: VecDeque<(SocketAddr, String)>,
    max: usize,
    lifetime: Duration,
}

impl Representations {
    pub fn new(max: usize, lifetime: Duration) -> Self {
        Self {
            entries: HashMap::new(),
            order: VecDeque::new(),
            max,
            lifetime,
        }
    }

    pub fn store(
        &mut self,
        key: (SocketAddr, String),
        body: Vec<u8>,
        content_format: Option<u16>,
        etag: Vec<u8>,
        now: Instant,
    ) {
        if !self.entries.contains_key(&key) {
            while self.entries.len() >= self.max {
                let Some(oldest) = self.order.pop_front() else {
                    break;
                };
                self.entries.remove(&oldest);
            }
            self.order.push_back(key.clone());
        }
        let expires = now + self.lifetime;
        self.entries.insert(
            key,
            Representation {
                body,
                content_format,
                etag,
                expires,
            },
        );
    }

    pub fn get(&self, key: &(SocketAddr, String), now: Instant) -> Option<&Representation> {
        self.entries.get(key).filter(|r| r.expires > now)
    }

    pub fn expire(&mut self, now: Instant) {
        self.entries.retain(|_, r| r.expires > now);
        let entries = &self.entries;
        self.order.retain(|k| entries.contains_key(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_codec() {
        for (block, bytes) in [
            (
                Block {
                    num: 0,
                    more: false,
                    szx: 0,
                },
                vec![],
            ),
            (
                Block {
                    num: 0,
                    more: true,
                    szx: 6,
                },
                vec![0x0e],
            ),
            (
                Block {
                    num: 1,
                    more: true,
                    szx: 2,
                },
                vec![0x1a],
            ),
            (
                Block {
                    num: 20,
                    more: false,
                    szx: 6,
                },
                vec![0x01, 0x46],
            ),
            (
                Block {
                    num: 0xfffff,
                    more: true,
                    szx: 1,
                },
                vec![0xff, 0xff, 0xf9],
            ),
        ] {
            assert_eq!(block.encode(), bytes, "{block:?}");
            assert_eq!(Block::decode(&bytes), Some(block));
        }
        assert_eq!(Block::decode(&[0x07]), None, "szx 7 is reserved");
        assert_eq!(Block::decode(&[1, 2, 3, 4]), None);
        assert_eq!(szx_for(1024), 6);
        assert_eq!(szx_for(64), 2);
        assert_eq!(szx_for(100), 2);
        assert_eq!(szx_for(5000), 6);
    }

    #[test]
    fn slicing() {
        let body: Vec<u8> = (0..=99).collect();
        assert_eq!(slice(&body, 0, 1), Some((&body[0..32], true)));
        assert_eq!(slice(&body, 3, 1), Some((&body[96..100], false)));
        assert_eq!(slice(&body, 4, 1), None);
        assert_eq!(slice(&[], 0, 1), Some((&[][..], false)));
    }

    fn peer() -> SocketAddr {
        "127.0.0.1:5000".parse().unwrap()
    }

    fn key(tag: &[u8]) -> UploadKey {
        (peer(), "ps/a".into(), tag.to_vec())
    }

    fn b(num: u32, more: bool) -> Block {
        Block { num, more, szx: 0 }
    }

    #[test]
    fn reassembles_in_order() {
        let now = Instant::now();
        let mut up = Uploads::new(4, 100, Duration::from_secs(60));
        assert_eq!(up.add(key(b"t"), b(0, true), &[1; 16], now), Ok(None));
        assert_eq!(up.add(key(b"t"), b(1, true), &[2; 16], now), Ok(None));
        let body = up
            .add(key(b"t"), b(2, false), &[3; 5], now)
            .unwrap()
            .unwrap();
        assert_eq!(body.len(), 37);
        assert_eq!(&body[30..], &[2, 2, 3, 3, 3, 3, 3]);
        assert!(up.is_empty());
    }

    #[test]
    fn request_tags_keep_uploads_apart() {
        let now = Instant::now();
        let mut up = Uploads::new(4, 100, Duration::from_secs(60));
        up.add(key(b"x"), b(0, true), &[1; 16], now).unwrap();
        up.add(key(b"y"), b(0, true), &[2; 16], now).unwrap();
        let x = up.add(key(b"x"), b(1, false), &[1], now).unwrap().unwrap();
        let y = up.add(key(b"y"), b(1, false), &[2], now).unwrap().unwrap();
        assert_eq!((x[0], x[16], y[0], y[16]), (1, 1, 2, 2));
    }

    #[test]
    fn errors_and_bounds() {
        let now = Instant::now();
        let mut up = Uploads::new(2, 40, Duration::from_secs(60));
        assert_eq!(
            up.add(key(b"a"), b(1, true), &[0; 16], now),
            Err(UploadError::Incomplete)
        );
        up.add(key(b"a"), b(0, true), &[0; 16], now).unwrap();
        assert_eq!(
            up.add(key(b"a"), b(2, true), &[0; 16], now),
            Err(UploadError::Incomplete)
        );
        assert_eq!(
            up.add(key(b"a"), b(0, true), &[0; 15], now),
            Err(UploadError::BadBlockSize)
        );
        up.add(key(b"a"), b(0, true), &[0; 16], now).unwrap();
        up.add(key(b"a"), b(1, true), &[0; 16], now).unwrap();
        assert_eq!(
            up.add(key(b"a"), b(2, true), &[0; 16], now),
            Err(UploadError::TooLarge)
        );
        // At most two at once: a third start evicts the oldest.
        for tag in [b"1", b"2", b"3"] {
            up.add(key(tag), b(0, true), &[0; 16], now).unwrap();
        }
        assert_eq!(up.len(), 2);
        assert_eq!(
            up.add(key(b"1"), b(1, false), &[0], now),
            Err(UploadError::Incomplete)
        );
        // Uploads expire.
        up.expire(now + Duration::from_secs(61));
        assert!(up.is_empty());
    }

    #[test]
    fn representations_are_bounded() {
        let now = Instant::now();
        let mut reps = Representations::new(2, Duration::from_secs(10));
        for i in 0..3u8 {
            reps.store((peer(), format!("p{i}")), vec![i], None, vec![], now);
        }
        assert!(reps.get(&(peer(), "p0".into()), now).is_none());
        assert_eq!(reps.get(&(peer(), "p2".into()), now).unwrap().body, [2]);
        assert!(
            reps.get(&(peer(), "p2".into()), now + Duration::from_secs(11))
                .is_none()
        );
    }
}
