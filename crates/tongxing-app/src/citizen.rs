//! Citizens sign in with a one-time code sent to the phone on record, and may act for up to
//! four family members: each link needs the member's own code, or a registry officer's
//! approval for a minor.
//!
//! Codes are 6 digits, stored salted and hashed (SHA-256), valid 5 minutes, 5 tries each, and
//! rate-limited per phone (5 an hour, one a minute) and per address (30 an hour), counted in
//! the database so that several servers limit together. Asking for a code answers the same
//! whether or not the number is on record, so the endpoint tells nobody who is.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, Utc};
use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;
use tongxing_domain::ids::{Document, DocumentKind, ResidentId};
use tongxing_domain::{mask, time};
use tongxing_store::{NewOtp, PersonInput, PersonRecord};
use utoipa::ToSchema;

use crate::{App, AppError, AppResult};

/// How long a code is valid.
pub const CODE_TTL: Duration = Duration::minutes(5);
/// Wrong answers a code allows.
pub const MAX_TRIES: i32 = 5;
/// Codes a phone may receive in an hour, and the least time between two.
pub const PER_PHONE_PER_HOUR: i64 = 5;
pub const PHONE_GAP: Duration = Duration::seconds(60);
/// Codes an address may ask for in an hour.
pub const PER_ADDRESS_PER_HOUR: i64 = 30;
/// How long a citizen's session lasts.
pub const SESSION_TTL: Duration = Duration::days(7);
/// Family members a citizen may act for.
pub const MAX_FAMILY: i64 = 4;

/// Sends a one-time code to a phone. Pluggable: the demo and the tests log it; a deployment
/// posts it to an SMS gateway.
pub trait CodeSender: Send + Sync {
    fn send<'a>(
        &'a self,
        phone: &'a str,
        code: &'a str,
        message: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;
}

/// Writes the code to the log instead of sending it: for `serve --demo` and the tests only.
pub struct LogSender;

impl CodeSender for LogSender {
    fn send<'a>(
        &'a self,
        phone: &'a str,
        code: &'a str,
        _message: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move {
            tracing::warn!(target: "tongxing::otp", phone = %mask::phone(phone), code, "one-time code (logged, not sent: demo sender)");
            Ok(())
        })
    }
}

/// What a code is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    SignIn,
    /// The member's consent to be linked to this citizen.
    Link {
        citizen_id: i64,
    },
}

impl Purpose {
    fn key(self) -> String {
        match self {
            Purpose::SignIn => "sign-in".to_string(),
            Purpose::Link { citizen_id } => format!("link:{citizen_id}"),
        }
    }
}

/// A new session: the token, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct Session {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    #[serde(serialize_with = "time::serialize")]
    pub expires_at: DateTime<Utc>,
}

/// One family member as the citizen sees them (masked).
#[derive(Debug, Serialize, ToSchema)]
pub struct FamilyMember {
    /// The link's id: names the member in `/citizen/family/{link}/pass`.
    pub link: i64,
    /// pending (a minor awaiting a registry officer), linked, refused or removed.
    pub status: String,
    pub name: Option<String>,
    pub document: String,
    #[serde(serialize_with = "time::serialize")]
    pub requested_at: DateTime<Utc>,
    pub reason: Option<String>,
}

/// A link to a minor awaiting a registry officer (masked).
#[derive(Debug, Serialize, ToSchema)]
pub struct PendingLink {
    pub link: i64,
    pub citizen_name: Option<String>,
    pub citizen_document: String,
    pub member_name: Option<String>,
    pub member_document: String,
    /// The member's age in whole years at the request, from the ID number.
    pub member_age: Option<u32>,
    #[serde(serialize_with = "time::serialize")]
    pub requested_at: DateTime<Utc>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hash_code(salt: &str, code: &str) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(salt.as_bytes());
    ctx.update(code.as_bytes());
    hex(ctx.finish().as_ref())
}

/// Equal without telling, by its timing, where two hashes differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A uniformly random 6-digit code (rejection sampling: no digit is likelier than another).
fn new_code(rng: &SystemRandom) -> AppResult<String> {
    loop {
        let mut b = [0u8; 4];
        rng.fill(&mut b).map_err(|_| AppError::Internal("no system randomness".into()))?;
        let n = u32::from_le_bytes(b);
        if n < 4_294_000_000 {
            return Ok(format!("{:06}", n % 1_000_000));
        }
    }
}

/// Age in whole years at `now` (Beijing date), from a resident ID's birth date.
fn age(document: &Document, now: DateTime<Utc>) -> Option<u32> {
    if document.kind() != DocumentKind::ResidentId {
        return None;
    }
    let birth = ResidentId::parse(document.number(), crate::input::today(now)).ok()?.birth_date();
    let today = crate::input::today(now);
    let mut years = today.year() - birth.year();
    if (today.month(), today.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    u32::try_from(years).ok()
}

impl App {
    fn sender(&self) -> AppResult<&Arc<dyn CodeSender>> {
        self.codes.as_ref().ok_or_else(|| {
            AppError::Unavailable("this server sends no one-time codes: start it with --otp-sender".into())
        })
    }

    /// Sends a code to the phone on record of `document`, for `purpose`. Answers the same
    /// whether or not the number is on record with a phone.
    pub async fn send_code(
        &self,
        document: &Document,
        purpose: Purpose,
        address: &str,
        now: DateTime<Utc>,
    ) -> AppResult<()> {
        let sender = self.sender()?;
        let Some(person) = self.store.person(&document.key()).await? else { return Ok(()) };
        let Some(phone) = person.phone.clone() else { return Ok(()) };
        let counts = self.store.otp_counts(&phone, address, now - Duration::hours(1)).await?;
        if let Some(last) = counts.last_to_phone
            && now - last < PHONE_GAP
        {
            let wait = (PHONE_GAP - (now - last)).num_seconds().max(1) as u64;
            return Err(AppError::TooMany {
                message: format!("a code was sent to this phone less than a minute ago; ask again in {wait} s"),
                retry_after_secs: wait,
            });
        }
        if counts.to_phone >= PER_PHONE_PER_HOUR {
            return Err(AppError::TooMany {
                message: format!("at most {PER_PHONE_PER_HOUR} codes an hour go to one phone; try again later"),
                retry_after_secs: 3600,
            });
        }
        if counts.from_address >= PER_ADDRESS_PER_HOUR {
            return Err(AppError::TooMany {
                message: format!("at most {PER_ADDRESS_PER_HOUR} codes an hour may be asked for from one address"),
                retry_after_secs: 3600,
            });
        }
        let rng = SystemRandom::new();
        let code = new_code(&rng)?;
        let mut salt = [0u8; 16];
        rng.fill(&mut salt).map_err(|_| AppError::Internal("no system randomness".into()))?;
        let salt = hex(&salt);
        self.store
            .insert_otp(&NewOtp {
                person_id: person.id,
                purpose: &purpose.key(),
                salt: &salt,
                code_hash: &hash_code(&salt, &code),
                phone: &phone,
                address,
                at: now,
                expires_at: now + CODE_TTL,
            })
            .await?;
        let message = match purpose {
            Purpose::SignIn => format!(
                "【通行】登录验证码 {code}，5分钟内有效，请勿告诉他人。Tongxing sign-in code {code}, valid 5 minutes; tell no one."
            ),
            Purpose::Link { .. } => format!(
                "【通行】您的家人申请代您查看通行码，验证码 {code}，5分钟内有效；若非本人同意请勿提供。\
                 Code {code}: a family member asks to see your pass for you; give it only if you agree."
            ),
        };
        sender.send(&phone, &code, &message).await.map_err(|e| {
            tracing::error!(error = %e, "sending a one-time code failed");
            AppError::Unavailable("the code could not be sent; try again shortly".into())
        })
    }

    /// Checks a code for `purpose`; a right answer uses it up.
    async fn redeem(&self, person: &PersonRecord, purpose: Purpose, code: &str, now: DateTime<Utc>) -> AppResult<()> {
        let code = code.trim();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AppError::invalid("code", "a code is 6 digits"));
        }
        let waiting = self.store.latest_otp(person.id, &purpose.key(), now).await?;
        let Some(otp) = waiting else {
            return Err(AppError::invalid(
                "code",
                "no code is waiting for this number (or it expired): ask for a new one",
            ));
        };
        let Some(tries) = self.store.count_otp_try(otp.id, MAX_TRIES).await? else {
            return Err(AppError::invalid("code", format!("{MAX_TRIES} wrong tries: ask for a new code")));
        };
        if !same(&hash_code(&otp.salt, code), &otp.code_hash) {
            let left = MAX_TRIES - tries;
            return Err(AppError::invalid(
                "code",
                if left > 0 {
                    format!("wrong code; {left} tries left")
                } else {
                    "wrong code; ask for a new one".into()
                },
            ));
        }
        if !self.store.use_otp(otp.id, now).await? {
            return Err(AppError::invalid("code", "this code was used already: ask for a new one"));
        }
        Ok(())
    }

    /// Signs a person in with their code: a session token bound to them.
    pub async fn sign_in(&self, document: &Document, code: &str, now: DateTime<Utc>) -> AppResult<Session> {
        let person = self.store.person(&document.key()).await?.ok_or_else(|| {
            AppError::invalid("code", "no code is waiting for this number (or it expired): ask for a new one")
        })?;
        self.redeem(&person, Purpose::SignIn, code, now).await?;
        let rng = SystemRandom::new();
        let mut secret = [0u8; 24];
        let mut id = [0u8; 4];
        rng.fill(&mut secret).map_err(|_| AppError::Internal("no system randomness".into()))?;
        rng.fill(&mut id).map_err(|_| AppError::Internal("no system randomness".into()))?;
        let token = format!("txc_{}", hex(&secret));
        let hash = hex(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
        let expires_at = now + SESSION_TTL;
        self.store.create_session(&format!("ses_{}", hex(&id)), &hash, person.id, now, expires_at).await?;
        Ok(Session { token, expires_at })
    }

    /// Links a family member who consented with their own code.
    pub async fn link_member(
        &self,
        citizen_id: i64,
        member: &Document,
        code: &str,
        now: DateTime<Utc>,
    ) -> AppResult<FamilyMember> {
        let person = self.store.person(&member.key()).await?.ok_or_else(|| {
            AppError::invalid("code", "no code is waiting for this number (or it expired): ask for a new one")
        })?;
        if person.id == citizen_id {
            return Err(AppError::invalid("document_number", "this is your own number"));
        }
        self.redeem(&person, Purpose::Link { citizen_id }, code, now).await?;
        let id = self
            .store
            .request_family_link(citizen_id, person.id, "linked", Some("member's code"), now, MAX_FAMILY)
            .await?
            .ok_or_else(too_many_members)?;
        self.member_view(id).await
    }

    /// Asks a registry officer to approve a link to a minor (under 18, by the ID number).
    pub async fn ask_for_minor(
        &self,
        citizen_id: i64,
        member: &Document,
        now: DateTime<Utc>,
    ) -> AppResult<FamilyMember> {
        match age(member, now) {
            Some(a) if a < 18 => {}
            Some(_) => {
                return Err(AppError::invalid(
                    "document_number",
                    "an adult links with their own code (ask for one with /citizen/family/code)",
                ));
            }
            None => {
                return Err(AppError::invalid(
                    "document_kind",
                    "a minor is recognised by a resident ID number; others link with their own code",
                ));
            }
        }
        let input = PersonInput { document: member.clone(), name: None, phone: None, residence_region: None };
        let member_id = self.store.upsert_person(&input, now).await?;
        if member_id == citizen_id {
            return Err(AppError::invalid("document_number", "this is your own number"));
        }
        let id = self
            .store
            .request_family_link(citizen_id, member_id, "pending", None, now, MAX_FAMILY)
            .await?
            .ok_or_else(too_many_members)?;
        self.member_view(id).await
    }

    /// A registry officer's decision on a pending link.
    pub async fn decide_link(
        &self,
        link: i64,
        approve: bool,
        officer: &str,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> AppResult<FamilyMember> {
        let to = if approve { "linked" } else { "refused" };
        if !self.store.decide_family_link(link, "pending", to, officer, reason, now).await? {
            return match self.store.family_link(link).await? {
                None => Err(AppError::NotFound(format!("no family link {link}"))),
                Some(l) => Err(AppError::Conflict(format!("link {link} is {} already", l.status))),
            };
        }
        self.member_view(link).await
    }

    /// Ends a link (the citizen's choice).
    pub async fn remove_link(&self, citizen_id: i64, link: i64, now: DateTime<Utc>) -> AppResult<FamilyMember> {
        let l = self.own_link(citizen_id, link).await?;
        for from in ["linked", "pending"] {
            if self.store.decide_family_link(l.id, from, "removed", "citizen", None, now).await? {
                break;
            }
        }
        self.member_view(link).await
    }

    /// The citizen's family links, masked.
    pub async fn family(&self, citizen_id: i64) -> AppResult<Vec<FamilyMember>> {
        let mut out = Vec::new();
        for l in self.store.family_links(citizen_id).await? {
            out.push(self.member_view(l.id).await?);
        }
        Ok(out)
    }

    /// Links awaiting a registry officer, oldest first, masked.
    pub async fn pending_links(&self, now: DateTime<Utc>) -> AppResult<Vec<PendingLink>> {
        let mut out = Vec::new();
        for l in self.store.pending_family_links().await? {
            let citizen = self.person_record(l.citizen_id).await?;
            let member = self.person_record(l.member_id).await?;
            let member_doc = Document::from_key(&member.doc_key);
            out.push(PendingLink {
                link: l.id,
                citizen_name: citizen.name.as_deref().map(mask::name),
                citizen_document: mask::document_number(&citizen.doc_number),
                member_name: member.name.as_deref().map(mask::name),
                member_document: mask::document_number(&member.doc_number),
                member_age: member_doc.as_ref().and_then(|d| age(d, now)),
                requested_at: l.requested_at,
            });
        }
        Ok(out)
    }

    /// Whether a citizen may act for `person`: themselves, or a linked family member.
    pub async fn acts_for(&self, citizen_id: i64, person: i64) -> AppResult<bool> {
        if citizen_id == person {
            return Ok(true);
        }
        Ok(self.store.family_links(citizen_id).await?.iter().any(|l| l.status == "linked" && l.member_id == person))
    }

    /// The person a citizen acts for through `link` (which must be theirs, and linked).
    pub async fn member_of(&self, citizen_id: i64, link: i64) -> AppResult<i64> {
        let l = self.own_link(citizen_id, link).await?;
        if l.status != "linked" {
            return Err(AppError::Forbidden(format!("link {link} is {}: you may not act for this person", l.status)));
        }
        Ok(l.member_id)
    }

    async fn own_link(&self, citizen_id: i64, link: i64) -> AppResult<tongxing_store::FamilyLink> {
        // Someone else's link is answered as if it did not exist.
        match self.store.family_link(link).await? {
            Some(l) if l.citizen_id == citizen_id => Ok(l),
            _ => Err(AppError::NotFound(format!("you have no family link {link}"))),
        }
    }

    pub(crate) async fn person_record(&self, id: i64) -> AppResult<PersonRecord> {
        self.store.person_by_id(id).await?.ok_or_else(|| AppError::Internal(format!("person {id} is missing")))
    }

    async fn member_view(&self, link: i64) -> AppResult<FamilyMember> {
        let l =
            self.store.family_link(link).await?.ok_or_else(|| AppError::NotFound(format!("no family link {link}")))?;
        let member = self.person_record(l.member_id).await?;
        Ok(FamilyMember {
            link: l.id,
            status: l.status,
            name: member.name.as_deref().map(mask::name),
            document: mask::document_number(&member.doc_number),
            requested_at: l.requested_at,
            reason: l.reason,
        })
    }
}

/// Who is reading a record: a token's id and role, as the access log keeps them.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    pub token_id: &'a str,
    pub role: &'a str,
}

/// One read of a person's record, as that person sees it ("who looked at my record").
#[derive(Debug, Serialize, ToSchema)]
pub struct AccessView {
    #[serde(serialize_with = "time::serialize")]
    pub at: DateTime<Utc>,
    /// The reader's role: registry, health, admin, citizen (a linked family member), ….
    pub role: String,
    /// The reader's token, masked: its kind and first two characters (`tok_1a******`).
    pub who: String,
    /// read, reveal (unmasked), read-access-log, or pass (a family member's pass).
    pub action: String,
    /// Why, as the reader gave it.
    pub purpose: String,
}

/// A token id as a citizen may see it: the prefix that says what it is, then two characters.
fn mask_token_id(id: &str) -> String {
    match id.split_once('_') {
        Some((kind, rest)) => {
            let shown: String = rest.chars().take(2).collect();
            format!("{kind}_{shown}{}", "*".repeat(rest.chars().count().saturating_sub(2)))
        }
        None => mask::name(id),
    }
}

impl App {
    /// A linked family member's pass, the read written to the member's access log.
    pub async fn member_pass(
        &self,
        citizen_id: i64,
        link: i64,
        reader: Reader<'_>,
        now: DateTime<Utc>,
    ) -> AppResult<crate::pass::PassView> {
        let member = self.member_of(citizen_id, link).await?;
        self.store
            .log_access(&tongxing_store::AccessLogEntry {
                at: now,
                token_id: reader.token_id.to_string(),
                role: reader.role.to_string(),
                person_id: member,
                action: "pass".into(),
                purpose: "family member's pass".into(),
            })
            .await?;
        self.pass_view(member, now).await
    }

    /// Who read this person's record, newest first, each reader masked.
    pub async fn my_access_log(&self, person_id: i64) -> AppResult<Vec<AccessView>> {
        let mut out: Vec<AccessView> = self
            .store
            .access_log(person_id)
            .await?
            .into_iter()
            .map(|e| AccessView {
                at: e.at,
                role: e.role,
                who: mask_token_id(&e.token_id),
                action: e.action,
                purpose: e.purpose,
            })
            .collect();
        out.reverse();
        Ok(out)
    }
}

fn too_many_members() -> AppError {
    AppError::Conflict(format!("a citizen may act for at most {MAX_FAMILY} family members; remove one first"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_hashes_salted() {
        let rng = SystemRandom::new();
        for _ in 0..100 {
            let c = new_code(&rng).unwrap();
            assert_eq!(c.len(), 6);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
        assert_ne!(hash_code("a", "123456"), hash_code("b", "123456"));
        assert!(same(&hash_code("a", "1"), &hash_code("a", "1")));
        assert!(!same(&hash_code("a", "1"), &hash_code("a", "2")));
    }

    #[test]
    fn readers_are_masked() {
        assert_eq!(mask_token_id("tok_1a2b3c4d"), "tok_1a******");
        assert_eq!(mask_token_id("ses_ab"), "ses_ab");
        assert_eq!(mask_token_id("serve"), "s****");
    }

    #[test]
    fn ages_from_the_id_number() {
        let now = DateTime::parse_from_rfc3339("2021-11-17T08:00:00+08:00").unwrap().with_timezone(&Utc);
        let id = |first17: &str| {
            let n = format!("{first17}{}", tongxing_domain::ids::id_check_char(first17.as_bytes()));
            Document::parse(DocumentKind::ResidentId, &n, crate::input::today(now)).unwrap()
        };
        assert_eq!(age(&id("11010520031117001"), now), Some(18));
        assert_eq!(age(&id("11010520031118001"), now), Some(17));
        let passport = Document::parse(DocumentKind::Passport, "E12345678", crate::input::today(now)).unwrap();
        assert_eq!(age(&passport, now), None);
    }
}
