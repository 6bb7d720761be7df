//! The TX1 chain: `TX1:` + Base45(zlib(COSE_Sign1(CWT))). Issuing runs it forwards; the
//! [`Decoder`] runs it backwards, stage by stage, with every size limit checked before the work
//! it guards, and keeps its buffers between calls so that a checkpoint's verification loop does
//! not allocate for the envelope.

use flate2::{Decompress, FlushDecompress, Status};

use crate::base45;
use crate::cose;
use crate::keys::{Algorithm, KeyId, Signer};
use crate::pass::{Pass, PassError};
use crate::refusal::{Refusal, Stage, refuse};
use crate::revocation::{RevocationHash, RevocationSet};
use crate::trust::TrustList;

/// The QR text's prefix for a Tongxing pass.
pub const PREFIX: &str = "TX1:";
/// Longest QR text accepted, in bytes (a version-40 QR holds 4,296 alphanumeric characters).
pub const MAX_TEXT_BYTES: usize = 4096;
/// Largest inflated payload accepted: a zip bomb stops here.
pub const MAX_INFLATED_BYTES: usize = 65536;
/// Default tolerance for a checkpoint clock behind the issuer's, in seconds.
pub const DEFAULT_CLOCK_TOLERANCE: i64 = 300;
/// Default lifetime of a pass, in seconds (policy data; see docs/PASS-FORMAT.md).
pub const DEFAULT_PASS_LIFETIME: i64 = 15 * 60;

/// A pass whose every stage passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPass {
    pub pass: Pass,
    pub kid: KeyId,
    pub alg: Algorithm,
    /// The pass's own id (what withdrawing it puts on the revocation list).
    pub pass_id: RevocationHash,
}

/// Signs passes into QR texts, reusing its buffers.
pub struct Issuer<'a> {
    signer: &'a Signer,
    tbs: Vec<u8>,
    zlib: Vec<u8>,
}

impl<'a> Issuer<'a> {
    pub fn new(signer: &'a Signer) -> Self {
        Issuer { signer, tbs: Vec::new(), zlib: Vec::new() }
    }

    /// The QR text of `pass`, signed.
    pub fn issue(&mut self, pass: &Pass) -> Result<String, PassError> {
        let payload = pass.to_cwt()?;
        let protected = cose::protected_header(self.signer.algorithm(), Some(self.signer.kid()));
        cose::sig_structure(&protected, &payload, &mut self.tbs);
        let signature = self.signer.sign(&self.tbs);
        let cose = cose::assemble(&protected, None, &payload, &signature);
        Ok(wrap(PREFIX, &cose, &mut self.zlib))
    }
}

/// Signs one pass (see [`Issuer`] for many).
pub fn issue(signer: &Signer, pass: &Pass) -> Result<String, PassError> {
    Issuer::new(signer).issue(pass)
}

/// prefix + Base45(zlib(cose)).
pub(crate) fn wrap(prefix: &str, cose: &[u8], zlib: &mut Vec<u8>) -> String {
    stored_zlib(cose, zlib);
    let mut text = String::with_capacity(prefix.len() + zlib.len().div_ceil(2) * 3);
    text.push_str(prefix);
    base45::encode_into(zlib, &mut text);
    text
}

/// A zlib stream (RFC 1950) of stored deflate blocks (RFC 1951 §3.2.4). A pass is ~180 bytes,
/// most of them random (signature, key id, person reference): deflate at level 9 gives the same
/// size (it falls back to a stored block) after a compressor reset that costs 6–21 µs, more
/// than the signature. Any zlib reader reads this; verifiers accept compressed streams too.
pub fn stored_zlib(data: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.reserve(data.len() + 6 + 5 * data.len().div_ceil(65535).max(1));
    out.extend_from_slice(&[0x78, 0x01]); // deflate, 32 KiB window, no dictionary, level "fastest"
    let mut blocks = data.chunks(65535).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[0x01, 0x00, 0x00, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        let len = block.len() as u16;
        out.push(blocks.peek().is_none() as u8); // BFINAL on the last block, BTYPE 00
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&adler32(data).to_be_bytes());
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    // 5552 bytes is the most that can be summed before b could overflow 32 bits.
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += x as u32;
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    (b << 16) | a
}

/// The envelope stages shared by TX1 and HC1: size, prefix, Base45, zlib. Public for tools
/// that show what a code holds (e.g. in CBOR diagnostic notation) before or without verifying.
pub struct Envelope {
    b45: Vec<u8>,
    inflated: Box<[u8]>,
    inflater: Decompress,
}

impl Default for Envelope {
    fn default() -> Self {
        Self::new()
    }
}

impl Envelope {
    pub fn new() -> Self {
        Envelope {
            b45: Vec::with_capacity(MAX_TEXT_BYTES / 3 * 2 + 2),
            inflated: vec![0; MAX_INFLATED_BYTES + 1].into_boxed_slice(),
            inflater: Decompress::new(true),
        }
    }

    /// Opens `text` down to the COSE bytes. With `allow_uncompressed`, a payload that is not a
    /// zlib stream but starts like a COSE_Sign1 (tag 18) is taken as is (the EU allows it).
    pub fn open(&mut self, prefix: &str, text: &str, allow_uncompressed: bool) -> Result<&[u8], Refusal> {
        if text.len() > MAX_TEXT_BYTES {
            return refuse(Stage::TooLarge, format!("the code is {} bytes: at most {MAX_TEXT_BYTES}", text.len()));
        }
        let Some(body) = text.strip_prefix(prefix) else {
            let shown: String = text.chars().take(4).collect();
            return refuse(Stage::BadPrefix, format!("the code starts with {shown:?}, not {prefix:?}"));
        };
        base45::decode_into(body.as_bytes(), &mut self.b45).map_err(|e| Refusal::new(Stage::BadBase45, e))?;
        if allow_uncompressed && self.b45.first() == Some(&0xd2) {
            let n = self.b45.len().min(MAX_INFLATED_BYTES);
            self.inflated[..n].copy_from_slice(&self.b45[..n]);
            return Ok(&self.inflated[..n]);
        }
        let n = inflate(&mut self.inflater, &self.b45, &mut self.inflated)?;
        Ok(&self.inflated[..n])
    }
}

/// Inflates a zlib stream into `out` (whose last byte is the overflow sentinel): more than
/// `out.len() - 1` bytes of output is a bomb and stops there.
fn inflate(z: &mut Decompress, input: &[u8], out: &mut [u8]) -> Result<usize, Refusal> {
    if let Some(n) = inflate_stored(input, out)? {
        return Ok(n);
    }
    let cap = out.len() - 1;
    z.reset(true);
    let status = z.decompress(input, out, FlushDecompress::Finish);
    let (read, written) = (z.total_in() as usize, z.total_out() as usize);
    match status {
        Ok(Status::StreamEnd) if written <= cap => {
            if read != input.len() {
                return refuse(Stage::BadCompression, format!("{} bytes after the zlib stream", input.len() - read));
            }
            Ok(written)
        }
        Ok(_) | Err(_) if written > cap => {
            refuse(Stage::TooLarge, format!("the payload inflates past {cap} bytes (a compression bomb?)"))
        }
        Ok(_) => refuse(Stage::BadCompression, "the zlib stream is truncated"),
        Err(e) => refuse(Stage::BadCompression, format!("not a zlib stream: {e}")),
    }
}

/// The fast path for what [`stored_zlib`] writes: a zlib stream of stored blocks only is copied
/// out directly (miniz's reset alone costs more than the whole copy). `None` when the stream
/// has a compressed block, or is not a plain zlib header: the general inflater then reads it.
fn inflate_stored(input: &[u8], out: &mut [u8]) -> Result<Option<usize>, Refusal> {
    let cap = out.len() - 1;
    match input {
        [0x78, flg, ..] if (0x7800u16 | *flg as u16).is_multiple_of(31) && flg & 0x20 == 0 => {}
        _ => return Ok(None),
    }
    let (mut pos, mut written) = (2usize, 0usize);
    loop {
        let Some(&[head, l0, l1, n0, n1]) = input.get(pos..pos + 5).map(|h| <&[u8; 5]>::try_from(h).unwrap()) else {
            return Ok(None);
        };
        if head & !1 != 0 {
            return Ok(None); // a compressed block (or bits this path does not handle)
        }
        let len = u16::from_le_bytes([l0, l1]) as usize;
        if len as u16 != !u16::from_le_bytes([n0, n1]) {
            return Ok(None);
        }
        let Some(block) = input.get(pos + 5..pos + 5 + len) else { return Ok(None) };
        if written + len > cap {
            return refuse(Stage::TooLarge, format!("the payload inflates past {cap} bytes"));
        }
        out[written..written + len].copy_from_slice(block);
        written += len;
        pos += 5 + len;
        if head & 1 == 1 {
            break;
        }
    }
    match input.get(pos..) {
        Some(adler)
            if adler.len() == 4 && u32::from_be_bytes(adler.try_into().unwrap()) == adler32(&out[..written]) =>
        {
            Ok(Some(written))
        }
        _ => Ok(None),
    }
}

/// Verifies TX1 codes offline. Keep one per thread: it reuses its buffers.
pub struct Decoder {
    envelope: Envelope,
    tbs: Vec<u8>,
    clock_tolerance: i64,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    pub fn new() -> Self {
        Decoder { envelope: Envelope::new(), tbs: Vec::with_capacity(1024), clock_tolerance: DEFAULT_CLOCK_TOLERANCE }
    }

    /// How far (seconds) this device's clock may be behind the issuer's before the checkpoint
    /// refuses to decide ([`Stage::ClockBehind`]).
    pub fn with_clock_tolerance(mut self, seconds: i64) -> Self {
        self.clock_tolerance = seconds.max(0);
        self
    }

    /// Runs every stage on `text` at time `now` (UTC seconds): the first that fails is named.
    pub fn decode(
        &mut self,
        text: &str,
        trust: &TrustList,
        revocations: &RevocationSet,
        now: i64,
    ) -> Result<VerifiedPass, Refusal> {
        let cose_bytes = self.envelope.open(PREFIX, text, false)?;
        let sign1 = cose::parse(cose_bytes)?;
        let Some(kid) = sign1.protected_kid else {
            return refuse(Stage::BadCose, "the key id must be in the protected header (label 4)");
        };
        let Some(entry) = trust.get(&kid) else {
            return refuse(Stage::UnknownKey, format!("key {kid} is not in trust list version {}", trust.version()));
        };
        if let Some(until) = entry.verifies_until
            && now >= until
        {
            return refuse(Stage::KeyNotValid, format!("key {kid} was retired and verifies nothing after {until}"));
        }
        if entry.key.algorithm() != sign1.alg {
            return refuse(
                Stage::BadSignature,
                format!("key {kid} is {}, the code says {}", entry.key.algorithm(), sign1.alg),
            );
        }
        cose::sig_structure(sign1.protected, sign1.payload, &mut self.tbs);
        if !entry.key.verify(&self.tbs, sign1.signature) {
            return refuse(Stage::BadSignature, format!("the signature does not verify with key {kid}"));
        }
        let pass = Pass::from_cwt(sign1.payload)?;
        if pass.issued_at < entry.valid_from || entry.signs_until.is_some_and(|end| pass.issued_at >= end) {
            return refuse(
                Stage::KeyNotValid,
                format!("key {kid} was not entitled to sign at {} (the pass's issue time)", pass.issued_at),
            );
        }
        if pass.issued_at > now.saturating_add(self.clock_tolerance) {
            return refuse(
                Stage::ClockBehind,
                format!(
                    "the pass was issued {} s after this device's time: set the device's clock before deciding",
                    pass.issued_at - now
                ),
            );
        }
        if now >= pass.expires_at {
            return refuse(Stage::Expired, format!("the pass expired {} s ago", now - pass.expires_at));
        }
        let pass_id = RevocationHash::of_pass(sign1.payload);
        if let Some(why) = revocations.check(&pass.person_ref, &pass_id, pass.issued_at) {
            return refuse(Stage::Revoked, why);
        }
        Ok(VerifiedPass { pass, kid, alg: sign1.alg, pass_id })
    }
}

/// Verifies one code (see [`Decoder`] for many), with the default clock tolerance.
pub fn decode(text: &str, trust: &TrustList, revocations: &RevocationSet, now: i64) -> Result<VerifiedPass, Refusal> {
    Decoder::new().decode(text, trust, revocations, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn stored_zlib_is_read_by_flate2() {
        for n in [0usize, 1, 179, 65535, 65536, 200_000] {
            let data: Vec<u8> = (0..n).map(|i| (i * 7 % 251) as u8).collect();
            let mut z = Vec::new();
            stored_zlib(&data, &mut z);
            let mut back = Vec::new();
            flate2::read::ZlibDecoder::new(&z[..]).read_to_end(&mut back).unwrap();
            assert_eq!(back, data, "{n} bytes");
        }
    }
}
