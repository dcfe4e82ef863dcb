//! Hand encoding of the store messages' repeated record fields straight
//! from borrowed buffers. The hot paths (WAL append, archiving) use it to
//! avoid building owned `StoredSpan`/`StoredLog` copies only to encode them;
//! tests in `ollystack-node` check the bytes decode as the messages.

use prost::encoding::{encode_key, encode_varint, encoded_len_varint, key_len, WireType};

/// Length of a length-delimited field with `len` bytes of content.
pub fn field_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

/// A `bytes` or `string` field.
pub fn put_bytes(buf: &mut Vec<u8>, tag: u32, bytes: &[u8]) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(bytes.len() as u64, buf);
    buf.extend_from_slice(bytes);
}

/// A `uint64` field (omitted when zero, as proto3 does).
pub fn put_u64(buf: &mut Vec<u8>, tag: u32, value: u64) {
    if value != 0 {
        encode_key(tag, WireType::Varint, buf);
        encode_varint(value, buf);
    }
}

/// A `StoredSpan` or `StoredLog` message (1 = service_name, 2 = encoded
/// record) as field `tag` of the enclosing message.
pub fn put_record(buf: &mut Vec<u8>, tag: u32, service: &str, record: &[u8]) {
    let inner = field_len(1, service.len()) + field_len(2, record.len());
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(inner as u64, buf);
    put_bytes(buf, 1, service.as_bytes());
    put_bytes(buf, 2, record);
}
