//! What the edges receive, parsed into domain values: a document, a sample, a commuter
//! application, the small optional fields. The HTTP API and the CSV imports both call these,
//! so a row refused by one is refused by the other with the same words. Errors name the
//! field, prefixed by `at` (`results[3].`, `occupants[1].`).

use chrono::{DateTime, Duration, NaiveDate, Utc};
use tongxing_domain::Policy;
use tongxing_domain::facts::{CodeColour, CommuterKind, SiteKind, TestResult};
use tongxing_domain::ids::{Document, DocumentKind, RegionCode};
use tongxing_domain::text::{self, EmployerName, LabCode, PersonName, Reason, SampleId, SiteCode, TextError};
use tongxing_domain::uscc::Uscc;
use tongxing_store::{CommuterApplication, PersonInput, SampleInput};

use crate::{AppError, AppResult};

/// How far ahead of the server's clock a sampling time may be (clock skew between systems).
pub const CLOCK_SKEW: Duration = Duration::minutes(5);

/// Proofs of residence the police accept.
pub const RESIDENCE_PROOFS: &[&str] = &["household_register", "property_deed", "lease", "residents_committee_letter"];

/// Names the field of a parse result's error: `RegionCode::parse(v).at("residence_region")`.
pub trait At<T> {
    fn at(self, field: &str) -> AppResult<T>;
}

impl<T, E: std::fmt::Display> At<T> for Result<T, E> {
    fn at(self, field: &str) -> AppResult<T> {
        self.map_err(|e| AppError::invalid(field, e))
    }
}

/// Today's date in the display zone (Asia/Shanghai), which bounds birth dates.
pub fn today(now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&tongxing_domain::shanghai()).date_naive()
}

/// A document from its two fields (the kind defaults to `resident_id`).
pub fn document(kind: Option<&str>, number: &str, at: &str, now: DateTime<Utc>) -> AppResult<Document> {
    let kind = DocumentKind::parse(kind.unwrap_or("")).at(&format!("{at}document_kind"))?;
    Document::parse(kind, number, today(now)).at(&format!("{at}document_number"))
}

/// An optional text field: absent or blank is `None`; otherwise it must parse.
pub fn optional<T>(field: &str, v: Option<&str>, parse: fn(&str) -> Result<T, TextError>) -> AppResult<Option<T>> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => parse(v).map(Some).at(field),
    }
}

/// A mainland mobile number: 11 digits starting with 1.
pub fn phone(field: &str, v: Option<&str>) -> AppResult<Option<String>> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some(p) if p.len() == 11 && p.starts_with('1') && p.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(Some(p.to_string()))
        }
        Some(p) => Err(AppError::invalid(
            field,
            format!("{} is not a mainland mobile number: 11 digits starting with 1", text::quote(p)),
        )),
    }
}

/// A county-level region code in use today.
pub fn region(field: &str, v: Option<&str>) -> AppResult<Option<RegionCode>> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some(r) => RegionCode::parse(r).map(Some).at(field),
    }
}

/// A sample as a lab or test point sends it, its time already read (the API reads RFC 3339,
/// the CSV import the labs' local time).
pub struct RawSample<'a> {
    pub lab: &'a str,
    pub sample_id: &'a str,
    pub document_kind: Option<&'a str>,
    pub document_number: &'a str,
    pub sampled_at: DateTime<Utc>,
    pub site: &'a str,
    pub site_kind: &'a str,
    pub result: &'a str,
}

/// Validates one sample; a sampling time more than [`CLOCK_SKEW`] ahead of `now` is refused.
pub fn sample(r: &RawSample<'_>, at: &str, now: DateTime<Utc>) -> AppResult<SampleInput> {
    let f = |name: &str| format!("{at}{name}");
    let lab = LabCode::parse(r.lab).at(&f("lab"))?.into_string();
    let sample_id = SampleId::parse(r.sample_id).at(&f("sample_id"))?.into_string();
    let document = document(r.document_kind, r.document_number, at, now)?;
    if r.sampled_at > now + CLOCK_SKEW {
        return Err(AppError::invalid(
            f("sampled_at"),
            format!(
                "{} is in the future (the server's clock reads {})",
                tongxing_domain::time::rfc3339(r.sampled_at),
                tongxing_domain::time::rfc3339(now)
            ),
        ));
    }
    let site = SiteCode::parse(r.site).at(&f("site"))?.into_string();
    let site_kind = SiteKind::parse(r.site_kind).at(&f("site_kind"))?;
    let result = TestResult::parse(r.result).at(&f("result"))?;
    Ok(SampleInput { lab, sample_id, document, sampled_at: r.sampled_at, site, site_kind, result })
}

/// A commuter application as a registry officer or the police's list gives it.
pub struct RawApplication<'a> {
    pub name: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub kind: &'a str,
    pub residence_region: &'a str,
    pub residence_proof: &'a str,
    pub employer_name: &'a str,
    pub employer_uscc: &'a str,
    pub work_region: &'a str,
}

/// A checked application: the person's name and phone, and the application itself.
pub struct ParsedApplication {
    pub name: Option<String>,
    pub phone: Option<String>,
    pub application: CommuterApplication,
}

/// Checks an application against the policy: the residence must be in the surrounding
/// regions, the workplace in the city.
pub fn application(a: &RawApplication<'_>, policy: &Policy, at: &str) -> AppResult<ParsedApplication> {
    let f = |name: &str| format!("{at}{name}");
    let kind = CommuterKind::parse(a.kind).at(&f("kind"))?;
    let residence_region = region(&f("residence_region"), Some(a.residence_region))?
        .ok_or_else(|| AppError::invalid(f("residence_region"), "is required"))?;
    if policy.is_surrounding(residence_region).is_none() {
        let list: Vec<String> =
            policy.surrounding_regions.iter().map(|r| format!("{} ({}xxxx)", r.name, r.prefix)).collect();
        return Err(AppError::invalid(
            f("residence_region"),
            format!(
                "{residence_region} {} is not in the surrounding regions whose residents may apply: {}",
                residence_region.name(),
                list.join(", ")
            ),
        ));
    }
    let residence_proof = a.residence_proof.trim().to_string();
    if !RESIDENCE_PROOFS.contains(&residence_proof.as_str()) {
        return Err(AppError::invalid(
            f("residence_proof"),
            format!("{} is not one of: {}", text::quote(&residence_proof), RESIDENCE_PROOFS.join(", ")),
        ));
    }
    let employer_name = EmployerName::parse(a.employer_name).at(&f("employer_name"))?.into_string();
    let employer_uscc = Uscc::parse(a.employer_uscc).at(&f("employer_uscc"))?.to_string();
    let work_region = region(&f("work_region"), Some(a.work_region))?
        .ok_or_else(|| AppError::invalid(f("work_region"), "is required"))?;
    if !policy.is_city(work_region) {
        return Err(AppError::invalid(
            f("work_region"),
            format!("{work_region} {} is not in the city", work_region.name()),
        ));
    }
    let name = optional(&f("name"), a.name, PersonName::parse)?.map(PersonName::into_string);
    let phone = phone(&f("phone"), a.phone)?;
    Ok(ParsedApplication {
        name,
        phone,
        application: CommuterApplication {
            kind,
            residence_region,
            residence_proof,
            employer_name,
            employer_uscc,
            work_region,
        },
    })
}

/// Parses an RFC 3339 time with an offset. A `+` that a query string turned into a space is
/// read as the `+` it was.
pub fn time(field: &str, v: &str) -> AppResult<DateTime<Utc>> {
    let t = v.trim();
    let fixed;
    let t = match t.rfind(' ') {
        Some(i) if i >= 10 && t.len() - i - 1 == 5 && t.as_bytes()[i + 3] == b':' => {
            fixed = format!("{}+{}", &t[..i], &t[i + 1..]);
            fixed.as_str()
        }
        _ => t,
    };
    DateTime::parse_from_rfc3339(t).map(|t| t.with_timezone(&Utc)).map_err(|_| {
        AppError::invalid(
            field,
            format!("{} is not RFC 3339 with an offset, e.g. 2021-11-17T08:30:00+08:00", text::quote(v)),
        )
    })
}

/// The yellow "pop-up" (弹窗) reasons of the Beijing Health Kit.
pub const POPUPS: &[(&str, &str)] = &[
    ("risk_county_stay", "14天内到过有本土病例的县（市、区、旗）"),
    ("inbound_quarantine", "入境隔离未满"),
    ("spatiotemporal_link", "与病例或风险区域时空关联"),
    ("test_overdue", "未按要求完成核酸检测"),
    ("border_county", "来自陆地边境县"),
];

/// A health-code colour as the health authority sets it (one person, or a row of a file).
pub struct RawColour<'a> {
    pub document_kind: Option<&'a str>,
    pub document_number: &'a str,
    pub colour: &'a str,
    pub reason: Option<&'a str>,
    pub popup: Option<&'a str>,
    pub expires_at: Option<&'a str>,
}

/// A checked colour change.
pub type ColourChange = tongxing_store::ColourRow;

/// Checks a colour change: yellow and red need a reason (or a pop-up code, whose text becomes
/// the reason); a lapse time must be in the future.
pub fn colour(r: &RawColour<'_>, at: &str, now: DateTime<Utc>) -> AppResult<ColourChange> {
    let f = |name: &str| format!("{at}{name}");
    let document = document(r.document_kind, r.document_number, at, now)?;
    let colour = CodeColour::parse(r.colour).at(&f("colour"))?;
    let popup = match r.popup.map(str::trim) {
        None | Some("") => None,
        Some(p) => Some(POPUPS.iter().find(|(k, _)| *k == p).ok_or_else(|| {
            let keys: Vec<_> = POPUPS.iter().map(|(k, _)| *k).collect();
            AppError::invalid(f("popup"), format!("{} is not one of: {}", text::quote(p), keys.join(", ")))
        })?),
    };
    let expires_at = match r.expires_at.map(str::trim) {
        None | Some("") => None,
        Some(t) => Some(time(&f("expires_at"), t)?),
    };
    let reason = match (optional(&f("reason"), r.reason, Reason::parse)?.map(Reason::into_string), popup) {
        (Some(r), _) => Some(r),
        (None, Some((_, text))) => Some((*text).to_string()),
        (None, None) if colour != CodeColour::Green => {
            return Err(AppError::invalid(f("reason"), "a yellow or red code needs a reason (or a popup code)"));
        }
        (None, None) => None,
    };
    if let Some(e) = expires_at
        && e <= now
    {
        return Err(AppError::invalid(f("expires_at"), "must be in the future"));
    }
    Ok(ColourChange {
        person: PersonInput { document, name: None, phone: None, residence_region: None },
        colour,
        reason,
        expires_at,
    })
}
