//! Serde for maps whose keys are not strings (tuples, newtypes): a list of
//! `[key, value]` pairs, so that JSON (which only has string keys) can hold
//! them. Use with `#[serde(with = "super::map_pairs")]` on a `BTreeMap`.

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub(crate) fn serialize<K, V, S>(map: &BTreeMap<K, V>, serializer: S) -> Result<S::Ok, S::Error>
where
    K: Serialize,
    V: Serialize,
    S: Serializer,
{
    serializer.collect_seq(map.iter())
}

/// Refuses a key listed twice: a serialized map never has one, so it means
/// the data is corrupt, and keeping either value would hide that.
pub(crate) fn deserialize<'de, K, V, D>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
where
    K: Deserialize<'de> + Ord,
    V: Deserialize<'de>,
    D: Deserializer<'de>,
{
    let pairs = Vec::<(K, V)>::deserialize(deserializer)?;
    let count = pairs.len();
    let map: BTreeMap<K, V> = pairs.into_iter().collect();
    if map.len() != count {
        return Err(D::Error::custom("a map key is listed twice"));
    }
    Ok(map)
}
