use super::{page_cache, prepare};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection, SqliteConnection};
use std::path::{Path, PathBuf};

fn database_file() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tmf635-sqlite-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("dir");
    dir.join("t.db")
}

async fn open(path: &Path, vfs: Option<&'static str>, sync: SqliteSynchronous) -> SqliteConnection {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(sync);
    let options = match vfs {
        Some(name) => options.vfs(name),
        None => options,
    };
    SqliteConnection::connect_with(&options)
        .await
        .expect("connect")
}

/// Inserts `rows` rows of 1,000 random bytes in one statement.
async fn insert(db: &mut SqliteConnection, rows: i64) {
    sqlx::query(
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ?) \
         INSERT INTO t (k, v) SELECT hex(randomblob(8)), randomblob(1000) FROM c",
    )
    .bind(rows)
    .execute(db)
    .await
    .expect("insert");
}

async fn count_and_bytes(db: &mut SqliteConnection) -> (i64, i64) {
    sqlx::query_as("SELECT count(*), coalesce(sum(length(v)), 0) FROM t")
        .fetch_one(db)
        .await
        .expect("count")
}

async fn integrity(db: &mut SqliteConnection) -> String {
    sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(db)
        .await
        .expect("integrity_check")
}

/// Commits of every size, undone transactions and WAL restarts, through both wrappers, read
/// back by another connection and then by SQLite's own VFS. Fails when the buffer is not
/// written out at a commit, and when the page cache skips a truncation it needs.
#[tokio::test]
async fn what_the_writer_commits_is_read_back_whole_by_other_connections() {
    let vfs = prepare().expect("the VFS registers");
    assert!(
        page_cache::installed(),
        "installed before any connection of this process"
    );
    let path = database_file();
    // The writer's settings: NORMAL, so no sync writes the buffer out at the commit.
    let mut writer = open(&path, Some(vfs), SqliteSynchronous::Normal).await;
    let mut reader = open(&path, Some(vfs), SqliteSynchronous::Full).await;
    sqlx::query("CREATE TABLE t (n INTEGER PRIMARY KEY, k TEXT NOT NULL, v BLOB NOT NULL)")
        .execute(&mut writer)
        .await
        .expect("create");
    sqlx::query("CREATE INDEX t_k ON t (k)")
        .execute(&mut writer)
        .await
        .expect("index");
    let mut rows = 0;
    for round in 0..30i64 {
        // From one row to ~3.5 MB: past the buffer's bound and many writes of the default VFS.
        let added = 1 + round * round * 4;
        let mut tx = writer.begin().await.expect("begin");
        insert(&mut tx, added).await;
        tx.commit().await.expect("commit");
        rows += added;
        assert_eq!(
            count_and_bytes(&mut reader).await,
            (rows, rows * 1000),
            "round {round}"
        );
        // Undone writes leave nothing.
        let mut tx = writer.begin().await.expect("begin");
        insert(&mut tx, 50).await;
        tx.rollback().await.expect("rollback");
        if round % 10 == 9 {
            // The WAL starts over: the next frames go to its start again.
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&mut reader)
                .await
                .expect("checkpoint");
        }
    }
    assert_eq!(count_and_bytes(&mut writer).await, (rows, rows * 1000));
    writer.close().await.expect("close");
    reader.close().await.expect("close");
    // What is on disk, read back by SQLite's own VFS.
    let mut plain = open(&path, None, SqliteSynchronous::Full).await;
    assert_eq!(integrity(&mut plain).await, "ok");
    assert_eq!(count_and_bytes(&mut plain).await, (rows, rows * 1000));
    plain.close().await.expect("close");
    let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
}
