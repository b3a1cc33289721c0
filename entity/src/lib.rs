//! sea-orm entities: the tables behind the TMF635 resources.
//!
//! Each resource is stored as its JSON document plus typed, indexed copies of the first-level
//! attributes that lists filter and sort on. The document is the truth; the columns are kept in
//! step with it by the store on every write.

#![forbid(unsafe_code)]

pub mod api_key;
pub mod bulk_job;
pub mod delivery;
pub mod delivery_attempt;
pub mod event_outbox;
pub mod event_pending;
pub mod hub;
pub mod received_event;
pub mod removed_subscription;
pub mod usage;
pub mod usage_array_value;
pub mod usage_specification;
