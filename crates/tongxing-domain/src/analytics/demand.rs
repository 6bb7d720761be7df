//! Testing demand, from the commuter rule itself and from the visitors' rhythm.
//!
//! Commuters: a certified commuter's test is valid for `commuter_window_days` after sampling
//! (14 days in the rules of 17 November 2021), so the day it runs out is the day they must be
//! tested again; counted per day ahead, by residence county and by the test point nearest to it.
//! Visitors entering on a 48-hour test: a seasonal-naive forecast of the same weekday, checked
//! against what happened (MASE with seasonal period 7, sMAPE), by horizon.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;

use super::stats::{LatLon, haversine_km, mase_scale, seasonal_forecast};
use crate::shanghai;

/// A commuter's residence county and the sampling time of their last negative test.
#[derive(Debug, Clone, PartialEq)]
pub struct CommuterTest {
    pub county: String,
    pub last_negative: Option<DateTime<Utc>>,
}

/// How many commuters' tests run out on one day, from one county, with the nearest test point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, PartialOrd, Ord)]
pub struct Expiry {
    pub day: NaiveDate,
    pub county: String,
    /// The test point nearest to the county (none when the county or no test point has a place).
    pub test_point: Option<String>,
    pub commuters: u64,
}

/// The commuter demand for the `days` days from `today` (Beijing dates): per day and county,
/// the commuters whose valid test runs out that day (last negative + `window_days`); and how
/// many have no valid test today already (never tested, or run out before today), per county.
pub fn commuter_expiries(
    tests: &[CommuterTest],
    window_days: i64,
    today: NaiveDate,
    days: i64,
    nearest: impl Fn(&str) -> Option<String>,
) -> (Vec<Expiry>, BTreeMap<String, u64>) {
    let mut by: BTreeMap<(NaiveDate, String), u64> = BTreeMap::new();
    let mut lapsed: BTreeMap<String, u64> = BTreeMap::new();
    for t in tests {
        // Valid until sampling + window (exclusive): it runs out on that instant's Beijing date.
        let runs_out =
            t.last_negative.map(|s| (s + Duration::days(window_days)).with_timezone(&shanghai()).date_naive());
        match runs_out {
            Some(day) if day >= today => {
                if day < today + Duration::days(days) {
                    *by.entry((day, t.county.clone())).or_default() += 1;
                }
            }
            _ => *lapsed.entry(t.county.clone()).or_default() += 1,
        }
    }
    let mut cache: BTreeMap<String, Option<String>> = BTreeMap::new();
    let rows = by
        .into_iter()
        .map(|((day, county), commuters)| {
            let test_point = cache.entry(county.clone()).or_insert_with(|| nearest(&county)).clone();
            Expiry { day, county, test_point, commuters }
        })
        .collect();
    (rows, lapsed)
}

/// The place in `places` nearest to `from` (ties: the first).
pub fn nearest(from: LatLon, places: &[(String, LatLon)]) -> Option<&str> {
    places
        .iter()
        .map(|(id, p)| (id, haversine_km(from, *p)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(id, _)| id.as_str())
}

/// The errors of a forecast `h` days ahead, over every origin of the back-test.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HorizonScore {
    pub horizon: usize,
    /// Forecasts scored (origins with an actual value `horizon` days later).
    pub origins: usize,
    /// Mean absolute scaled error (period 7): under 1 is better than the seasonal-naive
    /// forecast in-sample.
    pub mase: Option<f64>,
    /// Symmetric MAPE, percent.
    pub smape: Option<f64>,
}

/// The visitor model: the mean of the same weekday over the last `seasons` weeks.
pub const PERIOD: usize = 7;

/// Forecasts `horizon` days after `daily` (oldest first, ending with the last complete day).
pub fn forecast(daily: &[f64], seasons: usize, horizon: usize) -> Vec<Option<f64>> {
    seasonal_forecast(daily, PERIOD, seasons, horizon)
}

/// Back-tests the model on `daily`: from every origin with at least two weeks behind it (so
/// that the scale is the mean of at least seven seasonal differences), the
/// forecast 1..=`horizon` days ahead against what happened, scaled by the seasonal-naive error
/// of the history up to that origin (MASE) and as sMAPE; per horizon.
pub fn backtest(daily: &[f64], seasons: usize, horizon: usize) -> Vec<HorizonScore> {
    let n = daily.len();
    let mut scaled: Vec<Vec<f64>> = vec![Vec::new(); horizon];
    let mut pct: Vec<Vec<f64>> = vec![Vec::new(); horizon];
    for origin in 2 * PERIOD..n {
        let history = &daily[..origin];
        let Some(scale) = mase_scale(history, PERIOD).filter(|s| *s > 0.0) else { continue };
        for (h, f) in forecast(history, seasons, horizon).into_iter().enumerate() {
            let (Some(f), Some(&a)) = (f, daily.get(origin + h)) else { continue };
            scaled[h].push((a - f).abs() / scale);
            let d = a.abs() + f.abs();
            pct[h].push(if d == 0.0 { 0.0 } else { 200.0 * (a - f).abs() / d });
        }
    }
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    (0..horizon)
        .map(|h| HorizonScore {
            horizon: h + 1,
            origins: scaled[h].len(),
            mase: mean(&scaled[h]),
            smape: mean(&pct[h]),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn expiries_by_day_and_county() {
        let today = NaiveDate::from_ymd_opt(2021, 11, 20).unwrap();
        // Sampled 2021-11-10 10:00 Beijing (02:00 UTC): valid until 11-24 10:00: runs out on the 24th.
        let at = |d: u32, h: u32| Utc.with_ymd_and_hms(2021, 11, d, h, 0, 0).unwrap();
        let tests = vec![
            CommuterTest { county: "131082".into(), last_negative: Some(at(10, 2)) },
            CommuterTest { county: "131082".into(), last_negative: Some(at(10, 3)) },
            // 2021-11-10 17:00 UTC is 11-11 01:00 in Beijing: runs out on the 25th.
            CommuterTest { county: "131082".into(), last_negative: Some(at(10, 17)) },
            CommuterTest { county: "131024".into(), last_negative: Some(at(19, 2)) },
            // Ran out on the 15th: lapsed already; never tested: lapsed.
            CommuterTest { county: "131024".into(), last_negative: Some(at(1, 2)) },
            CommuterTest { county: "131028".into(), last_negative: None },
            // Runs out after the horizon (3 days: 20, 21, 22): not counted.
        ];
        let nearest = |c: &str| Some(format!("TP-{c}"));
        let (rows, lapsed) = commuter_expiries(&tests, 14, today, 14, nearest);
        let d = |m, n| NaiveDate::from_ymd_opt(2021, m, n).unwrap();
        let row = |day, county: &str, commuters| Expiry {
            day,
            county: county.into(),
            test_point: Some(format!("TP-{county}")),
            commuters,
        };
        // The 19th 02:00 UTC + 14 days is 3 December 10:00 in Beijing: the last day of the 14.
        assert_eq!(rows, vec![row(d(11, 24), "131082", 2), row(d(11, 25), "131082", 1), row(d(12, 3), "131024", 1)]);
        assert_eq!(lapsed.get("131024"), Some(&1));
        assert_eq!(lapsed.get("131028"), Some(&1));
        let (short, _) = commuter_expiries(&tests, 14, today, 3, |_| None);
        assert!(short.is_empty(), "{short:?}");
    }

    #[test]
    fn the_nearest_place() {
        let places = vec![("A".to_string(), (39.9, 116.4)), ("B".to_string(), (39.1, 117.2))];
        assert_eq!(nearest((39.2, 117.0), &places), Some("B"));
        assert_eq!(nearest((40.0, 116.0), &places), Some("A"));
        assert_eq!(nearest((0.0, 0.0), &[]), None);
    }

    #[test]
    fn a_weekly_rhythm_is_forecast_better_than_naive() {
        // A weekly pattern with alternating noise: averaging two weeks halves the noise.
        let pattern = [100.0, 100.0, 100.0, 100.0, 100.0, 300.0, 300.0];
        let daily: Vec<f64> = (0..42).map(|i| pattern[i % 7] + if (i / 7) % 2 == 0 { 10.0 } else { -10.0 }).collect();
        let scores = backtest(&daily, 2, 14);
        assert_eq!(scores.len(), 14);
        // Day 1 ahead: the mean of two alternating weeks is exactly the pattern: error 10, scale 20.
        let h1 = &scores[0];
        assert!(h1.origins > 20, "{h1:?}");
        assert!(h1.mase.unwrap() < 1.0, "{h1:?}");
        // Plain seasonal naive on the same data: error 20 = the scale, MASE 1.
        let naive = backtest(&daily, 1, 1);
        assert!((naive[0].mase.unwrap() - 1.0).abs() < 1e-9, "{naive:?}");
        assert_eq!(forecast(&daily, 1, 1), vec![Some(daily[35])]);
    }
}
