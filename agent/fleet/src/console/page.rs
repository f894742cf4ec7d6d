//! The console's web page: static HTML, CSS and JavaScript built into the binary (no build step, no CDN), served
//! behind the same login as the API. The scripts draw the fleet table, each box's plots and the rollouts
//! (started, paused, resumed, aborted and rolled back from the page) from the JSON API, and refresh them every
//! two seconds.

use axum::http::header;
use axum::response::IntoResponse;

const INDEX: &str = include_str!("page/index.html");
const SCRIPT: &str = include_str!("page/app.js");
const ROLLOUTS: &str = include_str!("page/rollouts.js");
const STYLE: &str = include_str!("page/app.css");

/// Every route answers no-cache: an upgraded console serves its new page at once.
fn asset(kind: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

pub async fn index() -> impl IntoResponse {
    asset("text/html; charset=utf-8", INDEX)
}

pub async fn script() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

pub async fn rollouts_script() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", ROLLOUTS)
}

pub async fn style() -> impl IntoResponse {
    asset("text/css; charset=utf-8", STYLE)
}
