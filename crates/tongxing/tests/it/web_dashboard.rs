//! The command centre's dashboard in a real browser: the analyst signs in and lands on it; it
//! shows the flows counted from checks (a checkpoint's count, a small count hidden), passes
//! axe-core in both languages without sideways scrolling; a cloned code raised while it is open
//! appears on it without a reload (the SSE stream). Over plain HTTP: the analyst's page and CSV
//! name nobody and show no count under 5; the health authority's CSV shows the count; other
//! roles are refused. (SQLite: see web_citizen.rs.)

use chrono::Duration;
use serde_json::json;

use crate::analytics::far_apart;
use crate::both;
use crate::browser::Browser;
use crate::helpers::*;
use crate::web::{Visitor, person, spawn_web};

/// Today's entries as the health authority (unsuppressed) counts them, once the rollup job has
/// counted `n`.
fn counted(app: &App, n: u64) {
    let done = wait(30, || {
        let r = app.get("health", "/api/v1/analytics/flows?rows=checkpoint&columns=verdict");
        (r.body["total"].as_u64() == Some(n)).then_some(())
    });
    assert!(done.is_some(), "the rollup job did not count {n} entries");
}

both!(fn the_dashboard_shows_the_flows_and_a_warning_live(backend) {
    let (app, _) = spawn_web(backend);
    far_apart(&app);
    // Seven people pass at CP-B and six at CP-C: counts the analyst sees. One is denied at CP-C
    // (no test): a count under 5, hidden from the analyst.
    let passed: Vec<String> = (0..13).map(|i| nth_id("110105", 70 + i)).collect();
    for (i, doc) in passed.iter().enumerate() {
        app.negative(doc, Duration::hours(3));
        assert_eq!(app.verdict(if i < 7 { "CP-B" } else { "CP-C" }, doc).0, "pass");
    }
    let denied = nth_id("110105", 90);
    assert_eq!(app.verdict("CP-C", &denied).0, "deny");
    counted(&app, 14);

    let name = format!("dashboard-{}", format!("{backend:?}").to_lowercase());
    let mut b = Browser::start(&name, &app.server.base);
    b.staff_sign_in(&app.tokens["analyst"]);
    assert_eq!(b.path(), "/dashboard", "the analyst lands on the dashboard");
    b.step("the flows: a checkpoint's count, a small count hidden", |b| {
        let pass = b.js("return document.querySelector(\"#checkpoints tr[data-checkpoint='CP-B'] td\").textContent;");
        assert_eq!(pass, "7");
        assert_eq!(b.text("#entries-today"), "14");
        let deny = b.js("const td = document.querySelectorAll(\"#checkpoints tr[data-checkpoint='CP-C'] td\")[2];
             return [td.className, td.textContent];");
        assert!(deny[0].as_str().unwrap().contains("supp"), "{deny}");
        assert_eq!(deny[1], "已隐藏");
        assert!(b.exists("#suppressed-note"));
        // The chart has bars; its table is there for those who cannot see it.
        assert_eq!(b.js("return document.querySelectorAll('#profile-table tbody tr').length;"), json!(24));
        assert!(b.js("return document.querySelectorAll('#flows svg.bars rect.bar').length;").as_i64().unwrap() >= 1);
    });
    b.check_page("/dashboard");
    let bytes = b.step("first load", |b| {
        b.goto("/dashboard");
        b.transferred()
    });
    eprintln!("/dashboard first load: {bytes} bytes");
    assert!(bytes < 100_000, "/dashboard loads {bytes} bytes");

    b.step("the page follows the stream", |b| {
        b.goto("/dashboard");
        b.wait_js("document.getElementById('warnings').dataset.live === 'on'");
        assert!(b.exists("#no-warnings"));
        b.js("window.stillHere = true;");
    });
    // A cloned code: one person checked at CP-C, then at CP-A, 105 km away, seconds later.
    let cloned = nth_id("110105", 91);
    person(&app, &cloned, "13812345681", "冯八一");
    app.negative(&cloned, Duration::hours(3));
    assert_eq!(app.verdict("CP-C", &cloned).0, "pass");
    assert_eq!(app.verdict("CP-A", &cloned).0, "pass");
    b.step("the warning appears without reloading", |b| {
        b.wait_js("document.querySelector('#warnings li.warning') !== null");
        let text = b.text("#warnings li.warning");
        // Why, in the page's language (the stored `why` is English).
        assert!(text.contains("疑似克隆码") && text.contains("折合时速") && !text.contains("km/h"), "{text}");
        assert!(text.contains("CP-C") && text.contains("CP-A"), "{text}");
        assert!(!text.contains(&cloned) && !text.contains("****") && !text.contains("冯八一"), "no person: {text}");
        assert_eq!(b.js("return window.stillHere === true;"), json!(true), "the page was not reloaded");
        b.axe();
        for (w, h) in [(1280, 900), (360, 780)] {
            b.size(w, h);
            b.no_horizontal_scroll();
            b.shot(&format!("warning-live-{w}"));
        }
    });

    // Plain HTTP: the analyst's page and CSV name nobody and show no count under 5.
    counted(&app, 16);
    let analyst = Visitor::new(&app);
    assert_eq!(analyst.sign_in(&app.tokens["analyst"]).header("location"), Some("/dashboard"));
    let page = analyst.get("/dashboard?lang=en");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("CP-B") && page.body.contains("Cloned code?"), "{}", page.body);
    assert!(page.body.contains("km/h, more than the 150 km/h the road allows"), "{}", page.body);
    for doc in passed.iter().chain([&denied, &cloned]) {
        assert!(!page.body.contains(doc.as_str()), "a person on the page: {doc}");
    }
    assert!(!page.body.contains("****") && !page.body.contains("冯八一"), "a person on the page");
    assert!(page.body.contains("hidden"), "small counts are shown hidden");
    let csv = analyst.get("/dashboard/checkpoints.csv");
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines[0], "checkpoint,pass,conditional,deny,total", "{}", csv.body);
    for line in &lines[1..] {
        for cell in line.split(',').skip(1).filter(|c| !c.is_empty()) {
            assert!(cell.parse::<u64>().unwrap() >= 5, "a count under 5 in the analyst's CSV: {line}");
        }
    }
    let cp_c = lines.iter().find(|l| l.starts_with("CP-C,")).unwrap();
    assert_eq!(cp_c.split(',').nth(3), Some(""), "CP-C's one denial is hidden: {}", csv.body);
    assert_eq!(analyst.get("/dashboard/profile.csv").status, 200);
    let warnings = analyst.get("/dashboard/warnings.csv");
    assert_eq!(warnings.status, 200);
    let lines: Vec<&str> = warnings.body.lines().collect();
    assert_eq!(lines[0], "id,kind,status,raised_at,why", "{}", warnings.body);
    assert!(lines[1..].iter().any(|l| l.contains(",cloned_code,open,") && l.contains("km/h")), "{}", warnings.body);
    assert!(!warnings.body.contains(cloned.as_str()), "no person in the warnings' CSV");
    // The health authority sees every count.
    let health = Visitor::new(&app);
    health.sign_in(&app.tokens["health"]);
    let csv = health.get("/dashboard/checkpoints.csv").body;
    assert!(csv.lines().any(|l| l == "CP-C,7,0,1,8"), "{csv}");
    assert_eq!(health.get("/dashboard").status, 200);
    // Others are refused; the stream is not for the administrator (no warnings for that role).
    let officer = Visitor::new(&app);
    officer.sign_in(&app.tokens["officer"]);
    assert_eq!(officer.get("/dashboard").status, 403);
    assert_eq!(officer.get("/dashboard/checkpoints.csv").status, 403);
    let admin = Visitor::new(&app);
    admin.sign_in(&app.tokens["admin"]);
    assert_eq!(admin.get("/dashboard").status, 200);
    assert_eq!(admin.get("/dashboard/warnings/stream").status, 403);
    assert_eq!(admin.get("/dashboard/warnings.csv").status, 403);
    assert_eq!(Visitor::new(&app).get("/dashboard").status, 303);
});
