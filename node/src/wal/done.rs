//! Which WAL entries are settled ("done"): written with the archived copy
//! (or the owner's acknowledgement) and durable in sled before the WAL lets
//! go of them, so a replay skips them.
//!
//! One sled record per settle call, not per entry: keyed by the call's
//! highest seq, its value the call's seqs (8 bytes each, big-endian); a
//! call repeated with other seqs under the same key adds to the record.
//! Records written before this format (one per seq, empty value) read as
//! the seq of their key. In memory the settled seqs are a bitmap from the
//! oldest WAL file's first seq on: one bit per record the log still holds.

use std::collections::VecDeque;

/// Most words the bitmap grows to (2^30 seqs, 128 MiB): a seq further
/// from the oldest file than that is not a seq this log wrote (a damaged
/// record), and is ignored rather than allowed to take the memory.
const WORDS_MAX: usize = 1 << 24;

/// Settled seqs at or above `base`, one bit each.
#[derive(Debug, Default)]
pub struct DoneSeqs {
    base: u64,
    words: VecDeque<u64>,
}

impl DoneSeqs {
    pub fn new(base: u64) -> Self {
        Self { base: base - base % 64, words: VecDeque::new() }
    }

    /// Marks `seq` settled; seqs below the base (in files already deleted) are ignored.
    pub fn insert(&mut self, seq: u64) {
        let Some(offset) = seq.checked_sub(self.base) else { return };
        let word = (offset / 64) as usize;
        if word >= WORDS_MAX {
            return;
        }
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        self.words[word] |= 1 << (offset % 64);
    }

    pub fn contains(&self, seq: u64) -> bool {
        let Some(offset) = seq.checked_sub(self.base) else { return false };
        self.words.get((offset / 64) as usize).is_some_and(|w| w & (1 << (offset % 64)) != 0)
    }

    /// Forgets seqs below `oldest` (their files are gone).
    pub fn forget_below(&mut self, oldest: u64) {
        while self.base + 64 <= oldest {
            if self.words.pop_front().is_none() {
                self.base = oldest - oldest % 64;
                return;
            }
            self.base += 64;
        }
    }
}

/// A settle record's value: the seqs, 8 bytes each.
pub fn encode(seqs: impl IntoIterator<Item = u64>) -> Vec<u8> {
    seqs.into_iter().flat_map(u64::to_be_bytes).collect()
}

/// The seqs of a settle record (`key` alone for a record of the old format).
pub fn decode(key: &[u8], value: &[u8]) -> Vec<u64> {
    if value.is_empty() {
        return key.try_into().map(u64::from_be_bytes).into_iter().collect();
    }
    value.chunks_exact(8).filter_map(|c| c.try_into().ok().map(u64::from_be_bytes)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seqs_are_kept_from_the_base_on_and_forgotten_below_the_oldest_file() {
        let mut done = DoneSeqs::new(128);
        for seq in [100, 128, 191, 192, 1_000] {
            done.insert(seq);
        }
        assert!(!done.contains(100), "below the base: in a deleted file");
        assert!(done.contains(128) && done.contains(191) && done.contains(192) && done.contains(1_000));
        assert!(!done.contains(129) && !done.contains(999) && !done.contains(5_000));
        done.forget_below(260);
        assert!(!done.contains(192));
        assert!(done.contains(1_000));
        done.forget_below(10_000);
        assert!(!done.contains(1_000));
        done.insert(10_001);
        assert!(done.contains(10_001));
    }

    #[test]
    fn records_round_trip_and_old_ones_read_as_their_key() {
        assert_eq!(decode(&9u64.to_be_bytes(), &encode([3, 9, 7])), vec![3, 9, 7]);
        assert_eq!(decode(&42u64.to_be_bytes(), &[]), vec![42]);
    }
}
