//! `tongxing serve --policy`: both policy formats.

use std::process::Command;

use chrono::{Duration, Utc};

use crate::both;
use crate::helpers::*;

both!(fn serve_policy_reads_both_formats(b) {
    let db = TestDb::new(b);
    let tokens = db.tokens();
    // A rule set (the shipped format), re-issued from a minute ago under a new version.
    let (_, text) = tongxing_rules::BUILTIN_FILES[0];
    let reissued = tongxing_rules::reissue(text, "2021-11-17-cli", Utc::now() - Duration::minutes(1)).unwrap();
    let rule_set = db.dir.join("rule-set.json");
    std::fs::write(&rule_set, &reissued).unwrap();
    // A legacy policy (windows in hours and days), as shipped in the domain crate.
    let legacy = concat!(env!("CARGO_MANIFEST_DIR"), "/../tongxing-domain/policies/beijing-2021-11-17.json");
    let args = ["--policy", rule_set.to_str().unwrap(), "--policy", legacy];
    let app = App { server: Server::start_with(&db, &args), tokens, db };
    let list = app.get("health", "/api/v1/policies");
    let in_force: Vec<_> = list.body.as_array().unwrap().iter().filter(|p| p["in_force"] == true).collect();
    assert_eq!((in_force.len(), &in_force[0]["version"], &in_force[0]["source"]), (1, &"2021-11-17-cli".into(), &"activated".into()), "{list:?}");
    app.checkpoint("CP1", "京哈高速");
    let r = app.check("CP1", &nth_id("110105", 1));
    assert_eq!(r.body["policy_version"], "2021-11-17-cli", "{r:?}");
    let audit = |app: &App| -> Vec<(String, String)> {
        let a = app.get("health", "/api/v1/policies/audit").body;
        a.as_array().unwrap().iter().map(|e| (e["state"].as_str().unwrap().into(), e["by"].as_str().unwrap().into())).collect()
    };
    let by = "serve --policy".to_string();
    let expected = vec![
        ("publish beijing-2021-11-17 2021-11-17-cli".to_string(), by.clone()),
        ("activate beijing-2021-11-17 2021-11-17-cli".to_string(), by),
    ];
    assert_eq!(audit(&app), expected);
    // Started again with the same files: nothing new is published or activated.
    let App { server, tokens, db } = app;
    drop(server);
    let app = App { server: Server::start_with(&db, &args), tokens, db };
    assert_eq!(audit(&app), expected);
    // A broken rule set stops the server before it listens, naming the file.
    let broken = app.db.dir.join("broken.json");
    std::fs::write(&broken, reissued.replacen("\"Logic\"", "\"Logik\"", 1)).unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--database", &app.db.url, "--policy", broken.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("rule set") && err.contains("broken.json"), "{err}");
});
