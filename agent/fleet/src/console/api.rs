//! HTTP routes of the console.  Every route needs an operator login (HTTP Basic against the password
//! file); without one the answer is 401 with a `WWW-Authenticate` challenge.  A POST must carry
//! `Content-Type: application/json` (415 otherwise): a browser sends that type cross-site only after a
//! CORS preflight, which the console does not answer, so another site's form cannot act with the Basic
//! login a browser holds.
//!
//! | route | |
//! |---|---|
//! | `GET /`, `/app.js`, `/rollouts.js`, `/app.css` | the web page: the fleet table, each box's plots and commands, the rollouts, live |
//! | `GET /api/devices[?select=SELECTOR]` | every box: presence, last seen, board, encoder, figures, config versions |
//! | `GET /api/devices/{id}` | one box: its documents, telemetry history and command results |
//! | `GET /api/rollouts`, `GET /api/rollouts/{id}` | rollouts with every target's state and failure reason |
//! | `POST /api/rollouts` | start one (body: [`RolloutSpec`]) |
//! | `POST /api/rollouts/{id}/{pause,resume,abort,rollback}` | operator actions |
//! | `GET /metrics` | the fleet in the Prometheus text format |

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use tracing::Instrument;

use super::fleet_state::DeviceEntry;
use super::rollout::{Rollout, RolloutSpec, TargetInit};
use super::{Shared, metrics, page};
use crate::operator::Selector;
use crate::proto::now_ms;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(page::index))
        .route("/app.js", get(page::script))
        .route("/rollouts.js", get(page::rollouts_script))
        .route("/app.css", get(page::style))
        .route("/api/devices", get(devices))
        .route("/api/devices/{id}", get(device))
        .route("/api/rollouts", get(rollouts).post(start))
        .route("/api/rollouts/{id}", get(rollout))
        .route("/api/rollouts/{id}/{action}", post(act))
        .route("/metrics", get(prometheus))
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            require_login,
        ))
        .with_state(shared)
}

async fn require_login(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    let user = match header {
        // Argon2 takes tens of milliseconds of CPU: off the async threads
        Some(h) => {
            let s = s.clone();
            tokio::task::spawn_blocking(move || s.passwords.check_basic(&h))
                .await
                .ok()
                .flatten()
        }
        None => None,
    };
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|t| t.split(';').next().unwrap_or("").trim() == "application/json");
    match user {
        Some(_) if req.method() == axum::http::Method::POST && !json => err(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a POST carries Content-Type: application/json",
        ),
        Some(user) => {
            let span = tracing::debug_span!("request", %user, path = %req.uri().path());
            next.run(req).instrument(span).await
        }
        None => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"edge-fleet\"")],
            "login required\n",
        )
            .into_response(),
    }
}

fn err(code: StatusCode, msg: impl Into<String>) -> Response {
    (code, axum::Json(json!({ "error": msg.into() }))).into_response()
}

fn row(e: &DeviceEntry) -> serde_json::Value {
    let d = &e.view;
    let t = d.telemetry.as_ref();
    json!({
        "device": d.id,
        "online": d.online(),
        "last_seen_ms": d.last_seen_ms(),
        "telemetry_ts_ms": t.map(|t| t.ts_ms),
        "board": t.and_then(|t| t.daemon.board.clone()),
        "encoder": d.encoder(),
        "labels": t.map(|t| t.labels.clone()).unwrap_or_default(),
        "agent_version": d.version(),
        "image_slot": t.and_then(|t| t.daemon.image_slot.clone()),
        "image_version": t.and_then(|t| t.daemon.image_version.clone()),
        "update": t.and_then(|t| t.daemon.update.clone()),
        "streams": t.and_then(|t| t.daemon.streams),
        "fps": t.and_then(|t| t.daemon.fps),
        "realtime_factor": t.and_then(|t| t.daemon.realtime_factor),
        "cpu_percent": t.and_then(|t| t.system.cpu_percent),
        "temperature_c": t.and_then(|t| t.system.temperature_c),
        "stake_wei": t.and_then(|t| t.daemon.chain.as_ref().map(|c| c.stake_wei.clone())),
        "desired_version": d.desired.as_ref().map(|x| x.version),
        "applied_version": d.reported.as_ref().map(|r| r.applied_version),
        "last_config_error": d.reported.as_ref().and_then(|r| r.last_error.clone()),
    })
}

#[derive(Deserialize)]
struct ListQuery {
    select: Option<String>,
}

async fn devices(State(s): State<Arc<Shared>>, Query(q): Query<ListQuery>) -> Response {
    let sel: Option<Selector> = match q.select.as_deref().map(str::parse).transpose() {
        Ok(s) => s,
        Err(e) => return err(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let c = s.lock();
    let rows: Vec<_> = c
        .fleet
        .devices
        .values()
        .filter(|e| sel.as_ref().is_none_or(|s| s.matches(&e.view)))
        .map(row)
        .collect();
    axum::Json(rows).into_response()
}

async fn device(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let c = s.lock();
    match c.fleet.devices.get(&id) {
        Some(e) => axum::Json(e).into_response(),
        None => err(StatusCode::NOT_FOUND, format!("no device `{id}`")),
    }
}

async fn rollouts(State(s): State<Arc<Shared>>) -> Response {
    axum::Json(s.lock().rollouts.clone()).into_response()
}

async fn rollout(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match s.lock().rollouts.iter().find(|r| r.id == id) {
        Some(r) => axum::Json(r).into_response(),
        None => err(StatusCode::NOT_FOUND, format!("no rollout `{id}`")),
    }
}

async fn start(State(s): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    let spec: RolloutSpec = match serde_json::from_slice(&body) {
        Ok(x) => x,
        Err(e) => return err(StatusCode::BAD_REQUEST, format!("rollout spec: {e}")),
    };
    if let Err(e) = spec.check() {
        return err(StatusCode::BAD_REQUEST, e);
    }
    let sel: Selector = match spec.selector.parse() {
        Ok(x) => x,
        Err(e) => return err(StatusCode::BAD_REQUEST, format!("{e}")),
    };
    let mut c = s.lock();
    let targets: Vec<TargetInit> = c
        .fleet
        .devices
        .values()
        .filter(|e| sel.matches(&e.view))
        .map(|e| TargetInit {
            device: e.view.id.clone(),
            previous: e.view.desired.clone(),
            next_version: e.view.next_version(),
            reported_version: e.view.reported.as_ref().map_or(0, |r| r.applied_version),
            online: e.view.online(),
            image_version: e
                .view
                .telemetry
                .as_ref()
                .and_then(|t| t.daemon.image_version.clone()),
            update_ts_ms: e
                .view
                .telemetry
                .as_ref()
                .and_then(|t| t.daemon.update.as_ref())
                .map_or(0, |u| u.ts_ms),
        })
        .collect();
    if targets.is_empty() {
        return err(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no device matches the selector",
        );
    }
    let busy: Vec<String> = c
        .rollouts
        .iter()
        .filter(|r| r.active())
        .flat_map(|r| r.targets.iter().map(move |t| (r, t)))
        .filter(|(_, t)| targets.iter().any(|n| n.device == t.device))
        .map(|(r, t)| format!("{} (rollout {})", t.device, r.id))
        .collect();
    if !busy.is_empty() {
        return err(
            StatusCode::CONFLICT,
            format!("already in an unfinished rollout: {}", busy.join(", ")),
        );
    }
    let id = c
        .rollouts
        .iter()
        .filter_map(|r| r.id.parse::<u64>().ok())
        .max()
        .unwrap_or(0)
        + 1;
    let r = Rollout::new(id.to_string(), spec, targets, now_ms());
    tracing::info!(id = %r.id, targets = r.targets.len(), waves = r.waves, "rollout started");
    c.rollouts.push(r.clone());
    if let Err(e) = s.store.save(&c.rollouts) {
        c.rollouts.pop();
        return err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    }
    (StatusCode::CREATED, axum::Json(r)).into_response()
}

async fn act(State(s): State<Arc<Shared>>, Path((id, action)): Path<(String, String)>) -> Response {
    let now = now_ms();
    let mut c = s.lock();
    let Some(i) = c.rollouts.iter().position(|r| r.id == id) else {
        return err(StatusCode::NOT_FOUND, format!("no rollout `{id}`"));
    };
    let before = c.rollouts[i].clone();
    let r = &mut c.rollouts[i];
    let outcome = match action.as_str() {
        "pause" => r.pause().map(|_| Vec::new()),
        "resume" => r.resume(now).map(|_| Vec::new()),
        "abort" => r.abort().map(|_| Vec::new()),
        "rollback" => r.request_rollback(now),
        other => return err(StatusCode::NOT_FOUND, format!("no action `{other}`")),
    };
    match outcome {
        Ok(actions) => {
            tracing::info!(id = %id, action = %action, "rollout action");
            let r = c.rollouts[i].clone();
            if let Err(e) = s.store.save(&c.rollouts) {
                c.rollouts[i] = before;
                return err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
            }
            c.outbox.extend(actions);
            axum::Json(r).into_response()
        }
        Err(e) => err(StatusCode::CONFLICT, e),
    }
}

async fn prometheus(State(s): State<Arc<Shared>>) -> Response {
    let c = s.lock();
    let text = metrics::render(&c.fleet, &c.rollouts, now_ms());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
