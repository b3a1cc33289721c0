//! Events: what a change of a resource announces (`payload`), written to the outbox in the
//! transaction of the change itself (`store::outbox`), then fanned out to the subscriptions
//! whose query matches (`subscription_query`) and delivered at least once, in order per
//! subscription, by a worker beside the request path (`worker`, `callback`).

pub mod callback;
pub mod egress;
pub mod payload;
pub mod signature;
pub mod subscription_query;
pub mod worker;

pub use payload::{created, deleted, event_type, updated, Change, Event};
