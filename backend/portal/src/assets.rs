//! The portal's static files, compiled into the binary: its one stylesheet and htmx
//! (vendored from npm, `assets/htmx-LICENSE.txt`). Nothing is fetched from elsewhere.
//!
//! Each is served at `/assets/<hash>/<name>`, where `<hash>` is the start of its SHA-256: the
//! URL changes whenever the file does, so browsers may keep it for a year (`immutable`), and
//! `ETag` answers a revalidation with `304`.

use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use sha2::{Digest as _, Sha256};

struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const ASSETS: [Asset; 2] = [
    Asset {
        name: "portal.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../assets/portal.css"),
    },
    Asset {
        name: "htmx.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/htmx-2.0.11.min.js"),
    },
];

struct Hashed {
    asset: &'static Asset,
    hash: String,
    url: String,
}

fn hashed() -> &'static [Hashed] {
    static HASHED: OnceLock<Vec<Hashed>> = OnceLock::new();
    HASHED.get_or_init(|| {
        ASSETS
            .iter()
            .map(|asset| {
                let hash = hex::encode(&Sha256::digest(asset.bytes)[..8]);
                Hashed {
                    url: format!("/assets/{hash}/{}", asset.name),
                    asset,
                    hash,
                }
            })
            .collect()
    })
}

/// The URL of the asset `name` (`/assets/<hash>/<name>`); `/` for an unknown name.
pub fn url(name: &str) -> &'static str {
    hashed()
        .iter()
        .find(|h| h.asset.name == name)
        .map_or("/", |h| h.url.as_str())
}

/// `GET /assets/{hash}/{name}`: the asset when `hash` is its current hash, else 404.
pub async fn serve(req: HttpRequest, path: web::Path<(String, String)>) -> HttpResponse {
    let (hash, name) = path.into_inner();
    let Some(found) = hashed()
        .iter()
        .find(|h| h.asset.name == name && h.hash == hash)
    else {
        return HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("no such asset");
    };
    let etag = format!("\"{}\"", found.hash);
    let cache = (header::CACHE_CONTROL, "public, max-age=31536000, immutable");
    let revalidated = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    if revalidated {
        return HttpResponse::NotModified()
            .insert_header(cache)
            .insert_header((header::ETAG, etag))
            .finish();
    }
    HttpResponse::Ok()
        .content_type(found.asset.content_type)
        .insert_header(cache)
        .insert_header((header::ETAG, etag))
        .body(found.asset.bytes)
}
