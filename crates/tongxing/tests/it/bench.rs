//! `tongxing bench`: it writes made-up data, so it runs only on a database of its own.

use std::process::Command;

use crate::both;
use crate::helpers::*;

fn bench(args: &[&str], database: Option<&str>) -> (i32, String) {
    let mut cmd = Command::new(BIN);
    cmd.arg("bench").args(args).env("RUST_LOG", "error").env_remove("TONGXING_DATABASE");
    if let Some(url) = database {
        cmd.env("TONGXING_DATABASE", url);
    }
    let out = cmd.output().unwrap();
    (out.status.code().unwrap(), String::from_utf8_lossy(&out.stderr).into_owned())
}

both!(fn bench_refuses_a_database_it_did_not_make(b) {
    // No database given: a usage error, never the default tongxing.db.
    let (code, err) = bench(&["import", "--rows", "10"], None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--database"), "{err}");
    // A database holding real data (one imported sample): refused, unchanged.
    let live = TestDb::new(b);
    let file = live.dir.join("one.csv");
    let t = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    std::fs::write(&file, format!("lab,sample_id,document_number,sampled_at,site,site_kind,result\nLAB1,S1,{},{t},H1,hospital,negative\n", nth_id("110105", 1))).unwrap();
    let out = Command::new(BIN).args(["import", "results", file.to_str().unwrap(), "--database", &live.url]).env("RUST_LOG", "error").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    for args in [&["import", "--rows", "10", "--people", "5"][..], &["populate", "--people", "5", "--results", "10"], &["checks", "--people", "5", "--requests", "5"]] {
        let (code, err) = bench(args, Some(&live.url));
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains("holds data that no bench command made"), "{args:?}: {err}");
    }
    let app = App { tokens: live.tokens(), server: Server::start(&live), db: live };
    let stats = app.get("admin", "/api/v1/stats/overview").body;
    // The imported person, and the person the test's citizen session is bound to.
    assert_eq!((stats["people"].as_i64(), stats["samples"].as_i64()), (Some(2), Some(1)), "{stats}");
    // An empty database (from TONGXING_DATABASE, like the other commands) is marked, then reused.
    let own = TestDb::new(b);
    let (code, err) = bench(&["import", "--rows", "10", "--people", "5"], Some(&own.url));
    assert_eq!(code, 0, "{err}");
    let (code, err) = bench(&["populate", "--people", "5", "--results", "10"], Some(&own.url));
    assert_eq!(code, 0, "{err}");
});
