//! Big data over the real server: a simulated month (`tongxing simulate`) whose injected cases
//! raise each early warning, and whose "near" and plain variants raise none; warnings from live
//! checks (a cloned code, a shortcut); flows as the analyst sees them (no count under the
//! threshold, none recoverable by subtraction, CSV alike); the health authority's drill-down
//! in the access log; a rebuilt rollup equal to the incremental one.

use std::process::Command;
use std::time::{Duration as StdDuration, Instant};

use chrono::{Duration, Utc};
use serde_json::{Value, json};

use crate::both;
use crate::helpers::*;

/// Runs `tongxing simulate` on a fresh database; returns it with the simulation's report.
fn simulated(b: Backend, cases: &str) -> (TestDb, Value) {
    simulated_days(b, cases, 30)
}

fn simulated_days(b: Backend, cases: &str, days: u32) -> (TestDb, Value) {
    let db = TestDb::new(b);
    let days = days.to_string();
    let out = Command::new(BIN)
        .args(["simulate", "--people", "3000", "--days", &days, "--seed", "7", "--cases", cases, "--database", &db.url])
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    (db, report)
}

fn serve(db: TestDb) -> App {
    let tokens = db.tokens();
    let server = Server::start(&db);
    App { server, tokens, db }
}

/// Waits for the analytics job's first run to end (its last step stores testing demand).
fn first_run_done(app: &App) {
    let done = wait(300, || (app.get("health", "/api/v1/analytics/demand").status == 200).then_some(()));
    assert!(done.is_some(), "the analytics job did not compute testing demand");
}

fn warning_kinds(app: &App) -> Vec<String> {
    let r = app.get("health", "/api/v1/analytics/warnings");
    assert_eq!(r.status, 200, "{r:?}");
    let mut kinds: Vec<String> =
        r.body.as_array().unwrap().iter().map(|w| w["kind"].as_str().unwrap().to_string()).collect();
    kinds.sort();
    kinds.dedup();
    kinds
}

both!(fn each_warning_fires_on_its_simulated_case(b) {
    let (db, report) = simulated(b, "all");
    assert!(report["events"].as_u64().unwrap() > 10_000, "{report}");
    let listed: Vec<&str> = report["cases"].as_array().unwrap().iter().map(|c| c["kind"].as_str().unwrap()).collect();
    let app = serve(db);
    first_run_done(&app);
    let mut expected: Vec<String> = listed.iter().map(|s| s.to_string()).collect();
    expected.sort();
    expected.dedup();
    assert_eq!(warning_kinds(&app), expected);
    let warnings = app.get("health", "/api/v1/analytics/warnings").body;
    for w in warnings.as_array().unwrap() {
        // Every warning says why it fired, with its evidence.
        assert!(w["detail"]["why"].as_str().unwrap().len() > 20, "{w}");
        assert_eq!(w["status"], "open");
    }
    let find = |kind: &str| warnings.as_array().unwrap().iter().find(|w| w["kind"] == kind).unwrap().clone();
    let case = |kind: &str| report["cases"].as_array().unwrap().iter().find(|c| c["kind"] == kind).unwrap().clone();
    // The cloned code names the simulated person (masked) and both checkpoints, too fast.
    let cloned = find("cloned_code");
    let doc = case("cloned_code")["document"].as_str().unwrap().to_string();
    assert_eq!(cloned["detail"]["person"]["document"], tongxing_domain::mask::document_number(&doc));
    assert_eq!(cloned["detail"]["first"]["checkpoint"], "CP-JINGHA");
    assert_eq!(cloned["detail"]["second"]["checkpoint"], "CP-JINGZANG");
    assert!(cloned["detail"]["speed_kmh"].as_f64().unwrap() > 150.0, "{cloned}");
    assert_eq!(find("shortcut")["detail"]["denied"]["checkpoint"], "CP-JINGHU");
    // Two surges: at a checkpoint (entries) and at a service-area test point (samples).
    let surges: Vec<Value> = warnings.as_array().unwrap().iter().filter(|w| w["kind"] == "surge").cloned().collect();
    assert_eq!(surges.len(), 2, "{surges:?}");
    let at_checkpoint = surges.iter().find(|w| w["detail"]["checkpoint"].is_string()).expect("a checkpoint's surge");
    assert_eq!(at_checkpoint["detail"]["checkpoint"], "CP-JINGKUN");
    let at_test_point = surges.iter().find(|w| w["detail"]["test_point"].is_string()).expect("a test point's surge");
    let tp_case = report["cases"].as_array().unwrap().iter().find(|c| c["test_point"].is_string()).unwrap();
    assert_eq!(at_test_point["detail"]["test_point"], tp_case["test_point"]);
    assert!(at_test_point["detail"]["why"].as_str().unwrap().starts_with("test point "), "{at_test_point}");
    for w in &surges {
        assert!(w["detail"]["statistic"].as_f64().unwrap() > 3.0, "{w}");
    }
    assert_eq!(find("slow_rise")["detail"]["checkpoint"], "CP-JINGXIN");
    let cluster = find("positive_cluster");
    assert_eq!((cluster["detail"]["dimension"].as_str(), cluster["detail"]["group"].as_str()), (Some("county"), Some("131082")));
    assert_eq!(find("lab_late")["detail"]["lab"], "TJ-LAB-008");
    assert_eq!(find("lab_positivity")["detail"]["lab"], "HB-LAB-011");
    // Warnings are alerts: filtered by kind, acknowledged like any other.
    let by_kind = app.get("health", "/api/v1/alerts?kind=surge");
    assert_eq!(by_kind.body.as_array().unwrap().len(), 2, "{by_kind:?}");
    let id = by_kind.body[0]["id"].as_i64().unwrap();
    assert_eq!(app.post("health", &format!("/api/v1/alerts/{id}/acknowledge"), json!({})).status, 200);
    // As CSV: a line per warning with its reason.
    let csv = app.raw("GET", "/api/v1/analytics/warnings?format=csv", Some(&app.tokens["health"]), None, b"");
    assert_eq!(csv.header("content-type"), ["text/csv; charset=utf-8"]);
    assert_eq!(csv.text.lines().count(), warnings.as_array().unwrap().len() + 1, "{}", csv.text);
});

both!(fn near_cases_and_the_plain_month_stay_quiet(b) {
    for cases in ["near", "none"] {
        let (db, report) = simulated(b, cases);
        let app = serve(db);
        first_run_done(&app);
        assert_eq!(warning_kinds(&app), Vec::<String>::new(), "{cases}: {report}");
        // Every event was counted: the flows' total is the simulation's.
        let since = urlencode(&(Utc::now() - Duration::days(40)).to_rfc3339());
        let until = urlencode(&(Utc::now() + Duration::days(1)).to_rfc3339());
        let t = app.get("health", &format!("/api/v1/analytics/flows?grain=1d&columns=verdict&since={since}&until={until}"));
        assert_eq!(t.status, 200, "{t:?}");
        assert_eq!(t.body["total"], report["events"], "{cases}");
    }
});

/// Checkpoints on the map: A, and B and C at one place 105 km from it.
pub(crate) fn far_apart(app: &App) {
    app.checkpoint("CP-A", "京哈高速");
    app.checkpoint("CP-B", "京藏高速");
    app.checkpoint("CP-C", "京藏高速");
    let r = app.post(
        "admin",
        "/api/v1/analytics/places",
        json!({"places": [
            {"kind": "checkpoint", "id": "CP-A", "lat": 39.90, "lon": 116.93},
            {"kind": "checkpoint", "id": "CP-B", "lat": 40.33, "lon": 115.83},
            {"kind": "checkpoint", "id": "CP-C", "lat": 40.33, "lon": 115.83}]}),
    );
    assert_eq!(r.status, 200, "{r:?}");
}

both!(fn live_checks_raise_a_cloned_code_and_a_shortcut(b) {
    let mut app = App::spawn(b);
    far_apart(&app);
    // At CP-B and CP-C, at one place: no warning. Then at CP-A, 105 km away, seconds later.
    let doc = nth_id("110105", 21);
    app.negative(&doc, Duration::hours(3));
    assert_eq!(app.verdict("CP-B", &doc).0, "pass");
    assert_eq!(app.verdict("CP-C", &doc).0, "pass");
    // Both counted, then the server killed and started again: the job's memory of each
    // document's last check is gone with the process and must be read again from the events.
    let since = urlencode(&(Utc::now() - Duration::days(1)).to_rfc3339());
    let until = urlencode(&(Utc::now() + Duration::days(1)).to_rfc3339());
    let counted = wait(30, || {
        let t = app.get("health", &format!("/api/v1/analytics/flows?grain=1d&columns=verdict&since={since}&until={until}"));
        (t.body["total"] == 2).then_some(())
    });
    assert!(counted.is_some(), "the rollup job did not count the first two checks");
    app.server.kill9();
    app.server = Server::start(&app.db);
    assert_eq!(app.verdict("CP-A", &doc).0, "pass");
    let second = Instant::now();
    let cloned = wait(30, || {
        let r = app.get("health", "/api/v1/alerts?kind=cloned_code");
        r.body.as_array().filter(|a| !a.is_empty()).map(|a| a[0].clone())
    })
    .expect("a cloned-code warning");
    // For docs/PERFORMANCE.md (target: within 5 s of the second check); not asserted.
    eprintln!("analytics: cloned code listed {} ms after its second check was answered", second.elapsed().as_millis());
    assert_eq!(cloned["detail"]["second"]["checkpoint"], "CP-A");
    assert_eq!(cloned["detail"]["first"]["checkpoint"], "CP-C");
    assert_eq!(cloned["detail"]["person"]["document"], tongxing_domain::mask::document_number(&doc));
    assert!(cloned["detail"]["why"].as_str().unwrap().contains("km/h"), "{cloned}");
    // Denied at CP-B (no test), checked at CP-C: a shortcut. Denied and checked again at the same
    // checkpoint: none.
    let denied = nth_id("110105", 22);
    assert_eq!(app.verdict("CP-B", &denied).0, "deny");
    assert_eq!(app.verdict("CP-B", &denied).0, "deny");
    let again = nth_id("110105", 23);
    assert_eq!(app.verdict("CP-C", &again).0, "deny");
    app.negative(&denied, Duration::hours(1));
    assert_eq!(app.verdict("CP-C", &denied).0, "pass");
    let shortcut = wait(30, || {
        let r = app.get("health", "/api/v1/alerts?kind=shortcut");
        r.body.as_array().filter(|a| !a.is_empty()).cloned()
    })
    .expect("a shortcut warning");
    assert_eq!(shortcut.len(), 1, "{shortcut:?}");
    assert_eq!(shortcut[0]["detail"]["denied"]["checkpoint"], "CP-B");
    assert_eq!(shortcut[0]["detail"]["checked"]["checkpoint"], "CP-C");
    // The denied person's first denial is not followed by anything elsewhere: one warning only;
    // the pairs table counts it.
    let pairs = app.get("health", "/api/v1/analytics/shortcuts");
    assert_eq!(pairs.body["rows"][0]["key"], "CP-B", "{pairs:?}");
    assert_eq!(pairs.body["total"], 1);
    // The same person checked again at CP-A: one cloned-code warning a day, not one per check.
    assert_eq!(app.verdict("CP-A", &doc).0, "pass");
    std::thread::sleep(StdDuration::from_secs(2));
    assert_eq!(app.get("health", "/api/v1/alerts?kind=cloned_code").body.as_array().unwrap().len(), 1);
});

/// No shown entry under the threshold, and no row or column (with its total) with exactly one
/// suppressed entry: none can be recovered by subtraction.
fn assert_safe(t: &Value, k: u64) {
    let rows = t["rows"].as_array().unwrap();
    let shown = |v: &Value| v.as_u64();
    let mut all: Vec<Option<u64>> = Vec::new();
    for r in rows {
        let line: Vec<Option<u64>> =
            r["cells"].as_array().unwrap().iter().map(shown).chain([shown(&r["total"])]).collect();
        assert_ne!(line.iter().filter(|c| c.is_none()).count(), 1, "row {}: {t}", r["key"]);
        all.extend(line);
    }
    let totals: Vec<Option<u64>> =
        t["column_totals"].as_array().unwrap().iter().map(shown).chain([shown(&t["total"])]).collect();
    assert_ne!(totals.iter().filter(|c| c.is_none()).count(), 1, "totals: {t}");
    for c in 0..totals.len() {
        let col: Vec<Option<u64>> = rows
            .iter()
            .map(|r| if c + 1 == totals.len() { shown(&r["total"]) } else { shown(&r["cells"][c]) })
            .chain([totals[c]])
            .collect();
        assert_ne!(col.iter().filter(|x| x.is_none()).count(), 1, "column {c}: {t}");
    }
    all.extend(totals);
    assert!(all.iter().flatten().all(|n| *n >= k), "a count under {k}: {t}");
}

both!(fn the_analyst_sees_counts_only_suppressed_and_the_drill_down_is_logged(b) {
    let (db, report) = simulated(b, "none");
    let app = serve(db);
    first_run_done(&app);
    let since = urlencode(&(Utc::now() - Duration::days(3)).to_rfc3339());
    for query in [
        format!("grain=1h&rows=checkpoint&columns=verdict&since={since}"),
        format!("grain=1d&rows=reason&columns=checkpoint&since={since}"),
        format!("grain=15m&rows=checkpoint&columns=bucket&since={since}&who=visitor"),
        format!("grain=1h&rows=mode&columns=hour_of_day&since={since}&verdict=deny"),
    ] {
        let path = format!("/api/v1/analytics/flows?{query}");
        let analyst = app.get("analyst", &path);
        assert_eq!(analyst.status, 200, "{analyst:?}");
        assert_eq!(analyst.body["suppressed_under"], 5);
        assert_safe(&analyst.body, 5);
        // Something is hidden, and what is shown is the truth.
        let health = app.get("health", &path).body;
        assert!(health["suppressed_under"].is_null());
        assert_eq!(health["rows"].as_array().unwrap().len(), analyst.body["rows"].as_array().unwrap().len());
        for (a, h) in analyst.body["rows"].as_array().unwrap().iter().zip(health["rows"].as_array().unwrap()) {
            for (x, y) in a["cells"].as_array().unwrap().iter().zip(h["cells"].as_array().unwrap()) {
                assert!(x.is_null() || x == y);
            }
        }
        // The CSV export holds the same cells: nothing under the threshold there either.
        let csv = app.raw("GET", &format!("{path}&format=csv"), Some(&app.tokens["analyst"]), None, b"");
        assert_eq!(csv.status, 200);
        for line in csv.text.lines().skip(1) {
            for cell in line.split(',').skip(1) {
                if !cell.is_empty() {
                    assert!(cell.parse::<u64>().unwrap() >= 5, "{path}: {line}");
                }
            }
        }
    }
    // Parquet: with the `parquet` feature, a Parquet file of the same cells; without it, a 422
    // that names the field and the feature.
    let path = format!("/api/v1/analytics/flows?grain=1h&rows=checkpoint&columns=verdict&since={since}&format=parquet");
    let parquet = app.raw("GET", &path, Some(&app.tokens["analyst"]), None, b"");
    if cfg!(feature = "parquet") {
        assert_eq!(parquet.status, 200, "{parquet:?}");
        assert!(parquet.text.starts_with("PAR1"), "{parquet:?}");
    } else {
        assert_eq!(parquet.status, 422, "{parquet:?}");
        assert!(parquet.text.contains("\"field\":\"format\"") && parquet.text.contains("--features parquet"), "{parquet:?}");
    }
    // The warnings as CSV: a header and one line per warning (none on the plain month).
    let warnings = app.raw("GET", "/api/v1/analytics/warnings?format=csv", Some(&app.tokens["analyst"]), None, b"");
    assert_eq!((warnings.status, warnings.text.as_str()), (200, "id,kind,status,raised_at,why\r\n"));
    let profile = app.get("analyst", "/api/v1/analytics/profile");
    assert_eq!(profile.body["rows"].as_array().unwrap().len(), 4, "{profile:?}");
    assert_safe(&profile.body, 5);
    let demand = app.get("analyst", "/api/v1/analytics/demand");
    assert_safe(&demand.body["by_county"], 5);
    assert_safe(&demand.body["by_test_point"], 5);
    assert_eq!(demand.body["visitor_backtest"].as_array().unwrap().len(), 14);
    assert!(demand.body["visitor_backtest"][0]["mase"].as_f64().is_some(), "{}", demand.body);
    for field in ["visitor_history", "visitor_forecast"] {
        for day in demand.body[field].as_array().unwrap() {
            assert!(day[1].is_null() || day[1].as_f64().unwrap() >= 5.0, "{field}: {day}");
        }
    }
    // Testing demand: every approved commuter is counted once (due in 14 days, or lapsed).
    let health_demand = app.get("health", "/api/v1/analytics/demand").body;
    let due = health_demand["by_county"]["total"].as_u64().unwrap();
    let lapsed = health_demand["lapsed"]["total"].as_u64().unwrap_or(0);
    assert!(due + lapsed <= report["commuters"].as_u64().unwrap() && due > 0, "{health_demand}");

    // Capacity: registered with a test point's place by an administrator, compared with demand.
    let busiest = health_demand["by_test_point"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["key"] != "(no place)")
        .max_by_key(|r| r["total"].as_u64().unwrap_or(0))
        .unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    let places = app.get("admin", "/api/v1/analytics/places").body;
    let place = places.as_array().unwrap().iter().find(|p| p["kind"] == "test_point" && p["id"] == busiest.as_str()).unwrap();
    let (lat, lon) = (place["lat"].as_f64().unwrap(), place["lon"].as_f64().unwrap());
    for (body, field) in [
        (json!({"kind": "checkpoint", "id": "CP-JINGHA", "lat": 39.9, "lon": 116.9, "capacity": 100}), "places[0].capacity"),
        (json!({"kind": "test_point", "id": busiest, "lat": lat, "lon": lon, "capacity": 0}), "places[0].capacity"),
    ] {
        let r = app.post("admin", "/api/v1/analytics/places", json!({"places": [body]}));
        assert_eq!((r.status, r.body["field"].as_str()), (422, Some(field)), "{r:?}");
    }
    let r = app.post("admin", "/api/v1/analytics/places", json!({"places": [{"kind": "test_point", "id": busiest, "lat": lat, "lon": lon, "capacity": 1}]}));
    assert_eq!(r.status, 200, "{r:?}");
    let d = app.get("health", "/api/v1/analytics/demand").body;
    assert_eq!(d["capacity"][busiest.as_str()], 1, "{}", d["capacity"]);
    let over = d["over_capacity"].as_array().unwrap();
    assert!(over.iter().any(|o| o["test_point"] == busiest.as_str()), "{over:?}");
    for o in over {
        assert!(o["demand"].as_i64().unwrap() > o["capacity"].as_i64().unwrap(), "{o}");
    }
    // People behind a count: the health authority only, with a purpose, written to the access log.
    let drill = "/api/v1/analytics/entries";
    let body = json!({"checkpoint": "CP-JINGHA", "purpose": "flow review", "reveal": true});
    assert_eq!(app.post("analyst", drill, body.clone()).status, 403);
    assert_eq!(app.post("health", drill, json!({"checkpoint": "CP-JINGHA"})).body["field"], "purpose");
    assert_eq!(app.post("health", drill, json!({"checkpoint": "CP-NONE", "purpose": "x"})).body["field"], "checkpoint");
    let people = app.post("health", drill, body);
    assert_eq!(people.status, 200, "{people:?}");
    let first = people.body.as_array().unwrap().iter().find(|e| !e["doc_number"].as_str().unwrap().is_empty()).unwrap();
    let doc = first["doc_number"].as_str().unwrap();
    let log = app.post("registry", "/api/v1/people/access-log", json!({"document_number": doc, "purpose": "audit"}));
    assert_eq!(log.status, 200, "{log:?}");
    assert!(log.body.to_string().contains("analytics drill-down"), "{}", log.body);
    let masked = app.post("health", drill, json!({"checkpoint": "CP-JINGHA", "purpose": "flow review"}));
    assert!(masked.body[0]["doc_number"].as_str().unwrap().contains('*'));
});

// The visitors' forecast (the mean of the same weekday of two weeks) against the seasonal-naive
// one, back-tested over eight simulated weeks: MASE under 1 at every horizon of the fortnight.
// (On a 30-day month the back-test has 16 origins and wanders around 1; see PERFORMANCE.md.)
both!(fn the_visitor_forecast_beats_seasonal_naive_over_simulated_weeks(b) {
    let (db, _) = simulated_days(b, "none", 56);
    let app = serve(db);
    first_run_done(&app);
    let demand = app.get("analyst", "/api/v1/analytics/demand");
    let scores = demand.body["visitor_backtest"].as_array().unwrap();
    assert_eq!(scores.len(), 14, "{}", demand.body);
    for h in scores {
        let mase = h["mase"].as_f64().unwrap_or(f64::NAN);
        assert!(mase < 1.0, "horizon {}: MASE {mase}: {scores:?}", h["horizon"]);
        assert!(h["smape"].as_f64().is_some_and(|s| s > 0.0 && s < 200.0), "{h}");
    }
});

both!(fn a_rebuilt_rollup_equals_the_incremental_one_and_bad_queries_are_refused(b) {
    let (db, _) = simulated(b, "all");
    let mut app = serve(db);
    first_run_done(&app);
    let since = urlencode(&(Utc::now() - Duration::days(35)).to_rfc3339());
    let path = format!("/api/v1/analytics/flows?grain=1d&rows=checkpoint&columns=reason&since={since}");
    let before = app.get("health", &path).body;
    for (query, field) in [
        ("grain=2h", "grain"),
        ("rows=verdict&columns=verdict", "columns"),
        ("rows=person", "rows"),
        ("grain=15m&since=2020-01-01T00:00:00%2B08:00", "since"),
        ("format=xml", "format"),
    ] {
        let r = app.get("analyst", &format!("/api/v1/analytics/flows?{query}"));
        assert_eq!((r.status, r.body["field"].as_str()), (422, Some(field)), "{query}: {r:?}");
    }
    let unknown = app.get("analyst", "/api/v1/analytics/flows?people=1");
    assert_eq!((unknown.status / 100, unknown.body["field"].as_str()), (4, Some("people")), "{unknown:?}");
    let bad = app.post("admin", "/api/v1/analytics/places", json!({"places": [{"kind": "checkpoint", "id": "CP-1", "lat": 91, "lon": 116}]}));
    assert_eq!((bad.status, bad.body["field"].as_str()), (422, Some("places[0].lat")), "{bad:?}");
    app.server.kill9();
    let out = Command::new(BIN).args(["rollup", "rebuild", "--database", &app.db.url]).env("RUST_LOG", "error").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("entry events counted"));
    app.server = Server::start(&app.db);
    let after = app.get("health", &path).body;
    assert_eq!(before, after);
});

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}
