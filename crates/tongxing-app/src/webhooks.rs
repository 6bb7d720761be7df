//! Webhooks: the outbox's events posted to receivers the health authority or the admin
//! registers, signed as the Standard Webhooks specification says: `webhook-id` (the outbox
//! event's id, the same at every attempt: receivers drop duplicates by it), `webhook-timestamp`
//! (seconds) and `webhook-signature` (`v1,` + base64 of HMAC-SHA256 over `id.timestamp.body`
//! with the secret's bytes; during a rotation's grace period, one signature per secret,
//! separated by a space). Secrets are `whsec_` + base64 of 24 random bytes, shown once when made
//! or rotated.
//!
//! The relay ([`Relay::pass`]) runs on one server at a time, under a lease: it fans new outbox
//! events out to the webhooks that take them, claims the deliveries that are due, posts them
//! (through a [`WebhookSender`]: the app does no network I/O itself), and records each attempt —
//! delivered on a 2xx, otherwise due again after a back-off of 1 s, 2 s, 4 s … (at most
//! [`MAX_BACKOFF`], with ±20 % jitter), until the receiver answers. Its writes are fenced by the
//! lease's token: a relay that lost its lease records nothing (the new holder sends again; the
//! receiver drops the duplicate by its id).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;
use tongxing_domain::time;
use tongxing_store::{Attempt, DueDelivery, Fence, NewWebhook, OutboxEvent, WebhookRecord};
use utoipa::ToSchema;

use crate::{App, AppError, AppResult};

/// The longest URL accepted.
pub const MAX_URL: usize = 2000;
/// How long the old secret keeps signing after a rotation.
pub const ROTATION_GRACE: Duration = Duration::hours(24);
/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::minutes(10);
/// How long a claimed delivery is the pass's (longer than a post may take).
pub const CLAIM: Duration = Duration::seconds(30);
/// Deliveries posted at once by a pass.
pub const BATCH: i64 = 64;

/// Posts one webhook: the body with its headers; answers the receiver's status, or why there
/// was none. A deployment posts over HTTP(S) (the binary's `webhook.rs`).
pub trait WebhookSender: Send + Sync {
    fn post<'a>(
        &'a self,
        url: &'a str,
        headers: &'a [(&'static str, String)],
        body: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<u16, String>> + Send + 'a>>;
}

/// A webhook as listed (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    pub id: i64,
    pub url: String,
    /// The event types it receives; empty: all.
    pub events: Vec<String>,
    /// active or disabled.
    pub status: String,
    #[serde(serialize_with = "time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    /// The token that made it.
    pub created_by: String,
    #[serde(serialize_with = "time::serialize_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub rotated_at: Option<DateTime<Utc>>,
    /// Until when the previous secret signs too (after a rotation).
    #[serde(serialize_with = "time::serialize_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub previous_secret_until: Option<DateTime<Utc>>,
    /// Deliveries the receiver has not yet answered with 2xx, and delivered.
    pub pending: i64,
    pub delivered: i64,
    /// The latest failed attempt's status (0: no answer) and error, while one is pending.
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
}

impl From<WebhookRecord> for WebhookView {
    fn from(w: WebhookRecord) -> Self {
        WebhookView {
            id: w.id,
            url: w.url,
            events: w.events,
            status: if w.disabled_at.is_some() { "disabled" } else { "active" }.into(),
            created_at: w.created_at,
            created_by: w.created_by,
            rotated_at: w.rotated_at,
            previous_secret_until: w.previous_until.filter(|t| *t > Utc::now()),
            pending: w.pending,
            delivered: w.delivered,
            last_status: w.last_status,
            last_error: w.last_error,
        }
    }
}

/// A webhook with its new secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookSecret {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// `whsec_` + base64 of 24 random bytes: verify signatures with it. Not shown again.
    pub secret: String,
}

/// A new secret: `whsec_` + base64 of 24 random bytes.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 24];
    SystemRandom::new().fill(&mut bytes).expect("system randomness");
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The signature header's value: `v1,<base64>` per secret, separated by spaces.
pub fn sign(secrets: &[String], id: &str, timestamp: i64, body: &str) -> String {
    secrets
        .iter()
        .filter_map(|s| {
            let key = base64::engine::general_purpose::STANDARD.decode(s.strip_prefix("whsec_").unwrap_or(s)).ok()?;
            let key = hmac::Key::new(hmac::HMAC_SHA256, &key);
            let tag = hmac::sign(&key, format!("{id}.{timestamp}.{body}").as_bytes());
            Some(format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(tag.as_ref())))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Checks a webhook's URL: http or https, a host, no spaces or control characters.
pub fn parse_url(v: &str) -> AppResult<String> {
    let v = v.trim();
    let quoted = || tongxing_domain::text::quote(v);
    if v.is_empty() {
        return Err(AppError::invalid("url", "is required"));
    }
    if v.chars().count() > MAX_URL {
        return Err(AppError::invalid("url", format!("has more than {MAX_URL} characters")));
    }
    if let Some((i, c)) = v.chars().enumerate().find(|(_, c)| c.is_whitespace() || c.is_control()) {
        return Err(AppError::invalid(
            "url",
            format!("character {} ({c:?}) is not allowed in a URL: {}", i + 1, quoted()),
        ));
    }
    let rest = v.strip_prefix("https://").or_else(|| v.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') => Ok(v.to_string()),
        _ => Err(AppError::invalid("url", format!("{} is not an http:// or https:// URL with a host", quoted()))),
    }
}

/// Checks the event types a webhook asks for.
pub fn parse_events(events: &[String]) -> AppResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let e = e.trim();
        if !crate::alerts::EVENT_TYPES.contains(&e) {
            return Err(AppError::invalid(
                format!("events[{i}]"),
                format!("{} is not one of: {}", tongxing_domain::text::quote(e), crate::alerts::EVENT_TYPES.join(", ")),
            ));
        }
        if !out.iter().any(|x| x == e) {
            out.push(e.to_string());
        }
    }
    Ok(out)
}

/// The wait before the next attempt after `attempts` failed ones: 1 s, 2 s, 4 s, … at most
/// [`MAX_BACKOFF`], ±20 % jitter.
pub fn backoff(attempts: i32, jitter: f64) -> Duration {
    let base = Duration::seconds(1 << (attempts.clamp(1, 20) - 1)).min(MAX_BACKOFF);
    let factor = 0.8 + 0.4 * jitter.clamp(0.0, 1.0);
    Duration::milliseconds((base.num_milliseconds() as f64 * factor) as i64)
}

impl App {
    /// Registers a webhook; its secret is in the answer, this once.
    pub async fn create_webhook(
        &self,
        url: &str,
        events: &[String],
        by: &str,
        now: DateTime<Utc>,
    ) -> AppResult<WebhookSecret> {
        let url = parse_url(url)?;
        let events = parse_events(events)?;
        let secret = new_secret();
        let w = self
            .store
            .create_webhook(&NewWebhook { url, events, secret: secret.clone(), by: by.into(), at: now })
            .await?;
        Ok(WebhookSecret { webhook: w.into(), secret })
    }

    pub async fn webhooks(&self) -> AppResult<Vec<WebhookView>> {
        Ok(self.store.webhooks().await?.into_iter().map(WebhookView::from).collect())
    }

    /// A new secret, shown this once; the old one signs too for [`ROTATION_GRACE`].
    pub async fn rotate_webhook(&self, id: i64, now: DateTime<Utc>) -> AppResult<WebhookSecret> {
        let secret = new_secret();
        if !self.store.rotate_webhook(id, &secret, now + ROTATION_GRACE, now).await? {
            return Err(self.webhook_refusal(id, "rotated").await);
        }
        let w = self.store.webhook(id).await?.ok_or_else(|| no_webhook(id))?;
        Ok(WebhookSecret { webhook: w.into(), secret })
    }

    /// Stops deliveries to a webhook (those pending are not sent).
    pub async fn disable_webhook(&self, id: i64, now: DateTime<Utc>) -> AppResult<WebhookView> {
        if !self.store.disable_webhook(id, now).await? {
            return Err(self.webhook_refusal(id, "disabled").await);
        }
        Ok(self.store.webhook(id).await?.ok_or_else(|| no_webhook(id))?.into())
    }

    async fn webhook_refusal(&self, id: i64, what: &str) -> AppError {
        match self.store.webhook(id).await {
            Ok(Some(_)) => AppError::Conflict(format!("webhook {id} is disabled: it cannot be {what}")),
            Ok(None) => no_webhook(id),
            Err(e) => e.into(),
        }
    }
}

fn no_webhook(id: i64) -> AppError {
    AppError::NotFound(format!("no webhook {id}"))
}

/// The webhook relay: one pass fans out, claims, posts and records.
pub struct Relay {
    pub store: tongxing_store::Store,
    pub sender: Arc<dyn WebhookSender>,
}

impl Relay {
    /// One pass under the lease `fence`: returns the attempts made. Runs again while a whole
    /// batch was due.
    pub async fn pass(&self, fence: &Fence) -> AppResult<usize> {
        let mut made = 0;
        self.store.fan_out(fence, Utc::now(), 10_000).await?;
        for _ in 0..16 {
            let now = Utc::now();
            let claim = claim_id();
            let due = self.store.claim_deliveries(&claim, now, now + CLAIM, BATCH).await?;
            if due.is_empty() {
                break;
            }
            let full = due.len() as i64 == BATCH;
            let mut posts = tokio::task::JoinSet::new();
            for d in due {
                let sender = self.sender.clone();
                posts.spawn(async move { attempt(&*sender, d).await });
            }
            let mut attempts = Vec::new();
            while let Some(a) = posts.join_next().await {
                attempts.push(a.map_err(|e| AppError::Internal(format!("webhook post: {e}")))?);
            }
            made += attempts.len();
            self.store.finish_deliveries(fence, &claim, &attempts, Utc::now()).await?;
            if !full {
                break;
            }
        }
        Ok(made)
    }
}

/// Posts one delivery; the attempt's outcome.
async fn attempt(sender: &dyn WebhookSender, d: DueDelivery) -> Attempt {
    let event = OutboxEvent {
        id: d.outbox_id,
        event: d.event.clone(),
        alert_id: None,
        payload: d.payload.clone(),
        created_at: d.created_at,
    };
    let body = crate::alerts::envelope(&event).to_string();
    let id = d.outbox_id.to_string();
    let timestamp = Utc::now().timestamp();
    let headers = [
        ("content-type", "application/json".to_string()),
        ("webhook-id", id.clone()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", sign(&d.secrets, &id, timestamp, &body)),
    ];
    let (status, error) = match sender.post(&d.url, &headers, &body).await {
        Ok(s) if (200..300).contains(&s) => (i32::from(s), None),
        Ok(s) => (i32::from(s), Some(format!("the receiver answered {s}"))),
        Err(e) => (0, Some(tongxing_domain::text::shorten(&e))),
    };
    let retry_at = error.as_ref().map(|_| Utc::now() + backoff(d.attempts, jitter()));
    if let Some(e) = &error {
        tracing::info!(webhook = d.webhook_id, event = d.outbox_id, attempts = d.attempts, error = %e, "webhook not delivered; will retry");
    }
    Attempt { webhook_id: d.webhook_id, outbox_id: d.outbox_id, status, error, retry_at }
}

fn jitter() -> f64 {
    let mut b = [0u8; 2];
    let _ = SystemRandom::new().fill(&mut b);
    f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX)
}

fn claim_id() -> String {
    let mut b = [0u8; 12];
    SystemRandom::new().fill(&mut b).expect("system randomness");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks reference implementations.
    #[test]
    fn signs_as_the_specification() {
        let secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".to_string();
        let sig = sign(
            std::slice::from_ref(&secret),
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1649367553,
            r#"{"email":"test@example.com","username":"test_user"}"#,
        );
        assert_eq!(sig, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
        let two = sign(&[secret.clone(), new_secret()], "1", 1, "{}");
        assert_eq!(two.split(' ').count(), 2);
        assert!(two.starts_with(&sign(&[secret], "1", 1, "{}")));
    }

    #[test]
    fn secrets_are_24_random_bytes() {
        let s = new_secret();
        let bytes = base64::engine::general_purpose::STANDARD.decode(s.strip_prefix("whsec_").unwrap()).unwrap();
        assert_eq!(bytes.len(), 24);
        assert_ne!(s, new_secret());
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff(1, 0.5), Duration::seconds(1));
        assert_eq!(backoff(2, 0.5), Duration::seconds(2));
        assert_eq!(backoff(3, 0.5), Duration::seconds(4));
        assert_eq!(backoff(30, 0.5), MAX_BACKOFF);
        assert!(backoff(3, 0.0) >= Duration::milliseconds(3200) && backoff(3, 1.0) <= Duration::milliseconds(4800));
    }

    #[test]
    fn urls_and_events() {
        assert!(parse_url("https://hooks.example/tongxing").is_ok());
        assert!(parse_url("http://127.0.0.1:9000/").is_ok());
        for bad in ["", "ftp://x", "https://", "https:///x", "https://a b", "https://a\u{0}"] {
            assert!(parse_url(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_events(&["alert.raised".into(), "alert.raised".into()]).unwrap(), ["alert.raised"]);
        assert!(matches!(parse_events(&["nope".into()]), Err(AppError::Invalid { field, .. }) if field == "events[0]"));
    }
}
