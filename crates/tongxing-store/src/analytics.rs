//! Big data (issue 13): places on the map, flows kept incrementally from the entry events, the
//! per-person state of the cloned-code and shortcut detectors, and what the periodic detectors
//! and the testing-demand forecast read.
//!
//! The rollup job ([`Store::rollup_pass`]) reads the entry events after its watermark, adds
//! their counts to `flows`, compares each person's check with their last one, raises the
//! warnings that follow, and moves the watermark, all in one transaction: an event is counted
//! once, and a warning raised once, whichever server runs the pass (the state row is taken
//! first, so a second runner waits, then finds the watermark moved). Views read `flows` only.
//!
//! Each document's last check is held in the memory of the process that runs the pass
//! ([`Recent`]), for the events counted so far and only as far back as a warning can reach: a
//! table of the last check of a million people took a random write per check, which cost a
//! third of the checks' speed. The memory says which state row it matches; a process whose
//! memory does not match (at start, after another server ran the job, after a rebuild) reads
//! it again from the entry events of those hours.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use sqlx::Row;
use tongxing_domain::analytics::AnalyticsConfig;
use tongxing_domain::analytics::detect::{self, Sighting};
use tongxing_domain::analytics::stats::LatLon;

use crate::alerts::NewAlert;
use crate::model::{from_ms, ms};
use crate::{Backend, Store, StoreError};

/// Bucket lengths of the flows, in minutes.
pub const GRAINS: [i64; 3] = [15, 60, 1440];
const MINUTE_MS: i64 = 60_000;
/// Beijing is UTC+8: days start at 16:00 UTC.
const OFFSET_MS: i64 = 8 * 3_600_000;
/// A gap in the entry ids is looked for this long, then given up (a rolled-back transaction).
const GAP_PATIENCE_MS: i64 = 5 * 60_000;
/// At most this many gaps are remembered.
const MAX_GAPS: usize = 10_000;
/// Checks older than this when the job reaches them (a rebuild, a backfill after a long stop)
/// are counted, but raise no warning: warnings are about now.
pub const WARN_WITHIN_HOURS: i64 = 24;

/// The start of the bucket of `grain` minutes holding `t` (days from 00:00 in Beijing).
pub fn bucket_of(grain: i64, t: i64) -> i64 {
    let len = grain * MINUTE_MS;
    if grain >= 1440 { (t + OFFSET_MS).div_euclid(len) * len - OFFSET_MS } else { t.div_euclid(len) * len }
}

/// A place on the map.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Place {
    /// checkpoint, test_point or county.
    pub kind: String,
    pub id: String,
    pub name: Option<String>,
    pub lat: f64,
    pub lon: f64,
    /// A test point's capacity: samples a day (testing demand is compared with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<i64>,
}

/// The kinds of place.
pub const PLACE_KINDS: &[&str] = &["checkpoint", "test_point", "county"];

/// What one pass of the rollup job did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RollupPass {
    /// Entry events counted.
    pub events: usize,
    /// Warnings raised (alert ids).
    pub alerts: Vec<i64>,
    /// The watermark after the pass, and the ids under it still awaited.
    pub watermark: i64,
    pub gaps: usize,
}

/// The dimensions a flow can be broken down by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowDim {
    Checkpoint,
    Bucket,
    Verdict,
    Reason,
    Who,
    Mode,
    /// The hour of the day in Beijing (0–23), from hourly rows.
    HourOfDay,
}

impl FlowDim {
    pub const NAMES: &'static [&'static str] =
        &["checkpoint", "bucket", "verdict", "reason", "who", "mode", "hour_of_day"];
    pub fn parse(s: &str) -> Option<FlowDim> {
        Some(match s {
            "checkpoint" => FlowDim::Checkpoint,
            "bucket" => FlowDim::Bucket,
            "verdict" => FlowDim::Verdict,
            "reason" => FlowDim::Reason,
            "who" => FlowDim::Who,
            "mode" => FlowDim::Mode,
            "hour_of_day" => FlowDim::HourOfDay,
            _ => return None,
        })
    }
    /// The column (or expression) in `flows`; text for every dimension, so rows read alike.
    fn sql(self) -> &'static str {
        match self {
            FlowDim::Checkpoint => "checkpoint_id",
            FlowDim::Bucket => "CAST(bucket AS TEXT)",
            FlowDim::Verdict => "verdict",
            FlowDim::Reason => "reason",
            FlowDim::Who => "who",
            FlowDim::Mode => "mode",
            FlowDim::HourOfDay => "CAST(((bucket + 28800000) / 3600000) % 24 AS TEXT)",
        }
    }
}

/// Which flows to count.
#[derive(Debug, Clone)]
pub struct FlowQuery {
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

/// One cell of a flow table: (row key, column key, count).
pub type FlowCell = (String, String, i64);

/// A positive sample with what the cluster detector groups it by.
#[derive(Debug, Clone)]
pub struct PositiveRow {
    pub sampled_at: DateTime<Utc>,
    pub lab: String,
    pub site: String,
    pub county: Option<String>,
    pub employer: Option<String>,
}

/// A lab's samples in a period: how many were due, late, tested, positive (recent and before).
#[derive(Debug, Clone, Default, Serialize)]
pub struct LabStats {
    pub lab: String,
    /// Sampled in the window of due results, and how many of them came late (or not at all).
    pub due: u64,
    pub late: u64,
    /// Results (negative or positive) and positives of samples taken recently, and before.
    pub recent_tests: u64,
    pub recent_positives: u64,
    pub baseline_tests: u64,
    pub baseline_positives: u64,
    /// The median hours from sampling to result of the due samples that have one.
    pub median_hours: Option<f64>,
}

/// An entry event behind a cell, for the health authority's drill-down.
#[derive(Debug, Clone, Serialize)]
pub struct CellEntry {
    pub event_id: i64,
    #[serde(skip)]
    pub person_id: Option<i64>,
    pub checkpoint_id: String,
    #[serde(serialize_with = "tongxing_domain::time::serialize")]
    pub checked_at: DateTime<Utc>,
    pub doc_number: String,
    pub name: Option<String>,
    pub verdict: String,
    pub reason: String,
    pub plate: Option<String>,
}

/// One event as the job reads it.
struct JobEvent {
    id: i64,
    checkpoint: String,
    at: i64,
    doc_key: String,
    person: Option<i64>,
    verdict: String,
    reason: String,
    commuter: bool,
    vehicle: bool,
}

#[derive(Clone)]
struct LastCheck {
    event_id: i64,
    checkpoint: String,
    at: i64,
    denied: Option<(i64, String, i64)>,
}

impl LastCheck {
    /// The document's state after a check (any order: the latest check and the latest denial
    /// by time are kept; of two at the same time, the one applied last).
    fn after(prev: Option<&LastCheck>, id: i64, checkpoint: &str, at: i64, denied: bool) -> LastCheck {
        let mut next =
            prev.cloned().unwrap_or(LastCheck { event_id: id, checkpoint: checkpoint.to_string(), at, denied: None });
        if prev.is_none() || at >= next.at {
            next.event_id = id;
            next.checkpoint = checkpoint.to_string();
            next.at = at;
        }
        if denied && next.denied.as_ref().is_none_or(|d| at >= d.2) {
            next.denied = Some((id, checkpoint.to_string(), at));
        }
        next
    }

    /// The time of its latest check or denial.
    fn newest(&self) -> i64 {
        self.denied.as_ref().map_or(self.at, |d| d.2.max(self.at))
    }
}

/// The per-document memory of the cloned-code and shortcut detectors: each document's latest
/// check and denial among the events counted, back to the horizon (older ones can raise no
/// warning). Held by the process that runs the rollup, matched to the state row it was made for.
#[derive(Default)]
pub(crate) struct Recent {
    /// The rollup state (watermark, gaps, updated_at) this memory is for.
    state: Option<(i64, String, i64)>,
    by_doc: HashMap<String, LastCheck>,
    /// The time up to which documents were last dropped as past the horizon.
    pruned_at: i64,
}

impl Recent {
    /// Drops the documents whose latest check and denial are older than `horizon` before `at`
    /// (at most every ten minutes of event time).
    fn prune(&mut self, at: i64, horizon: i64) {
        if at - self.pruned_at >= 10 * MINUTE_MS {
            self.by_doc.retain(|_, l| l.newest() >= at - horizon);
            self.pruned_at = at;
        }
    }
}

/// How far back a check can matter to a new one: a shortcut's hours, or the time the road takes
/// between the two farthest checkpoints, whichever is longer, plus an hour for events counted
/// out of order.
fn horizon_ms(places: &HashMap<String, LatLon>, cfg: &AnalyticsConfig) -> i64 {
    let points: Vec<LatLon> = places.values().copied().collect();
    let mut farthest: f64 = 0.0;
    for (i, a) in points.iter().enumerate() {
        for b in &points[i + 1..] {
            farthest = farthest.max(tongxing_domain::analytics::stats::haversine_km(*a, *b));
        }
    }
    let road_hours = (farthest / cfg.max_speed_kmh).ceil().min(24.0 * 365.0) as i64;
    (cfg.shortcut_hours.max(road_hours) + 1) * 3_600_000
}

/// A flow's key: (grain, bucket, checkpoint, verdict, reason, who, mode).
type FlowKey = (i64, i64, String, String, String, &'static str, &'static str);
/// A warning found in a batch: (kind, dedup key, document key, person, Beijing day of the
/// check, payload without the person).
type Found = (String, String, String, Option<i64>, i64, serde_json::Value);

/// The counts and warnings of a batch, worked out in memory.
struct Batch {
    flows: BTreeMap<FlowKey, i64>,
    shortcuts: BTreeMap<(i64, String, String), i64>,
    /// Each document of the batch, after its checks (given only the batch's documents).
    last: HashMap<String, LastCheck>,
    warnings: Vec<Found>,
}

fn sighting(event_id: i64, checkpoint: &str, at: i64, places: &HashMap<String, LatLon>) -> Sighting {
    Sighting { event_id, checkpoint: checkpoint.to_string(), at: from_ms(at), place: places.get(checkpoint).copied() }
}

fn rfc(t: i64) -> String {
    tongxing_domain::time::rfc3339(from_ms(t))
}

/// Counts the events and compares each person's checks (events in id order; `last` holds the
/// stored state of their people).
fn work_out(
    events: &[JobEvent],
    mut last: HashMap<String, LastCheck>,
    places: &HashMap<String, LatLon>,
    cfg: &AnalyticsConfig,
    now: i64,
) -> Batch {
    let mut b =
        Batch { flows: BTreeMap::new(), shortcuts: BTreeMap::new(), last: HashMap::new(), warnings: Vec::new() };
    let warn_from = now - WARN_WITHIN_HOURS * 3_600_000;
    for e in events {
        let who = if e.commuter { "commuter" } else { "visitor" };
        let mode = if e.vehicle { "vehicle" } else { "foot" };
        for g in GRAINS {
            *b.flows
                .entry((g, bucket_of(g, e.at), e.checkpoint.clone(), e.verdict.clone(), e.reason.clone(), who, mode))
                .or_default() += 1;
        }
        let person = e.person;
        let doc = e.doc_key.clone();
        let cur = sighting(e.id, &e.checkpoint, e.at, places);
        let prev = last.get(&doc).cloned();
        if let Some(p) = &prev {
            let before = sighting(p.event_id, &p.checkpoint, p.at, places);
            if let Some(f) = detect::cloned_code(&before, &cur, cfg)
                && e.at >= warn_from
            {
                let (first, second) = if p.at <= e.at { (&before, &cur) } else { (&cur, &before) };
                let why = format!(
                    "checked at {} at {} and at {} at {}: {:.1} km apart in {:.0} minutes is {:.0} km/h, more than the {:.0} km/h the road allows",
                    first.checkpoint,
                    rfc(ms(first.at)),
                    second.checkpoint,
                    rfc(ms(second.at)),
                    f.distance_km,
                    f.seconds / 60.0,
                    f.speed_kmh.min(99_999.0),
                    f.max_speed_kmh
                );
                let day = bucket_of(1440, ms(second.at));
                b.warnings.push((
                    "cloned_code".into(),
                    format!("cloned_code:{doc}:{day}"),
                    doc.clone(),
                    person,
                    day,
                    serde_json::json!({
                        "why": why,
                        "first": {"event": first.event_id, "checkpoint": first.checkpoint, "checked_at": rfc(ms(first.at))},
                        "second": {"event": second.event_id, "checkpoint": second.checkpoint, "checked_at": rfc(ms(second.at))},
                        "distance_km": (f.distance_km * 10.0).round() / 10.0,
                        "minutes": (f.seconds / 6.0).round() / 10.0,
                        "speed_kmh": f.speed_kmh.min(99_999.0).round(),
                        "max_speed_kmh": f.max_speed_kmh,
                    }),
                ));
            }
            if let Some((denied_event, denied_cp, denied_at)) = &p.denied {
                let denied = sighting(*denied_event, denied_cp, *denied_at, places);
                if let Some(minutes) = detect::shortcut(&denied, &cur, cfg) {
                    let day = bucket_of(1440, e.at);
                    let n = b.shortcuts.entry((day, denied_cp.clone(), e.checkpoint.clone())).or_default();
                    *n += 1;
                    if e.at >= warn_from {
                        let why = format!(
                            "denied at {denied_cp} at {} and checked at {} {minutes:.0} minutes later ({}), within the {} hours a shortcut is watched for",
                            rfc(*denied_at),
                            e.checkpoint,
                            e.verdict,
                            cfg.shortcut_hours
                        );
                        b.warnings.push((
                            "shortcut".into(),
                            format!("shortcut:{denied_event}"),
                            doc.clone(),
                            person,
                            day,
                            serde_json::json!({
                                "why": why,
                                "denied": {"event": denied_event, "checkpoint": denied_cp, "checked_at": rfc(*denied_at)},
                                "checked": {"event": e.id, "checkpoint": e.checkpoint, "checked_at": rfc(e.at), "verdict": e.verdict},
                                "minutes": minutes.round(),
                                "within_hours": cfg.shortcut_hours,
                            }),
                        ));
                    }
                }
            }
        }
        let next = LastCheck::after(prev.as_ref(), e.id, &e.checkpoint, e.at, e.verdict == "deny");
        last.insert(doc, next);
    }
    b.last = last;
    b
}

/// The gaps after reading `ids` (sorted) above `watermark`: the new watermark and the ids
/// skipped, each first seen `now`.
fn new_gaps(watermark: i64, ids: &[i64], now: i64) -> (i64, Vec<(i64, i64)>) {
    let mut gaps = Vec::new();
    let mut expect = watermark + 1;
    for &id in ids {
        if id < expect {
            continue;
        }
        if gaps.len() < MAX_GAPS {
            gaps.extend((expect..id).take(MAX_GAPS - gaps.len()).map(|g| (g, now)));
        }
        expect = id + 1;
    }
    (ids.last().copied().unwrap_or(watermark).max(watermark), gaps)
}

macro_rules! analytics_impl {
    ($db:ty, alerts = $alerts:path,
     reason = $reason:literal, commuter = $commuter:literal, ids = $ids:literal, keys = $keys:literal,
     flow_rows = $flow_rows:literal, shortcut_rows = $shortcut_rows:literal,
     place_rows = $place_rows:literal, weeks = $weeks:literal) => {
        use $alerts as alerts_db;

        impl crate::Pools<$db> {
            pub(crate) async fn upsert_places(&self, places: &[Place]) -> Result<(), StoreError> {
                let rows: Vec<serde_json::Value> = places
                    .iter()
                    .map(|p| serde_json::json!({"k": p.kind, "i": p.id, "nm": p.name, "la": p.lat, "lo": p.lon, "cap": p.capacity}))
                    .collect();
                sqlx::query(concat!(
                    "INSERT INTO places (kind, id, name, lat, lon, capacity)
                     SELECT j.k, j.i, j.nm, CAST(j.la AS DOUBLE PRECISION), CAST(j.lo AS DOUBLE PRECISION), CAST(j.cap AS BIGINT) FROM ", $place_rows, " WHERE true
                     ON CONFLICT (kind, id) DO UPDATE SET name = excluded.name, lat = excluded.lat, lon = excluded.lon, capacity = excluded.capacity"
                ))
                .bind(serde_json::Value::Array(rows).to_string())
                .execute(&self.write)
                .await?;
                Ok(())
            }

            /// The ids of the people with these document keys (those registered).
            pub(crate) async fn person_ids(&self, keys: &[String]) -> Result<HashMap<String, i64>, StoreError> {
                let rows = sqlx::query(concat!("SELECT doc_key, id FROM people WHERE doc_key IN (", $keys, ")"))
                    .bind(serde_json::to_string(keys).unwrap_or_default())
                    .fetch_all(&self.read)
                    .await?;
                Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
            }

            pub(crate) async fn places(&self, kind: Option<&str>) -> Result<Vec<Place>, StoreError> {
                let rows = sqlx::query("SELECT kind, id, name, lat, lon, capacity FROM places WHERE ($1 IS NULL OR kind = $1) ORDER BY kind, id")
                    .bind(kind)
                    .fetch_all(&self.read)
                    .await?;
                Ok(rows
                    .iter()
                    .map(|r| Place { kind: r.get(0), id: r.get(1), name: r.get(2), lat: r.get(3), lon: r.get(4), capacity: r.get(5) })
                    .collect())
            }

            pub(crate) async fn rollup_pass(
                &self,
                limit: i64,
                cfg: &AnalyticsConfig,
                now: DateTime<Utc>,
                recent: &mut Recent,
            ) -> Result<RollupPass, StoreError> {
                let now_ms = ms(now);
                let places: HashMap<String, LatLon> = sqlx::query("SELECT id, lat, lon FROM places WHERE kind = 'checkpoint'")
                    .fetch_all(&self.read)
                    .await?
                    .iter()
                    .map(|r| (r.get::<String, _>(0), (r.get::<f64, _>(1), r.get::<f64, _>(2))))
                    .collect();
                // Everything is read first, on a reader (SQLite's one writer is not held while the
                // events are read and their facts parsed); the write transaction then moves the
                // watermark only from the value read (compare and set): a pass that another
                // runner overtook writes nothing.
                let state = sqlx::query("SELECT watermark, gaps, updated_at FROM rollup_state WHERE one = 1")
                    .fetch_one(&self.read)
                    .await?;
                let watermark: i64 = state.get(0);
                let old_gaps_text: String = state.get(1);
                let old_gaps: Vec<(i64, i64)> = serde_json::from_str(&old_gaps_text).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let gap_ids: Vec<i64> = old_gaps.iter().map(|g| g.0).collect();
                let horizon = horizon_ms(&places, cfg);
                let stamped: i64 = state.get(2);
                let this_state = (watermark, old_gaps_text.clone(), stamped);
                if recent.state.as_ref() != Some(&this_state) {
                    // The memory is not of these counted events: read it again from the events
                    // counted within the horizon of the newest of them (by time, not id: a
                    // backfill counts old events after new ones), streamed, so that only the
                    // documents are held, never the events.
                    recent.by_doc.clear();
                    recent.state = None;
                    let newest: Option<i64> = sqlx::query_scalar(
                        "SELECT checked_at FROM entry_events WHERE id <= $1 ORDER BY checked_at DESC LIMIT 1",
                    )
                    .bind(watermark)
                    .fetch_optional(&self.read)
                    .await?;
                    if let Some(newest) = newest {
                        use futures_util::TryStreamExt;
                        let uncounted: HashSet<i64> = gap_ids.iter().copied().collect();
                        let mut rows = sqlx::query(
                            "SELECT id, doc_key, checkpoint_id, checked_at, verdict = 'deny' FROM entry_events
                             WHERE checked_at >= $1 AND id <= $2 ORDER BY checked_at, id",
                        )
                        .bind(newest - horizon)
                        .bind(watermark)
                        .fetch(&self.read);
                        while let Some(r) = rows.try_next().await? {
                            let id: i64 = r.get(0);
                            if uncounted.contains(&id) {
                                continue;
                            }
                            let doc: String = r.get(1);
                            let next = LastCheck::after(recent.by_doc.get(&doc), id, r.get(2), r.get(3), r.get(4));
                            recent.by_doc.insert(doc, next);
                        }
                        recent.pruned_at = newest;
                    }
                    recent.state = Some(this_state);
                }
                let select = concat!(
                    "SELECT id, checkpoint_id, checked_at, doc_key, person_id, verdict, ", $reason, ", ", $commuter, ", plate IS NOT NULL FROM entry_events "
                );
                let mut rows = sqlx::query(sqlx::AssertSqlSafe(format!("{select} WHERE id > $1 ORDER BY id LIMIT $2")))
                    .bind(watermark)
                    .bind(limit)
                    .fetch_all(&self.read)
                    .await?;
                let fresh: Vec<i64> = rows.iter().map(|r| r.get::<i64, _>(0)).collect();
                if !gap_ids.is_empty() {
                    let found = sqlx::query(sqlx::AssertSqlSafe(format!("{select} WHERE id IN ({}) ORDER BY id", $ids)))
                        .bind(serde_json::to_string(&gap_ids).unwrap_or_default())
                        .fetch_all(&self.read)
                        .await?;
                    rows.extend(found);
                }
                let mut events: Vec<JobEvent> = rows
                    .iter()
                    .map(|r| JobEvent {
                        id: r.get(0),
                        checkpoint: r.get(1),
                        at: r.get(2),
                        doc_key: r.get(3),
                        person: r.get(4),
                        verdict: r.get(5),
                        reason: r.get::<Option<String>, _>(6).unwrap_or_default(),
                        commuter: r.get::<Option<String>, _>(7).as_deref() == Some("approved"),
                        vehicle: r.get(8),
                    })
                    .collect();
                events.sort_by_key(|e| e.id);
                let seen: HashSet<i64> = events.iter().map(|e| e.id).collect();
                let (new_watermark, mut gaps) = new_gaps(watermark, &fresh, now_ms);
                gaps.extend(old_gaps.into_iter().filter(|(id, first)| !seen.contains(id) && now_ms - first < GAP_PATIENCE_MS));
                gaps.truncate(MAX_GAPS);

                // The documents' last checks, from the memory.
                let last: HashMap<String, LastCheck> = events
                    .iter()
                    .filter_map(|e| recent.by_doc.get(&e.doc_key).map(|l| (e.doc_key.clone(), l.clone())))
                    .collect();
                let batch = work_out(&events, last, &places, cfg, now_ms);
                if events.is_empty() && gaps.len() == gap_ids.len() {
                    return Ok(RollupPass { events: 0, alerts: Vec::new(), watermark, gaps: gaps.len() });
                }
                let mut tx = self.write.begin().await?;
                // The state row's stamp: one more than any before it, so that the memory can
                // tell this pass's state from every other.
                let stamp = now_ms.max(stamped + 1);
                let moved = sqlx::query("UPDATE rollup_state SET updated_at = $1 WHERE one = 1 AND watermark = $2 AND gaps = $3 AND updated_at = $4")
                    .bind(stamp)
                    .bind(watermark)
                    .bind(&old_gaps_text)
                    .bind(stamped)
                    .execute(&mut *tx)
                    .await?;
                if moved.rows_affected() != 1 {
                    // Another runner counted these events meanwhile.
                    recent.state = None;
                    return Ok(RollupPass { events: 0, alerts: Vec::new(), watermark, gaps: gaps.len() });
                }

                if !batch.flows.is_empty() {
                    let rows: Vec<serde_json::Value> = batch
                        .flows
                        .iter()
                        .map(|((g, b, c, v, r, w, m), n)| serde_json::json!({"g": g, "b": b, "c": c, "v": v, "r": r, "w": w, "m": m, "n": n}))
                        .collect();
                    sqlx::query(concat!(
                        "INSERT INTO flows (grain, bucket, checkpoint_id, verdict, reason, who, mode, n)
                         SELECT CAST(j.g AS INTEGER), CAST(j.b AS BIGINT), j.c, j.v, j.r, j.w, j.m, CAST(j.n AS BIGINT) FROM ", $flow_rows, " WHERE true
                         ON CONFLICT (grain, bucket, checkpoint_id, verdict, reason, who, mode) DO UPDATE SET n = flows.n + excluded.n"
                    ))
                    .bind(serde_json::Value::Array(rows).to_string())
                    .execute(&mut *tx)
                    .await?;
                }
                if !batch.shortcuts.is_empty() {
                    let rows: Vec<serde_json::Value> = batch
                        .shortcuts
                        .iter()
                        .map(|((d, f, t), n)| serde_json::json!({"d": d, "f": f, "t": t, "n": n}))
                        .collect();
                    sqlx::query(concat!(
                        "INSERT INTO flow_shortcuts (day, from_checkpoint, to_checkpoint, n)
                         SELECT CAST(j.d AS BIGINT), j.f, j.t, CAST(j.n AS BIGINT) FROM ", $shortcut_rows, " WHERE true
                         ON CONFLICT (day, from_checkpoint, to_checkpoint) DO UPDATE SET n = flow_shortcuts.n + excluded.n"
                    ))
                    .bind(serde_json::Value::Array(rows).to_string())
                    .execute(&mut *tx)
                    .await?;
                }
                let mut raised = Vec::new();
                for (kind, key, doc, person, day, mut payload) in batch.warnings {
                    payload["person"] = masked_person_in(&mut tx, &doc).await?;
                    if kind == "shortcut" {
                        let from = payload["denied"]["checkpoint"].as_str().unwrap_or_default().to_string();
                        let to = payload["checked"]["checkpoint"].as_str().unwrap_or_default().to_string();
                        let n: Option<i64> = sqlx::query_scalar(
                            "SELECT n FROM flow_shortcuts WHERE day = $1 AND from_checkpoint = $2 AND to_checkpoint = $3",
                        )
                        .bind(day)
                        .bind(&from)
                        .bind(&to)
                        .fetch_optional(&mut *tx)
                        .await?;
                        payload["pair_today"] = serde_json::json!(n.unwrap_or(0));
                    }
                    let alert = NewAlert { kind, dedup_key: key, person_id: person, payload, at: now };
                    if let Some(id) = alerts_db::raise_alert_in(&mut tx, &alert).await? {
                        raised.push(id);
                    }
                }
                let gaps_text = serde_json::to_string(&gaps).unwrap_or_else(|_| "[]".into());
                sqlx::query("UPDATE rollup_state SET watermark = $1, gaps = $2 WHERE one = 1")
                    .bind(new_watermark)
                    .bind(&gaps_text)
                    .execute(&mut *tx)
                    .await?;
                // Should the commit's answer be lost, the memory no longer matches and is read again.
                recent.state = None;
                tx.commit().await?;
                let newest = events.iter().map(|e| e.at).max().unwrap_or(recent.pruned_at);
                recent.by_doc.extend(batch.last);
                recent.prune(newest, horizon);
                recent.state = Some((new_watermark, gaps_text, stamp));
                Ok(RollupPass { events: events.len(), alerts: raised, watermark: new_watermark, gaps: gaps.len() })
            }

            /// Empties the rollups and the detectors' per-person state, and sets the watermark
            /// back to 0: the job then counts every event again.
            pub(crate) async fn rollup_reset(&self) -> Result<(), StoreError> {
                let mut tx = self.write.begin().await?;
                sqlx::query("UPDATE rollup_state SET watermark = 0, gaps = '[]', updated_at = updated_at + 1 WHERE one = 1").execute(&mut *tx).await?;
                for table in ["flows", "flow_shortcuts"] {
                    sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}"))).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            pub(crate) async fn rollup_watermark(&self) -> Result<(i64, i64), StoreError> {
                let r = sqlx::query("SELECT watermark, (SELECT COALESCE(MAX(id), 0) FROM entry_events) FROM rollup_state WHERE one = 1")
                    .fetch_one(&self.read)
                    .await?;
                Ok((r.get(0), r.get(1)))
            }

            pub(crate) async fn flow_table(&self, q: &FlowQuery) -> Result<Vec<FlowCell>, StoreError> {
                let sql = format!(
                    "SELECT {r}, {c}, CAST(SUM(n) AS BIGINT) FROM flows
                     WHERE grain = $1 AND bucket >= $2 AND bucket < $3 AND ($4 IS NULL OR checkpoint_id = $4)
                       AND ($5 IS NULL OR verdict = $5) AND ($6 IS NULL OR who = $6) AND ($7 IS NULL OR mode = $7)
                     GROUP BY 1, 2 ORDER BY 1, 2",
                    r = q.rows.sql(),
                    c = q.columns.sql()
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(q.grain as i32)
                    .bind(bucket_of(q.grain, ms(q.since)))
                    .bind(ms(q.until))
                    .bind(q.checkpoint.as_deref())
                    .bind(q.verdict.as_deref())
                    .bind(q.who.as_deref())
                    .bind(q.mode.as_deref())
                    .fetch_all(&self.read)
                    .await?;
                Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
            }

            /// Entries per (checkpoint, bucket, verdict) of `grain` from `since` to `until`, optionally of one kind.
            pub(crate) async fn flow_series(
                &self,
                grain: i64,
                since: i64,
                until: i64,
                who: Option<&str>,
            ) -> Result<Vec<(String, i64, String, i64)>, StoreError> {
                let rows = sqlx::query(
                    "SELECT checkpoint_id, bucket, verdict, CAST(SUM(n) AS BIGINT) FROM flows
                     WHERE grain = $1 AND bucket >= $2 AND bucket < $3 AND ($4 IS NULL OR who = $4)
                     GROUP BY checkpoint_id, bucket, verdict ORDER BY checkpoint_id, bucket",
                )
                .bind(grain as i32)
                .bind(since)
                .bind(until)
                .bind(who)
                .fetch_all(&self.read)
                .await?;
                Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect())
            }

            pub(crate) async fn shortcut_pairs(&self, since: i64, until: i64) -> Result<Vec<(String, String, i64)>, StoreError> {
                let rows = sqlx::query(
                    "SELECT from_checkpoint, to_checkpoint, CAST(SUM(n) AS BIGINT) FROM flow_shortcuts
                     WHERE day >= $1 AND day < $2 GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2",
                )
                .bind(since)
                .bind(until)
                .fetch_all(&self.read)
                .await?;
                Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
            }

            pub(crate) async fn positives(&self, since: i64, until: i64) -> Result<Vec<PositiveRow>, StoreError> {
                let rows = sqlx::query(
                    "SELECT s.sampled_at, s.lab, s.site, p.residence_region, c.employer_uscc FROM samples s
                     JOIN people p ON p.id = s.person_id LEFT JOIN commuters c ON c.person_id = s.person_id
                     WHERE s.result = 'positive' AND s.sampled_at >= $1 AND s.sampled_at < $2",
                )
                .bind(since)
                .bind(until)
                .fetch_all(&self.read)
                .await?;
                Ok(rows
                    .iter()
                    .map(|r| PositiveRow {
                        sampled_at: from_ms(r.get(0)),
                        lab: r.get(1),
                        site: r.get(2),
                        county: r.get(3),
                        employer: r.get(4),
                    })
                    .collect())
            }

            /// Per lab: samples taken in [due_from, due_until) (their results were due `late_ms`
            /// after sampling) and how many came later or not at all; results and positives of
            /// samples taken in [recent_from, until) and in [baseline_from, recent_from).
            pub(crate) async fn lab_stats(
                &self,
                due_from: i64,
                due_until: i64,
                late_ms: i64,
                baseline_from: i64,
                recent_from: i64,
                until: i64,
            ) -> Result<Vec<LabStats>, StoreError> {
                let from = due_from.min(baseline_from);
                let rows = sqlx::query(concat!(
                    "SELECT lab,
                        SUM(CASE WHEN sampled_at >= $5 AND sampled_at < $6 THEN 1 ELSE 0 END),
                        SUM(CASE WHEN sampled_at >= $5 AND sampled_at < $6 AND (result = 'pending' OR updated_at - sampled_at > $7) THEN 1 ELSE 0 END),
                        SUM(CASE WHEN sampled_at >= $8 AND result IN ('negative', 'positive') THEN 1 ELSE 0 END),
                        SUM(CASE WHEN sampled_at >= $8 AND result = 'positive' THEN 1 ELSE 0 END),
                        SUM(CASE WHEN sampled_at >= $9 AND sampled_at < $8 AND result IN ('negative', 'positive') THEN 1 ELSE 0 END),
                        SUM(CASE WHEN sampled_at >= $9 AND sampled_at < $8 AND result = 'positive' THEN 1 ELSE 0 END)
                     FROM samples WHERE sampled_week ", $weeks, " AND sampled_at >= $1 AND sampled_at < $2 GROUP BY lab ORDER BY lab"
                ))
                .bind(from)
                .bind(until)
                .bind(crate::model::week(from))
                .bind(crate::model::week(until))
                .bind(due_from)
                .bind(due_until)
                .bind(late_ms)
                .bind(recent_from)
                .bind(baseline_from)
                .fetch_all(&self.read)
                .await?;
                let n = |r: &<$db as sqlx::Database>::Row, i: usize| r.get::<Option<i64>, _>(i).unwrap_or(0).max(0) as u64;
                let mut out: Vec<LabStats> = rows
                    .iter()
                    .map(|r| LabStats {
                        lab: r.get(0),
                        due: n(r, 1),
                        late: n(r, 2),
                        recent_tests: n(r, 3),
                        recent_positives: n(r, 4),
                        baseline_tests: n(r, 5),
                        baseline_positives: n(r, 6),
                        median_hours: None,
                    })
                    .collect();
                // The median delay of the flagged ones is read when needed (few labs).
                for s in out.iter_mut().filter(|s| s.due > 0 && s.late > 0) {
                    let delays: Vec<i64> = sqlx::query_scalar(concat!(
                        "SELECT updated_at - sampled_at FROM samples WHERE sampled_week ", $weeks,
                        " AND lab = $1 AND sampled_at >= $5 AND sampled_at < $2 AND result <> 'pending' ORDER BY 1"
                    ))
                    .bind(&s.lab)
                    .bind(due_until)
                    .bind(crate::model::week(due_from))
                    .bind(crate::model::week(due_until))
                    .bind(due_from)
                    .fetch_all(&self.read)
                    .await?;
                    s.median_hours = delays.get(delays.len() / 2).map(|d| (*d as f64 / 3_600_000.0 * 10.0).round() / 10.0);
                }
                Ok(out)
            }

            /// Samples taken at the service-area test points per (test point, day since `from`),
            /// counting only the first `span` ms of each day (today's hours so far, and the same
            /// hours of the days before).
            pub(crate) async fn test_point_days(&self, from: i64, until: i64, span: i64) -> Result<Vec<(String, i64, i64)>, StoreError> {
                let rows = sqlx::query(concat!(
                    "SELECT site, CAST((sampled_at - $1) / 86400000 AS BIGINT), CAST(COUNT(*) AS BIGINT) FROM samples
                     WHERE sampled_week ", $weeks, " AND sampled_at >= $1 AND sampled_at < $2
                       AND site_kind = 'service_area' AND (sampled_at - $1) % 86400000 < $5
                     GROUP BY 1, 2 ORDER BY 1, 2"
                ))
                .bind(from)
                .bind(until)
                .bind(crate::model::week(from))
                .bind(crate::model::week(until))
                .bind(span)
                .fetch_all(&self.read)
                .await?;
                Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
            }

            /// Approved commuters' residence county and the sampling time of their last negative
            /// test taken since `since` (none: no such test).
            pub(crate) async fn commuter_tests(&self, since: i64, until: i64) -> Result<Vec<(String, Option<i64>)>, StoreError> {
                let rows = sqlx::query(concat!(
                    "SELECT c.residence_region,
                        (SELECT MAX(s.sampled_at) FROM samples s WHERE s.sampled_week ", $weeks, " AND s.person_id = c.person_id
                            AND s.result = 'negative' AND s.sampled_at >= $1 AND s.sampled_at <= $2)
                     FROM commuters c WHERE c.status = 'approved'"
                ))
                .bind(since)
                .bind(until)
                .bind(crate::model::week(since))
                .bind(crate::model::week(until))
                .fetch_all(&self.read)
                .await?;
                Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
            }

            pub(crate) async fn cell_entries(
                &self,
                checkpoint: &str,
                since: i64,
                until: i64,
                verdict: Option<&str>,
                limit: i64,
            ) -> Result<Vec<CellEntry>, StoreError> {
                let rows = sqlx::query(concat!(
                    "SELECT e.id, e.person_id, e.checkpoint_id, e.checked_at, COALESCE(p.doc_number, ''), p.name, e.verdict, ", $reason, ", e.plate
                     FROM entry_events e LEFT JOIN people p ON p.id = e.person_id
                     WHERE e.checked_at >= $1 AND e.checked_at < $2 AND e.checkpoint_id = $3 AND ($4 IS NULL OR e.verdict = $4)
                     ORDER BY e.checked_at, e.id LIMIT $5"
                ))
                .bind(since)
                .bind(until)
                .bind(checkpoint)
                .bind(verdict)
                .bind(limit)
                .fetch_all(&self.read)
                .await?;
                Ok(rows
                    .iter()
                    .map(|r| CellEntry {
                        event_id: r.get(0),
                        person_id: r.get(1),
                        checkpoint_id: r.get(2),
                        checked_at: from_ms(r.get(3)),
                        doc_number: r.get(4),
                        name: r.get(5),
                        verdict: r.get(6),
                        reason: r.get::<Option<String>, _>(7).unwrap_or_default(),
                        plate: r.get(8),
                    })
                    .collect())
            }

            pub(crate) async fn save_demand(&self, at: i64, body: &serde_json::Value) -> Result<(), StoreError> {
                let mut tx = self.write.begin().await?;
                sqlx::query("INSERT INTO demand_forecasts (computed_at, body) VALUES ($1, $2)")
                    .bind(at)
                    .bind(body.to_string())
                    .execute(&mut *tx)
                    .await?;
                // Keep the last 30.
                sqlx::query("DELETE FROM demand_forecasts WHERE id <= (SELECT MAX(id) FROM demand_forecasts) - 30")
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            pub(crate) async fn latest_demand(&self) -> Result<Option<(i64, serde_json::Value)>, StoreError> {
                let row = sqlx::query("SELECT computed_at, body FROM demand_forecasts ORDER BY id DESC LIMIT 1")
                    .fetch_optional(&self.read)
                    .await?;
                row.map(|r| Ok((r.get(0), crate::alerts::json(r.get(1))?))).transpose()
            }
        }

        /// A person as a warning shows them: masked (the document alone for someone unknown).
        async fn masked_person_in(tx: &mut sqlx::Transaction<'_, $db>, doc_key: &str) -> Result<serde_json::Value, StoreError> {
            let row = sqlx::query("SELECT doc_number, name FROM people WHERE doc_key = $1").bind(doc_key).fetch_optional(&mut **tx).await?;
            let (doc, name): (String, Option<String>) = match &row {
                Some(r) => (r.get(0), r.get(1)),
                None => (doc_key.split_once(':').map_or(doc_key, |(_, n)| n).to_string(), None),
            };
            Ok(serde_json::json!({
                "document": tongxing_domain::mask::document_number(&doc),
                "name": name.as_deref().map(tongxing_domain::mask::name),
            }))
        }
    };
}

pub(crate) mod sqlite_impl {
    use super::*;
    analytics_impl!(
        sqlx::Sqlite,
        alerts = crate::alerts::sqlite_impl,
        reason = "json_extract(reasons, '$[0].code')",
        commuter = "json_extract(facts, '$.person.commuter.status')",
        ids = "SELECT value FROM json_each($1)",
        keys = "SELECT value FROM json_each($1)",
        flow_rows = "(SELECT j.value ->> 'g' AS g, j.value ->> 'b' AS b, j.value ->> 'c' AS c, j.value ->> 'v' AS v,
                     j.value ->> 'r' AS r, j.value ->> 'w' AS w, j.value ->> 'm' AS m, j.value ->> 'n' AS n FROM json_each($1) AS j) AS j",
        shortcut_rows = "(SELECT j.value ->> 'd' AS d, j.value ->> 'f' AS f, j.value ->> 't' AS t, j.value ->> 'n' AS n FROM json_each($1) AS j) AS j",
        place_rows = "(SELECT j.value ->> 'k' AS k, j.value ->> 'i' AS i, j.value ->> 'nm' AS nm, j.value ->> 'la' AS la,
                     j.value ->> 'lo' AS lo, j.value ->> 'cap' AS cap FROM json_each($1) AS j) AS j",
        weeks = "IN (WITH RECURSIVE d(x) AS (SELECT $3 UNION ALL SELECT x + 1 FROM d WHERE x < $4) SELECT x FROM d)"
    );
}
pub(crate) mod postgres_impl {
    use super::*;
    analytics_impl!(
        sqlx::Postgres,
        alerts = crate::alerts::postgres_impl,
        reason = "(reasons::json -> 0 ->> 'code')",
        commuter = "(facts::json #>> '{person,commuter,status}')",
        ids = "SELECT jsonb_array_elements_text($1::jsonb)::bigint",
        keys = "SELECT jsonb_array_elements_text($1::jsonb)",
        flow_rows =
            "jsonb_to_recordset($1::jsonb) AS j(g int, b bigint, c text, v text, r text, w text, m text, n bigint)",
        shortcut_rows = "jsonb_to_recordset($1::jsonb) AS j(d bigint, f text, t text, n bigint)",
        place_rows = "jsonb_to_recordset($1::jsonb) AS j(k text, i text, nm text, la float8, lo float8, cap bigint)",
        weeks = "= ANY(ARRAY(SELECT generate_series($3::bigint, $4::bigint)))"
    );
}

impl Store {
    /// Registers places (or moves them).
    pub async fn upsert_places(&self, places: &[Place]) -> Result<(), StoreError> {
        crate::dispatch!(self, p => p.upsert_places(places).await)
    }
    /// The ids of the people with these document keys (those registered).
    pub async fn person_ids(&self, keys: &[String]) -> Result<HashMap<String, i64>, StoreError> {
        crate::dispatch!(self, p => p.person_ids(keys).await)
    }
    pub async fn places(&self, kind: Option<&str>) -> Result<Vec<Place>, StoreError> {
        crate::dispatch!(self, p => p.places(kind).await)
    }
    /// One pass of the rollup job over at most `limit` new entry events: counts, per-person
    /// warnings and the watermark, in one transaction.
    pub async fn rollup_pass(
        &self,
        limit: i64,
        cfg: &AnalyticsConfig,
        now: DateTime<Utc>,
    ) -> Result<RollupPass, StoreError> {
        let mut recent = self.inner.recent.lock().await;
        let pass = crate::retried!(self, p => p.rollup_pass(limit, cfg, now, &mut recent).await)?;
        if !pass.alerts.is_empty() {
            self.outbox_written();
        }
        Ok(pass)
    }
    /// Empties the rollups for a rebuild from the entry events.
    pub async fn rollup_reset(&self) -> Result<(), StoreError> {
        crate::retried!(self, p => p.rollup_reset().await)
    }
    /// (the job's watermark, the highest entry event id).
    pub async fn rollup_watermark(&self) -> Result<(i64, i64), StoreError> {
        crate::dispatch!(self, p => p.rollup_watermark().await)
    }
    /// A table of flows: (row key, column key, count) for every pair with entries.
    pub async fn flow_table(&self, q: &FlowQuery) -> Result<Vec<FlowCell>, StoreError> {
        crate::dispatch!(self, p => p.flow_table(q).await)
    }
    /// Entries per (checkpoint, bucket start in ms), of the given verdicts (and kind of person).
    pub async fn flow_series(
        &self,
        grain: i64,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        who: Option<&str>,
        verdicts: &[&str],
    ) -> Result<Vec<(String, i64, i64)>, StoreError> {
        let rows = crate::dispatch!(self, p => p.flow_series(grain, ms(since), ms(until), who).await)?;
        let mut out: BTreeMap<(String, i64), i64> = BTreeMap::new();
        for (c, b, v, n) in rows {
            if verdicts.contains(&v.as_str()) {
                *out.entry((c, b)).or_default() += n;
            }
        }
        Ok(out.into_iter().map(|((c, b), n)| (c, b, n)).collect())
    }
    /// Shortcuts per (denied at, checked at) over the days from `since` to `until`, most first.
    pub async fn shortcut_pairs(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        crate::dispatch!(self, p => p.shortcut_pairs(bucket_of(1440, ms(since)), ms(until)).await)
    }
    /// Positive samples taken from `since` to `until`.
    pub async fn positives(&self, since: DateTime<Utc>, until: DateTime<Utc>) -> Result<Vec<PositiveRow>, StoreError> {
        crate::dispatch!(self, p => p.positives(ms(since), ms(until)).await)
    }
    /// Labs' due and late results and positivity (see [`LabStats`]).
    pub async fn lab_stats(
        &self,
        due: (DateTime<Utc>, DateTime<Utc>),
        late: Duration,
        baseline_from: DateTime<Utc>,
        recent_from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<LabStats>, StoreError> {
        crate::dispatch!(self, p => p.lab_stats(ms(due.0), ms(due.1), late.num_milliseconds(), ms(baseline_from), ms(recent_from), ms(until)).await)
    }
    /// Samples at the service-area test points per (test point, day index from `from`), over
    /// the first `span` of each day.
    pub async fn test_point_days(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        span: Duration,
    ) -> Result<Vec<(String, i64, i64)>, StoreError> {
        crate::dispatch!(self, p => p.test_point_days(ms(from), ms(until), span.num_milliseconds()).await)
    }
    /// Approved commuters' (residence county, last negative sampled from `since` to `until`).
    pub async fn commuter_tests(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<(String, Option<DateTime<Utc>>)>, StoreError> {
        let rows = crate::dispatch!(self, p => p.commuter_tests(ms(since), ms(until)).await)?;
        Ok(rows.into_iter().map(|(c, t)| (c, t.map(from_ms))).collect())
    }
    /// The entry events behind one cell (a checkpoint over a period), for a drill-down.
    pub async fn cell_entries(
        &self,
        checkpoint: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        verdict: Option<&str>,
        limit: i64,
    ) -> Result<Vec<CellEntry>, StoreError> {
        crate::dispatch!(self, p => p.cell_entries(checkpoint, ms(since), ms(until), verdict, limit).await)
    }
    pub async fn save_demand(&self, at: DateTime<Utc>, body: &serde_json::Value) -> Result<(), StoreError> {
        crate::retried!(self, p => p.save_demand(ms(at), body).await)
    }
    /// The latest testing-demand forecast, with when it was computed.
    pub async fn latest_demand(&self) -> Result<Option<(DateTime<Utc>, serde_json::Value)>, StoreError> {
        Ok(crate::dispatch!(self, p => p.latest_demand().await)?.map(|(t, v)| (from_ms(t), v)))
    }
    /// Stores a batch of entry events in one transaction (the simulator's bulk write; checks go
    /// through [`Store::record_entry`]).
    pub async fn record_entries_batch(&self, events: &[crate::EntryEvent]) -> Result<(), StoreError> {
        crate::dispatch!(self, p => p.record_entries(events).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_beijing_days() {
        // 2021-11-17T00:20:00Z is 08:20 in Beijing: its day starts at 2021-11-16T16:00:00Z.
        let t = DateTime::parse_from_rfc3339("2021-11-17T00:20:00Z").unwrap().timestamp_millis();
        assert_eq!(from_ms(bucket_of(15, t)).to_rfc3339(), "2021-11-17T00:15:00+00:00");
        assert_eq!(from_ms(bucket_of(60, t)).to_rfc3339(), "2021-11-17T00:00:00+00:00");
        assert_eq!(from_ms(bucket_of(1440, t)).to_rfc3339(), "2021-11-16T16:00:00+00:00");
        let late = DateTime::parse_from_rfc3339("2021-11-17T16:00:00Z").unwrap().timestamp_millis();
        assert_eq!(bucket_of(1440, late), late, "midnight in Beijing starts a day");
    }

    #[test]
    fn gaps_are_the_ids_skipped() {
        assert_eq!(new_gaps(10, &[11, 12, 15, 16], 7), (16, vec![(13, 7), (14, 7)]));
        assert_eq!(new_gaps(10, &[], 7), (10, vec![]));
        assert_eq!(new_gaps(10, &[13], 7), (13, vec![(11, 7), (12, 7)]));
    }

    #[test]
    fn the_memory_reaches_as_far_back_as_a_warning_can() {
        let cfg = AnalyticsConfig::default();
        let near: HashMap<String, LatLon> =
            [("A".to_string(), (39.90, 116.93)), ("B".to_string(), (40.33, 115.83))].into();
        // 105 km is under an hour at 150 km/h: the shortcut's 6 hours, plus one.
        assert_eq!(horizon_ms(&near, &cfg), 7 * 3_600_000);
        // 1,000 km or so takes 7 hours on the road: longer than a shortcut's 6.
        let far: HashMap<String, LatLon> =
            [("A".to_string(), (39.90, 116.40)), ("B".to_string(), (31.23, 121.47))].into();
        assert_eq!(horizon_ms(&far, &cfg), 9 * 3_600_000);
        // Folding checks in any order keeps the latest check and the latest denial.
        let h = 3_600_000;
        let checks = [(1, "A", 5 * h, true), (2, "B", 7 * h, false), (3, "C", 6 * h, true)];
        let fold = |order: &[usize]| {
            order.iter().fold(None::<LastCheck>, |s, &i| {
                let (id, cp, at, denied) = checks[i];
                Some(LastCheck::after(s.as_ref(), id, cp, at, denied))
            })
        };
        for order in [[0, 1, 2], [2, 1, 0], [1, 0, 2]] {
            let l = fold(&order).unwrap();
            assert_eq!((l.event_id, l.checkpoint.as_str(), l.at), (2, "B", 7 * h), "{order:?}");
            assert_eq!(l.denied, Some((3, "C".to_string(), 6 * h)), "{order:?}");
            assert_eq!(l.newest(), 7 * h);
        }
        // Pruned past the horizon, at most every ten minutes of event time.
        let mut recent = Recent::default();
        recent.by_doc.insert("old".into(), LastCheck::after(None, 1, "A", 0, false));
        recent.by_doc.insert("new".into(), LastCheck::after(None, 2, "A", 8 * h, false));
        recent.prune(8 * h, 7 * h);
        assert_eq!(recent.by_doc.keys().collect::<Vec<_>>(), ["new"]);
    }
}
