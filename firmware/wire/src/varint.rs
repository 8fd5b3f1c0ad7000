//! The Variable Byte Integer of MQTT (7 bits per byte, at most 4 bytes).

use crate::DecodeError;

/// The largest value a Variable Byte Integer can hold (268,435,455).
pub const MAX_VARINT: u32 = 268_435_455;

/// How many bytes `value` takes as a Variable Byte Integer (`value` ≤ [`MAX_VARINT`]).
pub const fn varint_len(value: u32) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Decodes a Variable Byte Integer at the start of `buf`.
///
/// `Ok(None)` means `buf` ends before the integer does. An integer longer than four bytes,
/// or one not in its shortest form (a trailing zero byte), is malformed [MQTT-1.5.5-1].
pub(crate) fn decode_varint(buf: &[u8]) -> Result<Option<(u32, usize)>, DecodeError> {
    let mut value = 0u32;
    for (i, &byte) in buf.iter().take(4).enumerate() {
        value |= u32::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if byte == 0 && i > 0 {
                return Err(DecodeError::MalformedVarInt);
            }
            return Ok(Some((value, i + 1)));
        }
    }
    if buf.len() >= 4 {
        Err(DecodeError::MalformedVarInt)
    } else {
        Ok(None)
    }
}

/// Writes `value` (≤ [`MAX_VARINT`]) into `out`, returning the bytes used.
pub(crate) fn encode_varint(mut value: u32, out: &mut [u8; 4]) -> usize {
    let mut i = 0;
    loop {
        let mut byte = (value & 0x7f) as u8;
        value >>= 7;
        if value > 0 {
            byte |= 0x80;
        }
        out[i] = byte;
        i += 1;
        if value == 0 || i == 4 {
            return i;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_from_the_specification() {
        // Table 1.1 of MQTT 3.1.1 / 5.0: the edges of each encoded length.
        let cases: [(u32, &[u8]); 8] = [
            (0, &[0x00]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (16_383, &[0xff, 0x7f]),
            (16_384, &[0x80, 0x80, 0x01]),
            (2_097_151, &[0xff, 0xff, 0x7f]),
            (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
            (268_435_455, &[0xff, 0xff, 0xff, 0x7f]),
        ];
        for (value, bytes) in cases {
            let mut out = [0; 4];
            let n = encode_varint(value, &mut out);
            assert_eq!(&out[..n], bytes, "encode {value}");
            assert_eq!(varint_len(value), n);
            assert_eq!(decode_varint(bytes), Ok(Some((value, n))), "decode {value}");
        }
    }

    #[test]
    fn five_bytes_and_overlong_forms_are_malformed() {
        assert_eq!(
            decode_varint(&[0xff, 0xff, 0xff, 0xff, 0x01]),
            Err(DecodeError::MalformedVarInt)
        );
        assert_eq!(
            decode_varint(&[0x80, 0x80, 0x80, 0x80]),
            Err(DecodeError::MalformedVarInt)
        );
        assert_eq!(
            decode_varint(&[0x80, 0x00]),
            Err(DecodeError::MalformedVarInt)
        );
    }

    #[test]
    fn short_input_is_incomplete() {
        assert_eq!(decode_varint(&[]), Ok(None));
        assert_eq!(decode_varint(&[0x80]), Ok(None));
        assert_eq!(decode_varint(&[0xff, 0xff, 0xff]), Ok(None));
    }
}
