//! The test point's page in a real browser: sign in with the test point's token → register a
//! sample (bar code, pool) → the letter, in either language, signed on the device → the check is
//! conditional; the day's list shows the sample, then its result as the lab sends it. axe-core
//! in both languages, no sideways scrolling. (SQLite: see web_citizen.rs.)

use chrono::{Duration, Utc};
use serde_json::json;

use crate::browser::Browser;
use crate::helpers::*;
use crate::web::spawn_web;

const TP: &str = "SA-JINGHA-XIANGHE";

#[test]
fn sample_then_letter_then_conditional_and_the_result_arrives() {
    let (app, _) = spawn_web(Backend::Sqlite);
    app.checkpoint("CP-JINGHA", "京哈高速");
    let token = app.db.scoped_token("test_point", &[TP]);
    let doc = nth_id("120104", 41);
    let mut b = Browser::start("test-point", &app.server.base);
    b.staff_sign_in(&token);
    b.step("the test point's own page", |b| {
        assert_eq!(b.path(), "/test-point");
        assert!(b.text("main").contains(TP));
    });
    b.check_page("/test-point");
    b.step("register a sample with its pool", |b| {
        b.goto("/test-point");
        b.fill("#document_number", &doc);
        b.fill("#sample_id", "TP-WEB-41");
        b.fill("#pool_id", "POOL-41");
        b.click("form[action='/test-point/samples'] button");
        b.wait_js("location.pathname === '/test-point/letter'");
        assert!(b.text("main").contains(&format!("12**************{}", &doc[16..])));
        assert!(!b.text("main").contains(&doc), "the number is masked");
    });
    assert_eq!(app.verdict("CP-JINGHA", &doc).1, "COMMITMENT_LETTER_REQUIRED");
    let letter = b.path();
    b.check_page(&letter);
    b.step("the letter in the person's language", |b| {
        b.goto(&format!("{letter}&lang=zh-CN"));
        assert!(b.js("return document.getElementById('letter-en').hidden;").as_bool().unwrap());
        b.click("button[data-letter=en]");
        b.wait_js("!document.getElementById('letter-en').hidden && document.getElementById('letter-zh').hidden");
        assert!(b.text("#letter-en").contains("Commitment letter"), "{}", b.text("#letter-en"));
    });
    b.step("not signed without the person's consent", |b| {
        b.js("document.querySelector('input[name=agree]').required = false;");
        b.click("form[action='/test-point/letter'] button");
        b.wait_text("h1", "未做任何更改");
    });
    assert_eq!(app.verdict("CP-JINGHA", &doc).1, "COMMITMENT_LETTER_REQUIRED");
    b.step("the person agrees and signs", |b| {
        b.goto(&letter);
        b.click("input[name=agree]");
        b.click("form[action='/test-point/letter'] button");
        b.wait_text("[role=status]", "承诺书已签署");
        let row = b.text("tr[data-sample='TP-WEB-41']");
        assert!(row.contains("POOL-41") && row.contains("已签署，待结果") && row.contains("待出"), "{row}");
    });
    assert_eq!(app.verdict("CP-JINGHA", &doc), ("conditional".into(), "PENDING_WITH_COMMITMENT".into()));
    let r = app.post(
        "lab",
        "/api/v1/results",
        json!({"lab": TP, "sample_id": "TP-WEB-41", "document_number": doc,
        "sampled_at": (Utc::now() - Duration::minutes(1)).to_rfc3339(), "site": TP, "site_kind": "service_area",
        "result": "negative"}),
    );
    assert_eq!(r.status, 200, "{r:?}");
    b.step("the result arrives on the open page", |b| {
        b.wait_js("document.querySelector(\"tr[data-sample='TP-WEB-41'] td.result\").dataset.result === 'negative'");
        assert!(b.text("tr[data-sample='TP-WEB-41']").contains("已履行"));
        b.shot("day-with-a-result");
    });
    // The same list over the API.
    let day = app.call("GET", &format!("/api/v1/test-points/{TP}/samples"), Some(&token), None);
    assert_eq!(day.status, 200, "{day:?}");
    assert_eq!(
        (day.body[0]["sample_id"].as_str(), day.body[0]["letter"].as_str()),
        (Some("TP-WEB-41"), Some("fulfilled"))
    );
    let other = app.call("GET", "/api/v1/test-points/SA-JINGTAI-WANZHUANG/samples", Some(&token), None);
    assert_eq!(other.status, 403, "another test point's list");
}

#[test]
fn other_roles_are_told_whose_page_it_is() {
    let (app, _) = spawn_web(Backend::Sqlite);
    let mut b = Browser::start("test-point-roles", &app.server.base);
    b.step("not signed in: to the sign-in page", |b| {
        b.goto("/test-point");
        assert_eq!(b.path(), "/sign-in?next=/test-point");
    });
    b.staff_sign_in(&app.tokens["registry"]);
    b.step("a registry officer", |b| {
        b.goto("/test-point");
        assert!(b.text("h1").contains("不属于"), "{}", b.text("h1"));
        b.axe();
    });
}
