//! The SQL the writer's INSERTs are written as.

use super::*;
use entity::{event_outbox, event_pending, usage, usage_array_value};
use sea_orm::ActiveValue::{NotSet, Set};

fn index_rows(n: usize) -> Rows {
    let models = (0..n)
        .map(|i| usage_array_value::ActiveModel {
            tenant: Set(String::new()),
            usage_id: Set(format!("u{i}")),
            path: Set("relatedParty.id".into()),
            value: Set("p".into()),
            usage_date: Set(None),
        })
        .collect();
    Rows::of::<usage_array_value::Entity>(models, None)
}

fn outbox_rows(n: usize) -> Rows {
    let models = (0..n)
        .map(|i| event_outbox::ActiveModel {
            tenant: Set(String::new()),
            seq: NotSet,
            id: Set(format!("e{i}")),
            event_type: Set("UsageCreateEvent".into()),
            resource_type: Set("usage".into()),
            resource_id: Set(format!("u{i}")),
            event_time: Set(chrono::Utc::now()),
            payload: Set(format!(r#"{{"n":{i}}}"#)),
        })
        .collect();
    Rows::of::<event_outbox::Entity>(models, None)
}

/// Usages whose document is bound as the JSON text given.
fn usage_rows(n: usize) -> Rows {
    let now = chrono::Utc::now();
    let models = (0..n)
        .map(|i| usage::ActiveModel {
            tenant: Set(String::new()),
            id: Set(format!("u{i}")),
            revision: Set(1),
            created_at: Set(now),
            usage_date: Set(None),
            usage_type: Set(None),
            status: Set(None),
            description: Set(None),
            usage_specification_id: Set(None),
            at_type: Set(None),
            document: NotSet,
        })
        .collect();
    let documents = (0..n).map(|i| format!(r#"{{"id":"u{i}"}}"#)).collect();
    Rows::of::<usage::Entity>(models, Some((usage::Column::Document, documents)))
}

#[test]
fn a_json_column_is_bound_as_text_and_cast_on_postgres() {
    let statements = statements(DatabaseBackend::Postgres, vec![usage_rows(2)]);
    let sql = &statements[0].sql;
    // 11 columns a row, the document last.
    assert!(sql.ends_with("$21, CAST($22 AS jsonb))"), "{sql}");
    let statements = statements_undoing(
        DatabaseBackend::Sqlite,
        vec![usage_rows(2)],
        Undo::Statement,
    );
    assert!(
        statements[0].sql.ends_with("?, ?)"),
        "{}",
        statements[0].sql
    );
}

#[test]
fn postgres_batch_is_one_statement_of_ctes() {
    let tables = vec![index_rows(2), outbox_rows(1)];
    let statements = statements(DatabaseBackend::Postgres, tables);
    assert_eq!(statements.len(), 1);
    let sql = &statements[0].sql;
    assert!(
        sql.starts_with(r#"WITH i0 AS (INSERT INTO "usage_array_value" ("#),
        "{sql}"
    );
    assert!(sql.contains(r#") INSERT INTO "event_outbox" ("#), "{sql}");
    // 2 rows of 5 columns, then 1 of 7 (seq is left to the database); the payload is text.
    assert!(sql.ends_with("$16, $17)"), "{sql}");
    let values = statements[0].values.as_ref().map_or(0, |v| v.0.len());
    assert_eq!(values, 17);
}

#[test]
fn postgres_records_returned_keys_in_the_same_statement() {
    let outbox =
        outbox_rows(2).recording_keys_in::<event_pending::Entity>(event_outbox::Column::Seq);
    let statements = statements(DatabaseBackend::Postgres, vec![index_rows(1), outbox]);
    assert_eq!(statements.len(), 1);
    let sql = &statements[0].sql;
    assert!(sql.starts_with(r#"WITH i0 AS (INSERT INTO "usage_array_value" ("#));
    assert!(
        sql.contains(r#", i1 AS (INSERT INTO "event_outbox" ("#),
        "{sql}"
    );
    assert!(
        sql.ends_with(
            r#"$19) RETURNING "seq") INSERT INTO "event_pending" ("seq") SELECT "seq" FROM i1"#
        ),
        "{sql}"
    );
}

#[test]
fn sqlite_records_the_newest_keys_after_each_insert() {
    let outbox =
        outbox_rows(3).recording_keys_in::<event_pending::Entity>(event_outbox::Column::Seq);
    let statements = statements(DatabaseBackend::Sqlite, vec![outbox]);
    assert_eq!(statements.len(), 2);
    assert!(statements[0]
        .sql
        .starts_with(r#"INSERT INTO "event_outbox""#));
    assert_eq!(
        statements[1].sql,
        r#"INSERT INTO "event_pending" ("seq") SELECT "seq" FROM "event_outbox" ORDER BY "seq" DESC LIMIT 3"#
    );
}

#[test]
fn sqlite_all_or_nothing_batches_roll_back_on_failure() {
    let outbox =
        outbox_rows(2).recording_keys_in::<event_pending::Entity>(event_outbox::Column::Seq);
    let tables = vec![index_rows(2), outbox];
    let statements = statements_undoing(DatabaseBackend::Sqlite, tables, Undo::Transaction);
    assert_eq!(statements.len(), 3);
    for statement in &statements {
        assert!(
            statement.sql.starts_with("INSERT OR ROLLBACK INTO "),
            "{}",
            statement.sql
        );
    }
    // PostgreSQL's one statement is atomic on its own: no conflict clause.
    let statements = statements_undoing(
        DatabaseBackend::Postgres,
        vec![index_rows(2)],
        Undo::Transaction,
    );
    assert!(statements[0].sql.starts_with("INSERT INTO "));
}

#[test]
fn postgres_splits_at_the_parameter_bound() {
    // 20,000 rows of 5 columns: 100,000 parameters, more than one statement may bind.
    let statements = statements(DatabaseBackend::Postgres, vec![index_rows(20_000)]);
    assert_eq!(statements.len(), 2);
    for statement in &statements {
        let values = statement.values.as_ref().map_or(0, |v| v.0.len());
        assert!(values <= POSTGRES_MAX_PARAMETERS, "{values}");
    }
}

#[test]
fn sqlite_has_one_insert_per_chunk_of_rows() {
    let statements = statements(DatabaseBackend::Sqlite, vec![index_rows(1_200)]);
    assert_eq!(statements.len(), 3);
    assert!(statements[0]
        .sql
        .starts_with(r#"INSERT INTO "usage_array_value""#));
    assert!(!statements[0].sql.contains('$'));
}

#[test]
fn postgres_numbers_a_batch_of_events_in_one_insert() {
    // The INSERTs of one statement run in no promised order: a thousand events (more than
    // SQLite's rows per INSERT) are one INSERT, whose rows get their keys in order.
    let outbox =
        outbox_rows(1_000).recording_keys_in::<event_pending::Entity>(event_outbox::Column::Seq);
    let statements = statements(DatabaseBackend::Postgres, vec![outbox]);
    assert_eq!(statements.len(), 1);
    let inserts = statements[0]
        .sql
        .matches(r#"INSERT INTO "event_outbox""#)
        .count();
    assert_eq!(inserts, 1, "{}", &statements[0].sql[..200]);
}
