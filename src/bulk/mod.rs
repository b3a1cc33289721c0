//! Usages in bulk: import jobs (a streamed body spooled to disk, then read, validated as
//! `POST /usage` validates a body and stored in large transactions in the background) and
//! exports (the usages a list query selects, streamed in id order as NDJSON or CSV), and
//! `GET /usage` streamed as NDJSON (`Negotiated`).

mod csv_row;
pub mod export;
pub mod import;
mod in_flight;
mod negotiated;
mod order;
mod read;
mod row;
mod spool;
mod upload;

pub use export::Rows;
pub use negotiated::{wants_ndjson, Negotiated};
pub use upload::Upload;

/// The formats rows travel in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line (`application/x-ndjson`).
    Ndjson,
    /// One JSON array of objects (`application/json`): imports only.
    JsonArray,
    /// A header row naming first-level attributes, then one row per usage (`text/csv`).
    Csv,
}

pub const NDJSON: &str = "application/x-ndjson";
pub const JSON: &str = "application/json";
pub const CSV: &str = "text/csv";

impl Format {
    /// The format of a content type (its parameters ignored).
    pub fn of(content_type: &str) -> Option<Format> {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            NDJSON => Some(Format::Ndjson),
            JSON => Some(Format::JsonArray),
            CSV => Some(Format::Csv),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Ndjson => NDJSON,
            Format::JsonArray => JSON,
            Format::Csv => CSV,
        }
    }
}
