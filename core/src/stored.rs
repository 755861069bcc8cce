//! The stored form of a state document and of its recommendation summary: their JSON, compressed
//! with zstd and packed seven bits to a character, behind a one-character tag.
//!
//! A member's document is most of what Redis keeps for them (docs/benchmarks.md, memory per member)
//! and its JSON repeats itself: the same item ids in the session, the path, the interests and the
//! recent items, the same field names in every session. zstd at its fastest level shrinks a typical
//! 3 KB document about four times in a few microseconds. The store's values are text
//! (`tailor_infra::store` speaks `String`), so the compressed bytes are packed seven bits to an ASCII
//! character (8/7 of the bytes, where base64 would take 4/3); Redis strings are binary-safe, so the
//! control characters this produces are stored as they are.
//!
//! A stored document is either this form, starting with [`TAG`], or plain JSON (starting with `{`):
//! documents written before compression are read as they are and rewritten compressed at their next
//! change.
//!
//! Documents are compressed with a dictionary ([`DICTIONARY`], 2 KB): a document is small, and
//! most of what zstd alone cannot shrink in it is what every document shares (field names, the
//! shape of a session). The dictionary was trained by `scripts/doc-dictionary.sh` on documents the
//! real processor built from another shop's traffic than the benchmark's (YOOCHOOSE), and takes a
//! benchmark document from about 880 bytes compressed to about 510. A frame names the dictionary
//! it was compressed with; frames without one (written before it) still read.

/// The first character of a compressed document (never the first character of JSON).
pub const TAG: char = 'Z';

/// zstd's level: its fastest standard level; higher levels gain a few percent for several times the
/// CPU, on a document the processor rewrites at every event.
const LEVEL: i32 = 1;

/// The dictionary documents are compressed with; its id is [`DICTIONARY_ID`]. A new dictionary
/// needs a new id, and this one must still be read: it is part of the stored format.
const DICTIONARY: &[u8] = include_bytes!("stored.dict");
const DICTIONARY_ID: u32 = 1_952_541_036;

/// The largest document a stored one may decompress to (documents are a few kilobytes: every list
/// in them is capped); a frame claiming more is refused rather than allocated.
const MAX_JSON: usize = 4 << 20;

thread_local! {
    // One context per thread: creating a context allocates and zeroes a few hundred kilobytes,
    // several times the work of compressing a document (it was 8% of the processor's CPU).
    static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { std::cell::RefCell::new(None) };
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
    // For frames written without the dictionary.
    static PLAIN_DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Why a stored document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StoredError {
    #[error("the compressed document is not seven-bit packed: {0}")]
    Packing(&'static str),
    #[error("the compressed document does not decompress: {0}")]
    Zstd(std::io::Error),
    #[error("the compressed document names dictionary {0}, which this version does not have")]
    Dictionary(u32),
    #[error("the compressed document does not state a decompressed size under {MAX_JSON} bytes")]
    Size,
    #[error("the document is not valid UTF-8 JSON once decompressed")]
    Utf8,
}

/// The stored form of `json`.
pub fn compress(json: &str) -> String {
    let bytes = COMPRESSOR.with_borrow_mut(|c| {
        let c = match c {
            Some(c) => c,
            None => c.insert(
                zstd::bulk::Compressor::with_dictionary(LEVEL, DICTIONARY)
                    .expect("a zstd context with the dictionary"),
            ),
        };
        c.compress(json.as_bytes())
            .expect("compressing into memory")
    });
    let mut out = String::with_capacity(1 + bytes.len() * 8 / 7 + 1);
    out.push(TAG);
    pack7(&bytes, &mut out);
    out
}

/// A stored document read into `T`: decompressed when it carries [`TAG`], parsed as JSON otherwise
/// (the plain form written before); an error for the caller to report.
pub fn parse<T: serde::de::DeserializeOwned>(stored: &str) -> Result<T, String> {
    let json = decompress(stored).map_err(|e| e.to_string())?;
    serde_json::from_str(&json).map_err(|e| e.to_string())
}

/// The JSON of a stored document: decompressed when it carries [`TAG`], as it is otherwise.
pub fn decompress(stored: &str) -> Result<std::borrow::Cow<'_, str>, StoredError> {
    let Some(packed) = stored.strip_prefix(TAG) else {
        return Ok(std::borrow::Cow::Borrowed(stored));
    };
    let bytes = unpack7(packed)?;
    let size = match zstd::zstd_safe::get_frame_content_size(&bytes) {
        Ok(Some(n)) if n <= MAX_JSON as u64 => n as usize,
        _ => return Err(StoredError::Size),
    };
    let (context, dictionary) = match zstd::zstd_safe::get_dict_id_from_frame(&bytes) {
        Some(id) if id.get() == DICTIONARY_ID => (&DECOMPRESSOR, Some(DICTIONARY)),
        None => (&PLAIN_DECOMPRESSOR, None),
        Some(other) => return Err(StoredError::Dictionary(other.get())),
    };
    let json = context.with_borrow_mut(|d| {
        let d = match d {
            Some(d) => d,
            None => d.insert(
                match dictionary {
                    Some(dict) => zstd::bulk::Decompressor::with_dictionary(dict),
                    None => zstd::bulk::Decompressor::new(),
                }
                .map_err(StoredError::Zstd)?,
            ),
        };
        d.decompress(&bytes, size).map_err(StoredError::Zstd)
    })?;
    String::from_utf8(json)
        .map(std::borrow::Cow::Owned)
        .map_err(|_| StoredError::Utf8)
}

/// Appends `bytes` as characters of seven bits each (0x00-0x7F), most significant bits first; the
/// last character is padded with zero bits.
fn pack7(bytes: &[u8], out: &mut String) {
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 7 {
            bits -= 7;
            out.push(char::from(((acc >> bits) & 0x7f) as u8));
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(((acc << (7 - bits)) & 0x7f) as u8));
    }
}

/// The bytes of [`pack7`]'s characters; the padding bits are dropped.
fn unpack7(packed: &str) -> Result<Vec<u8>, StoredError> {
    let mut out = Vec::with_capacity(packed.len() * 7 / 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in packed.bytes() {
        if c > 0x7f {
            return Err(StoredError::Packing("a character above 0x7F"));
        }
        acc = (acc << 7) | u32::from(c);
        bits += 7;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if bits >= 7 || acc != 0 {
        return Err(StoredError::Packing(
            "the padding is not under seven zero bits",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seven_bit_packing_round_trips_every_length_and_byte() {
        // Every length over a full cycle of the 7/8 alignment, with every byte value.
        for len in 0..=64usize {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 97 + len * 13) as u8).collect();
            let mut s = String::new();
            pack7(&bytes, &mut s);
            assert_eq!(s.len(), (len * 8).div_ceil(7), "length {len}");
            assert!(s.bytes().all(|c| c <= 0x7f));
            assert_eq!(unpack7(&s).unwrap(), bytes, "length {len}");
        }
        let all: Vec<u8> = (0..=255u8).collect();
        let mut s = String::new();
        pack7(&all, &mut s);
        assert_eq!(unpack7(&s).unwrap(), all);
    }

    #[test]
    fn a_document_is_stored_smaller_and_read_back_exactly() {
        let json = format!(
            "{{\"recent\":[{}],\"path\":[{}]}}",
            (0..30)
                .map(|i| format!("\"item-{i}\""))
                .collect::<Vec<_>>()
                .join(","),
            (0..30)
                .map(|i| format!("{{\"t_ms\":1795859583542,\"page\":\"item:item-{i}\"}}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let stored = compress(&json);
        assert!(stored.starts_with(TAG));
        assert!(
            stored.len() * 3 < json.len(),
            "{} of {}",
            stored.len(),
            json.len()
        );
        assert_eq!(decompress(&stored).unwrap(), json);
        // JSON written before compression reads as it is.
        assert!(matches!(decompress(&json).unwrap(), std::borrow::Cow::Borrowed(j) if j == json));
    }

    /// The stored form with `dictionary` (`None`: none), as another version might have written it.
    fn written_with(json: &str, dictionary: Option<&[u8]>) -> String {
        let bytes = match dictionary {
            Some(d) => zstd::bulk::Compressor::with_dictionary(LEVEL, d)
                .unwrap()
                .compress(json.as_bytes())
                .unwrap(),
            None => zstd::bulk::compress(json.as_bytes(), LEVEL).unwrap(),
        };
        let mut out = String::from(TAG);
        pack7(&bytes, &mut out);
        out
    }

    #[test]
    fn documents_name_the_dictionary_and_those_written_without_one_still_read() {
        assert_eq!(
            zstd::zstd_safe::get_dict_id_from_dict(DICTIONARY).map(|id| id.get()),
            Some(DICTIONARY_ID)
        );
        let json =
            r#"{"member_id":null,"anonymous_ids":["v1"],"recent_items":["a","b"],"path":[]}"#;
        let stored = compress(json);
        let frame = unpack7(&stored[1..]).unwrap();
        assert_eq!(
            zstd::zstd_safe::get_dict_id_from_frame(&frame).map(|id| id.get()),
            Some(DICTIONARY_ID)
        );
        assert_eq!(decompress(&stored).unwrap(), json);
        // Written before the dictionary.
        let plain = written_with(json, None);
        assert!(plain.len() > stored.len(), "the dictionary helps");
        assert_eq!(decompress(&plain).unwrap(), json);
        // Written with a dictionary this version does not have (the same bytes under another id).
        let mut other = DICTIONARY.to_vec();
        other[4..8].copy_from_slice(&7_u32.to_le_bytes());
        assert!(matches!(
            decompress(&written_with(json, Some(&other))),
            Err(StoredError::Dictionary(7))
        ));
    }

    #[test]
    fn a_damaged_document_is_an_error_not_a_panic() {
        let stored = compress("{\"a\":1}");
        let cut = &stored[..stored.len() - 2];
        assert!(decompress(cut).is_err());
        assert!(matches!(
            decompress("Z\u{7f}\u{7f}\u{7f}"),
            Err(StoredError::Packing(_) | StoredError::Size | StoredError::Zstd(_))
        ));
        assert!(matches!(decompress("Zé"), Err(StoredError::Packing(_))));
        // A small frame that would decompress to more than any document is refused unallocated.
        let bomb = compress(&" ".repeat(MAX_JSON + 1));
        assert!(bomb.len() < 1000);
        assert!(matches!(decompress(&bomb), Err(StoredError::Size)));
    }
}

/// A session's item list as the session index stores it: its last click (ms), then its distinct
/// items, the one clicked longest ago first, separated by spaces (ids hold no whitespace).
///
/// One string a session instead of a sorted set of item → last click: about half the memory (a
/// small sorted set keeps a score of eight bytes and bookkeeping per item, and the key's own
/// structure), and one write a view (`SET … EX`) instead of two (`ZADD`, `EXPIRE`). The processor
/// writes the whole list at each view of the session, from the session its document keeps.
pub mod session_list {
    /// The stored form of a session whose last click was at `last_ms`, `items` oldest first.
    pub fn encode<'a>(last_ms: i64, items: impl IntoIterator<Item = &'a str>) -> String {
        let mut out = last_ms.to_string();
        for item in items {
            out.push(' ');
            out.push_str(item);
        }
        out
    }

    /// The last click (ms) and the items, oldest first, of a stored session; `None` if it is not
    /// one.
    pub fn decode(stored: &str) -> Option<(f64, Vec<String>)> {
        let mut parts = stored.split(' ');
        let last_ms: i64 = parts.next()?.parse().ok()?;
        Some((
            last_ms as f64,
            parts
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect(),
        ))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_session_reads_back_as_written() {
            let s = encode(1_700_000_000_123, ["a", "b-1", "ü/2"]);
            assert_eq!(s, "1700000000123 a b-1 ü/2");
            assert_eq!(
                decode(&s),
                Some((
                    1_700_000_000_123.0,
                    vec!["a".into(), "b-1".into(), "ü/2".into()]
                ))
            );
            assert_eq!(decode(&encode(5, [])), Some((5.0, vec![])));
            assert_eq!(decode("not a session"), None);
        }
    }
}
