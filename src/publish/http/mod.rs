//! The HTTP side on `daemon.http_listen`: health, readiness, metrics, the JSON
//! API and the dashboard. It reads the live state the daemon loop keeps;
//! for the books (savings for a period, daily figures) it asks the loop,
//! which owns them; the loop only copies the period's days out and leaves
//! building the report to a worker thread.
mod dashboard;
pub mod health;
pub mod live;
pub mod metrics;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::account::report::{Period, Report};
use crate::publish::influx::InfluxStats;
use crate::publish::mqtt::MqttStats;
use crate::spool::Spool;
pub use live::Live;

/// What the HTTP side asks the daemon loop.
pub enum Ask {
    /// A site's savings over a period.
    Report(String, Period, oneshot::Sender<Option<Report>>),
    /// Per day of a period: date, savings, charge and discharge kWh.
    Days(
        String,
        Period,
        oneshot::Sender<Option<Vec<serde_json::Value>>>,
    ),
}

#[derive(Clone)]
pub struct Shared {
    pub live: Arc<RwLock<Live>>,
    pub token: Option<Arc<str>>,
    pub asks: mpsc::Sender<Ask>,
    pub spool: Option<Arc<Spool>>,
    pub sinks: Vec<&'static str>,
    pub influx: Option<Arc<InfluxStats>>,
    pub mqtt: Option<Arc<MqttStats>>,
    /// The daemon's clock: spooled messages carry its time, so their age is
    /// measured on it (under `demo --speed` it runs fast).
    pub clock: crate::clock::SharedClock,
    pub health: Arc<health::Health>,
    /// `/metrics` without the token (`daemon.metrics_public`).
    pub metrics_public: bool,
}

fn read(live: &RwLock<Live>) -> std::sync::RwLockReadGuard<'_, Live> {
    live.read().unwrap_or_else(|e| e.into_inner())
}

pub fn router(shared: Shared) -> Router {
    let mut guarded = Router::new()
        .route("/api/v1/status", get(status))
        .route("/api/v1/sites", get(sites))
        .route("/api/v1/sites/{id}", get(site))
        .route("/api/v1/sites/{id}/savings", get(savings))
        .route("/api/v1/sites/{id}/days", get(days))
        .route("/api/v1/sites/{id}/history", get(history));
    // Probes reveal nothing and cannot carry a token in every orchestrator.
    // The dashboard page is static and holds no data; it asks for the token
    // and sends it with each API request.
    let mut public = Router::new()
        .route("/", get(dashboard::page))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    if shared.metrics_public {
        public = public.route("/metrics", get(metrics_text));
    } else {
        guarded = guarded.route("/metrics", get(metrics_text));
    }
    let guarded = guarded.route_layer(middleware::from_fn_with_state(shared.clone(), auth));
    public.merge(guarded).with_state(shared)
}

/// The API described for clients and for schemathesis, which checks every
/// answer against it (tests/openapi.rs).
pub const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn healthz(State(s): State<Shared>) -> Response {
    match s.health.problem() {
        None => (StatusCode::OK, "ok\n").into_response(),
        Some(p) => (StatusCode::SERVICE_UNAVAILABLE, format!("{p}\n")).into_response(),
    }
}

/// Equal, in time that does not depend on where two tokens first differ
/// (only on their lengths), so a token cannot be guessed byte by byte.
fn same_token(given: &[u8], token: &[u8]) -> bool {
    let mut diff = (given.len() != token.len()) as u8;
    for (i, t) in token.iter().enumerate() {
        diff |= given.get(i).copied().unwrap_or(0) ^ t;
    }
    diff == 0
}

/// Everything but the probes, the static dashboard page (and `/metrics`
/// when made public) needs the bearer token when one is configured. Only in
/// the Authorization header: a token in a URL ends up in proxy logs,
/// browser history and Referer headers.
async fn auth(State(s): State<Shared>, req: Request, next: Next) -> Response {
    if let Some(token) = &s.token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !given.is_some_and(|g| same_token(g.as_bytes(), token.as_bytes())) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "a bearer token is required\n",
            )
                .into_response();
        }
    }
    next.run(req).await
}

/// Why a sink cannot deliver at all, when one cannot.
fn sink_problem(s: &Shared) -> Option<String> {
    let why = s.influx.as_deref()?.failing()?;
    Some(format!("the InfluxDB sink is failing: {why}"))
}

async fn readyz(State(s): State<Shared>) -> Response {
    if let Some(p) = sink_problem(&s) {
        return (StatusCode::SERVICE_UNAVAILABLE, format!("{p}\n")).into_response();
    }
    let live = read(&s.live);
    if live.ready && live.sites.is_empty() {
        (StatusCode::OK, "ready: this instance owns no sites\n").into_response()
    } else if live.ready {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "waiting for the first poll of every device\n",
        )
            .into_response()
    }
}

async fn metrics_text(State(s): State<Shared>) -> Response {
    let body = metrics::render(&read(&s.live), &s);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// The daemon at a glance: health, readiness, each sink's state and backlog.
async fn status(State(s): State<Shared>) -> Json<serde_json::Value> {
    use std::sync::atomic::Ordering::Relaxed;
    let (ready, sites, devices, online) = {
        let live = read(&s.live);
        let devices = live.sites.values().map(|x| x.devices.len()).sum::<usize>();
        let online = live
            .sites
            .values()
            .map(|x| x.devices.values().filter(|d| d.online).count())
            .sum::<usize>();
        (live.ready, live.sites.len(), devices, online)
    };
    let spooled = |sink: &str| s.spool.as_ref().map(|sp| sp.stats(sink).count);
    let mut sinks = serde_json::Map::new();
    if let Some(m) = &s.mqtt {
        let connected = m.connected.load(Relaxed);
        sinks.insert(
            "mqtt".into(),
            json!({ "ok": connected, "connected": connected,
                    "error": (!connected).then_some("not connected to the broker"),
                    "spooled": spooled(crate::publish::mqtt::SINK) }),
        );
    }
    if let Some(i) = &s.influx {
        let failing = i.failing();
        sinks.insert(
            "influxdb".into(),
            json!({ "ok": failing.is_none(), "error": failing,
                    "spooled": spooled(crate::publish::influx::SINK) }),
        );
    }
    let problem = s.health.problem();
    Json(json!({
        "healthy": problem.is_none(), "health_problem": problem,
        "ready": ready && sink_problem(&s).is_none(),
        "sites": sites, "devices": devices, "devices_online": online,
        "sinks": sinks,
    }))
}

/// Every site in one answer, with what the fleet view sorts and filters on
/// and what needs attention first.
async fn sites(State(s): State<Shared>) -> Json<serde_json::Value> {
    let live = read(&s.live);
    let list: Vec<_> = live
        .sites
        .values()
        .map(|x| {
            let online = x.devices.values().filter(|d| d.online).count();
            let quarantined = x.today.as_ref().map_or(0.0, |t| t.quarantined_kwh);
            let mut problems = Vec::new();
            if online < x.devices.len() {
                problems.push(format!("{} of {} devices offline", x.devices.len() - online, x.devices.len()));
            }
            if quarantined > 0.0 {
                problems.push(format!("{quarantined:.1} kWh quarantined today"));
            }
            // Figures priced with last month's prices are provisional.
            problems.extend(x.tariff_warnings.iter().cloned());
            json!({
                "id": x.id, "name": x.name, "currency": x.currency, "timezone": x.timezone,
                "soc": x.soc, "battery_power_kw": x.battery_power_kw, "grid_power_kw": x.grid_power_kw,
                "tariff": x.tariff, "savings_today": x.today.as_ref().map(|t| t.total.savings),
                "net_savings_today": x.today.as_ref().map(|t| t.net_savings),
                "net_savings_month": x.month_net_savings,
                "savings_at": x.savings_at,
                "quarantined_kwh_today": quarantined,
                "devices_online": online, "devices": x.devices.len(),
                "problems": problems,
            })
        })
        .collect();
    Json(json!(list))
}

async fn site(State(s): State<Shared>, Path(id): Path<String>) -> Response {
    match read(&s.live).sites.get(&id) {
        Some(x) => Json(x.clone()).into_response(),
        None => (StatusCode::NOT_FOUND, format!("no site `{id}`\n")).into_response(),
    }
}

#[derive(Deserialize)]
struct PeriodQuery {
    period: Option<String>,
}

fn parse_period(q: PeriodQuery, default: &str) -> Result<Period, String> {
    q.period
        .unwrap_or_else(|| default.into())
        .parse()
        .map_err(|m| format!("period: {m}\n"))
}

async fn ask<T: serde::Serialize>(
    s: &Shared,
    id: &str,
    make: impl FnOnce(oneshot::Sender<Option<T>>) -> Ask,
) -> Response {
    let (tx, rx) = oneshot::channel();
    if s.asks.send(make(tx)).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    match rx.await {
        Ok(Some(r)) => Json(r).into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, format!("no site `{id}`\n")).into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response(),
    }
}

async fn savings(
    State(s): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<PeriodQuery>,
) -> Response {
    match parse_period(q, "lifetime") {
        Ok(p) => ask(&s, &id, |tx| Ask::Report(id.clone(), p, tx)).await,
        Err(m) => (StatusCode::BAD_REQUEST, m).into_response(),
    }
}

async fn days(
    State(s): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<PeriodQuery>,
) -> Response {
    match parse_period(q, "lifetime") {
        Ok(p) => ask(&s, &id, |tx| Ask::Days(id.clone(), p, tx)).await,
        Err(m) => (StatusCode::BAD_REQUEST, m).into_response(),
    }
}

async fn history(State(s): State<Shared>, Path(id): Path<String>) -> Response {
    let found = read(&s.live).sites.get(&id).map(|x| {
        let points: Vec<live::HistoryPoint> = x.history.iter().copied().collect();
        (points, x.tariff_def.clone())
    });
    let Some((points, tariff)) = found else {
        return (StatusCode::NOT_FOUND, format!("no site `{id}`\n")).into_response();
    };
    // The tariff is the site's own (replaced on reload with the books'): no
    // need to ask the daemon loop.
    let bands = tariff
        .map(|t| bands_before(&t, s.clock.now()))
        .unwrap_or_default();
    Json(json!({ "points": points, "bands": bands })).into_response()
}

/// The tariff's segments over the 24 hours before `now`: start and end
/// (ms), band, price.
fn bands_before(
    t: &crate::account::tariff::Tariff,
    now: jiff::Timestamp,
) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let mut at = now - jiff::SignedDuration::from_hours(24);
    while at < now && out.len() < 500 {
        let seg = t.segment_at(at);
        out.push(json!({
            "start": seg.start.as_millisecond(), "end": seg.end.as_millisecond(),
            "band": t.bands[seg.band as usize], "price": seg.price,
        }));
        if seg.end <= at {
            break;
        }
        at = seg.end;
    }
    out
}

/// Binds first, so a taken port is a startup error.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

/// Connections served at once; more are answered 503 and closed at once, so
/// a flood of clients costs file descriptors for an instant, not memory.
pub const MAX_CONNECTIONS: usize = 64;
/// A client must send a request's headers within this time, and an idle
/// keep-alive connection is closed after it (a slow-loris client holds a
/// connection no longer).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The request line and headers, at most; a larger header is answered 431.
pub const MAX_HEADER_BYTES: usize = 16 << 10;
/// The API reads no request bodies; anything sent with a request is refused
/// beyond this size (413).
pub const MAX_BODY_BYTES: usize = 4 << 10;

pub async fn serve(listener: tokio::net::TcpListener, shared: Shared, stop: CancellationToken) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    let app = router(shared).layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES));
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut conns = tokio::task::JoinSet::new();
    let mut refused_log = crate::log_throttle::LogThrottle::default();
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            a = listener.accept() => a,
        };
        while conns.try_join_next().is_some() {}
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, typically: wait for some to close
                // instead of spinning on accept.
                let msg = format!("HTTP: cannot accept a connection: {e}");
                if refused_log.admit("http", &msg, std::time::Instant::now()) {
                    tracing::warn!("{msg}");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            // Into the socket's send buffer, never waited for.
            let _ = stream.try_write(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            let msg =
                format!("HTTP: {MAX_CONNECTIONS} connections open; refusing more until some close");
            if refused_log.admit("http", &msg, std::time::Instant::now()) {
                tracing::warn!("{msg}");
            }
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        let stop = stop.clone();
        conns.spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEADER_BYTES.max(8192) * 2)
                .max_header_size(MAX_HEADER_BYTES);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
                }
            }
        });
    }
    // In-flight answers finish (each within its graceful-shutdown bound).
    while conns.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::same_token;

    /// The document names every route the router serves, and no other.
    #[test]
    fn the_openapi_document_lists_the_routes() {
        let doc: serde_json::Value = serde_json::from_str(super::OPENAPI).unwrap();
        let documented: std::collections::BTreeSet<&str> = doc["paths"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let source = include_str!("mod.rs");
        let routed: std::collections::BTreeSet<&str> = source
            .match_indices(".route(\"")
            .map(|(i, m)| {
                let rest = &source[i + m.len()..];
                &rest[..rest.find('"').unwrap()]
            })
            .collect();
        assert_eq!(documented, routed);
    }

    /// The history's bands tile the last 24 hours, in order, without a gap.
    #[test]
    fn the_bands_before_now_tile_a_day() {
        let text = crate::bundled::tariff("cn-chongqing-ci-2025-02").unwrap();
        let t = crate::account::tariff::Tariff::parse(
            std::path::Path::new("cn-chongqing-ci-2025-02.toml"),
            text,
        )
        .unwrap();
        let now: jiff::Timestamp = "2025-07-15T04:10:00Z".parse().unwrap();
        let bands = super::bands_before(&t, now);
        let ms = |v: &serde_json::Value, k: &str| v[k].as_i64().unwrap();
        assert!(bands.len() >= 4, "{bands:?}");
        assert!(
            ms(&bands[0], "start") <= (now - jiff::SignedDuration::from_hours(24)).as_millisecond()
        );
        assert!(ms(bands.last().unwrap(), "end") >= now.as_millisecond());
        for w in bands.windows(2) {
            assert_eq!(ms(&w[0], "end"), ms(&w[1], "start"));
        }
    }

    #[test]
    fn tokens_match_only_when_equal() {
        assert!(same_token(b"t0ken", b"t0ken"));
        assert!(!same_token(b"t0ken", b"t0kem"));
        assert!(!same_token(b"t0ke", b"t0ken"));
        assert!(!same_token(b"t0ken!", b"t0ken"));
        assert!(!same_token(b"", b"t0ken"));
    }
}
