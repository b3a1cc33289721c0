//! Multi-row INSERTs written out by hand for the writer's batches.
//!
//! The scalar columns come from active models; a table's JSON column (a resource's document)
//! is bound as the text the caller serialised once, cast to `jsonb` on PostgreSQL. The query
//! builder would deep-copy every document to collect its parameters and serialise it again to
//! bind it; under POST load that was a fifth of the server's CPU. (An event's payload is plain
//! text, bound like any string.)
//!
//! On PostgreSQL the INSERTs of a batch go into one statement (`WITH a AS (INSERT ..), b AS
//! (INSERT ..) INSERT ..`): one round trip, atomic on its own, no BEGIN and COMMIT around it.
//!
//! A table's rows can also record the key the database gives each of them in a second table
//! (an outbox event's `seq` in `event_pending`): on PostgreSQL from the INSERT's `RETURNING`,
//! on SQLite as the newest keys of the table (see `Sql::record`).

use sea_orm::{ActiveModelTrait, DatabaseBackend, EntityTrait, Iterable, Statement};
use sea_orm::{IdenStatic, Value};
use std::fmt::Write;

/// Rows per INSERT: well under SQLite's 32,766 bound values at the widest table (11 columns).
const ROWS_PER_STATEMENT: usize = 500;
/// PostgreSQL's bound on the parameters of one statement.
const POSTGRES_MAX_PARAMETERS: usize = 65_535;

/// The rows to insert into one table, all with the same columns.
pub struct Rows {
    table: String,
    columns: Vec<String>,
    /// Whether the last column is JSON bound as text.
    json_last: bool,
    /// Row after row, `columns.len()` values each.
    values: Vec<Value>,
    /// Where each inserted row's database-given key is recorded too.
    recorded: Option<Recorded>,
}

/// A second table that gets the key column of each row inserted into the first.
struct Recorded {
    table: String,
    /// The key column, named the same in both tables.
    key: String,
}

impl Rows {
    /// Rows of `E` from active models (the columns set in the first are the columns of all)
    /// and, for a table with a JSON column, each row's text for it (in the models' order).
    pub fn of<E: EntityTrait>(
        models: Vec<E::ActiveModel>,
        json: Option<(E::Column, Vec<String>)>,
    ) -> Rows {
        let mut columns: Vec<E::Column> = match models.first() {
            Some(first) => E::Column::iter()
                .filter(|c| first.get(*c).is_set())
                .collect(),
            None => Vec::new(),
        };
        let (json_column, mut texts) = match json {
            Some((column, texts)) => (Some(column), Some(texts.into_iter())),
            None => (None, None),
        };
        if let Some(column) = json_column {
            columns.retain(|c| c.as_str() != column.as_str());
        }
        let width = columns.len() + usize::from(json_column.is_some());
        let mut values = Vec::with_capacity(models.len() * width);
        for mut model in models {
            for column in &columns {
                values.push(
                    model
                        .take(*column)
                        .into_value()
                        .unwrap_or(Value::String(None)),
                );
            }
            if let Some(texts) = texts.as_mut() {
                let text = texts.next().unwrap_or_else(|| "null".into());
                values.push(Value::String(Some(Box::new(text))));
            }
        }
        let mut names: Vec<String> = columns.iter().map(|c| c.as_str().to_string()).collect();
        names.extend(json_column.map(|c| c.as_str().to_string()));
        Rows {
            table: E::default().table_name().to_string(),
            json_last: json_column.is_some(),
            columns: names,
            values,
            recorded: None,
        }
    }

    /// Also inserts each row's `key` (given by the database, an autoincremented integer) into
    /// the column of the same name of `R`'s table, in the same statement or call.
    pub fn recording_keys_in<R: EntityTrait>(mut self, key: impl IdenStatic) -> Rows {
        self.recorded = Some(Recorded {
            table: R::default().table_name().to_string(),
            key: key.as_str().to_string(),
        });
        self
    }

    fn width(&self) -> usize {
        self.columns.len().max(1)
    }

    fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// What a failing INSERT undoes on SQLite.
#[derive(Clone, Copy)]
pub enum Undo {
    /// The statement (SQLite's default), so the transaction can go on: SQLite keeps a
    /// statement journal, a copy of every page the statement changes, to undo it with.
    Statement,
    /// The whole transaction (`INSERT OR ROLLBACK`), for a batch that is all or nothing
    /// anyway: no statement journal. Under POST load that copying was ~6% of the writer's
    /// SQLite time.
    Transaction,
}

/// SQL text and its bound values, placeholders numbered as values are bound.
struct Sql {
    backend: DatabaseBackend,
    text: String,
    values: Vec<Value>,
    undo: Undo,
}

impl Sql {
    fn new(backend: DatabaseBackend, undo: Undo) -> Sql {
        Sql {
            backend,
            text: String::with_capacity(1024),
            values: Vec::new(),
            undo,
        }
    }

    fn insert_into(&mut self, table: &str) {
        let or = match (self.backend, self.undo) {
            (DatabaseBackend::Sqlite, Undo::Transaction) => " OR ROLLBACK",
            _ => "",
        };
        let _ = write!(self.text, "INSERT{or} INTO \"{table}\"");
    }

    fn bind(&mut self, value: Value, json: bool) {
        self.values.push(value);
        match (self.backend, json) {
            (DatabaseBackend::Postgres, true) => {
                let _ = write!(self.text, "CAST(${} AS jsonb)", self.values.len());
            }
            (DatabaseBackend::Postgres, false) => {
                let _ = write!(self.text, "${}", self.values.len());
            }
            _ => self.text.push('?'),
        }
    }

    /// `INSERT INTO table (columns) VALUES ...` of `rows` of `table` (`INSERT OR ROLLBACK` on
    /// SQLite when the whole transaction is to be undone, see `Undo`).
    fn insert(&mut self, table: &Rows, rows: Vec<Value>) {
        self.insert_into(&table.table);
        self.text.push_str(" (");
        for (i, column) in table.columns.iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            let _ = write!(self.text, "\"{column}\"");
        }
        self.text.push_str(") VALUES ");
        let width = table.width();
        let last = width - 1;
        for (i, value) in rows.into_iter().enumerate() {
            let column = i % width;
            self.text.push_str(match (column, i) {
                (0, 0) => "(",
                (0, _) => "), (",
                _ => ", ",
            });
            self.bind(value, table.json_last && column == last);
        }
        self.text.push(')');
    }

    /// SQLite: records the keys of the `rows` rows just inserted into `table`. The key is
    /// autoincremented, so the new rows hold the table's highest keys, and the writer's
    /// transaction holds SQLite's one write lock, so no other rows came in between.
    fn record(&mut self, table: &Rows, recorded: &Recorded, rows: usize) {
        let Recorded { table: into, key } = recorded;
        self.insert_into(into);
        let _ = write!(
            self.text,
            " (\"{key}\") SELECT \"{key}\" FROM \"{}\" ORDER BY \"{key}\" DESC LIMIT {rows}",
            table.table
        );
    }

    fn statement(self) -> Statement {
        Statement::from_sql_and_values(self.backend, self.text, self.values)
    }
}

/// One INSERT's worth of rows of a table.
struct Chunk<'t> {
    table: &'t Rows,
    values: Vec<Value>,
}

fn chunks(tables: &mut [Rows]) -> Vec<Chunk<'_>> {
    let values: Vec<Vec<Value>> = tables
        .iter_mut()
        .map(|t| std::mem::take(&mut t.values))
        .collect();
    let mut chunks = Vec::new();
    for (table, values) in tables.iter().zip(values) {
        let mut values = values.into_iter();
        loop {
            let chunk: Vec<Value> = values
                .by_ref()
                .take(ROWS_PER_STATEMENT * table.width())
                .collect();
            if chunk.is_empty() {
                break;
            }
            chunks.push(Chunk {
                table,
                values: chunk,
            });
        }
    }
    chunks
}

/// The statements that insert all of `tables`, in order. On SQLite one INSERT per chunk of
/// rows; on PostgreSQL as few statements as the parameter bound allows, usually one.
pub fn statements(backend: DatabaseBackend, tables: Vec<Rows>) -> Vec<Statement> {
    statements_undoing(backend, tables, Undo::Statement)
}

/// `statements`, and on SQLite what a failure undoes (PostgreSQL has one statement, atomic
/// on its own).
pub fn statements_undoing(
    backend: DatabaseBackend,
    mut tables: Vec<Rows>,
    undo: Undo,
) -> Vec<Statement> {
    tables.retain(|t| !t.is_empty());
    let chunks = chunks(&mut tables);
    if backend != DatabaseBackend::Postgres {
        let mut statements = Vec::with_capacity(chunks.len());
        for chunk in chunks {
            let (table, rows) = (chunk.table, chunk.values.len() / chunk.table.width());
            let mut sql = Sql::new(backend, undo);
            sql.insert(table, chunk.values);
            statements.push(sql.statement());
            if let Some(recorded) = &table.recorded {
                let mut sql = Sql::new(backend, undo);
                sql.record(table, recorded, rows);
                statements.push(sql.statement());
            }
        }
        return statements;
    }
    // Group the chunks into statements under the parameter bound, then write each group as
    // data-modifying CTEs around its last INSERT.
    let mut groups: Vec<Vec<Chunk>> = Vec::new();
    let mut parameters = 0;
    for chunk in chunks {
        let size = chunk.values.len();
        match groups.last_mut() {
            Some(group) if parameters + size <= POSTGRES_MAX_PARAMETERS => group.push(chunk),
            _ => {
                parameters = 0;
                groups.push(vec![chunk]);
            }
        }
        parameters += size;
    }
    groups.into_iter().map(postgres_statement).collect()
}

/// One part of a PostgreSQL statement: an INSERT of a chunk, or the recording of the keys
/// the INSERT of part `from` returned.
enum Part<'t> {
    Insert(Chunk<'t>),
    Record(&'t Recorded, usize),
}

/// The chunks of `group` as one statement: every part but the last a data-modifying CTE
/// (`i0`, `i1`, ...), the last the statement's own INSERT.
fn postgres_statement(group: Vec<Chunk>) -> Statement {
    let mut parts = Vec::with_capacity(group.len() + 1);
    for chunk in group {
        let recorded = chunk.table.recorded.as_ref();
        parts.push(Part::Insert(chunk));
        if let Some(recorded) = recorded {
            parts.push(Part::Record(recorded, parts.len() - 1));
        }
    }
    let mut sql = Sql::new(DatabaseBackend::Postgres, Undo::Statement);
    let last = parts.len() - 1;
    for (i, part) in parts.into_iter().enumerate() {
        if i < last {
            sql.text.push_str(if i == 0 { "WITH " } else { ", " });
            let _ = write!(sql.text, "i{i} AS (");
        } else if i > 0 {
            sql.text.push(' ');
        }
        match part {
            Part::Insert(chunk) => {
                let recorded = chunk.table.recorded.as_ref();
                sql.insert(chunk.table, chunk.values);
                if let Some(Recorded { key, .. }) = recorded {
                    let _ = write!(sql.text, " RETURNING \"{key}\"");
                }
            }
            Part::Record(Recorded { table, key }, from) => {
                let _ = write!(
                    sql.text,
                    "INSERT INTO \"{table}\" (\"{key}\") SELECT \"{key}\" FROM i{from}"
                );
            }
        }
        if i < last {
            sql.text.push(')');
        }
    }
    sql.statement()
}

#[cfg(test)]
mod tests {
    use super::*;
    use entity::{event_outbox, event_pending, usage, usage_array_value};
    use sea_orm::ActiveValue::{NotSet, Set};

    fn index_rows(n: usize) -> Rows {
        let models = (0..n)
            .map(|i| usage_array_value::ActiveModel {
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
        // 10 columns a row, the document last.
        assert!(sql.ends_with("$19, CAST($20 AS jsonb))"), "{sql}");
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
        // 2 rows of 4 columns, then 1 of 6 (seq is left to the database); the payload is text.
        assert!(sql.ends_with("$13, $14)"), "{sql}");
        let values = statements[0].values.as_ref().map_or(0, |v| v.0.len());
        assert_eq!(values, 14);
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
                r#"$16) RETURNING "seq") INSERT INTO "event_pending" ("seq") SELECT "seq" FROM i1"#
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
        // 20,000 rows of 4 columns: 80,000 parameters, more than one statement may bind.
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
}
