//! Records in files: each framed as `[body length u32][CRC-32 of body u32][body]`, so a
//! reader can tell where a write was cut short by a power cut (a torn tail) from a file
//! damaged in the middle.

use bytes::{BufMut, Bytes, BytesMut};

use super::record::Record;

const HEADER: usize = 8;

/// How far past a bad frame the reader looks for a good one, to tell a torn tail (nothing
/// valid follows) from damage in the middle (valid records follow).
const RESYNC_WINDOW: usize = 64 * 1024;

/// Appends `record`, framed, to `out`.
pub fn put(out: &mut BytesMut, record: &Record) {
    let start = out.len();
    out.put_bytes(0, HEADER);
    record.encode(out);
    let body = &out[start + HEADER..];
    let len = body.len() as u32;
    let crc = crc32fast::hash(body);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + HEADER].copy_from_slice(&crc.to_le_bytes());
}

/// How the records of a file ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// At the end of the file (or of the zeros after the last record).
    Clean,
    /// A write cut short at `offset`: nothing valid follows it.
    Torn { offset: usize },
    /// A bad frame at `offset` with valid records after it: the file is damaged.
    Corrupt { offset: usize, reason: String },
}

/// The records of a file's contents, up to the first bad frame, and how they ended.
pub fn read_all(data: &Bytes) -> (Vec<Record>, Ending) {
    let mut records = Vec::new();
    let mut pos = 0;
    loop {
        let rest = &data[pos..];
        if rest.iter().all(|&b| b == 0) {
            return (records, Ending::Clean);
        }
        match frame_at(data, pos) {
            Ok((record, next)) => {
                records.push(record);
                pos = next;
            }
            Err(reason) => {
                let resyncs = (pos + 1..data.len().min(pos + RESYNC_WINDOW))
                    .any(|at| frame_at(data, at).is_ok());
                let ending = if resyncs {
                    Ending::Corrupt {
                        offset: pos,
                        reason,
                    }
                } else {
                    Ending::Torn { offset: pos }
                };
                return (records, ending);
            }
        }
    }
}

/// The record framed at `pos`, and where the next frame starts.
fn frame_at(data: &Bytes, pos: usize) -> Result<(Record, usize), String> {
    let header = data
        .get(pos..pos + HEADER)
        .ok_or("file ends inside a record header")?;
    let len = u32::from_le_bytes(header[..4].try_into().unwrap_or_default()) as usize;
    let crc = u32::from_le_bytes(header[4..].try_into().unwrap_or_default());
    if len == 0 {
        return Err("zero-length record".into());
    }
    let end = (pos + HEADER)
        .checked_add(len)
        .filter(|&end| end <= data.len())
        .ok_or("file ends inside a record")?;
    let body = data.slice(pos + HEADER..end);
    if crc32fast::hash(&body) != crc {
        return Err("checksum mismatch".into());
    }
    let record = Record::decode(&body).map_err(|e| e.to_string())?;
    Ok((record, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(records: &[Record]) -> BytesMut {
        let mut out = BytesMut::new();
        for r in records {
            put(&mut out, r);
        }
        out
    }

    fn three() -> Vec<Record> {
        vec![Record::Done(1), Record::Pin(2), Record::Done(3)]
    }

    #[test]
    fn reads_back_what_was_written_and_ignores_trailing_zeros() {
        let mut data = file(&three());
        assert_eq!(read_all(&data.clone().freeze()), (three(), Ending::Clean));
        data.put_bytes(0, 4096);
        assert_eq!(read_all(&data.freeze()), (three(), Ending::Clean));
    }

    #[test]
    fn every_cut_of_the_last_record_is_a_torn_tail() {
        let data = file(&three()).freeze();
        let whole_two = file(&three()[..2]).len();
        for cut in whole_two + 1..data.len() {
            let (records, ending) = read_all(&data.slice(..cut));
            assert_eq!(records, &three()[..2]);
            assert_eq!(ending, Ending::Torn { offset: whole_two }, "cut at {cut}");
        }
    }

    #[test]
    fn damage_in_the_middle_is_corruption_and_keeps_what_came_before() {
        let mut data = file(&three());
        let first = file(&three()[..1]).len();
        data[first + HEADER + 2] ^= 0x40; // a bit flip in the second record's body
        let (records, ending) = read_all(&data.freeze());
        assert_eq!(records, &three()[..1]);
        assert!(
            matches!(ending, Ending::Corrupt { offset, .. } if offset == first),
            "{ending:?}"
        );
    }
}
