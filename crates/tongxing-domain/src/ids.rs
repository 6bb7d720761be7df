//! Identity documents, parsed at the edge: a value of these types is always valid.
//!
//! Resident ID numbers follow GB 11643-1999: a 6-digit GB/T 2260 region code (the place of birth
//! registration, which may no longer exist), an 8-digit birth date, a 3-digit sequence and a
//! check character (ISO 7064 MOD 11-2).

use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Why a document number was refused. Messages are for the person typing the number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("the number is empty")]
    Empty,
    #[error(
        "this is a 15-digit first-generation ID number, which is no longer accepted; use the 18-character number on the second-generation card"
    )]
    FirstGeneration,
    #[error("a resident ID number has 18 characters (17 digits and a digit or X), got {0}")]
    Length(usize),
    #[error("character {position} ({found:?}) is not allowed: the first 17 must be digits, the last a digit or X")]
    Character { position: usize, found: char },
    #[error(
        "the check character is {found}, but the first 17 digits give {expected}: the number was probably mistyped"
    )]
    CheckCharacter { expected: char, found: char },
    #[error("the birth date {0} is not a real calendar date")]
    BirthDate(String),
    #[error("the birth date {0} is in the future")]
    FutureBirthDate(NaiveDate),
    #[error("the birth date {0} is before 1890")]
    AncientBirthDate(NaiveDate),
    #[error("the region code {0} is not a GB/T 2260 division code of any year from 1980 to 2022")]
    UnknownRegion(String),
    #[error("a {kind} number is {expected}, got {found}")]
    Format { kind: &'static str, expected: &'static str, found: String },
    #[error("unknown document type {0}; accepted: resident_id, passport, hk_macao_permit, taiwan_permit")]
    UnknownKind(String),
}

/// One administrative division of the GB/T 2260 history.
#[derive(Debug, Clone)]
pub struct Region {
    pub code: u32,
    pub name: &'static str,
    pub first_seen: u32,
    pub last_seen: u32,
}

impl Region {
    /// Whether the code is still in use (seen in the latest revision shipped, 2022-10).
    pub fn exists_today(&self) -> bool {
        self.last_seen >= LATEST_REVISION
    }
}

const LATEST_REVISION: u32 = 202210;
static REGIONS_CSV: &str = include_str!("../data/gbt2260-regions.csv");

static REGIONS: LazyLock<HashMap<u32, Region>> = LazyLock::new(|| {
    let mut map = HashMap::with_capacity(7200);
    for line in REGIONS_CSV.lines().skip(1) {
        let line = line.trim_end_matches('\r');
        let mut f = line.split(',');
        let (Some(code), Some(name), Some(first), Some(last)) = (f.next(), f.next(), f.next(), f.next()) else {
            continue;
        };
        let (Ok(code), Ok(first_seen), Ok(last_seen)) = (code.parse(), first.parse(), last.parse()) else {
            continue;
        };
        map.insert(code, Region { code, name, first_seen, last_seen });
    }
    map
});

/// Looks up a division code in the 1980-2022 history.
pub fn region(code: u32) -> Option<&'static Region> {
    REGIONS.get(&code)
}

/// Whether `code` is a region code a resident ID number may carry: any code of the history,
/// plus 830000, used only by Taiwan residents' residence permits.
pub fn is_known_id_region(code: u32) -> bool {
    code == 830000 || REGIONS.contains_key(&code)
}

/// A validated county-level (or higher) region code that exists today, e.g. a residence region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RegionCode(u32);

impl RegionCode {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let s = s.trim();
        if s.len() != 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IdError::Format {
                kind: "region code",
                expected: "6 digits (GB/T 2260)",
                found: crate::text::quote(s),
            });
        }
        let code: u32 = s.parse().expect("six digits");
        match region(code) {
            Some(r) if r.exists_today() => Ok(RegionCode(code)),
            Some(_) => Err(IdError::Format {
                kind: "region code",
                expected: "a division code in use today (this one was abolished)",
                found: crate::text::quote(s),
            }),
            None => Err(IdError::UnknownRegion(s.into())),
        }
    }
    pub fn code(self) -> u32 {
        self.0
    }
    pub fn name(self) -> &'static str {
        region(self.0).map(|r| r.name).unwrap_or("")
    }
    /// Whether this code starts with `prefix` (e.g. "12" for Tianjin, "1310" for Langfang).
    pub fn has_prefix(self, prefix: &str) -> bool {
        self.to_string().starts_with(prefix)
    }
}

impl fmt::Display for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:06}", self.0)
    }
}
impl TryFrom<String> for RegionCode {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        RegionCode::parse(&s)
    }
}
impl From<RegionCode> for String {
    fn from(r: RegionCode) -> String {
        r.to_string()
    }
}

/// A valid 18-character resident ID number (居民身份证号码), upper-case X.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResidentId(String);

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK_CHARS: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// The check character of the first 17 digits (which must be ASCII digits).
pub fn id_check_char(first17: &[u8]) -> char {
    let sum: u32 = first17.iter().zip(WEIGHTS).map(|(d, w)| u32::from(d - b'0') * w).sum();
    CHECK_CHARS[(sum % 11) as usize]
}

impl ResidentId {
    /// Parses and fully validates a number; `today` bounds the birth date.
    /// A lower-case x (common from keyboards and some card readers) is accepted as X.
    pub fn parse(input: &str, today: NaiveDate) -> Result<Self, IdError> {
        let s = input.trim().to_ascii_uppercase();
        if s.is_empty() {
            return Err(IdError::Empty);
        }
        let n = s.chars().count();
        if n == 15 && s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IdError::FirstGeneration);
        }
        if n != 18 {
            return Err(IdError::Length(n));
        }
        for (i, c) in s.chars().enumerate() {
            let ok = if i < 17 { c.is_ascii_digit() } else { c.is_ascii_digit() || c == 'X' };
            if !ok {
                return Err(IdError::Character { position: i + 1, found: c });
            }
        }
        let b = s.as_bytes();
        let expected = id_check_char(&b[..17]);
        let found = b[17] as char;
        if expected != found {
            return Err(IdError::CheckCharacter { expected, found });
        }
        let date_str = &s[6..14];
        let birth = NaiveDate::parse_from_str(date_str, "%Y%m%d").map_err(|_| IdError::BirthDate(date_str.into()))?;
        if birth > today {
            return Err(IdError::FutureBirthDate(birth));
        }
        if birth < NaiveDate::from_ymd_opt(1890, 1, 1).expect("valid date") {
            return Err(IdError::AncientBirthDate(birth));
        }
        let region: u32 = s[..6].parse().expect("six digits");
        if !is_known_id_region(region) {
            return Err(IdError::UnknownRegion(s[..6].into()));
        }
        Ok(ResidentId(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn birth_date(&self) -> NaiveDate {
        NaiveDate::parse_from_str(&self.0[6..14], "%Y%m%d").expect("validated at parse")
    }
    pub fn region_code(&self) -> u32 {
        self.0[..6].parse().expect("validated at parse")
    }
    /// Sex from the sequence number: odd = male, even = female.
    pub fn is_male(&self) -> bool {
        (self.0.as_bytes()[16] - b'0') % 2 == 1
    }
}

impl fmt::Display for ResidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The kinds of document a person can be identified by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    /// 居民身份证 (and the residence permits of Hong Kong, Macao and Taiwan residents, same format).
    ResidentId,
    Passport,
    /// 港澳居民来往内地通行证 (home-return permit).
    HkMacaoPermit,
    /// 台湾居民来往大陆通行证.
    TaiwanPermit,
}

impl DocumentKind {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        match s.trim() {
            "resident_id" | "" => Ok(Self::ResidentId),
            "passport" => Ok(Self::Passport),
            "hk_macao_permit" => Ok(Self::HkMacaoPermit),
            "taiwan_permit" => Ok(Self::TaiwanPermit),
            other => Err(IdError::UnknownKind(crate::text::quote(other))),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ResidentId => "resident_id",
            Self::Passport => "passport",
            Self::HkMacaoPermit => "hk_macao_permit",
            Self::TaiwanPermit => "taiwan_permit",
        }
    }
    fn key_prefix(self) -> &'static str {
        match self {
            Self::ResidentId => "ID",
            Self::Passport => "PP",
            Self::HkMacaoPermit => "HM",
            Self::TaiwanPermit => "TW",
        }
    }
}

/// A validated identity document: kind and normalised number.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Document {
    kind: DocumentKind,
    number: String,
}

impl Document {
    /// Parses a document of the given kind; `today` bounds ID birth dates.
    pub fn parse(kind: DocumentKind, number: &str, today: NaiveDate) -> Result<Self, IdError> {
        let number = match kind {
            DocumentKind::ResidentId => ResidentId::parse(number, today)?.0,
            DocumentKind::Passport => {
                check_format(number, "passport", "5 to 17 letters and digits (e.g. E12345678)", |s| {
                    (5..=17).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
                })?
            }
            DocumentKind::HkMacaoPermit => check_format(
                number,
                "Hong Kong/Macao permit",
                "H or M followed by 8 or 10 digits (e.g. H12345678)",
                |s| {
                    let b = s.as_bytes();
                    (s.len() == 9 || s.len() == 11)
                        && (b[0] == b'H' || b[0] == b'M')
                        && b[1..].iter().all(u8::is_ascii_digit)
                },
            )?,
            DocumentKind::TaiwanPermit => check_format(
                number,
                "Taiwan permit",
                "8 digits, or 10 digits with an optional trailing letter (e.g. 12345678)",
                |s| {
                    let b = s.as_bytes();
                    s.len() == 8 && b.iter().all(u8::is_ascii_digit)
                        || (s.len() == 10 || s.len() == 11)
                            && b[..10].iter().all(u8::is_ascii_digit)
                            && b[10..].iter().all(u8::is_ascii_alphabetic)
                },
            )?,
        };
        Ok(Document { kind, number })
    }

    /// Parses the stable key produced by [`Document::key`] (e.g. `ID:11010519491231002X`),
    /// without the birth-date bound (keys come from the system's own records).
    pub fn from_key(key: &str) -> Option<Self> {
        let (prefix, number) = key.split_once(':')?;
        let kind =
            [DocumentKind::ResidentId, DocumentKind::Passport, DocumentKind::HkMacaoPermit, DocumentKind::TaiwanPermit]
                .into_iter()
                .find(|k| k.key_prefix() == prefix)?;
        Some(Document { kind, number: number.to_string() })
    }

    pub fn kind(&self) -> DocumentKind {
        self.kind
    }
    pub fn number(&self) -> &str {
        &self.number
    }
    /// A stable key unique across kinds, used to identify the person in storage.
    pub fn key(&self) -> String {
        format!("{}:{}", self.kind.key_prefix(), self.number)
    }
}

fn check_format(
    number: &str,
    kind: &'static str,
    expected: &'static str,
    ok: impl Fn(&str) -> bool,
) -> Result<String, IdError> {
    let s = number.trim().to_ascii_uppercase();
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if s.is_ascii() && ok(&s) {
        Ok(s)
    } else {
        Err(IdError::Format { kind, expected, found: crate::text::quote(number.trim()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2021, 11, 17).unwrap()
    }

    /// Builds a valid number from its first 17 digits.
    fn with_check(first17: &str) -> String {
        format!("{first17}{}", id_check_char(first17.as_bytes()))
    }

    #[test]
    fn standard_example_is_valid() {
        let id = ResidentId::parse("11010519491231002X", today()).unwrap();
        assert_eq!(id.birth_date(), NaiveDate::from_ymd_opt(1949, 12, 31).unwrap());
        assert_eq!(id.region_code(), 110105);
        assert!(!id.is_male());
    }

    #[test]
    fn lowercase_x_is_normalised() {
        let id = ResidentId::parse("11010519491231002x", today()).unwrap();
        assert_eq!(id.as_str(), "11010519491231002X");
    }

    #[test]
    fn wrong_check_character() {
        assert_eq!(
            ResidentId::parse("110105194912310021", today()),
            Err(IdError::CheckCharacter { expected: 'X', found: '1' })
        );
    }

    #[test]
    fn february_31st_is_not_a_date() {
        let n = with_check("11010519490231002");
        assert_eq!(ResidentId::parse(&n, today()), Err(IdError::BirthDate("19490231".into())));
    }

    #[test]
    fn future_birth_date() {
        let n = with_check("11010520211118002");
        assert!(matches!(ResidentId::parse(&n, today()), Err(IdError::FutureBirthDate(_))));
        // The same number is fine once the date has come.
        assert!(ResidentId::parse(&n, NaiveDate::from_ymd_opt(2021, 11, 18).unwrap()).is_ok());
    }

    #[test]
    fn unknown_region() {
        let n = with_check("99010519491231002");
        assert_eq!(ResidentId::parse(&n, today()), Err(IdError::UnknownRegion("990105".into())));
    }

    #[test]
    fn abolished_region_is_still_valid_for_ids() {
        // 130182 藁城市 existed 1995-2013; people registered there keep the code.
        let n = with_check("13018219800101001");
        assert!(ResidentId::parse(&n, today()).is_ok());
        assert!(RegionCode::parse("130182").is_err());
    }

    #[test]
    fn taiwan_residence_permit_region() {
        let n = with_check("83000019800101001");
        assert!(ResidentId::parse(&n, today()).is_ok());
    }

    #[test]
    fn fifteen_digits_refused_with_explanation() {
        let err = ResidentId::parse("110105491231002", today()).unwrap_err();
        assert_eq!(err, IdError::FirstGeneration);
        assert!(err.to_string().contains("15-digit"));
    }

    #[test]
    fn bad_lengths_and_characters() {
        assert_eq!(ResidentId::parse("", today()), Err(IdError::Empty));
        assert_eq!(ResidentId::parse("1101051949", today()), Err(IdError::Length(10)));
        assert_eq!(
            ResidentId::parse("1101051949123100AX", today()),
            Err(IdError::Character { position: 17, found: 'A' })
        );
    }

    #[test]
    fn other_documents() {
        let d = Document::parse(DocumentKind::Passport, "e12345678", today()).unwrap();
        assert_eq!(d.key(), "PP:E12345678");
        assert!(Document::parse(DocumentKind::Passport, "E1", today()).is_err());
        assert!(Document::parse(DocumentKind::HkMacaoPermit, "H12345678", today()).is_ok());
        assert!(Document::parse(DocumentKind::HkMacaoPermit, "X12345678", today()).is_err());
        assert!(Document::parse(DocumentKind::TaiwanPermit, "12345678", today()).is_ok());
        assert!(Document::parse(DocumentKind::TaiwanPermit, "1234567", today()).is_err());
        assert_eq!(Document::from_key(&d.key()), Some(d));
    }

    #[test]
    fn region_codes() {
        assert_eq!(RegionCode::parse("131082").unwrap().name(), "三河市");
        assert!(RegionCode::parse("13108").is_err());
        assert!(RegionCode::parse("999999").is_err());
        assert!(RegionCode::parse("131082").unwrap().has_prefix("1310"));
    }

    proptest! {
        /// Any 17 digits with a known region and a real past date, plus the computed check
        /// character, parse; changing the check character breaks it.
        #[test]
        fn computed_check_character_always_validates(seq in 0u32..1000, days in 0i64..40000) {
            let birth = NaiveDate::from_ymd_opt(1910, 1, 1).unwrap() + chrono::Duration::days(days);
            prop_assume!(birth <= today());
            let first17 = format!("110105{}{:03}", birth.format("%Y%m%d"), seq);
            let good = with_check(&first17);
            prop_assert!(ResidentId::parse(&good, today()).is_ok());
            let check = good.chars().last().unwrap();
            for c in CHECK_CHARS.iter().filter(|&&c| c != check) {
                let bad = format!("{first17}{c}");
                let is_check_error = matches!(ResidentId::parse(&bad, today()), Err(IdError::CheckCharacter { .. }));
                prop_assert!(is_check_error);
            }
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,24}") {
            let _ = ResidentId::parse(&s, today());
            let _ = Document::parse(DocumentKind::Passport, &s, today());
            let _ = Document::parse(DocumentKind::HkMacaoPermit, &s, today());
            let _ = Document::parse(DocumentKind::TaiwanPermit, &s, today());
        }
    }
}
