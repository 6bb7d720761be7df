//! Base45 (RFC 9285): the QR alphanumeric alphabet, two bytes in three characters. Decoding
//! writes into a buffer the caller keeps, so the verification loop allocates nothing here.

const ALPHABET: &[u8; 45] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

const INVALID: u8 = 0xff;
const DECODE: [u8; 256] = {
    let mut t = [INVALID; 256];
    let mut i = 0;
    while i < 45 {
        t[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    t
};

pub fn encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(2) * 3);
    encode_into(data, &mut out);
    out
}

pub fn encode_into(data: &[u8], out: &mut String) {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        let n = (c[0] as usize) << 8 | c[1] as usize;
        out.push(ALPHABET[n % 45] as char);
        out.push(ALPHABET[n / 45 % 45] as char);
        out.push(ALPHABET[n / 2025] as char);
    }
    if let [b] = chunks.remainder() {
        let n = *b as usize;
        out.push(ALPHABET[n % 45] as char);
        out.push(ALPHABET[n / 45] as char);
    }
}

/// Decodes into `out` (cleared first). The error names the first bad position.
pub fn decode_into(text: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    out.clear();
    out.reserve(text.len() / 3 * 2 + 1);
    let value = |i: usize| -> Result<usize, String> {
        match DECODE[text[i] as usize] {
            INVALID => Err(format!("character {} at position {i} is not in the Base45 alphabet", quote_byte(text[i]))),
            v => Ok(v as usize),
        }
    };
    let mut chunks = text.chunks_exact(3);
    let mut i = 0;
    for _ in &mut chunks {
        let n = value(i)? + value(i + 1)? * 45 + value(i + 2)? * 2025;
        if n > 0xffff {
            return Err(format!("the triple at position {i} decodes past 65535"));
        }
        out.extend_from_slice(&(n as u16).to_be_bytes());
        i += 3;
    }
    match chunks.remainder().len() {
        0 => Ok(()),
        2 => {
            let n = value(i)? + value(i + 1)? * 45;
            if n > 0xff {
                return Err(format!("the final pair at position {i} decodes past 255"));
            }
            out.push(n as u8);
            Ok(())
        }
        _ => Err(format!("a length of {} characters is not a Base45 length (one left over)", text.len())),
    }
}

fn quote_byte(b: u8) -> String {
    if b.is_ascii_graphic() { format!("'{}'", b as char) } else { format!("0x{b:02x}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_9285_examples() {
        assert_eq!(encode(b"AB"), "BB8");
        assert_eq!(encode(b"Hello!!"), "%69 VD92EX0");
        assert_eq!(encode(b"base-45"), "UJCLQE7W581");
        let mut out = Vec::new();
        decode_into(b"QED8WEX0", &mut out).unwrap();
        assert_eq!(out, b"ietf!");
        assert!(decode_into(b"GGW", &mut out).is_err()); // 65536 + ...: out of range
        assert!(decode_into(b"ZZZZ", &mut out).is_err());
        assert!(decode_into(b"aBC", &mut out).is_err());
    }
}
