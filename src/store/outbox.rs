//! Writes events to the outbox table, inside the caller's transaction.

use super::insert::{self, Rows};
use crate::events::Event;
use entity::{event_outbox, event_pending};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ConnectionTrait, DbErr,
};

/// Writes the events of a change of `tenant`'s rows.
pub async fn insert<C: ConnectionTrait>(
    db: &C,
    tenant: &str,
    events: &[Event],
) -> Result<(), DbErr> {
    if events.is_empty() {
        return Ok(());
    }
    let rows = rows(events.iter().map(|e| (tenant, e)));
    for statement in insert::statements(db.get_database_backend(), vec![rows]) {
        db.execute(statement).await?;
    }
    Ok(())
}

/// The outbox rows of `events`, each with the tenant of the change it reports, in order (their
/// `seq` is given at insert), each payload the text it was serialised to; each row's `seq`
/// also goes into `event_pending`, for the dispatcher.
pub fn rows<'e>(events: impl IntoIterator<Item = (&'e str, &'e Event)>) -> Rows {
    let models = events
        .into_iter()
        .map(|(tenant, e)| event_outbox::ActiveModel {
            tenant: Set(tenant.to_string()),
            seq: NotSet,
            id: Set(e.id.clone()),
            event_type: Set(e.event_type.clone()),
            resource_type: Set(e.kind.name().to_string()),
            resource_id: Set(e.resource_id.clone()),
            event_time: Set(e.time),
            payload: Set(e.payload.clone()),
        })
        .collect();
    Rows::of::<event_outbox::Entity>(models, None)
        .recording_keys_in::<event_pending::Entity>(event_outbox::Column::Seq)
}
