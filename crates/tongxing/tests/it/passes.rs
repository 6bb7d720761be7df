//! Signed passes on the server: issuing (API, CLI, QR images), the online check on a scanned
//! pass, revocation when a colour turns, the signed trust and revocation lists, key rotation
//! and key files that others can read.

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::Duration;
use serde_json::json;

use crate::both;
use crate::helpers::*;

/// A key folder made by `tongxing keys generate`.
fn keys(db: &TestDb) -> PathBuf {
    let dir = db.dir.join("keys");
    let out = Command::new(BIN).args(["keys", "generate", "--dir", dir.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    dir
}

/// A server with keys and the 2021 rules.
fn spawn(b: Backend) -> (App, PathBuf) {
    let db = TestDb::new(b);
    let tokens = db.tokens();
    let dir = keys(&db);
    let server = Server::start_with(&db, &["--keys", dir.to_str().unwrap()]);
    let app = App { server, tokens, db };
    app.use_2021_rules();
    (app, dir)
}

fn issue(app: &App, keys: &Path, doc: &str) -> String {
    let out = Command::new(BIN)
        .args(["pass", "issue", doc, "--keys", keys.to_str().unwrap(), "--database", &app.db.url])
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(text.starts_with("TX1:"), "{text}");
    text
}

fn check_qr(app: &App, qr: &str) -> Resp {
    app.post("officer", "/api/v1/checks", json!({"checkpoint_id": "CP1", "qr": qr}))
}

both!(fn a_scanned_pass_is_checked_like_a_document(b) {
    let (app, dir) = spawn(b);
    app.checkpoint("CP1", "京哈高速");
    let doc = nth_id("110105", 51);
    let r = app.post("registry", "/api/v1/people", json!({"document_number": doc, "name": "刘备"}));
    assert_eq!(r.status, 201);
    app.negative(&doc, Duration::hours(3));
    let qr = issue(&app, &dir, &doc);
    let r = check_qr(&app, &qr);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["verdict"], "pass");
    assert_eq!(r.body["name"], "刘*");
    // The entry event names the person, found by the pass's reference.
    let entries = app.get("admin", "/api/v1/entries");
    assert_eq!(entries.body[0]["document"], format!("11**************{}", &doc[16..]));
    // A tampered pass, a wrong prefix, a truncated one: refused, naming the stage.
    let mut bytes = qr.clone().into_bytes();
    let i = bytes.len() - 10;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    for (text, stage) in [
        (tampered.as_str(), None),
        (&qr.replacen("TX1:", "HC1:", 1), Some("bad_prefix")),
        (&qr[..qr.len() / 2], None),
        ("TX1:", None),
    ] {
        let r = check_qr(&app, text);
        assert_eq!(r.status, 422, "{r:?}");
        assert_eq!(r.content_type, "application/problem+json");
        assert_eq!(r.body["field"], "qr");
        let got = r.body["stage"].as_str().unwrap();
        if let Some(stage) = stage {
            assert_eq!(got, stage, "{r:?}");
        } else {
            assert!(["bad_signature", "bad_base45", "bad_compression", "bad_cose"].contains(&got), "{r:?}");
        }
    }
    let r = check_qr(&app, &format!("TX1:{}", "A".repeat(5000)));
    assert_eq!((r.status, r.body["stage"].as_str()), (422, Some("too_large")), "{r:?}");
    // A document number and a pass together: refused.
    let r = app.post("officer", "/api/v1/checks", json!({"checkpoint_id": "CP1", "qr": qr, "document_number": doc}));
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("qr")), "{r:?}");
});

both!(fn a_colour_that_turns_revokes_the_passes_that_show_the_old_one(b) {
    let (app, dir) = spawn(b);
    app.checkpoint("CP1", "京哈高速");
    let doc = nth_id("110105", 52);
    app.negative(&doc, Duration::hours(3));
    let green = issue(&app, &dir, &doc);
    assert_eq!(check_qr(&app, &green).body["verdict"], "pass");
    let r = app.put("health", "/api/v1/people/code", json!({"document_number": doc, "colour": "red", "reason": "close contact"}));
    assert_eq!(r.status, 200, "{r:?}");
    // The green pass is refused as revoked; a new one shows red and is denied.
    let r = check_qr(&app, &green);
    assert_eq!((r.status, r.body["stage"].as_str()), (422, Some("revoked")), "{r:?}");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let red = issue(&app, &dir, &doc);
    let r = check_qr(&app, &red);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!((r.body["verdict"].as_str(), r.body["code_colour"].as_str()), (Some("deny"), Some("red")));
    assert_eq!(r.body["reasons"][0]["code"], "CODE_RED");
    // The signed revocation list carries the entry, whole and as a delta.
    let anchor = tongxing_pass::keyfile::read_public_key(&dir.join("trust-anchor.pem")).unwrap();
    let full = app.raw("GET", "/api/v1/revocations", None, None, b"");
    assert_eq!(full.status, 200);
    assert_eq!(full.header("content-type"), ["application/cose"]);
    let raw = |path: &str| -> Vec<u8> {
        let resp = ureq::get(&app.url(path)).call().unwrap();
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut resp.into_reader(), &mut v).unwrap();
        v
    };
    let set = tongxing_pass::RevocationSet::verify(&raw("/api/v1/revocations"), &anchor).unwrap();
    assert_eq!(set.len(), 1);
    assert!(set.version() >= 1);
    let delta = tongxing_pass::RevocationDelta::verify(&raw(&format!("/api/v1/revocations?since={}", set.version())), &anchor).unwrap();
    assert!(delta.upserts.is_empty());
    // Withdrawing the passes puts the red one on the list too.
    let r = app.post("health", "/api/v1/passes/withdraw", json!({"document_number": doc, "reason": "reissue"}));
    assert_eq!(r.status, 204, "{r:?}");
    let r = check_qr(&app, &red);
    assert_eq!(r.body["stage"], "revoked", "{r:?}");
    // The trust list verifies with the anchor and lists the signing key.
    let trust = tongxing_pass::TrustList::verify(&raw("/api/v1/trust-list"), &anchor).unwrap();
    assert_eq!(trust.len(), 1);
    // A version ahead of the list is refused.
    let r = app.get("admin", "/api/v1/revocations?since=999999");
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("since")), "{r:?}");
});

both!(fn a_rotated_key_keeps_verifying_its_passes(b) {
    let (mut app, dir) = spawn(b);
    app.checkpoint("CP1", "京哈高速");
    let doc = nth_id("110105", 53);
    app.negative(&doc, Duration::hours(3));
    let old = issue(&app, &dir, &doc);
    let out = Command::new(BIN).args(["keys", "rotate", "--dir", dir.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success());
    app.server = Server::start_with(&app.db, &["--keys", dir.to_str().unwrap()]);
    let new = issue(&app, &dir, &doc);
    assert_ne!(&old[..40], &new[..40]);
    let r = check_qr(&app, &old);
    assert_eq!(r.body["verdict"], "pass", "{r:?}");
    let r = check_qr(&app, &new);
    assert_eq!(r.body["verdict"], "pass", "{r:?}");
    // A key file others may read: the server refuses to start, naming it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("list-signing.pem"), std::fs::Permissions::from_mode(0o644)).unwrap();
        let out = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--database", &app.db.url, "--keys", dir.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"), "{}", String::from_utf8_lossy(&out.stderr));
    }
});

both!(fn citizens_get_their_pass_as_text_svg_and_png(b) {
    let db = TestDb::new(b);
    let tokens = db.tokens();
    let dir = keys(&db);
    let (server, codes) = Server::start_with_codes(&db, &["--keys", dir.to_str().unwrap()]);
    let app = App { server, tokens, db };
    app.use_2021_rules();
    app.checkpoint("CP1", "京哈高速");
    let doc = nth_id("131082", 54);
    let r = app.post("registry", "/api/v1/people", json!({"document_number": doc, "phone": "13812345654"}));
    assert_eq!(r.status, 201);
    app.negative(&doc, Duration::hours(2));
    let seen = codes.count();
    assert_eq!(app.call("POST", "/api/v1/citizen/code", None, Some(json!({"document_number": doc}))).status, 202);
    let code = codes.next(seen);
    let token = app.call("POST", "/api/v1/citizen/session", None, Some(json!({"document_number": doc, "code": code})))
        .body["token"].as_str().unwrap().to_string();
    let pass = app.call("GET", "/api/v1/citizen/pass", Some(&token), None);
    let text = pass.body["qr"]["text"].as_str().unwrap().to_string();
    let lifetime = chrono::DateTime::parse_from_rfc3339(pass.body["qr"]["expires_at"].as_str().unwrap()).unwrap()
        - chrono::DateTime::parse_from_rfc3339(pass.body["qr"]["issued_at"].as_str().unwrap()).unwrap();
    assert_eq!(lifetime, Duration::minutes(15));
    assert_eq!(check_qr(&app, &text).body["verdict"], "pass");
    let svg = app.raw("GET", "/api/v1/citizen/pass/qr", Some(&token), None, b"");
    assert_eq!(svg.status, 200);
    assert_eq!(svg.header("content-type"), ["image/svg+xml"]);
    assert!(svg.text.contains("<svg"));
    let png = ureq::get(&app.url("/api/v1/citizen/pass/qr?format=png")).set("Authorization", &format!("Bearer {token}")).call().unwrap();
    assert_eq!(png.header("content-type"), Some("image/png"));
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut png.into_reader(), &mut bytes).unwrap();
    // The image decodes to a pass that the check accepts.
    let decoded = tongxing_pass::decode_image(&bytes).unwrap();
    assert_eq!(check_qr(&app, &decoded).body["verdict"], "pass");
    let r = app.call("GET", "/api/v1/citizen/pass/qr?format=gif", Some(&token), None);
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("format")), "{r:?}");
});

both!(fn a_commuters_first_check_by_pass_is_recorded(b) {
    let (app, dir) = spawn(b);
    app.checkpoint("CP1", "京哈高速");
    let c = nth_id("131082", 55);
    let r = app.post("registry", "/api/v1/commuters", json!({
        "document_number": c, "name": "王伟", "phone": "13800000055", "kind": "worker",
        "residence_region": "131082", "residence_proof": "lease", "employer_name": "北京星河科技有限公司",
        "employer_uscc": "91350100M000100Y43", "work_region": "110105"}));
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(app.post("registry", "/api/v1/commuters/decision", json!({"document_number": c, "action": "approve"})).status, 200);
    app.negative(&c, Duration::hours(20));
    let first = issue(&app, &dir, &c);
    let r = check_qr(&app, &first);
    assert_eq!((r.body["verdict"].as_str(), r.body["reasons"][0]["code"].as_str()), (Some("pass"), Some("COMMUTER_FIRST_CHECK")), "{r:?}");
    assert_eq!(r.body["commuter"], true);
    // Recorded on the certification, as a check by document does; the next pass carries it.
    let r = app.post("registry", "/api/v1/people/lookup", json!({"document_number": c, "purpose": "test"}));
    assert!(r.body["commuter"]["first_checked_at"].is_string(), "{r:?}");
    let next = issue(&app, &dir, &c);
    let verified = tongxing_pass::decode(
        &next,
        &tongxing_pass::TrustList::verify(
            &{
                let resp = ureq::get(&app.url("/api/v1/trust-list")).call().unwrap();
                let mut v = Vec::new();
                std::io::Read::read_to_end(&mut resp.into_reader(), &mut v).unwrap();
                v
            },
            &tongxing_pass::keyfile::read_public_key(&dir.join("trust-anchor.pem")).unwrap(),
        )
        .unwrap(),
        &tongxing_pass::RevocationSet::empty(),
        chrono::Utc::now().timestamp(),
    )
    .unwrap();
    assert!(verified.pass.commuter.unwrap().first_check_done);
    // And the entry event says it was a pass that identified the person.
    let r = app.get("admin", "/api/v1/entries");
    assert_eq!(r.body[0]["via"], "pass", "{r:?}");
});

// A pass carries a pending service-area test with its test point and the signed letter, so a
// scanned pass gets the conditional entry a document gets. Then a lab's CSV import (a process
// without the pass keys) stores a positive result for that sample: the code turns red in the import's transaction,
// with the revocation queued beside it, and the server (which has the keys) lists it within
// seconds, so the green pass the person still holds is refused.
both!(fn a_pass_carries_the_letter_and_an_imported_positive_revokes_it(b) {
    let (app, dir) = spawn(b);
    app.checkpoint("CP1", "京哈高速");
    let tp = "SA-JINGHA-XIANGHE";
    let doc = nth_id("110105", 58);
    let beijing = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    let sampled = chrono::DateTime::from_timestamp(chrono::Utc::now().timestamp() - 7200, 0).unwrap().with_timezone(&beijing);
    let r = app.post("test_point", &format!("/api/v1/test-points/{tp}/samples"),
        json!({"document_number": doc, "sample_id": "T58", "sampled_at": sampled.to_rfc3339()}));
    assert_eq!(r.status, 201, "{r:?}");
    // Before the letter, the pass carries the pending test and its site: the letter is needed.
    let unsigned = issue(&app, &dir, &doc);
    let r = check_qr(&app, &unsigned);
    assert_eq!(r.body["reasons"][0]["code"], "COMMITMENT_LETTER_REQUIRED", "{r:?}");
    let claims = crate::offline::claims(&unsigned);
    assert_eq!((claims.pending_site.as_deref(), claims.commitment_letter), (Some(tp), false));
    app.sign_letter(tp, "T58", &doc);
    let pass = issue(&app, &dir, &doc);
    assert!(crate::offline::claims(&pass).commitment_letter);
    // The pass carries the pending test and the letter: conditional, as for the document.
    let r = check_qr(&app, &pass);
    assert_eq!((r.body["verdict"].as_str(), r.body["reasons"][0]["code"].as_str()), (Some("conditional"), Some("PENDING_WITH_COMMITMENT")), "{r:?}");
    let file = app.db.dir.join("positive.csv");
    std::fs::write(&file, format!("lab,sample_id,document_number,sampled_at,site,site_kind,result\n{tp},T58,{doc},{},{tp},service_area,positive\n",
        sampled.format("%Y-%m-%d %H:%M:%S"))).unwrap();
    let out = Command::new(BIN).args(["import", "results", file.to_str().unwrap(), "--database", &app.db.url])
        .env("RUST_LOG", "error").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut stage = String::new();
    for _ in 0..100 {
        let r = check_qr(&app, &pass);
        stage = r.body["stage"].as_str().unwrap_or("").to_string();
        if stage == "revoked" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(stage, "revoked");
    // The queue is empty once listed.
    let url = app.db.url.clone();
    let queued = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async move {
            let store = tongxing_store::Store::connect(&url).await.unwrap();
            let q = store.revocation_queue(10).await.unwrap().len();
            store.close().await;
            q
        })
    }).join().unwrap();
    assert_eq!(queued, 0);
});
