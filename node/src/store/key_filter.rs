//! A Bloom filter in front of a sled tree: "this key is certainly not
//! there" without a read. Most lookups on the hot path ask about keys that
//! do not exist (a new trace has no binding yet; almost no session was
//! merged away), and a sled read costs microseconds.
//!
//! No false negatives: a key is added before it is written to the tree
//! ([`KeyFilter::insert_then`]), and a rebuild ([`KeyFilter::rebuild`])
//! waits for writes under way, then adds every key written while it scans
//! to both the filter in use and the one being built. Removed keys stay
//! until the next rebuild (a false positive costs only the read).
//!
//! A filter that fills up grows by a layer twice the size of the last
//! (no scan needed); a rebuild folds the layers into one sized for the tree.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

/// Bits per expected key (about 0.6% false positives with [`PROBES`]).
const BITS_PER_KEY: usize = 12;
const PROBES: u64 = 4;
const MIN_BITS: usize = 1 << 16;
/// One layer's bits, at most (16 MiB).
const MAX_BITS: usize = 1 << 27;
/// All layers' bits, at most (64 MiB): past about 40M keys the filter
/// fills and reads come back.
const MAX_TOTAL_BITS: usize = 1 << 29;

#[derive(Debug)]
struct Bloom {
    words: Box<[AtomicU64]>,
    /// Bits - 1 (bits is a power of two).
    mask: u64,
}

impl Bloom {
    fn for_keys(keys: usize) -> Self {
        let bits = keys.saturating_mul(BITS_PER_KEY).clamp(MIN_BITS, MAX_BITS).next_power_of_two();
        Self { words: (0..bits / 64).map(|_| AtomicU64::new(0)).collect(), mask: bits as u64 - 1 }
    }

    fn positions(&self, key: &[u8]) -> impl Iterator<Item = u64> + '_ {
        let (a, b) = hashes(key);
        (0..PROBES).map(move |i| a.wrapping_add(i.wrapping_mul(b)) & self.mask)
    }

    fn insert(&self, key: &[u8]) {
        for bit in self.positions(key) {
            self.words[(bit / 64) as usize].fetch_or(1 << (bit % 64), Ordering::Relaxed);
        }
    }

    fn may_contain(&self, key: &[u8]) -> bool {
        self.positions(key).all(|bit| self.words[(bit / 64) as usize].load(Ordering::Relaxed) & (1 << (bit % 64)) != 0)
    }

    fn bytes(&self) -> usize {
        self.words.len() * 8
    }

    /// Keys that fit at [`BITS_PER_KEY`].
    fn capacity(&self) -> usize {
        self.words.len() * 64 / BITS_PER_KEY
    }
}

/// Blooms of growing size; keys go to the last.
#[derive(Debug)]
struct Layers {
    blooms: RwLock<Vec<Bloom>>,
    in_last: AtomicUsize,
}

impl Layers {
    fn for_keys(keys: usize) -> Self {
        Self { blooms: RwLock::new(vec![Bloom::for_keys(keys)]), in_last: AtomicUsize::new(0) }
    }

    fn insert(&self, key: &[u8]) {
        let blooms = self.blooms.read();
        let Some(last) = blooms.last() else { return };
        last.insert(key);
        if self.in_last.fetch_add(1, Ordering::Relaxed) + 1 < last.capacity() {
            return;
        }
        let bits = last.words.len() * 64;
        let total: usize = blooms.iter().map(|b| b.words.len() * 64).sum();
        drop(blooms);
        if total + bits * 2 <= MAX_TOTAL_BITS {
            let mut blooms = self.blooms.write();
            // Unless another insert grew it meanwhile.
            if blooms.last().is_some_and(|b| b.words.len() * 64 == bits) {
                blooms.push(Bloom::for_keys((bits * 2).min(MAX_BITS) / BITS_PER_KEY));
                self.in_last.store(0, Ordering::Relaxed);
            }
        }
    }

    fn may_contain(&self, key: &[u8]) -> bool {
        self.blooms.read().iter().any(|b| b.may_contain(key))
    }

    fn bytes(&self) -> usize {
        self.blooms.read().iter().map(Bloom::bytes).sum()
    }

    /// Whether one layer holds `keys` keys (or the first is as large as
    /// a layer gets).
    fn fits(&self, keys: usize) -> bool {
        let blooms = self.blooms.read();
        blooms.len() == 1 && (keys <= blooms[0].capacity() || blooms[0].words.len() * 64 >= MAX_BITS)
    }
}

/// Two independent 64-bit hashes of `key` (FNV-1a, then two splitmix64
/// finalizers); the second is odd so the probes cover the table.
fn hashes(key: &[u8]) -> (u64, u64) {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mix = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    (mix(h), mix(h ^ 0x9E37_79B9_7F4A_7C15) | 1)
}

#[derive(Debug)]
pub struct KeyFilter {
    current: RwLock<Arc<Layers>>,
    /// The filter a rebuild is filling, while it runs.
    building: RwLock<Option<Arc<Layers>>>,
    /// Keys in the tree as of the last rebuild, plus those added since.
    keys: AtomicUsize,
}

impl KeyFilter {
    /// A filter holding `keys` (the tree's keys; the filter is in use only
    /// once they are all in).
    pub fn build<E, I: Iterator<Item = Result<sled::IVec, E>>>(scan: impl Fn() -> I) -> Result<Self, E> {
        let filter = Self { current: RwLock::new(Arc::new(Layers::for_keys(0))), building: RwLock::new(None), keys: AtomicUsize::new(0) };
        filter.rebuild(scan)?;
        Ok(filter)
    }

    /// Adds `key`, then runs `write` (which writes it to the tree) before
    /// a rebuild can start its scan.
    pub fn insert_then<T>(&self, key: &[u8], write: impl FnOnce() -> T) -> T {
        let building = self.building.read();
        self.current.read().insert(key);
        if let Some(next) = building.as_ref() {
            next.insert(key);
        }
        self.keys.fetch_add(1, Ordering::Relaxed);
        write()
    }

    /// False only when `key` is certainly not in the tree.
    pub fn may_contain(&self, key: &[u8]) -> bool {
        self.current.read().may_contain(key)
    }

    /// Replaces the filter with one built from the keys `scan` yields (a
    /// scan of the tree), sized for them (scanning again when there were
    /// more than expected); keys inserted meanwhile go to both. On a scan
    /// error the old filter stays.
    pub fn rebuild<E, I: Iterator<Item = Result<sled::IVec, E>>>(&self, scan: impl Fn() -> I) -> Result<(), E> {
        let mut expected = self.keys.load(Ordering::Relaxed).saturating_mul(2);
        let (next, count) = loop {
            let next = Arc::new(Layers::for_keys(expected));
            // Taken once the writes under way are done: they are in the tree
            // before the scan starts, and later ones are added to `next`.
            *self.building.write() = Some(next.clone());
            let mut count = 0;
            for key in scan() {
                match key {
                    Ok(key) => next.insert(&key),
                    Err(e) => {
                        *self.building.write() = None;
                        return Err(e);
                    }
                }
                count += 1;
            }
            if next.fits(count) {
                break (next, count);
            }
            expected = count.saturating_mul(2);
        };
        let mut current = self.current.write();
        *current = next;
        *self.building.write() = None;
        self.keys.store(count, Ordering::Relaxed);
        Ok(())
    }

    /// Memory held, in bytes.
    pub fn bytes(&self) -> usize {
        self.current.read().bytes() + self.building.read().as_ref().map_or(0, |b| b.bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(range: std::ops::Range<u32>) -> impl Fn() -> std::vec::IntoIter<Result<sled::IVec, ()>> {
        move || range.clone().map(|i| Ok(sled::IVec::from(&i.to_be_bytes()))).collect::<Vec<_>>().into_iter()
    }

    #[test]
    fn every_key_added_is_found_and_few_others_are() {
        let filter = KeyFilter::build(keys(0..10_000)).expect("build");
        for i in 10_000u32..20_000 {
            filter.insert_then(&i.to_be_bytes(), || ());
        }
        assert!((0u32..20_000).all(|i| filter.may_contain(&i.to_be_bytes())), "no false negatives");
        let false_positives = (1_000_000u32..1_100_000).filter(|i| filter.may_contain(&i.to_be_bytes())).count();
        // 20K keys in a filter built for 10K (sized up to a power of two)
        // grows its error; still small.
        assert!(false_positives < 3_000, "{false_positives} of 100000");
    }

    #[test]
    fn a_rebuild_sizes_for_the_tree_and_keeps_keys_added_while_it_scans() {
        let filter = KeyFilter::build(keys(0..100)).expect("build");
        let small = filter.bytes();
        for i in 100u32..50_000 {
            filter.insert_then(&i.to_be_bytes(), || ());
        }
        // A scan that sees only part of the tree, with a key written midway.
        let scan = || {
            keys(0..40_000)().inspect(|k| {
                if k.as_ref().is_ok_and(|k| k.as_ref() == 20_000u32.to_be_bytes()) {
                    filter.insert_then(&77_777_777u32.to_be_bytes(), || ());
                }
            })
        };
        filter.rebuild(scan).expect("rebuild");
        assert!(filter.bytes() > small);
        assert!(filter.may_contain(&77_777_777u32.to_be_bytes()), "written during the scan");
        assert!((0u32..40_000).all(|i| filter.may_contain(&i.to_be_bytes())));
        let gone = (40_000u32..50_000).filter(|i| filter.may_contain(&i.to_be_bytes())).count();
        assert!(gone < 500, "keys no longer in the tree mostly leave: {gone}");
    }

    #[test]
    fn a_filter_that_fills_grows_instead_of_answering_maybe_to_everything() {
        let filter = KeyFilter::build(keys(0..0)).expect("build");
        let small = filter.bytes();
        for i in 0u32..300_000 {
            filter.insert_then(&i.to_be_bytes(), || ());
        }
        assert!(filter.bytes() > 8 * small, "grew from {small} to {}", filter.bytes());
        assert!((0u32..300_000).all(|i| filter.may_contain(&i.to_be_bytes())));
        // Each full layer adds its error (about 0.6%) until a rebuild folds them.
        let false_positives = (1_000_000u32..1_100_000).filter(|i| filter.may_contain(&i.to_be_bytes())).count();
        assert!(false_positives < 5_000, "{false_positives} of 100000");
    }

    #[test]
    fn a_failed_scan_keeps_the_filter_in_use() {
        let filter = KeyFilter::build(keys(0..10)).expect("build");
        let failing = || keys(10..20)().chain(std::iter::once(Err(())));
        assert!(filter.rebuild(failing).is_err());
        assert!((0u32..10).all(|i| filter.may_contain(&i.to_be_bytes())));
    }
}
