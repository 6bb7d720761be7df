//! Entry policies as versioned data. The policy in force is loaded at start-up from a JSON file
//! (the built-in ones live in `policies/` of this crate) and passed into every decision.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::RegionCode;

/// A region (or group of regions) by code prefix, e.g. `"12"` Tianjin, `"1310"` Langfang.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegionPrefix {
    pub prefix: String,
    pub name: String,
}

/// A designated service-area test point (临京服务区检测点).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestPoint {
    /// Site identifier labs and test points use in their uploads.
    pub id: String,
    pub name_zh: String,
    pub name_en: String,
    /// Expressway code, e.g. "G4".
    pub road: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Stable identifier of the rule set, e.g. "beijing-2021-11-17".
    pub id: String,
    /// Version of this identifier's content; recorded on every entry event.
    pub version: String,
    pub name_zh: String,
    pub name_en: String,
    pub valid_from: DateTime<Utc>,
    #[serde(default)]
    pub valid_to: Option<DateTime<Utc>>,
    /// A visitor's negative test must be sampled within this many hours (inclusive).
    pub nat_window_hours: i64,
    /// A certified commuter's test, after the first check, within this many days.
    pub commuter_window_days: i64,
    /// A certified commuter's first check needs a test within this many hours.
    pub commuter_first_check_hours: i64,
    /// A pending service-area sample allows conditional entry for this many hours.
    pub commitment_window_hours: i64,
    /// How long an approved commuter certification lasts.
    pub commuter_validity_days: i64,
    /// Where commuters may live.
    pub surrounding_regions: Vec<RegionPrefix>,
    /// Where commuters must work: the city itself.
    pub city_regions: Vec<RegionPrefix>,
    pub designated_test_points: Vec<TestPoint>,
    /// How many days of samples a decision is given. Longer than every window, so that a
    /// deny can say "too old" rather than "no test", and an older positive still counts.
    #[serde(default = "default_lookback_days")]
    pub facts_lookback_days: i64,
    /// How long a signed pass (the QR) is valid after it is issued. Short, so that a screenshot
    /// forwarded to someone else soon expires; the citizen's page fetches a new one.
    #[serde(default = "default_pass_minutes")]
    pub pass_lifetime_minutes: i64,
    /// An offline checkpoint warns when its trust list, rules or revocation list are older.
    #[serde(default = "default_offline_hours")]
    pub offline_data_max_age_hours: i64,
    /// An offline checkpoint refuses to decide when its clock is this far behind a pass's
    /// issue time.
    #[serde(default = "default_clock_tolerance")]
    pub clock_tolerance_seconds: i64,
    /// A sample that let someone in on a commitment letter must have its result within this
    /// many hours of sampling; after that the commitment is overdue (an alert, a yellow code).
    #[serde(default = "default_result_deadline")]
    pub result_deadline_hours: i64,
}

fn default_lookback_days() -> i64 {
    30
}
fn default_pass_minutes() -> i64 {
    15
}
fn default_offline_hours() -> i64 {
    24
}
fn default_clock_tolerance() -> i64 {
    300
}
fn default_result_deadline() -> i64 {
    24
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("the policy is not valid JSON of the expected shape: {0}")]
    Json(#[from] serde_json::Error),
    #[error("policy field {field}: {reason}")]
    Field { field: &'static str, reason: String },
}

/// The longest window or validity a policy may set: ten years, in hours and in days. Within it,
/// every duration and every time computed from one stays far inside chrono's range (whose
/// arithmetic panics beyond it).
pub const MAX_WINDOW_HOURS: i64 = 10 * 366 * 24;
pub const MAX_WINDOW_DAYS: i64 = 10 * 366;

static BEIJING_2021_11_17: &str = include_str!("../policies/beijing-2021-11-17.json");

impl Policy {
    /// The policy of 17 November 2021 shipped with the project.
    pub fn beijing_2021_11_17() -> Policy {
        Policy::from_json(BEIJING_2021_11_17).expect("the built-in policy is valid")
    }

    pub fn from_json(text: &str) -> Result<Policy, PolicyError> {
        let p: Policy = serde_json::from_str(text)?;
        p.check()?;
        Ok(p)
    }

    fn check(&self) -> Result<(), PolicyError> {
        let (hours, days) = ((MAX_WINDOW_HOURS, "hours"), (MAX_WINDOW_DAYS, "days"));
        let positive = [
            ("nat_window_hours", self.nat_window_hours, hours),
            ("commuter_window_days", self.commuter_window_days, days),
            ("commuter_first_check_hours", self.commuter_first_check_hours, hours),
            ("commitment_window_hours", self.commitment_window_hours, hours),
            ("commuter_validity_days", self.commuter_validity_days, days),
        ];
        for (field, v, (max, unit)) in positive {
            if v <= 0 {
                return Err(PolicyError::Field { field, reason: format!("must be positive, got {v}") });
            }
            if v > max {
                return Err(PolicyError::Field {
                    field,
                    reason: format!("{v} is too large: at most {max} {unit} (ten years)"),
                });
            }
        }
        for (field, v, range) in [
            ("pass_lifetime_minutes", self.pass_lifetime_minutes, 1..=24 * 60),
            ("offline_data_max_age_hours", self.offline_data_max_age_hours, 1..=24 * 30),
            ("clock_tolerance_seconds", self.clock_tolerance_seconds, 0..=3600),
            ("result_deadline_hours", self.result_deadline_hours, 1..=24 * 14),
        ] {
            if !range.contains(&v) {
                return Err(PolicyError::Field {
                    field,
                    reason: format!("must be from {} to {}, got {v}", range.start(), range.end()),
                });
            }
        }
        if !(0..=MAX_WINDOW_DAYS).contains(&self.facts_lookback_days) {
            return Err(PolicyError::Field {
                field: "facts_lookback_days",
                reason: format!(
                    "must be from 0 to {MAX_WINDOW_DAYS} days (ten years), got {}",
                    self.facts_lookback_days
                ),
            });
        }
        for (field, list) in [("surrounding_regions", &self.surrounding_regions), ("city_regions", &self.city_regions)]
        {
            for r in list {
                if r.prefix.is_empty() || r.prefix.len() > 6 || !r.prefix.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(PolicyError::Field {
                        field,
                        reason: format!("'{}' is not a region-code prefix of 1 to 6 digits", r.prefix),
                    });
                }
            }
        }
        if let Some(to) = self.valid_to
            && to <= self.valid_from
        {
            return Err(PolicyError::Field { field: "valid_to", reason: "must be after valid_from".into() });
        }
        Ok(())
    }

    pub fn nat_window(&self) -> Duration {
        Duration::hours(self.nat_window_hours)
    }
    pub fn commuter_window(&self) -> Duration {
        Duration::days(self.commuter_window_days)
    }
    pub fn commuter_first_check_window(&self) -> Duration {
        Duration::hours(self.commuter_first_check_hours)
    }
    pub fn commitment_window(&self) -> Duration {
        Duration::hours(self.commitment_window_hours)
    }
    /// How far back a decision is given samples: the look-back, and at least every window.
    /// How long after sampling a committed sample's result may take before it is overdue.
    pub fn result_deadline(&self) -> Duration {
        Duration::hours(self.result_deadline_hours)
    }

    /// How long a signed pass is valid.
    pub fn pass_lifetime(&self) -> Duration {
        Duration::minutes(self.pass_lifetime_minutes)
    }

    pub fn lookback(&self) -> Duration {
        Duration::days(self.facts_lookback_days)
            .max(self.nat_window())
            .max(self.commuter_window())
            .max(self.commitment_window())
            .max(self.commuter_first_check_window())
    }

    pub fn in_force_at(&self, at: DateTime<Utc>) -> bool {
        at >= self.valid_from && self.valid_to.is_none_or(|to| at < to)
    }

    pub fn is_surrounding(&self, region: RegionCode) -> Option<&RegionPrefix> {
        self.surrounding_regions.iter().find(|r| region.has_prefix(&r.prefix))
    }
    pub fn is_city(&self, region: RegionCode) -> bool {
        self.city_regions.iter().any(|r| region.has_prefix(&r.prefix))
    }
    pub fn test_point(&self, site: &str) -> Option<&TestPoint> {
        self.designated_test_points.iter().find(|t| t.id == site)
    }
    /// The designated test point on the same road as a checkpoint, if any.
    pub fn test_point_on_road(&self, road: &str) -> Option<&TestPoint> {
        self.designated_test_points.iter().find(|t| t.road.eq_ignore_ascii_case(road))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_policy_loads() {
        let p = Policy::beijing_2021_11_17();
        assert_eq!(p.nat_window_hours, 48);
        assert_eq!(p.commuter_window_days, 14);
        assert_eq!(p.designated_test_points.len(), 13);
        assert!(p.is_surrounding(RegionCode::parse("131082").unwrap()).is_some());
        assert!(p.is_surrounding(RegionCode::parse("120101").unwrap()).is_some());
        assert!(p.is_surrounding(RegionCode::parse("130102").unwrap()).is_none());
        assert!(p.is_city(RegionCode::parse("110105").unwrap()));
    }

    #[test]
    fn invalid_policy_names_the_field() {
        let mut v: serde_json::Value = serde_json::from_str(BEIJING_2021_11_17).unwrap();
        v["nat_window_hours"] = 0.into();
        let err = Policy::from_json(&v.to_string()).unwrap_err();
        assert!(err.to_string().contains("nat_window_hours"), "{err}");
    }

    /// Huge numbers used to panic in chrono (`Duration::hours` overflows) when the server used
    /// them; now the file is refused, naming the field and the largest value accepted.
    #[test]
    fn huge_numbers_are_refused_naming_the_field() {
        let fields = [
            "nat_window_hours",
            "commuter_window_days",
            "commuter_first_check_hours",
            "commitment_window_hours",
            "commuter_validity_days",
            "facts_lookback_days",
        ];
        for field in fields {
            for huge in [i64::MAX, i64::MIN, 1 << 40] {
                let mut v: serde_json::Value = serde_json::from_str(BEIJING_2021_11_17).unwrap();
                v[field] = huge.into();
                let err = Policy::from_json(&v.to_string()).unwrap_err().to_string();
                assert!(err.starts_with(&format!("policy field {field}: ")), "{err}");
                assert!(err.contains("ten years") || err.contains("must be positive"), "{err}");
            }
            // Beyond 64 bits is not a number of the expected shape.
            let mut v: serde_json::Value = serde_json::from_str(BEIJING_2021_11_17).unwrap();
            v[field] = serde_json::json!(1e30);
            let err = Policy::from_json(&v.to_string()).unwrap_err().to_string();
            assert!(err.contains("not valid JSON of the expected shape"), "{err}");
        }
        // The largest accepted values are usable: every window, and times computed from them.
        let mut p = Policy::beijing_2021_11_17();
        (p.nat_window_hours, p.commuter_first_check_hours, p.commitment_window_hours) =
            (MAX_WINDOW_HOURS, MAX_WINDOW_HOURS, MAX_WINDOW_HOURS);
        (p.commuter_window_days, p.commuter_validity_days, p.facts_lookback_days) =
            (MAX_WINDOW_DAYS, MAX_WINDOW_DAYS, MAX_WINDOW_DAYS);
        p.check().unwrap();
        let now = Utc::now();
        assert!(now - p.lookback() < now);
        let _ = (p.nat_window(), p.commuter_window(), p.commuter_first_check_window(), p.commitment_window());
        assert!(now + Duration::days(p.commuter_validity_days) > now);
    }
}
