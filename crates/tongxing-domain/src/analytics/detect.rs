//! The early warnings' decisions: given what the store counted, does a warning fire, and with
//! what evidence. Each returns the numbers that made it fire (they go into the alert's payload,
//! so that every warning says why), or `None`.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::config::AnalyticsConfig;
use super::stats::{C2, Cusum, LatLon, cusum, ears_c2, haversine_km, mean_sd, poisson_upper_tail, speed_kmh};

/// One check of a person, as the detectors see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sighting {
    pub event_id: i64,
    pub checkpoint: String,
    pub at: DateTime<Utc>,
    /// Where the checkpoint is (none: not known, so no speed can be judged).
    pub place: Option<LatLon>,
}

/// Two checks of one person further apart than the road allows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TooFast {
    pub distance_km: f64,
    pub seconds: f64,
    pub speed_kmh: f64,
    pub max_speed_kmh: f64,
}

/// A cloned or shared code: the same person at two checkpoints whose distance cannot be
/// covered in the time between the checks at `max_speed_kmh` (straight-line distance, so the
/// real road is only longer: the warning errs on the side of silence).
pub fn cloned_code(a: &Sighting, b: &Sighting, cfg: &AnalyticsConfig) -> Option<TooFast> {
    if a.checkpoint == b.checkpoint {
        return None;
    }
    let distance_km = haversine_km(a.place?, b.place?);
    let seconds = (b.at - a.at).num_milliseconds().abs() as f64 / 1000.0;
    let speed = speed_kmh(distance_km, seconds);
    (speed > cfg.max_speed_kmh).then_some(TooFast {
        distance_km,
        seconds,
        speed_kmh: if speed.is_finite() { speed } else { f64::MAX },
        max_speed_kmh: cfg.max_speed_kmh,
    })
}

/// A shortcut: denied at one checkpoint, then checked at another within `shortcut_hours`.
/// Returns the minutes between.
pub fn shortcut(denied: &Sighting, later: &Sighting, cfg: &AnalyticsConfig) -> Option<f64> {
    let minutes = (later.at - denied.at).num_seconds() as f64 / 60.0;
    (later.checkpoint != denied.checkpoint && minutes >= 0.0 && minutes <= cfg.shortcut_hours as f64 * 60.0)
        .then_some(minutes)
}

/// A surge by EARS C2: `observed` (today's count up to an hour) against the same part of each
/// earlier day (`history`, oldest first, ending yesterday), with the configured baseline, guard
/// band and threshold. The standard deviation is at least √mean (Poisson noise) and 1.
pub fn surge(history: &[f64], observed: f64, cfg: &AnalyticsConfig) -> Option<C2> {
    let raw = ears_c2(history, observed, cfg.surge_baseline_days, cfg.surge_guard_days, 1.0)?;
    let sd = raw.sd.max(raw.mean.max(0.0).sqrt());
    let c2 = C2 { sd, statistic: (observed - raw.mean) / sd, ..raw };
    (observed >= cfg.surge_min_count as f64 && c2.statistic > cfg.surge_threshold_sd).then_some(c2)
}

/// What a CUSUM found, with its reference.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlowRise {
    pub reference_mean: f64,
    pub reference_sd: f64,
    pub cusum: Cusum,
}

/// A slow rise by CUSUM: `daily` holds the reference days then the days summed (oldest
/// first); the reference sets the mean and deviation (at least √mean), the sum runs over the
/// rest. Fires when the sum passes `cusum_h` on the last day summed or before.
pub fn slow_rise(daily: &[f64], cfg: &AnalyticsConfig) -> Option<SlowRise> {
    if daily.len() < cfg.cusum_reference_days + 1 {
        return None;
    }
    let (reference, summed) = daily.split_at(cfg.cusum_reference_days);
    let (mean, sd) = mean_sd(reference)?;
    let sd = sd.max(mean.sqrt()).max(1.0);
    let c = cusum(summed, mean, sd, cfg.cusum_k, cfg.cusum_h);
    c.alarm.map(|_| SlowRise { reference_mean: mean, reference_sd: sd, cusum: c })
}

/// Positives against what was expected.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Excess {
    pub observed: u64,
    pub expected: f64,
    /// P(X ≥ observed) for X Poisson with the expected mean.
    pub p_value: f64,
}

/// A positive cluster: `observed` positives in the trailing window of a group (a county, an
/// employer, a test point) where its own baseline (`baseline` positives in the baseline days
/// before the window, plus one so that a group never seen is not a certain cluster) expected
/// fewer.
pub fn cluster(observed: u64, baseline: u64, cfg: &AnalyticsConfig) -> Option<Excess> {
    let expected = (baseline as f64 + 1.0) * cfg.cluster_window_days as f64 / cfg.cluster_baseline_days as f64;
    let p_value = poisson_upper_tail(observed, expected);
    (observed >= cfg.cluster_min_count && p_value < cfg.cluster_alpha).then_some(Excess { observed, expected, p_value })
}

/// A lab's positivity jump: `positives` of `tests` recently against its baseline rate (with
/// one positive and one test added, as for clusters).
pub fn positivity_jump(
    positives: u64,
    tests: u64,
    baseline_positives: u64,
    baseline_tests: u64,
    cfg: &AnalyticsConfig,
) -> Option<Excess> {
    let rate = (baseline_positives as f64 + 1.0) / (baseline_tests as f64 + 1.0);
    let expected = rate * tests as f64;
    let p_value = poisson_upper_tail(positives, expected);
    (positives >= cfg.lab_positivity_min && p_value < cfg.lab_positivity_alpha).then_some(Excess {
        observed: positives,
        expected,
        p_value,
    })
}

/// A lab's late results: of `due` samples whose result was due (sampled more than
/// `lab_late_hours` ago), `late` came later than that or not at all. Returns the share.
pub fn late_results(due: u64, late: u64, cfg: &AnalyticsConfig) -> Option<f64> {
    let share = if due == 0 { 0.0 } else { late as f64 / due as f64 };
    (due >= cfg.lab_min_results && share >= cfg.lab_late_share).then_some(share)
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    fn at(cp: &str, minutes: i64, place: Option<LatLon>) -> Sighting {
        Sighting {
            event_id: minutes,
            checkpoint: cp.into(),
            at: Utc.with_ymd_and_hms(2021, 11, 20, 8, 0, 0).unwrap() + Duration::minutes(minutes),
            place,
        }
    }

    #[test]
    fn cloned_code_by_speed() {
        let cfg = AnalyticsConfig::default();
        // One degree of longitude on the equator: 111.195 km. In 30 minutes: 222 km/h > 150.
        let a = at("A", 0, Some((0.0, 0.0)));
        let f = cloned_code(&a, &at("B", 30, Some((0.0, 1.0))), &cfg).unwrap();
        assert!((f.speed_kmh - 222.39).abs() < 0.01, "{f:?}");
        assert_eq!(f.seconds, 1800.0);
        // In 50 minutes: 133 km/h: possible by road.
        assert_eq!(cloned_code(&a, &at("B", 50, Some((0.0, 1.0))), &cfg), None);
        // Order does not matter; the same checkpoint never fires; no place, no judgement.
        assert!(cloned_code(&at("B", 30, Some((0.0, 1.0))), &a, &cfg).is_some());
        assert_eq!(cloned_code(&a, &at("A", 1, Some((0.0, 0.0))), &cfg), None);
        assert_eq!(cloned_code(&a, &at("B", 1, None), &cfg), None);
        // Two checks at once far apart: an infinite speed, reported as the largest number.
        assert!(cloned_code(&a, &at("B", 0, Some((0.0, 1.0))), &cfg).is_some());
    }

    #[test]
    fn shortcut_within_hours_elsewhere() {
        let cfg = AnalyticsConfig::default();
        let denied = at("A", 0, None);
        assert_eq!(shortcut(&denied, &at("B", 120, None), &cfg), Some(120.0));
        assert_eq!(shortcut(&denied, &at("B", 360, None), &cfg), Some(360.0));
        assert_eq!(shortcut(&denied, &at("B", 361, None), &cfg), None, "after six hours");
        assert_eq!(shortcut(&denied, &at("A", 10, None), &cfg), None, "the same checkpoint");
        assert_eq!(shortcut(&denied, &at("B", -10, None), &cfg), None, "before the denial");
    }

    #[test]
    fn surge_by_c2() {
        let cfg = AnalyticsConfig::default();
        // Baseline 100 ± small: mean 100, sd √(10/6) = 1.29, floored at √100 = 10. 131 is 3.1 σ.
        let history = [100.0, 102.0, 98.0, 100.0, 101.0, 99.0, 100.0, 300.0, 300.0];
        let c2 = surge(&history, 131.0, &cfg).unwrap();
        assert_eq!(c2.sd, 10.0);
        assert!((c2.statistic - 3.1).abs() < 1e-9);
        // 129 is 2.9 σ: quiet.
        assert_eq!(surge(&history, 129.0, &cfg), None);
        // Under the minimum count, however many σ.
        let small = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
        assert_eq!(surge(&small, 20.0, &cfg), None);
        assert!(surge(&small, 30.0, &cfg).is_some());
    }

    #[test]
    fn slow_rise_by_cusum() {
        let cfg = AnalyticsConfig::default();
        // Reference 100 (sd floored at 10); +15 a day is z = 1.5, the sum grows by 1: past 5 on the 6th day.
        let mut daily = vec![100.0; 7];
        daily.extend([115.0; 6]);
        let r = slow_rise(&daily, &cfg).unwrap();
        assert_eq!(r.cusum.alarm, Some(5));
        assert_eq!(r.reference_sd, 10.0);
        // Five such days: a sum of exactly 5, not past it.
        assert_eq!(slow_rise(&daily[..12], &cfg), None);
        // +5 a day (z = 0.5 = k) never accumulates.
        let mut flat = vec![100.0; 7];
        flat.extend([105.0; 14]);
        assert_eq!(slow_rise(&flat, &cfg), None);
    }

    #[test]
    fn clusters_against_their_baseline() {
        let cfg = AnalyticsConfig::default();
        // 3 positives in 28 days: expected (3 + 1)·7/28 = 1 in 7 days. P(X ≥ 5 | 1) = 0.00366: not under 0.001.
        let quiet = cluster(5, 3, &cfg);
        assert_eq!(quiet, None);
        // P(X ≥ 6 | 1) = 0.000594: a cluster.
        let e = cluster(6, 3, &cfg).unwrap();
        assert_eq!(e.expected, 1.0);
        assert!((e.p_value - 0.000594).abs() < 1e-5, "{e:?}");
        // Never seen before, 4 positives: under the minimum count.
        assert_eq!(cluster(4, 0, &cfg), None);
    }

    #[test]
    fn labs_late_and_positivity() {
        let cfg = AnalyticsConfig::default();
        assert_eq!(late_results(100, 20, &cfg), Some(0.2));
        assert_eq!(late_results(100, 19, &cfg), None);
        assert_eq!(late_results(19, 19, &cfg), None, "too few results to judge");
        // Baseline 9 of 999 (+1: 10/1000 = 1 %); 1,000 recent tests expect 10. 25 positives: p ≈ 5e-5.
        let e = positivity_jump(25, 1000, 9, 999, &cfg).unwrap();
        assert!((e.expected - 10.0).abs() < 1e-9);
        assert_eq!(positivity_jump(15, 1000, 9, 999, &cfg), None);
    }
}
