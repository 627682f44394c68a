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
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use numikube_staging_rpc::PrewarmState;

use crate::app::App;
use crate::backup_source::Backup;
use crate::db::Marker;
use crate::{names, templates};

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

    fn set(&self, client: &str, state: impl Into<String>, backup: Option<&Backup>) {
        let mut states = self.states.lock().unwrap();
        states.insert(
            client.to_string(),
            PrewarmState {
                client: client.into(),
                state: state.into(),
                backup: backup.map(|b| b.key.clone()),
                checked_at: Some(Utc::now().to_rfc3339()),
            },
        );
    }
}

/// Starts the pre-warm loop if any client is configured.
pub fn spawn(app: Arc<App>) {
    if app.config.prewarm_clients.is_empty() {
        return;
    }
    for client in &app.config.prewarm_clients {
        app.prewarm.set(client, "waiting", None);
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(app.config.prewarm_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            for client in app.config.prewarm_clients.clone() {
                look(&app, &client).await;
            }
        }
    });
}

/// One look at the bucket for `client`; builds the template if it is missing.
async fn look(app: &Arc<App>, client: &str) {
    let backup = match app.source.newest(client).await {
        Ok(b) => b,
        Err(e) => return app.prewarm.set(client, e.to_string(), None),
    };
    if templates::usable(app, client, &backup).await.is_some() {
        return app.prewarm.set(client, "ready", Some(&backup));
    }
    if !app.config.template_cache {
        return app.prewarm.set(client, "off (numikube_staging_template_cache = False)", Some(&backup));
    }
    // Only when no user's job is in flight, and holding a restore slot.
    if !app.jobs.in_flight().is_empty() {
        return app.prewarm.set(client, "waiting for users' jobs", Some(&backup));
    }
    let Ok(_slot) = app.jobs.slots.clone().try_acquire_owned() else {
        return app.prewarm.set(client, "waiting for a restore slot", Some(&backup));
    };
    app.prewarm.set(client, "building", Some(&backup));
    let temp = names::temp_name(&uuid::Uuid::new_v4().to_string());
    let cancelled = app.jobs.user_arrived.notified();
    let outcome = tokio::select! {
        outcome = build(app, client, &backup, &temp) => outcome,
        _ = cancelled => Err("gave way to a user's job; will try again".to_string()),
    };
    match outcome {
        Ok(()) => app.prewarm.set(client, "ready", Some(&backup)),
        Err(e) => {
            tracing::warn!(client, "pre-warm: {e}");
            crate::copy::discard(app, &temp).await;
            app.prewarm.set(client, format!("not ready: {e}"), Some(&backup));
        }
    }
}

/// Restores and neutralizes `backup` into `temp`, then keeps it as the template.
async fn build(app: &App, client: &str, backup: &Backup, temp: &str) -> Result<(), String> {
    let marker = Marker::restoring(format!("prewarm-{client}"), temp.into(), client, backup);
    let report = crate::copy::restore_and_neutralize(app, temp, backup, &marker, Arc::new(AtomicU64::new(0)), &|_| {}, true)
        .await
        .map_err(|f| f.message)?;
    templates::adopt(app, temp, client, backup, &report).await?;
    tracing::info!(client, key = %backup.key, "pre-warmed");
    Ok(())
}
