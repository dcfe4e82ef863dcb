//! The identity of a cluster node.

use std::fmt;

/// A node's identity in the cluster: the Raft node ID, fixed when the node
/// first joins and kept in its data dir, so it survives restarts and address
/// changes. Ring placement is derived from it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub u64);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node-{}", self.0)
    }
}

impl NodeId {
    /// The ID from its text in a node's data dir: hexadecimal, as
    /// [`NodeId::hex`] writes it.
    pub fn from_hex(text: &str) -> Result<Self, std::num::ParseIntError> {
        u64::from_str_radix(text, 16).map(Self)
    }

    /// The ID as 16 lowercase hexadecimal digits, zero padded: how a node's
    /// data dir keeps it, and how ClickHouse rows name the node.
    pub fn hex(self) -> String {
        format!("{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_sixteen_lowercase_digits_and_parses_back() {
        for (id, text) in [(0, "0000000000000000"), (0xab, "00000000000000ab"), (u64::MAX, "ffffffffffffffff")] {
            assert_eq!(NodeId(id).hex(), text);
            assert_eq!(NodeId::from_hex(text), Ok(NodeId(id)));
        }
        // The text a node first writes: two 32-bit halves, high first.
        let (hi, lo) = (0x0012_abcd_u32, 0xfe_u32);
        assert_eq!(NodeId((u64::from(hi) << 32) | u64::from(lo)).hex(), format!("{hi:08x}{lo:08x}"));
        assert_eq!(NodeId::from_hex("00000000000000AB"), Ok(NodeId(0xab)));
        assert!(NodeId::from_hex("node-1").is_err());
        assert!(NodeId::from_hex("").is_err());
    }
}
