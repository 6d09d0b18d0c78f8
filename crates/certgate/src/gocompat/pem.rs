//! A PEM reader and writer that behave like Go's `encoding/pem`, which wrote (and reads) every
//! value Tyk keeps in the certificate store.
//!
//! Reading follows `pem.Decode`: a block starts at `-----BEGIN <type>-----` at the start of the
//! input or of a line; optional `Key: value` header lines follow; the body runs to the first
//! `\n-----END ` and must close with the same type; trailing spaces, tabs and CRs are ignored
//! (so CRLF input works); text between blocks is skipped. Blocks whose framing is broken are
//! skipped like Go does, but a well-framed block whose body is not base64 is an error rather
//! than silently dropped: an upload that loses its private key without a word is worse than a
//! refusal. The reader is linear in the input size (Go's was quadratic on some inputs).
//!
//! Writing follows `pem.Encode`: `Proc-Type` first, other headers sorted, a blank line after
//! the headers, 64-column base64, LF line endings.

use base64::Engine as _;

use super::GO_STD_BASE64 as GO_STD;

const BEGIN: &[u8] = b"-----BEGIN ";
const LINE_BEGIN: &[u8] = b"\n-----BEGIN ";
const LINE_END: &[u8] = b"\n-----END ";
const DASHES: &[u8] = b"-----";

/// One PEM block.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Block {
    /// The type from the BEGIN line, e.g. `CERTIFICATE`.
    pub typ: String,
    /// Headers in input order; a repeated key keeps its last value (Go uses a map).
    pub headers: Vec<(String, String)>,
    /// The decoded body.
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The body may be a private key: never print it.
        f.debug_struct("Block")
            .field("typ", &self.typ)
            .field("headers", &self.headers)
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl Block {
    /// A block without headers.
    pub fn new(typ: &str, bytes: Vec<u8>) -> Self {
        Block {
            typ: typ.to_string(),
            headers: Vec::new(),
            bytes,
        }
    }

    /// The value of header `key`, if present.
    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A well-framed block whose body is not valid base64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadBase64 {
    /// 1-based position of the block among the blocks found.
    pub index: usize,
    /// Its type.
    pub typ: String,
    /// What the decoder said.
    pub reason: String,
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let tail = hay.get(from..)?;
    tail.windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Go's `getLine`: the line starting at `pos` without its terminator and trailing blanks, and
/// the position after the terminator.
fn get_line(data: &[u8], pos: usize) -> (&[u8], usize) {
    let tail = data.get(pos..).unwrap_or_default();
    let (line, next) = match tail.iter().position(|&b| b == b'\n') {
        Some(i) => (&tail[..i], pos + i + 1),
        None => (tail, data.len()),
    };
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b' ' | b'\t' | b'\r') {
        end -= 1;
    }
    (&line[..end], next)
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    b.get(start..end).unwrap_or_default()
}

/// Decodes every PEM block in `data`, in order.
pub(crate) fn decode_all(data: &[u8]) -> Result<Vec<Block>, BadBase64> {
    let mut blocks = Vec::new();
    let mut pos = 0;
    // Absolute position of the first "\n-----END " at or after the last search start; reused
    // while it is still ahead of the cursor so that broken blocks cannot make this quadratic.
    let mut next_end: Option<Option<usize>> = None;
    loop {
        // Find the next BEGIN at the cursor or at the start of a line.
        // (The cursor is always at the start of a line.)
        if data.get(pos..).is_some_and(|t| t.starts_with(BEGIN)) {
            pos += BEGIN.len();
        } else if let Some(i) = find(data, LINE_BEGIN, pos) {
            pos = i + LINE_BEGIN.len();
        } else {
            return Ok(blocks);
        }
        let (type_line, after) = get_line(data, pos);
        pos = after;
        let Some(typ) = type_line.strip_suffix(DASHES) else {
            continue;
        };
        let mut headers: Vec<(String, String)> = Vec::new();
        loop {
            if pos >= data.len() {
                return Ok(blocks);
            }
            let (line, next) = get_line(data, pos);
            let Some(colon) = line.iter().position(|&c| c == b':') else {
                break;
            };
            let key = String::from_utf8_lossy(trim(&line[..colon])).into_owned();
            let val = String::from_utf8_lossy(trim(&line[colon + 1..])).into_owned();
            headers.retain(|(k, _)| *k != key);
            headers.push((key, val));
            pos = next;
        }
        let rest = data.get(pos..).unwrap_or_default();
        // With no headers the END line may follow immediately, without a leading newline.
        let (end_index, trailer_index) = if headers.is_empty() && rest.starts_with(&LINE_END[1..]) {
            (pos, pos + LINE_END.len() - 1)
        } else {
            let cached = match next_end {
                Some(Some(e)) if e >= pos => Some(e),
                Some(None) => None,
                _ => {
                    let e = find(data, LINE_END, pos);
                    next_end = Some(e);
                    e
                }
            };
            match cached {
                Some(e) => (e, e + LINE_END.len()),
                // No END anywhere after this point: no further block can be complete.
                None => return Ok(blocks),
            }
        };
        let trailer = data.get(trailer_index..).unwrap_or_default();
        let trailer_len = typ.len() + DASHES.len();
        let Some(closing) = trailer.get(..trailer_len) else {
            continue;
        };
        if !closing.starts_with(typ) || !closing.ends_with(DASHES) {
            continue;
        }
        if !get_line(data, trailer_index + trailer_len).0.is_empty() {
            continue;
        }
        let typ = String::from_utf8_lossy(typ).into_owned();
        let body: Vec<u8> = data
            .get(pos..end_index)
            .unwrap_or_default()
            .iter()
            .copied()
            .filter(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            .collect();
        let bytes = GO_STD.decode(&body).map_err(|e| BadBase64 {
            index: blocks.len() + 1,
            typ: typ.clone(),
            reason: e.to_string(),
        })?;
        blocks.push(Block {
            typ,
            headers,
            bytes,
        });
        // Continue after the END line.
        pos = get_line(data, end_index + LINE_END.len() - 1).1;
    }
}

/// Encodes `block` exactly like Go's `pem.EncodeToMemory`.
pub(crate) fn encode(block: &Block) -> String {
    let b64 = GO_STD.encode(&block.bytes);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 64);
    out.push_str("-----BEGIN ");
    out.push_str(&block.typ);
    out.push_str("-----\n");
    if !block.headers.is_empty() {
        let mut headers: Vec<&(String, String)> = block.headers.iter().collect();
        headers.sort_by(|a, b| {
            (a.0 != "Proc-Type", a.0.as_str()).cmp(&(b.0 != "Proc-Type", b.0.as_str()))
        });
        for (k, v) in headers {
            out.push_str(k);
            out.push_str(": ");
            out.push_str(v);
            out.push('\n');
        }
        out.push('\n');
    }
    // base64 output is ASCII, so byte chunks are valid UTF-8.
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(&block.typ);
    out.push_str("-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_headers_and_wrapping() {
        let mut b = Block::new("ENCRYPTED PRIVATE KEY", (0u8..=200).collect());
        b.headers
            .push(("DEK-Info".into(), "AES-256-CBC,00ff".into()));
        b.headers.push(("Proc-Type".into(), "4,ENCRYPTED".into()));
        let text = encode(&b);
        let header = format!(
            "-----BEGIN {} PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00ff\n\n",
            "ENCRYPTED"
        );
        assert!(text.starts_with(&header));
        assert!(text
            .lines()
            .all(|l| l.len() <= 64 || l.starts_with("-----")));
        assert!(text.ends_with("-----END ENCRYPTED PRIVATE KEY-----\n"));
        let back = decode_all(text.as_bytes()).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].bytes, b.bytes);
        assert_eq!(back[0].header("Proc-Type"), Some("4,ENCRYPTED"));
        assert_eq!(back[0].header("DEK-Info"), Some("AES-256-CBC,00ff"));
    }

    #[test]
    fn crlf_text_between_and_broken_framing() {
        let text = "junk\r\n-----BEGIN A-----\r\nYQ==\r\n-----END A-----\r\n\
                    -----BEGIN B-----\nYg==\n-----END C-----\n\
                    -----BEGIN NOEND-----\nYw==\n\
                    -----BEGIN D-----\nZA==\n-----END D-----";
        let blocks = decode_all(text.as_bytes()).unwrap();
        let types: Vec<_> = blocks.iter().map(|b| b.typ.as_str()).collect();
        assert_eq!(types, ["A", "D"]);
        assert_eq!(blocks[0].bytes, b"a");
        assert_eq!(blocks[1].bytes, b"d");
    }

    #[test]
    fn empty_body_and_bad_base64() {
        let blocks = decode_all(b"-----BEGIN E-----\n-----END E-----\n").unwrap();
        assert_eq!(blocks.len(), 1);
        assert!(blocks[0].bytes.is_empty());
        let err = decode_all(b"-----BEGIN CERTIFICATE-----\nYQ\n-----END CERTIFICATE-----\n")
            .unwrap_err();
        assert_eq!(err.typ, "CERTIFICATE");
        assert_eq!(err.index, 1);
    }

    #[test]
    fn pathological_inputs_are_linear_and_do_not_panic() {
        let many_begins = "-----BEGIN X-----\n".repeat(60_000);
        assert!(decode_all(many_begins.as_bytes()).unwrap().is_empty());
        let mismatched = "-----BEGIN X-----\nYQ==\n-----END Y-----\n".repeat(30_000);
        assert!(decode_all(mismatched.as_bytes()).unwrap().is_empty());
        for junk in [
            &b"-----BEGIN "[..],
            b"-----BEGIN X-----",
            b"-----BEGIN X-----\n",
            b"-----BEGIN X-----\nK: v",
            b"-----BEGIN X-----\n-----END X",
            b"\n-----END X-----\n",
            b"\xff\xfe-----BEGIN \xff-----\n\n-----END \xff-----\n",
        ] {
            let _ = decode_all(junk);
        }
    }
}
