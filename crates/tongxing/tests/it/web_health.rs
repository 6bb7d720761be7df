//! The health authority's page in a real browser: a colour set on it turns the citizen's page
//! yellow; an alert appears on the open page as it is raised (the SSE stream), is acknowledged
//! and resolved; a colours file is previewed, refused whole while a row is bad, then applied;
//! a candidate policy is dry-run over recent checks, then published and activated. axe-core in
//! both languages, no sideways scrolling. (SQLite: see web_citizen.rs.)

use chrono::{Duration, Utc};
use serde_json::json;

use crate::browser::Browser;
use crate::helpers::*;
use crate::web::{person, spawn_web};

const TP: &str = "SA-JINGHA-XIANGHE";

fn colour_of(app: &App, doc: &str) -> String {
    let r = app.post("health", "/api/v1/people/lookup", json!({"document_number": doc, "purpose": "test"}));
    r.body["code_colour"].as_str().unwrap_or("not registered").to_string()
}

#[test]
fn a_colour_set_here_turns_the_citizen_page_yellow() {
    let (app, codes) = spawn_web(Backend::Sqlite);
    let doc = nth_id("110105", 61);
    person(&app, &doc, "13812345661", "冯一");
    app.negative(&doc, Duration::hours(2));
    let mut citizen = Browser::start("health-colour-citizen", &app.server.base);
    citizen.step("the citizen signs in: green", |b| {
        b.goto("/citizen/sign-in");
        b.fill("#document_number", &doc);
        let seen = codes.count();
        b.click("button[type=submit].primary");
        b.find("#code");
        b.fill("#code", &codes.next(seen));
        b.click("button[type=submit].primary");
        b.wait_js("location.pathname === '/citizen'");
        assert_eq!(b.attr(".code", "data-colour").as_deref(), Some("green"));
    });
    let mut b = Browser::start("health-colour", &app.server.base);
    b.staff_sign_in(&app.tokens["health"]);
    assert_eq!(b.path(), "/health");
    b.check_page("/health");
    b.step("yellow without a reason is refused; nothing changed", |b| {
        b.goto("/health");
        b.fill("#document_number", &doc);
        b.select("#colour", "yellow");
        b.click("form[action='/health/colour'] button");
        b.wait_text("main", "reason");
    });
    assert_eq!(colour_of(&app, &doc), "green");
    b.step("yellow with a pop-up reason", |b| {
        b.goto("/health");
        b.fill("#document_number", &doc);
        b.select("#colour", "yellow");
        b.select("#popup", "spatiotemporal_link");
        b.click("form[action='/health/colour'] button");
        b.wait_text("[role=status]", "健康码已设置");
    });
    assert_eq!(colour_of(&app, &doc), "yellow");
    citizen.step("the citizen's page turns yellow", |b| {
        b.goto("/citizen");
        assert_eq!(b.attr(".code", "data-colour").as_deref(), Some("yellow"));
        assert_eq!(b.text(".code .word"), "黄码");
        assert!(b.text(".person").contains("时空关联"), "{}", b.text(".person"));
    });
}

#[test]
fn an_alert_appears_live_and_is_handled() {
    let (app, _) = spawn_web(Backend::Sqlite);
    let doc = nth_id("120104", 62);
    app.test_point_sample(TP, "TP-ALERT-62", &doc, Duration::hours(2), None);
    app.sign_letter(TP, "TP-ALERT-62", &doc);
    let mut b = Browser::start("health-alert", &app.server.base);
    b.staff_sign_in(&app.tokens["health"]);
    b.step("the page follows the stream", |b| {
        b.wait_js("document.getElementById('alerts').dataset.live === 'on'");
        assert!(b.exists("#no-alerts"));
    });
    let r = app.post(
        "lab",
        "/api/v1/results",
        json!({"lab": TP, "sample_id": "TP-ALERT-62", "document_number": doc,
        "sampled_at": (Utc::now() - Duration::hours(2)).to_rfc3339(), "site": TP, "site_kind": "service_area",
        "result": "positive"}),
    );
    assert_eq!(r.status, 200, "{r:?}");
    b.step("the alert appears without reloading", |b| {
        b.wait_js("document.querySelector('#alerts article.alert') !== null");
        let text = b.text("#alerts article.alert");
        assert!(text.contains("阳性") && text.contains("TP-ALERT-62"), "{text}");
        assert!(text.contains(&format!("12**************{}", &doc[16..])) && !text.contains(&doc), "masked: {text}");
        b.axe();
    });
    b.step("acknowledge", |b| {
        b.click("#alerts form[action='/health/alerts/acknowledge'] button");
        b.wait_text("[role=status]", "已接收");
        assert_eq!(b.attr("#alerts article.alert", "data-status").as_deref(), Some("acknowledged"));
    });
    b.step("resolve with the outcome", |b| {
        b.fill("#alerts input[name=outcome]", "居家隔离，家人已检测");
        b.click("#alerts form[action='/health/alerts/resolve'] button");
        b.wait_text("[role=status]", "已办结");
        assert!(b.exists("#no-alerts"));
    });
    let alerts = app.get("health", "/api/v1/alerts?status=resolved").body;
    assert_eq!(alerts[0]["outcome"], "居家隔离，家人已检测", "{alerts}");
}

#[test]
fn colours_from_a_file_all_or_nothing() {
    let (app, _) = spawn_web(Backend::Sqlite);
    let (a, c) = (nth_id("110105", 63), nth_id("110105", 64));
    let bad = format!(
        "document_number,colour,reason,popup\n{a},yellow,,test_overdue\n{c},red,密接,\n110105198501010000,yellow,x,\n{a},purple,x,\n"
    );
    let good = format!("document_number,colour,reason,popup\n{a},yellow,,test_overdue\n{c},red,密接,\n");
    let mut b = Browser::start("health-colours", &app.server.base);
    b.staff_sign_in(&app.tokens["health"]);
    b.check_page("/health/colours");
    b.step("a file with bad rows: each named by its line, nothing set", |b| {
        b.goto("/health/colours");
        b.js(&format!("document.getElementById('csv').value = {};", serde_json::to_string(&bad).unwrap()));
        b.click("form[action='/health/colours/preview'] button");
        b.find("#preview");
        let lines = b.js("return [...document.querySelectorAll('#bad-rows tr[data-line]')].map(r => r.dataset.line);");
        assert_eq!(lines, json!(["4", "5"]));
        assert!(!b.exists("#do-apply"), "no way to apply a file with bad rows");
    });
    // Nothing written: not even the people.
    assert_eq!((colour_of(&app, &a), colour_of(&app, &c)), ("not registered".into(), "not registered".into()));
    b.step("the good file, previewed then applied", |b| {
        b.goto("/health/colours");
        b.js(&format!("document.getElementById('csv').value = {};", serde_json::to_string(&good).unwrap()));
        b.click("form[action='/health/colours/preview'] button");
        assert!(
            b.text("#preview").contains("转黄 1") && b.text("#preview").contains("转红 1"),
            "{}",
            b.text("#preview")
        );
        b.click("#do-apply");
        b.wait_text("#colours-set", "2");
    });
    assert_eq!((colour_of(&app, &a), colour_of(&app, &c)), ("yellow".into(), "red".into()));
}

#[test]
fn a_policy_dry_run_then_published() {
    let (app, _) = spawn_web(Backend::Sqlite);
    app.checkpoint("CP1", "京哈高速");
    let doc = nth_id("110105", 65);
    app.negative(&doc, Duration::hours(30));
    assert_eq!(app.verdict("CP1", &doc).0, "pass");
    // A stricter candidate: the 2022-11-22 rules (48 h everywhere) re-issued as a new version.
    let (_, text) = tongxing_rules::BUILTIN_FILES[2];
    let candidate = tongxing_rules::reissue(text, "web-test-1", Utc::now() - Duration::minutes(1)).unwrap();
    let mut b = Browser::start("health-policy", &app.server.base);
    b.staff_sign_in(&app.tokens["health"]);
    b.check_page("/health/policy");
    b.step("dry run over the last week", |b| {
        b.goto("/health/policy");
        b.js(&format!("document.getElementById('policy').value = {};", serde_json::to_string(&candidate).unwrap()));
        b.click("form[action='/health/policy/dry-run'] button");
        b.find("#report");
        assert_eq!(b.text("#events"), "1");
        b.axe();
    });
    let listed = |app: &App| {
        app.get("health", "/api/v1/policies").body.as_array().unwrap().iter().any(|p| p["version"] == "web-test-1")
    };
    assert!(!listed(&app), "a dry run publishes nothing");
    b.step("publish and activate what was dry-run", |b| {
        b.js("window.confirm = () => true;");
        b.click("#do-publish");
        b.wait_text("#published", "web-test-1");
    });
    assert!(listed(&app));
    let audit = app.get("health", "/api/v1/policies/audit").body;
    let actions: Vec<&str> = audit.as_array().unwrap().iter().filter_map(|e| e["state"].as_str()).collect();
    assert!(actions.iter().any(|a| a.contains("dry-run")) && actions.iter().any(|a| a.contains("activate")), "{audit}");
}
