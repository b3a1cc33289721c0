//! Databases made for one test and dropped after it: a SQLite file or a PostgreSQL database,
//! and what a test does to one behind its server's back.

use crate::helpers::Backend;

enum Database {
    Sqlite(std::path::PathBuf),
    Postgres { admin_url: String, name: String },
}

fn postgres_admin_url() -> String {
    std::env::var("TMF635_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn postgres_required() -> bool {
    std::env::var("TMF635_TEST_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

/// Runs one SQL statement on the admin database; None when PostgreSQL is unreachable.
async fn postgres_admin(admin_url: &str, sql: &str) -> Option<()> {
    use sea_orm::ConnectionTrait;
    let mut options = sea_orm::ConnectOptions::new(admin_url);
    options
        .max_connections(1)
        .connect_timeout(std::time::Duration::from_secs(3))
        .sqlx_logging(false);
    let db = sea_orm::Database::connect(options).await.ok()?;
    db.execute_unprepared(sql).await.ok()?;
    db.close().await.ok()
}

/// Connects to the database at `url` and applies only its first `migrations` migrations: the
/// schema an older version left, for data written as that version wrote it.
pub async fn older_schema(url: &str, migrations: u32) -> sea_orm::DatabaseConnection {
    let db = sea_orm::Database::connect(url)
        .await
        .expect("the test database");
    <migration::Migrator as migration::MigratorTrait>::up(&db, Some(migrations))
        .await
        .expect("the older migrations");
    db
}

/// A fresh, empty database of `backend` for a server process started by the test (the
/// server migrates it); dropped with it. Like `TestApp`, None (after saying why) when the
/// backend is PostgreSQL, none is reachable and CI did not require it.
pub struct ScratchDatabase {
    /// The URL a server connects to (`DATABASE_URL`).
    pub url: String,
    database: Database,
}

impl ScratchDatabase {
    pub async fn create(backend: Backend) -> Option<ScratchDatabase> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        match backend {
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("tmf635-test-{id}.db"));
                Some(ScratchDatabase {
                    url: format!("sqlite://{}?mode=rwc", path.display()),
                    database: Database::Sqlite(path),
                })
            }
            Backend::Postgres => {
                let admin_url = postgres_admin_url();
                let name = format!("tmf635_test_{id}");
                if postgres_admin(&admin_url, &format!("CREATE DATABASE {name}"))
                    .await
                    .is_none()
                {
                    if postgres_required() {
                        panic!("PostgreSQL at {admin_url} is required but unreachable");
                    }
                    eprintln!("SKIPPED: PostgreSQL not reachable at {admin_url}");
                    return None;
                }
                let url = match admin_url.rsplit_once('/') {
                    Some((prefix, _)) => format!("{prefix}/{name}"),
                    None => format!("{admin_url}/{name}"),
                };
                Some(ScratchDatabase {
                    url,
                    database: Database::Postgres { admin_url, name },
                })
            }
        }
    }

    /// Ends every session a server has open on this PostgreSQL database, as a restart of
    /// the database would; nothing on SQLite.
    pub async fn end_sessions(&self) {
        if let Database::Postgres { admin_url, name } = &self.database {
            let sql = format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            );
            postgres_admin(admin_url, &sql)
                .await
                .expect("the sessions are ended");
        }
    }

    /// PostgreSQL: refuses (or allows again) new connections to this database and
    /// ends the open ones, as a database going away would; nothing on SQLite.
    pub async fn refuse_connections(&self, refuse: bool) {
        if let Database::Postgres { admin_url, name } = &self.database {
            let sql = format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS {}", !refuse);
            postgres_admin(admin_url, &sql)
                .await
                .expect("the database's connections are changed");
        }
        if refuse {
            self.end_sessions().await;
        }
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        match &self.database {
            Database::Sqlite(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Database::Postgres { admin_url, name } => {
                let (admin_url, name) = (admin_url.clone(), name.clone());
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build();
                    if let Ok(rt) = rt {
                        rt.block_on(postgres_admin(
                            &admin_url,
                            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                        ));
                    }
                })
                .join();
            }
        }
    }
}
