//! `tongxing import`: CSV files, rejections named by the file's own line numbers, exit codes,
//! idempotent re-runs.

use std::path::Path;
use std::process::Command;

use chrono::{Duration, Utc};
use serde_json::Value;

use crate::both;
use crate::helpers::*;

/// Runs the binary: (exit code, stdout, stderr).
fn run_code(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).env("RUST_LOG", "error").output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.code().expect("exited"), text(out.stdout), text(out.stderr))
}

/// Runs an import that must store every row (exit code 0): its stdout.
fn run(args: &[&str]) -> String {
    let (code, out, err) = run_code(args);
    assert_eq!(code, 0, "{args:?}: {out}{err}");
    out
}

/// Runs an import that must reject some rows (exit code 3): its stdout.
fn run_rejecting(args: &[&str]) -> String {
    let (code, out, err) = run_code(args);
    assert_eq!(code, 3, "{args:?}: {out}{err}");
    out
}

/// A sampling time 3 hours ago, as labs write it (Beijing time).
fn lab_time() -> String {
    let local = (Utc::now() - Duration::hours(3)).with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap());
    local.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// The line numbers of the rejected rows in `--json` output.
fn rejected_lines(json: &Value) -> Vec<u64> {
    json["rejected_rows"].as_array().unwrap().iter().map(|r| r["line"].as_u64().unwrap()).collect()
}

fn import_json(kind: &str, file: &Path, url: &str) -> (i32, Value) {
    let (code, out, err) = run_code(&["import", kind, file.to_str().unwrap(), "--database", url, "--json"]);
    (code, serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}")))
}

both!(fn results_csv(b) {
    let db = TestDb::new(b);
    let local = (Utc::now() - Duration::hours(3)).with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap());
    let t = local.format("%Y-%m-%d %H:%M:%S").to_string();
    let csv = format!(
        "lab,sample_id,document_number,sampled_at,site,site_kind,result\n\
         LAB1,S1,{},{t},H1,hospital,negative\n\
         LAB1,S2,110105194912310021,{t},H1,hospital,negative\n\
         LAB1,S3,{},2021/11/17,H1,hospital,negative\n\
         LAB1,S4,{},{t},SA-JINGHA-XIANGHE,service_area,pending\n",
        nth_id("110105", 1), nth_id("110105", 3), nth_id("110105", 4));
    let file = db.dir.join("results.csv");
    std::fs::write(&file, csv).unwrap();
    let out = run_rejecting(&["import", "results", file.to_str().unwrap(), "--database", &db.url]);
    assert!(out.contains("2 accepted, 0 unchanged, 0 corrected, 2 rejected"), "{out}");
    assert!(out.contains("line 3: rejected: document_number: the check character"), "{out}");
    assert!(out.contains("line 4: rejected: sampled_at"), "{out}");
    let out = run_rejecting(&["import", "results", file.to_str().unwrap(), "--database", &db.url]);
    assert!(out.contains("0 accepted, 2 unchanged"), "{out}");
    // The local time was read as Beijing time.
    let tokens = db.tokens();
    let server = Server::start(&db);
    let app = App { server, tokens, db };
    let r = app.post("health", "/api/v1/people/lookup", serde_json::json!({"document_number": nth_id("110105", 1), "purpose": "x"}));
    let stored = chrono::DateTime::parse_from_rfc3339(r.body["samples"][0]["sampled_at"].as_str().unwrap()).unwrap();
    assert_eq!(stored.timestamp(), local.timestamp());
});

both!(fn commuters_csv(b) {
    let db = TestDb::new(b);
    let csv = format!(
        "document_number,name,phone,kind,residence_region,residence_proof,employer_name,employer_uscc,work_region\n\
         {},王伟,13800000000,worker,131082,lease,北京星河,91350100M000100Y43,110105\n\
         {},李娜,,worker,130102,lease,北京星河,91350100M000100Y43,110105\n",
        nth_id("131082", 1), nth_id("130102", 2));
    let file = db.dir.join("commuters.csv");
    std::fs::write(&file, csv).unwrap();
    let out = run_rejecting(&["import", "commuters", file.to_str().unwrap(), "--database", &db.url]);
    assert!(out.contains("1 accepted, 0 unchanged, 0 corrected, 1 rejected"), "{out}");
    assert!(out.contains("line 3: rejected: residence_region"), "{out}");
    let out = run_rejecting(&["import", "commuters", file.to_str().unwrap(), "--database", &db.url]);
    assert!(out.contains("0 accepted, 1 unchanged"), "{out}");
    // An imported commuter is approved: first check with a 20-hour test passes as a commuter.
    let tokens = db.tokens();
    let server = Server::start(&db);
    let app = App { server, tokens, db };
    app.use_2021_rules();
    app.checkpoint("CP1", "京哈高速");
    app.negative(&nth_id("131082", 1), Duration::hours(20));
    assert_eq!(app.verdict("CP1", &nth_id("131082", 1)).1, "COMMUTER_FIRST_CHECK");
});

both!(fn bad_rows_are_named_at_their_file_lines(b) {
    // 800 lines: the header, then samples; the rows on lines 500 and 700 are bad.
    let db = TestDb::new(b);
    let t = lab_time();
    let mut lines = vec!["lab,sample_id,document_number,sampled_at,site,site_kind,result".to_string()];
    for line in 2..=800 {
        let result = if line == 500 || line == 700 { "maybe" } else { "negative" };
        lines.push(format!("LAB1,S{line},{},{t},H1,hospital,{result}", nth_id("110105", line)));
    }
    let lf = db.dir.join("lf.csv");
    std::fs::write(&lf, lines.join("\n") + "\n").unwrap();
    let out = run_rejecting(&["import", "results", lf.to_str().unwrap(), "--database", &db.url]);
    let rejected: Vec<&str> = out.lines().filter(|l| l.contains("rejected:")).collect();
    assert_eq!(rejected.len(), 2, "{out}");
    assert!(rejected[0].starts_with("line 500: rejected: result: 'maybe'"), "{out}");
    assert!(rejected[1].starts_with("line 700: rejected: result: 'maybe'"), "{out}");
    assert!(out.contains("797 accepted, 0 unchanged, 0 corrected, 2 rejected"), "{out}");
    // The same file with CRLF line ends (as saved on Windows): the same lines.
    let crlf = db.dir.join("crlf.csv");
    std::fs::write(&crlf, lines.join("\r\n") + "\r\n").unwrap();
    let (code, json) = import_json("results", &crlf, &db.url);
    assert_eq!(code, 3, "{json}");
    assert_eq!(rejected_lines(&json), [500, 700], "{json}");
    assert_eq!((json["rows"].as_u64(), json["unchanged"].as_u64(), json["rejected"].as_u64()), (Some(799), Some(797), Some(2)));
    // Without the bad rows: exit code 0, nothing rejected.
    let good: Vec<String> = lines.iter().enumerate().filter(|(i, _)| *i != 499 && *i != 699).map(|(_, l)| l.clone()).collect();
    let ok = db.dir.join("ok.csv");
    std::fs::write(&ok, good.join("\n")).unwrap();
    let (code, json) = import_json("results", &ok, &db.url);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["unchanged"], 797);
    assert_eq!(json["rejected_rows"], serde_json::json!([]));
});

both!(fn unreadable_rows_are_named_once_each(b) {
    let db = TestDb::new(b);
    let t = lab_time();
    let row = |n: u32| format!("LAB1,U{n},{},{t},H1,hospital,negative", nth_id("110105", n));
    let mut file: Vec<u8> = Vec::new();
    let mut push = |line: &[u8]| {
        file.extend_from_slice(line);
        file.push(b'\n');
    };
    push(b"lab,sample_id,document_number,sampled_at,site,site_kind,result"); // 1
    push(row(2).as_bytes()); // 2
    push(b"LAB1,U3,only four,fields"); // 3: wrong field count
    push(row(4).replace("H1", "\"H1\"").as_bytes()); // 4: good (a quoted field)
    let mut latin1 = row(5).replace("H1", "H?").into_bytes();
    let q = latin1.iter().position(|&c| c == b'?').unwrap();
    latin1[q] = 0xe9; // 5: not UTF-8 (é in Latin-1)
    push(&latin1);
    push(row(6).replace("H1", "\"H\nH\"").as_bytes()); // 6-7: a site on two lines
    push(b""); // 8: blank
    push(format!("{},extra", row(9)).as_bytes()); // 9: a field too many
    push(row(10).replace("negative", "\"nega\ntive\"").as_bytes()); // 10-11: a result on two lines
    push(row(12).as_bytes()); // 12: good
    let path = db.dir.join("unreadable.csv");
    std::fs::write(&path, &file).unwrap();
    let (code, json) = import_json("results", &path, &db.url);
    assert_eq!(code, 3, "{json}");
    assert_eq!(rejected_lines(&json), [3, 5, 6, 9, 10], "{json}");
    let reasons: Vec<&str> = json["rejected_rows"].as_array().unwrap().iter().map(|r| r["reason"].as_str().unwrap()).collect();
    assert!(reasons[0].contains("4 fields where the header line has 7"), "{reasons:?}");
    assert!(reasons[1].contains("site: not valid UTF-8"), "{reasons:?}");
    assert!(reasons[2].starts_with("site:"), "{reasons:?}");
    assert!(reasons[3].contains("8 fields where the header line has 7"), "{reasons:?}");
    assert!(reasons[4].starts_with("result:"), "{reasons:?}");
    assert_eq!(json["accepted"], 3, "{json}");
    // Every row rejected: still exit code 3, not 0.
    let all_bad = db.dir.join("all-bad.csv");
    std::fs::write(&all_bad, "lab,sample_id,document_number,sampled_at,site,site_kind,result\nLAB1,X1,123,now,H1,hospital,negative\n").unwrap();
    let (code, json) = import_json("results", &all_bad, &db.url);
    assert_eq!((code, json["accepted"].as_u64(), rejected_lines(&json)), (3, Some(0), vec![2]), "{json}");
    // --quiet: nothing on stdout; the exit code tells.
    let (code, out, _) = run_code(&["import", "results", all_bad.to_str().unwrap(), "--database", &db.url, "--quiet"]);
    assert_eq!((code, out.as_str()), (3, ""));
});

both!(fn a_file_that_cannot_be_read_is_exit_code_4(b) {
    let db = TestDb::new(b);
    // No such file: the database is not even created.
    let fresh = format!("sqlite://{}", db.dir.join("never.db").display());
    let (code, out, err) = run_code(&["import", "results", db.dir.join("missing.csv").to_str().unwrap(), "--database", &fresh]);
    assert_eq!((code, out.as_str()), (4, ""), "{err}");
    assert!(err.contains("cannot open"), "{err}");
    assert!(!db.dir.join("never.db").exists());
    // Not the expected header line.
    let wrong = db.dir.join("wrong.csv");
    std::fs::write(&wrong, "name,phone\n王伟,13800000000\n").unwrap();
    for kind in ["results", "commuters"] {
        let (code, _, err) = run_code(&["import", kind, wrong.to_str().unwrap(), "--database", &db.url, "--json"]);
        assert_eq!(code, 4, "{kind}: {err}");
        assert!(err.contains("the header line lacks the column(s)"), "{kind}: {err}");
    }
    // Usage errors are clap's 2.
    assert_eq!(run_code(&["import", "results"]).0, 2);
    // --help lists the exit codes.
    let help = run(&["import", "results", "--help"]);
    for code in ["0  every row was stored", "3  some rows were rejected", "4  the file could not be read"] {
        assert!(help.contains(code), "{help}");
    }
});

both!(fn commuter_rows_are_named_at_their_file_lines(b) {
    let db = TestDb::new(b);
    let row = |n: u32, name: &str, home: &str| format!("{},{name},,worker,{home},lease,北京星河,91350100M000100Y43,110105", nth_id(home, n));
    let csv = [
        "document_number,name,phone,kind,residence_region,residence_proof,employer_name,employer_uscc,work_region".to_string(),
        row(1, "\"王\n伟\"", "131082"), // 2-3: a name on two lines (refused: a control character)
        row(2, "李娜", "130102"),          // 4: not a surrounding region
        "only,three,fields".to_string(),    // 5
        row(3, "张伟", "131028"),           // 6
        row(4, "刘洋", "999999"),           // 7: no such region
    ]
    .join("\r\n");
    let file = db.dir.join("commuters.csv");
    std::fs::write(&file, csv).unwrap();
    let (code, json) = import_json("commuters", &file, &db.url);
    assert_eq!(code, 3, "{json}");
    assert_eq!(rejected_lines(&json), [2, 4, 5, 7], "{json}");
    assert_eq!(json["accepted"], 1, "{json}");
});

both!(fn logs_are_plain_text_on_stderr_and_the_summary_on_stdout(b) {
    let db = TestDb::new(b);
    let file = db.dir.join("empty.csv");
    std::fs::write(&file, "lab,sample_id,document_number,sampled_at,site,site_kind,result\n").unwrap();
    let out = Command::new(BIN)
        .args(["import", "results", file.to_str().unwrap(), "--database", &db.url])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap());
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    // A fresh database: the migrations are logged, on stderr, without colour codes, in Beijing time.
    let log = stderr.lines().find(|l| l.contains("migration applied")).unwrap_or_else(|| panic!("{stderr}"));
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
    assert!(log.split_whitespace().next().unwrap().ends_with("+08:00"), "{log}");
    assert!(stdout.starts_with("0 rows in "), "{stdout}");
    assert!(!stdout.contains("migration"), "{stdout}");
});
