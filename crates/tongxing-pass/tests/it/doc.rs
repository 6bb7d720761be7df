//! docs/PASS-FORMAT.md's worked examples verify with the keys the document shows, and their
//! diagnostic notation is what the code reads: the document cannot drift from the format.

use std::collections::HashMap;

use base64::Engine as _;
use tongxing_pass::cbor::diagnostic;
use tongxing_pass::codec::Envelope;
use tongxing_pass::{PublicKey, RevocationSet, Stage, TrustList, cose, decode};

const T0: i64 = 1_641_801_600;

/// Fenced blocks whose info string names an id (```` ```lang id ````), by id.
fn blocks() -> HashMap<String, String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/PASS-FORMAT.md")).unwrap();
    let mut out = HashMap::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        if let Some(info) = line.strip_prefix("```")
            && let Some((_, id)) = info.split_once(' ')
        {
            let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
            out.insert(id.to_string(), body.join("\n"));
        }
    }
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn the_documents_examples_verify_and_match() {
    let b = blocks();
    let get = |id: &str| b.get(id).unwrap_or_else(|| panic!("docs/PASS-FORMAT.md has no block {id}")).as_str();
    let b64 = base64::engine::general_purpose::STANDARD;

    let anchor = PublicKey::from_pem(get("ex3-anchor")).unwrap();
    let trust = TrustList::verify(&b64.decode(get("ex3-signed")).unwrap(), &anchor).unwrap();
    let signed = b64.decode(get("ex3-signed")).unwrap();
    assert_eq!(diagnostic(cose::parse(&signed).unwrap().payload).unwrap(), get("ex3-payload"));

    for n in [1, 2] {
        let key = PublicKey::from_pem(get(&format!("ex{n}-key"))).unwrap();
        let mut own = TrustList::new(1, T0);
        own.add(key.clone(), T0 - 86400).unwrap();
        let qr = get(&format!("ex{n}-qr"));
        for t in [&own, &trust] {
            let v = decode(qr, t, &RevocationSet::empty(), T0 + 60).unwrap_or_else(|r| panic!("example {n}: {r}"));
            assert_eq!(v.kid, key.kid());
        }
        let mut env = Envelope::new();
        let c = env.open("TX1:", qr, false).unwrap().to_vec();
        let s = cose::parse(&c).unwrap();
        assert_eq!(diagnostic(&c).unwrap(), get(&format!("ex{n}-cose")), "example {n}");
        assert_eq!(diagnostic(s.protected).unwrap(), get(&format!("ex{n}-protected")));
        assert_eq!(diagnostic(s.payload).unwrap(), get(&format!("ex{n}-payload")));
        let mut tbs = Vec::new();
        cose::sig_structure(s.protected, s.payload, &mut tbs);
        assert_eq!(hex(&tbs), get(&format!("ex{n}-tbs")));
    }

    let signed = b64.decode(get("ex4-signed")).unwrap();
    let revs = RevocationSet::verify(&signed, &anchor).unwrap();
    assert_eq!(diagnostic(cose::parse(&signed).unwrap().payload).unwrap(), get("ex4-payload"));
    let r = decode(get("ex1-qr"), &trust, &revs, T0 + 120).unwrap_err();
    assert_eq!(r.stage, Stage::Revoked);
    assert!(decode(get("ex2-qr"), &trust, &revs, T0 + 120).is_err_and(|r| r.stage == Stage::Revoked));
}
