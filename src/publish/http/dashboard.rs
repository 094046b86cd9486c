//! `GET /`: the operator's dashboard. One static page compiled into the
//! binary (no build step, no CDN); its script polls the JSON API and draws its
//! charts as SVG.
use axum::http::header;
use axum::response::IntoResponse;

const PAGE: &str = include_str!("dashboard.html");

pub async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        PAGE,
    )
}
