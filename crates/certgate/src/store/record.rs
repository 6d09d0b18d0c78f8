//! The on-disk encoding of one embedded-store value.
//!
//! ```text
//! byte 0      type tag: 1 = string, 2 = list, 3 = set
//! bytes 1..9  absolute expiry, unix milliseconds, little-endian u64; 0 = never
//! bytes 9..   payload: string = its UTF-8 bytes;
//!             list/set = repeated (u32 LE length, UTF-8 bytes); a set's members sorted, unique
//! ```
//!
//! The expiry sits in a fixed header so `exists`/`ttl`/scans read it without decoding the
//! payload. Decoding never trusts the bytes: a damaged record is an error, never a panic.

use std::collections::BTreeSet;

const TAG_STRING: u8 = 1;
const TAG_LIST: u8 = 2;
const TAG_SET: u8 = 3;
const HEADER_LEN: usize = 9;

/// A decoded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Str(String),
    List(Vec<String>),
    Set(BTreeSet<String>),
}

/// A value with its absolute expiry (unix ms; 0 = never).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub expiry: u64,
    pub value: Value,
}

/// The fixed header of an encoded record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub tag: u8,
    pub expiry: u64,
}

impl Header {
    /// Whether the record is expired at `now_ms`. A key whose expiry equals now is gone.
    pub fn expired(self, now_ms: u64) -> bool {
        self.expiry != 0 && self.expiry <= now_ms
    }

    /// Whether the record holds a string.
    pub fn is_string(self) -> bool {
        self.tag == TAG_STRING
    }
}

/// Reads the header; `Err` describes what is wrong.
pub(crate) fn header(bytes: &[u8]) -> Result<Header, String> {
    let head = bytes
        .get(..HEADER_LEN)
        .ok_or_else(|| format!("record of {} bytes is shorter than its header", bytes.len()))?;
    let tag = head[0];
    if !matches!(tag, TAG_STRING | TAG_LIST | TAG_SET) {
        return Err(format!("unknown type tag {tag}"));
    }
    let mut exp = [0u8; 8];
    exp.copy_from_slice(&head[1..HEADER_LEN]);
    Ok(Header {
        tag,
        expiry: u64::from_le_bytes(exp),
    })
}

/// The payload of a string record, borrowed. `Ok(None)` if the record is not a string.
pub(crate) fn string_payload(bytes: &[u8]) -> Result<Option<&str>, String> {
    let h = header(bytes)?;
    if !h.is_string() {
        return Ok(None);
    }
    let payload = bytes.get(HEADER_LEN..).unwrap_or_default();
    std::str::from_utf8(payload)
        .map(Some)
        .map_err(|e| format!("string is not UTF-8: {e}"))
}

/// A copy of an encoded record with its expiry replaced; the payload is not decoded.
pub(crate) fn with_expiry(bytes: &[u8], expiry: u64) -> Result<Vec<u8>, String> {
    header(bytes)?;
    let mut out = bytes.to_vec();
    out[1..HEADER_LEN].copy_from_slice(&expiry.to_le_bytes());
    Ok(out)
}

/// Decodes a whole record.
pub(crate) fn decode(bytes: &[u8]) -> Result<Record, String> {
    let h = header(bytes)?;
    let payload = bytes.get(HEADER_LEN..).unwrap_or_default();
    let value = match h.tag {
        TAG_STRING => Value::Str(
            std::str::from_utf8(payload)
                .map_err(|e| format!("string is not UTF-8: {e}"))?
                .to_owned(),
        ),
        TAG_LIST => Value::List(decode_items(payload)?),
        _ => Value::Set(decode_items(payload)?.into_iter().collect()),
    };
    Ok(Record {
        expiry: h.expiry,
        value,
    })
}

fn decode_items(mut rest: &[u8]) -> Result<Vec<String>, String> {
    let mut items = Vec::new();
    while !rest.is_empty() {
        let len_bytes = rest.get(..4).ok_or("truncated element length".to_owned())?;
        let mut len = [0u8; 4];
        len.copy_from_slice(len_bytes);
        let len = usize::try_from(u32::from_le_bytes(len))
            .map_err(|_| "element length does not fit in memory".to_owned())?;
        let end = len
            .checked_add(4)
            .ok_or("element length overflows".to_owned())?;
        let item = rest
            .get(4..end)
            .ok_or_else(|| format!("element of {len} bytes is truncated"))?;
        let item = std::str::from_utf8(item).map_err(|e| format!("element is not UTF-8: {e}"))?;
        items.push(item.to_owned());
        rest = rest.get(end..).unwrap_or_default();
    }
    Ok(items)
}

/// Encodes a record. `Err` only if a list or set element is longer than 4 GiB.
pub(crate) fn encode(record: &Record) -> Result<Vec<u8>, String> {
    let (tag, size) = match &record.value {
        Value::Str(s) => (TAG_STRING, s.len()),
        Value::List(items) => (TAG_LIST, items.iter().map(|i| i.len() + 4).sum()),
        Value::Set(items) => (TAG_SET, items.iter().map(|i| i.len() + 4).sum()),
    };
    let mut out = Vec::with_capacity(HEADER_LEN + size);
    out.push(tag);
    out.extend_from_slice(&record.expiry.to_le_bytes());
    match &record.value {
        Value::Str(s) => out.extend_from_slice(s.as_bytes()),
        Value::List(items) => encode_items(&mut out, items.iter())?,
        Value::Set(items) => encode_items(&mut out, items.iter())?,
    }
    Ok(out)
}

fn encode_items<'a>(
    out: &mut Vec<u8>,
    items: impl Iterator<Item = &'a String>,
) -> Result<(), String> {
    for item in items {
        let len = u32::try_from(item.len())
            .map_err(|_| format!("element of {} bytes is too large", item.len()))?;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(item.as_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_type() {
        let records = [
            Record {
                expiry: 0,
                value: Value::Str(String::new()),
            },
            Record {
                expiry: 1_700_000_000_000,
                value: Value::Str("héllo\0world".into()),
            },
            Record {
                expiry: u64::MAX,
                value: Value::List(vec!["a".into(), String::new(), "a".into(), "ü".into()]),
            },
            Record {
                expiry: 7,
                value: Value::Set(["x".to_owned(), "y".to_owned()].into_iter().collect()),
            },
        ];
        for r in records {
            let bytes = encode(&r).expect("encode");
            assert_eq!(decode(&bytes).expect("decode"), r);
            assert_eq!(header(&bytes).expect("header").expiry, r.expiry);
        }
    }

    #[test]
    fn damaged_records_are_errors_not_panics() {
        let good = encode(&Record {
            expiry: 5,
            value: Value::List(vec!["abc".into(), "defg".into()]),
        })
        .expect("encode");
        for cut in 0..good.len() {
            // Any prefix either decodes (at an element boundary) or is an error.
            let _ = decode(&good[..cut]);
        }
        assert!(decode(&[]).is_err());
        assert!(decode(&[9, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(decode(&[TAG_STRING, 0, 0, 0, 0, 0, 0, 0, 0, 0xff]).is_err());
        assert!(decode(&[TAG_LIST, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 1]).is_err());
        assert_eq!(string_payload(&good), Ok(None));
    }
}
