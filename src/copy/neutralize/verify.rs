//! After the neutralization scripts, in the same transaction: what must be
//! off is checked, and any survivor fails the copy (docs/contract.md, *Neutralize*:
//! fail closed). Each check runs only where its table and columns exist.

use tokio_postgres::Transaction;

/// One check: a name for the report, the table and columns it needs, and a
/// query listing the survivors (as text).
struct Check {
    what: &'static str,
    needs: &'static [(&'static str, &'static str)],
    survivors: &'static str,
}

/// The value base's script gives webhooks.
const NEUTRALIZED_WEBHOOK: &str = "neutralization - disable webhook";

const CHECKS: &[Check] = &[
    Check {
        what: "no mail server but Odoo's dummy one",
        needs: &[("ir_mail_server", "smtp_host"), ("ir_mail_server", "active")],
        survivors: "SELECT name || ' (' || coalesce(smtp_host, '') || ')' FROM ir_mail_server WHERE active AND coalesce(smtp_host, '') <> 'invalid'",
    },
    Check {
        what: "no fetchmail server",
        needs: &[("fetchmail_server", "active")],
        survivors: "SELECT name::text FROM fetchmail_server WHERE active",
    },
    Check {
        what: "no scheduled action but the autovacuum",
        needs: &[("ir_cron", "active")],
        survivors: "SELECT 'ir_cron ' || id FROM ir_cron WHERE active AND id NOT IN (
                        SELECT res_id FROM ir_model_data WHERE model = 'ir.cron' AND module = 'base' AND name = 'autovacuum_job')",
    },
    Check {
        what: "no payment provider outside test or disabled",
        needs: &[("payment_provider", "state")],
        survivors: "SELECT 'payment_provider ' || id || ' (' || state || ')' FROM payment_provider WHERE state NOT IN ('test', 'disabled')",
    },
    Check {
        what: "no webhook to production's partners",
        needs: &[("ir_act_server", "webhook_url")],
        survivors: "SELECT 'ir_act_server ' || id FROM ir_act_server WHERE state = 'webhook' AND webhook_url IS DISTINCT FROM 'neutralization - disable webhook'",
    },
    Check {
        what: "no staging environment token",
        needs: &[("staging_environment", "token")],
        survivors: "SELECT 'staging_environment ' || id FROM staging_environment WHERE coalesce(token, '') <> ''",
    },
    Check {
        what: "database.is_neutralized",
        needs: &[("ir_config_parameter", "value")],
        survivors: "SELECT 'database.is_neutralized is not set' WHERE NOT EXISTS (
                        SELECT 1 FROM ir_config_parameter WHERE key = 'database.is_neutralized' AND lower(value) IN ('true', '1'))",
    },
];

/// What survived the neutralization.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {} still there", survivors.join(", "))]
pub struct Survivors {
    /// The check that failed.
    pub what: &'static str,
    /// What is still on.
    pub survivors: Vec<String>,
}

async fn has_column(tx: &Transaction<'_>, table: &str, column: &str) -> Result<bool, tokio_postgres::Error> {
    let row = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns
                             WHERE table_schema = 'public' AND table_name = $1 AND column_name = $2)",
            &[&table, &column],
        )
        .await?;
    Ok(row.get(0))
}

/// Runs every check that applies; returns what was verified, or the first survivors.
pub async fn verify(tx: &Transaction<'_>) -> Result<Result<Vec<String>, Survivors>, tokio_postgres::Error> {
    debug_assert!(CHECKS.iter().any(|c| c.survivors.contains(NEUTRALIZED_WEBHOOK)));
    let mut verified = Vec::new();
    for check in CHECKS {
        let mut applies = true;
        for (table, column) in check.needs {
            applies &= has_column(tx, table, column).await?;
        }
        if !applies {
            continue;
        }
        let survivors: Vec<String> = tx.query(check.survivors, &[]).await?.iter().map(|r| r.get::<_, String>(0)).collect();
        if !survivors.is_empty() {
            return Ok(Err(Survivors { what: check.what, survivors }));
        }
        verified.push(check.what.to_string());
    }
    Ok(Ok(verified))
}
