//! Whether a request fits: its name free (or a refresh of the sidecar's own
//! copy), and room under `numikube_staging_database_limit`.

use std::collections::HashSet;

use super::AdmissionError;
use crate::job::{JobRequest, Jobs};
use crate::services::Services;

/// Refuses a request for a name that is taken or that the limit has no room for.
pub async fn check_room(services: &Services, jobs: &Jobs, request: &JobRequest) -> Result<(), AdmissionError> {
    // Read before the listing: a job that ends in between has renamed its
    // copy into place before it stops counting as in flight, so it is seen
    // one way or the other (read the other way round, it could be missed).
    let in_flight = jobs.in_flight();
    let rows = services.db.all(false).await.map_err(AdmissionError::Unavailable)?;
    // The database server is back: drop what a failed cleanup left.
    services.database_answered();
    if let Some(existing) = rows.iter().find(|r| r.name == request.db_name) {
        if existing.marker.is_none() {
            return Err(AdmissionError::Foreign(request.db_name.clone()));
        }
    }
    if in_flight.contains(&request.db_name) {
        return Err(AdmissionError::InFlight(request.db_name.clone()));
    }
    let mut counted: HashSet<String> = rows.iter().filter(|r| services.db.in_instance_list(r)).map(|r| r.name.clone()).collect();
    counted.extend(in_flight);
    // A finished copy stays hidden until its template is kept (see `publish`),
    // after its job has ended: it counts already, or the limit has a gap.
    counted.extend(rows.iter().filter(|r| r.is_being_published()).map(|r| r.name.clone()));
    let limit = services.config.database_limit;
    if !counted.contains(&request.db_name) && counted.len() >= limit {
        return Err(AdmissionError::LimitReached { count: counted.len(), limit });
    }
    Ok(())
}
