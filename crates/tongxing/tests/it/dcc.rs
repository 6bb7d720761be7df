//! An EU Digital COVID Certificate shown with a document: its nucleic-acid test counts like a
//! lab result. The certificates are made here, signed with the test document signer kept in
//! crates/tongxing-pass/testdata/dcc (a self-signed certificate of our own, not an EU key).

use std::io::Write;

use base64::Engine as _;
use chrono::{Duration, Utc};
use serde_json::json;
use tongxing_pass::cbor::Writer;
use tongxing_pass::{Algorithm, KeyId, Signer, base45, cose, hcert};

use crate::both;
use crate::helpers::*;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tongxing-pass/testdata/dcc");

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}/{name}")).unwrap()
}

/// An HC1 test certificate: sampled `age` ago, of type `tt`, with result `tr`.
fn certificate(age: Duration, tt: &str, tr: &str) -> String {
    let now = Utc::now();
    let mut b = Vec::new();
    let mut w = Writer(&mut b);
    let kv = |w: &mut Writer<'_>, k: &str, v: &str| {
        w.text(k);
        w.text(v);
    };
    w.map(4);
    w.uint(1);
    w.text("XX");
    w.uint(4);
    w.int((now + Duration::days(30)).timestamp());
    w.uint(6);
    w.int((now - Duration::minutes(1)).timestamp());
    w.int(hcert::CLAIM_HCERT);
    w.map(1);
    w.uint(1);
    w.map(4);
    kv(&mut w, "ver", "1.3.0");
    w.text("nam");
    w.map(4);
    kv(&mut w, "fn", "Mustermann");
    kv(&mut w, "fnt", "MUSTERMANN");
    kv(&mut w, "gn", "Erika");
    kv(&mut w, "gnt", "ERIKA");
    kv(&mut w, "dob", "1964-08-12");
    w.text("t");
    w.array(1);
    w.map(9);
    kv(&mut w, "tg", "840539006");
    kv(&mut w, "tt", tt);
    kv(&mut w, "nm", "Roche LightCycler qPCR");
    kv(&mut w, "sc", &(now - age).to_rfc3339());
    kv(&mut w, "tr", tr);
    kv(&mut w, "tc", "Test centre 1");
    kv(&mut w, "co", "XX");
    kv(&mut w, "is", "Test ministry");
    kv(&mut w, "ci", "URN:UVCI:01:XX:TONGXING0042#X");
    let signer = Signer::from_pkcs8(&read("ec.key.der")).unwrap();
    let kid = KeyId::of_der(&read("ec.cert.der"));
    let protected = cose::protected_header(Algorithm::Es256, Some(kid));
    let mut tbs = Vec::new();
    cose::sig_structure(&protected, &b, &mut tbs);
    let signed = cose::assemble(&protected, None, &b, &signer.sign(&tbs));
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&signed).unwrap();
    format!("HC1:{}", base45::encode(&z.finish().unwrap()))
}

both!(fn an_eu_test_certificate_counts_as_a_test(b) {
    let db = TestDb::new(b);
    let tokens = db.tokens();
    let b64 = base64::engine::general_purpose::STANDARD;
    let cert = read("ec.cert.der");
    let trust = json!([{"kid": b64.encode(KeyId::of_der(&cert).0), "country": "XX", "rawData": b64.encode(&cert)}]);
    let file = db.dir.join("dsc.json");
    std::fs::write(&file, trust.to_string()).unwrap();
    let server = Server::start_with(&db, &["--dcc-trust", file.to_str().unwrap()]);
    let app = App { server, tokens, db };
    app.use_2021_rules();
    app.checkpoint("CP1", "京哈高速");
    let check = |dcc: Option<String>| {
        let mut body = json!({"checkpoint_id": "CP1", "document_kind": "passport", "document_number": "X12345678"});
        if let Some(d) = dcc {
            body["dcc"] = json!(d);
        }
        app.post("officer", "/api/v1/checks", body)
    };
    // Without evidence a traveller with no test is denied; with a negative NAAT certificate
    // sampled 10 hours ago, let in, and the officer sees whose certificate it is.
    assert_eq!(check(None).body["verdict"], "deny");
    let r = check(Some(certificate(Duration::hours(10), hcert::TYPE_NAAT, hcert::RESULT_NOT_DETECTED)));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["verdict"], "pass", "{r:?}");
    assert_eq!(r.body["evidence"]["family_name"], "MUSTERMANN");
    assert_eq!(r.body["evidence"]["result"], "negative");
    // Too old for the 48-hour rule; a detected result; a rapid antigen test; a forged one.
    let r = check(Some(certificate(Duration::hours(60), hcert::TYPE_NAAT, hcert::RESULT_NOT_DETECTED)));
    assert_eq!(r.body["verdict"], "deny", "{r:?}");
    let r = check(Some(certificate(Duration::hours(10), hcert::TYPE_NAAT, hcert::RESULT_DETECTED)));
    assert_eq!((r.body["verdict"].as_str(), r.body["reasons"][0]["code"].as_str()), (Some("deny"), Some("POSITIVE_RESULT")), "{r:?}");
    let r = check(Some(certificate(Duration::hours(10), "LP217198-3", hcert::RESULT_NOT_DETECTED)));
    assert_eq!((r.status, r.body["stage"].as_str()), (422, Some("not_a_test")), "{r:?}");
    let mut forged = certificate(Duration::hours(10), hcert::TYPE_NAAT, hcert::RESULT_NOT_DETECTED).into_bytes();
    let i = forged.len() - 12;
    forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
    let r = check(Some(String::from_utf8(forged).unwrap()));
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("qr")), "{r:?}");
});
