//! The offline checkpoint, end to end: a real server with pass keys, `tongxing checkpoint sync`
//! into a state file, `tongxing verify` with no network (the server's address is not given to
//! it), the queue uploaded once, and every failure stage named through the CLI.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use tongxing_pass::codec::{Envelope, stored_zlib};
use tongxing_pass::{Pass, Signer};

use crate::both;
use crate::helpers::*;

/// A server that issues passes, deciding by the 2021 rules, with checkpoint CP1 on 京哈高速.
pub struct Offline {
    pub app: App,
    pub keys: PathBuf,
    pub state: PathBuf,
}

/// Runs the binary: (exit code, stdout, stderr).
pub fn tx(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).env("RUST_LOG", "error").output().expect("run tongxing");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

impl Offline {
    pub fn spawn(b: Backend) -> Offline {
        let db = TestDb::new(b);
        let tokens = db.tokens();
        let keys = db.dir.join("keys");
        let (code, _, err) = tx(&["keys", "generate", "--dir", keys.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
        let server = Server::start_with(&db, &["--keys", keys.to_str().unwrap()]);
        let state = db.dir.join("checkpoint.db");
        let app = App { server, tokens, db };
        app.use_2021_rules();
        app.checkpoint("CP1", "京哈高速");
        Offline { app, keys, state }
    }

    pub fn anchor(&self) -> String {
        self.keys.join("trust-anchor.pem").display().to_string()
    }

    /// `tongxing checkpoint sync` with the officer's token.
    pub fn sync(&self) -> (i32, String, String) {
        tx(&[
            "checkpoint",
            "sync",
            "--server",
            &self.app.server.base,
            "--token",
            &self.app.tokens["officer"],
            "--trust-anchor",
            &self.anchor(),
            "--state",
            self.state.to_str().unwrap(),
        ])
    }

    pub fn synced(&self) {
        let (code, out, err) = self.sync();
        assert_eq!(code, 0, "sync: {out}{err}");
    }

    /// `tongxing verify --json` with extra arguments: (exit code, the JSON lines, stderr).
    pub fn verify(&self, extra: &[&str]) -> (i32, Vec<Value>, String) {
        let mut args = vec!["verify", "--json", "--state", self.state.to_str().unwrap()];
        args.extend_from_slice(extra);
        let (code, out, err) = tx(&args);
        let lines = out.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}"))).collect();
        (code, lines, err)
    }

    /// The stage that refused `text` (asserting exit code 3 and one line).
    pub fn stage(&self, text: &str) -> String {
        let (code, lines, err) = self.verify(&[text]);
        assert_eq!(code, 3, "{lines:?} {err}");
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["decided"], false, "{lines:?}");
        lines[0]["stage"].as_str().unwrap().to_string()
    }

    /// A signed pass for a registered person, as the server issues it.
    pub fn issue(&self, doc: &str) -> String {
        let (code, out, err) =
            tx(&["pass", "issue", doc, "--keys", self.keys.to_str().unwrap(), "--database", &self.app.db.url]);
        assert_eq!(code, 0, "{err}");
        out.trim().to_string()
    }

    /// The server's signing key (to make passes the server would not, signed by it).
    pub fn signer(&self) -> Signer {
        let manifest: Value =
            serde_json::from_str(&std::fs::read_to_string(self.keys.join("keys.json")).unwrap()).unwrap();
        let file = manifest["signing"][0]["file"].as_str().unwrap();
        tongxing_pass::keyfile::read_private_key(&self.keys.join(file)).unwrap()
    }

    pub fn entry_events(&self) -> i64 {
        self.app.get("analyst", "/api/v1/stats/overview").body["entry_events"].as_i64().unwrap()
    }
}

/// The claims of a pass (read without verifying).
pub fn claims(text: &str) -> Pass {
    let mut env = Envelope::new();
    let cose = env.open("TX1:", text, false).unwrap().to_vec();
    let sign1 = tongxing_pass::cose::parse(&cose).unwrap();
    Pass::from_cwt(sign1.payload).unwrap()
}

/// `TX1:` + Base45(zlib(cose)), for codes made by hand.
pub fn wrap(cose: &[u8]) -> String {
    let mut z = Vec::new();
    stored_zlib(cose, &mut z);
    format!("TX1:{}", tongxing_pass::base45::encode(&z))
}

fn cose_of(text: &str) -> Vec<u8> {
    Envelope::new().open("TX1:", text, false).unwrap().to_vec()
}

/// A PNG header (and nothing much else) claiming `w × h` pixels, with a correct CRC.
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut png = tongxing_pass::qr::encode_grey_png(4, 4, &[255; 16]);
    png[16..20].copy_from_slice(&w.to_be_bytes());
    png[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
        }
    }
    !c
}

both!(fn sync_then_decide_offline_and_upload_once(b) {
    let o = Offline::spawn(b);
    let (good, none) = (nth_id("110105", 1), nth_id("110105", 2));
    o.app.negative(&good, Duration::hours(3));
    o.app.negative(&none, Duration::hours(80));
    let (pass_good, pass_old) = (o.issue(&good), o.issue(&none));

    let (code, out, err) = o.sync();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("uploaded: 0 recorded"), "{out}");
    assert!(out.contains("checkpoint CP1"), "the token's only checkpoint is the default: {out}");
    assert!(out.contains("beijing-2021-11-17 2021-11-17-test"), "{out}");

    // The server is not needed from here on: verify is given only the state file.
    let (code, lines, err) = o.verify(&[&pass_good]);
    assert_eq!(code, 0, "{err}");
    let d = &lines[0];
    assert_eq!(d["decided"], true);
    assert_eq!(d["verdict"], "pass", "{d}");
    assert_eq!(d["reasons"][0]["code"], "NEGATIVE_WITHIN_WINDOW");
    assert_eq!(d["code_colour"], "green");
    assert_eq!(d["checkpoint_id"], "CP1");
    assert_eq!(d["policy_version"], "2021-11-17-test");
    assert_eq!(d["queued"], true);
    assert_eq!(d["data"]["trust_list"]["stale"], false);
    assert!(d["as_of"].is_null());
    assert_eq!(d["idempotency_key"].as_str().unwrap().len(), 32);
    // A test too old for the rules: a verdict (deny), exit code 0, with its reason.
    let (code, lines, _) = o.verify(&[&pass_old, "--plate", "冀R12345"]);
    assert_eq!(code, 0);
    assert_eq!(lines[0]["verdict"], "deny", "{:?}", lines[0]);
    assert_eq!(lines[0]["reasons"][0]["code"], "TEST_TOO_OLD");
    // The same pass from a photo of the screen (PNG).
    let png = o.app.db.dir.join("pass.png");
    std::fs::write(&png, tongxing_pass::qr_png(&pass_good, 4).unwrap()).unwrap();
    let (code, lines, _) = o.verify(&["--image", png.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(lines[0]["verdict"], "pass");
    // For people: the verdict, the reasons in both languages, the key and the data's age.
    let (code, human, _) = tx(&["verify", "--state", o.state.to_str().unwrap(), &pass_good]);
    assert_eq!(code, 0);
    assert!(human.starts_with("通行 PASS"), "{human}");
    for part in ["NEGATIVE_WITHIN_WINDOW", "code colour green", "key ", "trust list v1 synced", "revocation list v"] {
        assert!(human.contains(part), "{part}: {human}");
    }

    assert_eq!(o.entry_events(), 0, "nothing reaches the server before a sync");
    let (code, out, err) = o.sync();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("uploaded: 4 recorded, 0 already recorded, 0 rejected"), "{out}");
    assert_eq!(o.entry_events(), 4);
    let entries = o.app.get("admin", "/api/v1/entries").body;
    let verdicts: Vec<&str> = entries.as_array().unwrap().iter().map(|e| e["verdict"].as_str().unwrap()).collect();
    assert_eq!(verdicts, ["pass", "deny", "pass", "pass"]);
    assert_eq!(entries[1]["plate"], "冀R12345");
    assert!(entries.as_array().unwrap().iter().all(|e| e["via"] == "offline"), "{entries}");
    assert_eq!(entries[0]["policy_version"], "2021-11-17-test");
    // Synced again: nothing more is sent, nothing recorded twice.
    let (code, out, _) = o.sync();
    assert_eq!(code, 0);
    assert!(out.contains("uploaded: 0 recorded"), "{out}");
    assert_eq!(o.entry_events(), 4);
    let (code, out, _) = tx(&["checkpoint", "status", "--state", o.state.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains("checks: 0 to upload, 4 recorded"), "{out}");
});

// A retried upload (the answer lost) records nothing twice; a check whose pass the server
// does not trust is rejected with the reason, the others recorded; a malformed row refuses the
// whole upload; a token scoped elsewhere may not upload for CP1.
both!(fn uploads_are_idempotent(b) {
    let o = Offline::spawn(b);
    let doc = nth_id("110105", 3);
    o.app.negative(&doc, Duration::hours(3));
    let pass = o.issue(&doc);
    o.synced();
    assert_eq!(o.verify(&[&pass]).0, 0);
    assert_eq!(o.verify(&[&pass]).0, 0);
    // The queued rows, as the sync would send them.
    let rows: Vec<Value> = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
        let s = tongxing_store::checkpoint::LocalState::open(&o.state, false).await.unwrap();
        let rows = s.pending(100).await.unwrap().iter().map(|r| serde_json::from_str(&r.body).unwrap()).collect();
        s.close().await;
        rows
    });
    assert_eq!(rows.len(), 2);
    let r = o.app.post("officer", "/api/v1/checks/offline", json!({"checks": rows}));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!((r.body["recorded"].as_u64(), r.body["duplicates"].as_u64()), (Some(2), Some(0)), "{r:?}");
    // The answer was lost: the same upload again, and a row sent twice in one upload.
    let again = json!({"checks": [rows[0], rows[1], rows[1]]});
    let r = o.app.post("officer", "/api/v1/checks/offline", again);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["duplicates"], 3, "{r:?}");
    assert_eq!(r.body["results"][0]["outcome"], "duplicate");
    assert_eq!(o.entry_events(), 2);

    // A pass signed by a key the server does not trust: rejected, the good row recorded.
    let (other, _) = Signer::generate(tongxing_pass::Algorithm::Es256).unwrap();
    let mut forged = rows[0].clone();
    forged["qr"] = json!(tongxing_pass::issue(&other, &claims(&pass)).unwrap());
    forged["idempotency_key"] = json!("0123456789abcdef0123456789abcdef");
    let mut fresh = rows[0].clone();
    fresh["idempotency_key"] = json!("fedcba9876543210fedcba9876543210");
    let r = o.app.post("officer", "/api/v1/checks/offline", json!({"checks": [forged, fresh]}));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["results"][0]["outcome"], "rejected");
    assert!(r.body["results"][0]["reason"].as_str().unwrap().contains("unknown_key"), "{r:?}");
    assert_eq!(r.body["results"][1]["outcome"], "recorded");
    assert_eq!(o.entry_events(), 3);

    // A malformed field: 422 naming it, nothing recorded.
    let mut bad = rows[0].clone();
    bad["idempotency_key"] = json!("11111111111111111111111111111111");
    let mut worse = bad.clone();
    worse["verdict"] = json!("maybe");
    let r = o.app.post("officer", "/api/v1/checks/offline", json!({"checks": [bad, worse]}));
    assert_eq!(r.status, 422, "{r:?}");
    assert_eq!(r.body["field"], "checks[1].verdict");
    let mut long = rows[0].clone();
    long["qr"] = json!(format!("TX1:{}", "A".repeat(5000)));
    let r = o.app.post("officer", "/api/v1/checks/offline", json!({"checks": [long]}));
    assert_eq!(r.status, 422);
    assert!(r.body["detail"].as_str().unwrap().contains("too_large"), "{r:?}");
    assert_eq!(o.entry_events(), 3);

    // A token for another checkpoint may not upload CP1's checks.
    let elsewhere = o.app.db.scoped_token("officer", &["CP2"]);
    let r = o.app.call("POST", "/api/v1/checks/offline", Some(&elsewhere), Some(json!({"checks": [rows[0]]})));
    assert_eq!(r.status, 403, "{r:?}");
    let r = o.app.post("lab", "/api/v1/checks/offline", json!({"checks": [rows[0]]}));
    assert_eq!(r.status, 403);
    assert_eq!(o.entry_events(), 3);
});

// kill -9 right after a verdict is printed: the check is on disk, and the next sync uploads it
// once.
both!(fn the_queue_survives_kill_9(b) {
    let o = Offline::spawn(b);
    let doc = nth_id("110105", 4);
    o.app.negative(&doc, Duration::hours(3));
    let pass = o.issue(&doc);
    o.synced();
    let mut child = Command::new(BIN)
        .args(["verify", "--stdin", "--json", "--state", o.state.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    writeln!(stdin, "{pass}").unwrap();
    stdin.flush().unwrap();
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["verdict"], "pass", "{line}");
    // The scanner's process dies with its input still open.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    let _ = child.wait();
    let (code, out, err) = o.sync();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("uploaded: 1 recorded"), "{out}");
    assert_eq!(o.entry_events(), 1);
    let (_, out, _) = o.sync();
    assert!(out.contains("uploaded: 0 recorded"), "{out}");
    assert_eq!(o.entry_events(), 1);
});

/// Every stage of the verification names itself through `tongxing verify` (exit code 3), and
/// changes nothing on the server.
#[test]
fn every_failure_stage_is_named() {
    let o = Offline::spawn(Backend::Sqlite);
    let doc = nth_id("110105", 5);
    o.app.negative(&doc, Duration::hours(3));
    let pass = o.issue(&doc);
    o.synced();
    let signer = o.signer();
    let cose = cose_of(&pass);
    let now = Utc::now().timestamp();

    // Over 4 KiB: refused before any work.
    assert_eq!(o.stage(&format!("TX1:{}", "0".repeat(4100))), "too_large");
    // Not ours: an EU certificate's prefix, or no prefix.
    assert_eq!(o.stage(&pass.replacen("TX1:", "HC1:", 1)), "bad_prefix");
    // Not Base45: a lower-case letter; a length of 3n+1.
    assert_eq!(o.stage(&format!("{}a", &pass[..pass.len() - 1])), "bad_base45");
    let body = pass.len() - 4;
    assert_eq!(o.stage(&pass[..4 + body - body % 3 - 2]), "bad_base45");
    // Truncated: whole Base45 groups, but the zlib stream ends early.
    assert_eq!(o.stage(&pass[..4 + (body / 3 - 10) * 3]), "bad_compression");
    // A compression bomb: 1 MiB of zeros in a few hundred bytes.
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&vec![0u8; 1 << 20]).unwrap();
    let bomb = format!("TX1:{}", tongxing_pass::base45::encode(&z.finish().unwrap()));
    assert!(bomb.len() < 4096, "{}", bomb.len());
    assert_eq!(o.stage(&bomb), "too_large");
    // Not a COSE_Sign1.
    assert_eq!(o.stage(&wrap(b"\x83\x01\x02\x03")), "bad_cose");
    // Signed by a key the trust list does not hold.
    let (other, _) = Signer::generate(tongxing_pass::Algorithm::Es256).unwrap();
    assert_eq!(o.stage(&tongxing_pass::issue(&other, &claims(&pass)).unwrap()), "unknown_key");
    // A tampered byte: the last of the signature.
    let mut tampered = cose.clone();
    *tampered.last_mut().unwrap() ^= 1;
    assert_eq!(o.stage(&wrap(&tampered)), "bad_signature");
    // A tampered byte in the signed claims (the colour red made green is the same attack).
    let mut tampered = cose.clone();
    let at = tampered.len() - 80;
    tampered[at] ^= 1;
    assert_eq!(o.stage(&wrap(&tampered)), "bad_signature");
    // Signed by the server's key, but not a pass.
    assert_eq!(o.stage(&wrap(&tongxing_pass::cose::sign(&signer, b"\xa1\x01\x02"))), "bad_claims");
    // Signed before the key was made.
    let mut early = claims(&pass);
    early.issued_at = now - 3 * 86_400;
    early.expires_at = now + 600;
    assert_eq!(o.stage(&tongxing_pass::issue(&signer, &early).unwrap()), "key_not_valid");
    // Issued an hour after this device's clock: the clock is behind, nothing is decided.
    let mut future = claims(&pass);
    future.issued_at = now + 3600;
    future.expires_at = now + 3600 + 900;
    assert_eq!(o.stage(&tongxing_pass::issue(&signer, &future).unwrap()), "clock_behind");
    // Within the tolerance (5 minutes) it is decided.
    future.issued_at = now + 120;
    let (code, lines, _) = o.verify(&[&tongxing_pass::issue(&signer, &future).unwrap()]);
    assert_eq!((code, lines[0]["verdict"].as_str()), (0, Some("pass")), "{lines:?}");
    // Expired: decided as of 20 minutes on (the pass lives 15).
    let later = (Utc::now() + Duration::minutes(20)).to_rfc3339();
    let (code, lines, _) = o.verify(&[&pass, "--at", &later]);
    assert_eq!((code, lines[0]["stage"].as_str()), (3, Some("expired")), "{lines:?}");
    assert_eq!(
        lines[0]["as_of"].as_str().unwrap(),
        tongxing_domain::time::rfc3339(chrono::DateTime::parse_from_rfc3339(&later).unwrap().into())
    );
    // Revoked: the person's code turns yellow on the server; the next sync brings the revocation
    // (a delta from the version held), and the pass issued before the change is refused.
    let r = o.app.put(
        "health",
        "/api/v1/people/code",
        json!({"document_number": doc, "colour": "yellow", "reason": "contact"}),
    );
    assert!(r.status < 300, "{r:?}");
    assert_eq!(o.verify(&[&pass]).0, 0, "the checkpoint does not know before it syncs");
    let (code, out, err) = o.sync();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("revocation list v1: 1 entries"), "{out}");
    assert_eq!(o.stage(&pass), "revoked");
    // A pass issued after the change (the next second: cut-offs are whole seconds, rounded up)
    // shows the new colour and is not revoked: it is decided (deny, yellow code).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let yellow = o.issue(&doc);
    let (code, lines, _) = o.verify(&[&yellow]);
    assert_eq!((code, lines[0]["code_colour"].as_str()), (0, Some("yellow")), "{lines:?}");

    // Images: not an image; no code in it; over 20 megapixels (refused from the header).
    let dir = &o.app.db.dir;
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p.display().to_string()
    };
    let stage_of_image = |path: &str| {
        let (code, lines, err) = o.verify(&["--image", path]);
        assert_eq!(code, 3, "{lines:?} {err}");
        lines[0]["stage"].as_str().unwrap().to_string()
    };
    assert_eq!(stage_of_image(&write("text.png", b"not an image")), "bad_image");
    assert_eq!(
        stage_of_image(&write("blank.png", &tongxing_pass::qr::encode_grey_png(64, 64, &[255; 64 * 64]))),
        "bad_image"
    );
    assert_eq!(stage_of_image(&write("huge.png", &png_claiming(5000, 5000))), "too_large");

    // A scanner's stream: each line decided in order, blank lines skipped, a bad line does not
    // stop the others; exit code 3 as one was refused.
    let mut child = Command::new(BIN)
        .args(["verify", "--stdin", "--json", "--state", o.state.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let input = format!("{yellow}\r\n\n   \nHC1:XYZ\n{}\n{yellow}\n", "A".repeat(10_000));
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let lines: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let what: Vec<String> =
        lines.iter().map(|l| l["verdict"].as_str().or(l["stage"].as_str()).unwrap().to_string()).collect();
    assert_eq!(what, ["deny", "bad_prefix", "too_large", "deny"]);
    // Refused codes stay on the device; only decided checks are uploaded (two went with the
    // sync that brought the revocation).
    assert_eq!(o.entry_events(), 2);
    let (code, out, _) = o.sync();
    assert_eq!(code, 0);
    assert!(out.contains("uploaded: 3 recorded"), "{out}");
    assert_eq!(o.entry_events(), 5);
}

/// Bad input to the commands: exit code 2, one line, nothing changed.
#[test]
fn bad_input_is_exit_code_2() {
    let o = Offline::spawn(Backend::Sqlite);
    let state = o.state.to_str().unwrap();
    let one_line = |(code, out, err): (i32, String, String), what: &str| {
        assert_eq!(code, 2, "{what}: {out}{err}");
        assert_eq!(err.trim().lines().count(), 1, "{what}: {err}");
        assert!(err.starts_with("error: "), "{what}: {err}");
    };
    one_line(tx(&["verify", "--state", state, "TX1:ABC"]), "no state file");
    assert!(!Path::new(state).exists(), "verify made no state file");
    let token = &o.app.tokens["officer"];
    let server = &o.app.server.base;
    one_line(
        tx(&["checkpoint", "sync", "--token", token, "--state", state, "--trust-anchor", &o.anchor()]),
        "no --server",
    );
    one_line(tx(&["checkpoint", "sync", "--server", server, "--token", token, "--state", state]), "no --trust-anchor");
    one_line(
        tx(&[
            "checkpoint",
            "sync",
            "--server",
            server,
            "--token",
            token,
            "--state",
            state,
            "--trust-anchor",
            "/nonexistent.pem",
        ]),
        "missing anchor",
    );
    one_line(
        tx(&[
            "checkpoint",
            "sync",
            "--server",
            "ftp://x",
            "--token",
            token,
            "--state",
            state,
            "--trust-anchor",
            &o.anchor(),
        ]),
        "bad URL",
    );
    one_line(
        tx(&[
            "checkpoint",
            "sync",
            "--server",
            server,
            "--token",
            token,
            "--state",
            state,
            "--trust-anchor",
            &o.anchor(),
            "--checkpoint",
            "CP-NOPE",
        ]),
        "a checkpoint not in the token's scope",
    );
    // Another deployment's anchor: the lists do not verify (exit code 3) and nothing is stored.
    let other = o.app.db.dir.join("other-keys");
    assert_eq!(tx(&["keys", "generate", "--dir", other.to_str().unwrap()]).0, 0);
    let (code, _, err) = tx(&[
        "checkpoint",
        "sync",
        "--server",
        server,
        "--token",
        token,
        "--state",
        state,
        "--trust-anchor",
        other.join("trust-anchor.pem").to_str().unwrap(),
    ]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("does not verify with the trust anchor"), "{err}");
    let (_, out, _) = tx(&["checkpoint", "status", "--state", state]);
    assert!(out.contains("never synced"), "{out}");

    o.synced();
    one_line(tx(&["verify", "--state", state, "--at", "yesterday", "TX1:ABC"]), "bad --at");
    one_line(tx(&["verify", "--state", state, "--checkpoint", "CP9", "TX1:ABC"]), "unknown checkpoint");
    one_line(tx(&["verify", "--state", state, "--plate", "x", "TX1:ABC"]), "bad plate");
    one_line(tx(&["verify", "--state", state, "--image", "/nonexistent.png"]), "missing image");
    let (code, _, _) = tx(&["verify", "--state", state, "--stdin", "TX1:ABC"]);
    assert_eq!(code, 2, "a text and --stdin");
    let (code, _, _) = tx(&["verify", "--state", state]);
    assert_eq!(code, 2, "no input");
    let (_, out, _) = tx(&["checkpoint", "status", "--state", state]);
    assert!(out.contains("checks: 0 to upload, 0 recorded, 0 duplicates, 0 rejected, 0 refused"), "{out}");
    let (code, help, _) = tx(&["verify", "--help"]);
    assert_eq!(code, 0);
    assert!(help.contains("Exit codes:") && help.contains("3  a code was refused"), "{help}");
}

/// Old data warns, naming each list; `--at` is printed and recorded, and the server records
/// the check as decided as of that time.
#[test]
fn stale_data_warns_and_at_is_recorded() {
    let o = Offline::spawn(Backend::Sqlite);
    let doc = nth_id("110105", 6);
    o.app.negative(&doc, Duration::hours(3));
    let pass = o.issue(&doc);
    o.synced();
    let (code, lines, err) = o.verify(&[&pass]);
    assert_eq!(code, 0);
    assert!(err.is_empty(), "fresh data: no warning: {err}");
    assert_eq!(lines[0]["warnings"], json!([]));
    // A day and more later (the policy allows 24 hours): each list is named.
    let later = (Utc::now() + Duration::hours(25)).to_rfc3339();
    let (code, lines, err) = o.verify(&[&pass, "--at", &later]);
    assert_eq!(code, 3, "the pass has expired by then too");
    for list in ["trust list", "rules", "revocation list"] {
        assert!(err.contains(&format!("warning: the {list} was synced 25 h ago")), "{list}: {err}");
    }
    assert_eq!(lines[0]["data"]["revocation_list"]["stale"], true);
    // A decision as of a minute ago: printed, queued with that time, recorded at it.
    let minute_ago = Utc::now() - Duration::minutes(1);
    let (code, lines, _) = o.verify(&[&pass, "--at", &minute_ago.to_rfc3339()]);
    assert_eq!(code, 0);
    assert!(lines[0]["as_of"].is_string());
    let (code, human, _) =
        tx(&["verify", "--state", o.state.to_str().unwrap(), "--at", &minute_ago.to_rfc3339(), &pass]);
    assert_eq!(code, 0);
    assert!(human.contains("decided as of") && human.contains("(--at;"), "{human}");
    let (code, out, _) = o.sync();
    assert_eq!(code, 0);
    assert!(out.contains("uploaded: 3 recorded"), "{out}");
    let entries = o.app.get("admin", "/api/v1/entries").body;
    let times: Vec<i64> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| chrono::DateTime::parse_from_rfc3339(e["checked_at"].as_str().unwrap()).unwrap().timestamp())
        .collect();
    assert_eq!(times.iter().filter(|t| **t == minute_ago.timestamp()).count(), 2, "{entries}");
    let via: Vec<&str> = entries.as_array().unwrap().iter().map(|e| e["via"].as_str().unwrap()).collect();
    assert_eq!(via, ["offline", "offline_at", "offline_at"], "a decision as of a given time says so");
}

// The offline verifier (`tongxing verify --json`) and the online check (`POST /api/v1/checks`
// with the `qr`) agree on the same passes: the same verdict, reason codes, colour, commuter badge
// and policy, or the same refusing stage. Both call `tongxing_app::verify::decide_on_pass`;
// this holds the two paths around it (data synced vs. read from the database) to the same answer.
both!(fn offline_and_online_agree(b) {
    let o = Offline::spawn(b);
    let app = &o.app;
    let doc = |n: u32| nth_id("110105", 20 + n);
    // Green with a recent test; no test in the window; yellow and red codes; a commuter before and
    // after the first check; a person whose code turns yellow after their pass was issued.
    for n in [0, 2, 3, 6] {
        app.negative(&doc(n), Duration::hours(3));
    }
    app.negative(&doc(1), Duration::hours(80));
    let commuter = nth_id("131082", 7);
    let r = app.post("registry", "/api/v1/commuters", json!({
        "document_number": commuter, "name": "王伟", "phone": "13800000000", "kind": "worker",
        "residence_region": "131082", "residence_proof": "lease", "employer_name": "北京星河科技有限公司",
        "employer_uscc": "91350100M000100Y43", "work_region": "110105"}));
    assert_eq!(r.status, 201, "{r:?}");
    app.post("registry", "/api/v1/commuters/decision", json!({"document_number": commuter, "action": "approve"}));
    app.negative(&commuter, Duration::days(5));
    let first = nth_id("131082", 8);
    app.post("registry", "/api/v1/commuters", json!({
        "document_number": first, "kind": "worker", "residence_region": "131082", "residence_proof": "lease",
        "employer_name": "x", "employer_uscc": "91350100M000100Y43", "work_region": "110105"}));
    app.post("registry", "/api/v1/commuters/decision", json!({"document_number": first, "action": "approve"}));
    app.negative(&first, Duration::hours(20));
    let revoked = o.issue(&doc(6));
    for (n, colour) in [(2, "yellow"), (3, "red"), (6, "yellow")] {
        let r = app.put("health", "/api/v1/people/code", json!({"document_number": doc(n), "colour": colour, "reason": "contact"}));
        assert!(r.status < 300, "{r:?}");
    }
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let signer = o.signer();
    let green = o.issue(&doc(0));
    // Expired: signed at the key's first second, valid for one second.
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(o.keys.join("keys.json")).unwrap()).unwrap();
    let key_from = chrono::DateTime::parse_from_rfc3339(manifest["signing"][0]["created_at"].as_str().unwrap()).unwrap();
    let mut expired = claims(&green);
    expired.issued_at = key_from.timestamp() + 1;
    expired.expires_at = expired.issued_at + 1;
    while Utc::now().timestamp() <= expired.expires_at {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let mut tampered = cose_of(&green);
    *tampered.last_mut().unwrap() ^= 1;
    let passes = [
        ("green", green.clone()),
        ("no recent test", o.issue(&doc(1))),
        ("yellow", o.issue(&doc(2))),
        ("red", o.issue(&doc(3))),
        ("commuter", o.issue(&commuter)),
        ("commuter's first check", o.issue(&first)),
        ("revoked", revoked),
        ("expired", tongxing_pass::issue(&signer, &expired).unwrap()),
        ("tampered", wrap(&tampered)),
        ("prefix", green.replacen("TX1:", "HC1:", 1)),
    ];
    o.synced();
    let mut seen = std::collections::BTreeSet::new();
    for (what, qr) in &passes {
        let (code, lines, err) = o.verify(&[qr]);
        let offline = &lines[0];
        let online = app.post("officer", "/api/v1/checks", json!({"checkpoint_id": "CP1", "qr": qr}));
        let codes = |v: &Value| -> Vec<String> {
            v["reasons"].as_array().unwrap().iter().map(|r| r["code"].as_str().unwrap().to_string()).collect()
        };
        if offline["decided"] == true {
            assert_eq!(code, 0, "{what}: {err}");
            assert_eq!(online.status, 200, "{what}: online {online:?}, offline {offline}");
            for field in ["verdict", "code_colour", "commuter", "policy_id", "policy_version"] {
                assert_eq!(offline[field], online.body[field], "{what}: {field}: offline {offline}, online {:?}", online.body);
            }
            assert_eq!(codes(offline), codes(&online.body), "{what}");
            seen.insert(format!("{} {}", offline["verdict"].as_str().unwrap(), codes(offline)[0]));
        } else {
            assert_eq!(code, 3, "{what}");
            assert_eq!(online.status, 422, "{what}: online {online:?}, offline {offline}");
            assert_eq!(offline["stage"], online.body["stage"], "{what}: offline {offline}, online {:?}", online.body);
            seen.insert(offline["stage"].as_str().unwrap().to_string());
        }
    }
    // The set covers every kind of answer.
    for expected in ["pass NEGATIVE_WITHIN_WINDOW", "deny TEST_TOO_OLD", "expired", "revoked", "bad_signature", "bad_prefix"] {
        assert!(seen.contains(expected), "{expected} not among {seen:?}");
    }
    assert!(seen.iter().any(|s| s.contains("COMMUTER")), "{seen:?}");
    assert!(seen.iter().filter(|s| s.starts_with("deny")).count() >= 3, "{seen:?}");
});
