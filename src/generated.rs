//! The API as generated from `api/tmf635.openapi.json` by `build.rs` (see `codegen/`): models
//! (`generated::models`), response enums and the routed operations (`generated::endpoints`).
//! Nothing here is written by hand; `cargo run -p tmf635-codegen` prints it.

include!(concat!(env!("OUT_DIR"), "/tmf635_api.rs"));
