//! Whether a request fits: its name free (or a refresh of the sidecar's own
//! copy), and room under `numikube_staging_database_limit`, judged against
//! one reading of the registry and of `pg_database` for a whole round.

use std::collections::HashSet;

use super::error::AdmissionError;
use crate::job::JobRequest;
use crate::pg::registry::name_key;
use crate::pg::DatabaseRow;
use crate::services::Services;

/// The room left in one round: what is counted, and what is in flight.
pub struct Room<'a> {
    rows: &'a [DatabaseRow],
    /// Names counted as databases: the instance's list, and finished copies being published.
    counted: HashSet<&'a str>,
    /// Keys of the jobs in flight in every process, and of those admitted in this round.
    in_flight: HashSet<i32>,
    /// Databases plus jobs in flight, each name once.
    count: usize,
    limit: usize,
}

impl<'a> Room<'a> {
    /// The room given `rows` of `pg_database`, read after the keys `in_flight`.
    pub fn new(services: &Services, rows: &'a [DatabaseRow], in_flight: HashSet<i32>) -> Room<'a> {
        let mut counted: HashSet<&str> = rows.iter().filter(|r| services.db.in_instance_list(r)).map(|r| r.name.as_str()).collect();
        // A finished copy stays hidden until its template is kept (see `publish`),
        // after its job has ended: it counts already, or the limit has a gap.
        counted.extend(rows.iter().filter(|r| r.is_being_published()).map(|r| r.name.as_str()));
        let counted_keys: HashSet<i32> = counted.iter().map(|n| name_key(n)).collect();
        // A refresh in flight is counted once: as the database it replaces.
        let count = counted.len() + in_flight.iter().filter(|k| !counted_keys.contains(k)).count();
        Room { rows, counted, in_flight, count, limit: services.config.database_limit }
    }

    /// Takes the room for `request`, or says why there is none.
    pub fn admit(&mut self, request: &JobRequest) -> Result<(), AdmissionError> {
        let name = request.db_name.as_str();
        if let Some(existing) = self.rows.iter().find(|r| r.name == name) {
            if existing.marker.is_none() {
                return Err(AdmissionError::Foreign(name.into()));
            }
            // Names of two clients may meet (`cosmos` + `eu-lab`, `cosmos-eu` + `lab`):
            // a run never replaces another client's copy.
            if existing.client().as_deref() != Some(request.client.as_str()) {
                return Err(AdmissionError::OthersCopy { name: name.into(), client: request.client.clone() });
            }
            // A timestamped run never replaces anything; only a run without timestamp refreshes.
            if request.timestamped {
                return Err(AdmissionError::Recent(name.into()));
            }
        }
        let key = name_key(name);
        if self.in_flight.contains(&key) {
            return Err(AdmissionError::in_flight(request));
        }
        let new = !self.counted.contains(name);
        if new && self.count >= self.limit {
            return Err(AdmissionError::LimitReached { count: self.count, limit: self.limit });
        }
        self.in_flight.insert(key);
        self.count += usize::from(new);
        Ok(())
    }
}
