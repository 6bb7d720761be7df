//! The browser harness: Debian's `chromium`, headless, driven through `chromedriver` (WebDriver)
//! with fantoccini, against the real server. Each test gets a browser of its own (a fresh
//! profile, so fresh cookies). A failing step keeps a screenshot under
//! `target/browser-failures/` and prints its path; `axe()` runs axe-core (from npm, installed
//! by scripts/test) on the page and fails on any serious or critical violation.
//!
//! Without chromium, chromedriver or axe-core these tests FAIL, naming what is missing: CI
//! always has them (scripts/test installs them), and a skipped browser test would hide a
//! broken page.
//!
//! Waiting is bounded (`WAIT`) and polls; no test asserts how long anything took.

use std::net::TcpListener;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// The longest wait for something to appear on a page.
pub const WAIT: Duration = Duration::from_secs(20);

fn chromium() -> String {
    std::env::var("TONGXING_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

fn chromedriver() -> String {
    std::env::var("TONGXING_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into())
}

/// axe-core's script, as scripts/test installs it.
fn axe_source() -> String {
    let path = std::env::var("TONGXING_AXE_JS").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
        format!("{home}/.cache/tongxing/axe/node_modules/axe-core/axe.min.js")
    });
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "\n\n*** the browser tests need axe-core at {path} ({e}) ***\n\
             *** `bash scripts/test` installs it with npm (or set TONGXING_AXE_JS). ***\n\n"
        )
    })
}

fn target_dir(sub: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target").join(sub);
    std::fs::create_dir_all(&dir).unwrap();
    dir.canonicalize().unwrap()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A headless browser on the server at `base`.
pub struct Browser {
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
    profile: PathBuf,
    pub base: String,
    test: String,
    steps: usize,
}

impl Browser {
    /// Starts chromedriver and a headless chromium (360 × 780, a phone), for the test `test`.
    pub fn start(test: &str, base: &str) -> Browser {
        Browser::start_with(test, base, &[])
    }

    /// With more command-line flags for chromium (the officer's tests give it a fake camera:
    /// `--use-file-for-fake-video-capture=FILE`).
    pub fn start_with(test: &str, base: &str, flags: &[String]) -> Browser {
        for (what, path) in [("chromium", chromium()), ("chromedriver", chromedriver())] {
            assert!(
                std::path::Path::new(&path).exists(),
                "\n\n*** the browser tests need {what} at {path} ***\n\
                 *** `bash scripts/test` installs Debian's chromium and chromium-driver with apt. ***\n\n"
            );
        }
        let port = free_port();
        let driver = Command::new(chromedriver())
            .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let profile = std::env::temp_dir().join(format!("tongxing-chromium-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        let args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-extensions".into(),
            "--mute-audio".into(),
            "--autoplay-policy=no-user-gesture-required".into(),
            "--window-size=360,780".into(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let args: Vec<String> = args.into_iter().chain(flags.iter().cloned()).collect();
        let caps: serde_json::Map<String, Value> = serde_json::from_value(json!({
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium(), "args": args},
        }))
        .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let client = rt.block_on(async {
            // chromedriver needs a moment to listen.
            let deadline = Instant::now() + WAIT;
            loop {
                let mut builder = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
                builder.capabilities(caps.clone());
                match builder.connect(&url).await {
                    Ok(c) => break c,
                    Err(e) if Instant::now() < deadline => {
                        let _ = e;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => panic!("chromedriver did not start a browser: {e}"),
                }
            }
        });
        Browser { rt, client: Some(client), driver, profile, base: base.to_string(), test: test.to_string(), steps: 0 }
    }

    fn c(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    /// Runs one named step; if it fails, keeps a screenshot and prints its path, then fails.
    pub fn step<T>(&mut self, name: &str, f: impl FnOnce(&Browser) -> T) -> T {
        self.steps += 1;
        let n = self.steps;
        match catch_unwind(AssertUnwindSafe(|| f(self))) {
            Ok(v) => v,
            Err(panic) => {
                let slug: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
                let file = target_dir("browser-failures").join(format!("{}-{n:02}-{slug}.png", self.test));
                match self.rt.block_on(self.c().screenshot()) {
                    Ok(png) => {
                        std::fs::write(&file, png).unwrap();
                        eprintln!("browser step '{name}' of {} failed: screenshot {}", self.test, file.display());
                    }
                    Err(e) => eprintln!("browser step '{name}' of {} failed; no screenshot: {e}", self.test),
                }
                if let Ok(url) = self.rt.block_on(self.c().current_url()) {
                    eprintln!("  at {url}");
                }
                resume_unwind(panic)
            }
        }
    }

    /// Saves a screenshot under `target/browser-shots/` when TONGXING_SHOTS is set (to look at
    /// the pages), and returns its path.
    pub fn shot(&self, name: &str) -> Option<PathBuf> {
        std::env::var("TONGXING_SHOTS").ok()?;
        let file = target_dir("browser-shots").join(format!("{}-{name}.png", self.test));
        // The whole page: the window made as tall as the page for the picture.
        let v = self.js("return [window.innerWidth, window.innerHeight, document.documentElement.scrollHeight];");
        let (w, h, full) =
            (v[0].as_u64().unwrap() as u32, v[1].as_u64().unwrap() as u32, v[2].as_u64().unwrap() as u32);
        self.rt.block_on(self.c().set_window_size(w, full.clamp(h, 4000))).unwrap();
        std::fs::write(&file, self.rt.block_on(self.c().screenshot()).unwrap()).unwrap();
        self.rt.block_on(self.c().set_window_size(w, h)).unwrap();
        Some(file)
    }

    pub fn goto(&self, path: &str) {
        self.rt.block_on(self.c().goto(&format!("{}{path}", self.base))).unwrap();
    }

    /// The path (and query) of the page shown.
    pub fn path(&self) -> String {
        let url = self.rt.block_on(self.c().current_url()).unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// The element, waiting for it to appear.
    pub fn find(&self, css: &str) -> Element {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.rt.block_on(self.c().find(Locator::Css(css))) {
                Ok(e) => return e,
                Err(e) if Instant::now() > deadline => panic!("no element {css} on {}: {e}", self.path()),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Whether an element is on the page now (no waiting).
    pub fn exists(&self, css: &str) -> bool {
        self.rt.block_on(self.c().find_all(Locator::Css(css))).map(|v| !v.is_empty()).unwrap_or(false)
    }

    pub fn click(&self, css: &str) {
        let e = self.find(css);
        self.rt.block_on(e.click()).unwrap_or_else(|err| panic!("clicking {css}: {err}"));
    }

    /// Types into a field (emptied first).
    pub fn fill(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.rt.block_on(async {
            e.clear().await.unwrap();
            e.send_keys(text).await.unwrap();
        });
    }

    /// Picks an option of a select by its value.
    pub fn select(&self, css: &str, value: &str) {
        let e = self.find(css);
        self.rt.block_on(e.select_by_value(value)).unwrap_or_else(|err| panic!("selecting {value} in {css}: {err}"));
    }

    pub fn text(&self, css: &str) -> String {
        let e = self.find(css);
        self.rt.block_on(e.text()).unwrap()
    }

    pub fn attr(&self, css: &str, name: &str) -> Option<String> {
        let e = self.find(css);
        self.rt.block_on(e.attr(name)).unwrap()
    }

    /// Waits until the element's text contains `needle`; returns the text.
    pub fn wait_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let text =
                self.rt.block_on(async { self.c().find(Locator::Css(css)).await?.text().await }).unwrap_or_default();
            if text.contains(needle) {
                return text;
            }
            if Instant::now() > deadline {
                panic!("{css} on {} never said {needle:?}; it says {text:?}", self.path());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until `js` (an expression) is true.
    pub fn wait_js(&self, js: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            if self.js(&format!("return !!({js});")) == json!(true) {
                return;
            }
            if Instant::now() > deadline {
                panic!("on {}, {js} never became true", self.path());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn js(&self, script: &str) -> Value {
        self.rt.block_on(self.c().execute(script, vec![])).unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// Resizes the window (the CSS viewport is as wide as the window: headless).
    pub fn size(&self, width: u32, height: u32) {
        self.rt.block_on(self.c().set_window_size(width, height)).unwrap();
        self.wait_js(&format!("window.innerWidth === {width}"));
    }

    /// The page does not scroll sideways (at the window's width).
    pub fn no_horizontal_scroll(&self) {
        let v = self.js("return [document.documentElement.scrollWidth, window.innerWidth];");
        let (sw, w) = (v[0].as_i64().unwrap(), v[1].as_i64().unwrap());
        assert!(sw <= w, "{}: the page is {sw} px wide in a {w} px window: it scrolls sideways", self.path());
    }

    /// axe-core on the page: no serious or critical violation.
    pub fn axe(&self) {
        let src = axe_source();
        self.js(&format!("{src}\n;return typeof window.axe;"));
        let out = self
            .rt
            .block_on(self.c().execute_async(
                "const done = arguments[arguments.length - 1];
                 window.axe.run(document, {resultTypes: ['violations']}).then(r => done(JSON.stringify(
                   r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                     .map(v => ({id: v.id, impact: v.impact, help: v.help,
                                 nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))})))),
                   e => done('axe failed: ' + e));",
                vec![],
            ))
            .unwrap();
        let text = out.as_str().unwrap_or("").to_string();
        let found: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{text}"));
        assert_eq!(found, json!([]), "axe-core: serious or critical violations on {}", self.path());
    }

    /// A cookie's value (HttpOnly ones too: WebDriver sees them).
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.rt.block_on(self.c().get_named_cookie(name)).ok().map(|c| c.value().to_string())
    }

    /// Sets a cookie on the site (the browser must be on a page of it).
    pub fn add_cookie(&self, name: &str, value: &str) {
        let mut c = fantoccini::cookies::Cookie::new(name.to_string(), value.to_string());
        c.set_path("/");
        c.set_domain("127.0.0.1");
        c.set_http_only(true);
        c.set_secure(true);
        self.rt.block_on(self.c().add_cookie(c)).unwrap();
    }

    /// A page in both languages: axe-core, and no sideways scrolling at 360 px and at 1280 px
    /// (with TONGXING_SHOTS set, a picture of each).
    pub fn check_page(&mut self, path: &str) {
        let slug = path.replace(['/', '?', '=', '&'], "_");
        for lang in ["en", "zh-CN"] {
            self.step(&format!("{path} in {lang}: axe, widths"), |b| {
                b.goto(&format!("{path}{}lang={lang}", if path.contains('?') { '&' } else { '?' }));
                b.wait_js(&format!("document.documentElement.lang === '{lang}'"));
                b.axe();
                b.no_horizontal_scroll();
                b.size(1280, 900);
                b.no_horizontal_scroll();
                b.shot(&format!("{slug}-{lang}-desktop"));
                b.size(360, 780);
                b.shot(&format!("{slug}-{lang}-360"));
            });
        }
    }

    /// Signs in on the staff's sign-in page with an API token; ends on the role's page.
    pub fn staff_sign_in(&mut self, token: &str) {
        self.step("staff sign-in", |b| {
            b.goto("/sign-in");
            b.fill("#token", token);
            b.click("button[type=submit].primary");
            b.wait_js("location.pathname !== '/sign-in'");
        });
    }

    /// Bytes transferred to show the page (the document and every resource it loaded), as the
    /// browser's Resource Timing reports them.
    pub fn transferred(&self) -> i64 {
        self.js("const n = performance.getEntriesByType('navigation')[0];
             return performance.getEntriesByType('resource').reduce((s, r) => s + r.transferSize, n.transferSize);")
            .as_i64()
            .unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            let _ = self.rt.block_on(c.close());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
