//! WAL segment files: `{first_seq:020}.wal` in the WAL directory, each a
//! sequence of frames `[u32 len][u32 crc32][u64 seq][payload]` (little
//! endian; the CRC covers seq and payload). A torn or corrupt frame ends a
//! segment: everything before it is intact, nothing after it was ever
//! acknowledged (acknowledgement waits for fsync, and frames are written in
//! order).

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

pub const HEADER_BYTES: usize = 16;
/// No single record is larger than this (a request is at most tens of MiB).
pub const MAX_PAYLOAD_BYTES: usize = 256 << 20;

pub fn frame(seq: u64, payload: &[u8], out: &mut Vec<u8>) {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&seq.to_le_bytes());
    crc.update(payload);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(payload);
}

/// A frame's seq and payload.
pub type Frame = (u64, Vec<u8>);

/// The intact frames of a segment and the byte length they span.
pub fn read_segment(path: &Path) -> io::Result<(Vec<Frame>, u64)> {
    let mut data = Vec::new();
    File::open(path)?.read_to_end(&mut data)?;
    let mut frames = Vec::new();
    let mut at = 0usize;
    while let Some(header) = data.get(at..at + HEADER_BYTES) {
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let mut seq_bytes = [0u8; 8];
        seq_bytes.copy_from_slice(&header[8..16]);
        if len > MAX_PAYLOAD_BYTES {
            break;
        }
        let Some(payload) = data.get(at + HEADER_BYTES..at + HEADER_BYTES + len) else { break };
        let mut h = crc32fast::Hasher::new();
        h.update(&seq_bytes);
        h.update(payload);
        if h.finalize() != crc {
            break;
        }
        frames.push((u64::from_le_bytes(seq_bytes), payload.to_vec()));
        at += HEADER_BYTES + len;
    }
    Ok((frames, at as u64))
}

pub fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}.wal"))
}

/// Segment files in the directory, oldest first.
pub fn list_segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let first = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".wal")).and_then(|n| n.parse::<u64>().ok());
        if let Some(first) = first {
            out.push((first, path));
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn torn_tail_and_corruption_end_the_segment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = segment_path(dir.path(), 1);
        let mut buf = Vec::new();
        frame(1, b"one", &mut buf);
        frame(2, b"two", &mut buf);
        let intact = buf.len();
        frame(3, b"three", &mut buf);
        buf.truncate(buf.len() - 2); // torn write
        File::create(&path).and_then(|mut f| f.write_all(&buf)).expect("write");
        let (frames, len) = read_segment(&path).expect("read");
        assert_eq!(frames, vec![(1, b"one".to_vec()), (2, b"two".to_vec())]);
        assert_eq!(len, intact as u64);

        let mut bad = Vec::new();
        frame(1, b"one", &mut bad);
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        File::create(&path).and_then(|mut f| f.write_all(&bad)).expect("write");
        assert!(read_segment(&path).expect("read").0.is_empty());
        assert_eq!(list_segments(dir.path()).expect("list"), vec![(1, path)]);
    }
}
