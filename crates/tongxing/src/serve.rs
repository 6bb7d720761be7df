//! `tongxing serve`: the API and the web pages on one address, until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use tongxing_http::AppState;
use tongxing_store::Store;

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the chosen one is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// sqlite://PATH (created if missing) or postgres://USER:PASS@HOST/DB.
    #[arg(long, default_value = crate::DEFAULT_DATABASE, env = "TONGXING_DATABASE")]
    database: String,
    /// A policy file, in either format (README.md, "Policy files: two formats"); repeatable.
    /// A rule set (CertLogic, as in crates/tongxing-rules/policies/) is published and activated
    /// at start-up, as POST /api/v1/policies and /activate do (audited as "serve --policy"): it
    /// then decides checks from its valid_from, on every server using this database. A legacy
    /// policy (as in crates/tongxing-domain/policies/: windows in hours and days) sets the facts'
    /// look-back and the commuter-application rules, beside the built-in one.
    #[arg(long)]
    policy: Vec<PathBuf>,
    /// Fill an empty database with a generated population and print one token per role.
    #[arg(long)]
    demo: bool,
    /// Seconds between reloads of what other servers may change in the shared database
    /// (activated rule sets, checkpoints).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    reload_every: u64,
    /// How citizens' one-time codes are sent: `log` (written to the log, for demos and tests
    /// only; the default with --demo), or an SMS gateway's http(s) URL, which receives
    /// POST {"phone": "...", "message": "..."} with `Authorization: Bearer $TONGXING_SMS_TOKEN`
    /// when that is set. Without it citizens cannot sign in on this server.
    #[arg(long, env = "TONGXING_OTP_SENDER")]
    otp_sender: Option<String>,
    /// The key folder that signs passes and lists (`tongxing keys generate`). Without it this
    /// server issues no signed passes. With --demo and no --keys, a folder beside the database
    /// (tongxing-keys) is made if missing.
    #[arg(long, env = "TONGXING_KEYS")]
    keys: Option<PathBuf>,
    /// The EU DCC trust list: the gateway's JSON of document signer certificates (an array of
    /// {kid, rawData}, or {"certificates": [...]}). With it a check accepts an EU test
    /// certificate (`dcc`) as evidence.
    #[arg(long, env = "TONGXING_DCC_TRUST")]
    dcc_trust: Option<PathBuf>,
    /// Seconds between two scans for commitment letters whose result is overdue.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    scan_every: u64,
    /// Seconds a lease lasts: a task that runs on one server at a time (the overdue scan, the
    /// webhook relay) moves to another server within this (and a fifth of it) when its server dies.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=600))]
    lease_ttl: u64,
    /// Take no part in running the webhook relay (other servers of the database do).
    #[arg(long)]
    no_relay: bool,
    /// The thresholds of early warnings and of the suppression of small counts: a JSON object
    /// (fields and defaults in README.md, "Big data"); missing fields keep their defaults.
    #[arg(long, env = "TONGXING_ANALYTICS")]
    analytics: Option<PathBuf>,
}

pub async fn run(args: ServeArgs) -> Result<()> {
    let crate::PolicyFiles { policies, rule_sets } = crate::load_policies(&args.policy)?;
    if args.demo {
        // On a store of its own, closed when filled: closing copies SQLite's write-ahead log into
        // the database and truncates it (the fill's many small transactions grow it to 150 MB).
        let filler =
            Store::connect(&args.database).await.with_context(|| format!("opening the database {}", args.database))?;
        crate::demo::fill_if_empty(&filler, &policies[0], &args.database).await?;
        filler.close().await;
    }
    let store =
        Store::connect(&args.database).await.with_context(|| format!("opening the database {}", args.database))?;
    for (rs, text) in &rule_sets {
        publish_rule_set(&store, rs, text).await?;
    }
    let mut app = tongxing_app::App::new(store.clone(), policies);
    if let Some(file) = &args.analytics {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let config = tongxing_domain::analytics::AnalyticsConfig::from_json(&text)
            .map_err(|e| anyhow::anyhow!("--analytics {}: {e}", file.display()))?;
        app = app.with_analytics(config);
    }
    match args.otp_sender.as_deref().or(args.demo.then_some("log")) {
        None => tracing::info!("no --otp-sender: citizens cannot sign in on this server"),
        Some("log") => {
            tracing::warn!(
                "one-time codes are written to the log, not sent (--otp-sender log): for demos and tests only"
            );
            app = app.with_code_sender(std::sync::Arc::new(tongxing_app::citizen::LogSender));
        }
        Some(url) => app = app.with_code_sender(std::sync::Arc::new(crate::sms::Gateway::new(url)?)),
    }
    let keys_dir = args.keys.clone().or_else(|| args.demo.then(|| crate::demo::keys_dir(&args.database)));
    if let Some(dir) = keys_dir {
        if args.demo && args.keys.is_none() && !dir.join("keys.json").exists() {
            crate::keys::generate(&dir, tongxing_pass::Algorithm::Es256, chrono::Utc::now())?;
            println!(
                "demo: pass keys made in {} (trust anchor: {})",
                dir.display(),
                dir.join("trust-anchor.pem").display()
            );
        }
        app = app.with_pass_keys(crate::keys::load(&dir, chrono::Utc::now())?);
    }
    if let Some(file) = &args.dcc_trust {
        let json = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let trust = tongxing_pass::hcert::DccTrustList::from_json(&json)
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        tracing::info!(signers = trust.len(), "EU DCC trust list loaded");
        app = app.with_dcc_trust(std::sync::Arc::new(trust));
    }
    let state = AppState::new(app);
    let rule_sets = state.app.reload().await.map_err(|e| anyhow::anyhow!("loading the published policies: {e}"))?;
    tracing::info!(rule_sets, "entry policies loaded");
    // Other servers may activate a policy or change a checkpoint: pick it up within the interval.
    let reloader = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(args.reload_every));
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = reloader.app.reload().await {
                tracing::warn!(error = %e, "reloading policies and checkpoints failed");
            }
        }
    });
    let scanner = state.app.clone();
    let revoker = state.app.clone();
    let analyst = state.app.clone();
    let feed = state.app.alert_feed().clone();
    // The API, and the web pages beside it (the pages are not API routes: the OpenAPI document
    // covers the API only).
    let app = tongxing_http::router_with(state, tongxing_web::pages());
    let listener =
        tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    // ---- Delivery (issue 11): tasks that run on one server at a time, each under its lease. ----
    let holder = tongxing_app::lease::holder_name(&addr.to_string());
    let ttl = std::time::Duration::from_secs(args.lease_ttl);
    // The overdue scan. Each commitment moves from pending to overdue once and its alert has a
    // dedup key, so a scan by a server that just lost the lease raises nothing twice.
    let (s, h, every) = (store.clone(), holder.clone(), std::time::Duration::from_secs(args.scan_every));
    tokio::spawn(async move {
        tongxing_app::lease::run_exclusive(s, "overdue-scan", h, ttl, every, move |_| {
            let scanner = scanner.clone();
            async move {
                match scanner.scan_overdue(chrono::Utc::now(), 1000).await? {
                    0 => {}
                    n => tracing::info!(alerts = n, "overdue commitments"),
                }
                Ok(())
            }
        })
        .await
    });
    // Revocations queued by changes made elsewhere (an import, a server without the pass keys):
    // listed within a second by the one server holding the lease.
    let (s, h, drainer) = (store.clone(), holder.clone(), revoker);
    tokio::spawn(async move {
        tongxing_app::lease::run_exclusive(
            s,
            "revocation-queue",
            h,
            ttl,
            std::time::Duration::from_secs(1),
            move |_| {
                let drainer = drainer.clone();
                async move {
                    match drainer.drain_revocation_queue().await? {
                        0 => {}
                        n => tracing::info!(revocations = n, "queued revocations listed"),
                    }
                    Ok(())
                }
            },
        )
        .await
    });
    // Big data (issue 13): the rollup job (flows, cloned codes, shortcuts) every second and the
    // periodic detectors, on one server at a time. The rollup's counts and its watermark move
    // in one transaction, so a server that loses the lease mid-pass counts nothing twice.
    // The rollup every second (its passes raise the cloned-code and shortcut warnings); the
    // periodic detectors and testing demand in a task and lease of their own, so that their
    // seconds of reading never delay the rollup.
    let (s, h, rollup) = (store.clone(), holder.clone(), analyst.clone());
    tokio::spawn(async move {
        tongxing_app::lease::run_exclusive(s, "analytics", h, ttl, std::time::Duration::from_secs(1), move |_| {
            let app = rollup.clone();
            async move {
                let raised = app.rollup(chrono::Utc::now(), 40).await?.alerts;
                if !raised.is_empty() {
                    tracing::info!(alerts = raised.len(), "early warnings raised");
                }
                Ok(())
            }
        })
        .await
    });
    let (s, h) = (store.clone(), holder.clone());
    tokio::spawn(async move {
        let clock = std::sync::Arc::new(tokio::sync::Mutex::new(tongxing_app::analytics::JobClock::default()));
        let every = std::time::Duration::from_secs(5);
        tongxing_app::lease::run_exclusive(s, "analytics-periodic", h, ttl, every, move |_| {
            let (analyst, clock) = (analyst.clone(), clock.clone());
            async move {
                let raised = clock.lock().await.periodic(&analyst, chrono::Utc::now()).await?;
                if !raised.is_empty() {
                    tracing::info!(alerts = raised.len(), "early warnings raised");
                }
                Ok(())
            }
        })
        .await
    });
    if !args.no_relay {
        let relay = std::sync::Arc::new(tongxing_app::webhooks::Relay {
            store: store.clone(),
            sender: std::sync::Arc::new(crate::webhook::HttpSender::new()),
        });
        let every = std::time::Duration::from_millis(200);
        let (s, h) = (store.clone(), holder.clone());
        tokio::spawn(async move {
            tongxing_app::lease::run_exclusive(s, "webhook-relay", h, ttl, every, move |fence| {
                let relay = relay.clone();
                async move { relay.pass(&fence).await.map(|_| ()) }
            })
            .await
        });
        let s = store.clone();
        let purge_every = std::time::Duration::from_secs(600);
        tokio::spawn(async move {
            tongxing_app::lease::run_exclusive(s.clone(), "idempotency-purge", holder, ttl, purge_every, move |_| {
                let s = s.clone();
                async move {
                    s.idempotency_purge(chrono::Utc::now() - tongxing_store::IDEMPOTENCY_TTL).await?;
                    Ok(())
                }
            })
            .await
        });
    }
    // ---- end of delivery ----
    // Tests and scripts read this line to find the port.
    println!("tongxing listening on http://{addr}");
    tracing::info!(%addr, database = ?store.kind(), "serving");
    // The peer's address reaches the handlers (rate limits per address).
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        // Event streams end when the server stops (they would hold the shutdown open).
        .with_graceful_shutdown(async move {
            shutdown().await;
            feed.close();
        })
        .await?;
    tracing::info!("stopped accepting requests; closing the database");
    store.close().await;
    Ok(())
}

/// Publishes and activates a rule set given with `--policy` (nothing changes when it was
/// already); a built-in one is in use anyway.
async fn publish_rule_set(store: &Store, rs: &tongxing_rules::RuleSet, text: &str) -> Result<()> {
    let (id, version) = (rs.id(), rs.version());
    let from = tongxing_domain::time::rfc3339(rs.valid_from());
    if tongxing_rules::is_builtin(id, version) {
        tracing::info!(id, version, valid_from = %from, "--policy: a built-in rule set, in use already");
        return Ok(());
    }
    let now = chrono::Utc::now();
    let by = "serve --policy";
    let new = store
        .publish_policy(id, version, text, by, now)
        .await
        .with_context(|| format!("--policy: publishing {id} version {version}"))?;
    let active = store.policies().await?.iter().any(|p| p.id == id && p.version == version && p.activated_at.is_some());
    if !active {
        store
            .activate_policy(id, version, by, now)
            .await
            .with_context(|| format!("--policy: activating {id} version {version}"))?;
    }
    tracing::info!(id, version, valid_from = %from, published = new, activated = !active, "--policy: rule set in use");
    Ok(())
}

pub(crate) async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested");
}
