//! The registry's session: one connection to `postgres` per process, opened
//! again when it is lost (a restart of PostgreSQL), with the locks of the
//! jobs still running taken again on the new one.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::OwnedMutexGuard;
use tokio_postgres::{Client, NoTls, Statement};

use super::keys::{role_key, ADMISSION};
use crate::pg::db::CONNECT_TIMEOUT;
use crate::pg::{describe, Db, DbError};

/// How long an admission waits for another process's admission or drop.
const LOCK_TIMEOUT: &str = "20s";

/// What a registry is: the role's key, the session, the book of locks held.
pub(super) struct Inner {
    db: Db,
    /// `role_key` of `db_user`.
    pub(super) role: i32,
    conn: Arc<tokio::sync::Mutex<Conn>>,
    book: Mutex<Book>,
}

/// The registry connection, used by one round (or flush) at a time.
#[derive(Default)]
pub(super) struct Conn {
    live: Option<(Client, Statements)>,
}

/// The statements of one session, prepared once.
pub(super) struct Statements {
    /// Keys of every process's jobs in flight (`$1`: the role's key).
    pub(super) held: Statement,
    /// Takes each key of `$2` if free: `(key, taken)`, in order.
    pub(super) take: Statement,
    /// Releases each key of `$2` once.
    pub(super) give_back: Statement,
}

/// What this process's jobs hold, so that a new session can take it again.
#[derive(Default)]
struct Book {
    /// Keys held, with how many of this process's reservations hold each.
    held: HashMap<i32, usize>,
    /// Keys given back whose lock is still to be released on the current session.
    pending: Vec<i32>,
    /// A task to release them is on its way (one at a time, so ends do not queue up).
    flush_soon: bool,
}

impl Conn {
    /// The open session (a [`Conn`] handed out by [`Inner::session`] has one).
    pub(super) fn client(&self) -> (&Client, &Statements) {
        let (client, statements) = self.live.as_ref().expect("an open registry session");
        (client, statements)
    }
}

impl Inner {
    /// The registry of `db`'s role, not connected yet.
    pub(super) fn new(db: &Db) -> Inner {
        let role = role_key(&db.role());
        Inner { db: db.clone(), role, conn: Default::default(), book: Default::default() }
    }

    /// The database server.
    pub(super) fn db(&self) -> &Db {
        &self.db
    }

    /// The session, for this caller alone, open (ended jobs' locks may
    /// still be held: see [`Inner::take_pending`]).
    pub(super) async fn session(self: &Arc<Self>) -> Result<OwnedMutexGuard<Conn>, DbError> {
        let mut conn = self.conn.clone().lock_owned().await;
        self.connect_if_needed(&mut conn).await?;
        Ok(conn)
    }

    /// The keys given back whose locks the caller, holding the session, now releases.
    pub(super) fn take_pending(&self) -> Vec<i32> {
        let mut book = self.book.lock().unwrap();
        book.flush_soon = false;
        std::mem::take(&mut book.pending)
    }

    /// Notes a key taken on the current session for one more reservation.
    pub(super) fn reserved(&self, key: i32) {
        *self.book.lock().unwrap().held.entry(key).or_default() += 1;
    }

    /// A reservation of `key` ends: its lock is released soon (at once,
    /// unless a round runs, which releases it before reading).
    pub(super) fn give_back(self: Arc<Self>, key: i32) {
        {
            let mut book = self.book.lock().unwrap();
            // Lost to another process while the server was away: nothing to release.
            let Some(count) = book.held.get_mut(&key) else {
                return;
            };
            *count -= 1;
            if *count == 0 {
                book.held.remove(&key);
            }
            book.pending.push(key);
            if std::mem::replace(&mut book.flush_soon, true) {
                return;
            }
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let mut conn = self.conn.clone().lock_owned().await;
                self.flush(&mut conn).await;
            });
        }
    }

    /// A DbError for a failed registry statement, saying so when the connection is gone.
    pub(super) fn lost(&self, e: &tokio_postgres::Error) -> DbError {
        if e.is_closed() {
            return self.db.err(format!(
                "closed the connection that holds the jobs in flight ({}); it is opened again at the next request",
                describe(e)
            ));
        }
        self.db.err(describe(e))
    }

    /// Releases the locks of the reservations given back since the last flush.
    async fn flush(&self, conn: &mut Conn) {
        let keys = self.take_pending();
        if let Some((client, st)) = conn.live.as_ref() {
            self.release(client, st, &keys).await;
        }
    }

    /// Releases `keys` on the session (nothing to do on a lost one: the locks went with it).
    pub(super) async fn release(&self, client: &Client, st: &Statements, keys: &[i32]) {
        if keys.is_empty() {
            return;
        }
        match client.execute(&st.give_back, &[&self.role, &keys]).await {
            Err(e) if !e.is_closed() => {
                tracing::warn!("could not release the registry locks of {} ended job(s): {}", keys.len(), describe(&e))
            }
            _ => {}
        }
    }

    /// Opens the registry connection if it is not open, and takes again the
    /// locks this process's jobs held on a session that was lost.
    async fn connect_if_needed(self: &Arc<Self>, conn: &mut Conn) -> Result<(), DbError> {
        if conn.live.as_ref().is_some_and(|(c, _)| !c.is_closed()) {
            return Ok(());
        }
        conn.live = None;
        let (client, statements) = self.connect().await?;
        let again: Vec<i32> = {
            let mut book = self.book.lock().unwrap();
            // Whatever was to be released went with the old session.
            book.pending.clear();
            book.held.iter().flat_map(|(k, n)| std::iter::repeat_n(*k, *n)).collect()
        };
        if !again.is_empty() {
            let sql = format!("BEGIN; SELECT pg_advisory_xact_lock({}, {ADMISSION})", self.role);
            client.batch_execute(&sql).await.map_err(|e| self.lost(&e))?;
            let rows = client.query(&statements.take, &[&self.role, &again]).await.map_err(|e| self.lost(&e))?;
            client.batch_execute("COMMIT").await.map_err(|e| self.lost(&e))?;
            let lost: HashSet<i32> = rows.iter().filter(|r| !r.get::<_, bool>(1)).map(|r| r.get(0)).collect();
            if !lost.is_empty() {
                tracing::error!("{} job(s) in flight lost their place in the registry to another process while the database server was away; the limit may be exceeded until they end", lost.len());
                self.book.lock().unwrap().held.retain(|k, _| !lost.contains(k));
            }
            tracing::warn!(
                "the registry connection was opened again; {} job(s) in flight hold their place again",
                again.len() - lost.len()
            );
        }
        conn.live = Some((client, statements));
        Ok(())
    }

    async fn connect(self: &Arc<Self>) -> Result<(Client, Statements), DbError> {
        let pg = self.db.config_for("postgres");
        let (client, connection) = tokio::time::timeout(CONNECT_TIMEOUT, pg.connect(NoTls))
            .await
            .map_err(|_| self.db.err("did not answer in time"))?
            .map_err(|e| self.db.err(format!("refused the registry connection to database \"postgres\" ({e})")))?;
        let registry = Arc::downgrade(self);
        tokio::spawn(async move {
            let _ = connection.await;
            reconnect_while_needed(registry).await;
        });
        client.batch_execute(&format!("SET lock_timeout = '{LOCK_TIMEOUT}'")).await.map_err(|e| self.lost(&e))?;
        let prepare = |sql: &'static str| async { client.prepare(sql).await.map_err(|e| self.lost(&e)) };
        let statements = Statements {
            held: prepare(
                "SELECT DISTINCT l.objid::int8 FROM pg_locks l
                 WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
                   AND l.database = (SELECT oid FROM pg_database WHERE datname = 'postgres')
                   AND l.classid = $1::int4::oid AND l.objid <> 0",
            )
            .await?,
            take: prepare("SELECT k, pg_try_advisory_lock($1::int4, k) FROM unnest($2::int4[]) WITH ORDINALITY AS t(k, i) ORDER BY i")
                .await?,
            give_back: prepare("SELECT pg_advisory_unlock($1::int4, k) FROM unnest($2::int4[]) AS t(k)").await?,
        };
        Ok((client, statements))
    }
}

/// After the registry connection closed: while this process's jobs hold
/// places, opens it again (every second) so that they hold them again soon,
/// not only at the next admission.
/// (Boxed: the future opens connections that spawn it again.)
fn reconnect_while_needed(registry: Weak<Inner>) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let Some(inner) = registry.upgrade() else {
                return;
            };
            if inner.book.lock().unwrap().held.is_empty() {
                return;
            }
            let mut conn = inner.conn.clone().lock_owned().await;
            match inner.connect_if_needed(&mut conn).await {
                Ok(()) => return,
                Err(e) => tracing::warn!("the registry of jobs in flight is not back yet: {e}"),
            }
        }
    })
}
