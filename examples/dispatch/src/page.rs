//! The board page, compiled into the binary so `cargo run -p dispatch` needs no files
//! beside it.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

/// One embedded file: where it is served, its media type, its text.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

static ASSETS: [Asset; 3] = [
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../static/index.html"),
    },
    Asset {
        path: "/board.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../static/board.js"),
    },
    Asset {
        path: "/stomp.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../static/stomp.js"),
    },
];

/// Adds GET and HEAD routes for each file of the page.
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    for asset in &ASSETS {
        let serve = move || async move {
            HttpResponse::Ok()
                .content_type(asset.content_type)
                // The page changes with the binary; never run a stale script against it.
                .insert_header((header::CACHE_CONTROL, "no-cache"))
                .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                .body(asset.body)
        };
        cfg.service(
            web::resource(asset.path)
                .route(web::get().to(serve))
                .route(web::head().to(serve)),
        );
    }
}
