//! Tasks that run on exactly one server of a deployment at a time (the webhook relay, the
//! overdue scan): [`run_exclusive`] takes the task's lease when it is free or expired, runs the
//! task every `every` while it holds it, and renews it meanwhile. A server that is killed stops
//! renewing; another takes the lease once it expires (within `ttl`, plus its retry interval).
//!
//! The lease is a row in the database with a fencing token (`leases`), not an advisory lock
//! (CockroachDB and YugabyteDB have none). The task receives the token ([`Fence`]); its writes
//! that check it (`tongxing_store::Store::fan_out`, `finish_deliveries`) refuse a server that
//! lost the lease while it was paused or cut off, so two holders never both record.

use std::future::Future;
use std::time::Duration;

use chrono::Utc;
use tongxing_store::{Fence, Store};

use crate::AppResult;

/// A holder's name: the server's address and process, and a random part (a restarted process
/// is a new holder).
pub fn holder_name(addr: &str) -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 4];
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    format!("{addr}/pid {}/{:08x}", std::process::id(), u32::from_le_bytes(b))
}

/// Runs `task` every `every` on the one server holding the lease `name` (`ttl` long), for ever.
/// Each run receives the fencing token; a run is cancelled when the lease cannot be renewed.
pub async fn run_exclusive<F, Fut>(
    store: Store,
    name: &str,
    holder: String,
    ttl: Duration,
    every: Duration,
    mut task: F,
) where
    F: FnMut(Fence) -> Fut,
    Fut: Future<Output = AppResult<()>>,
{
    let chrono_ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::seconds(10));
    // Renewed three times a lease; a server without it looks five times a lease.
    let renew_every = ttl / 3;
    let retry = (ttl / 5).min(every.max(Duration::from_millis(100)));
    let mut held: Option<i64> = None;
    loop {
        let token = match store.acquire_lease(name, &holder, chrono_ttl, Utc::now()).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(lease = name, error = %e, "lease: the database did not answer");
                None
            }
        };
        if token != held {
            match token {
                Some(t) => tracing::info!(lease = name, token = t, %holder, "lease taken: this server runs the task"),
                None if held.is_some() => tracing::warn!(lease = name, "lease lost: another server runs the task"),
                None => {}
            }
            held = token;
        }
        let Some(token) = held else {
            tokio::time::sleep(retry).await;
            continue;
        };
        let fence = Fence { name: name.to_string(), token };
        let run = task(fence.clone());
        tokio::pin!(run);
        let mut renew = tokio::time::interval(renew_every);
        renew.tick().await;
        let outcome = loop {
            tokio::select! {
                r = &mut run => break Some(r),
                _ = renew.tick() => {
                    match store.renew_lease(&fence, &holder, chrono_ttl, Utc::now()).await {
                        Ok(true) => {}
                        Ok(false) => break None,
                        Err(e) => tracing::warn!(lease = name, error = %e, "lease: renewal failed"),
                    }
                }
            }
        };
        match outcome {
            None => {
                tracing::warn!(lease = name, "lease lost during a run: the run was stopped");
                held = None;
            }
            Some(Err(e)) => tracing::warn!(lease = name, error = %e, "the exclusive task failed; it runs again"),
            Some(Ok(())) => {}
        }
        // Until the next run, the lease is renewed still (a task may run less often than it expires).
        let next = tokio::time::Instant::now() + every;
        while held.is_some() {
            let left = next.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                break;
            }
            tokio::time::sleep(left.min(renew_every)).await;
            if tokio::time::Instant::now() < next {
                match store.renew_lease(&fence, &holder, chrono_ttl, Utc::now()).await {
                    Ok(true) => {}
                    Ok(false) => held = None,
                    Err(e) => tracing::warn!(lease = name, error = %e, "lease: renewal failed"),
                }
            }
        }
    }
}
