//! Multi-row INSERTs written out by hand for the writer's batches.
//!
//! The scalar columns come from active models; a table's JSON column (a resource's document)
//! is bound as the text the caller serialised once, cast to `jsonb` on PostgreSQL, where the
//! query builder would deep-copy every document to collect its parameters and serialise it
//! again to bind it. (An event's payload is plain text, bound like any string.)
//!
//! On PostgreSQL the INSERTs of a batch go into one statement (`WITH a AS (INSERT ..), b AS
//! (INSERT ..) INSERT ..`): one round trip, atomic on its own, no BEGIN and COMMIT around it.
//! sea-orm's `insert_many` would make that a statement per table, each document serialised
//! again: the load bench measures the difference (BENCHMARKS.md).
//!
//! A table's rows can also record the key the database gives each of them in a second table
//! (an outbox event's `seq` in `event_pending`): on PostgreSQL from the INSERT's `RETURNING`,
//! on SQLite as the newest keys of the table (see `Sql::record`).

use super::tables::{indexed_array_paths, Table};
use super::writer::NewResource;
use super::{array_index, outbox};
use crate::resource_kind::ResourceKind;
use entity::{usage, usage_array_value, usage_specification};
use sea_orm::{ActiveModelTrait, DatabaseBackend, EntityTrait, Iterable, Statement};
use sea_orm::{IdenStatic, Value};
use std::fmt::Write;

/// Rows per INSERT on SQLite: well under its 32,766 bound values at the widest table (12
/// columns). On PostgreSQL an INSERT takes as many rows as its parameter bound allows: the rows
/// of one INSERT get their keys in the order they are listed, while the INSERTs of one
/// statement run in no order PostgreSQL promises, so a batch's events are numbered in order.
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
    /// anyway: no statement journal to copy pages into.
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
        self.insert_into_columns(table);
        self.bind_rows(table, rows, " VALUES (", "), (");
        self.text.push(')');
    }

    /// The placeholders of `rows` of `table`, `open` before the first row, `between` rows,
    /// commas between a row's values.
    fn bind_rows(&mut self, table: &Rows, rows: Vec<Value>, open: &str, between: &str) {
        let width = table.width();
        let last = width - 1;
        for (i, value) in rows.into_iter().enumerate() {
            let column = i % width;
            self.text.push_str(match (column, i) {
                (0, 0) => open,
                (0, _) => between,
                _ => ", ",
            });
            self.bind(value, table.json_last && column == last);
        }
    }

    /// `INSERT INTO table (columns)`.
    fn insert_into_columns(&mut self, table: &Rows) {
        self.insert_into(&table.table);
        self.text.push_str(" (");
        for (i, column) in table.columns.iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            let _ = write!(self.text, "\"{column}\"");
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

fn chunks(backend: DatabaseBackend, tables: &mut [Rows]) -> Vec<Chunk<'_>> {
    let values: Vec<Vec<Value>> = tables
        .iter_mut()
        .map(|t| std::mem::take(&mut t.values))
        .collect();
    let mut chunks = Vec::new();
    for (table, values) in tables.iter().zip(values) {
        let mut values = values.into_iter();
        let width = table.width();
        let rows = match backend {
            DatabaseBackend::Postgres => POSTGRES_MAX_PARAMETERS / width,
            _ => ROWS_PER_STATEMENT,
        };
        loop {
            let chunk: Vec<Value> = values.by_ref().take(rows * width).collect();
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
    let chunks = chunks(backend, &mut tables);
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

/// SQLite: `statements` between `first` and `last` as one statement list, run in one call.
/// Positional `?` values are taken in order across the statements.
pub fn one_call(first: &str, statements: Vec<Statement>, last: &str) -> Statement {
    let mut sql = format!("{first};\n");
    let mut values = Vec::new();
    for statement in statements {
        sql.push_str(&statement.sql);
        sql.push_str(";\n");
        values.extend(statement.values.map(|v| v.0).unwrap_or_default());
    }
    sql.push_str(last);
    Statement::from_sql_and_values(DatabaseBackend::Sqlite, sql, values)
}

/// The INSERTs of the rows of `resources` : the resources, their array-value
/// index rows, their events; each document bound as the text it was serialised to.
pub fn insert_statements<'r>(
    backend: DatabaseBackend,
    resources: impl Iterator<Item = &'r NewResource>,
    undo: Undo,
) -> Vec<Statement> {
    let (mut tables, events) = tables(resources);
    tables.push(events);
    statements_undoing(backend, tables, undo)
}

/// `insert_statements` in two parts: the events' INSERTs, then the rest.
pub fn events_then_rows<'r>(
    backend: DatabaseBackend,
    resources: impl Iterator<Item = &'r NewResource>,
    undo: Undo,
) -> (Vec<Statement>, Vec<Statement>) {
    let (tables, events) = tables(resources);
    (
        statements_undoing(backend, vec![events], undo),
        statements_undoing(backend, tables, undo),
    )
}

/// The rows of `resources` to insert: the resources and their array-value index rows, and
/// apart from them their events.
fn tables<'r>(resources: impl Iterator<Item = &'r NewResource>) -> (Vec<Rows>, Rows) {
    let (mut usages, mut usage_json) = (vec![], vec![]);
    let (mut specifications, mut specification_json) = (vec![], vec![]);
    let (mut index, mut events) = (vec![], vec![]);
    for resource in resources {
        let row = &resource.row;
        match resource.kind {
            ResourceKind::Usage => {
                usages.push(usage::Entity::active_model(row));
                usage_json.push(resource.json.clone());
            }
            ResourceKind::UsageSpecification => {
                specifications.push(usage_specification::Entity::active_model(row));
                specification_json.push(resource.json.clone());
            }
        }
        let paths = indexed_array_paths(resource.kind);
        index.extend(array_index::rows(
            paths,
            &row.tenant,
            &row.id,
            &row.document,
        ));
        events.extend(resource.events.iter().map(|e| (row.tenant.as_str(), e)));
    }
    let tables = vec![
        Rows::of::<usage::Entity>(usages, Some((usage::Entity::document_column(), usage_json))),
        Rows::of::<usage_specification::Entity>(
            specifications,
            Some((
                usage_specification::Entity::document_column(),
                specification_json,
            )),
        ),
        Rows::of::<usage_array_value::Entity>(index, None),
    ];
    (tables, outbox::rows(events))
}

#[cfg(test)]
mod tests;
