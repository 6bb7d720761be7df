//! Big data for the command centre (issue 13): the rollup job and the periodic detectors (run
//! by one server at a time under a lease), the views of flows, profiles, shortcuts and testing
//! demand (counts only; suppressed for the analyst), and the health authority's drill-down to
//! the people behind a count (written to the access log).
//!
//! Every decision is a pure function of `tongxing_domain::analytics`; this module reads what
//! they need from the store, calls them, and raises alerts with their evidence. Time is a
//! parameter everywhere (the job passes the clock's).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use tongxing_domain::analytics::demand::{self, CommuterTest, HorizonScore};
use tongxing_domain::analytics::suppress::{Suppressed, suppress, unsuppressed};
use tongxing_domain::analytics::{AnalyticsConfig, detect};
use tongxing_domain::time;
use tongxing_store::{FlowDim, FlowQuery, NewAlert, bucket_of};
use utoipa::ToSchema;

use crate::alerts::AlertView;
use crate::export::{Column, Sheet};
use crate::{App, AppError, AppResult};

/// The kinds of alert the early warnings raise.
pub const WARNING_KINDS: &[&str] =
    &["cloned_code", "shortcut", "surge", "slow_rise", "positive_cluster", "lab_late", "lab_positivity"];
/// Entry events one pass of the rollup job reads.
pub const ROLLUP_BATCH: i64 = 5_000;
/// The most columns a flow table has (e.g. 15-minute buckets over 20 days).
pub const MAX_COLUMNS: i64 = 2_000;
const DAY: i64 = 86_400_000;

/// Which people to show behind a count, and who asks why.
#[derive(Debug, Clone, Copy)]
pub struct DrillDown<'a> {
    pub checkpoint: &'a str,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub verdict: Option<&'a str>,
    /// (token id, role) of the caller, for the access log.
    pub caller: (&'a str, &'a str),
    pub purpose: &'a str,
    /// Unmasked document numbers and names.
    pub reveal: bool,
}

/// What the rollup job did in one run.
#[derive(Debug, Default, Clone, Serialize)]
pub struct RollupRun {
    pub events: usize,
    pub passes: usize,
    pub alerts: Vec<i64>,
    pub watermark: i64,
}

/// A table of counts as a view answers it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct CountTable {
    /// What the rows and the columns are (checkpoint, bucket, verdict, reason, who, mode,
    /// hour_of_day, day, county, test_point, …).
    pub rows_by: String,
    pub columns_by: String,
    pub columns: Vec<String>,
    pub rows: Vec<CountRow>,
    /// Per column, over every row; `null`: suppressed.
    pub column_totals: Vec<Option<u64>>,
    pub total: Option<u64>,
    /// Counts under this were suppressed, with their complements (`null` cells); absent when
    /// the caller may see every count.
    pub suppressed_under: Option<u64>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct CountRow {
    pub key: String,
    pub cells: Vec<Option<u64>>,
    pub total: Option<u64>,
    /// For a table by verdict: the share denied, when both counts are shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denial_rate: Option<f64>,
}

impl CountTable {
    /// A table from its cells, suppressed (`threshold`) or not.
    pub fn new(
        rows_by: &str,
        columns_by: &str,
        row_keys: Vec<String>,
        columns: Vec<String>,
        cells: Vec<Vec<u64>>,
        threshold: Option<u64>,
    ) -> CountTable {
        let s: Suppressed = match threshold {
            Some(k) => suppress(&cells, k),
            None => unsuppressed(&cells),
        };
        let deny = (columns_by == "verdict").then(|| columns.iter().position(|c| c == "deny")).flatten();
        let rows = row_keys
            .into_iter()
            .zip(s.cells)
            .zip(s.row_totals)
            .map(|((key, cells), total)| {
                let denial_rate = match (deny.and_then(|d| cells[d]), total) {
                    (Some(d), Some(t)) if t > 0 => Some((d as f64 / t as f64 * 10_000.0).round() / 10_000.0),
                    _ => None,
                };
                CountRow { key, cells, total, denial_rate }
            })
            .collect();
        CountTable {
            rows_by: rows_by.into(),
            columns_by: columns_by.into(),
            columns,
            rows,
            column_totals: s.column_totals,
            total: s.total,
            suppressed_under: threshold,
        }
    }

    /// The table as a sheet, laid out as its CSV: the row dimension, one column per column
    /// key, "total"; a last row "total" with the column totals. A suppressed count is `None`.
    pub fn to_sheet(&self, name: &str) -> Sheet {
        let mut keys: Vec<String> = self.rows.iter().map(|r| r.key.clone()).collect();
        keys.push("total".into());
        let mut columns = vec![(self.rows_by.clone(), Column::Text(keys))];
        for (i, c) in self.columns.iter().enumerate() {
            let mut cells: Vec<Option<u64>> = self.rows.iter().map(|r| r.cells[i]).collect();
            cells.push(self.column_totals[i]);
            columns.push((c.clone(), Column::Count(cells)));
        }
        let mut totals: Vec<Option<u64>> = self.rows.iter().map(|r| r.total).collect();
        totals.push(self.total);
        columns.push(("total".into(), Column::Count(totals)));
        Sheet { name: name.into(), columns }
    }

    /// The table as CSV (its sheet): a suppressed count is empty.
    pub fn to_csv(&self) -> String {
        self.to_sheet("table").to_csv()
    }
}

/// The early warnings as a sheet: id, kind, status, raised_at, why.
pub fn warnings_sheet(all: &[AlertView]) -> Sheet {
    Sheet {
        name: "warnings".into(),
        columns: vec![
            ("id".into(), Column::Int(all.iter().map(|a| a.id).collect())),
            ("kind".into(), Column::Text(all.iter().map(|a| a.kind.to_string()).collect())),
            ("status".into(), Column::Text(all.iter().map(|a| a.status.to_string()).collect())),
            ("raised_at".into(), Column::Text(all.iter().map(|a| time::rfc3339(a.raised_at)).collect())),
            (
                "why".into(),
                Column::Text(all.iter().map(|a| a.detail["why"].as_str().unwrap_or("").to_string()).collect()),
            ),
        ],
    }
}

/// A flow table, as the edge asked for it (parsed there).
#[derive(Debug, Clone)]
pub struct FlowRequest {
    pub grain: i64,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub rows: FlowDim,
    pub columns: FlowDim,
    pub checkpoint: Option<String>,
    pub verdict: Option<String>,
    pub who: Option<String>,
    pub mode: Option<String>,
}

fn dim_name(d: FlowDim) -> &'static str {
    FlowDim::NAMES[[
        FlowDim::Checkpoint,
        FlowDim::Bucket,
        FlowDim::Verdict,
        FlowDim::Reason,
        FlowDim::Who,
        FlowDim::Mode,
        FlowDim::HourOfDay,
    ]
    .iter()
    .position(|x| *x == d)
    .unwrap_or(0)]
}

/// Testing demand, as computed (and stored) by the job.
#[derive(Debug, Clone, Serialize)]
pub struct DemandBody {
    #[serde(serialize_with = "time::serialize")]
    pub computed_at: DateTime<Utc>,
    /// The commuter window of the rules (days a negative test stays valid).
    pub commuter_window_days: i64,
    /// The 14 days ahead (Beijing dates).
    pub days: Vec<String>,
    /// Commuters whose test runs out, per residence county per day.
    pub by_county: Vec<(String, Vec<u64>)>,
    /// The same, per test point nearest to the county.
    pub by_test_point: Vec<(String, Vec<u64>)>,
    /// Per county: commuters with no valid test today already.
    pub lapsed: BTreeMap<String, u64>,
    /// Visitors entering on a 48-hour test: the last 28 days, the forecast, its back-test.
    pub visitor_history: Vec<(String, u64)>,
    pub visitor_forecast: Vec<(String, Option<f64>)>,
    pub visitor_backtest: Vec<HorizonScore>,
    /// The model: the mean of the same weekday over this many past weeks.
    pub visitor_seasons: usize,
}

/// What the analytics job keeps between its runs: when each periodic part last ran.
#[derive(Debug, Default)]
pub struct JobClock {
    detectors: Option<DateTime<Utc>>,
    labs: Option<DateTime<Utc>>,
    demand: Option<DateTime<Utc>>,
}

impl JobClock {
    /// One run of the whole job at `now`: the rollup until caught up, then the periodic part.
    /// Returns the alerts raised.
    pub async fn tick(&mut self, app: &App, now: DateTime<Utc>) -> AppResult<Vec<i64>> {
        let mut raised = app.rollup(now, 40).await?.alerts;
        raised.extend(self.periodic(app, now).await?);
        Ok(raised)
    }

    /// The periodic part: the detectors that are due (surges, slow rises and clusters every
    /// minute, labs every ten, demand every hour; each at once the first time). `serve` runs it
    /// in a task of its own, so that seconds of detectors never hold up the rollup, which raises
    /// the cloned-code and shortcut warnings.
    pub async fn periodic(&mut self, app: &App, now: DateTime<Utc>) -> AppResult<Vec<i64>> {
        let mut raised = Vec::new();
        // Not while the rollup is more than a pass behind (at start, or after a rebuild): the
        // detectors read the rollups, and a day half counted would look like a drop.
        let (watermark, newest) = app.store.rollup_watermark().await?;
        if newest - watermark > ROLLUP_BATCH {
            return Ok(raised);
        }
        let due = |last: Option<DateTime<Utc>>, every: Duration| last.is_none_or(|t| now - t >= every);
        if due(self.detectors, Duration::minutes(1)) {
            raised.extend(app.detect_surges(now).await?);
            raised.extend(app.detect_clusters(now).await?);
            self.detectors = Some(now);
        }
        if due(self.labs, Duration::minutes(10)) {
            raised.extend(app.detect_labs(now).await?);
            self.labs = Some(now);
        }
        if due(self.demand, Duration::hours(1)) {
            app.compute_demand(now).await?;
            self.demand = Some(now);
        }
        Ok(raised)
    }
}

/// The visitor model's seasons: the mean of the same weekday of the last two weeks.
pub const VISITOR_SEASONS: usize = 2;

impl App {
    /// The thresholds of warnings and suppression.
    pub fn analytics(&self) -> &AnalyticsConfig {
        &self.analytics
    }

    /// The rollup job: passes until it has caught up with the entry events (at most
    /// `max_passes`), counting them and raising the per-person warnings.
    pub async fn rollup(&self, now: DateTime<Utc>, max_passes: usize) -> AppResult<RollupRun> {
        let mut run = RollupRun::default();
        while run.passes < max_passes {
            let pass = self.store.rollup_pass(ROLLUP_BATCH, &self.analytics, now).await?;
            run.passes += 1;
            run.events += pass.events;
            run.alerts.extend(pass.alerts);
            run.watermark = pass.watermark;
            if (pass.events as i64) < ROLLUP_BATCH {
                break;
            }
            // Between passes, whoever waits for the database (SQLite's one writer: a lease's
            // renewal, a check) goes first: a long catch-up must not starve them.
            tokio::task::yield_now().await;
        }
        Ok(run)
    }

    async fn warn(
        &self,
        kind: &str,
        key: String,
        payload: serde_json::Value,
        now: DateTime<Utc>,
    ) -> AppResult<Option<i64>> {
        let alert = NewAlert { kind: kind.into(), dedup_key: key, person_id: None, payload, at: now };
        Ok(self.store.raise_alert(&alert).await?)
    }

    /// Surges by EARS C2: each checkpoint's entries today up to the last complete hour against
    /// the same hours of the earlier days (7-day baseline, 2-day guard band); and slow rises by
    /// CUSUM over the complete days. One alert per checkpoint and day each.
    pub async fn detect_surges(&self, now: DateTime<Utc>) -> AppResult<Vec<i64>> {
        let cfg = &self.analytics;
        let now_ms = now.timestamp_millis();
        let hour = bucket_of(60, now_ms);
        let mut day = bucket_of(1440, now_ms);
        if hour == day {
            day -= DAY; // just past midnight: the whole of yesterday
        }
        let span = hour - day;
        let back = (cfg.surge_baseline_days + cfg.surge_guard_days) as i64;
        let from = day - back * DAY;
        let hourly =
            self.store.flow_series(60, from_ms(from), from_ms(hour), None, &["pass", "conditional", "deny"]).await?;
        let mut sums: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for (cp, bucket, n) in hourly {
            let d = (bucket - from).div_euclid(DAY);
            if (bucket - from).rem_euclid(DAY) < span && (0..=back).contains(&d) {
                sums.entry(cp).or_insert_with(|| vec![0.0; back as usize + 1])[d as usize] += n as f64;
            }
        }
        // The service-area test points' samples, the same way: today's hours so far against the
        // same hours of the baseline days.
        let days = self.store.test_point_days(from_ms(from), from_ms(hour), Duration::milliseconds(span)).await?;
        let mut tp_sums: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for (tp, d, n) in days {
            if (0..=back).contains(&d) {
                tp_sums.entry(tp).or_insert_with(|| vec![0.0; back as usize + 1])[d as usize] += n as f64;
            }
        }
        let mut raised = Vec::new();
        for (field, counted, sums) in [("checkpoint", "entries", &sums), ("test_point", "samples", &tp_sums)] {
            for (id, values) in sums {
                let (history, observed) = values.split_at(back as usize);
                let Some(c2) = detect::surge(history, observed[0], cfg) else { continue };
                let (subject, key) = match field {
                    "checkpoint" => (id.clone(), format!("surge:{id}:{day}")),
                    _ => (format!("test point {id}"), format!("surge:test_point:{id}:{day}")),
                };
                let why = format!(
                    "{subject}: {} {counted} today up to {} against {:.1} ± {:.1} on the same hours of {} days before a {}-day guard band: {:.1} standard deviations, over the threshold of {}",
                    c2.observed,
                    time::rfc3339(from_ms(hour)),
                    c2.mean,
                    c2.sd,
                    cfg.surge_baseline_days,
                    cfg.surge_guard_days,
                    c2.statistic,
                    cfg.surge_threshold_sd
                );
                let mut payload = serde_json::json!({
                    "why": why, "method": "EARS C2",
                    "day": time::rfc3339(from_ms(day)), "until": time::rfc3339(from_ms(hour)),
                    "observed": c2.observed, "baseline_mean": c2.mean, "baseline_sd": c2.sd, "statistic": c2.statistic,
                    "threshold_sd": cfg.surge_threshold_sd, "baseline": &history[..cfg.surge_baseline_days],
                    "guard_band": &history[cfg.surge_baseline_days..],
                });
                payload[field] = serde_json::json!(id);
                raised.extend(self.warn("surge", key, payload, now).await?);
            }
        }
        // CUSUM over complete days.
        let today = bucket_of(1440, now_ms);
        let days = (cfg.cusum_reference_days + cfg.cusum_days) as i64;
        let from = today - days * DAY;
        let daily =
            self.store.flow_series(1440, from_ms(from), from_ms(today), None, &["pass", "conditional", "deny"]).await?;
        let mut series: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for (cp, bucket, n) in daily {
            let d = ((bucket - from) / DAY) as usize;
            if d < days as usize {
                series.entry(cp).or_insert_with(|| vec![0.0; days as usize])[d] += n as f64;
            }
        }
        for (cp, values) in &series {
            let Some(rise) = detect::slow_rise(values, cfg) else { continue };
            let alarm = rise.cusum.alarm.unwrap_or(0);
            let alarm_day = from + (cfg.cusum_reference_days + alarm) as i64 * DAY;
            let why = format!(
                "{cp}: daily entries rose slowly: the CUSUM (k = {}, reference {:.1} ± {:.1} over {} days) passed {} on {}",
                cfg.cusum_k,
                rise.reference_mean,
                rise.reference_sd,
                cfg.cusum_reference_days,
                cfg.cusum_h,
                time::rfc3339(from_ms(alarm_day))
            );
            let payload = serde_json::json!({
                "why": why, "method": "CUSUM", "checkpoint": cp, "reference_mean": rise.reference_mean,
                "reference_sd": rise.reference_sd, "k": cfg.cusum_k, "h": cfg.cusum_h,
                "daily": &values[cfg.cusum_reference_days..], "sums": rise.cusum.sums,
                "alarm_day": time::rfc3339(from_ms(alarm_day)),
            });
            raised.extend(self.warn("slow_rise", format!("slow_rise:{cp}:{today}"), payload, now).await?);
        }
        Ok(raised)
    }

    /// Positive clusters by residence county, employer and test point (the sampling site): the
    /// trailing window against each group's own rate before it.
    pub async fn detect_clusters(&self, now: DateTime<Utc>) -> AppResult<Vec<i64>> {
        let cfg = &self.analytics;
        let window_from = now - Duration::days(cfg.cluster_window_days);
        let from = window_from - Duration::days(cfg.cluster_baseline_days);
        let rows = self.store.positives(from, now).await?;
        let mut groups: BTreeMap<(&str, String), (u64, u64)> = BTreeMap::new();
        for r in &rows {
            let recent = r.sampled_at >= window_from;
            let keys =
                [("county", r.county.clone()), ("employer", r.employer.clone()), ("test_point", Some(r.site.clone()))];
            for (dim, v) in keys {
                if let Some(v) = v {
                    let e = groups.entry((dim, v)).or_default();
                    if recent { e.0 += 1 } else { e.1 += 1 }
                }
            }
        }
        let day = bucket_of(1440, now.timestamp_millis());
        let mut raised = Vec::new();
        for ((dim, group), (observed, baseline)) in groups {
            let Some(e) = detect::cluster(observed, baseline, cfg) else { continue };
            let why = format!(
                "{observed} positives by {dim} {group} in the last {} days where {:.2} were expected ({baseline} in the {} days before, plus one): P = {:.2e}, under {}",
                cfg.cluster_window_days, e.expected, cfg.cluster_baseline_days, e.p_value, cfg.cluster_alpha
            );
            let payload = serde_json::json!({
                "why": why, "dimension": dim, "group": group, "observed": e.observed, "expected": e.expected,
                "p_value": e.p_value, "window_days": cfg.cluster_window_days, "baseline_positives": baseline,
            });
            raised.extend(
                self.warn("positive_cluster", format!("positive_cluster:{dim}:{group}:{day}"), payload, now).await?,
            );
        }
        Ok(raised)
    }

    /// Lab trouble: results arriving late, and positivity jumping.
    pub async fn detect_labs(&self, now: DateTime<Utc>) -> AppResult<Vec<i64>> {
        let cfg = &self.analytics;
        let late = Duration::hours(cfg.lab_late_hours);
        let due = (now - Duration::days(3) - late, now - late);
        let recent_from = now - Duration::days(cfg.lab_recent_days);
        let baseline_from = recent_from - Duration::days(cfg.lab_baseline_days);
        let stats = self.store.lab_stats(due, late, baseline_from, recent_from, now).await?;
        let day = bucket_of(1440, now.timestamp_millis());
        let mut raised = Vec::new();
        for s in &stats {
            if let Some(share) = detect::late_results(s.due, s.late, cfg) {
                let why = format!(
                    "{}: {} of {} samples due ({:.0} %) had no result within {} hours of sampling (median {} hours)",
                    s.lab,
                    s.late,
                    s.due,
                    share * 100.0,
                    cfg.lab_late_hours,
                    s.median_hours.map(|h| h.to_string()).unwrap_or_else(|| "–".into())
                );
                let payload = serde_json::json!({
                    "why": why, "lab": s.lab, "due": s.due, "late": s.late, "late_share": share,
                    "late_hours": cfg.lab_late_hours, "median_hours": s.median_hours,
                });
                raised.extend(self.warn("lab_late", format!("lab_late:{}:{day}", s.lab), payload, now).await?);
            }
            if let Some(e) =
                detect::positivity_jump(s.recent_positives, s.recent_tests, s.baseline_positives, s.baseline_tests, cfg)
            {
                let why = format!(
                    "{}: {} positives of {} results in the last {} days where {:.2} were expected at its rate before ({} of {}): P = {:.2e}",
                    s.lab,
                    s.recent_positives,
                    s.recent_tests,
                    cfg.lab_recent_days,
                    e.expected,
                    s.baseline_positives,
                    s.baseline_tests,
                    e.p_value
                );
                let payload = serde_json::json!({
                    "why": why, "lab": s.lab, "positives": s.recent_positives, "tests": s.recent_tests,
                    "baseline_positives": s.baseline_positives, "baseline_tests": s.baseline_tests,
                    "expected": e.expected, "p_value": e.p_value,
                });
                raised.extend(
                    self.warn("lab_positivity", format!("lab_positivity:{}:{day}", s.lab), payload, now).await?,
                );
            }
        }
        Ok(raised)
    }

    /// Computes testing demand for the 14 days from `now`'s Beijing date and stores it.
    pub async fn compute_demand(&self, now: DateTime<Utc>) -> AppResult<DemandBody> {
        let policy = self.policy_at(now)?;
        let window = policy.commuter_window_days;
        let today = now.with_timezone(&tongxing_domain::shanghai()).date_naive();
        let tests: Vec<CommuterTest> = self
            .store
            .commuter_tests(now - Duration::days(window + 1), now)
            .await?
            .into_iter()
            .map(|(county, last_negative)| CommuterTest { county, last_negative })
            .collect();
        let places = self.store.places(None).await?;
        let counties: HashMap<String, (f64, f64)> =
            places.iter().filter(|p| p.kind == "county").map(|p| (p.id.clone(), (p.lat, p.lon))).collect();
        let test_points: Vec<(String, (f64, f64))> =
            places.iter().filter(|p| p.kind == "test_point").map(|p| (p.id.clone(), (p.lat, p.lon))).collect();
        let nearest =
            |county: &str| counties.get(county).and_then(|c| demand::nearest(*c, &test_points)).map(str::to_string);
        let (rows, lapsed) = demand::commuter_expiries(&tests, window, today, 14, nearest);
        let days: Vec<chrono::NaiveDate> = (0..14).map(|d| today + Duration::days(d)).collect();
        let mut by_county: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        let mut by_test_point: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for r in &rows {
            let d = (r.day - today).num_days() as usize;
            by_county.entry(r.county.clone()).or_insert_with(|| vec![0; 14])[d] += r.commuters;
            let tp = r.test_point.clone().unwrap_or_else(|| "(no place)".into());
            by_test_point.entry(tp).or_insert_with(|| vec![0; 14])[d] += r.commuters;
        }
        // Visitors admitted (pass or conditional) per Beijing day, the complete days only.
        let day0 = bucket_of(1440, now.timestamp_millis());
        let from = day0 - 56 * DAY;
        let series = self
            .store
            .flow_series(1440, from_ms(from), from_ms(day0), Some("visitor"), &["pass", "conditional"])
            .await?;
        let mut daily = vec![0u64; 56];
        for (_, bucket, n) in series {
            let d = ((bucket - from) / DAY) as usize;
            if d < 56 {
                daily[d] += n.max(0) as u64;
            }
        }
        // Leading days without any entry are before the records began.
        let first = daily.iter().position(|n| *n > 0).unwrap_or(daily.len());
        let history: Vec<f64> = daily[first..].iter().map(|n| *n as f64).collect();
        let label = |ms: i64| from_ms(ms).with_timezone(&tongxing_domain::shanghai()).date_naive().to_string();
        let forecast = demand::forecast(&history, VISITOR_SEASONS, 14);
        let body = DemandBody {
            computed_at: now,
            commuter_window_days: window,
            days: days.iter().map(|d| d.to_string()).collect(),
            by_county: by_county.into_iter().collect(),
            by_test_point: by_test_point.into_iter().collect(),
            lapsed,
            visitor_history: (first..56)
                .rev()
                .take(28)
                .rev()
                .map(|d| (label(from + d as i64 * DAY), daily[d]))
                .collect(),
            visitor_forecast: forecast
                .into_iter()
                .enumerate()
                .map(|(h, f)| (days[h].to_string(), f.map(|v| v.round())))
                .collect(),
            visitor_backtest: demand::backtest(&history, VISITOR_SEASONS, 14),
            visitor_seasons: VISITOR_SEASONS,
        };
        let json = serde_json::to_value(&body).map_err(|e| AppError::Internal(e.to_string()))?;
        self.store.save_demand(now, &json).await?;
        Ok(body)
    }

    /// Runs every periodic detector once (for the job, and tests).
    pub async fn detect_all(&self, now: DateTime<Utc>) -> AppResult<Vec<i64>> {
        let mut raised = self.detect_surges(now).await?;
        raised.extend(self.detect_clusters(now).await?);
        raised.extend(self.detect_labs(now).await?);
        Ok(raised)
    }

    /// A flow table: counts per row and column from the rollups (never the events).
    pub async fn flows(&self, r: &FlowRequest, suppressed: bool) -> AppResult<CountTable> {
        if r.until <= r.since {
            return Err(AppError::invalid("until", "must be after since"));
        }
        let span = (r.until - r.since).num_milliseconds();
        if r.rows == FlowDim::Bucket || r.columns == FlowDim::Bucket {
            let n = span / (r.grain * 60_000) + 1;
            if n > MAX_COLUMNS {
                return Err(AppError::invalid(
                    "since",
                    format!(
                        "{n} buckets of {} minutes: at most {MAX_COLUMNS}; a shorter period or a longer grain",
                        r.grain
                    ),
                ));
            }
        }
        if r.rows == r.columns {
            return Err(AppError::invalid("columns", "must differ from rows"));
        }
        let cells = self
            .store
            .flow_table(&FlowQuery {
                grain: r.grain,
                since: r.since,
                until: r.until,
                rows: r.rows,
                columns: r.columns,
                checkpoint: r.checkpoint.clone(),
                verdict: r.verdict.clone(),
                who: r.who.clone(),
                mode: r.mode.clone(),
            })
            .await?;
        let keys = |d: FlowDim, found: BTreeSet<String>| -> Vec<String> {
            match d {
                FlowDim::Bucket => {
                    let len = r.grain * 60_000;
                    let first = bucket_of(r.grain, r.since.timestamp_millis());
                    (0..)
                        .map(|i| first + i * len)
                        .take_while(|b| *b < r.until.timestamp_millis())
                        .map(|b| b.to_string())
                        .collect()
                }
                FlowDim::HourOfDay => (0..24).map(|h| h.to_string()).collect(),
                FlowDim::Verdict => ["pass", "conditional", "deny"].iter().map(|s| s.to_string()).collect(),
                _ => found.into_iter().collect(),
            }
        };
        let row_keys = keys(r.rows, cells.iter().map(|c| c.0.clone()).collect());
        let col_keys = keys(r.columns, cells.iter().map(|c| c.1.clone()).collect());
        let ri: HashMap<&str, usize> = row_keys.iter().enumerate().map(|(i, k)| (k.as_str(), i)).collect();
        let ci: HashMap<&str, usize> = col_keys.iter().enumerate().map(|(i, k)| (k.as_str(), i)).collect();
        let mut grid = vec![vec![0u64; col_keys.len()]; row_keys.len()];
        for (rk, ck, n) in &cells {
            if let (Some(&i), Some(&j)) = (ri.get(rk.as_str()), ci.get(ck.as_str())) {
                grid[i][j] += (*n).max(0) as u64;
            }
        }
        let show = |d: FlowDim, keys: Vec<String>| -> Vec<String> {
            if d == FlowDim::Bucket {
                keys.iter().map(|k| time::rfc3339(from_ms(k.parse().unwrap_or(0)))).collect()
            } else {
                keys
            }
        };
        let threshold = suppressed.then_some(self.analytics.suppression_threshold);
        Ok(CountTable::new(
            dim_name(r.rows),
            dim_name(r.columns),
            show(r.rows, row_keys),
            show(r.columns, col_keys),
            grid,
            threshold,
        ))
    }

    /// The time-of-day profile of a Beijing date (one checkpoint, or all): entries per hour on
    /// that day and on the same weekday of the three weeks before.
    pub async fn profile(
        &self,
        date: chrono::NaiveDate,
        checkpoint: Option<String>,
        suppressed: bool,
    ) -> AppResult<CountTable> {
        let start = date
            .and_hms_opt(0, 0, 0)
            .and_then(|d| d.and_local_timezone(tongxing_domain::shanghai()).single())
            .ok_or_else(|| AppError::invalid("date", "not a date"))?
            .with_timezone(&Utc);
        let mut keys = Vec::new();
        let mut grid = Vec::new();
        for week in 0..4 {
            let since = start - Duration::days(7 * week);
            let cells = self
                .store
                .flow_table(&FlowQuery {
                    grain: 60,
                    since,
                    until: since + Duration::days(1),
                    rows: FlowDim::Verdict,
                    columns: FlowDim::HourOfDay,
                    checkpoint: checkpoint.clone(),
                    verdict: None,
                    who: None,
                    mode: None,
                })
                .await?;
            let mut row = vec![0u64; 24];
            for (_, hour, n) in cells {
                if let Ok(h) = hour.parse::<usize>()
                    && h < 24
                {
                    row[h] += n.max(0) as u64;
                }
            }
            keys.push((date - Duration::days(7 * week)).to_string());
            grid.push(row);
        }
        let threshold = suppressed.then_some(self.analytics.suppression_threshold);
        Ok(CountTable::new("day", "hour_of_day", keys, (0..24).map(|h| h.to_string()).collect(), grid, threshold))
    }

    /// Shortcuts per (denied at, checked at) over the days from `since` to `until`.
    pub async fn shortcuts(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        suppressed: bool,
    ) -> AppResult<CountTable> {
        if until <= since {
            return Err(AppError::invalid("until", "must be after since"));
        }
        let pairs = self.store.shortcut_pairs(since, until).await?;
        let rows: Vec<String> = pairs.iter().map(|p| p.0.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        let cols: Vec<String> = pairs.iter().map(|p| p.1.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        let mut grid = vec![vec![0u64; cols.len()]; rows.len()];
        for (f, t, n) in &pairs {
            let (i, j) = (rows.iter().position(|r| r == f), cols.iter().position(|c| c == t));
            if let (Some(i), Some(j)) = (i, j) {
                grid[i][j] += (*n).max(0) as u64;
            }
        }
        let threshold = suppressed.then_some(self.analytics.suppression_threshold);
        Ok(CountTable::new("denied_at", "checked_at", rows, cols, grid, threshold))
    }

    /// The latest testing-demand forecast (the job's, hourly), with its tables
    /// suppressed for the analyst.
    pub async fn demand(&self, suppressed: bool) -> AppResult<serde_json::Value> {
        let Some((_, mut body)) = self.store.latest_demand().await? else {
            return Err(AppError::Unavailable(
                "testing demand is not computed yet: the analytics job computes it within seconds of starting, then hourly"
                    .into(),
            ));
        };
        let threshold = suppressed.then_some(self.analytics.suppression_threshold);
        let days: Vec<String> = serde_json::from_value(body["days"].clone()).unwrap_or_default();
        for (field, rows_by) in [("by_county", "county"), ("by_test_point", "test_point")] {
            let rows: Vec<(String, Vec<u64>)> = serde_json::from_value(body[field].clone()).unwrap_or_default();
            let (keys, grid): (Vec<String>, Vec<Vec<u64>>) = rows.into_iter().unzip();
            let table = CountTable::new(rows_by, "day", keys, days.clone(), grid, threshold);
            body[field] = serde_json::to_value(table).map_err(|e| AppError::Internal(e.to_string()))?;
        }
        let lapsed: BTreeMap<String, u64> = serde_json::from_value(body["lapsed"].clone()).unwrap_or_default();
        let (keys, counts): (Vec<String>, Vec<u64>) = lapsed.into_iter().unzip();
        let table = CountTable::new(
            "county",
            "lapsed",
            keys,
            vec!["commuters".into()],
            counts.into_iter().map(|n| vec![n]).collect(),
            threshold,
        );
        body["lapsed"] = serde_json::to_value(table).map_err(|e| AppError::Internal(e.to_string()))?;
        // Each test point's capacity (registered with its place) against the commuters due there
        // each day, as the caller may see them: the days over capacity.
        let capacity: BTreeMap<String, i64> = self
            .store
            .places(Some("test_point"))
            .await?
            .into_iter()
            .filter_map(|p| p.capacity.map(|c| (p.id, c)))
            .collect();
        let by_tp: CountTable =
            serde_json::from_value(body["by_test_point"].clone()).map_err(|e| AppError::Internal(e.to_string()))?;
        let mut over = Vec::new();
        for row in &by_tp.rows {
            let Some(&cap) = capacity.get(&row.key) else { continue };
            for (day, n) in by_tp.columns.iter().zip(&row.cells) {
                if let Some(n) = n.filter(|n| *n as i64 > cap) {
                    over.push(serde_json::json!({"test_point": row.key, "day": day, "demand": n, "capacity": cap}));
                }
            }
        }
        body["capacity"] = serde_json::json!(capacity);
        body["over_capacity"] = serde_json::Value::Array(over);
        // The visitors' daily series and its forecast: no total goes with them, so a day under
        // the threshold is hidden by itself (`null`).
        if let Some(k) = threshold {
            for field in ["visitor_history", "visitor_forecast"] {
                for day in body[field].as_array_mut().into_iter().flatten() {
                    if day[1].as_f64().is_some_and(|n| n < k as f64) {
                        day[1] = serde_json::Value::Null;
                    }
                }
            }
        }
        Ok(body)
    }

    /// The entry events behind one checkpoint's count over a period, for the health authority;
    /// each person shown is written to the access log with the purpose given.
    pub async fn drill_down(&self, d: &DrillDown<'_>, now: DateTime<Utc>) -> AppResult<Vec<tongxing_store::CellEntry>> {
        let DrillDown { checkpoint, since, until, verdict, caller, purpose, reveal } = *d;
        if until <= since {
            return Err(AppError::invalid("until", "must be after since"));
        }
        let mut rows = self.store.cell_entries(checkpoint, since, until, verdict, 200).await?;
        let mut logged = BTreeSet::new();
        for r in &mut rows {
            if let Some(p) = r.person_id
                && logged.insert(p)
            {
                self.store
                    .log_access(&tongxing_store::AccessLogEntry {
                        at: now,
                        token_id: caller.0.to_string(),
                        role: caller.1.to_string(),
                        person_id: p,
                        action: "analytics drill-down".into(),
                        purpose: purpose.to_string(),
                    })
                    .await?;
            }
            if !reveal {
                r.doc_number = tongxing_domain::mask::document_number(&r.doc_number);
                r.name = r.name.as_deref().map(tongxing_domain::mask::name);
            }
        }
        Ok(rows)
    }
}

fn from_ms(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_leaves_suppressed_cells_empty() {
        let t = CountTable::new(
            "checkpoint",
            "verdict",
            vec!["A".into(), "B,C".into()],
            vec!["pass".into(), "conditional".into(), "deny".into()],
            vec![vec![100, 2, 30], vec![50, 20, 10]],
            Some(5),
        );
        let csv = t.to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "checkpoint,pass,conditional,deny,total");
        assert!(lines[1].starts_with("A,100,,"), "{csv}");
        assert!(lines[2].starts_with("\"B,C\","), "{csv}");
        assert_eq!(lines.len(), 4);
        assert_eq!(t.rows[0].denial_rate, None, "its deny count is suppressed as the complement");
        let open = CountTable::new(
            "checkpoint",
            "verdict",
            vec!["A".into()],
            vec!["pass".into(), "conditional".into(), "deny".into()],
            vec![vec![90, 0, 10]],
            None,
        );
        assert_eq!(open.rows[0].denial_rate, Some(0.1));
    }
}
