//! Where encoded bytes go.
//!
//! Every packet body is written by one function generic over [`Sink`]. Running it over a
//! [`Counter`] gives the exact size (and finds encoding errors) before anything is written,
//! so sizes are never computed by a second, hand-kept copy of the layout.

use crate::EncodeError;
use crate::varint::{MAX_VARINT, encode_varint};

pub(crate) trait Sink {
    fn put(&mut self, bytes: &[u8]);

    /// Records a value that cannot be encoded. Only the counting pass acts on it; the
    /// writing pass runs after counting succeeded and can never reach it.
    fn fail(&mut self, error: EncodeError);

    fn put_u8(&mut self, b: u8) {
        self.put(&[b]);
    }

    fn put_u16(&mut self, v: u16) {
        self.put(&v.to_be_bytes());
    }

    fn put_u32(&mut self, v: u32) {
        self.put(&v.to_be_bytes());
    }

    fn put_varint(&mut self, v: u32) {
        if v > MAX_VARINT {
            return self.fail(EncodeError::ValueOutOfRange);
        }
        let mut tmp = [0; 4];
        let n = encode_varint(v, &mut tmp);
        self.put(&tmp[..n]);
    }

    fn put_packet_id(&mut self, id: u16) {
        if id == 0 {
            self.fail(EncodeError::ZeroPacketId);
        }
        self.put_u16(id);
    }

    /// Binary Data, or the bytes of a UTF-8 string, behind a two-byte length.
    fn put_binary(&mut self, bytes: &[u8]) {
        match u16::try_from(bytes.len()) {
            Ok(len) => {
                self.put_u16(len);
                self.put(bytes);
            }
            Err(_) => self.fail(EncodeError::FieldTooLong),
        }
    }

    fn put_str(&mut self, s: &str) {
        self.put_binary(s.as_bytes());
    }
}

/// Counts bytes instead of writing them, remembering the first error.
#[derive(Debug, Default)]
pub(crate) struct Counter {
    len: usize,
    error: Option<EncodeError>,
}

impl Counter {
    pub(crate) fn finish(self) -> Result<usize, EncodeError> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.len),
        }
    }
}

impl Sink for Counter {
    fn put(&mut self, bytes: &[u8]) {
        self.len += bytes.len();
    }

    fn fail(&mut self, error: EncodeError) {
        self.error.get_or_insert(error);
    }
}

/// Writes into a slice that the counting pass has proved large enough.
#[derive(Debug)]
pub(crate) struct SliceWriter<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl<'b> SliceWriter<'b> {
    pub(crate) fn new(buf: &'b mut [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }
}

impl Sink for SliceWriter<'_> {
    fn put(&mut self, bytes: &[u8]) {
        // The counting pass sized the buffer, so this cannot run out; a mismatch would be a
        // codec bug, and truncating keeps it from turning into a panic on a device.
        let end = (self.pos + bytes.len()).min(self.buf.len());
        let n = end - self.pos;
        self.buf[self.pos..end].copy_from_slice(&bytes[..n]);
        self.pos = end;
    }

    fn fail(&mut self, _error: EncodeError) {}
}

#[cfg(feature = "bytes")]
impl Sink for bytes::BytesMut {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }

    fn fail(&mut self, _error: EncodeError) {}
}
