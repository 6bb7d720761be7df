//! The pass and its claims: a CWT (RFC 8392) whose standard claims carry issuer, issue time and
//! expiry, and whose private claim −65537 carries the pass itself with small integer keys. Both
//! directions live here, so that the layout in docs/PASS-FORMAT.md has one source.

use chrono::NaiveDate;
use tongxing_domain::facts::{CodeColour, CommuterKind, CommuterStatus, SiteKind, TestResult};

use crate::cbor::{self, Reader, Writer};
use crate::refusal::{Refusal, Stage, refuse};

/// The private CWT claim holding the pass (the first key of the private-use range, < −65536).
pub const PASS_CLAIM: i64 = -65537;
/// The layout version inside the pass claim.
pub const PASS_VERSION: u64 = 1;
/// Most tests a pass carries (the latest ones).
pub const MAX_TESTS: usize = 3;
/// Longest person reference, in bytes.
pub const MAX_PERSON_REF: usize = 32;
/// Longest issuer and colour reason, in bytes of UTF-8.
pub const MAX_TEXT: usize = 64;

/// A signed health code's content. Times are UTC seconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pass {
    /// Who issued it, e.g. "BJ-HEALTH" (CWT `iss`).
    pub issuer: String,
    /// CWT `iat`.
    pub issued_at: i64,
    /// CWT `exp`: the pass is refused at and after this second.
    pub expires_at: i64,
    /// A pseudonymous reference to the person made by the server (e.g. an HMAC of the person's
    /// id, 16 bytes), never the document number. Opaque here.
    pub person_ref: Vec<u8>,
    pub colour: CodeColour,
    /// A reason code for a non-green colour, e.g. "pop_up_2".
    pub colour_reason: Option<String>,
    /// The latest tests, newest first, at most [`MAX_TESTS`].
    pub tests: Vec<PassTest>,
    /// The commuter certification (通勤认证), if the person has one.
    pub commuter: Option<CommuterBadge>,
    /// The designated test point (临京服务区检测点, its id in the policy) where the pending
    /// service-area test among `tests` was sampled (key 7): the rules accept a pending sample
    /// only from one of them.
    pub pending_site: Option<String>,
    /// A commitment letter (进（返）京人员承诺书) is signed for that pending test: the evidence
    /// for conditional entry. Written only when true (key 8).
    pub commitment_letter: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassTest {
    pub sampled_at: i64,
    pub site_kind: SiteKind,
    pub result: TestResult,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommuterBadge {
    pub kind: CommuterKind,
    pub status: CommuterStatus,
    /// End of the certification's validity (exclusive), if set.
    pub valid_until: Option<i64>,
    /// Whether the commuter already passed the first check with a 48-hour test.
    pub first_check_done: bool,
    /// The day (Beijing calendar) by which the next test is due, if known.
    pub next_test_due: Option<NaiveDate>,
}

/// A pass that cannot be encoded as it stands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the pass cannot be issued: {0}")]
pub struct PassError(pub String);

// Stable code numbers of the enums inside the pass claim. A new variant gets a new number;
// a number is never reused.
macro_rules! codes {
    ($enc:ident, $dec:ident, $t:ty { $($v:ident = $n:literal),+ $(,)? }) => {
        pub(crate) fn $enc(v: $t) -> u64 { match v { $(<$t>::$v => $n),+ } }
        pub(crate) fn $dec(n: u64) -> Option<$t> { match n { $($n => Some(<$t>::$v),)+ _ => None } }
    };
}
codes!(colour_code, colour_from, CodeColour { Green = 0, Yellow = 1, Red = 2 });
codes!(site_code, site_from, SiteKind { Hospital = 0, Community = 1, ServiceArea = 2 });
codes!(result_code, result_from, TestResult { Pending = 0, Negative = 1, Positive = 2, Invalid = 3 });
codes!(kind_code, kind_from, CommuterKind { Worker = 0, Student = 1, EscortingParent = 2 });
codes!(status_code, status_from, CommuterStatus {
    Pending = 0, Approved = 1, Rejected = 2, Suspended = 3, Revoked = 4, Expired = 5,
});

const EPOCH: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();

fn days(d: NaiveDate) -> i64 {
    (d - EPOCH).num_days()
}

impl Pass {
    /// Checks the limits that the decoder also enforces, so that every encoded pass decodes.
    pub fn validate(&self) -> Result<(), PassError> {
        let e = |m: String| Err(PassError(m));
        if self.issuer.is_empty() || self.issuer.len() > MAX_TEXT {
            return e(format!("the issuer must be 1 to {MAX_TEXT} bytes"));
        }
        if self.person_ref.is_empty() || self.person_ref.len() > MAX_PERSON_REF {
            return e(format!("the person reference must be 1 to {MAX_PERSON_REF} bytes"));
        }
        if self.expires_at <= self.issued_at {
            return e("the expiry must be after the issue time".into());
        }
        if self.colour_reason.as_ref().is_some_and(|r| r.is_empty() || r.len() > MAX_TEXT) {
            return e(format!("a colour reason must be 1 to {MAX_TEXT} bytes"));
        }
        if self.pending_site.as_ref().is_some_and(|r| r.is_empty() || r.len() > MAX_TEXT) {
            return e(format!("a pending test's site must be 1 to {MAX_TEXT} bytes"));
        }
        if self.tests.len() > MAX_TESTS {
            return e(format!("a pass carries at most {MAX_TESTS} tests, not {}", self.tests.len()));
        }
        Ok(())
    }

    /// The CWT payload (deterministic CBOR: keys in the order RFC 8949 §4.2.1 sorts them).
    pub fn to_cwt(&self) -> Result<Vec<u8>, PassError> {
        self.validate()?;
        let mut buf = Vec::with_capacity(128);
        let mut w = Writer(&mut buf);
        w.map(4);
        w.uint(1);
        w.text(&self.issuer);
        w.uint(4);
        w.int(self.expires_at);
        w.uint(6);
        w.int(self.issued_at);
        w.int(PASS_CLAIM);
        let n = 3
            + self.colour_reason.is_some() as usize
            + !self.tests.is_empty() as usize
            + self.commuter.is_some() as usize
            + self.pending_site.is_some() as usize
            + self.commitment_letter as usize;
        w.map(n);
        w.uint(1);
        w.uint(PASS_VERSION);
        w.uint(2);
        w.bytes(&self.person_ref);
        w.uint(3);
        w.uint(colour_code(self.colour));
        if let Some(r) = &self.colour_reason {
            w.uint(4);
            w.text(r);
        }
        if !self.tests.is_empty() {
            w.uint(5);
            w.array(self.tests.len());
            for t in &self.tests {
                w.map(3);
                w.uint(1);
                w.int(t.sampled_at);
                w.uint(2);
                w.uint(site_code(t.site_kind));
                w.uint(3);
                w.uint(result_code(t.result));
            }
        }
        if let Some(c) = &self.commuter {
            w.uint(6);
            w.map(3 + c.valid_until.is_some() as usize + c.next_test_due.is_some() as usize);
            w.uint(1);
            w.uint(kind_code(c.kind));
            w.uint(2);
            w.uint(status_code(c.status));
            if let Some(v) = c.valid_until {
                w.uint(3);
                w.int(v);
            }
            w.uint(4);
            w.bool(c.first_check_done);
            if let Some(d) = c.next_test_due {
                w.uint(5);
                w.int(days(d));
            }
        }
        if let Some(site) = &self.pending_site {
            w.uint(7);
            w.text(site);
        }
        if self.commitment_letter {
            w.uint(8);
            w.bool(true);
        }
        Ok(buf)
    }

    /// Reads a CWT payload. Unknown claims and unknown keys inside the pass claim are ignored
    /// (a change of meaning bumps the version); duplicate keys are refused. Every refusal is at
    /// [`Stage::BadClaims`].
    pub fn from_cwt(payload: &[u8]) -> Result<Pass, Refusal> {
        cbor::check(payload).map_err(bad)?;
        let mut r = Reader::new(payload);
        let n = r.map().map_err(bad)?;
        let (mut iss, mut exp, mut iat, mut body) = (None, None, None, None);
        let mut seen = 0u64;
        for _ in 0..n {
            let key = r.int_key().map_err(bad)?;
            let bit = match key {
                Some(1) => 1,
                Some(4) => 4,
                Some(6) => 6,
                Some(PASS_CLAIM) => 63,
                _ => {
                    r.skip().map_err(bad)?;
                    continue;
                }
            };
            if !cbor::first_time(&mut seen, bit) {
                return refuse(Stage::BadClaims, format!("claim {} appears twice", key.unwrap_or_default()));
            }
            match bit {
                1 => iss = Some(r.text().map_err(field("iss (1)"))?),
                4 => exp = Some(r.int().map_err(field("exp (4)"))?),
                6 => iat = Some(r.int().map_err(field("iat (6)"))?),
                _ => body = Some(r.clone()),
            }
            if bit == 63 {
                r.skip().map_err(bad)?;
            }
        }
        let missing = |c: &str| Refusal::new(Stage::BadClaims, format!("the claim {c} is missing"));
        let issuer = iss.ok_or_else(|| missing("iss (1)"))?.to_string();
        let expires_at = exp.ok_or_else(|| missing("exp (4)"))?;
        let issued_at = iat.ok_or_else(|| missing("iat (6)"))?;
        let mut b = body.ok_or_else(|| missing("tx-pass (-65537)"))?;
        let mut pass = Pass {
            issuer,
            issued_at,
            expires_at,
            person_ref: Vec::new(),
            colour: CodeColour::Green,
            colour_reason: None,
            tests: Vec::new(),
            pending_site: None,
            commitment_letter: false,
            commuter: None,
        };
        read_body(&mut b, &mut pass)?;
        pass.validate().map_err(|e| Refusal::new(Stage::BadClaims, e.0))?;
        Ok(pass)
    }
}

fn bad(e: cbor::CborError) -> Refusal {
    Refusal::new(Stage::BadClaims, e.0)
}

fn field(name: &'static str) -> impl Fn(cbor::CborError) -> Refusal {
    move |e| Refusal::new(Stage::BadClaims, format!("{name}: {}", e.0))
}

fn code<T>(r: &mut Reader<'_>, name: &'static str, from: fn(u64) -> Option<T>) -> Result<T, Refusal> {
    let n = r.uint().map_err(field(name))?;
    from(n).ok_or_else(|| Refusal::new(Stage::BadClaims, format!("{name}: unknown code {n}")))
}

fn read_body(r: &mut Reader<'_>, pass: &mut Pass) -> Result<(), Refusal> {
    let n = r.map().map_err(field("tx-pass"))?;
    let mut seen = 0u64;
    let (mut version, mut person, mut colour) = (None, None, None);
    for _ in 0..n {
        let key = r.int_key().map_err(bad)?;
        let Some(k @ 1..=8) = key else {
            r.skip().map_err(bad)?;
            continue;
        };
        if !cbor::first_time(&mut seen, k as u32) {
            return refuse(Stage::BadClaims, format!("tx-pass key {k} appears twice"));
        }
        match k {
            1 => version = Some(r.uint().map_err(field("tx-pass version (1)"))?),
            2 => person = Some(r.bytes().map_err(field("person reference (2)"))?.to_vec()),
            3 => colour = Some(code(r, "colour (3)", colour_from)?),
            4 => pass.colour_reason = Some(r.text().map_err(field("colour reason (4)"))?.to_string()),
            5 => {
                let count = r.array().map_err(field("tests (5)"))?;
                if count > MAX_TESTS {
                    return refuse(Stage::BadClaims, format!("{count} tests: at most {MAX_TESTS}"));
                }
                for _ in 0..count {
                    pass.tests.push(read_test(r)?);
                }
            }
            6 => pass.commuter = Some(read_badge(r)?),
            7 => pass.pending_site = Some(r.text().map_err(field("pending test's site (7)"))?.to_string()),
            _ => pass.commitment_letter = r.bool().map_err(field("commitment letter (8)"))?,
        }
    }
    match version {
        Some(PASS_VERSION) => {}
        Some(v) => return refuse(Stage::BadClaims, format!("tx-pass version {v}: this verifier reads version 1")),
        None => return refuse(Stage::BadClaims, "tx-pass version (1) is missing"),
    }
    pass.person_ref = person.ok_or_else(|| Refusal::new(Stage::BadClaims, "person reference (2) is missing"))?;
    pass.colour = colour.ok_or_else(|| Refusal::new(Stage::BadClaims, "colour (3) is missing"))?;
    Ok(())
}

fn read_test(r: &mut Reader<'_>) -> Result<PassTest, Refusal> {
    let n = r.map().map_err(field("test"))?;
    let (mut at, mut site, mut result, mut seen) = (None, None, None, 0u64);
    for _ in 0..n {
        let Some(k @ 1..=3) = r.int_key().map_err(bad)? else {
            r.skip().map_err(bad)?;
            continue;
        };
        if !cbor::first_time(&mut seen, k as u32) {
            return refuse(Stage::BadClaims, format!("test key {k} appears twice"));
        }
        match k {
            1 => at = Some(r.int().map_err(field("test sampled_at (1)"))?),
            2 => site = Some(code(r, "test site kind (2)", site_from)?),
            _ => result = Some(code(r, "test result (3)", result_from)?),
        }
    }
    match (at, site, result) {
        (Some(sampled_at), Some(site_kind), Some(result)) => Ok(PassTest { sampled_at, site_kind, result }),
        _ => refuse(Stage::BadClaims, "a test needs sampled_at (1), site kind (2) and result (3)"),
    }
}

fn read_badge(r: &mut Reader<'_>) -> Result<CommuterBadge, Refusal> {
    let n = r.map().map_err(field("commuter badge (6)"))?;
    let (mut kind, mut status, mut valid_until, mut first, mut due, mut seen) = (None, None, None, None, None, 0u64);
    for _ in 0..n {
        let Some(k @ 1..=5) = r.int_key().map_err(bad)? else {
            r.skip().map_err(bad)?;
            continue;
        };
        if !cbor::first_time(&mut seen, k as u32) {
            return refuse(Stage::BadClaims, format!("commuter badge key {k} appears twice"));
        }
        match k {
            1 => kind = Some(code(r, "commuter kind (1)", kind_from)?),
            2 => status = Some(code(r, "commuter status (2)", status_from)?),
            3 => valid_until = Some(r.int().map_err(field("commuter valid_until (3)"))?),
            4 => first = Some(r.bool().map_err(field("commuter first_check_done (4)"))?),
            _ => {
                let d = r.int().map_err(field("commuter next_test_due (5)"))?;
                let date = i32::try_from(d)
                    .ok()
                    .and_then(|d| EPOCH.checked_add_signed(chrono::Duration::days(d as i64)))
                    .ok_or_else(|| {
                        Refusal::new(Stage::BadClaims, format!("next_test_due (5): day {d} is out of range"))
                    })?;
                due = Some(date);
            }
        }
    }
    match (kind, status, first) {
        (Some(kind), Some(status), Some(first_check_done)) => {
            Ok(CommuterBadge { kind, status, valid_until, first_check_done, next_test_due: due })
        }
        _ => refuse(Stage::BadClaims, "a commuter badge needs kind (1), status (2) and first_check_done (4)"),
    }
}
