//! Prints the code generated from an OpenAPI document, for reading:
//! `cargo run -p tmf635-codegen [-- api/tmf635.openapi.json]`.

#![forbid(unsafe_code)]

fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "api/tmf635.openapi.json".into());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        eprintln!("cannot read {path}: {e}");
        std::process::exit(2);
    });
    match tmf635_codegen::generate(&text) {
        Ok(code) => print!("{code}"),
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        }
    }
}
