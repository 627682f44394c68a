//! Ready before anyone asks: for each client of
//! `numikube_staging_prewarm_clients`, look at the bucket every
//! `numikube_staging_prewarm_interval` seconds and build the template of each
//! new newest backup in the background, so that a user's first request of the
//! day is already a template copy.
//!
//! Pre-warm gives way to users: it starts only when no user's job is in
//! flight and a restore slot is free, its client programs run niced, and a
//! user's job admitted meanwhile cancels it (its hidden database is dropped;
//! the next look at the bucket starts over).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use numikube_staging_rpc::{PrewarmState, Warmth};

use crate::admission::Admission;
use crate::copy::{self, templates, CopyError, Hidden};
use crate::job::Jobs;
use crate::pg::{Marker, MarkerState, WorkKind, WorkingName};
use crate::services::Services;
use crate::storage::Backup;

/// What pre-warm works with.
pub struct PrewarmContext {
    /// Configuration, PostgreSQL, the bucket.
    pub services: Arc<Services>,
    /// Restore slots, and the signal that a user's job arrived.
    pub admission: Arc<Admission>,
    /// Users' jobs in flight.
    pub jobs: Arc<Jobs>,
    /// The states it reports.
    pub prewarm: Arc<Prewarm>,
}

/// Pre-warm states by client, for `staging_health`.
#[derive(Default)]
pub struct Prewarm {
    states: Mutex<BTreeMap<String, PrewarmState>>,
}

impl Prewarm {
    /// Every client's state.
    pub fn states(&self) -> Vec<PrewarmState> {
        self.states.lock().unwrap().values().cloned().collect()
    }

    /// Whether a template is being built now (its hidden database has no job).
    pub fn is_building(&self) -> bool {
        self.states.lock().unwrap().values().any(|p| p.state == Warmth::Building)
    }

    fn set(&self, client: &str, state: Warmth, backup: Option<&Backup>) {
        let mut states = self.states.lock().unwrap();
        states.insert(
            client.to_string(),
            PrewarmState { client: client.into(), state, backup: backup.map(|b| b.key.clone()), checked_at: Some(Utc::now()) },
        );
    }
}

/// Starts the pre-warm loop if any client is configured.
pub fn spawn(ctx: PrewarmContext) {
    let config = &ctx.services.config;
    if config.prewarm_clients.is_empty() {
        return;
    }
    for client in &config.prewarm_clients {
        ctx.prewarm.set(client, Warmth::Waiting, None);
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(ctx.services.config.prewarm_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            for client in ctx.services.config.prewarm_clients.clone() {
                look(&ctx, &client).await;
            }
        }
    });
}

/// One look at the bucket for `client`; builds the template if it is missing.
async fn look(ctx: &PrewarmContext, client: &str) {
    let (services, prewarm) = (&ctx.services, &ctx.prewarm);
    let backup = match services.source.newest(client).await {
        Ok(b) => b,
        Err(e) => return prewarm.set(client, Warmth::NoBackup(e.to_string()), None),
    };
    if templates::usable(services, client, &backup, None).await.is_some() {
        return prewarm.set(client, Warmth::Ready, Some(&backup));
    }
    if !services.config.template_cache {
        return prewarm.set(client, Warmth::Off, Some(&backup));
    }
    // Only when no user's job is in flight, and holding a restore slot.
    if !ctx.jobs.in_flight().is_empty() {
        return prewarm.set(client, Warmth::WaitingForUsers, Some(&backup));
    }
    let Some(_slot) = ctx.admission.try_slot() else {
        return prewarm.set(client, Warmth::WaitingForSlot, Some(&backup));
    };
    prewarm.set(client, Warmth::Building, Some(&backup));
    let hidden = Hidden::new(services.clone(), WorkingName::fresh(WorkKind::Temp));
    let temp = hidden.name().to_string();
    let outcome = tokio::select! {
        outcome = build(services, client, &backup, &temp) => outcome,
        () = ctx.admission.user_arrived() => Err("gave way to a user's job; will try again".to_string()),
    };
    match outcome {
        Ok(()) => {
            hidden.placed();
            prewarm.set(client, Warmth::Ready, Some(&backup))
        }
        Err(e) => {
            tracing::warn!(client, "pre-warm: {e}");
            hidden.discard().await;
            prewarm.set(client, Warmth::NotReady(e), Some(&backup));
        }
    }
}

/// Restores and neutralizes `backup` into `temp`, then keeps it as the template.
async fn build(services: &Services, client: &str, backup: &Backup, temp: &str) -> Result<(), String> {
    let marker = Marker::new(MarkerState::Restoring, format!("prewarm-{client}"), temp.into(), client, backup);
    let load = copy::Load {
        temp,
        backup,
        marker: &marker,
        counters: &copy::Counters::default(),
        phase: &|_| {},
        timeline: &copy::Timeline::default(),
        low_priority: true,
        anonymize: false,
    };
    let loaded = copy::restore_and_neutralize(services, &load).await.map_err(|e: CopyError| e.to_string())?;
    templates::adopt(
        services,
        temp,
        client,
        backup,
        &templates::Kept { report: &loaded.report, filestore: Some(&loaded.origin.to_string()), masking: None },
    )
    .await
    .map_err(|e| e.to_string())?;
    tracing::info!(client, key = %backup.key, "pre-warmed");
    Ok(())
}
