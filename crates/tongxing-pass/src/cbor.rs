//! The small part of CBOR (RFC 8949) the formats use: a deterministic encoder and a reader that
//! borrows from its input. `check` runs first on any untrusted item: it proves the bytes are one
//! well-formed item, nested no deeper than [`MAX_DEPTH`], with no bytes after it, in time linear
//! in the input (a count larger than the bytes left is refused at once). The readers that follow
//! can then skip and descend without recursion limits of their own.

use std::fmt::Write as _;

/// Deepest nesting accepted (an item inside 16 arrays or maps is refused).
pub const MAX_DEPTH: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CborError(pub String);

impl std::fmt::Display for CborError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

type Result<T> = std::result::Result<T, CborError>;

fn err<T>(msg: impl Into<String>) -> Result<T> {
    Err(CborError(msg.into()))
}

pub const UINT: u8 = 0;
pub const NINT: u8 = 1;
pub const BYTES: u8 = 2;
pub const TEXT: u8 = 3;
pub const ARRAY: u8 = 4;
pub const MAP: u8 = 5;
pub const TAG: u8 = 6;
pub const SIMPLE: u8 = 7;

// ---------------------------------------------------------------------------------------------
// Encoding

/// Appends deterministic CBOR (shortest heads, definite lengths) to a buffer.
pub struct Writer<'a>(pub &'a mut Vec<u8>);

impl Writer<'_> {
    pub fn head(&mut self, major: u8, n: u64) {
        let m = major << 5;
        if n < 24 {
            self.0.push(m | n as u8);
        } else if n <= 0xff {
            self.0.extend_from_slice(&[m | 24, n as u8]);
        } else if n <= 0xffff {
            self.0.push(m | 25);
            self.0.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            self.0.push(m | 26);
            self.0.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            self.0.push(m | 27);
            self.0.extend_from_slice(&n.to_be_bytes());
        }
    }
    pub fn uint(&mut self, n: u64) {
        self.head(UINT, n);
    }
    pub fn int(&mut self, n: i64) {
        if n >= 0 {
            self.head(UINT, n as u64);
        } else {
            self.head(NINT, !(n as u64));
        }
    }
    pub fn bytes(&mut self, b: &[u8]) {
        self.head(BYTES, b.len() as u64);
        self.0.extend_from_slice(b);
    }
    pub fn text(&mut self, s: &str) {
        self.head(TEXT, s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }
    pub fn array(&mut self, n: usize) {
        self.head(ARRAY, n as u64);
    }
    pub fn map(&mut self, n: usize) {
        self.head(MAP, n as u64);
    }
    pub fn tag(&mut self, n: u64) {
        self.head(TAG, n);
    }
    pub fn bool(&mut self, b: bool) {
        self.0.push(if b { 0xf5 } else { 0xf4 });
    }
}

// ---------------------------------------------------------------------------------------------
// Well-formedness and depth

/// Reads one head at `pos`: (major type, additional info, argument, position after the head).
/// Indefinite lengths and the reserved additional-information values are refused.
fn head_at(buf: &[u8], pos: usize) -> Result<(u8, u8, u64, usize)> {
    let Some(&b) = buf.get(pos) else { return err("the CBOR ends in the middle of an item") };
    let (major, ai) = (b >> 5, b & 0x1f);
    let (arg, len) = match ai {
        0..=23 => (ai as u64, 0),
        24 => (0, 1),
        25 => (0, 2),
        26 => (0, 4),
        27 => (0, 8),
        31 => return err("indefinite-length CBOR items are not accepted"),
        _ => return err(format!("reserved CBOR additional information {ai}")),
    };
    if len == 0 {
        return Ok((major, ai, arg, pos + 1));
    }
    let Some(bytes) = buf.get(pos + 1..pos + 1 + len) else { return err("the CBOR ends in the middle of a head") };
    let arg = bytes.iter().fold(0u64, |a, &b| (a << 8) | b as u64);
    Ok((major, ai, arg, pos + 1 + len))
}

/// Checks that `buf` is exactly one well-formed CBOR item nested at most [`MAX_DEPTH`] deep.
/// Text strings must be UTF-8. Linear in `buf.len()`, no recursion.
pub fn check(buf: &[u8]) -> Result<()> {
    // Items still expected at each open level (maps count keys and values).
    let mut pending: [u64; MAX_DEPTH + 1] = [0; MAX_DEPTH + 1];
    let mut depth = 0usize;
    pending[0] = 1;
    let mut pos = 0;
    loop {
        while pending[depth] == 0 {
            if depth == 0 {
                if pos != buf.len() {
                    return err(format!("{} bytes after the CBOR item", buf.len() - pos));
                }
                return Ok(());
            }
            depth -= 1;
        }
        pending[depth] -= 1;
        let (major, ai, arg, next) = head_at(buf, pos)?;
        pos = next;
        let left = (buf.len() - pos) as u64;
        match major {
            UINT | NINT => {}
            BYTES | TEXT => {
                if arg > left {
                    return err("a CBOR string is longer than the bytes left");
                }
                let end = pos + arg as usize;
                if major == TEXT && std::str::from_utf8(&buf[pos..end]).is_err() {
                    return err("a CBOR text string is not UTF-8");
                }
                pos = end;
            }
            ARRAY | MAP => {
                let items = if major == MAP { arg.checked_mul(2) } else { Some(arg) };
                match items {
                    Some(n) if n <= left => {
                        if n > 0 {
                            if depth == MAX_DEPTH {
                                return err(format!("CBOR nested deeper than {MAX_DEPTH}"));
                            }
                            depth += 1;
                            pending[depth] = n;
                        }
                    }
                    _ => return err("a CBOR array or map claims more items than the bytes left"),
                }
            }
            TAG => {
                // The tagged item is one more pending item at this level.
                pending[depth] += 1;
            }
            _ => {
                if ai == 24 && arg < 32 {
                    return err("a badly encoded CBOR simple value");
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reading (after `check`)

/// A cursor over checked CBOR that borrows strings from the input.
#[derive(Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Major type of the next item.
    pub fn peek_major(&self) -> Result<u8> {
        match self.buf.get(self.pos) {
            Some(b) => Ok(b >> 5),
            None => err("the CBOR ends where an item was expected"),
        }
    }

    fn head(&mut self) -> Result<(u8, u8, u64)> {
        let (major, ai, arg, next) = head_at(self.buf, self.pos)?;
        self.pos = next;
        Ok((major, ai, arg))
    }

    fn expect(&mut self, major: u8, what: &str) -> Result<u64> {
        let (m, _, arg) = self.head()?;
        if m != major {
            return err(format!("expected {what}, found {}", major_name(m)));
        }
        Ok(arg)
    }

    pub fn uint(&mut self) -> Result<u64> {
        self.expect(UINT, "an unsigned integer")
    }

    /// A signed integer that fits in i64.
    pub fn int(&mut self) -> Result<i64> {
        let (m, _, arg) = self.head()?;
        match m {
            UINT if arg <= i64::MAX as u64 => Ok(arg as i64),
            NINT if arg <= i64::MAX as u64 => Ok(!(arg as i64)),
            UINT | NINT => err("an integer out of range"),
            _ => err(format!("expected an integer, found {}", major_name(m))),
        }
    }

    pub fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.expect(BYTES, "a byte string")? as usize;
        self.take(n)
    }

    pub fn text(&mut self) -> Result<&'a str> {
        let n = self.expect(TEXT, "a text string")? as usize;
        let b = self.take(n)?;
        std::str::from_utf8(b).map_err(|_| CborError("a CBOR text string is not UTF-8".into()))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        match self.buf.get(self.pos..self.pos.saturating_add(n)) {
            Some(b) => {
                self.pos += n;
                Ok(b)
            }
            None => err("a CBOR string is longer than the bytes left"),
        }
    }

    pub fn array(&mut self) -> Result<usize> {
        Ok(self.expect(ARRAY, "an array")? as usize)
    }

    pub fn map(&mut self) -> Result<usize> {
        Ok(self.expect(MAP, "a map")? as usize)
    }

    pub fn tag(&mut self) -> Result<u64> {
        self.expect(TAG, "a tag")
    }

    pub fn bool(&mut self) -> Result<bool> {
        match self.buf.get(self.pos) {
            Some(0xf4) => {
                self.pos += 1;
                Ok(false)
            }
            Some(0xf5) => {
                self.pos += 1;
                Ok(true)
            }
            _ => err("expected true or false"),
        }
    }

    /// A map key that is an integer (the formats use no other keys); `None` for any other key,
    /// which is skipped so that the caller can skip its value.
    pub fn int_key(&mut self) -> Result<Option<i64>> {
        match self.peek_major()? {
            UINT | NINT => self.int().map(Some),
            _ => {
                self.skip()?;
                Ok(None)
            }
        }
    }

    /// Skips one item. Input must have passed [`check`] (depth is then bounded); an item left
    /// unchecked is still bounded by the buffer, and the loop counts items, not recursion.
    pub fn skip(&mut self) -> Result<()> {
        let mut pending: u64 = 1;
        while pending > 0 {
            pending -= 1;
            let (m, _, arg) = self.head()?;
            match m {
                BYTES | TEXT => {
                    self.take(arg as usize)?;
                }
                ARRAY => pending = pending.saturating_add(arg),
                MAP => pending = pending.saturating_add(arg.saturating_mul(2)),
                TAG => pending += 1,
                _ => {}
            }
            if pending > (self.buf.len() - self.pos) as u64 {
                return err("a CBOR array or map claims more items than the bytes left");
            }
        }
        Ok(())
    }

    /// The bytes of the next item, whole.
    pub fn raw_item(&mut self) -> Result<&'a [u8]> {
        let start = self.pos;
        self.skip()?;
        Ok(&self.buf[start..self.pos])
    }
}

fn major_name(m: u8) -> &'static str {
    match m {
        UINT => "an unsigned integer",
        NINT => "a negative integer",
        BYTES => "a byte string",
        TEXT => "a text string",
        ARRAY => "an array",
        MAP => "a map",
        TAG => "a tag",
        _ => "a simple value or float",
    }
}

/// Duplicate-key guard for maps with small integer keys: `seen` is a bit set over keys 0..=63
/// after `offset` maps the range (e.g. claim keys, header labels).
pub fn first_time(seen: &mut u64, bit: u32) -> bool {
    let mask = 1u64 << bit;
    let first = *seen & mask == 0;
    *seen |= mask;
    first
}

// ---------------------------------------------------------------------------------------------
// Diagnostic notation (RFC 8949 §8), for documents and logs

/// Renders checked CBOR in diagnostic notation, on one line.
pub fn diagnostic(buf: &[u8]) -> Result<String> {
    check(buf)?;
    let mut out = String::new();
    let mut r = Reader::new(buf);
    diag_item(&mut r, &mut out)?;
    Ok(out)
}

fn diag_item(r: &mut Reader<'_>, out: &mut String) -> Result<()> {
    let (m, ai, arg) = r.head()?;
    match m {
        UINT => write!(out, "{arg}").unwrap(),
        NINT => write!(out, "-{}", arg as u128 + 1).unwrap(),
        BYTES => {
            let b = r.take(arg as usize)?;
            out.push_str("h'");
            for x in b {
                write!(out, "{x:02x}").unwrap();
            }
            out.push('\'');
        }
        TEXT => {
            let b = r.take(arg as usize)?;
            let s = std::str::from_utf8(b).map_err(|_| CborError("not UTF-8".into()))?;
            write!(out, "{s:?}").unwrap();
        }
        ARRAY => {
            out.push('[');
            for i in 0..arg {
                if i > 0 {
                    out.push_str(", ");
                }
                diag_item(r, out)?;
            }
            out.push(']');
        }
        MAP => {
            out.push('{');
            for i in 0..arg {
                if i > 0 {
                    out.push_str(", ");
                }
                diag_item(r, out)?;
                out.push_str(": ");
                diag_item(r, out)?;
            }
            out.push('}');
        }
        TAG => {
            write!(out, "{arg}(").unwrap();
            diag_item(r, out)?;
            out.push(')');
        }
        _ => match (ai, arg) {
            (20, _) => out.push_str("false"),
            (21, _) => out.push_str("true"),
            (22, _) => out.push_str("null"),
            (23, _) => out.push_str("undefined"),
            (25, a) => write!(out, "{}_1", half_to_f64(a as u16)).unwrap(),
            (26, a) => write!(out, "{:?}_2", f32::from_bits(a as u32)).unwrap(),
            (27, a) => write!(out, "{:?}_3", f64::from_bits(a)).unwrap(),
            (_, a) => write!(out, "simple({a})").unwrap(),
        },
    }
    Ok(())
}

fn half_to_f64(h: u16) -> f64 {
    let exp = (h >> 10) & 0x1f;
    let mant = (h & 0x3ff) as f64;
    let v = match exp {
        0 => mant * 2f64.powi(-24),
        31 => {
            if mant == 0.0 {
                f64::INFINITY
            } else {
                f64::NAN
            }
        }
        e => (1.0 + mant / 1024.0) * 2f64.powi(e as i32 - 15),
    };
    if h & 0x8000 != 0 { -v } else { v }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> Vec<u8> {
        let mut v = vec![0x81; depth];
        v.push(0x01);
        v
    }

    #[test]
    fn depth_sixteen_is_accepted_and_seventeen_refused() {
        assert!(check(&nested(16)).is_ok());
        let e = check(&nested(17)).unwrap_err();
        assert!(e.0.contains("deeper than 16"), "{e}");
        // Maps count too, and a tag does not open a level.
        let mut m = [0xa1, 0x01].repeat(17);
        m.push(0x00);
        assert!(check(&m).is_err());
        assert!(check(&[0xd2, 0xc1, 0x81, 0x00]).is_ok());
    }

    #[test]
    fn huge_counts_and_lengths_are_refused_at_once() {
        // An array of 2^64-1 items, a byte string of 2^63 bytes, a map of 2^63 pairs.
        assert!(check(&[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(check(&[0x5b, 0x80, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(check(&[0xbb, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x01]).is_err());
        // Indefinite lengths, trailing bytes, truncation, bad UTF-8.
        assert!(check(&[0x9f, 0xff]).is_err());
        assert!(check(&[0x01, 0x02]).is_err());
        assert!(check(&[0x82, 0x01]).is_err());
        assert!(check(&[0x62, 0xff, 0xfe]).is_err());
    }

    #[test]
    fn integers_round_trip_at_every_head_size() {
        for n in [0i64, 23, 24, 255, 256, 65535, 65536, 1 << 32, i64::MAX, -1, -24, -25, -65537, i64::MIN] {
            let mut buf = Vec::new();
            Writer(&mut buf).int(n);
            check(&buf).unwrap();
            assert_eq!(Reader::new(&buf).int().unwrap(), n);
        }
    }

    #[test]
    fn diagnostic_notation() {
        let mut buf = Vec::new();
        let mut w = Writer(&mut buf);
        w.tag(18);
        w.map(3);
        w.int(-65537);
        w.bytes(&[0xab, 0x01]);
        w.int(1);
        w.text("CN");
        w.uint(4);
        w.array(2);
        w.bool(true);
        w.int(-7);
        assert_eq!(diagnostic(&buf).unwrap(), r#"18({-65537: h'ab01', 1: "CN", 4: [true, -7]})"#);
    }
}
