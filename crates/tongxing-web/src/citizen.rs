//! (to be written)
use axum::Router;
use tongxing_http::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}
