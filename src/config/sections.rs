//! The parts of `odoo.conf` that Odoo itself reads too: the object storage,
//! PostgreSQL and SMTP, with Odoo's meanings.

/// Where the backups are: a MinIO or other S3-compatible server.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageConfig {
    /// `http(s)://host:port`; `minio_endpoint` or `MINIO_ENDPOINT`.
    pub endpoint: Option<String>,
    /// `minio_access_key` or `MINIO_ACCESS_KEY`.
    pub access_key: Option<String>,
    /// `minio_secret_key` or `MINIO_SECRET_KEY`.
    pub secret_key: Option<String>,
    /// `minio_region`, default `us-east-1`.
    pub region: String,
    /// `backups_minio_bucket`, default `dev-backups`.
    pub bucket: String,
}

/// How to reach PostgreSQL, with Odoo's meanings.
#[derive(Debug, Clone, PartialEq)]
pub struct DbConfig {
    /// `db_host`; `None` means the local socket.
    pub host: Option<String>,
    /// `db_port`; `None` means libpq's default (5432).
    pub port: Option<u16>,
    /// `db_user`; `None` means the operating system user, as with libpq.
    pub user: Option<String>,
    /// `db_password`.
    pub password: Option<String>,
    /// `db_sslmode`, default `prefer`.
    pub sslmode: String,
    /// `db_template`, default `template0`.
    pub template: String,
}

impl DbConfig {
    /// The role that owns this instance's databases (`db_user`, else the OS user).
    pub fn role(&self) -> String {
        self.user.clone().unwrap_or_else(|| std::env::var("USER").unwrap_or_else(|_| "postgres".into()))
    }
}

/// The SMTP server Odoo itself would use, for the fallback mail.
#[derive(Debug, Clone, PartialEq)]
pub struct SmtpConfig {
    /// `smtp_server`, default `localhost`.
    pub server: String,
    /// `smtp_port`, default 25.
    pub port: u16,
    /// `smtp_user`.
    pub user: Option<String>,
    /// `smtp_password`.
    pub password: Option<String>,
    /// `smtp_ssl`: in Odoo this means STARTTLS.
    pub starttls: bool,
    /// `email_from`: sender, and recipient when the payload carries no address.
    pub email_from: Option<String>,
}
