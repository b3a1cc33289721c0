//! Writes events to the outbox table, inside the caller's transaction.

use super::rows;
use crate::events::Event;
use entity::{event_outbox, event_pending};
use sea_orm::sea_query::Query;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DbErr,
};

/// Inserts the outbox rows of `events`, in order (their `seq` is given at insert), each
/// payload the text it was serialised to; each row's `seq` also goes into `event_pending`,
/// for the dispatcher.
pub async fn insert<'e, C: ConnectionTrait>(
    db: &C,
    events: impl IntoIterator<Item = &'e Event>,
) -> Result<(), DbErr> {
    let events: Vec<&Event> = events.into_iter().collect();
    if events.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
    let models: Vec<event_outbox::ActiveModel> = events
        .into_iter()
        .map(|e| event_outbox::ActiveModel {
            seq: NotSet,
            id: Set(e.id.clone()),
            event_type: Set(e.event_type.clone()),
            resource_type: Set(e.kind.name().to_string()),
            resource_id: Set(e.resource_id.clone()),
            event_time: Set(e.time),
            payload: Set(e.payload.clone()),
        })
        .collect();
    rows::insert_all(db, models).await?;
    // `seq` is given by the database: the pending rows take it from the rows just inserted,
    // found by their (unique) event ids.
    let backend = db.get_database_backend();
    for ids in ids.chunks(rows::max_bound_values(backend)) {
        let inserted = Query::select()
            .column(event_outbox::Column::Seq)
            .from(event_outbox::Entity)
            .and_where(event_outbox::Column::Id.is_in(ids.iter().cloned()))
            .to_owned();
        let pending = Query::insert()
            .into_table(event_pending::Entity)
            .columns([event_pending::Column::Seq])
            .select_from(inserted)
            .map_err(|e| DbErr::Custom(format!("recording pending events: {e}")))?
            .to_owned();
        db.execute(backend.build(&pending)).await?;
    }
    Ok(())
}
