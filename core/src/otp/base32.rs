//! RFC 4648 base32 (the alphabet `A-Z2-7`), as authenticator apps use it.
//!
//! Decoding accepts what people paste: any case, spaces/tabs and hyphens between
//! groups, with or without `=` padding. Anything else is an error that says which
//! character and where. Encoding emits upper case without padding.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base32Error {
    /// Nothing left after removing separators.
    Empty,
    /// A character outside the alphabet; `position` is 1-based, in characters of the input.
    InvalidCharacter { character: char, position: usize },
    /// `=` followed by something other than more padding or separators.
    MisplacedPadding { position: usize },
    /// A number of symbols that no whole number of bytes encodes (1, 3 or 6 mod 8).
    InvalidLength { symbols: usize },
    /// Longer than [`super::limits::SECRET_TEXT`] bytes: refused before decoding.
    TooLong,
}

impl fmt::Display for Base32Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Base32Error::Empty => write!(f, "base32 text is empty"),
            Base32Error::InvalidCharacter { character, position } => {
                if character.is_control() || character.is_whitespace() {
                    write!(f, "character U+{:04X} at position {position} is not base32 (A-Z, 2-7)", *character as u32)
                } else {
                    write!(f, "character '{character}' at position {position} is not base32 (A-Z, 2-7)")
                }
            }
            Base32Error::MisplacedPadding { position } => {
                write!(f, "padding '=' at position {position} is followed by more data")
            }
            Base32Error::InvalidLength { symbols } => {
                write!(f, "{symbols} base32 symbols do not encode a whole number of bytes (a truncated secret?)")
            }
            Base32Error::TooLong => write!(f, "longer than {} bytes", super::limits::SECRET_TEXT),
        }
    }
}

impl std::error::Error for Base32Error {}

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

#[inline]
fn symbol_value(c: char) -> Option<u8> {
    match c {
        'A'..='Z' => Some(c as u8 - b'A'),
        'a'..='z' => Some(c as u8 - b'a'),
        '2'..='7' => Some(c as u8 - b'2' + 26),
        _ => None,
    }
}

#[inline]
fn is_separator(c: char) -> bool {
    c == ' ' || c == '-' || c == '\t'
}

/// Symbol values by byte: 0..=31 for A-Z/a-z/2-7, SEP for ' ', '-', '\t', PAD for '=',
/// BAD for anything else (including every non-ASCII byte).
const SEP: u8 = 0xFD;
const PAD: u8 = 0xFE;
const BAD: u8 = 0xFF;
const LUT: [u8; 256] = {
    let mut t = [BAD; 256];
    let mut i = 0;
    while i < 26 {
        t[b'A' as usize + i] = i as u8;
        t[b'a' as usize + i] = i as u8;
        i += 1;
    }
    let mut d = 0;
    while d < 6 {
        t[b'2' as usize + d] = 26 + d as u8;
        d += 1;
    }
    t[b' ' as usize] = SEP;
    t[b'-' as usize] = SEP;
    t[b'\t' as usize] = SEP;
    t[b'=' as usize] = PAD;
    t
};

/// Decoded bytes: on the stack when they fit in 64 (every secret an authenticator app
/// makes), else on the heap. A TOTP check decodes its secret on every call.
pub enum Decoded {
    Inline([u8; 64], usize),
    Heap(Vec<u8>),
}

impl Decoded {
    fn with_capacity(n: usize) -> Self {
        if n <= 64 {
            Decoded::Inline([0; 64], 0)
        } else {
            Decoded::Heap(Vec::with_capacity(n))
        }
    }

    #[inline]
    fn extend_from_slice(&mut self, bytes: &[u8]) {
        match self {
            Decoded::Inline(buf, len) if *len + bytes.len() <= 64 => {
                buf[*len..*len + bytes.len()].copy_from_slice(bytes);
                *len += bytes.len();
            }
            Decoded::Inline(buf, len) => {
                let mut v = Vec::with_capacity(*len + bytes.len());
                v.extend_from_slice(&buf[..*len]);
                v.extend_from_slice(bytes);
                *self = Decoded::Heap(v);
            }
            Decoded::Heap(v) => v.extend_from_slice(bytes),
        }
    }

    pub fn into_vec(self) -> Vec<u8> {
        match self {
            Decoded::Inline(buf, len) => buf[..len].to_vec(),
            Decoded::Heap(v) => v,
        }
    }
}

impl std::ops::Deref for Decoded {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Decoded::Inline(buf, len) => &buf[..*len],
            Decoded::Heap(v) => v,
        }
    }
}

/// Collects 5-bit symbols into bytes; shared by both decoding paths.
struct Bits {
    out: Decoded,
    buffer: u64,
    bits: u32,
    symbols: usize,
}

impl Bits {
    fn new(capacity_hint: usize) -> Self {
        Bits { out: Decoded::with_capacity(capacity_hint * 5 / 8 + 1), buffer: 0, bits: 0, symbols: 0 }
    }

    #[inline]
    fn push(&mut self, v: u8) {
        self.buffer = (self.buffer << 5) | u64::from(v);
        self.bits += 5;
        self.symbols += 1;
        if self.bits >= 8 {
            self.bits -= 8;
            self.out.extend_from_slice(&[(self.buffer >> self.bits) as u8]);
            self.buffer &= (1u64 << self.bits) - 1;
        }
    }

    /// The bytes, if the symbol count can encode a whole number of them.
    fn finish(self) -> Result<Decoded, Base32Error> {
        if self.symbols == 0 {
            return Err(Base32Error::Empty);
        }
        if matches!(self.symbols % 8, 1 | 3 | 6) {
            return Err(Base32Error::InvalidLength { symbols: self.symbols });
        }
        Ok(self.out)
    }
}

/// Decodes base32 text into bytes. Trailing bits of a final partial group are
/// ignored (as authenticator apps do); lengths that cannot encode whole bytes are refused.
///
/// The common case (well-formed input) runs over bytes with a lookup table; only when
/// the input is invalid is it decoded again character by character, to say which
/// character and where.
pub fn decode(text: &str) -> Result<Vec<u8>, Base32Error> {
    decode_key(text).map(Decoded::into_vec)
}

/// [`decode`], without a heap allocation for up to 64 bytes.
pub fn decode_key(text: &str) -> Result<Decoded, Base32Error> {
    if text.len() > super::limits::SECRET_TEXT {
        return Err(Base32Error::TooLong);
    }
    let bytes = text.as_bytes();
    let mut bits = Bits::new(text.len());
    // Whole groups of 8 symbols (40 bits, 5 bytes) at a time while they are plain symbols:
    // a secret as generated is nothing else. The first group with anything else (a
    // separator, padding, a bad byte) and the rest go through the loop below.
    let mut done = 0;
    for group in bytes.chunks_exact(8) {
        let mut acc = 0u64;
        let mut plain = true;
        for &b in group {
            let v = LUT[b as usize];
            plain &= v < 32;
            acc = (acc << 5) | u64::from(v & 31);
        }
        if !plain {
            break;
        }
        bits.out.extend_from_slice(&acc.to_be_bytes()[3..]);
        bits.symbols += 8;
        done += 8;
    }
    let mut padded = false;
    for &b in &bytes[done..] {
        let v = LUT[b as usize];
        if v < 32 {
            if padded {
                return decode_slow(text);
            }
            bits.push(v);
        } else if v == PAD {
            padded = true;
        } else if v == BAD {
            return decode_slow(text);
        }
    }
    bits.finish()
}

/// The character-by-character decoder, for precise errors.
fn decode_slow(text: &str) -> Result<Decoded, Base32Error> {
    let mut bits = Bits::new(text.len());
    let mut padding_at: Option<usize> = None;
    for (i, c) in text.chars().enumerate() {
        let position = i + 1;
        if is_separator(c) {
            continue;
        }
        if c == '=' {
            padding_at.get_or_insert(position);
            continue;
        }
        if let Some(pad) = padding_at {
            return Err(Base32Error::MisplacedPadding { position: pad });
        }
        bits.push(symbol_value(c).ok_or(Base32Error::InvalidCharacter { character: c, position })?);
    }
    bits.finish()
}

/// Encodes bytes as upper-case base32 without padding.
pub fn encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits: u32 = 0;
    for &b in data {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
        buffer &= (1u32 << bits) - 1;
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn decode_key_inline_and_on_the_heap() {
        // Up to 64 bytes on the stack, more on the heap; separators force the symbol-by-symbol
        // loop across the 64-byte boundary too.
        for len in 1..=100usize {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + len) as u8).collect();
            let text = encode(&data);
            assert_eq!(&decode_key(&text).unwrap()[..], &data[..], "len {len}");
            let spaced: String = text.chars().flat_map(|c| [c, ' ']).collect();
            assert_eq!(&decode_key(&spaced).unwrap()[..], &data[..], "spaced, len {len}");
            assert_eq!(matches!(decode_key(&text).unwrap(), Decoded::Inline(..)), len <= 64 && text.len() * 5 / 8 < 64);
        }
    }

    use super::*;

    #[test]
    fn rfc4648_vectors() {
        let cases: [(&[u8], &str); 7] = [
            (b"", ""),
            (b"f", "MY"),
            (b"fo", "MZXQ"),
            (b"foo", "MZXW6"),
            (b"foob", "MZXW6YQ"),
            (b"fooba", "MZXW6YTB"),
            (b"foobar", "MZXW6YTBOI"),
        ];
        for (raw, enc) in cases {
            assert_eq!(encode(raw), enc);
            if !raw.is_empty() {
                assert_eq!(decode(enc).unwrap(), raw);
            }
        }
        assert_eq!(decode("MZXW6YQ=").unwrap(), b"foob");
        assert_eq!(decode("MZXW6YTBOI======").unwrap(), b"foobar");
    }

    #[test]
    fn accepts_what_people_paste() {
        let want = decode("JBSWY3DPEHPK3PXP").unwrap();
        for s in ["jbswy3dpehpk3pxp", "JBSW Y3DP EHPK 3PXP", "jbsw-y3dp-ehpk-3pxp", " JBSWY3DPEHPK3PXP\t"] {
            assert_eq!(decode(s).unwrap(), want, "{s:?}");
        }
    }

    #[test]
    fn errors_say_what_and_where() {
        assert_eq!(decode("JBSWY1DP").unwrap_err(), Base32Error::InvalidCharacter { character: '1', position: 6 });
        assert_eq!(decode("").unwrap_err(), Base32Error::Empty);
        assert_eq!(decode(" - ").unwrap_err(), Base32Error::Empty);
        assert_eq!(decode("MZX").unwrap_err(), Base32Error::InvalidLength { symbols: 3 });
        assert_eq!(decode("MY=A").unwrap_err(), Base32Error::MisplacedPadding { position: 3 });
        let msg = decode("AB\u{e9}C").unwrap_err().to_string();
        assert!(msg.contains("position 3"), "{msg}");
    }

    /// The table-driven fast path and the character-by-character path agree on everything.
    #[test]
    fn fast_and_slow_paths_agree() {
        let pieces = ["A", "z", "7", "2", "8", "1", "=", "-", " ", "\t", "é", "\0", "MZXW6", "==", "ab"];
        let mut x: u64 = 7;
        for _ in 0..20000 {
            let mut s = String::new();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = (x % 24) as usize;
            let mut y = x;
            for _ in 0..n {
                y = y.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                s.push_str(pieces[(y >> 33) as usize % pieces.len()]);
            }
            assert_eq!(decode(&s), decode_slow(&s).map(Decoded::into_vec), "{s:?}");
        }
    }

    #[test]
    fn leading_zero_bytes_survive() {
        let raw = [0u8, 0, 0, 1, 2, 3, 0];
        assert_eq!(decode(&encode(&raw)).unwrap(), raw);
    }

    #[test]
    fn agrees_with_the_base32_crate() {
        // An independent implementation as an oracle, over many lengths and patterns.
        let mut x: u32 = 12345;
        for len in 0..200usize {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1103515245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            let theirs = ::base32::encode(::base32::Alphabet::Rfc4648 { padding: false }, &data);
            assert_eq!(encode(&data), theirs);
            if len > 0 {
                assert_eq!(decode(&theirs).unwrap(), data);
                assert_eq!(decode(&theirs.to_lowercase()).unwrap(), data);
                let padded = ::base32::encode(::base32::Alphabet::Rfc4648 { padding: true }, &data);
                assert_eq!(decode(&padded).unwrap(), data);
            }
        }
    }
}
