//! The checkpoint officer's page in a real browser (the `browser.rs` harness): a pass scanned by
//! a scanner in keyboard mode and by the camera (a QR image fed to Chromium as a fake camera;
//! Chromium on Linux has no BarcodeDetector, so frames go to the server), a typed ID number,
//! vehicle mode; the same page on `tongxing checkpoint serve` with the central server stopped,
//! and the upload once it is back. axe-core in both languages, 360 px without sideways
//! scrolling, the first load's size. Each test prints the time from the scanned text's arrival
//! to the verdict painted (`window.txOfficer.timings`), for docs/PERFORMANCE.md; nothing
//! asserts it.

use std::path::Path;

use chrono::Duration;
use serde_json::{Value, json};

use crate::browser::Browser;
use crate::helpers::*;
use crate::officer::{NodeProc, start_central, stop_central};
use crate::offline::Offline;

/// The WebDriver key code of Enter: a scanner in keyboard mode ends each code with it.
const ENTER: &str = "\u{E007}";

/// A Y4M video (what Chromium's fake camera plays in a loop) of `text`'s QR code, 4 pixels a
/// module, on a light background: 640 × 480, 4:2:0, a few identical frames.
pub fn fake_camera(text: &str, path: &Path) {
    let qr = tongxing_pass::qr::read_grey(&tongxing_pass::qr_png(text, 4).unwrap()).unwrap();
    let (w, h) = (640usize, 480usize);
    let mut y = vec![200u8; w * h];
    let (ox, oy) = ((w - qr.width) / 2, (h - qr.height) / 2);
    for row in 0..qr.height {
        for col in 0..qr.width {
            // Luma in the video range: black 16, white 235.
            y[(oy + row) * w + ox + col] = if qr.pixels[row * qr.width + col] < 128 { 16 } else { 235 };
        }
    }
    let mut out = format!("YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C420jpeg\n").into_bytes();
    for _ in 0..10 {
        out.extend_from_slice(b"FRAME\n");
        out.extend_from_slice(&y);
        out.extend(std::iter::repeat_n(128u8, w * h / 2));
    }
    std::fs::write(path, out).unwrap();
}

/// The flags that make Chromium's camera play `video`, with the permission granted.
fn camera_flags(video: &Path) -> Vec<String> {
    vec![
        "--use-fake-ui-for-media-stream".into(),
        "--use-fake-device-for-media-stream".into(),
        format!("--use-file-for-fake-video-capture={}", video.display()),
    ]
}

/// Scans `text` as a scanner in keyboard mode does: the characters, then Enter.
fn scan(b: &Browser, text: &str) {
    b.fill("#code", &format!("{text}{ENTER}"));
}

/// The time from each scanned text's arrival to its verdict painted, as the page measured it.
/// Kept by the server's address (tests run side by side).
static TIMINGS: std::sync::Mutex<Vec<(String, f64)>> = std::sync::Mutex::new(Vec::new());

/// Waits for the full-screen verdict of `kind` (pass, conditional, deny, refused); its text.
/// Keeps the page's measurement of it under `test`.
fn verdict(b: &Browser, kind: &str) -> String {
    b.wait_js(&format!(
        "!document.getElementById('verdict').hidden && document.querySelector('#verdict .verdict.{kind}')"
    ));
    b.wait_js("document.getElementById('verdict').dataset.ms");
    let ms = b.js("return Number(document.getElementById('verdict').dataset.ms);").as_f64().unwrap();
    TIMINGS.lock().unwrap().push((b.base.clone(), ms));
    b.text("#verdict")
}

/// Dismisses the verdict (the officer taps it).
fn next(b: &Browser) {
    b.click("#verdict");
    b.wait_js("document.getElementById('verdict').hidden");
}

fn timings(b: &Browser) -> Vec<f64> {
    TIMINGS.lock().unwrap().iter().filter(|(base, _)| *base == b.base).map(|(_, ms)| *ms).collect()
}

/// "n scans: min, median, max ms" of a keyboard scan's timings.
fn summary(t: &[f64]) -> String {
    let mut s = t.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => "no scans".into(),
        n => format!("{n} scans: min {:.1} ms, median {:.1} ms, max {:.1} ms", s[0], s[n / 2], s[n - 1]),
    }
}

/// Scans the pass `n` times in a row, as a queue of people does (each verdict tapped away).
fn scans_in_a_row(b: &Browser, pass: &str, n: usize) -> Vec<f64> {
    let before = timings(b).len();
    for _ in 0..n {
        scan(b, pass);
        verdict(b, "pass");
        next(b);
    }
    timings(b)[before..].to_vec()
}

/// The page's checks and its look, in a language: axe-core, and no sideways scrolling at 360 px.
fn page_is_accessible(b: &Browser, path: &str) {
    b.goto(path);
    b.find("#code");
    b.axe();
    b.no_horizontal_scroll();
}

fn sign_in(b: &Browser, token: &str) {
    b.goto("/sign-in");
    b.fill("#token", &format!("{token}{ENTER}"));
    b.wait_js("location.pathname === '/officer'");
}

#[test]
fn the_officer_scans_types_and_checks_a_vehicle() {
    let o = Offline::spawn(Backend::Sqlite);
    let app = &o.app;
    let (good, old) = (nth_id("110105", 81), nth_id("110105", 82));
    let r = app.post("registry", "/api/v1/people", json!({"document_number": good, "name": "刘备"}));
    assert_eq!(r.status, 201, "{r:?}");
    app.negative(&good, Duration::hours(3));
    app.negative(&old, Duration::hours(80));
    let pass = o.issue(&good);
    let video = app.db.dir.join("camera.y4m");
    fake_camera(&pass, &video);
    let token = app.tokens["officer"].clone();
    let mut b = Browser::start_with("officer", &app.server.base, &camera_flags(&video));
    b.size(360, 780);

    b.step("first load", |b| {
        // A fresh browser: the page and every asset it loads, nothing from a cache.
        b.goto("/healthz");
        b.add_cookie("tx_session", &token);
        b.goto("/officer");
        b.wait_js("document.readyState === 'complete'");
        let bytes = b.transferred();
        eprintln!("officer page, first load: {bytes} bytes transferred (all assets)");
        assert!(bytes < 150_000, "the first load is {bytes} bytes");
    });
    b.step("axe and 360 px, zh-CN", |b| page_is_accessible(b, "/officer"));
    b.step("a scanner in keyboard mode", |b| {
        scan(b, &pass);
        let text = verdict(b, "pass");
        assert!(text.contains("通行") && text.contains("PASS"), "{text}");
        assert!(text.contains("刘*"), "the masked name: {text}");
        assert!(text.contains("48小时"), "the reason, in words: {text}");
        b.no_horizontal_scroll();
        b.shot("verdict-pass");
        next(b);
    });
    b.step("a typed ID number", |b| {
        scan(b, &old);
        let text = verdict(b, "deny");
        assert!(text.contains("禁止通行") && text.contains("请前往"), "the advice: {text}");
        b.axe();
        b.shot("verdict-deny");
        next(b);
        scan(b, "12345");
        b.wait_text("#notice", "证件号码有误");
    });
    b.step("vehicle mode", |b| {
        b.click("button[data-mode=vehicle]");
        b.fill("#plate", "冀R12345");
        scan(b, &pass);
        verdict(b, "pass");
        next(b);
        scan(b, &old);
        verdict(b, "deny");
        next(b);
        b.wait_js("document.querySelectorAll('#occupants li').length === 2");
        assert!(b.exists("#occupants li.pass") && b.exists("#occupants li.deny"));
        b.wait_text("#vehicle-summary", "2");
        b.shot("vehicle");
        b.click("#next-vehicle");
        b.wait_js("document.querySelectorAll('#occupants li').length === 0");
        b.click("button[data-mode=person]");
    });
    let entries = app.get("admin", "/api/v1/entries").body;
    let plates: Vec<&Value> = entries.as_array().unwrap().iter().map(|e| &e["plate"]).collect();
    assert_eq!(plates.iter().filter(|p| **p == "冀R12345").count(), 2, "{entries}");
    b.step("the camera: frames read by the server", |b| {
        b.click("#camera-start");
        let text = verdict(b, "pass");
        assert!(text.contains("刘*"), "{text}");
        // Tapping the verdict away; the camera waits a moment before reading again.
        next(b);
        b.click("#camera-stop");
    });
    let entries = app.get("admin", "/api/v1/entries").body;
    assert!(entries.as_array().unwrap().len() >= 5, "{entries}");
    b.step("this shift's checks", |b| {
        // Every decided check of the shift, newest first, with its shape and word.
        let n = b.js("return document.querySelectorAll('#shift li').length;").as_u64().unwrap();
        assert!(n >= 5, "{n}");
        assert!(b.text("#shift li:first-child").contains("通行"));
    });
    b.step("axe and 360 px, en", |b| {
        page_is_accessible(b, "/officer?lang=en");
        scan(b, &pass);
        let text = verdict(b, "pass");
        assert!(text.contains("PASS") && text.contains("What to do"), "{text}");
        b.axe();
        next(b);
    });
    b.step("desktop width", |b| {
        b.size(1280, 900);
        b.goto("/officer");
        b.find("#code");
        b.no_horizontal_scroll();
        b.shot("desktop");
    });
    let t = timings(&b);
    eprintln!("officer scan→paint against the central server (ms), each step: {t:?}");
    let row = b.step("twenty scans in a row", |b| {
        b.size(360, 780);
        b.goto("/officer");
        scans_in_a_row(b, &pass, 20)
    });
    eprintln!("officer scan→paint against the central server, keyboard scanner: {}", summary(&row));
}

#[test]
fn the_node_page_decides_offline_and_uploads_once() {
    let mut o = Offline::spawn(Backend::Sqlite);
    let doc = nth_id("110105", 83);
    o.app.negative(&doc, Duration::hours(3));
    let pass = o.issue(&doc);
    o.synced();
    let node = NodeProc::start(&o, &[]);
    node.wait_for("online", |s| s["mode"] == "online");
    let mut b = Browser::start("officer-node", &node.base);
    b.size(360, 780);
    b.step("sign in with the node's token", |b| {
        b.goto("/officer");
        b.wait_js("location.pathname === '/sign-in'");
        b.fill("#token", &format!("wrong{ENTER}"));
        b.wait_text("#token-error", "令牌不对");
        sign_in(b, &node.token);
        b.wait_text("#node", "在线");
    });
    let addr = stop_central(&mut o);
    b.step("offline: the page says so, and since when", |b| {
        // The page asks the node every 5 seconds.
        b.wait_text("#node", "离线");
        b.wait_text("#node", "自 ");
        b.shot("offline");
    });
    let row = b.step("a pass decided offline, twenty in a row", |b| {
        scan(b, &pass);
        let text = verdict(b, "pass");
        assert!(text.contains("凭通行码核验"), "{text}");
        next(b);
        scans_in_a_row(b, &pass, 20)
    });
    eprintln!("officer scan→paint on the checkpoint node, keyboard scanner: {}", summary(&row));
    b.step("a typed ID number offline", |b| {
        scan(b, &doc);
        b.wait_text("#notice", "离线时不能凭证件号核验");
        b.goto("/officer");
        b.wait_text("#node", "21 条核验待上传");
    });
    b.step("axe and 360 px on the node, zh-CN and en", |b| {
        page_is_accessible(b, "/officer");
        page_is_accessible(b, "/officer?lang=en");
        b.wait_text("#node", "Offline");
        b.goto("/officer?lang=zh-CN");
    });
    start_central(&mut o, &addr);
    node.wait_for("online with an empty queue", |s| s["mode"] == "online" && s["queue"]["pending"] == 0);
    assert_eq!(o.entry_events(), 21, "each check reached the central server once");
    b.step("online again", |b| {
        b.wait_text("#node", "在线");
        b.wait_text("#node", "核验记录均已上传");
    });
    // Uploaded once: the node's later passes send nothing again.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert_eq!(o.entry_events(), 21);
}
