//! One connection to the target database: the bulk-load settings, pg_dump's own
//! session settings replayed up to where a statement stands, and statements run
//! with the tolerated failures told apart.

use tokio_postgres::{Client, Config, NoTls};

use crate::error::{head, pg_message, LoadError};
use crate::report::{Tally, Tolerated};
use crate::tolerate::Tolerance;

/// Settings of every connection, for the load only: commits need not wait for the
/// WAL flush (a crash loses the half-made copy anyway, which is dropped), and index
/// builds get more memory than the 64 MB default.
const BULK: &str = "SET synchronous_commit = off; SET maintenance_work_mem = '256MB'";

/// What a connection going back to an earlier session state runs first.
const RESET: &str = "RESET ALL; RESET ROLE; RESET SESSION AUTHORIZATION";

/// A session-level statement of the dump (`SET …`, `set_config(…, false)`).
#[derive(Debug, Clone)]
pub(crate) struct SessionStmt {
    /// 1-based line where it starts.
    pub line: u64,
    /// Its text.
    pub text: String,
    /// Whether its failure may be tolerated.
    pub tolerance: Option<Tolerance>,
}

/// A connection and how much of the dump's session settings it has applied.
pub(crate) struct Conn {
    client: Client,
    applied: usize,
}

impl Conn {
    /// Connects (without TLS, like the sidecar) and applies the bulk-load settings.
    pub(crate) async fn open(target: &Config) -> Result<Conn, LoadError> {
        let (client, connection) = target.connect(NoTls).await.map_err(LoadError::Connect)?;
        tokio::spawn(async move {
            // Ends when the client is dropped; an error shows in the client's next call.
            let _ = connection.await;
        });
        client.batch_execute(BULK).await.map_err(LoadError::Connect)?;
        Ok(Conn { client, applied: 0 })
    }

    /// The client, for COPY.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// Runs one statement in autocommit; a failure its tolerance accepts is recorded
    /// in `tally` instead of failing.
    pub(crate) async fn exec(&self, line: u64, text: &str, tolerance: Option<Tolerance>, tally: &Tally) -> Result<(), LoadError> {
        tally.sent(text.len());
        match self.client.batch_execute(text).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let message = pg_message(&e);
                let code = e.code().map(|c| c.code().to_owned());
                match (tolerance, code) {
                    (Some(t), Some(code)) if t.accepts(&code) => {
                        tally.tolerate(Tolerated { line, head: head(text), message });
                        Ok(())
                    }
                    _ => Err(LoadError::Statement { line, head: head(text), message }),
                }
            }
        }
    }

    /// Whether both tables exist and neither is partitioned, a partition, or in an
    /// inheritance tree (false when unsure).
    pub(crate) async fn plain_tables(&self, tables: &[String; 2]) -> bool {
        let sql = "SELECT count(*) = 2 AND NOT bool_or(relkind = 'p' OR relhassubclass OR relispartition OR \
                   EXISTS (SELECT FROM pg_inherits WHERE inhrelid = c.oid)) \
                   FROM pg_class c WHERE c.oid IN (to_regclass($1), to_regclass($2))";
        let row = self.client.query_one(sql, &[&tables[0], &tables[1]]).await;
        row.ok().and_then(|r| r.get::<_, Option<bool>>(0)).unwrap_or(false)
    }

    /// Brings the session to the state after the first `upto` session statements of
    /// `log`: applies the missing ones, or starts over when it is ahead.
    pub(crate) async fn sync(&mut self, log: &[SessionStmt], upto: usize, tally: &Tally) -> Result<(), LoadError> {
        if self.applied == upto {
            return Ok(());
        }
        if self.applied > upto {
            let fail = |e| LoadError::Statement { line: 0, head: RESET.into(), message: pg_message(&e) };
            self.client.batch_execute(RESET).await.map_err(fail)?;
            self.client.batch_execute(BULK).await.map_err(fail)?;
            self.applied = 0;
        }
        for s in &log[self.applied..upto] {
            self.exec(s.line, &s.text, s.tolerance, tally).await?;
        }
        self.applied = upto;
        Ok(())
    }
}
