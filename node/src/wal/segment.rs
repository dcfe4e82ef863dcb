//! WAL segment files: `{first_seq:020}.wal` in the WAL directory, each a
//! sequence of frames `[u32 len][u32 crc32][u64 seq][payload]` (little
//! endian; the CRC covers seq and payload). A torn or corrupt frame ends a
//! segment: everything before it is intact, nothing after it was ever
//! acknowledged (acknowledgement waits for fsync, and frames are written in
//! order).

use std::fs::File;
use std::io::{self, BufReader, Read};
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
#[cfg(test)]
pub type Frame = (u64, Vec<u8>);

/// The intact frames of a segment and the byte length they span.
#[cfg(test)]
pub fn read_segment(path: &Path) -> io::Result<(Vec<Frame>, u64)> {
    let mut reader = FrameReader::open(path)?;
    let mut frames = Vec::new();
    while let Some((seq, payload)) = reader.next_frame()? {
        frames.push((seq, payload.to_vec()));
    }
    Ok((frames, reader.valid_len()))
}

/// Reads a segment's intact frames one at a time into one reused buffer,
/// so reading a WAL holds one frame in memory, never a whole file (replay
/// and session rebuilds read WALs of hundreds of MB).
#[derive(Debug)]
pub struct FrameReader {
    file: BufReader<File>,
    /// The file's length when opened: a header that claims more than is
    /// left ends the segment before anything is allocated for it.
    file_len: u64,
    /// Bytes of intact frames read so far.
    at: u64,
    payload: Vec<u8>,
    ended: bool,
}

impl FrameReader {
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = File::open(path)?;
        let file_len = file.metadata()?.len();
        Ok(Self { file: BufReader::with_capacity(1 << 16, file), file_len, at: 0, payload: Vec::new(), ended: false })
    }

    /// The next intact frame, or `None` at the end of the segment (a torn
    /// or corrupt frame ends it).
    pub fn next_frame(&mut self) -> io::Result<Option<(u64, &[u8])>> {
        if self.ended {
            return Ok(None);
        }
        let mut header = [0u8; HEADER_BYTES];
        if !self.fill(&mut header)? {
            return Ok(self.end());
        }
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let mut seq_bytes = [0u8; 8];
        seq_bytes.copy_from_slice(&header[8..16]);
        let left = self.file_len.saturating_sub(self.at + HEADER_BYTES as u64);
        if len > MAX_PAYLOAD_BYTES || len as u64 > left {
            return Ok(self.end());
        }
        self.payload.resize(len, 0);
        let mut payload = std::mem::take(&mut self.payload);
        let complete = self.fill(&mut payload)?;
        self.payload = payload;
        if !complete {
            return Ok(self.end());
        }
        let mut h = crc32fast::Hasher::new();
        h.update(&seq_bytes);
        h.update(&self.payload);
        if h.finalize() != crc {
            return Ok(self.end());
        }
        self.at += (HEADER_BYTES + len) as u64;
        Ok(Some((u64::from_le_bytes(seq_bytes), &self.payload)))
    }

    /// Byte length of the intact frames read so far (the whole intact
    /// prefix once `next_frame` returned `None`).
    pub fn valid_len(&self) -> u64 {
        self.at
    }

    fn end(&mut self) -> Option<(u64, &[u8])> {
        self.ended = true;
        self.payload = Vec::new();
        None
    }

    /// Fills `buf` entirely; false when the file ends first.
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        match self.file.read_exact(buf) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
            Err(e) => Err(e),
        }
    }
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
