//! `tongxing import`: CSV files, line-numbered rejections, idempotent re-runs.

use std::process::Command;

use chrono::{Duration, Utc};

use crate::both;
use crate::helpers::*;

fn run(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).env("RUST_LOG", "error").output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
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
    let out = run(&["import", "results", file.to_str().unwrap(), "--database", &db.url]);
    assert!(out.contains("2 accepted, 0 unchanged, 0 corrected, 2 rejected"), "{out}");
    assert!(out.contains("line 3: rejected: document_number: the check character"), "{out}");
    assert!(out.contains("line 4: rejected: sampled_at"), "{out}");
    let out = run(&["import", "results", file.to_str().unwrap(), "--database", &db.url]);
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
    let out = run(&["import", "commuters", file.to_str().unwrap(), "--database", &db.url]);
    assert!(out.contains("1 accepted, 0 unchanged, 0 corrected, 1 rejected"), "{out}");
    assert!(out.contains("line 3: rejected: residence_region"), "{out}");
    let out = run(&["import", "commuters", file.to_str().unwrap(), "--database", &db.url]);
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
