//! Multi-row INSERTs with sea-orm's `insert_many`, as few as the backend's bound on the
//! values one statement may bind allows.

use sea_orm::{ActiveModelTrait, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait, Iterable};

/// The most values one statement may bind: SQLite's `SQLITE_MAX_VARIABLE_NUMBER` (32,766 since
/// SQLite 3.32), PostgreSQL's bound on the parameters of a statement (65,535).
pub fn max_bound_values(backend: DatabaseBackend) -> usize {
    match backend {
        DatabaseBackend::Postgres => 65_535,
        _ => 32_766,
    }
}

/// Inserts `models` (rows of one table, all with the same columns set) in one INSERT, or in
/// several when their values would pass `max_bound_values`.
pub async fn insert_all<A, C>(db: &C, models: Vec<A>) -> Result<(), DbErr>
where
    A: ActiveModelTrait + Send,
    <A::Entity as EntityTrait>::Model: sea_orm::IntoActiveModel<A>,
    C: ConnectionTrait,
{
    let Some(first) = models.first() else {
        return Ok(());
    };
    let columns = <A::Entity as EntityTrait>::Column::iter()
        .filter(|column| first.get(*column).is_set())
        .count();
    let rows_per_insert = (max_bound_values(db.get_database_backend()) / columns.max(1)).max(1);
    let mut models = models.into_iter().peekable();
    while models.peek().is_some() {
        let chunk: Vec<A> = models.by_ref().take(rows_per_insert).collect();
        A::Entity::insert_many(chunk)
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use entity::usage_array_value;
    use sea_orm::{ConnectOptions, Database, PaginatorTrait, Set};

    #[tokio::test]
    async fn rows_past_the_bound_on_bound_values_go_in_several_inserts() {
        let mut options = ConnectOptions::new("sqlite::memory:");
        options.max_connections(1).sqlx_logging(false);
        let db = Database::connect(options).await.expect("connect");
        <migration::Migrator as migration::MigratorTrait>::up(&db, None)
            .await
            .expect("migrations");
        // Four columns a row: 9,000 rows bind 36,000 values, more than SQLite takes at once.
        let rows: Vec<usage_array_value::ActiveModel> = (0..9_000)
            .map(|i| usage_array_value::ActiveModel {
                usage_id: Set(format!("u{i}")),
                path: Set("relatedParty.id".into()),
                value: Set(format!("p{i}")),
                usage_date: Set(None),
            })
            .collect();
        insert_all(&db, rows).await.expect("inserted");
        let stored = usage_array_value::Entity::find()
            .count(&db)
            .await
            .expect("count");
        assert_eq!(stored, 9_000);
    }
}
