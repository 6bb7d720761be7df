//! Every asset of the pages — style sheet, scripts, icons, the verdict sounds — embedded in the
//! binary (`build.rs` lists the `assets/` folder; the sounds are synthesised there). Each is
//! served under a name carrying its content hash (`/assets/app.3f9a1c2b.css`) with a year's
//! `immutable` cache: a new build changes the name, so no cache ever serves a stale file.
//! Templates and scripts get the names from [`url`].

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ring::digest;

mod generated {
    include!(concat!(env!("OUT_DIR"), "/assets.rs"));
}

/// One embedded file.
pub struct Asset {
    /// The name in the `assets/` folder, e.g. `app.css`.
    pub name: &'static str,
    /// The name it is served under, with its hash, e.g. `app.3f9a1c2b.css`.
    pub hashed: String,
    pub bytes: &'static [u8],
    pub content_type: &'static str,
    pub etag: String,
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or("") {
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "wav" => "audio/wav",
        "ico" => "image/x-icon",
        "json" | "webmanifest" => "application/manifest+json",
        _ => "application/octet-stream",
    }
}

struct Registry {
    by_name: HashMap<&'static str, usize>,
    by_hashed: HashMap<String, usize>,
    all: Vec<Asset>,
}

static ASSETS: LazyLock<Registry> = LazyLock::new(|| {
    let mut all = Vec::new();
    for (name, bytes) in generated::FILES {
        let hash: String =
            digest::digest(&digest::SHA256, bytes).as_ref()[..4].iter().map(|b| format!("{b:02x}")).collect();
        let hashed = match name.rsplit_once('.') {
            Some((stem, ext)) => format!("{stem}.{hash}.{ext}"),
            None => format!("{name}.{hash}"),
        };
        all.push(Asset { name, etag: format!("\"{hash}\""), hashed, bytes, content_type: content_type(name) });
    }
    let by_name = all.iter().enumerate().map(|(i, a)| (a.name, i)).collect();
    let by_hashed = all.iter().enumerate().map(|(i, a)| (a.hashed.clone(), i)).collect();
    Registry { by_name, by_hashed, all }
});

/// Every embedded asset.
pub fn all() -> &'static [Asset] {
    &ASSETS.all
}

/// The URL of an asset by its folder name (`app.css` → `/assets/app.3f9a1c2b.css`). A name that
/// is not in the folder is a programming error, caught by the tests that render every page.
pub fn url(name: &str) -> String {
    match ASSETS.by_name.get(name) {
        Some(i) => format!("/assets/{}", ASSETS.all[*i].hashed),
        None => panic!("no asset {name:?} in crates/tongxing-web/assets"),
    }
}

/// `GET /assets/{file}`: the file by its hashed name, cached for a year; a stale hash (a page
/// of an older build) gets the current file, cached briefly.
pub async fn serve(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let (asset, fresh) = match ASSETS.by_hashed.get(&file) {
        Some(i) => (&ASSETS.all[*i], true),
        None => {
            // name.HASH.ext → name.ext
            let plain = match file.rsplitn(3, '.').collect::<Vec<_>>().as_slice() {
                [ext, _hash, stem] => format!("{stem}.{ext}"),
                _ => file.clone(),
            };
            match ASSETS.by_name.get(plain.as_str()) {
                Some(i) => (&ASSETS.all[*i], false),
                None => return (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
            }
        }
    };
    let cache = if fresh { "public, max-age=31536000, immutable" } else { "public, max-age=300" };
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::ETAG, HeaderValue::from_str(&asset.etag).expect("an ASCII etag"));
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains(&asset.etag)) {
        return (StatusCode::NOT_MODIFIED, h).into_response();
    }
    (h, asset.bytes).into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn hashed_names_and_types() {
        let css = super::url("app.css");
        assert!(
            css.starts_with("/assets/app.") && css.ends_with(".css") && css.len() == "/assets/app.12345678.css".len()
        );
        for name in ["pass.wav", "conditional.wav", "deny.wav"] {
            let a = super::all().iter().find(|a| a.name == name).expect("a synthesised sound");
            assert_eq!(&a.bytes[..4], b"RIFF");
            assert_eq!(a.content_type, "audio/wav");
            // Short: a verdict sound is well under a second of 16 kHz 16-bit mono.
            assert!(a.bytes.len() < 16_000 * 2, "{name}: {} bytes", a.bytes.len());
        }
    }
}
