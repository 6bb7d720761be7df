//! Just enough DER (X.690) to read what the formats need from outside: the algorithm of a
//! PKCS#8 private key, a SubjectPublicKeyInfo, and the public key and validity of an X.509
//! certificate (the EU signing certificates). Nothing here checks a certificate's signature:
//! a certificate is trusted because the operator's trust-list file names it, not through a chain.

pub const SEQUENCE: u8 = 0x30;
pub const INTEGER: u8 = 0x02;
pub const BIT_STRING: u8 = 0x03;
pub const OID: u8 = 0x06;
pub const UTC_TIME: u8 = 0x17;
pub const GENERALIZED_TIME: u8 = 0x18;

pub const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
pub const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
pub const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
pub const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
pub const OID_RSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];

/// A cursor over DER: one tag byte (low tag numbers only), definite lengths up to 4 bytes.
#[derive(Clone, Copy)]
pub struct Der<'a> {
    buf: &'a [u8],
}

impl<'a> Der<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Der { buf }
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn peek_tag(&self) -> Option<u8> {
        self.buf.first().copied()
    }

    /// Reads one element: its tag, its content and the whole element (tag and length included).
    pub fn element(&mut self) -> Result<(u8, &'a [u8], &'a [u8]), String> {
        let buf = self.buf;
        let (&tag, rest) = buf.split_first().ok_or("DER ends where an element was expected")?;
        if tag & 0x1f == 0x1f {
            return Err("DER tags above 30 are not expected here".into());
        }
        let (&l, rest) = rest.split_first().ok_or("DER ends in a length")?;
        let (len, rest) = if l < 0x80 {
            (l as usize, rest)
        } else {
            let n = (l & 0x7f) as usize;
            if n == 0 || n > 4 || rest.len() < n {
                return Err("a DER length of an unsupported form".into());
            }
            let len = rest[..n].iter().fold(0usize, |a, &b| (a << 8) | b as usize);
            (len, &rest[n..])
        };
        if rest.len() < len {
            return Err("a DER element is longer than the bytes left".into());
        }
        let header = buf.len() - rest.len();
        self.buf = &rest[len..];
        Ok((tag, &rest[..len], &buf[..header + len]))
    }

    /// Reads an element that must have `tag`; returns its content.
    pub fn expect(&mut self, tag: u8, what: &str) -> Result<&'a [u8], String> {
        let (t, content, _) = self.element()?;
        if t != tag {
            return Err(format!("expected {what} (DER tag 0x{tag:02x}), found tag 0x{t:02x}"));
        }
        Ok(content)
    }
}

/// The parts of a SubjectPublicKeyInfo: algorithm OID, its parameters (an OID or NULL, as
/// content bytes; empty if absent) and the key bits.
pub struct Spki<'a> {
    pub algorithm: &'a [u8],
    pub parameters: &'a [u8],
    pub key: &'a [u8],
}

pub fn parse_spki(der: &[u8]) -> Result<Spki<'_>, String> {
    let mut outer = Der::new(der);
    let mut seq = Der::new(outer.expect(SEQUENCE, "a SubjectPublicKeyInfo")?);
    if !outer.is_empty() {
        return Err("bytes after the SubjectPublicKeyInfo".into());
    }
    let mut alg = Der::new(seq.expect(SEQUENCE, "an AlgorithmIdentifier")?);
    let algorithm = alg.expect(OID, "an algorithm OID")?;
    let parameters = if alg.is_empty() { &[][..] } else { alg.element()?.1 };
    let bits = seq.expect(BIT_STRING, "the public key bits")?;
    match bits.split_first() {
        Some((0, key)) => Ok(Spki { algorithm, parameters, key }),
        _ => Err("the public key bit string has unused bits".into()),
    }
}

/// The algorithm OID (and its parameters) of a PKCS#8 PrivateKeyInfo.
pub fn pkcs8_algorithm(der: &[u8]) -> Result<(&[u8], &[u8]), String> {
    let mut seq = Der::new(Der::new(der).expect(SEQUENCE, "a PKCS#8 PrivateKeyInfo")?);
    seq.expect(INTEGER, "the PKCS#8 version")?;
    let mut alg = Der::new(seq.expect(SEQUENCE, "an AlgorithmIdentifier")?);
    let oid = alg.expect(OID, "an algorithm OID")?;
    let params = if alg.is_empty() { &[][..] } else { alg.element()?.1 };
    Ok((oid, params))
}

/// From an X.509 certificate: the SubjectPublicKeyInfo (whole element) and the validity
/// period (UTC seconds).
pub struct CertificateParts<'a> {
    pub spki: &'a [u8],
    pub not_before: i64,
    pub not_after: i64,
}

pub fn parse_certificate(der: &[u8]) -> Result<CertificateParts<'_>, String> {
    let mut outer = Der::new(der);
    let mut cert = Der::new(outer.expect(SEQUENCE, "a certificate")?);
    if !outer.is_empty() {
        return Err("bytes after the certificate".into());
    }
    let mut tbs = Der::new(cert.expect(SEQUENCE, "the to-be-signed certificate")?);
    if tbs.peek_tag() == Some(0xa0) {
        tbs.element()?; // version
    }
    tbs.expect(INTEGER, "the serial number")?;
    tbs.expect(SEQUENCE, "the signature algorithm")?;
    tbs.expect(SEQUENCE, "the issuer")?;
    let mut validity = Der::new(tbs.expect(SEQUENCE, "the validity")?);
    let not_before = parse_time(&mut validity)?;
    let not_after = parse_time(&mut validity)?;
    tbs.expect(SEQUENCE, "the subject")?;
    let (tag, _, spki) = tbs.element()?;
    if tag != SEQUENCE {
        return Err("expected the SubjectPublicKeyInfo".into());
    }
    Ok(CertificateParts { spki, not_before, not_after })
}

fn parse_time(d: &mut Der<'_>) -> Result<i64, String> {
    let (tag, content, _) = d.element()?;
    let s = std::str::from_utf8(content).map_err(|_| "a certificate time is not ASCII")?;
    let full = match tag {
        // RFC 5280: YY >= 50 is 19YY, else 20YY.
        UTC_TIME if s.len() == 13 => {
            let yy: u32 = s[..2].parse().map_err(|_| format!("bad UTCTime {s:?}"))?;
            format!("{}{s}", if yy >= 50 { "19" } else { "20" })
        }
        GENERALIZED_TIME if s.len() == 15 => s.to_string(),
        _ => return Err(format!("a certificate time of an unsupported form: {s:?}")),
    };
    chrono::NaiveDateTime::parse_from_str(&full, "%Y%m%d%H%M%SZ")
        .map(|t| t.and_utc().timestamp())
        .map_err(|_| format!("bad certificate time {s:?}"))
}
