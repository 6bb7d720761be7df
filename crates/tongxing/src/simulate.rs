//! `tongxing simulate`: a realistic month of entry events, and the samples and results behind
//! them, written fast in batches into a database of its own (as the bench commands: refused
//! unless empty or made by a bench or simulate command), deterministic from `--seed`.
//!
//! The month: certified commuters from the surrounding counties (43 % from 北三县) enter on
//! weekday mornings at the checkpoint of their county and test every week or two; visitors
//! enter through the day, more at weekends, on a test of the last 48 hours (a few too old, none,
//! pending at a service-area test point with the letter signed, a yellow code). Results arrive
//! hours after sampling. Each event's verdict is the reference decision
//! (`tongxing_domain::decide`) on the facts the event records.
//!
//! Injected cases (`--cases all`, listed in the output so that tests and the dashboard find
//! them): a cluster of positives in 三河 (131082); a cloned code (one person at CP-JINGHA and,
//! 20 minutes later, at CP-JINGZANG, about 105 km away); a surge at CP-JINGKUN in the last three
//! hours; a slow rise at CP-JINGXIN over the last two weeks; a shortcut (denied at CP-JINGHU,
//! checked at CP-JINGJIN two hours later); a lab (TJ-LAB-008) whose results arrive 30–40 hours
//! late in the last three days; a lab (HB-LAB-011) whose positivity jumps. `--cases near` writes
//! each case just short of its warning; `--cases none` the plain month.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::{Result, bail};
use chrono::{DateTime, Datelike, Duration, TimeZone, Timelike, Utc, Weekday};
use clap::Args;
use serde_json::json;
use tongxing_domain::Policy;
use tongxing_domain::facts::{
    CheckpointFacts, CodeColour, CodeFacts, CommuterFacts, CommuterKind, CommuterStatus, Facts, PersonFacts,
    SampleFact, SiteKind, TestResult,
};
use tongxing_domain::ids::{Document, DocumentKind, RegionCode};
use tongxing_store::{Checkpoint, CommuterApplication, EntryEvent, PersonInput, Place, SampleInput, Store};

use crate::bench::person_doc;

#[derive(Args)]
pub struct SimulateArgs {
    /// The simulation's own database: sqlite://PATH or postgres://USER:PASS@HOST/DB. No default;
    /// refused unless empty or made by a bench or simulate command (it writes made-up people).
    #[arg(long, env = "TONGXING_DATABASE")]
    database: String,
    /// Days simulated, ending at --end.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(15..=120))]
    days: u32,
    /// People: 30 % certified commuters, the rest visitors.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(200..=50_000_000))]
    people: u64,
    /// Entry events in all (about): scales the daily rates (for benchmarks). Without it, the
    /// people's own rhythm sets the count (about 7.4 per person for 30 days).
    #[arg(long)]
    events: Option<u64>,
    /// The seed: the same seed writes the same month.
    #[arg(long, default_value_t = 2021_11_17)]
    seed: u64,
    /// The end of the month (RFC 3339); default: the start of the current hour.
    #[arg(long)]
    end: Option<String>,
    /// Injected cases: all (each warning's case), near (each just short of its warning) or none.
    #[arg(long, default_value = "all", value_parser = ["all", "near", "none"])]
    cases: String,
}

/// A checkpoint: id, name, road, kind, (lat, lon).
type SimCheckpoint = (&'static str, &'static str, Option<&'static str>, &'static str, (f64, f64));
/// A county: code, name, weight in 1,000ths, (lat, lon), the checkpoints its commuters use.
type SimCounty = (&'static str, &'static str, u64, (f64, f64), &'static [&'static str]);

/// Checkpoints (approximate places, WGS 84).
const CHECKPOINTS: &[SimCheckpoint] = &[
    ("CP-JINGTAI", "京台高速进京检查站", Some("京台高速"), "police", (39.62, 116.45)),
    ("CP-DAGUANG", "大广高速进京检查站", Some("大广高速"), "police", (39.55, 116.35)),
    ("CP-JINGLI", "京礼高速进京检查站", Some("京礼高速"), "police", (40.50, 115.95)),
    ("CP-JINGZANG", "京藏高速进京检查站", Some("京藏高速"), "police", (40.33, 115.83)),
    ("CP-JINGXIN", "京新高速进京检查站", Some("京新高速"), "police", (40.38, 115.90)),
    ("CP-JINGGANGAO", "京港澳高速进京检查站", Some("京港澳高速"), "police", (39.58, 116.05)),
    ("CP-JINGKUN", "京昆高速进京检查站", Some("京昆高速"), "police", (39.60, 115.90)),
    ("CP-JINGHA", "京哈高速进京检查站", Some("京哈高速"), "police", (39.90, 116.93)),
    ("CP-JINGHU", "京沪高速进京检查站", Some("京沪高速"), "police", (39.70, 116.75)),
    ("CP-JINGJIN", "京津高速进京检查站", Some("京津高速"), "police", (39.68, 116.80)),
    ("CP-JINGQIN", "京秦高速进京检查站", Some("京秦高速"), "police", (40.00, 116.98)),
    ("CP-JINGPING", "京平高速进京检查站", Some("京平高速"), "police", (40.15, 117.15)),
    ("CP-JINGCHENG", "京承高速进京检查站", Some("京承高速"), "police", (40.55, 117.05)),
    ("CP-TANTAI", "潮白河檀台检查站", Some("京哈高速"), "police", (39.97, 116.95)),
    ("VC-01", "燕郊村卡口", None, "village", (39.95, 116.82)),
    ("VC-02", "白庙村卡口", None, "village", (39.91, 116.85)),
    ("VC-03", "大厂村卡口", None, "village", (39.88, 116.99)),
    ("VC-04", "香河村卡口", None, "village", (39.76, 117.00)),
    ("VC-05", "武清村卡口", None, "village", (39.38, 117.04)),
];

/// The 13 service-area test points' places (approximate).
const TEST_POINTS: &[(&str, (f64, f64))] = &[
    ("SA-JINGTAI-WANZHUANG", (39.48, 116.55)),
    ("SA-DAGUANG-NIUTUO", (39.36, 116.30)),
    ("SA-JINGLI-DAHAITUO", (40.57, 115.83)),
    ("SA-JINGZANG-GUANTING", (40.37, 115.60)),
    ("SA-JINGXIN-SHACHENG", (40.42, 115.52)),
    ("SA-JINGGANGAO-ZHUOZHOU", (39.50, 115.98)),
    ("SA-JINGKUN-LAISHUIXI", (39.40, 115.68)),
    ("SA-JINGHA-XIANGHE", (39.80, 117.00)),
    ("SA-JINGHU-XUGUANTUN", (39.45, 117.05)),
    ("SA-JINGJIN-BAIGUTUN", (39.40, 116.95)),
    ("SA-JINGQIN-SANHE", (39.98, 117.08)),
    ("SA-JINGPING-JIZHOU", (40.05, 117.40)),
    ("SA-JINGCHENG-JINSHANLING", (40.68, 117.25)),
];

/// Commuters' counties.
const COUNTIES: &[SimCounty] = &[
    ("131082", "三河市", 230, (39.98, 117.08), &["CP-JINGQIN", "CP-JINGHA", "VC-01", "VC-02"]),
    ("131028", "大厂回族自治县", 90, (39.89, 116.99), &["CP-TANTAI", "VC-03"]),
    ("131024", "香河县", 110, (39.76, 117.00), &["CP-JINGHA", "VC-04"]),
    ("120114", "武清区", 120, (39.38, 117.04), &["CP-JINGJIN", "CP-JINGHU", "VC-05"]),
    ("120113", "北辰区", 70, (39.22, 117.13), &["CP-JINGJIN", "CP-JINGHU"]),
    ("131002", "安次区", 100, (39.52, 116.69), &["CP-JINGTAI", "CP-DAGUANG"]),
    ("130684", "高碑店市", 80, (39.33, 115.87), &["CP-JINGGANGAO", "CP-JINGKUN"]),
    ("130705", "宣化区", 80, (40.61, 115.06), &["CP-JINGZANG", "CP-JINGXIN", "CP-JINGLI"]),
    ("130821", "承德县", 60, (40.77, 118.17), &["CP-JINGCHENG", "CP-JINGPING"]),
    ("120104", "南开区", 60, (39.12, 117.15), &["CP-JINGJIN"]),
];

const LABS: &[&str] = &["BJ-LAB-001", "BJ-LAB-017", "HB-LAB-003", "TJ-LAB-008", "HB-LAB-011"];
const LATE_LAB: &str = "TJ-LAB-008";
const JUMP_LAB: &str = "HB-LAB-011";
const SURGE_AT: &str = "CP-JINGKUN";
const RISE_AT: &str = "CP-JINGXIN";
const CLUSTER_COUNTY: &str = "131082";

/// A per-person (or per-anything) random number, stable for the seed.
fn mix(seed: u64, a: u64, b: u64) -> u64 {
    let mut z = seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What the simulation knows of a commuter.
struct Commuter {
    county: usize,
    checkpoint: &'static str,
    /// Days between tests, and the day (from the start) of the first.
    cadence: i64,
    phase: i64,
    lab: &'static str,
    vehicle: bool,
}

struct Sim {
    seed: u64,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    days: i64,
    commuters: Vec<Commuter>,
    visitors: u64,
    scale: f64,
    policy: Policy,
    cases: String,
}

/// The person index of visitor `v`.
fn visitor_index(sim: &Sim, v: u64) -> u64 {
    sim.commuters.len() as u64 + v
}

fn doc(i: u64, today: chrono::NaiveDate) -> Result<Document> {
    Ok(Document::parse(DocumentKind::ResidentId, &person_doc(i), today)?)
}

/// The Beijing midnight starting day `d` of the month.
fn day_start(sim: &Sim, d: i64) -> DateTime<Utc> {
    sim.start + Duration::days(d)
}

fn weekend(t: DateTime<Utc>) -> bool {
    matches!(t.with_timezone(&tongxing_domain::shanghai()).weekday(), Weekday::Sat | Weekday::Sun)
}

/// A time of day (minutes from midnight) drawn from a peaked shape: commuters 6:30–9:30 around
/// 7:45; visitors through the day, peaks at 10:00 and 18:00.
fn minute_of_day(r: u64, commuter: bool) -> i64 {
    let u = (r % 10_000) as f64 / 10_000.0;
    let v = ((r >> 20) % 10_000) as f64 / 10_000.0;
    let tri = u + v - 1.0; // triangular on (-1, 1)
    if commuter {
        (465.0 + tri * 90.0) as i64
    } else if (r >> 40) % 10 < 5 {
        (600.0 + tri * 180.0) as i64
    } else {
        (1080.0 + tri * 240.0).min(1439.0) as i64
    }
}

pub async fn run(args: SimulateArgs) -> Result<()> {
    let end = match &args.end {
        Some(t) => DateTime::parse_from_rfc3339(t).map_err(|e| anyhow::anyhow!("--end: {e}"))?.with_timezone(&Utc),
        None => {
            let now = Utc::now();
            now - Duration::minutes(now.minute() as i64)
                - Duration::seconds(now.second() as i64)
                - Duration::nanoseconds(now.nanosecond() as i64)
        }
    };
    let days = args.days as i64;
    // The month starts at a Beijing midnight, so that days are whole; the last day may be partial.
    let beijing = tongxing_domain::shanghai();
    let end_local = end.with_timezone(&beijing);
    let last_midnight = beijing
        .from_local_datetime(&end_local.date_naive().and_hms_opt(0, 0, 0).expect("midnight"))
        .single()
        .expect("a fixed offset")
        .with_timezone(&Utc);
    let start = last_midnight - Duration::days(days - 1);
    let store = crate::bench::open_bench_database(&args.database).await?;
    let result = simulate(&store, &args, start, end, days).await;
    store.close().await;
    let out = result?;
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

async fn simulate(
    store: &Store,
    args: &SimulateArgs,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    days: i64,
) -> Result<serde_json::Value> {
    let began = Instant::now();
    let c = store.counts().await?;
    if c.entry_events > 0 {
        bail!("{} holds entry events already: simulate writes a month into a database of its own, once", args.database);
    }
    let today = end.with_timezone(&tongxing_domain::shanghai()).date_naive();
    let seed = args.seed;
    // Places and checkpoints.
    let mut places = Vec::new();
    for (id, name, road, kind, (lat, lon)) in CHECKPOINTS {
        store
            .upsert_checkpoint(
                &Checkpoint {
                    id: id.to_string(),
                    name: name.to_string(),
                    road: road.map(str::to_string),
                    kind: kind.to_string(),
                },
                start,
            )
            .await?;
        places.push(Place {
            kind: "checkpoint".into(),
            id: id.to_string(),
            name: Some(name.to_string()),
            lat: *lat,
            lon: *lon,
            capacity: None,
        });
    }
    for (id, (lat, lon)) in TEST_POINTS {
        // Each test point can take a day's share of the commuters' tests and a margin.
        let capacity = Some((args.people as i64 * 3 / 10 / 14 / TEST_POINTS.len() as i64 * 3 / 2).max(10));
        places.push(Place {
            kind: "test_point".into(),
            id: id.to_string(),
            name: None,
            lat: *lat,
            lon: *lon,
            capacity,
        });
    }
    for (code, name, _, (lat, lon), _) in COUNTIES {
        places.push(Place {
            kind: "county".into(),
            id: code.to_string(),
            name: Some(name.to_string()),
            lat: *lat,
            lon: *lon,
            capacity: None,
        });
    }
    store.upsert_places(&places).await?;

    // Commuters (30 %), imported approved, as the database was first built from past entries.
    let n_commuters = args.people * 3 / 10;
    let mut commuters = Vec::with_capacity(n_commuters as usize);
    let total_weight: u64 = COUNTIES.iter().map(|c| c.2).sum();
    for i in 0..n_commuters {
        let r = mix(seed, i, 1);
        let mut w = r % total_weight;
        let county = COUNTIES.iter().position(|c| {
            if w < c.2 {
                true
            } else {
                w -= c.2;
                false
            }
        });
        let county = county.unwrap_or(0);
        let cps = COUNTIES[county].4;
        // 3 % test too seldom (every 15–16 days): their checks are sometimes denied.
        let cadence = if (r >> 8) % 100 < 3 { 15 + ((r >> 16) % 2) as i64 } else { 7 + ((r >> 16) % 7) as i64 };
        commuters.push(Commuter {
            county,
            checkpoint: cps[((r >> 24) % cps.len() as u64) as usize],
            cadence,
            phase: ((r >> 32) % cadence as u64) as i64,
            lab: LABS[((r >> 40) % 4) as usize],
            vehicle: (r >> 48) % 10 < 7,
        });
    }
    let valid_until = end + Duration::days(180);
    let mut rows = Vec::new();
    for (i, c) in commuters.iter().enumerate() {
        let home = RegionCode::parse(COUNTIES[c.county].0)?;
        let employer = mix(seed, i as u64, 2) % (n_commuters / 50 + 1);
        rows.push((
            PersonInput { document: doc(i as u64, today)?, name: None, phone: None, residence_region: Some(home) },
            CommuterApplication {
                kind: CommuterKind::Worker,
                residence_region: home,
                residence_proof: "household_register".into(),
                employer_name: format!("北京模拟单位{employer:05}"),
                employer_uscc: tongxing_domain::uscc::complete(&format!("91110105MA{employer:07}"))
                    .unwrap_or_else(|| "91350100M000100Y43".into()),
                work_region: RegionCode::parse("110105")?,
            },
        ));
        if rows.len() == 5000 {
            store.import_commuters(&rows, valid_until, "simulate", start).await?;
            rows.clear();
        }
    }
    store.import_commuters(&rows, valid_until, "simulate", start).await?;
    let mut ids: Vec<i64> = vec![0; args.people as usize + 64];
    for chunk in (0..n_commuters).collect::<Vec<_>>().chunks(10_000) {
        let keys: Vec<String> = chunk.iter().map(|i| doc(*i, today).map(|d| d.key())).collect::<Result<_>>()?;
        let found = store.person_ids(&keys).await?;
        for (i, k) in chunk.iter().zip(&keys) {
            ids[*i as usize] = found.get(k).copied().unwrap_or(0);
        }
    }

    // Rates: commuters enter on 90 % of weekdays, 8 % of weekend days; visitors 4 % of
    // weekdays, 10 % of weekend days. --events scales both.
    let visitors = args.people - n_commuters;
    let mut sim = Sim {
        seed,
        start,
        end,
        days,
        commuters,
        visitors,
        scale: 1.0,
        policy: Policy::beijing_2021_11_17(),
        cases: args.cases.clone(),
    };
    let weekend_days = (0..days).filter(|d| weekend(day_start(&sim, *d) + Duration::hours(12))).count() as f64;
    let base = n_commuters as f64 * (0.9 * (days as f64 - weekend_days) + 0.08 * weekend_days)
        + visitors as f64 * (0.04 * (days as f64 - weekend_days) + 0.10 * weekend_days);
    if let Some(n) = args.events {
        sim.scale = n as f64 / base.max(1.0);
    }

    let mut totals = Totals::default();
    for d in 0..days {
        simulate_day(store, &sim, d, &mut ids, today, &mut totals).await?;
        if d % 5 == 4 {
            eprintln!(
                "simulate: day {}/{days}: {} events, {} samples ({:.0} events/s)",
                d + 1,
                totals.events,
                totals.samples,
                totals.events as f64 / began.elapsed().as_secs_f64()
            );
        }
    }
    let cases = inject(store, &sim, &mut ids, today, &mut totals).await?;
    Ok(json!({
        "seed": seed,
        "start": tongxing_domain::time::rfc3339(start),
        "end": tongxing_domain::time::rfc3339(end),
        "days": days,
        "people": args.people,
        "commuters": n_commuters,
        "events": totals.events,
        "samples": totals.samples,
        "seconds": (began.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        "cases_mode": sim.cases,
        "cases": cases,
    }))
}

#[derive(Default)]
struct Totals {
    events: u64,
    samples: u64,
}

/// A sample to write, with when its result arrives (`None`: it stays pending).
struct Pending {
    input: SampleInput,
    arrives: Option<DateTime<Utc>>,
}

/// Writes samples grouped by the hour their result arrives (each result's `updated_at` is its
/// arrival); those arriving after the end stay pending.
async fn write_samples(store: &Store, sim: &Sim, mut samples: Vec<Pending>) -> Result<u64> {
    samples.sort_by_key(|s| s.arrives.unwrap_or(s.input.sampled_at));
    let n = samples.len() as u64;
    let mut i = 0;
    while i < samples.len() {
        let hour = |s: &Pending| {
            let t = s.arrives.filter(|a| *a <= sim.end).unwrap_or(s.input.sampled_at);
            (t.timestamp() / 3600, s.arrives.is_some_and(|a| a <= sim.end))
        };
        let key = hour(&samples[i]);
        let mut j = i;
        while j < samples.len() && j - i < 10_000 && hour(&samples[j]) == key {
            j += 1;
        }
        let batch: Vec<SampleInput> = samples[i..j]
            .iter()
            .map(|s| {
                let mut input = s.input.clone();
                if !key.1 {
                    input.result = TestResult::Pending;
                }
                input
            })
            .collect();
        let at = if key.1 { samples[j - 1].arrives.unwrap_or(sim.end) } else { samples[j - 1].input.sampled_at };
        store.submit_samples(&batch, "simulate", at).await?;
        i = j;
    }
    Ok(n)
}

/// The result delay of a lab, in minutes (the late lab's results take 30–40 hours in the last
/// three days).
fn delay_minutes(sim: &Sim, lab: &str, sampled: DateTime<Utc>, r: u64) -> i64 {
    if lab == LATE_LAB && sim.cases != "none" && sampled >= sim.end - Duration::days(3) {
        let late = if sim.cases == "all" { true } else { r % 100 < 10 };
        if late {
            return 30 * 60 + (r % 600) as i64;
        }
    }
    4 * 60 + (r % 600) as i64
}

fn sample_fact(s: &SampleInput, arrives: Option<DateTime<Utc>>, at: DateTime<Utc>) -> SampleFact {
    SampleFact {
        lab: s.lab.clone(),
        sample_id: s.sample_id.clone(),
        sampled_at: s.sampled_at,
        site: s.site.clone(),
        site_kind: s.site_kind,
        result: if arrives.is_some_and(|a| a <= at) { s.result } else { TestResult::Pending },
    }
}

fn event(
    sim: &Sim,
    checkpoint: &str,
    at: DateTime<Utc>,
    person: u64,
    id: i64,
    facts: PersonFacts,
    plate: bool,
) -> EntryEvent {
    let facts = Facts {
        person: facts,
        checkpoint: CheckpointFacts {
            id: checkpoint.to_string(),
            road: CHECKPOINTS.iter().find(|c| c.0 == checkpoint).and_then(|c| c.2.map(str::to_string)),
        },
    };
    let decision = tongxing_domain::decide(&facts, &sim.policy, at);
    EntryEvent {
        checkpoint_id: checkpoint.to_string(),
        checked_at: at,
        doc_key: format!("ID:{}", person_doc(person)),
        person_id: (id > 0).then_some(id),
        verdict: decision.verdict,
        reasons: decision.reasons,
        policy_id: sim.policy.id.clone(),
        policy_version: sim.policy.version.clone(),
        rule_versions: Vec::new(),
        facts,
        plate: plate.then(|| format!("冀R{:05}", person % 100_000)),
        officer: "simulate".into(),
        commuter_first_check: false,
        via: "document",
    }
}

/// The commuter's test sampled on day `d` (from the start; negative days before it), if any.
fn commuter_sample(sim: &Sim, i: usize, d: i64) -> Option<(SampleInput, Option<DateTime<Utc>>)> {
    let c = &sim.commuters[i];
    if (d + 28 * c.cadence - c.phase).rem_euclid(c.cadence) != 0 {
        return None;
    }
    let r = mix(sim.seed, i as u64, (1000 + d) as u64);
    // Tested after work, 17:00–21:00, near home.
    let sampled = day_start(sim, d) + Duration::minutes(17 * 60 + (r % 240) as i64);
    let delay = delay_minutes(sim, c.lab, sampled, r >> 16);
    let input = SampleInput {
        lab: c.lab.to_string(),
        sample_id: format!("C{i:09}D{}", d + 100),
        document: Document::parse(DocumentKind::ResidentId, &person_doc(i as u64), sim.end.date_naive()).ok()?,
        sampled_at: sampled,
        site: format!("H-{}", COUNTIES[c.county].0),
        site_kind: SiteKind::Hospital,
        result: TestResult::Negative,
    };
    Some((input, Some(sampled + Duration::minutes(delay))))
}

async fn simulate_day(
    store: &Store,
    sim: &Sim,
    d: i64,
    ids: &mut [i64],
    today: chrono::NaiveDate,
    totals: &mut Totals,
) -> Result<()> {
    let midnight = day_start(sim, d);
    let is_weekend = weekend(midnight + Duration::hours(12));
    let mut samples: Vec<Pending> = Vec::new();
    // Commuters' tests of the day (and, on the first day, of the two weeks before).
    let first = if d == 0 { -15 } else { d };
    for dd in first..=d {
        for i in 0..sim.commuters.len() {
            if let Some((input, arrives)) = commuter_sample(sim, i, dd) {
                samples.push(Pending { input, arrives });
            }
        }
    }
    let mut events: Vec<(u64, EntryEvent)> = Vec::new();
    // Commuters entering this morning.
    let rate = if is_weekend { 0.08 } else { 0.9 } * sim.scale;
    for (i, c) in sim.commuters.iter().enumerate() {
        let r = mix(sim.seed, i as u64, 50_000 + d as u64);
        let times = rate.floor() as u64 + u64::from(((r % 10_000) as f64) < (rate.fract() * 10_000.0));
        for k in 0..times {
            let at = midnight + Duration::minutes(minute_of_day(mix(sim.seed, r, k), true));
            if at > sim.end {
                continue;
            }
            // Their latest test sampled before this check (tests are taken in the evening).
            let mut day = d - (d - c.phase).rem_euclid(c.cadence);
            if day == d {
                day -= c.cadence;
            }
            let last = commuter_sample(sim, i, day);
            let samples = last.map(|(s, a)| vec![sample_fact(&s, a, at)]).unwrap_or_default();
            let facts = PersonFacts {
                known: true,
                code: None,
                commuter: Some(CommuterFacts {
                    status: CommuterStatus::Approved,
                    valid_until: Some(sim.end + Duration::days(180)),
                    first_checked_at: Some(sim.start - Duration::days(30)),
                }),
                samples,
                commitment_letter: false,
            };
            events.push((i as u64, event(sim, c.checkpoint, at, i as u64, ids[i], facts, c.vehicle)));
        }
    }
    // Visitors: through the day, more at weekends; each through the checkpoint of their way in.
    // Visitors: ±15 % from day to day (weather, events), around the weekly rhythm.
    let mut rng = crate::demo::Rng::new(mix(sim.seed, 7, d as u64));
    let noise = 0.85 + 0.3 * rng.below(10_000) as f64 / 10_000.0;
    let visits = (sim.visitors as f64 * if is_weekend { 0.10 } else { 0.04 } * sim.scale * noise).round() as u64;
    for k in 0..visits {
        let v = rng.below(sim.visitors.max(1));
        visitor_visit(sim, v, midnight, k, &mut rng, &mut samples, &mut events, None);
    }
    // The slow rise: extra visitors at RISE_AT growing over the last two weeks.
    if sim.cases != "none" && d >= sim.days - 14 {
        let per_day =
            (sim.visitors as f64 * 0.06 + sim.commuters.len() as f64 * 0.9) * sim.scale / CHECKPOINTS.len() as f64;
        let step = if sim.cases == "all" { 0.08 } else { 0.005 };
        let extra = (per_day * step * (d - (sim.days - 14) + 1) as f64).round() as u64;
        for k in 0..extra {
            // People who always come that way (no one is at two places at once).
            let mut v = rng.below(sim.visitors.max(1));
            for _ in 0..200 {
                if visitor_home(sim, v) == RISE_AT {
                    break;
                }
                v = rng.below(sim.visitors.max(1));
            }
            visitor_visit(sim, v, midnight, 1_000_000 + k, &mut rng, &mut samples, &mut events, Some(RISE_AT));
        }
    }
    totals.samples += write_samples(store, sim, samples).await?;
    // The visitors' ids, now that their samples made them known.
    let unknown: Vec<u64> = events.iter().map(|e| e.0).filter(|p| ids[*p as usize] == 0).collect();
    for chunk in unknown.chunks(10_000) {
        let keys: Vec<String> = chunk.iter().map(|i| doc(*i, today).map(|d| d.key())).collect::<Result<_>>()?;
        let found = store.person_ids(&keys).await?;
        for (i, k) in chunk.iter().zip(&keys) {
            if let Some(id) = found.get(k) {
                ids[*i as usize] = *id;
            }
        }
    }
    let mut batch = Vec::with_capacity(10_000);
    events.sort_by_key(|e| e.1.checked_at);
    for (p, mut e) in events {
        if e.person_id.is_none() && ids[p as usize] > 0 && e.facts.person.known {
            e.person_id = Some(ids[p as usize]);
        }
        batch.push(e);
        if batch.len() == 10_000 {
            store.record_entries_batch(&batch).await?;
            totals.events += batch.len() as u64;
            batch.clear();
        }
    }
    store.record_entries_batch(&batch).await?;
    totals.events += batch.len() as u64;
    Ok(())
}

/// Each visitor comes in by the same way (a police checkpoint), so never two places at once.
fn visitor_home(sim: &Sim, v: u64) -> &'static str {
    CHECKPOINTS[(mix(sim.seed, visitor_index(sim, v), 3) % 14) as usize].0
}

/// One visit of visitor `v` on the day starting at `midnight`: the check and the test before it.
#[allow(clippy::too_many_arguments)]
fn visitor_visit(
    sim: &Sim,
    v: u64,
    midnight: DateTime<Utc>,
    k: u64,
    rng: &mut crate::demo::Rng,
    samples: &mut Vec<Pending>,
    events: &mut Vec<(u64, EntryEvent)>,
    at_checkpoint: Option<&'static str>,
) {
    let person = visitor_index(sim, v);
    let pr = mix(sim.seed, person, 3);
    let checkpoint = at_checkpoint.unwrap_or(visitor_home(sim, v));
    let at = midnight + Duration::minutes(minute_of_day(rng.next(), false)) + Duration::seconds(rng.below(60) as i64);
    if at > sim.end {
        return;
    }
    let kind = rng.below(100);
    let mut facts =
        PersonFacts { known: false, code: None, commuter: None, samples: Vec::new(), commitment_letter: false };
    if kind < 98 {
        // A test before the visit: mostly 6–40 hours before; 3 % 50–70 hours (too old).
        let hours_before = if kind < 3 { 50 + rng.below(20) } else { 6 + rng.below(34) };
        let sampled = at - Duration::hours(hours_before as i64) - Duration::minutes(rng.below(60) as i64);
        let service_area = kind >= 96;
        let (site, site_kind, lab) = if service_area {
            let tp = TEST_POINTS[(pr >> 8) as usize % TEST_POINTS.len()].0;
            (tp.to_string(), SiteKind::ServiceArea, tp.to_string())
        } else {
            (format!("C-{:03}", (pr >> 8) % 200), SiteKind::Community, LABS[((pr >> 16) % 4) as usize].to_string())
        };
        let sampled = if service_area { at - Duration::minutes(30 + rng.below(90) as i64) } else { sampled };
        // 1 in 5,000 positive (those are denied at the check).
        let result = if rng.below(5000) == 0 { TestResult::Positive } else { TestResult::Negative };
        let input = SampleInput {
            lab,
            sample_id: format!("V{person:09}T{}K{k}", (at - sim.start).num_minutes()),
            document: Document::parse(DocumentKind::ResidentId, &person_doc(person), sim.end.date_naive())
                .expect("generated documents are valid"),
            sampled_at: sampled,
            site,
            site_kind,
            result,
        };
        let arrives = Some(sampled + Duration::minutes(delay_minutes(sim, &input.lab, sampled, rng.next())));
        facts.known = true;
        facts.samples.push(sample_fact(&input, arrives, at));
        facts.commitment_letter = service_area;
        samples.push(Pending { input, arrives });
    }
    if pr.is_multiple_of(200) {
        facts.known = true;
        facts.code = Some(CodeFacts { colour: CodeColour::Yellow, reason: Some("弹窗".into()), expires_at: None });
    }
    let vehicle = (pr >> 24) % 10 < 6;
    events.push((person, event(sim, checkpoint, at, person, 0, facts, vehicle)));
}

/// Writes the injected cases and lists them.
async fn inject(
    store: &Store,
    sim: &Sim,
    ids: &mut [i64],
    today: chrono::NaiveDate,
    totals: &mut Totals,
) -> Result<serde_json::Value> {
    let mut listed = Vec::new();
    if sim.cases == "none" {
        return Ok(json!(listed));
    }
    let near = sim.cases == "near";
    let base = sim.commuters.len() as u64 + sim.visitors;
    let person = |k: u64| base + k;
    let register = |k: u64, region: Option<&str>| -> Result<PersonInput> {
        Ok(PersonInput {
            document: doc(person(k), today)?,
            name: Some(format!("模拟{k}")),
            phone: None,
            residence_region: region.map(RegionCode::parse).transpose()?,
        })
    };
    let mut id_of = HashMap::new();
    for k in 0..40 {
        let region = if k < 20 { Some(CLUSTER_COUNTY) } else { None };
        let id = store.upsert_person(&register(k, region)?, sim.start).await?;
        id_of.insert(k, id);
        ids[person(k) as usize] = id;
    }
    let green = |samples: Vec<SampleFact>| PersonFacts {
        known: true,
        code: None,
        commuter: None,
        samples,
        commitment_letter: false,
    };
    let negative = |k: u64, at: DateTime<Utc>| SampleFact {
        lab: "BJ-LAB-001".into(),
        sample_id: format!("X{k}"),
        sampled_at: at - Duration::hours(10),
        site: "H-CHAOYANG".into(),
        site_kind: SiteKind::Hospital,
        result: TestResult::Negative,
    };
    let mut events = Vec::new();
    // A cloned code: CP-JINGHA, then CP-JINGZANG 20 minutes later (50 near: 126 km/h).
    let t1 = sim.end - Duration::hours(2);
    let t2 = t1 + Duration::minutes(if near { 50 } else { 20 });
    events.push(event(sim, "CP-JINGHA", t1, person(30), id_of[&30], green(vec![negative(30, t1)]), true));
    events.push(event(sim, "CP-JINGZANG", t2, person(30), id_of[&30], green(vec![negative(30, t1)]), true));
    listed.push(
        json!({"kind": "cloned_code", "document": person_doc(person(30)), "checkpoints": ["CP-JINGHA", "CP-JINGZANG"],
        "checked_at": [tongxing_domain::time::rfc3339(t1), tongxing_domain::time::rfc3339(t2)]}),
    );
    // A shortcut: denied (no test) at CP-JINGHU, checked at CP-JINGJIN 2 hours later (7 near).
    let t1 = sim.end - Duration::hours(9);
    let t2 = t1 + Duration::hours(if near { 7 } else { 2 });
    events.push(event(sim, "CP-JINGHU", t1, person(31), id_of[&31], green(vec![]), true));
    events.push(event(sim, "CP-JINGJIN", t2, person(31), id_of[&31], green(vec![negative(31, t2)]), true));
    listed.push(
        json!({"kind": "shortcut", "document": person_doc(person(31)), "checkpoints": ["CP-JINGHU", "CP-JINGJIN"],
        "checked_at": [tongxing_domain::time::rfc3339(t1), tongxing_domain::time::rfc3339(t2)]}),
    );
    // A surge at CP-JINGKUN in the last three hours: twice (near: a quarter of) its daily count.
    let per_day = (sim.visitors as f64 * 0.06 + sim.commuters.len() as f64 * 0.7) * sim.scale / 14.0;
    let surge = if near { (per_day * 0.25).round() as u64 } else { (per_day * 2.0).round().max(60.0) as u64 };
    let mut rng = crate::demo::Rng::new(mix(sim.seed, 99, 99));
    for k in 0..surge {
        let at = sim.end - Duration::seconds(1 + rng.below(3 * 3600) as i64);
        let p = person(40 + k % 20);
        events.push(event(sim, SURGE_AT, at, p, 0, PersonFacts { known: true, ..green(vec![negative(p, at)]) }, true));
    }
    listed.push(json!({"kind": "surge", "checkpoint": SURGE_AT, "extra_entries": surge, "hours": 3}));
    listed.push(json!({"kind": "slow_rise", "checkpoint": RISE_AT, "days": 14, "daily_step_percent": if near { 0.5 } else { 8.0 }}));
    events.sort_by_key(|e| e.checked_at);
    totals.events += events.len() as u64;
    store.record_entries_batch(&events).await?;

    // A cluster of positives in 三河 in the last three days (near: 4, under the minimum of 5).
    let mut samples = Vec::new();
    let cluster = if near { 4 } else { 12 };
    for k in 0..cluster {
        let sampled = sim.end - Duration::hours(6 + 5 * k as i64);
        let input = SampleInput {
            lab: LABS[(k % 4) as usize].to_string(),
            sample_id: format!("CL{k:04}"),
            document: doc(person(k), today)?,
            sampled_at: sampled,
            site: format!("H-{CLUSTER_COUNTY}-{}", k % 3),
            site_kind: SiteKind::Hospital,
            result: TestResult::Positive,
        };
        samples.push(Pending { arrives: Some(sampled + Duration::hours(5)), input });
    }
    listed.push(json!({"kind": "positive_cluster", "county": CLUSTER_COUNTY, "positives": cluster, "days": 3}));
    // A lab whose positivity jumps: HB-LAB-011 (which otherwise tests nobody here: a baseline of
    // negatives first), 8 positives of 40 in the last day (near: 4).
    let jump = if near { 4 } else { 8 };
    for k in 0..200u64 {
        let recent = k >= 160;
        let sampled = if recent {
            sim.end - Duration::hours(2 + (k - 160) as i64 / 2)
        } else {
            sim.end - Duration::days(3) - Duration::hours(k as i64)
        };
        let positive = recent && k - 160 < jump;
        let who = person(20 + k % 10);
        let input = SampleInput {
            lab: JUMP_LAB.to_string(),
            sample_id: format!("J{k:04}"),
            document: doc(who, today)?,
            sampled_at: sampled,
            site: format!("C-J{}", k % 7),
            site_kind: SiteKind::Community,
            result: if positive { TestResult::Positive } else { TestResult::Negative },
        };
        let arrives = (sampled + Duration::hours(1)).min(sim.end);
        samples.push(Pending { arrives: Some(arrives), input });
    }
    // A surge at a service-area test point: its samples in the last three hours at twice its
    // usual day (near: 12, under the minimum count).
    let (tp, _) = TEST_POINTS[0];
    let tp_per_day = sim.visitors as f64 * 0.06 * 0.02 * sim.scale / TEST_POINTS.len() as f64;
    let tp_surge = if near { 12 } else { (tp_per_day * 2.0).round().max(60.0) as u64 };
    for k in 0..tp_surge {
        let sampled = sim.end - Duration::seconds(1 + (k * 3 * 3600 / tp_surge.max(1)) as i64);
        let input = SampleInput {
            lab: tp.to_string(),
            sample_id: format!("TPS{k:05}"),
            document: doc(person(32 + k % 8), today)?,
            sampled_at: sampled,
            site: tp.to_string(),
            site_kind: SiteKind::ServiceArea,
            result: TestResult::Negative,
        };
        samples.push(Pending { arrives: Some((sampled + Duration::minutes(50)).min(sim.end)), input });
    }
    listed.push(json!({"kind": "surge", "test_point": tp, "extra_samples": tp_surge, "hours": 3}));
    listed.push(json!({"kind": "lab_positivity", "lab": JUMP_LAB, "positives": jump, "tests": 40}));
    listed.push(
        json!({"kind": "lab_late", "lab": LATE_LAB, "late_share_percent": if near { 10 } else { 100 }, "days": 3}),
    );
    totals.samples += write_samples(store, sim, samples).await?;
    Ok(json!(listed))
}
