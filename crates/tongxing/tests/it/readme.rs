//! README.md followed literally: `serve --demo` in an empty directory (the default database, a
//! `tongxing.db` file there), then the shell commands of "Trying the API" run by bash with curl,
//! answering as the README's comments say. SQLite only: that is what the README's demo runs on
//! (every other test runs on PostgreSQL too).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::helpers::*;

const README: &str = include_str!("../../../../README.md");

/// The first `sh` block of the README's section `heading`.
fn shell_block(heading: &str) -> &'static str {
    let section = &README[README.find(heading).unwrap_or_else(|| panic!("README.md has no {heading}"))..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let start = section.find("```sh\n").expect("a sh block") + "```sh\n".len();
    &section[start..start + section[start..].find("```").unwrap()]
}

#[test]
fn trying_the_api_answers_as_the_readme_says() {
    assert!(
        Command::new("curl").arg("--version").stdout(Stdio::null()).status().is_ok_and(|s| s.success()),
        "this test runs the README's curl commands: install curl (scripts/test does)"
    );
    let script = shell_block("## Trying the API");
    let db = TestDb::new(Backend::Sqlite);
    let mut child = Command::new(BIN)
        .args(["serve", "--demo", "--listen", "127.0.0.1:0"])
        .current_dir(&db.dir)
        .env_remove("TONGXING_DATABASE")
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = String::new();
    let base = loop {
        let line = lines.next().expect("the demo server exited before listening").unwrap();
        if let Some(addr) = line.strip_prefix("tongxing listening on ") {
            break addr.trim().to_string();
        }
        printed += &line;
        printed.push('\n');
    };
    std::thread::spawn(move || for _ in lines {});
    // The people the README checks are the ones the demo prints, and made no WAL of 150 MB.
    for number in ["131082194910010017", "120104194905040020", "11010519491231002X"] {
        assert!(script.contains(number) && printed.contains(number), "{number}: {printed}");
    }
    let wal = std::fs::metadata(db.dir.join("tongxing.db-wal")).map(|m| m.len()).unwrap_or(0);
    assert!(wal < 4 << 20, "write-ahead log of {wal} bytes after the demo");

    assert!(script.contains("http://127.0.0.1:8080"));
    let script = script.replace("http://127.0.0.1:8080", &base);
    let out = Command::new("bash").args(["-euo", "pipefail", "-c", &script]).current_dir(&db.dir).output().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let mut answers = stdout.splitn(3, '\n');
    let mut next = || -> Value {
        let text = answers.next().expect("one answer per command");
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
    };
    // What the comments above each command say.
    let check = next();
    assert_eq!(
        (&check["verdict"], &check["reasons"][0]["code"]),
        (&"pass".into(), &"COMMUTER_NEGATIVE_WITHIN_WINDOW".into()),
        "{check}"
    );
    let vehicle = next();
    let got: Vec<(&str, &str)> = vehicle["occupants"]
        .as_array()
        .unwrap_or_else(|| panic!("{vehicle}"))
        .iter()
        .map(|o| (o["verdict"].as_str().unwrap(), o["reasons"][0]["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            ("pass", "COMMUTER_NEGATIVE_WITHIN_WINDOW"),
            ("conditional", "PENDING_WITH_COMMITMENT"),
            ("deny", "TEST_TOO_OLD")
        ]
    );
    let comments = script.lines().filter_map(|l| l.strip_prefix('#')).map(str::trim).collect::<Vec<_>>().join(" ");
    for promise in [
        "\"verdict\":\"pass\" (COMMUTER_NEGATIVE_WITHIN_WINDOW)",
        "\"conditional\" (PENDING_WITH_COMMITMENT)",
        "\"deny\" (TEST_TOO_OLD)",
    ] {
        assert!(comments.contains(promise), "README.md no longer says {promise:?}: {comments}");
    }
    let openapi = next();
    assert!(openapi["paths"]["/api/v1/checks/vehicle"].is_object(), "{openapi}");
}
