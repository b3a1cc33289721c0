//! Generates the API models and endpoints from the OpenAPI document (see codegen/).

#![forbid(unsafe_code)]

fn main() {
    let spec = "api/tmf635.openapi.json";
    println!("cargo:rerun-if-changed={spec}");
    let text = std::fs::read_to_string(spec).expect("api/tmf635.openapi.json is readable");
    let code = tmf635_codegen::generate(&text).unwrap_or_else(|e| panic!("{spec}: {e}"));
    let out = std::path::Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("tmf635_api.rs");
    std::fs::write(out, code).expect("OUT_DIR is writable");
}
