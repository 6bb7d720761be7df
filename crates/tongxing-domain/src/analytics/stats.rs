//! The statistics behind flows, forecasts and early warnings, as pure functions: the distance
//! between two points on the Earth, the CDC's EARS C2 and a CUSUM for surges, a Poisson tail
//! for clusters, the seasonal-naive forecast and the errors it is judged by (MASE, sMAPE).

/// The Earth's mean radius (IUGG), in kilometres.
pub const EARTH_RADIUS_KM: f64 = 6371.0088;

/// A point as (latitude, longitude) in degrees (WGS 84).
pub type LatLon = (f64, f64);

/// The great-circle distance between two points, by the haversine formula, in kilometres.
pub fn haversine_km(a: LatLon, b: LatLon) -> f64 {
    let (la1, lo1) = (a.0.to_radians(), a.1.to_radians());
    let (la2, lo2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((la2 - la1) / 2.0).sin().powi(2) + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

/// The speed needed to cover `km` in `seconds`, in km/h (infinite for no time at all).
pub fn speed_kmh(km: f64, seconds: f64) -> f64 {
    if seconds <= 0.0 { if km > 0.0 { f64::INFINITY } else { 0.0 } } else { km / (seconds / 3600.0) }
}

/// Mean and sample standard deviation (n − 1); `None` for fewer than two values.
pub fn mean_sd(values: &[f64]) -> Option<(f64, f64)> {
    if values.len() < 2 {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    Some((mean, var.sqrt()))
}

/// What EARS C2 found for one observation.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct C2 {
    pub observed: f64,
    /// Mean and standard deviation of the baseline (the deviation used: at least the floor).
    pub mean: f64,
    pub sd: f64,
    /// (observed − mean) / sd.
    pub statistic: f64,
}

/// EARS C2 (CDC, Early Aberration Reporting System): the observation against a baseline of
/// `baseline` values that ends `guard` values before it (the guard band keeps the start of an
/// outbreak out of its own baseline). `history` is every value before the observation, oldest
/// first; `sd_floor` keeps a flat baseline from making every change an aberration. `None` when
/// the history is too short.
pub fn ears_c2(history: &[f64], observed: f64, baseline: usize, guard: usize, sd_floor: f64) -> Option<C2> {
    let end = history.len().checked_sub(guard)?;
    let start = end.checked_sub(baseline)?;
    let (mean, sd) = mean_sd(&history[start..end])?;
    let sd = sd.max(sd_floor);
    let statistic = if sd > 0.0 { (observed - mean) / sd } else { 0.0 };
    Some(C2 { observed, mean, sd, statistic })
}

/// A one-sided CUSUM over `values` standardised by a reference `mean` and `sd`: S₀ = 0,
/// Sₜ = max(0, Sₜ₋₁ + (xₜ − mean)/sd − k); the alarm is the first t with Sₜ > h. Slow rises
/// that no single value shows add up here.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Cusum {
    pub sums: Vec<f64>,
    /// Index of the first value whose sum passed `h`.
    pub alarm: Option<usize>,
}

pub fn cusum(values: &[f64], mean: f64, sd: f64, k: f64, h: f64) -> Cusum {
    let mut s = 0.0;
    let mut sums = Vec::with_capacity(values.len());
    let mut alarm = None;
    for (i, x) in values.iter().enumerate() {
        let z = if sd > 0.0 { (x - mean) / sd } else { 0.0 };
        s = (s + z - k).max(0.0);
        sums.push(s);
        if alarm.is_none() && s > h {
            alarm = Some(i);
        }
    }
    Cusum { sums, alarm }
}

/// P(X ≥ k) for X Poisson with mean `lambda`: how surprising `k` events are where `lambda`
/// were expected.
pub fn poisson_upper_tail(k: u64, lambda: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if lambda <= 0.0 {
        return 0.0;
    }
    if k as f64 <= lambda {
        // 1 − P(X ≤ k − 1): the terms below k, summed upward.
        let mut term = (-lambda).exp();
        let mut below = term;
        for i in 1..k {
            term *= lambda / i as f64;
            below += term;
        }
        return (1.0 - below).clamp(0.0, 1.0);
    }
    // In the tail, summing the terms from k on keeps the precision of a tiny probability:
    // ln P(X = k) = −λ + k ln λ − ln k!.
    let ln_fact: f64 = (2..=k).map(|i| (i as f64).ln()).sum();
    let mut term = (-lambda + k as f64 * lambda.ln() - ln_fact).exp();
    let mut sum = 0.0;
    let mut i = k;
    while term > sum * 1e-17 && i < k + 10_000 {
        sum += term;
        i += 1;
        term *= lambda / i as f64;
    }
    sum.clamp(0.0, 1.0)
}

/// The seasonal-naive forecast, averaged over `seasons` past seasons: the value `h` steps after
/// the end of `history` is the mean of the values at the same point of each of the last
/// `seasons` periods (with `seasons` = 1, the value one period back: the classic seasonal
/// naive). Fewer seasons are used when the history is shorter; `None` inside when not one.
pub fn seasonal_forecast(history: &[f64], period: usize, seasons: usize, horizon: usize) -> Vec<Option<f64>> {
    let n = history.len();
    (1..=horizon)
        .map(|h| {
            let target = n + h - 1;
            let first = h.div_ceil(period);
            let past: Vec<f64> = (first..first + seasons.max(1))
                .filter_map(|m| target.checked_sub(period * m))
                .filter(|&i| i < n)
                .map(|i| history[i])
                .collect();
            (!past.is_empty()).then(|| past.iter().sum::<f64>() / past.len() as f64)
        })
        .collect()
}

/// The scale of MASE: the mean absolute error of the one-period-back (seasonal naive) forecast
/// inside `training`. `None` when the training data is shorter than one period plus one.
pub fn mase_scale(training: &[f64], period: usize) -> Option<f64> {
    if training.len() <= period {
        return None;
    }
    let diffs: Vec<f64> = (period..training.len()).map(|t| (training[t] - training[t - period]).abs()).collect();
    Some(diffs.iter().sum::<f64>() / diffs.len() as f64)
}

/// Mean absolute scaled error (Hyndman & Koehler 2006) with seasonal period `period`: below 1,
/// the forecast beat the seasonal-naive forecast in the training data. `None` without a scale
/// (too short, or a training series with no change at all).
pub fn mase(actual: &[f64], forecast: &[f64], training: &[f64], period: usize) -> Option<f64> {
    let scale = mase_scale(training, period).filter(|s| *s > 0.0)?;
    if actual.is_empty() || actual.len() != forecast.len() {
        return None;
    }
    let mae = actual.iter().zip(forecast).map(|(a, f)| (a - f).abs()).sum::<f64>() / actual.len() as f64;
    Some(mae / scale)
}

/// Symmetric mean absolute percentage error, in percent (0 to 200): the mean of
/// 2|a − f| / (|a| + |f|), a pair of zeros counting as no error.
pub fn smape(actual: &[f64], forecast: &[f64]) -> Option<f64> {
    if actual.is_empty() || actual.len() != forecast.len() {
        return None;
    }
    let sum: f64 = actual
        .iter()
        .zip(forecast)
        .map(|(a, f)| {
            let d = a.abs() + f.abs();
            if d == 0.0 { 0.0 } else { 2.0 * (a - f).abs() / d }
        })
        .sum();
    Some(100.0 * sum / actual.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, eps: f64) {
        assert!((a - b).abs() < eps, "{a} vs {b}");
    }

    #[test]
    fn haversine_on_hand_computed_distances() {
        // One degree of longitude on the equator: R·π/180.
        close(haversine_km((0.0, 0.0), (0.0, 1.0)), 6371.0088 * std::f64::consts::PI / 180.0, 1e-9);
        close(haversine_km((0.0, 0.0), (0.0, 1.0)), 111.195, 1e-3);
        // Equator to pole: a quarter of the circumference.
        close(haversine_km((0.0, 0.0), (90.0, 0.0)), 6371.0088 * std::f64::consts::FRAC_PI_2, 1e-9);
        // Antipodes: half of it (the asin's argument clamped at 1).
        close(haversine_km((0.0, 0.0), (0.0, 180.0)), 6371.0088 * std::f64::consts::PI, 1e-6);
        assert_eq!(haversine_km((39.9, 116.4), (39.9, 116.4)), 0.0);
        // 100 km in 30 minutes is 200 km/h.
        close(speed_kmh(100.0, 1800.0), 200.0, 1e-12);
        assert!(speed_kmh(1.0, 0.0).is_infinite());
        assert_eq!(speed_kmh(0.0, 0.0), 0.0);
    }

    #[test]
    fn ears_c2_on_a_hand_computed_baseline() {
        // Baseline 10 12 11 13 9 10 12: mean 11, squares of deviations 1 1 0 4 4 1 1 = 12,
        // variance 12/6 = 2, sd √2. The guard band (50, 50) is left out. (20 − 11)/√2 = 6.364.
        let history = [10.0, 12.0, 11.0, 13.0, 9.0, 10.0, 12.0, 50.0, 50.0];
        let c2 = ears_c2(&history, 20.0, 7, 2, 0.0).unwrap();
        close(c2.mean, 11.0, 1e-12);
        close(c2.sd, 2f64.sqrt(), 1e-12);
        close(c2.statistic, 9.0 / 2f64.sqrt(), 1e-12);
        // Older values before the baseline do not count either.
        let longer = [1000.0, 10.0, 12.0, 11.0, 13.0, 9.0, 10.0, 12.0, 50.0, 50.0];
        assert_eq!(ears_c2(&longer, 20.0, 7, 2, 0.0), Some(c2));
        // 15 is (15 − 11)/√2 = 2.83 σ: under 3.
        assert!(ears_c2(&history, 15.0, 7, 2, 0.0).unwrap().statistic < 3.0);
        // A flat baseline uses the floor: (14 − 10)/2 = 2.
        let flat = [10.0; 9];
        close(ears_c2(&flat, 14.0, 7, 2, 2.0).unwrap().statistic, 2.0, 1e-12);
        // Too short: 8 values cannot hold 7 + 2.
        assert_eq!(ears_c2(&history[1..], 20.0, 7, 2, 0.0), None);
    }

    #[test]
    fn cusum_on_hand_computed_sums() {
        // mean 10, sd 2, k 0.5: 14 is z = 2, so the sums grow by 1.5: 1.5, 3, 4.5 > 4 at index 2.
        let c = cusum(&[14.0, 14.0, 14.0, 14.0], 10.0, 2.0, 0.5, 4.0);
        assert_eq!(c.sums, vec![1.5, 3.0, 4.5, 6.0]);
        assert_eq!(c.alarm, Some(2));
        // A value below the mean empties the sum (never below 0).
        let c = cusum(&[8.0, 14.0], 10.0, 2.0, 0.5, 4.0);
        assert_eq!(c.sums, vec![0.0, 1.5]);
        assert_eq!(c.alarm, None);
        // A slow rise: z = 1 each time adds 0.5; eight of them are 4.0 (not above 4), the ninth 4.5.
        let c = cusum(&[12.0; 9], 10.0, 2.0, 0.5, 4.0);
        assert_eq!(c.alarm, Some(8));
    }

    #[test]
    fn poisson_tail_on_hand_computed_values() {
        // λ = 1: P(X ≥ 1) = 1 − e⁻¹.
        close(poisson_upper_tail(1, 1.0), 1.0 - (-1f64).exp(), 1e-12);
        // λ = 2: P(X ≥ 3) = 1 − e⁻²(1 + 2 + 2) = 1 − 5e⁻².
        close(poisson_upper_tail(3, 2.0), 1.0 - 5.0 * (-2f64).exp(), 1e-12);
        assert_eq!(poisson_upper_tail(0, 3.0), 1.0);
        assert_eq!(poisson_upper_tail(1, 0.0), 0.0);
        // 20 where 2 were expected: vanishingly rare, yet not rounded to 0. P(X = 20 | 2) =
        // e⁻² 2²⁰ / 20! = 5.832e-14, and the next terms add about a tenth.
        let p = poisson_upper_tail(20, 2.0);
        assert!(p > 5.8e-14 && p < 6.5e-14, "{p}");
    }

    #[test]
    fn seasonal_forecast_on_two_weeks() {
        let history: Vec<f64> = (1..=14).map(f64::from).collect();
        // Seasonal naive (period 7): the value a week before each target: 8, 9, 10 …
        let f = seasonal_forecast(&history, 7, 1, 9);
        assert_eq!(f[..3], [Some(8.0), Some(9.0), Some(10.0)]);
        // Beyond one period, two periods back: h = 8 → index 14 + 7 − 14 = 7 → 8.
        assert_eq!(f[7], Some(8.0));
        // The mean of two seasons: h = 1 → (8 + 1) / 2.
        assert_eq!(seasonal_forecast(&history, 7, 2, 1), vec![Some(4.5)]);
        // h = 8 with two seasons: indexes 7 and 0, (8 + 1) / 2; with 10 values only index 2 exists.
        assert_eq!(seasonal_forecast(&history, 7, 2, 8)[7], Some(4.5));
        assert_eq!(seasonal_forecast(&history[..10], 7, 2, 1), vec![Some(4.0)]);
        assert_eq!(seasonal_forecast(&[], 7, 1, 1), vec![None]);
    }

    #[test]
    fn mase_and_smape_on_hand_computed_values() {
        // Every value differs by 1 from the one a period earlier: scale 1. Errors 2 and 2: MASE 2.
        let training = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        close(mase_scale(&training, 7).unwrap(), 1.0, 1e-12);
        close(mase(&[10.0, 10.0], &[8.0, 12.0], &training, 7).unwrap(), 2.0, 1e-12);
        assert_eq!(mase(&[1.0], &[1.0], &training[..7], 7), None);
        // 2·10/210 = 9.5238 %, and 0 for the exact one: mean 4.7619 %.
        close(smape(&[100.0, 50.0], &[110.0, 50.0]).unwrap(), 100.0 * (20.0 / 210.0) / 2.0, 1e-12);
        close(smape(&[0.0], &[0.0]).unwrap(), 0.0, 1e-12);
        close(smape(&[0.0], &[5.0]).unwrap(), 200.0, 1e-12);
    }
}
