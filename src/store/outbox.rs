//! Writes events to the outbox table, inside the caller's transaction.

use crate::events::Event;
use entity::event_outbox;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ConnectionTrait, DbErr, EntityTrait,
};

pub async fn insert<C: ConnectionTrait>(db: &C, events: Vec<Event>) -> Result<(), DbErr> {
    if events.is_empty() {
        return Ok(());
    }
    event_outbox::Entity::insert_many(rows(&events))
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// The outbox rows of `events`, in order (their `seq` is given at insert).
pub fn rows(events: &[Event]) -> Vec<event_outbox::ActiveModel> {
    events
        .iter()
        .map(|e| event_outbox::ActiveModel {
            seq: NotSet,
            id: Set(e.id.clone()),
            dispatched: Set(false),
            event_type: Set(e.event_type.clone()),
            resource_type: Set(e.kind.name().to_string()),
            resource_id: Set(e.resource_id.clone()),
            event_time: Set(e.time),
            payload: Set(e.payload.clone()),
        })
        .collect()
}
