//! The console's one task on the broker: every fleet event goes into the fleet state and, as a rollout
//! event, into the active rollouts; then the rollouts are polled with the wall clock and what they ask is
//! published with the operator connection.  Rollouts are saved whenever they changed.

use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use super::rollout::{Action, Event};
use super::{ConsoleError, Shared};
use crate::operator::{FleetEvent, Operator};
use crate::proto::{Presence, now_ms};

/// Longest wait for a broker event before the rollouts are polled again.
pub const TICK: Duration = Duration::from_millis(100);

/// The rollout event a fleet event means, if any.
pub fn rollout_event(ev: &FleetEvent) -> Option<Event> {
    match ev {
        FleetEvent::Status { device, status } => Some(Event::Presence {
            device: device.clone(),
            online: status.state == Presence::Online,
        }),
        FleetEvent::Telemetry { device, telemetry } => Some(Event::Image {
            device: device.clone(),
            version: telemetry.daemon.image_version.clone(),
            update: telemetry.daemon.update.clone(),
        }),
        FleetEvent::CommandResult { device, result } => Some(Event::Answer {
            device: device.clone(),
            result: result.clone(),
        }),
        FleetEvent::Reported { device, reported } => Some(Event::Reported {
            device: device.clone(),
            applied_version: reported.applied_version,
            refused: reported
                .last_error
                .as_ref()
                .map(|e| (e.version, e.reason.clone())),
        }),
        FleetEvent::Desired { .. } | FleetEvent::Unparsable { .. } => None,
    }
}

pub async fn run(shared: Arc<Shared>, mut op: Operator) -> Result<(), ConsoleError> {
    op.follow().await?;
    loop {
        let ev = op.next_event(TICK).await?;
        let now = now_ms();
        let (actions, save) = {
            let mut c = shared.lock();
            if let Some(ev) = &ev {
                c.fleet.apply(ev);
            }
            if c.outbox.is_empty() && !c.rollouts.iter().any(|r| r.active()) {
                continue;
            }
            let before = c.rollouts.clone();
            if let Some(ev) = &ev {
                if let Some(rev) = rollout_event(ev) {
                    for r in c.rollouts.iter_mut().filter(|r| r.active()) {
                        r.on_event(&rev, now);
                    }
                }
            }
            let mut actions = std::mem::take(&mut c.outbox);
            for r in c.rollouts.iter_mut() {
                let span = tracing::info_span!("rollout", id = %r.id);
                let _g = span.enter();
                let phase = r.phase;
                actions.extend(r.poll(now));
                if r.phase != phase {
                    tracing::info!(
                        from = phase.as_str(),
                        to = r.phase.as_str(),
                        note = r.note.as_deref().unwrap_or(""),
                        "rollout phase"
                    );
                }
            }
            let save = c.rollouts != before;
            (actions, save.then(|| c.rollouts.clone()))
        };
        // saved before it is published: after a crash, a step is repeated (same version, same content:
        // the device reports again and applies nothing), never skipped
        if let Some(r) = save {
            let store = shared.clone();
            tokio::task::spawn_blocking(move || store.store.save(&r))
                .await
                .map_err(|e| ConsoleError::State(e.to_string()))??;
        }
        for action in actions {
            match action {
                Action::Publish { device, doc } => {
                    let span = tracing::info_span!("publish", %device, version = doc.version);
                    async {
                        tracing::info!("publishing desired config");
                        op.set_desired(&device, &doc).await
                    }
                    .instrument(span)
                    .await?;
                }
                Action::Command {
                    device,
                    request,
                    expiry_s,
                } => {
                    let span = tracing::info_span!("command", %device, id = %request.id);
                    async {
                        tracing::info!(name = %request.name, "sending command");
                        let payload = serde_json::to_vec(&request)
                            .map_err(|e| ConsoleError::State(e.to_string()))?;
                        op.send_command_raw(&device, payload, Duration::from_secs(expiry_s))
                            .await?;
                        Ok::<_, ConsoleError>(())
                    }
                    .instrument(span)
                    .await?;
                }
            }
        }
    }
}
