//! The citizen's pages in a real browser (headless Chromium): sign in with the one-time code →
//! my code shows the QR, green with its shape and word; the QR is renewed before it expires
//! and greyed out if it cannot be; a family member one swipe away (and that view in their
//! access log); the letter signed on the phone makes the check conditional; a commuter
//! application followed to approval; who looked at my record; the health authority's colour
//! turning the page yellow. Every page passes axe-core in both languages, and none scrolls
//! sideways at 360 px or on a desktop.
//!
//! On SQLite: the pages call the same use cases as the API, whose every test runs on both
//! databases; a browser per test is the cost that matters here.

use chrono::Duration;
use serde_json::json;

use crate::browser::Browser;
use crate::helpers::*;
use crate::web::{person, spawn_web};

/// Signs in on the page with the code the server logged; ends on /citizen.
fn sign_in(b: &mut Browser, codes: &Codes, doc: &str) {
    b.step("sign-in page", |b| {
        b.goto("/citizen");
        assert_eq!(b.path(), "/citizen/sign-in", "not signed in: to the sign-in page");
        b.find("#document_number");
    });
    let seen = codes.count();
    b.step("ask for a code", |b| {
        b.fill("#document_number", doc);
        b.click("button[type=submit].primary");
        b.find("#code");
    });
    let code = codes.next(seen);
    b.step("enter the code", |b| {
        b.fill("#code", &code);
        b.click("button[type=submit].primary");
        b.wait_js("location.pathname === '/citizen'");
        b.find(".code");
    });
}

#[test]
fn sign_in_and_my_code_shows_the_qr() {
    let (app, codes) = spawn_web(Backend::Sqlite);
    let doc = nth_id("131082", 31);
    person(&app, &doc, "13812345631", "王小明");
    app.negative(&doc, Duration::hours(5));
    let mut b = Browser::start("citizen-sign-in", &app.server.base);
    b.check_page("/citizen/sign-in");
    sign_in(&mut b, &codes, &doc);
    b.step("my code: green, a shape and a word, the QR, masked", |b| {
        assert_eq!(b.attr(".code", "data-colour").as_deref(), Some("green"));
        assert!(b.attr(".code .shape use", "href").unwrap().ends_with("#ok"));
        assert_eq!(b.text(".code .word"), "绿码");
        assert!(b.exists(".qr svg path"), "the QR is drawn");
        let facts = b.text(".facts");
        assert!(facts.contains("王**"), "{facts}");
        assert!(facts.contains(&format!("13**************{}", &doc[16..])), "{facts}");
        assert!(!facts.contains(&doc), "the full number is not shown");
        assert!(facts.contains("5 小时前"), "{facts}");
        assert!(!b.exists(".reasons"), "nothing to do when green and let in");
    });
    b.check_page("/citizen");
    b.step("the QR is renewed before it expires", |b| {
        let before = b.attr(".qr path", "d").unwrap();
        // Three quarters of its life gone: the page fetches a new one (the times are the page's).
        b.js("const q = document.querySelector('.qr'); q.dataset.issued = Date.now() - 100000;
              q.dataset.expires = Date.now() + 20000;");
        b.wait_js("document.querySelector('.qr').dataset.expires > Date.now() + 60000");
        assert_ne!(b.attr(".qr path", "d").unwrap(), before, "a newly signed pass");
        assert!(!b.exists(".qr.stale"));
    });
    b.step("a QR that cannot be renewed is greyed out when it expires", |b| {
        b.js("const q = document.querySelector('.qr'); q.dataset.refresh = '/citizen/no-such-page';
              q.dataset.issued = Date.now() - 100000; q.dataset.expires = Date.now() - 1;");
        b.wait_js("document.querySelector('.qr.stale') !== null");
        assert!(b.text(".qr .stale-note").contains("已过期"));
    });
    // The first load of the page with an empty cache, every asset included.
    let session = b.cookie("tx_session").expect("a session cookie");
    drop(b);
    let mut fresh = Browser::start("citizen-first-load", &app.server.base);
    let bytes = fresh.step("first load, cold cache", |b| {
        b.goto("/healthz");
        b.add_cookie("tx_session", &session);
        b.goto("/citizen");
        b.find(".qr svg");
        b.wait_js("document.readyState === 'complete'");
        b.transferred()
    });
    eprintln!("web: the citizen page's first load transferred {bytes} bytes, every asset included");
    assert!(bytes < 150_000, "{bytes} bytes");
}

#[test]
fn family_one_swipe_away_and_in_their_access_log() {
    let (app, codes) = spawn_web(Backend::Sqlite);
    let doc = nth_id("131082", 32);
    let member = nth_id("131082", 33);
    person(&app, &doc, "13812345632", "李大");
    person(&app, &member, "13812345633", "李二");
    app.negative(&doc, Duration::hours(3));
    let r = app.put(
        "health",
        "/api/v1/people/code",
        json!({"document_number": member, "colour": "yellow", "popup": "test_overdue"}),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let mut b = Browser::start("citizen-family", &app.server.base);
    sign_in(&mut b, &codes, &doc);
    b.check_page("/citizen/family");
    let seen = codes.count();
    b.step("send the member a code", |b| {
        b.goto("/citizen/family");
        b.fill("#m_number", &member);
        b.click("form[action='/citizen/family/code'] button");
        b.find("#member_code");
    });
    let code = codes.next(seen);
    b.step("link with the member's code", |b| {
        b.fill("#member_code", &code);
        b.click("form[action='/citizen/family/link'] button");
        b.wait_text("[role=status]", "家人已关联");
        assert!(b.text("table.list").contains("李*"));
    });
    b.step("the member's code, one swipe away", |b| {
        b.goto("/citizen");
        let tabs = b.text(".people-tabs");
        assert!(tabs.contains("本人") && tabs.contains("李*"), "{tabs}");
        // Both codes in one strip that scrolls sideways; the page itself does not.
        assert_eq!(b.js("return document.querySelectorAll('.swipe > .person').length;"), json!(2));
        b.no_horizontal_scroll();
        b.js("document.querySelector('.swipe').scrollLeft = document.querySelector('.swipe').clientWidth;");
        b.wait_js("document.querySelector('.swipe').scrollLeft > 0");
        let second = "document.querySelectorAll('.swipe > .person')[1]";
        b.wait_js(&format!("Math.abs({second}.getBoundingClientRect().left - document.querySelector('.swipe').getBoundingClientRect().left) < 2"));
        assert_eq!(b.js(&format!("return {second}.querySelector('.code').dataset.colour;")), json!("yellow"));
        assert_eq!(b.js(&format!("return {second}.querySelector('.word').textContent;")), json!("黄码"));
        assert!(b.js(&format!("return {second}.querySelector('.reasons').textContent;")).as_str().unwrap().contains("黄码"));
    });
    b.check_page("/citizen");
    // The member's access log has the citizen's views, and says so to the member.
    let r = app.post("registry", "/api/v1/people/access-log", json!({"document_number": member, "purpose": "test"}));
    assert!(r.body.as_array().unwrap().iter().any(|e| e["action"] == "pass" && e["role"] == "citizen"), "{r:?}");
}

#[test]
fn the_letter_signed_on_the_phone_makes_the_check_conditional() {
    let (app, codes) = spawn_web(Backend::Sqlite);
    app.checkpoint("CP-JINGHA", "G1");
    let doc = nth_id("120104", 34);
    person(&app, &doc, "13812345634", "赵六");
    app.test_point_sample("SA-JINGHA-XIANGHE", "TP-WEB-1", &doc, Duration::hours(1), None);
    assert_eq!(app.verdict("CP-JINGHA", &doc).1, "COMMITMENT_LETTER_REQUIRED");
    let mut b = Browser::start("citizen-letter", &app.server.base);
    sign_in(&mut b, &codes, &doc);
    b.step("the letter is waiting", |b| {
        b.goto("/citizen");
        assert!(b.text("#due-h").contains("承诺书"));
        b.click("a[href^='/citizen/letter']");
        b.find(".letter");
    });
    let letter = b.path();
    b.check_page(&letter);
    b.step("read in English, not signed without agreeing", |b| {
        let path = b.path();
        b.goto(&format!("{path}&lang=en"));
        assert!(b.text("h1").to_lowercase().contains("commitment"), "{}", b.text("h1"));
        // The browser will not send it unticked (required); without the box the server refuses.
        b.js("document.querySelector('input[name=agree]').required = false;");
        b.click("form button.primary");
        b.wait_text("h1", "nothing was changed");
    });
    assert_eq!(app.verdict("CP-JINGHA", &doc).1, "COMMITMENT_LETTER_REQUIRED", "nothing signed");
    b.step("agree and sign", |b| {
        b.goto("/citizen?lang=zh-CN");
        b.click("a[href^='/citizen/letter']");
        b.click("input[name=agree]");
        b.click("form button.primary");
        b.wait_text("[role=status]", "承诺书已签署");
        assert!(!b.exists("#due-h"), "nothing left to sign");
        assert!(b.text(".person").contains("承诺书待履行"), "{}", b.text(".person"));
    });
    assert_eq!(app.verdict("CP-JINGHA", &doc), ("conditional".into(), "PENDING_WITH_COMMITMENT".into()));
    let r = app.get("citizen", "/api/v1/citizen/letters");
    assert_eq!(r.status, 200);
}

#[test]
fn commuter_application_followed_to_approval_and_who_looked() {
    let (app, codes) = spawn_web(Backend::Sqlite);
    let doc = nth_id("131082", 35);
    person(&app, &doc, "13812345635", "孙七");
    app.negative(&doc, Duration::hours(20));
    let mut b = Browser::start("citizen-commuter", &app.server.base);
    sign_in(&mut b, &codes, &doc);
    b.check_page("/citizen/commuter");
    b.step("a residence outside the region is refused, naming the field, nothing filed", |b| {
        b.goto("/citizen/commuter");
        b.fill("#residence_region", "110105");
        b.fill("#employer_name", "北京某某科技有限公司");
        b.fill("#employer_uscc", "91350100M000100Y43");
        b.fill("#work_region", "110105");
        b.click("form[action='/citizen/commuter'] button");
        b.wait_text("#form-error", "residence_region");
        assert_eq!(b.attr("#residence_region", "aria-invalid").as_deref(), Some("true"));
        assert_eq!(
            b.js("return document.querySelector('#employer_name').value;"),
            json!("北京某某科技有限公司"),
            "what was typed is kept"
        );
    });
    assert_eq!(app.get("registry", "/api/v1/commuters/queue").body, json!([]));
    b.step("apply", |b| {
        b.fill("#residence_region", "131082");
        b.select("#residence_proof", "property_deed");
        b.click("form[action='/citizen/commuter'] button");
        b.wait_text("[role=status]", "申请已提交");
        assert_eq!(b.text("#commuter-status"), "审核中");
    });
    let queue = app.get("registry", "/api/v1/commuters/queue").body;
    assert_eq!(queue[0]["residence_region"], "131082", "{queue}");
    assert_eq!(queue[0]["name"], "孙*");
    assert_eq!(queue[0]["residence_proof"], "property_deed");
    let r = app.post("registry", "/api/v1/commuters/decision", json!({"document_number": doc, "action": "approve"}));
    assert_eq!(r.status, 200, "{r:?}");
    b.step("approved, and the badge on my code", |b| {
        b.goto("/citizen/commuter");
        assert_eq!(b.text("#commuter-status"), "已批准");
        b.goto("/citizen");
        assert!(b.text(".facts").contains("上班通勤 · 已批准"), "{}", b.text(".facts"));
    });
    // A registry officer reads the record: the citizen sees who (masked), when and why.
    let r =
        app.post("registry", "/api/v1/people/lookup", json!({"document_number": doc, "purpose": "commuter review"}));
    assert_eq!(r.status, 200);
    b.step("who looked at my record", |b| {
        b.goto("/citizen/access-log");
        let t = b.text("#reads");
        assert!(t.contains("登记审核民警") && t.contains("commuter review") && t.contains("tok_"), "{t}");
        assert!(t.contains("**"), "the reader is masked: {t}");
    });
    b.check_page("/citizen/access-log");
}

#[test]
fn health_sets_a_colour_and_the_citizen_page_turns_yellow() {
    let (app, codes) = spawn_web(Backend::Sqlite);
    let doc = nth_id("110105", 36);
    person(&app, &doc, "13812345636", "周八");
    app.negative(&doc, Duration::hours(2));
    let mut b = Browser::start("citizen-yellow", &app.server.base);
    sign_in(&mut b, &codes, &doc);
    assert_eq!(b.attr(".code", "data-colour").as_deref(), Some("green"));
    let r = app.put(
        "health",
        "/api/v1/people/code",
        json!({"document_number": doc, "colour": "yellow", "reason": "时空伴随"}),
    );
    assert_eq!(r.status, 200);
    b.step("yellow, with a shape, a word, the reason and what to do", |b| {
        b.goto("/citizen");
        assert_eq!(b.attr(".code", "data-colour").as_deref(), Some("yellow"));
        assert!(b.attr(".code .shape use", "href").unwrap().ends_with("#caution"));
        assert_eq!(b.text(".code .word"), "黄码");
        assert!(b.text(".person").contains("时空伴随"));
        assert!(b.exists(".reasons li"));
    });
    b.check_page("/citizen");
}
