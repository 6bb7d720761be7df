//! Writes the worked examples of docs/PASS-FORMAT.md (between its `examples:begin` and
//! `examples:end` markers) from freshly generated keys:
//! `cargo run -p tongxing-pass --example pass_format_doc`. The test `doc` verifies what the
//! document holds, so the document cannot drift from the code.

use std::fmt::Write as _;

use base64::Engine as _;
use tongxing_domain::facts::{CodeColour, CommuterKind, CommuterStatus, SiteKind, TestResult};
use tongxing_pass::cbor::diagnostic;
use tongxing_pass::{
    Algorithm, CommuterBadge, Entry, Pass, PassTest, RevocationHash, RevocationSet, Signer, TrustList, cose, issue,
};

/// 2022-01-10T08:00:00Z, a Monday.
const T0: i64 = 1_641_801_600;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn block(out: &mut String, lang: &str, id: &str, body: &str) {
    writeln!(out, "```{lang} {id}\n{}\n```\n", body.trim_end()).unwrap();
}

fn pass() -> Pass {
    Pass {
        issuer: "BJ-HEALTH".into(),
        issued_at: T0,
        expires_at: T0 + 15 * 60,
        person_ref: hex_bytes("5f0c3a9e1d27b4486e91c0d2a7f3b815"),
        colour: CodeColour::Green,
        colour_reason: None,
        tests: vec![PassTest {
            sampled_at: T0 - 20 * 3600,
            site_kind: SiteKind::ServiceArea,
            result: TestResult::Negative,
        }],
        pending_site: None,
        commitment_letter: false,
        commuter: Some(CommuterBadge {
            kind: CommuterKind::Worker,
            status: CommuterStatus::Approved,
            valid_until: Some(1_657_382_400),
            first_check_done: true,
            next_test_due: chrono::NaiveDate::from_ymd_opt(2022, 1, 19),
        }),
    }
}

fn hex_bytes(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn cose_of(text: &str) -> Vec<u8> {
    tongxing_pass::codec::Envelope::new().open("TX1:", text, false).unwrap().to_vec()
}

fn pass_example(out: &mut String, n: u32, signer: &Signer, p: &Pass) {
    let text = issue(signer, p).unwrap();
    let c = cose_of(&text);
    let s = cose::parse(&c).unwrap();
    let alg = signer.algorithm();
    writeln!(out, "The signing key's public half ({alg}), DER SubjectPublicKeyInfo in PEM:\n").unwrap();
    block(out, "pem", &format!("ex{n}-key"), &signer.public_key().to_pem());
    writeln!(
        out,
        "Its key id, the first 8 bytes of SHA-256 of that DER ({} bytes, `{}`): `{}`.\n",
        signer.public_key().spki_der().len(),
        hex(signer.public_key().spki_der()),
        signer.kid()
    )
    .unwrap();
    writeln!(out, "The QR text ({} characters):\n", text.len()).unwrap();
    block(out, "text", &format!("ex{n}-qr"), &text);
    writeln!(out, "After Base45 and zlib, the COSE_Sign1 ({} bytes):\n", c.len()).unwrap();
    block(out, "cbor-diag", &format!("ex{n}-cose"), &diagnostic(&c).unwrap());
    writeln!(out, "Its protected header:\n").unwrap();
    block(out, "cbor-diag", &format!("ex{n}-protected"), &diagnostic(s.protected).unwrap());
    writeln!(out, "Its payload, the CWT:\n").unwrap();
    block(out, "cbor-diag", &format!("ex{n}-payload"), &diagnostic(s.payload).unwrap());
    let mut tbs = Vec::new();
    cose::sig_structure(s.protected, s.payload, &mut tbs);
    writeln!(out, "The bytes signed (Sig_structure), in hex:\n").unwrap();
    block(out, "text", &format!("ex{n}-tbs"), &hex(&tbs));
    writeln!(
        out,
        "It verifies at 2022-01-10T08:01:00Z ({}) with a trust list holding that key (valid from {}), and its \
         pass id is `{}`.\n",
        T0 + 60,
        T0 - 86400,
        RevocationHash::of_pass(s.payload).to_hex()
    )
    .unwrap();
}

fn main() {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = String::new();
    let (es, _) = Signer::generate(Algorithm::Es256).unwrap();
    let (ed, _) = Signer::generate(Algorithm::Ed25519).unwrap();
    let (lists, _) = Signer::generate(Algorithm::Es256).unwrap();

    writeln!(out, "### Example 1: a green pass with a commuter badge, ES256\n").unwrap();
    pass_example(&mut out, 1, &es, &pass());
    writeln!(out, "### Example 2: a yellow pass, Ed25519\n").unwrap();
    let mut yellow = pass();
    yellow.colour = CodeColour::Yellow;
    yellow.colour_reason = Some("pop_up_4".into());
    yellow.commuter = None;
    yellow.tests.push(PassTest {
        sampled_at: T0 - 9 * 86400,
        site_kind: SiteKind::Community,
        result: TestResult::Negative,
    });
    pass_example(&mut out, 2, &ed, &yellow);

    writeln!(out, "### Example 3: the trust list holding both keys\n").unwrap();
    writeln!(out, "The list-signing key's public half, the checkpoint's trust anchor (`--trust-anchor FILE`):\n")
        .unwrap();
    block(&mut out, "pem", "ex3-anchor", &lists.public_key().to_pem());
    let mut trust = TrustList::new(12, T0 - 3600);
    trust.add(es.public_key().clone(), T0 - 86400).unwrap();
    trust.add(ed.public_key().clone(), T0 - 86400).unwrap();
    trust.retire(&ed.kid(), T0 + 3600, 15 * 60).unwrap();
    let signed = trust.sign(&lists);
    writeln!(out, "The signed list (`application/cose`, {} bytes), in base64:\n", signed.len()).unwrap();
    block(&mut out, "text", "ex3-signed", &b64.encode(&signed));
    writeln!(out, "Its payload (the Ed25519 key retired at {}, verifying until {}):\n", T0 + 3600, T0 + 4500).unwrap();
    block(&mut out, "cbor-diag", "ex3-payload", &diagnostic(cose::parse(&signed).unwrap().payload).unwrap());

    writeln!(out, "### Example 4: a revocation list that revokes example 1\n").unwrap();
    let person = RevocationHash::of_person(&pass().person_ref);
    let revs = RevocationSet::new(
        345,
        T0 + 120,
        vec![
            Entry { hash: person, cutoff: T0 + 100 },
            Entry { hash: RevocationHash::of_pass(b"an example withdrawn pass"), cutoff: T0 + 110 },
        ],
    );
    let signed = revs.sign(&lists);
    writeln!(
        out,
        "The person of example 1 turned yellow at {} (after the pass was issued): `SHA-256(\"tx-person\\0\" ‖ \
         person_ref)[..16]` = `{}`. Signed by the same list-signing key, in base64:\n",
        T0 + 100,
        person.to_hex()
    )
    .unwrap();
    block(&mut out, "text", "ex4-signed", &b64.encode(&signed));
    writeln!(out, "Its payload:\n").unwrap();
    block(&mut out, "cbor-diag", "ex4-payload", &diagnostic(cose::parse(&signed).unwrap().payload).unwrap());
    writeln!(out, "With it, example 1 is refused at `revoked` (checked at {}).\n", T0 + 120).unwrap();

    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/PASS-FORMAT.md");
    let doc = std::fs::read_to_string(path).expect("docs/PASS-FORMAT.md");
    let (begin, end) = ("<!-- examples:begin -->\n", "<!-- examples:end -->");
    let a = doc.find(begin).expect("examples:begin marker") + begin.len();
    let b = doc.find(end).expect("examples:end marker");
    let new = format!("{}\n{}{}", &doc[..a], out, &doc[b..]);
    std::fs::write(path, new).unwrap();
    println!("wrote the examples into {path}");
}
