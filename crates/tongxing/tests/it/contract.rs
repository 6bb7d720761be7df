//! The API contract, held against every route of the OpenAPI document: each class of bad
//! input (oversized text, NUL, control characters, a wrong JSON type, an unknown field, a body
//! that is not JSON, the wrong content type, a body over the limit, bad UTF-8 in the path, a
//! bad query, a wrong method) gets a 4xx `application/problem+json` whose `detail` is under
//! 1 KiB and names the field, and changes nothing that is stored.

use chrono::{Duration, Utc};
use serde_json::{Value, json};

use crate::both;
use crate::helpers::*;

/// A valid request for one route of the document: who may send it, the concrete path and the
/// body. The test fails when a documented route has none, so a new route must bring one.
struct Example {
    method: &'static str,
    template: &'static str,
    role: &'static str,
    path: String,
    body: Option<Value>,
    /// Rows of a batch are refused one by one (200 with `rejected`), not the request.
    batch: bool,
    /// A path parameter and its value in `path`, to break.
    param: Option<(&'static str, &'static str)>,
}

fn examples(app: &App) -> Vec<Example> {
    let doc = nth_id("110105", 11);
    let person = || json!({"document_number": doc});
    let with = |mut v: Value, extra: Value| {
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        v
    };
    let row = json!({"lab": "LAB1", "sample_id": "S-1", "document_number": doc,
        "sampled_at": (Utc::now() - Duration::hours(2)).to_rfc3339(), "site": "H1", "site_kind": "hospital", "result": "negative"});
    let (_, text) = tongxing_rules::BUILTIN_FILES[0];
    let policy: Value =
        serde_json::from_str(&tongxing_rules::reissue(text, "contract-1", Utc::now() + Duration::days(1)).unwrap())
            .unwrap();
    let since = (Utc::now() - Duration::days(1)).to_rfc3339();
    let commuters_csv = format!(
        "document_number,kind,residence_region,residence_proof,employer_name,employer_uscc,work_region\n\
         {doc},worker,131082,lease,北京某某科技有限公司,91350100M000100Y43,110105\n"
    );
    let colours_csv = format!("document_number,colour,reason\n{doc},yellow,contact\n");
    let e = |method, template, role, path: &str, body: Option<Value>| Example {
        method,
        template,
        role,
        path: path.to_string(),
        body,
        batch: false,
        param: None,
    };
    let _ = app;
    let frame = {
        use base64::Engine;
        let png = tongxing_pass::qr_png("TX1:6BFOXN*TS0BI$ZD4N9:9S6RCVN5+O30K3", 2).unwrap();
        format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(png))
    };
    vec![
        e(
            "POST",
            "/api/v1/people",
            "registry",
            "/api/v1/people",
            Some(with(person(), json!({"name": "张三", "phone": "13812345678", "residence_region": "110105"}))),
        ),
        e(
            "POST",
            "/api/v1/people/lookup",
            "health",
            "/api/v1/people/lookup",
            Some(with(person(), json!({"purpose": "case review", "reveal": false}))),
        ),
        e(
            "POST",
            "/api/v1/people/access-log",
            "registry",
            "/api/v1/people/access-log",
            Some(with(person(), json!({"purpose": "audit"}))),
        ),
        e(
            "PUT",
            "/api/v1/people/code",
            "health",
            "/api/v1/people/code",
            Some(with(
                person(),
                json!({"colour": "yellow", "reason": "contact", "popup": "test_overdue",
                "expires_at": (Utc::now() + Duration::days(1)).to_rfc3339()}),
            )),
        ),
        e("POST", "/api/v1/results", "lab", "/api/v1/results", Some(row.clone())),
        Example {
            batch: true,
            ..e("POST", "/api/v1/results/batch", "lab", "/api/v1/results/batch", Some(json!({"results": [row]})))
        },
        Example {
            param: Some(("sample_id", "S-1")),
            ..e("GET", "/api/v1/results/{lab}/{sample_id}/history", "health", "/api/v1/results/LAB1/S-1/history", None)
        },
        e(
            "POST",
            "/api/v1/commuters",
            "registry",
            "/api/v1/commuters",
            Some(with(
                person(),
                json!({
            "name": "李四", "phone": "13812345678", "kind": "worker", "residence_region": "131082",
            "residence_proof": "lease", "employer_name": "北京某某科技有限公司", "employer_uscc": "91350100M000100Y43",
            "work_region": "110105"}),
            )),
        ),
        e(
            "POST",
            "/api/v1/commuters/decision",
            "registry",
            "/api/v1/commuters/decision",
            Some(with(person(), json!({"action": "suspend", "reason": "review"}))),
        ),
        e(
            "POST",
            "/api/v1/checkpoints",
            "admin",
            "/api/v1/checkpoints",
            Some(json!({"id": "CP-NEW", "name": "新检查站", "road": "京哈高速", "kind": "police"})),
        ),
        e("GET", "/api/v1/checkpoints", "officer", "/api/v1/checkpoints", None),
        e(
            "POST",
            "/api/v1/checks",
            "officer",
            "/api/v1/checks",
            Some(with(person(), json!({"checkpoint_id": "CP1", "plate": "冀R12345"}))),
        ),
        e(
            "POST",
            "/api/v1/checks/vehicle",
            "officer",
            "/api/v1/checks/vehicle",
            Some(json!({"checkpoint_id": "CP1", "plate": "冀R12345", "occupants": [person()]})),
        ),
        e(
            "POST",
            "/api/v1/checks/frame",
            "officer",
            "/api/v1/checks/frame",
            Some(json!({"checkpoint_id": "CP1", "plate": "冀R12345", "image": frame.clone()})),
        ),
        e("GET", "/api/v1/entries", "admin", &format!("/api/v1/entries?limit=10&since={}", urlencode(&since)), None),
        e("GET", "/api/v1/stats/overview", "analyst", "/api/v1/stats/overview", None),
        e(
            "GET",
            "/api/v1/stats/verdicts",
            "analyst",
            &format!("/api/v1/stats/verdicts?since={}", urlencode(&since)),
            None,
        ),
        e("GET", "/api/v1/policies", "health", "/api/v1/policies", None),
        e("POST", "/api/v1/policies", "health", "/api/v1/policies", Some(policy.clone())),
        e(
            "POST",
            "/api/v1/policies/activate",
            "health",
            "/api/v1/policies/activate",
            Some(json!({"id": "beijing-2021-11-17", "version": "contract-1"})),
        ),
        e(
            "POST",
            "/api/v1/policies/dry-run",
            "health",
            "/api/v1/policies/dry-run",
            Some(json!({"policy": policy, "since": since, "sample": 5})),
        ),
        e("GET", "/api/v1/policies/audit", "health", "/api/v1/policies/audit", None),
        e("POST", "/api/v1/citizen/code", "admin", "/api/v1/citizen/code", Some(person())),
        e(
            "POST",
            "/api/v1/citizen/session",
            "admin",
            "/api/v1/citizen/session",
            Some(with(person(), json!({"code": "123456"}))),
        ),
        e("GET", "/api/v1/citizen/pass", "citizen", "/api/v1/citizen/pass", None),
        e("GET", "/api/v1/citizen/family", "citizen", "/api/v1/citizen/family", None),
        e(
            "POST",
            "/api/v1/citizen/family",
            "citizen",
            "/api/v1/citizen/family",
            Some(with(person(), json!({"code": "123456"}))),
        ),
        e("POST", "/api/v1/citizen/family/code", "citizen", "/api/v1/citizen/family/code", Some(person())),
        e("POST", "/api/v1/citizen/family/minor", "citizen", "/api/v1/citizen/family/minor", Some(person())),
        Example {
            param: Some(("link", "1")),
            ..e("POST", "/api/v1/citizen/family/{link}/remove", "citizen", "/api/v1/citizen/family/1/remove", None)
        },
        Example {
            param: Some(("link", "1")),
            ..e("GET", "/api/v1/citizen/family/{link}/pass", "citizen", "/api/v1/citizen/family/1/pass", None)
        },
        e("GET", "/api/v1/family-links/pending", "registry", "/api/v1/family-links/pending", None),
        e("GET", "/api/v1/citizen/pass/qr", "citizen", "/api/v1/citizen/pass/qr?format=svg", None),
        Example {
            param: Some(("link", "1")),
            ..e("GET", "/api/v1/citizen/family/{link}/pass/qr", "citizen", "/api/v1/citizen/family/1/pass/qr", None)
        },
        e("GET", "/api/v1/checkpoint/bundle", "officer", "/api/v1/checkpoint/bundle", None),
        e(
            "POST",
            "/api/v1/checks/offline",
            "officer",
            "/api/v1/checks/offline",
            Some(json!({"checks": [{
                "idempotency_key": "0123456789abcdef0123456789abcdef", "checkpoint_id": "CP1",
                "checked_at": (Utc::now() - Duration::minutes(5)).to_rfc3339(), "qr": "TX1:6BFOXN*TS0BI$ZD4N9:9S6RCVN5+O30K3/XIV0W23NTDEXWK G2EP4J0BGJLFX3R3VHXK.PJ:2DPF6R:5SVBDOUP:F0Q-S*AEA/P",
                "plate": "冀R12345", "verdict": "pass",
                "reasons": [{"code": "NEGATIVE_WITHIN_WINDOW", "sample": "pass/t0"}],
                "policy_id": "beijing-2021-11-17", "policy_version": "2021-11-17.1",
                "rule_versions": [{"id": "BJ-NAT-0002", "version": "1.0.0"}]}]})),
        ),
        e("GET", "/api/v1/trust-list", "admin", "/api/v1/trust-list", None),
        e("GET", "/api/v1/revocations", "admin", "/api/v1/revocations?since=0", None),
        e(
            "POST",
            "/api/v1/passes/withdraw",
            "health",
            "/api/v1/passes/withdraw",
            Some(with(person(), json!({"reason": "reissue"}))),
        ),
        Example {
            param: Some(("link", "1")),
            ..e(
                "POST",
                "/api/v1/family-links/{link}/decision",
                "registry",
                "/api/v1/family-links/1/decision",
                Some(json!({"action": "refuse", "reason": "not the parent"})),
            )
        },
        Example {
            param: Some(("test_point", "SA-JINGHA-XIANGHE")),
            ..e(
                "POST",
                "/api/v1/test-points/{test_point}/samples",
                "test_point",
                "/api/v1/test-points/SA-JINGHA-XIANGHE/samples",
                Some(with(person(), json!({"sample_id": "T-1", "sampled_at": since, "pool_id": "POOL-1"}))),
            )
        },
        e("GET", "/api/v1/letter", "admin", "/api/v1/letter", None),
        e(
            "POST",
            "/api/v1/commitments",
            "test_point",
            "/api/v1/commitments",
            Some(with(
                person(),
                json!({"test_point": "SA-JINGHA-XIANGHE", "sample_id": "T-1", "letter_version": "2021-11-17",
                "letter_sha256": "0".repeat(64)}),
            )),
        ),
        e("GET", "/api/v1/citizen/commitments", "citizen", "/api/v1/citizen/commitments", None),
        e("GET", "/api/v1/citizen/letters", "citizen", "/api/v1/citizen/letters", None),
        Example {
            param: Some(("test_point", "SA-JINGHA-XIANGHE")),
            ..e(
                "GET",
                "/api/v1/test-points/{test_point}/samples",
                "test_point",
                "/api/v1/test-points/SA-JINGHA-XIANGHE/samples?date=2021-11-17",
                None,
            )
        },
        e("GET", "/api/v1/citizen/access-log", "citizen", "/api/v1/citizen/access-log", None),
        e("GET", "/api/v1/citizen/commuter", "citizen", "/api/v1/citizen/commuter", None),
        e(
            "POST",
            "/api/v1/citizen/commuter",
            "citizen",
            "/api/v1/citizen/commuter",
            Some(json!({"kind": "worker", "residence_region": "131082", "residence_proof": "lease",
                "employer_name": "北京某某科技有限公司", "employer_uscc": "91350100M000100Y43", "work_region": "110105"})),
        ),
        e("GET", "/api/v1/commuters/queue", "registry", "/api/v1/commuters/queue?status=pending&limit=10", None),
        e(
            "POST",
            "/api/v1/commuters/import/preview",
            "registry",
            "/api/v1/commuters/import/preview",
            Some(json!({"csv": commuters_csv.clone()})),
        ),
        e(
            "POST",
            "/api/v1/commuters/import",
            "registry",
            "/api/v1/commuters/import",
            Some(json!({"csv": commuters_csv})),
        ),
        e(
            "POST",
            "/api/v1/people/codes/preview",
            "health",
            "/api/v1/people/codes/preview",
            Some(json!({"csv": colours_csv.clone()})),
        ),
        e("POST", "/api/v1/people/codes", "health", "/api/v1/people/codes", Some(json!({"csv": colours_csv}))),
        Example {
            param: Some(("pool_id", "POOL-1")),
            ..e(
                "POST",
                "/api/v1/pools/{pool_id}/result",
                "lab",
                "/api/v1/pools/POOL-1/result",
                Some(json!({"lab": "SA-JINGHA-XIANGHE", "result": "negative"})),
            )
        },
        // Delivery: alerts, their stream, webhooks, leases.
        e("GET", "/api/v1/alerts", "health", "/api/v1/alerts?status=open&limit=10", None),
        e("GET", "/api/v1/alerts/stream", "health", "/api/v1/alerts/stream", None),
        Example { param: Some(("id", "1")), ..e("GET", "/api/v1/alerts/{id}", "health", "/api/v1/alerts/1", None) },
        Example {
            param: Some(("id", "1")),
            ..e("POST", "/api/v1/alerts/{id}/acknowledge", "health", "/api/v1/alerts/1/acknowledge", None)
        },
        Example {
            param: Some(("id", "1")),
            ..e(
                "POST",
                "/api/v1/alerts/{id}/resolve",
                "health",
                "/api/v1/alerts/1/resolve",
                Some(json!({"outcome": "isolated at home"})),
            )
        },
        e(
            "POST",
            "/api/v1/webhooks",
            "admin",
            "/api/v1/webhooks",
            Some(json!({"url": "https://hooks.example/tongxing", "events": ["alert.raised"]})),
        ),
        e("GET", "/api/v1/webhooks", "admin", "/api/v1/webhooks", None),
        Example {
            param: Some(("id", "1")),
            ..e("POST", "/api/v1/webhooks/{id}/rotate", "admin", "/api/v1/webhooks/1/rotate", None)
        },
        Example {
            param: Some(("id", "1")),
            ..e("POST", "/api/v1/webhooks/{id}/disable", "admin", "/api/v1/webhooks/1/disable", None)
        },
        e("GET", "/api/v1/ops/leases", "admin", "/api/v1/ops/leases", None),
        // Big data.
        e(
            "GET",
            "/api/v1/analytics/flows",
            "analyst",
            &format!(
                "/api/v1/analytics/flows?grain=1h&rows=checkpoint&columns=verdict&since={}&who=visitor",
                urlencode(&since)
            ),
            None,
        ),
        e(
            "GET",
            "/api/v1/analytics/profile",
            "analyst",
            "/api/v1/analytics/profile?date=2021-11-20&checkpoint=CP1",
            None,
        ),
        e("GET", "/api/v1/analytics/shortcuts", "analyst", "/api/v1/analytics/shortcuts?format=csv", None),
        e("GET", "/api/v1/analytics/demand", "analyst", "/api/v1/analytics/demand?format=json", None),
        e("GET", "/api/v1/analytics/warnings", "health", "/api/v1/analytics/warnings?status=open", None),
        e(
            "POST",
            "/api/v1/analytics/entries",
            "health",
            "/api/v1/analytics/entries",
            Some(json!({"checkpoint": "CP1", "purpose": "surge review", "verdict": "deny", "since": since})),
        ),
        e("GET", "/api/v1/analytics/places", "admin", "/api/v1/analytics/places", None),
        e(
            "POST",
            "/api/v1/analytics/places",
            "admin",
            "/api/v1/analytics/places",
            Some(
                json!({"places": [{"kind": "checkpoint", "id": "CP1", "name": "京哈高速检查站", "lat": 39.9, "lon": 116.93}]}),
            ),
        ),
        e("GET", "/api/v1/openapi.json", "admin", "/api/v1/openapi.json", None),
        e("GET", "/healthz", "admin", "/healthz", None),
        e("GET", "/metrics", "admin", "/metrics", None),
    ]
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

/// What the system holds: any refused request must leave it as it was.
fn counts(app: &App) -> Value {
    let overview = app.get("analyst", "/api/v1/stats/overview");
    assert_eq!(overview.status, 200);
    let policies = app.get("health", "/api/v1/policies").body.as_array().unwrap().len();
    let audit = app.get("health", "/api/v1/policies/audit").body.as_array().unwrap().len();
    json!({"overview": overview.body, "policies": policies, "audit": audit})
}

/// Every string inside `v` (object values and array items, recursively), as (path, pointer).
/// `top_only` limits the walk to the first level (a rule set's own fields).
fn strings(v: &Value, path: &str, pointer: &str, out: &mut Vec<(String, String)>, top_only: bool) {
    match v {
        Value::String(_) => out.push((path.to_string(), pointer.to_string())),
        Value::Object(m) if !top_only || pointer.is_empty() => {
            for (k, x) in m {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                strings(x, &p, &format!("{pointer}/{k}"), out, top_only);
            }
        }
        Value::Array(items) if !top_only => {
            for (i, x) in items.iter().enumerate() {
                strings(x, &format!("{path}[{i}]"), &format!("{pointer}/{i}"), out, top_only);
            }
        }
        _ => {}
    }
}

/// Asserts a refusal: 4xx, problem+json, a short detail, and (when given) the field.
fn refused(what: &str, r: &RawResp, field: Option<&str>) {
    assert!(
        (400..500).contains(&r.status),
        "{what}: status {} {}",
        r.status,
        r.text.chars().take(300).collect::<String>()
    );
    assert_eq!(r.header("content-type"), ["application/problem+json"], "{what}");
    let detail = r.body["detail"].as_str().unwrap_or_else(|| panic!("{what}: no detail in {}", r.text));
    assert!(detail.len() < 1024, "{what}: detail of {} bytes", detail.len());
    assert!(r.text.len() < 2048, "{what}: a problem of {} bytes", r.text.len());
    if let Some(field) = field {
        assert_eq!(r.body["field"].as_str(), Some(field), "{what}: {}", r.text);
    }
}

/// A batch row refused: 200, every row rejected, the first naming the field.
fn row_refused(what: &str, r: &RawResp, field: &str) {
    if r.status != 200 {
        return refused(what, r, Some(field));
    }
    assert_eq!(r.body["accepted"], 0, "{what}: {}", r.text);
    let rejected = &r.body["rejected"][0];
    assert_eq!(rejected["field"].as_str(), Some(field), "{what}: {}", r.text);
    assert!(rejected["reason"].as_str().unwrap().len() < 1024, "{what}");
}

both!(fn every_route_refuses_every_class_of_bad_input(b) {
    let app = App::spawn(b);
    app.checkpoint("CP1", "京哈高速");
    let doc: Value = app.call("GET", "/api/v1/openapi.json", None, None).body;
    let examples = examples(&app);
    // Every documented route has an example, and every example is a documented route.
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    for (method, path) in &documented {
        assert!(
            examples.iter().any(|e| e.method == method && e.template == path),
            "{method} {path} is documented but has no example here: add one"
        );
    }
    assert_eq!(documented.len(), examples.len());
    let before = counts(&app);

    for ex in &examples {
        let token = Some(app.tokens[ex.role].as_str());
        let name = format!("{} {}", ex.method, ex.template);
        let send = |body: &Value| {
            app.raw(ex.method, &ex.path, token, Some("application/json"), serde_json::to_vec(body).unwrap().as_slice())
        };

        // A method the route does not serve: 405 with Allow naming those it does.
        let served: Vec<String> =
            doc["paths"][ex.template].as_object().unwrap().keys().map(|m| m.to_uppercase()).collect();
        let r = app.raw("DELETE", &ex.path, token, None, b"");
        refused(&format!("{name}: DELETE"), &r, None);
        assert_eq!(r.status, 405, "{name}");
        let allow = r.header("allow").join(",");
        for m in &served {
            assert!(allow.contains(m.as_str()), "{name}: Allow {allow:?} lacks {m}");
        }

        // Bad UTF-8 in the path: in a parameter it is named; elsewhere the route does not exist.
        let bad_path = match ex.param {
            Some((_, value)) => ex.path.replacen(&format!("/{value}/"), "/%FF%FE/", 1).replacen(
                &format!("/{value}"),
                "/%FF%FE",
                usize::from(!ex.path.contains(&format!("/{value}/"))),
            ),
            None => format!("{}%FF", ex.path.split('?').next().unwrap()),
        };
        let r = app.raw(ex.method, &bad_path, token, ex.body.as_ref().map(|_| "application/json"),
            ex.body.as_ref().map(|b| serde_json::to_vec(b).unwrap()).unwrap_or_default().as_slice());
        refused(&format!("{name}: bad UTF-8 in the path"), &r, ex.param.map(|(p, _)| p));

        // A bad query: an unknown parameter is refused; so is a bad value of a known one.
        let sep = if ex.path.contains('?') { '&' } else { '?' };
        let r = app.raw(ex.method, &format!("{}{sep}zzz_unknown=1", ex.path), token,
            ex.body.as_ref().map(|_| "application/json"),
            ex.body.as_ref().map(|b| serde_json::to_vec(b).unwrap()).unwrap_or_default().as_slice());
        refused(&format!("{name}: unknown query parameter"), &r, Some("zzz_unknown"));
        let params: Vec<&str> = doc["paths"][ex.template][ex.method.to_lowercase()]["parameters"]
            .as_array().into_iter().flatten().filter(|p| p["in"] == "query").map(|p| p["name"].as_str().unwrap()).collect();
        for p in &params {
            for bad in ["abc", "1.5", "99999999999999999999999", "2021-13-45T99:00:00Z"] {
                let r = app.raw(ex.method, &format!("{}?{p}={bad}", ex.path.split('?').next().unwrap()), token, None, b"");
                refused(&format!("{name}: {p}={bad}"), &r, Some(p));
            }
            let r = app.raw(ex.method, &format!("{}?{p}=1&{p}=2", ex.path.split('?').next().unwrap()), token, None, b"");
            refused(&format!("{name}: {p} twice"), &r, Some(p));
        }

        let Some(body) = &ex.body else { continue };
        // Not JSON; the wrong content type; over the size limit.
        let r = app.raw(ex.method, &ex.path, token, Some("application/json"), b"{\"unterminated");
        refused(&format!("{name}: not JSON"), &r, Some("body"));
        let r = app.raw(ex.method, &ex.path, token, Some("text/plain"), serde_json::to_vec(body).unwrap().as_slice());
        refused(&format!("{name}: text/plain"), &r, Some("content-type"));
        assert_eq!(r.status, 415, "{name}");
        let r = app.raw(ex.method, &ex.path, token, None, serde_json::to_vec(body).unwrap().as_slice());
        refused(&format!("{name}: no content type"), &r, Some("content-type"));
        let mut huge = b"{\"x\": \"".to_vec();
        huge.resize(33 * 1024 * 1024, b'a');
        huge.extend_from_slice(b"\"}");
        let r = app.raw(ex.method, &ex.path, token, Some("application/json"), &huge);
        refused(&format!("{name}: 33 MiB"), &r, Some("body"));
        assert_eq!(r.status, 413, "{name}");

        // An unknown field, at the top.
        let mut v = body.clone();
        v.as_object_mut().unwrap().insert("zzz_unknown".into(), json!(true));
        refused(&format!("{name}: unknown field"), &send(&v), Some("zzz_unknown"));
        let r = send(&v);
        assert!(r.body["detail"].as_str().unwrap().contains("accepted"), "{name}: {}", r.text);

        // Each string field: too long, a NUL, a control character, the wrong JSON type.
        let top_only = ex.template == "/api/v1/policies";
        let mut fields = Vec::new();
        strings(body, "", "", &mut fields, top_only);
        if ex.template == "/api/v1/policies/dry-run" {
            fields.retain(|(p, _)| !p.starts_with("policy.") || p.matches('.').count() == 1);
        }
        for (path, pointer) in &fields {
            let original = body.pointer(pointer).unwrap().as_str().unwrap().to_string();
            // Within the body limit, far over any field's: 1 MB where bodies may be 4 MB.
            let long = if ["/api/v1/policies", "/api/v1/policies/dry-run"].contains(&ex.template) { 1 << 20 } else { 10_000 };
            for (class, bad) in [
                ("too long", json!("9".repeat(long))),
                ("NUL", json!(format!("{original}\u{0}"))),
                ("control", json!(format!("a\u{7}b{original}"))),
                ("wrong type", json!({"an": "object"})),
            ] {
                let mut v = body.clone();
                *v.pointer_mut(pointer).unwrap() = bad;
                let r = send(&v);
                let what = format!("{name}: {path} {class}");
                if ex.batch {
                    if class == "wrong type" {
                        refused(&what, &r, Some(path));
                    } else {
                        row_refused(&what, &r, path);
                    }
                } else {
                    refused(&what, &r, Some(path));
                }
            }
        }
    }
    assert_eq!(counts(&app), before, "a refused request changed what is stored");
    // And the service still answers a check.
    assert_eq!(app.verdict("CP1", &nth_id("110105", 12)).0, "deny");
});

both!(fn unknown_routes_are_problems(b) {
    let app = App::spawn(b);
    // ("/" is the web pages' landing page, not an API route.)
    for path in ["/api/v1/nope", "/api/v2/checks", "/nope", "/api/v1/checks/%FF"] {
        let r = app.raw("GET", path, Some(&app.tokens["admin"]), None, b"");
        refused(path, &r, None);
        assert_eq!(r.status, 404, "{path}");
    }
});

both!(fn answers_and_messages_use_beijing_time(b) {
    let app = App::spawn(b);
    app.checkpoint("CP1", "京哈高速");
    let doc = nth_id("110105", 21);
    app.negative(&doc, Duration::hours(1));
    let r = app.check("CP1", &doc);
    assert!(r.body["checked_at"].as_str().unwrap().ends_with("+08:00"), "{:?}", r.body);
    let r = app.post("health", "/api/v1/people/lookup", json!({"document_number": doc, "purpose": "time zone"}));
    assert!(r.body["samples"][0]["sampled_at"].as_str().unwrap().ends_with("+08:00"), "{:?}", r.body);
    let r = app.get("admin", "/api/v1/entries");
    assert!(r.body[0]["checked_at"].as_str().unwrap().ends_with("+08:00"), "{:?}", r.body);
    // A time in the future, sent in UTC, is refused in Beijing time.
    let r = app.result("LAB1", "FUT", &doc, Utc::now() + Duration::hours(3), "H1", "hospital", "negative");
    assert_eq!(r.status, 422);
    let detail = r.body["detail"].as_str().unwrap();
    assert!(detail.contains("+08:00 is in the future") && !detail.contains("UTC"), "{detail}");
});

both!(fn refusals_name_no_internal_type(b) {
    let app = App::spawn(b);
    let r = app.get("lab", "/api/v1/entries");
    assert_eq!(r.status, 403);
    assert_eq!(r.body["detail"], "the role 'lab' may not read entry events");
});

// A checkpoint changed through one server reaches another on the same database.
both!(fn checkpoints_reach_every_server(b) {
    let app = App::spawn(b);
    app.checkpoint("CP1", "京哈高速");
    let second = Server::start_with(&app.db, &["--reload-every", "1"]);
    let doc = nth_id("110105", 31);
    let check = |base: &str| {
        let r = ureq::post(&format!("{base}/api/v1/checks"))
            .set("Authorization", &format!("Bearer {}", app.tokens["officer"]))
            .send_json(json!({"checkpoint_id": "CP1", "document_number": doc}))
            .unwrap();
        r.into_json::<Value>().unwrap()
    };
    // The second server caches CP1 on the road 京哈高速: its advice names that road's test point.
    let before = check(&second.base);
    assert!(before["reasons"][0]["message_zh"].as_str().unwrap().contains("京哈高速香河"), "{before}");
    // Moved to another road through the first server; the second follows within its interval.
    app.checkpoint("CP1", "京沪高速");
    let mut after = Value::Null;
    for _ in 0..50 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        after = check(&second.base);
        if after["reasons"][0]["message_zh"].as_str().unwrap().contains("京沪高速徐官屯") {
            break;
        }
    }
    assert!(after["reasons"][0]["message_zh"].as_str().unwrap().contains("京沪高速徐官屯"), "{after}");
});

/// The served document passes a standard OpenAPI validator (openapi-spec-validator, from
/// PyPI; `scripts/test` installs it). Without the validator this test fails: CI has it.
#[test]
fn the_openapi_document_is_valid() {
    let dir = std::env::temp_dir().join(format!("tongxing-openapi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&tongxing_http::openapi_document()).unwrap()).unwrap();
    let out = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .expect("python3 runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        !text.contains("No module named"),
        "\n*** the OpenAPI validator is missing: python3 -m pip install openapi-spec-validator (scripts/test does) ***\n"
    );
    assert!(out.status.success() && text.contains(": OK"), "the OpenAPI document is invalid:\n{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
