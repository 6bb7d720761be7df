//! The web foundation over plain HTTP (no browser): security headers on every page, assets by
//! hashed name with their cache, the language switch, staff sign-in with an API token into a
//! cookie session, CSRF on every form, and that the pages stay out of the API's contract.
//! `Visitor` is a small cookie-keeping client the other web tests use too.

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::both;
use crate::helpers::*;

/// An answer to a page request.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Page {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie")).map(|(_, v)| v.as_str()).collect()
    }
    /// The value of the first form's CSRF field.
    pub fn csrf(&self) -> String {
        let at = self.body.find("name=\"csrf\" value=\"").unwrap_or_else(|| panic!("no CSRF field in {}", self.body));
        let rest = &self.body[at + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').unwrap()].to_string()
    }
}

/// A browser-like client without JavaScript: keeps cookies, follows no redirect.
pub struct Visitor {
    base: String,
    agent: ureq::Agent,
    pub cookies: RefCell<BTreeMap<String, String>>,
}

impl Visitor {
    pub fn new(app: &App) -> Visitor {
        Visitor {
            base: app.server.base.clone(),
            agent: ureq::AgentBuilder::new().redirects(0).build(),
            cookies: RefCell::new(BTreeMap::new()),
        }
    }

    fn send(&self, req: ureq::Request, form: Option<&[(&str, &str)]>) -> Page {
        let cookie: Vec<String> = self.cookies.borrow().iter().map(|(k, v)| format!("{k}={v}")).collect();
        let req = if cookie.is_empty() { req } else { req.set("Cookie", &cookie.join("; ")) };
        let res = match form {
            Some(pairs) => req.send_form(pairs),
            None => req.call(),
        };
        let resp = match res {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{e}"),
        };
        let status = resp.status();
        let headers: Vec<(String, String)> = resp
            .headers_names()
            .iter()
            .flat_map(|n| resp.all(n).into_iter().map(move |v| (n.clone(), v.to_string())))
            .collect();
        let body = resp.into_string().unwrap_or_default();
        let page = Page { status, headers, body };
        for c in page.set_cookies() {
            let (kv, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = kv.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.cookies.borrow_mut().remove(k);
            } else {
                self.cookies.borrow_mut().insert(k.to_string(), v.to_string());
            }
        }
        page
    }

    pub fn get(&self, path: &str) -> Page {
        self.send(self.agent.get(&format!("{}{path}", self.base)), None)
    }

    pub fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        self.send(self.agent.post(&format!("{}{path}", self.base)), Some(form))
    }

    pub fn post_with(&self, path: &str, header: (&str, &str), form: &[(&str, &str)]) -> Page {
        self.send(self.agent.post(&format!("{}{path}", self.base)).set(header.0, header.1), Some(form))
    }

    /// Signs in with an API token on the staff sign-in page.
    pub fn sign_in(&self, token: &str) -> Page {
        let csrf = self.get("/sign-in").csrf();
        self.post("/sign-in", &[("csrf", &csrf), ("token", token), ("next", "")])
    }
}

/// The links to assets a page names.
fn asset_links(body: &str) -> Vec<String> {
    body.match_indices("/assets/").map(|(i, _)| body[i..].split('"').next().unwrap().to_string()).collect()
}

both!(fn pages_carry_a_strict_policy_and_assets_are_cached_by_hash(b) {
    let app = App::spawn_builtin(b);
    let v = Visitor::new(&app);
    for path in ["/", "/sign-in", "/citizen/sign-in"] {
        let p = v.get(path);
        assert_eq!(p.status, 200, "{path}: {p:?}");
        assert!(p.header("content-type").unwrap().starts_with("text/html"), "{path}");
        let csp = p.header("content-security-policy").unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"), "{csp}");
        assert!(!csp.contains("unsafe-inline") && !csp.contains("http"), "{csp}");
        assert_eq!(p.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(p.header("x-frame-options"), Some("DENY"));
        assert_eq!(p.header("cache-control"), Some("no-store"));
        // Nothing inline for the policy to refuse, nothing from another origin.
        assert!(!p.body.contains("<script>") && !p.body.contains("<style") && !p.body.contains("style=\""), "{path}");
        assert!(!p.body.contains("http://") && !p.body.contains("https://"), "{path}");
    }
    let home = v.get("/");
    let links = asset_links(&home.body);
    assert!(links.iter().any(|l| l.ends_with(".css")) && links.iter().any(|l| l.ends_with(".js")), "{links:?}");
    for link in &links {
        let a = v.get(link);
        assert_eq!(a.status, 200, "{link}");
        assert_eq!(a.header("cache-control"), Some("public, max-age=31536000, immutable"), "{link}");
        let etag = a.header("etag").unwrap().to_string();
        let again = v.send(v.agent.get(&format!("{}{link}", v.base)).set("If-None-Match", &etag), None);
        assert_eq!(again.status, 304, "{link}");
    }
    let css = links.iter().find(|l| l.ends_with(".css")).unwrap();
    assert_eq!(v.get(css).header("content-type"), Some("text/css; charset=utf-8"));
    // An older build's hash gets today's file, cached briefly; an unknown name is a 404.
    let stale = v.get("/assets/app.00000000.css");
    assert_eq!((stale.status, stale.header("cache-control")), (200, Some("public, max-age=300")));
    assert_eq!(v.get("/assets/nothing.css").status, 404);
    let wav = v.get(&links.iter().find(|l| l.contains("favicon")).unwrap().replace("favicon", "x"));
    assert_eq!(wav.status, 404);
    // The pages are not API routes: the OpenAPI document lists none of them.
    let doc = app.call("GET", "/api/v1/openapi.json", None, None).body;
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    assert!(paths.iter().all(|p| p.starts_with("/api/v1/") || *p == "/healthz" || *p == "/metrics"), "{paths:?}");
});

both!(fn chinese_by_default_english_one_tap_away(b) {
    let app = App::spawn_builtin(b);
    let v = Visitor::new(&app);
    let p = v.get("/");
    assert!(p.body.contains("<html lang=\"zh-CN\">") && p.body.contains("我的通行码"), "{}", p.body);
    assert!(p.body.contains("href=\"/?lang=en\""));
    let p = v.get("/?lang=en");
    assert!(p.body.contains("<html lang=\"en\">") && p.body.contains("My pass"));
    assert!(p.set_cookies().iter().any(|c| c.starts_with("tx_lang=en;")));
    // Remembered by the cookie, and switched back the same way.
    assert!(v.get("/sign-in").body.contains("<html lang=\"en\">"));
    assert!(v.get("/sign-in?lang=zh-CN").body.contains("<html lang=\"zh-CN\">"));
    assert!(v.get("/").body.contains("<html lang=\"zh-CN\">"));
    // An unknown language is ignored, not an error.
    assert_eq!(v.get("/?lang=xx").status, 200);
});

both!(fn staff_sign_in_with_their_token_into_a_strict_cookie(b) {
    let app = App::spawn_builtin(b);
    let v = Visitor::new(&app);
    let form = v.get("/sign-in");
    let pre = v.cookies.borrow()["tx_pre"].clone();
    assert!(form.set_cookies().iter().any(|c| c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Secure")));
    let csrf = form.csrf();
    assert_eq!(csrf, pre);
    // No token, a wrong token, another origin: refused, and no session.
    let p = v.post("/sign-in", &[("token", &app.tokens["registry"]), ("next", "")]);
    assert_eq!(p.status, 403, "{p:?}");
    let p = v.post("/sign-in", &[("csrf", "0123456789abcdef0123456789abcdef"), ("token", &app.tokens["registry"])]);
    assert_eq!(p.status, 403);
    let p = v.post_with("/sign-in", ("Origin", "https://evil.example"), &[("csrf", &csrf), ("token", &app.tokens["registry"])]);
    assert_eq!(p.status, 403);
    assert!(!v.cookies.borrow().contains_key("tx_session"));
    let p = v.post("/sign-in", &[("csrf", &csrf), ("token", "tx_not-a-token")]);
    assert_eq!(p.status, 422);
    assert!(p.body.contains("令牌无效"), "{}", p.body);
    let p = v.post("/sign-in", &[("csrf", &csrf), ("token", &app.tokens["citizen"])]);
    assert_eq!(p.status, 422);
    let p = v.post("/sign-in", &[("csrf", &csrf), ("token", &app.tokens["registry"]), ("extra", "1")]);
    assert_eq!(p.status, 422);
    assert!(p.body.contains("extra"), "the refusal names the unknown field");
    assert!(!v.cookies.borrow().contains_key("tx_session"));
    // The registry officer's token: a session cookie holding it, then the registry's page.
    let p = v.post("/sign-in", &[("csrf", &csrf), ("token", &app.tokens["registry"]), ("next", "")]);
    assert_eq!((p.status, p.header("location")), (303, Some("/registry")), "{p:?}");
    let session = p.set_cookies().into_iter().find(|c| c.starts_with("tx_session=")).unwrap().to_string();
    for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(session.contains(attr), "{session}");
    }
    // Signed in, forms carry the session's own token (not the pre-session one), and a `next`
    // elsewhere is not followed.
    let csrf2 = v.get("/").csrf();
    assert_ne!(csrf2, pre);
    let p = v.post("/sign-in", &[("csrf", &csrf2), ("token", &app.tokens["health"]), ("next", "//evil.example/")]);
    assert_eq!(p.header("location"), Some("/health"));
    // Signing out forgets the cookie; the old form token no longer works.
    let csrf3 = v.get("/").csrf();
    let p = v.post("/sign-out", &[("csrf", &csrf3)]);
    assert_eq!(p.status, 303);
    assert!(!v.cookies.borrow().contains_key("tx_session"));
    assert_eq!(v.post("/sign-out", &[("csrf", &csrf3)]).status, 403);
    // Signing in again, as the health authority, lands on its page.
    assert_eq!(v.sign_in(&app.tokens["health"]).header("location"), Some("/health"));
});

/// A server for the pages: keys (signed passes), one-time codes logged, the 2021 rules; and its
/// codes.
pub fn spawn_web(b: Backend) -> (App, Codes) {
    let db = TestDb::new(b);
    let tokens = db.tokens();
    let dir = db.dir.join("keys");
    let out =
        std::process::Command::new(BIN).args(["keys", "generate", "--dir", dir.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (server, codes) = Server::start_with_codes(&db, &["--keys", dir.to_str().unwrap()]);
    let app = App { server, tokens, db };
    app.use_2021_rules();
    (app, codes)
}

/// Registers a person with a phone and a name (as the registry does).
pub fn person(app: &App, doc: &str, phone: &str, name: &str) {
    let r = app.post(
        "registry",
        "/api/v1/people",
        serde_json::json!({"document_number": doc, "phone": phone, "name": name}),
    );
    assert_eq!(r.status, 201, "{r:?}");
}
