//! The outbox as a live feed, for the SSE stream of the command centre. One poller per server
//! reads the outbox (`outbox_after`) and broadcasts each event to every subscriber of that
//! server: one query per server, not one per client. It polls every [`POLL`] and is woken early
//! by [`Store::outbox_signal`] (this process's writes, and on PostgreSQL the NOTIFY of any
//! server's). Neither path is trusted alone: the poll finds what a lost notification missed.
//!
//! No gaps, no duplicates: outbox ids are committed in order without gaps, so each subscriber
//! keeps the last id it sent; it skips what it has seen, and reads from the database whatever the
//! broadcast did not bring in order (its first events after a `Last-Event-ID`, an event past a
//! gap, or after falling behind the broadcast).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use tongxing_store::{OutboxEvent, Store};

use crate::AppResult;

/// How often the poller reads the outbox when nothing wakes it.
pub const POLL: Duration = Duration::from_millis(150);
/// Events read at once.
const PAGE: i64 = 500;

/// The per-server feed. Cheap to share (`Arc`); the poller starts with the first subscriber.
pub struct Feed {
    store: Store,
    tx: broadcast::Sender<Arc<OutboxEvent>>,
    started: AtomicBool,
    /// Set when the server stops: every subscription ends (a stream would hold a graceful
    /// shutdown open for ever).
    closing: tokio::sync::watch::Sender<bool>,
}

impl Feed {
    pub fn new(store: Store) -> Feed {
        Feed {
            store,
            tx: broadcast::channel(4096).0,
            started: AtomicBool::new(false),
            closing: tokio::sync::watch::channel(false).0,
        }
    }

    /// Ends every subscription, now and from now on (the server is stopping).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    fn start(&self) {
        if self.started.swap(true, Ordering::SeqCst) {
            return;
        }
        let (store, tx) = (self.store.clone(), self.tx.clone());
        tokio::spawn(async move {
            let signal = store.outbox_signal();
            let mut last = loop {
                match store.outbox_head().await {
                    Ok(h) => break h,
                    Err(e) => {
                        tracing::warn!(error = %e, "outbox feed: reading the head failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            };
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(POLL) => {}
                    _ = signal.notified() => {}
                }
                if tx.receiver_count() == 0 {
                    // Nobody listens: skip ahead (a subscriber reads its start from the database).
                    if let Ok(h) = store.outbox_head().await {
                        last = h;
                    }
                    continue;
                }
                loop {
                    match store.outbox_after(last, PAGE).await {
                        Ok(events) => {
                            let full = events.len() as i64 == PAGE;
                            for e in events {
                                last = e.id;
                                let _ = tx.send(Arc::new(e));
                            }
                            if !full {
                                break;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "outbox feed: reading failed");
                            break;
                        }
                    }
                }
            }
        });
    }

    /// The events after `after` (`None`: from now on, i.e. after the last one committed when
    /// this returns), in order, each once, then the live ones. The channel closes when the
    /// receiver is dropped.
    pub async fn subscribe(&self, after: Option<i64>) -> AppResult<mpsc::Receiver<Arc<OutboxEvent>>> {
        self.start();
        // Subscribed before the start is read: nothing committed after it can be missed.
        let live = self.tx.subscribe();
        let after = match after {
            Some(a) => a,
            None => self.store.outbox_head().await?,
        };
        let (out, rx) = mpsc::channel(256);
        let mut closing = self.closing.subscribe();
        let follower = follow(self.store.clone(), after, live, out);
        tokio::spawn(async move {
            tokio::select! {
                _ = follower => {}
                _ = closing.wait_for(|c| *c) => {}
            }
        });
        Ok(rx)
    }
}

/// One subscriber: the backlog from the database, then the broadcast, filling any hole in it
/// from the database.
async fn follow(
    store: Store,
    after: i64,
    mut live: broadcast::Receiver<Arc<OutboxEvent>>,
    out: mpsc::Sender<Arc<OutboxEvent>>,
) {
    let mut last = after;
    if !catch_up(&store, &mut last, &out).await {
        return;
    }
    loop {
        let next = tokio::select! {
            r = live.recv() => r,
            _ = out.closed() => return,
        };
        match next {
            Ok(e) if e.id <= last => {}
            Ok(e) if e.id == last + 1 => {
                if out.send(e.clone()).await.is_err() {
                    return;
                }
                last = e.id;
            }
            // A hole (the subscriber's backlog ended before the poller's last event), or behind.
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                if !catch_up(&store, &mut last, &out).await {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Sends every committed event after `last`; false when the subscriber is gone.
async fn catch_up(store: &Store, last: &mut i64, out: &mpsc::Sender<Arc<OutboxEvent>>) -> bool {
    loop {
        match store.outbox_after(*last, PAGE).await {
            Ok(events) => {
                let full = events.len() as i64 == PAGE;
                for e in events {
                    *last = e.id;
                    if out.send(Arc::new(e)).await.is_err() {
                        return false;
                    }
                }
                if !full {
                    return true;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "outbox feed: reading the backlog failed");
                if pause(out).await {
                    return false;
                }
            }
        }
    }
}

/// Waits a second before trying the database again; true when the subscriber left meanwhile.
async fn pause(out: &mpsc::Sender<Arc<OutboxEvent>>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_secs(1)) => false,
        _ = out.closed() => true,
    }
}
