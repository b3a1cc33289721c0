//! PostgreSQL sessions that end under a pooled connection (a server restart, a failover,
//! `pg_terminate_backend`, a proxy's idle cut), found without a ping before every use.
//!
//! sqlx can ping a connection each time it leaves the pool; that is one more round trip per
//! statement, paid by every read. Instead the pool pings only a connection that may have lost
//! its session:
//! - one idle for [`IDLE_BEFORE_PING`] or more (a session usually ends while nothing uses it);
//! - one that went back to the pool before the last lost session the store noticed
//!   ([`noticed`]): sessions tend to end together, so once one is found lost, every connection
//!   that may share its fate is checked before it is used.
//!
//! What a lost session still costs is the one statement that finds it. Where running that
//! statement again cannot apply anything twice, the store does: reads (`Pool::read`), a BEGIN
//! (nothing is sent before it), and creates (the batch is inserted again one by one; a
//! usage's key is its id, so none can be stored twice).

use sea_orm::sqlx::pool::PoolConnectionMetadata;
use sea_orm::sqlx::postgres::PgConnection;
use sea_orm::sqlx::Connection as _;
use sea_orm::{ConnAcquireErr, DbErr, RuntimeErr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a connection may sit idle before it is pinged on its way out of the pool: far
/// shorter than a database server takes to restart, far longer than a connection waits
/// between two uses under load.
pub const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);

/// When the store last noticed a lost session, in nanoseconds since `epoch()` (0: never). One
/// for the process: a lost session says something about the database server, which the
/// process's pools share.
static LAST_LOSS: AtomicU64 = AtomicU64::new(0);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since `epoch()`, at least 1.
fn now() -> u64 {
    u64::try_from(epoch().elapsed().as_nanos())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// Whether `error` says the connection's session is gone: the connection broke (an I/O or
/// protocol error, or a closed pool connection), or the server said it ended the session
/// (SQLSTATE class 57P: `admin_shutdown`, `crash_shutdown`, `cannot_connect_now`) or that the
/// connection failed (class 08).
pub fn is_lost(error: &DbErr) -> bool {
    use sea_orm::sqlx::Error;
    match error {
        DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed) => true,
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => match e {
            Error::Io(_) | Error::Protocol(_) => true,
            Error::Database(d) => d
                .code()
                .is_some_and(|code| code.starts_with("57P") || code.starts_with("08")),
            _ => false,
        },
        _ => false,
    }
}

/// Whether `error` says the session is gone; if so, every connection back in the pool before
/// now is pinged before its next use.
pub fn noticed(error: &DbErr) -> bool {
    let lost = is_lost(error);
    if lost {
        LAST_LOSS.fetch_max(now(), Ordering::Relaxed);
    }
    lost
}

/// An error that may say a connection's session is gone.
pub trait SessionError {
    /// Whether it does; noticing it as [`noticed`] does.
    fn session_lost(&self) -> bool;
}

impl SessionError for DbErr {
    fn session_lost(&self) -> bool {
        noticed(self)
    }
}

impl SessionError for crate::error::Error {
    fn session_lost(&self) -> bool {
        matches!(self, crate::error::Error::Database(e) if noticed(e))
    }
}

/// The pool's check of a connection leaving it: true to hand it out, false to drop it (the
/// pool then takes another or opens a new one).
pub async fn check(connection: &mut PgConnection, meta: PoolConnectionMetadata) -> bool {
    if !suspect(meta.idle_for) {
        return true;
    }
    connection.ping().await.is_ok()
}

/// Whether a connection idle for `idle_for` may have lost its session.
fn suspect(idle_for: Duration) -> bool {
    if idle_for >= IDLE_BEFORE_PING {
        return true;
    }
    let last_loss = LAST_LOSS.load(Ordering::Relaxed);
    let idle = u64::try_from(idle_for.as_nanos()).unwrap_or(u64::MAX);
    last_loss != 0 && now().saturating_sub(idle) <= last_loss
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lost_with(code: &str) -> DbErr {
        #[derive(Debug)]
        struct Coded(String);
        impl std::fmt::Display for Coded {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "SQLSTATE {}", self.0)
            }
        }
        impl std::error::Error for Coded {}
        impl sea_orm::sqlx::error::DatabaseError for Coded {
            fn message(&self) -> &str {
                &self.0
            }
            fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
                Some(self.0.as_str().into())
            }
            fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
                self
            }
            fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
                self
            }
            fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
                self
            }
            fn kind(&self) -> sea_orm::sqlx::error::ErrorKind {
                sea_orm::sqlx::error::ErrorKind::Other
            }
        }
        DbErr::Query(RuntimeErr::SqlxError(sea_orm::sqlx::Error::Database(
            Box::new(Coded(code.into())),
        )))
    }

    #[test]
    fn ended_sessions_and_broken_connections_are_lost_sessions() {
        assert!(is_lost(&lost_with("57P01")));
        assert!(is_lost(&lost_with("08006")));
        let broken = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(is_lost(&DbErr::Exec(RuntimeErr::SqlxError(
            sea_orm::sqlx::Error::Io(broken)
        ))));
        // A refused statement or one past its time limit leaves the session as it was.
        assert!(!is_lost(&lost_with("23505")));
        assert!(!is_lost(&lost_with("57014")));
        assert!(!is_lost(&DbErr::RecordNotFound("x".into())));
    }

    #[test]
    fn connections_back_before_a_noticed_loss_are_suspect_and_later_ones_are_not() {
        assert!(suspect(IDLE_BEFORE_PING));
        assert!(noticed(&lost_with("57P01")));
        std::thread::sleep(Duration::from_millis(5));
        // Back in the pool 1 ms ago: after the loss. 50 ms ago: before it.
        assert!(!suspect(Duration::from_millis(1)));
        assert!(suspect(Duration::from_millis(50)));
    }
}
