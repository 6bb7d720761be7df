//! Posting webhooks over HTTP(S) for the relay (`tongxing_app::webhooks::Relay`): blocking
//! requests (ureq) on the blocking pool, 5 seconds each at most. Redirects are not followed:
//! a receiver answers where it was registered.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tongxing_app::webhooks::WebhookSender;

pub struct HttpSender {
    agent: ureq::Agent,
}

impl HttpSender {
    pub fn new() -> HttpSender {
        HttpSender { agent: ureq::AgentBuilder::new().timeout(Duration::from_secs(5)).redirects(0).build() }
    }
}

impl WebhookSender for HttpSender {
    fn post<'a>(
        &'a self,
        url: &'a str,
        headers: &'a [(&'static str, String)],
        body: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<u16, String>> + Send + 'a>> {
        let agent = self.agent.clone();
        let (url, body) = (url.to_string(), body.to_string());
        let headers: Vec<(&'static str, String)> = headers.to_vec();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let mut req = agent.post(&url);
                for (name, value) in &headers {
                    req = req.set(name, value);
                }
                match req.send_string(&body) {
                    Ok(r) => Ok(r.status()),
                    Err(ureq::Error::Status(code, _)) => Ok(code),
                    Err(e) => Err(e.to_string()),
                }
            })
            .await
            .map_err(|e| format!("webhook task: {e}"))?
        })
    }
}
