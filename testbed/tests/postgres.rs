//! testbed::Postgres is a real PostgreSQL server: tokio-postgres speaks the wire
//! protocol to it, creates a database, and sees it stop and come back.

use numikube_testbed::Postgres;

async fn connect(conninfo: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(conninfo, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

#[tokio::test]
async fn cluster_serves_tokio_postgres_and_psql_and_restarts() {
    let mut pg = Postgres::start().expect("start PostgreSQL");
    assert_eq!(pg.host(), "127.0.0.1");
    assert!(pg.socket_dir.join(format!(".s.PGSQL.{}", pg.port)).exists(), "Unix socket in socket_dir");
    assert!(pg.bin_dir.join("pg_dump").is_file());

    // CREATE DATABASE over the wire protocol, then work inside it.
    let admin = connect(&pg.conninfo("postgres")).await.expect("connect");
    admin.batch_execute("CREATE DATABASE \"cosmos-lab_x\"").await.unwrap();
    let db = connect(&pg.url("cosmos-lab_x")).await.expect("connect by URL");
    db.batch_execute("CREATE TABLE t (v int); INSERT INTO t VALUES (41), (1)").await.unwrap();
    let sum: i64 = db.query_one("SELECT sum(v) FROM t", &[]).await.unwrap().get(0);
    assert_eq!(sum, 42);
    let version: String = admin.query_one("SHOW server_version", &[]).await.unwrap().get(0);
    assert!(!version.is_empty());
    let encoding: String = admin.query_one("SHOW server_encoding", &[]).await.unwrap().get(0);
    assert_eq!(encoding, "UTF8");

    // psql sees the same server; errors stop it.
    assert_eq!(pg.psql("cosmos-lab_x", "SELECT count(*) FROM t;\nSELECT 'a', 'b';").unwrap(), "2\na|b");
    let err = pg.psql("postgres", "SELECT 1/0; SELECT 2;").unwrap_err().to_string();
    assert!(err.contains("division by zero"), "{err}");

    // A role with a password and CREATEDB.
    pg.create_role("odoo", "s3cret'x", true).unwrap();
    let odoo = connect(&format!("host=127.0.0.1 port={} user=odoo password='s3cret\\'x' dbname=postgres", pg.port))
        .await
        .expect("connect as the new role");
    odoo.batch_execute("CREATE DATABASE made_by_odoo").await.unwrap();
    let owner = pg.psql("postgres", "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'made_by_odoo'").unwrap();
    assert_eq!(owner, "odoo");
    drop((admin, db, odoo));

    // Down, then up again on the same port with the same data.
    pg.stop().unwrap();
    assert!(!pg.is_running());
    assert!(connect(&pg.conninfo("postgres")).await.is_err(), "stopped server refuses connections");
    pg.start_again().unwrap();
    let again = connect(&pg.conninfo("cosmos-lab_x")).await.expect("reconnect after start_again");
    let sum: i64 = again.query_one("SELECT sum(v) FROM t", &[]).await.unwrap().get(0);
    assert_eq!(sum, 42);
    drop(again);

    // Drop stops the server and removes its directory.
    let (port, data_dir) = (pg.port, pg.data_dir().to_owned());
    drop(pg);
    assert!(!data_dir.exists(), "cluster directory removed");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "server stopped");
}

#[test]
fn two_clusters_side_by_side() {
    let a = Postgres::start().unwrap();
    let b = Postgres::start().unwrap();
    assert_ne!(a.port, b.port);
    a.psql("postgres", "CREATE DATABASE only_in_a").unwrap();
    let in_b = b.psql("postgres", "SELECT count(*) FROM pg_database WHERE datname = 'only_in_a'").unwrap();
    assert_eq!(in_b, "0");
}

#[test]
fn cluster_is_removed_when_a_test_panics() {
    let data_dir = std::sync::Mutex::new(None);
    let result = std::panic::catch_unwind(|| {
        let pg = Postgres::start().unwrap();
        *data_dir.lock().unwrap() = Some((pg.port, pg.data_dir().to_owned()));
        panic!("test failure while PostgreSQL runs");
    });
    assert!(result.is_err());
    let (port, dir) = data_dir.lock().unwrap().take().unwrap();
    assert!(!dir.exists());
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}
