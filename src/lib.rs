//! tmf635: a TM Forum TMF635 Usage Management API v4.0.0 server.
//!
//! A request flows one way: `api` (validate, map) -> `store` (one transaction, events included)
//! -> response. The API surface itself is generated from `api/tmf635.openapi.json`.

#![forbid(unsafe_code)]

pub mod api_document;
pub mod app;
pub mod auth;
pub mod bulk;
pub mod cli;
pub mod config;
pub mod docs;
pub mod error;
pub mod events;
pub mod generated;
pub mod handlers;
pub mod health;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod observe;
pub mod ops;
pub mod query;
pub mod resource_kind;
pub mod store;

pub use config::Config;
pub use error::Error;
