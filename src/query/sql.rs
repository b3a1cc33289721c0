//! Building SQL text with bound values for the JSON documents, per backend. Placeholders are
//! `?` on SQLite and `$n` on PostgreSQL, as sea-query's custom expressions expect.

use sea_orm::sea_query::{Expr, SimpleExpr};
use sea_orm::{DatabaseBackend, Value};

/// SQL text under construction and the values bound to its placeholders.
pub struct Sql {
    pub backend: DatabaseBackend,
    pub text: String,
    pub values: Vec<Value>,
}

impl Sql {
    pub fn new(backend: DatabaseBackend) -> Self {
        Sql {
            backend,
            text: String::new(),
            values: Vec::new(),
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.backend == DatabaseBackend::Postgres
    }

    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub fn bind(&mut self, value: impl Into<Value>) -> &mut Self {
        self.values.push(value.into());
        if self.is_postgres() {
            let n = self.values.len();
            self.text.push_str(&format!("${n}"));
        } else {
            self.text.push('?');
        }
        self
    }

    pub fn into_expr(self) -> SimpleExpr {
        Expr::cust_with_values(self.text, self.values)
    }
}

/// Where a JSON value is read from: the row's document, or an array element in a subquery.
#[derive(Clone, Debug)]
pub enum Context {
    Document,
    Element(String),
}

impl Context {
    fn sql(&self) -> String {
        match self {
            Context::Document => "\"document\"".into(),
            Context::Element(alias) => format!("{alias}.value"),
        }
    }
}

/// SQLite JSON path `$."a"."b"` (quoted, so names like `@type` are safe).
fn sqlite_path(path: &[String]) -> String {
    let mut p = String::from("$");
    for key in path {
        p.push_str(&format!(".\"{}\"", key.replace('"', "\\\"")));
    }
    p
}

/// Appends the SQL value at `path` under `context`, as SQLite's native value (text, number,
/// 1/0) or PostgreSQL text (`->>`).
pub fn push_scalar(sql: &mut Sql, context: &Context, path: &[String]) {
    if sql.is_postgres() {
        push_pg_chain(sql, context, path, true);
    } else {
        sql.push("json_extract(").push(&context.sql()).push(", ");
        sql.bind(sqlite_path(path)).push(")");
    }
}

/// PostgreSQL only: the jsonb value at `path` (`->` all the way), for jsonb_typeof checks.
pub fn push_pg_json(sql: &mut Sql, context: &Context, path: &[String]) {
    push_pg_chain(sql, context, path, false);
}

fn push_pg_chain(sql: &mut Sql, context: &Context, path: &[String], last_as_text: bool) {
    sql.push("(").push(&context.sql());
    for (i, key) in path.iter().enumerate() {
        let op = if last_as_text && i + 1 == path.len() {
            " ->> "
        } else {
            " -> "
        };
        sql.push(op).bind(key.clone());
    }
    sql.push(")");
}

/// Appends `FROM <elements of the array at path> AS alias` for an EXISTS subquery.
pub fn push_array_elements(sql: &mut Sql, context: &Context, path: &[String], alias: &str) {
    if sql.is_postgres() {
        // Not an array (absent, null) -> no elements, never an error.
        sql.push("jsonb_array_elements(CASE WHEN jsonb_typeof(");
        push_pg_json(sql, context, path);
        sql.push(") = 'array' THEN ");
        push_pg_json(sql, context, path);
        sql.push(&format!(" ELSE '[]'::jsonb END) AS {alias}(value)"));
    } else {
        sql.push("json_each(").push(&context.sql()).push(", ");
        sql.bind(sqlite_path(path)).push(&format!(") AS {alias}"));
    }
}
