//! The thresholds of early warnings and of the privacy of aggregates: a configuration section
//! (`serve --analytics FILE`, JSON), not policy data. Entry policies are versioned rules that
//! decide checks and are replayed against recorded entry events; these numbers only tune how
//! sensitive the command centre's warnings are and how small a published count may be. Changing
//! one must never change a verdict, and it may change at any time without a new rule set.

use serde::{Deserialize, Serialize};

/// Every threshold, each with its default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalyticsConfig {
    /// A person checked at two checkpoints further apart than this speed allows (km/h) raises a
    /// cloned-code warning.
    pub max_speed_kmh: f64,
    /// A person denied at one checkpoint and checked at another within this many hours raises a
    /// shortcut warning.
    pub shortcut_hours: i64,
    /// EARS C2: days of baseline, days of guard band between it and the day observed, and the
    /// threshold in standard deviations.
    pub surge_baseline_days: usize,
    pub surge_guard_days: usize,
    pub surge_threshold_sd: f64,
    /// No surge below this many entries in the day so far (small counts are noise).
    pub surge_min_count: u64,
    /// CUSUM: days of reference (before the days summed), days summed, the allowance k and the
    /// decision threshold h, both in standard deviations.
    pub cusum_reference_days: usize,
    pub cusum_days: usize,
    pub cusum_k: f64,
    pub cusum_h: f64,
    /// Positive clusters: the trailing window (days), the days before it that set the expected
    /// rate, the Poisson tail probability under which a count is a cluster, and a minimum count.
    pub cluster_window_days: i64,
    pub cluster_baseline_days: i64,
    pub cluster_alpha: f64,
    pub cluster_min_count: u64,
    /// Lab trouble: a result later than this many hours after sampling is late; a lab with at
    /// least `lab_min_results` samples due, of which this share or more is late, is flagged.
    pub lab_late_hours: i64,
    pub lab_late_share: f64,
    pub lab_min_results: u64,
    /// A lab's positivity jump: its positives in the last `lab_recent_days` against its rate in
    /// the `lab_baseline_days` before, by the Poisson tail.
    pub lab_recent_days: i64,
    pub lab_baseline_days: i64,
    pub lab_positivity_alpha: f64,
    pub lab_positivity_min: u64,
    /// Counts under this are suppressed for the analyst role (with their complements).
    pub suppression_threshold: u64,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        AnalyticsConfig {
            max_speed_kmh: 150.0,
            shortcut_hours: 6,
            surge_baseline_days: 7,
            surge_guard_days: 2,
            surge_threshold_sd: 3.0,
            surge_min_count: 30,
            cusum_reference_days: 7,
            cusum_days: 14,
            cusum_k: 0.5,
            cusum_h: 5.0,
            cluster_window_days: 7,
            cluster_baseline_days: 28,
            cluster_alpha: 0.001,
            cluster_min_count: 5,
            lab_late_hours: 24,
            lab_late_share: 0.2,
            lab_min_results: 20,
            lab_recent_days: 2,
            lab_baseline_days: 14,
            lab_positivity_alpha: 0.001,
            lab_positivity_min: 5,
            suppression_threshold: 5,
        }
    }
}

/// A configuration refused: the field and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ConfigError {
    pub field: String,
    pub reason: String,
}

impl AnalyticsConfig {
    /// Reads the JSON section (missing fields take their defaults; unknown ones are refused).
    pub fn from_json(text: &str) -> Result<AnalyticsConfig, ConfigError> {
        let refusal = |field: &str, reason: String| ConfigError { field: field.into(), reason };
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| refusal("analytics", format!("is not JSON: {e}")))?;
        let serde_json::Value::Object(fields) = &value else {
            return Err(refusal("analytics", "must be a JSON object of thresholds".into()));
        };
        let known = serde_json::to_value(AnalyticsConfig::default()).expect("serialisable");
        let known = known.as_object().expect("an object");
        // Each field alone, so that a refusal names it.
        for (name, v) in fields {
            if !known.contains_key(name) {
                let accepted: Vec<&str> = known.keys().map(String::as_str).collect();
                return Err(refusal(name, format!("is not a known field; accepted: {}", accepted.join(", "))));
            }
            let one = serde_json::json!({ name.as_str(): v });
            if let Err(e) = serde_json::from_value::<AnalyticsConfig>(one) {
                return Err(refusal(name, crate::text::shorten_quoted(&e.to_string())));
            }
        }
        let c: AnalyticsConfig = serde_json::from_value(value).map_err(|e| refusal("analytics", e.to_string()))?;
        c.check()?;
        Ok(c)
    }

    /// Every value within its range.
    pub fn check(&self) -> Result<(), ConfigError> {
        let bad = |field: &str, reason: String| Err(ConfigError { field: field.into(), reason });
        let floats = [
            ("max_speed_kmh", self.max_speed_kmh, 1.0, 2000.0),
            ("surge_threshold_sd", self.surge_threshold_sd, 0.5, 20.0),
            ("cusum_k", self.cusum_k, 0.0, 10.0),
            ("cusum_h", self.cusum_h, 0.5, 100.0),
            ("cluster_alpha", self.cluster_alpha, 1e-12, 0.5),
            ("lab_late_share", self.lab_late_share, 0.01, 1.0),
            ("lab_positivity_alpha", self.lab_positivity_alpha, 1e-12, 0.5),
        ];
        for (field, v, lo, hi) in floats {
            if !(v.is_finite() && (lo..=hi).contains(&v)) {
                return bad(field, format!("must be from {lo} to {hi}, got {v}"));
            }
        }
        let ints = [
            ("shortcut_hours", self.shortcut_hours, 1, 72),
            ("surge_baseline_days", self.surge_baseline_days as i64, 2, 28),
            ("surge_guard_days", self.surge_guard_days as i64, 0, 7),
            ("surge_min_count", self.surge_min_count as i64, 0, 1_000_000),
            ("cusum_reference_days", self.cusum_reference_days as i64, 2, 28),
            ("cusum_days", self.cusum_days as i64, 1, 28),
            ("cluster_window_days", self.cluster_window_days, 1, 28),
            ("cluster_baseline_days", self.cluster_baseline_days, 1, 90),
            ("cluster_min_count", self.cluster_min_count as i64, 1, 1_000_000),
            ("lab_late_hours", self.lab_late_hours, 1, 240),
            ("lab_min_results", self.lab_min_results as i64, 1, 1_000_000),
            ("lab_recent_days", self.lab_recent_days, 1, 14),
            ("lab_baseline_days", self.lab_baseline_days, 1, 90),
            ("lab_positivity_min", self.lab_positivity_min as i64, 1, 1_000_000),
            ("suppression_threshold", self.suppression_threshold as i64, 1, 1000),
        ];
        for (field, v, lo, hi) in ints {
            if !(lo..=hi).contains(&v) {
                return bad(field, format!("must be from {lo} to {hi}, got {v}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_refusals_name_the_field() {
        assert_eq!(AnalyticsConfig::from_json("{}").unwrap(), AnalyticsConfig::default());
        let c = AnalyticsConfig::from_json(r#"{"max_speed_kmh": 120}"#).unwrap();
        assert_eq!(c.max_speed_kmh, 120.0);
        assert_eq!(c.suppression_threshold, 5);
        let e = AnalyticsConfig::from_json(r#"{"max_speed_kmh": -1}"#).unwrap_err();
        assert_eq!(e.field, "max_speed_kmh");
        let e = AnalyticsConfig::from_json(r#"{"suppression_threshold": 0}"#).unwrap_err();
        assert_eq!(e.field, "suppression_threshold");
        let e = AnalyticsConfig::from_json(r#"{"max_sped_kmh": 100}"#).unwrap_err();
        assert_eq!(e.field, "max_sped_kmh", "{e}");
        assert!(e.reason.contains("accepted"), "{e}");
        let e = AnalyticsConfig::from_json(r#"{"shortcut_hours": "six"}"#).unwrap_err();
        assert_eq!(e.field, "shortcut_hours", "{e}");
    }
}
