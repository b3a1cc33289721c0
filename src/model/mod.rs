//! Hand-written building blocks the generated API code (`crate::generated`) is made of.

pub(crate) mod compiled_schema;
pub mod document;
pub mod patch;
pub mod scalar;
pub mod validate;
