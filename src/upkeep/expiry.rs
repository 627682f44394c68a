//! Copies' life (`numikube_staging_expire_after`): each copy's marker says
//! when it expires; the requester is mailed `numikube_staging_expire_warning`
//! before (once), and the sweep drops expired copies like a Drop job.
//! `staging_extend` pushes an expiry back ([`extend`]).
//!
//! Nobody loses a copy by surprise: copies made before expiry was set get an
//! expiry counted from the first sweep that sees them, and a copy whose
//! notice goes out late (the sidecar was down) gets the full notice period.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::Upkeep;
use crate::copy;
use crate::pg::{DatabaseRow, Db, DbError, MarkerState};
use crate::report::mail;
use crate::services::Services;

/// One read-modify-write of copies' markers at a time (the sweep, `staging_extend`).
static MARKER_WRITES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Why a copy's expiry cannot be pushed back.
#[derive(Debug, thiserror::Error)]
pub enum ExtendError {
    /// `numikube_staging_expire_after` is not set.
    #[error("Copies do not expire on this staging server (numikube_staging_expire_after is not set): there is nothing to extend.")]
    NoExpiry,
    /// The name is not one of the sidecar's finished copies.
    #[error("\"{0}\" is not one of the copies the staging service made on this server.")]
    NotACopy(String),
    /// PostgreSQL cannot be read or written.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// `from` plus `span`, saturating far in the future.
fn later(from: DateTime<Utc>, span: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(span).ok().and_then(|d| from.checked_add_signed(d)).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `at` minus `span`, saturating far in the past.
fn earlier(at: DateTime<Utc>, span: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(span).ok().and_then(|d| at.checked_sub_signed(d)).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// A finished copy of the sidecar's, under its final name, in Odoo's list.
fn is_copy(db: &Db, row: &DatabaseRow) -> bool {
    db.in_instance_list(row) && row.marker.as_ref().is_some_and(|m| m.state == MarkerState::Done)
}

/// Pushes the expiry of copy `name` back to `numikube_staging_expire_after`
/// from now (never earlier than it was) and returns it; the notice is due again.
pub async fn extend(services: &Services, name: &str) -> Result<DateTime<Utc>, ExtendError> {
    let life = services.config.expire_after.ok_or(ExtendError::NoExpiry)?;
    let _one = MARKER_WRITES.lock().await;
    let rows = services.db.all(false).await?;
    let row = rows.iter().find(|r| r.name == name && is_copy(&services.db, r)).ok_or_else(|| ExtendError::NotACopy(name.into()))?;
    let mut marker = row.marker.clone().expect("a copy has its marker");
    let at = marker.expires_at.map_or(later(Utc::now(), life), |before| before.max(later(Utc::now(), life)));
    marker.expires_at = Some(at);
    marker.expiry_warned = false;
    services.db.set_marker(name, &marker).await?;
    tracing::info!(db = %name, expires_at = %at.to_rfc3339(), "expiry pushed back");
    Ok(at)
}

/// Mails the notices that are due and drops the expired copies; does nothing
/// when copies do not expire. A failure is logged and left to the next sweep.
pub async fn sweep(upkeep: &Upkeep) {
    let Some(life) = upkeep.services.config.expire_after else {
        return;
    };
    if let Err(e) = sweep_with(upkeep, life).await {
        tracing::warn!("cannot look for expired copies now: {e}");
    }
}

/// One pass over the copies: expiry for those without, notices due, drops due.
async fn sweep_with(upkeep: &Upkeep, life: Duration) -> Result<(), DbError> {
    let services = &upkeep.services;
    let (config, db) = (&services.config, &services.db);
    let _one = MARKER_WRITES.lock().await;
    let rows = db.all(false).await?;
    // A refresh under way replaces the copy: it is not this sweep's.
    let in_flight = upkeep.jobs.in_flight();
    for row in rows.iter().filter(|r| is_copy(db, r) && !in_flight.contains(&r.name)) {
        let mut marker = row.marker.clone().expect("a copy has its marker");
        let now = Utc::now();
        let Some(mut expires_at) = marker.expires_at else {
            marker.expires_at = Some(later(now, life));
            if let Err(e) = db.set_marker(&row.name, &marker).await {
                tracing::error!(db = %row.name, "could not give the copy its expiry: {e}; the next sweep tries again");
                continue;
            }
            tracing::info!(db = %row.name, expires_at = ?marker.expires_at, "a copy made before copies expired gets its expiry, counted from now");
            continue;
        };
        if !marker.expiry_warned && now >= earlier(expires_at, config.expire_warning) {
            if marker.requested_by.is_none() && config.smtp.email_from.is_none() {
                tracing::warn!(db = %row.name, "nobody to tell that the copy expires soon: no requester and no email_from");
                marker.expiry_warned = true;
            } else {
                // A late notice (the sidecar was down) still gives its full period.
                let notice = expires_at.max(later(now, config.expire_warning));
                match mail::send_expiry_warning(config, marker.requested_by.as_deref(), &row.name, notice).await {
                    Ok(to) => {
                        tracing::info!(db = %row.name, %to, expires_at = %notice.to_rfc3339(), "told the requester that the copy expires soon");
                        (marker.expiry_warned, marker.expires_at, expires_at) = (true, Some(notice), notice);
                    }
                    Err(e) => {
                        tracing::warn!(db = %row.name, "could not mail that the copy expires soon: {e}; trying again at the next sweep")
                    }
                }
            }
            if marker.expiry_warned {
                if let Err(e) = db.set_marker(&row.name, &marker).await {
                    // Not recorded: the notice may go out once more, never the copy early.
                    tracing::error!(db = %row.name, "could not record that the notice went out: {e}");
                    continue;
                }
            }
        }
        if now >= expires_at {
            drop_expired(services, row, expires_at).await;
        }
    }
    Ok(())
}

/// Drops an expired copy and its filestore, as a Drop job would.
async fn drop_expired(services: &Services, row: &DatabaseRow, expired_at: DateTime<Utc>) {
    let requested_by = row.marker.as_ref().and_then(|m| m.requested_by.clone()).unwrap_or_default();
    match copy::drop_with_filestore(services, &row.name).await {
        Ok(()) => {
            services.metrics.swept(crate::metrics::Swept::Database, 1);
            tracing::info!(db = %row.name, expired_at = %expired_at.to_rfc3339(), %requested_by, "dropped the expired copy");
        }
        Err(e) => {
            tracing::error!(db = %row.name, "could not drop the expired copy: {e}; trying again at the next sweep")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_saturate_instead_of_overflowing() {
        let now = Utc::now();
        assert_eq!(later(now, Duration::from_secs(60)) - now, TimeDelta::seconds(60));
        assert_eq!(now - earlier(now, Duration::from_secs(60)), TimeDelta::seconds(60));
        assert_eq!(later(now, Duration::MAX), DateTime::<Utc>::MAX_UTC);
        assert_eq!(earlier(now, Duration::MAX), DateTime::<Utc>::MIN_UTC);
    }
}
