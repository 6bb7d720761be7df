//! Bearer tokens: created once and shown once; only their SHA-256 is stored. Lookups are
//! cached for a short while so that a checkpoint's thousands of requests a minute do not each
//! cost a database read.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};
use tongxing_domain::auth::{Action, Role, in_scope};

use crate::AppState;
use crate::error::ApiError;

/// Who is calling: resolved from the bearer token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token_id: String,
    pub role: Role,
    pub scope: Vec<String>,
    /// A citizen's session: the person it is bound to.
    pub person_id: Option<i64>,
}

impl Caller {
    /// Refuses the call unless the role allows `action`.
    pub fn require(&self, action: Action) -> Result<(), ApiError> {
        if self.role.can(action) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!("the role '{}' may not {}", self.role, action.describe())))
        }
    }
    /// Refuses the call unless the token's scope covers `item`.
    pub fn require_scope(&self, what: &str, item: &str) -> Result<(), ApiError> {
        if in_scope(&self.scope, item) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "this token is not scoped for {what} {} (its scope: {})",
                tongxing_domain::text::quote(item),
                self.scope.join(", ")
            )))
        }
    }
}

/// A freshly made token: the secret to show once, its id and the hash to store.
pub struct NewToken {
    pub secret: String,
    pub id: String,
    pub hash: String,
}

pub fn new_token() -> NewToken {
    let rng = SystemRandom::new();
    let mut secret = [0u8; 24];
    let mut id = [0u8; 4];
    rng.fill(&mut secret).expect("system randomness");
    rng.fill(&mut id).expect("system randomness");
    let secret = format!("tx_{}", hex(&secret));
    NewToken { hash: hash_token(&secret), id: format!("tok_{}", hex(&id)), secret }
}

pub fn hash_token(secret: &str) -> String {
    hex(digest::digest(&digest::SHA256, secret.as_bytes()).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const CACHE_TTL: Duration = Duration::from_secs(30);

/// Token hash → (caller, when looked up). Misses are not cached.
#[derive(Default)]
pub struct TokenCache(Mutex<HashMap<String, (Caller, Instant)>>);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header =
            parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).ok_or(ApiError::Unauthenticated)?;
        let secret = header.strip_prefix("Bearer ").ok_or(ApiError::Unauthenticated)?.trim();
        resolve(state, secret).await
    }
}

/// The caller a token's secret stands for: the one look-up of the bearer header and of the
/// web pages' session cookie, which carries the same token.
pub async fn resolve(state: &AppState, secret: &str) -> Result<Caller, ApiError> {
    let hash = hash_token(secret);
    if let Some((caller, at)) = state.tokens.0.lock().expect("token cache").get(&hash)
        && at.elapsed() < CACHE_TTL
    {
        return Ok(caller.clone());
    }
    let record = state.app.store.token_by_hash(&hash, chrono::Utc::now()).await?.ok_or(ApiError::Unauthenticated)?;
    let role = Role::parse(&record.role).map_err(ApiError::Internal)?;
    let caller = Caller { token_id: record.id, role, scope: record.scope, person_id: record.person_id };
    state.tokens.0.lock().expect("token cache").insert(hash, (caller.clone(), Instant::now()));
    Ok(caller)
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_unique_and_hashed() {
        let a = super::new_token();
        let b = super::new_token();
        assert_ne!(a.secret, b.secret);
        assert_eq!(a.hash, super::hash_token(&a.secret));
        assert_eq!(a.hash.len(), 64);
        assert!(!a.hash.contains(&a.secret));
    }
}
