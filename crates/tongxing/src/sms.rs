//! Sending one-time codes through an SMS gateway: a JSON POST to its URL. The request is
//! blocking (ureq) and runs on the blocking pool, with a 10-second limit.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use anyhow::{Result, bail};
use tongxing_app::citizen::CodeSender;

pub struct Gateway {
    url: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Gateway {
    pub fn new(url: &str) -> Result<Gateway> {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            bail!("--otp-sender: {url:?} is neither `log` nor an http(s) URL of an SMS gateway");
        }
        Ok(Gateway {
            url: url.to_string(),
            token: std::env::var("TONGXING_SMS_TOKEN").ok().filter(|t| !t.is_empty()),
            agent: ureq::AgentBuilder::new().timeout(Duration::from_secs(10)).build(),
        })
    }
}

impl CodeSender for Gateway {
    fn send<'a>(
        &'a self,
        phone: &'a str,
        _code: &'a str,
        message: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        let body = serde_json::json!({"phone": phone, "message": message}).to_string();
        let (agent, url, token) = (self.agent.clone(), self.url.clone(), self.token.clone());
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let mut req = agent.post(&url).set("Content-Type", "application/json");
                if let Some(t) = &token {
                    req = req.set("Authorization", &format!("Bearer {t}"));
                }
                req.send_string(&body).map(|_| ()).map_err(|e| format!("SMS gateway: {e}"))
            })
            .await
            .map_err(|e| format!("SMS gateway task: {e}"))?
        })
    }
}
