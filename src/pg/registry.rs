//! The registry of jobs in flight, shared by every process of one `db_user`
//! on one cluster (the server, a `restore` command, a second sidecar).
//!
//! Each admitted, unfinished job holds a *session* advisory lock in the
//! `postgres` database keyed by ([`role_key`] of `db_user`, [`name_key`] of its
//! final name), taken on one registry connection per process; every process
//! counts all of them from `pg_locks`. Admission is serialized across processes
//! by the *transaction* advisory lock (role key, 0). Advisory locks are per
//! database: every process must use `postgres`, as this one does.
//!
//! Keys are 32-bit FNV-1a hashes of the names' bytes. Two names with the same
//! key look like one: a name is then refused as "being created" while the other
//! is made, and one in-flight job may go uncounted beside a database of the
//! other name. With tens of names the odds are about n²/2³³ (10⁻⁸ for ten), which
//! buys the locks' two-int4 form and one `pg_locks` read for everything.

mod session;

use std::collections::HashSet;
use std::sync::{Arc, Weak};

use tokio::sync::OwnedMutexGuard;
use tokio_postgres::types::ToSql;
use tokio_postgres::Client;

use super::db::{Db, DbError};
use super::list::DatabaseRow;
mod keys;

use keys::ADMISSION;
pub use keys::{name_key, role_key};
use session::{Conn, Inner, Statements};

/// The registry of one process: its session and the locks its jobs hold.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

impl Registry {
    /// The registry of `db`'s role; nothing is contacted yet.
    pub fn new(db: &Db) -> Registry {
        Registry { inner: Arc::new(Inner::new(db)) }
    }

    /// Starts a round: takes the cross-process admission lock, reads the keys
    /// of every process's jobs in flight, then `pg_database` (in that order: a
    /// job renames its copy into place before it gives its key back, so it is
    /// seen one way or the other). Held until [`Round::end`] or drop.
    pub async fn begin(&self) -> Result<Round, DbError> {
        let inner = &self.inner;
        let conn = inner.session().await?;
        // Made first, so that a failure below rolls back (see its `Drop`).
        let mut round = Round { conn: Some(conn), inner: inner.clone(), in_flight: HashSet::new(), databases: Vec::new() };
        let (client, st) = round.client();
        let ended = inner.take_pending();
        let sql = format!("BEGIN; SELECT pg_advisory_xact_lock({}, {ADMISSION})", inner.role);
        let role: [&(dyn ToSql + Sync); 1] = [&inner.role];
        // Sent at once, run by PostgreSQL in this order, each statement with
        // its own snapshot: ended jobs' locks go, then the lock, the keys, the list.
        let ((), begun, held, databases) = tokio::join!(
            inner.release(client, st, &ended),
            client.batch_execute(&sql),
            client.query(&st.held, &role),
            inner.db().all_on(client, false),
        );
        begun.map_err(|e| inner.lost(&e))?;
        let held = held.map_err(|e| inner.lost(&e))?;
        // `objid` is an oid: the key's bits, unsigned.
        round.in_flight = held.iter().map(|r| r.get::<_, i64>(0) as u32 as i32).collect();
        round.databases = databases?;
        Ok(round)
    }
}

/// One admission round (or drop) holding the cross-process admission lock.
pub struct Round {
    conn: Option<OwnedMutexGuard<Conn>>,
    inner: Arc<Inner>,
    in_flight: HashSet<i32>,
    databases: Vec<DatabaseRow>,
}

impl Round {
    fn client(&self) -> (&Client, &Statements) {
        self.conn.as_ref().expect("a round has its session").client()
    }

    /// Keys of every process's jobs in flight when the round began.
    pub fn in_flight(&self) -> &HashSet<i32> {
        &self.in_flight
    }

    /// `pg_database`, read after the keys.
    pub fn databases(&self) -> &[DatabaseRow] {
        &self.databases
    }

    /// Whether a job of any process is making `name`.
    pub fn is_in_flight(&self, name: &str) -> bool {
        self.in_flight.contains(&name_key(name))
    }

    /// Takes one reservation per name, in order, and ends the round in the
    /// same trip; `None` where another session holds the key (a job of that
    /// name, or of a colliding one).
    pub async fn reserve_and_end(mut self, names: &[String]) -> Result<Vec<Option<Reservation>>, DbError> {
        let inner = self.inner.clone();
        let conn = self.conn.take().expect("a round ends once");
        let (client, st) = conn.client();
        let keys: Vec<i32> = names.iter().map(|n| name_key(n)).collect();
        let params: [&(dyn ToSql + Sync); 2] = [&inner.role, &keys];
        let (taken, committed) = tokio::join!(client.query(&st.take, &params), client.batch_execute("COMMIT"));
        let taken = taken.map_err(|e| inner.lost(&e))?;
        let reservations = taken
            .iter()
            .map(|row| {
                let (key, taken): (i32, bool) = (row.get(0), row.get(1));
                taken.then(|| {
                    inner.reserved(key);
                    Reservation { inner: Arc::downgrade(&inner), key }
                })
            })
            .collect();
        // Not committed (a lost session): dropped, the reservations give back what is left.
        committed.map_err(|e| inner.lost(&e))?;
        Ok(reservations)
    }

    /// Ends the round: the admission lock goes, reservations stay.
    pub async fn end(mut self) -> Result<(), DbError> {
        let conn = self.conn.take().expect("a round ends once");
        let (client, _) = conn.client();
        client.batch_execute("COMMIT").await.map_err(|e| self.inner.lost(&e))
    }
}

impl Drop for Round {
    /// A round cut short (an error, a cancelled drop) rolls back, so the
    /// admission lock never outlives it; session locks stay either way.
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = conn.client().0.batch_execute("ROLLBACK").await;
            });
        }
    }
}

/// A job's place in the registry; dropping it gives the place back.
pub struct Reservation {
    inner: Weak<Inner>,
    key: i32,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            inner.give_back(self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_never_the_admission_key() {
        // FNV-1a of the empty string and of "a", as published.
        assert_eq!(name_key("") as u32, 0x811c_9dc5);
        assert_eq!(name_key("a") as u32, 0xe40c_292c);
        assert_ne!(name_key("cosmos-lab_a"), name_key("cosmos-lab_b"));
        assert_eq!(role_key("odoo"), name_key("odoo"));
    }
}
