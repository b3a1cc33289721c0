//! One poem-openapi type per schema of `components.schemas`.

use crate::names::{pascal, ref_target, snake};
use crate::{doc_comment, lit, Spec};
use serde_json::Value;

pub fn generate(spec: &Spec) -> Result<String, String> {
    let mut out =
        String::from("/// The schemas of the document, one type each.\npub mod models {\n");
    out.push_str("    #![allow(clippy::all, clippy::pedantic)]\n");
    out.push_str(
        "    use crate::model::scalar::{Base64, DateTime, Float, Integer, Text, Uri};\n\n",
    );
    for (name, schema) in spec.schemas() {
        out.push_str(&schema_type(name, schema)?);
        out.push('\n');
    }
    out.push_str("}\n\n");
    Ok(out)
}

fn schema_type(name: &str, schema: &Value) -> Result<String, String> {
    let description = schema["description"].as_str();
    let rust = pascal(name);
    let mut out = doc_comment("    ", description);
    match (
        schema.get("type").and_then(Value::as_str),
        schema.get("enum"),
    ) {
        (Some("string"), Some(values)) => {
            out.push_str(
                "    #[derive(poem_openapi::Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]\n",
            );
            out.push_str(&format!(
                "    #[oai(rename = {})]\n    pub enum {rust} {{\n",
                lit(name)
            ));
            for value in values.as_array().into_iter().flatten() {
                let value = value
                    .as_str()
                    .ok_or_else(|| format!("{name}: enum values must be strings"))?;
                out.push_str(&format!(
                    "        #[oai(rename = {})]\n        {},\n",
                    lit(value),
                    pascal(value)
                ));
            }
            out.push_str("    }\n");
        }
        (Some("object"), None) => {
            let required: Vec<&str> = schema["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            out.push_str("    #[derive(poem_openapi::Object, Debug, Clone)]\n");
            out.push_str(&format!(
                "    #[oai(rename = {})]\n    pub struct {rust} {{\n",
                lit(name)
            ));
            let properties = schema["properties"].as_object();
            for (prop, prop_schema) in properties.into_iter().flatten() {
                let ty = property_type(prop_schema).map_err(|e| format!("{name}.{prop}: {e}"))?;
                let ty = if required.contains(&prop.as_str()) {
                    ty
                } else {
                    format!("Option<{ty}>")
                };
                out.push_str(&doc_comment(
                    "        ",
                    prop_schema["description"].as_str(),
                ));
                out.push_str(&format!(
                    "        #[oai(rename = {})]\n        pub {}: {ty},\n",
                    lit(prop),
                    snake(prop)
                ));
            }
            for r in &required {
                if !properties.is_some_and(|p| p.contains_key(*r)) {
                    return Err(format!("{name}: required property {r} is not defined"));
                }
            }
            out.push_str("    }\n");
        }
        // A schema with no type holds any JSON value (TMF's `Any`).
        (None, None) if schema.get("properties").is_none() => {
            out.push_str("    #[derive(Debug, Clone, PartialEq)]\n");
            out.push_str(&format!("    pub struct {rust}(pub serde_json::Value);\n"));
            out.push_str(&format!(
                "    crate::any_json_schema!({rust}, {}, {});\n",
                lit(name),
                lit(description.unwrap_or_default())
            ));
        }
        _ => return Err(format!("schema {name}: unsupported shape")),
    }
    Ok(out)
}

/// The Rust type of a model property: like `field_type`, but a plain string is `Text`, which
/// (unlike `String`) refuses JSON numbers and booleans.
fn property_type(schema: &Value) -> Result<String, String> {
    let ty = field_type(schema)?;
    Ok(match ty.as_str() {
        "String" => "Text".into(),
        "Vec<String>" => "Vec<Text>".into(),
        _ => ty,
    })
}

/// The Rust type of a parameter, header or property (before `Option` for optional ones).
pub fn field_type(schema: &Value) -> Result<String, String> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        return Ok(pascal(ref_target(r)?));
    }
    // `allOf` with a single `$ref` is how a described reference is written in OpenAPI 3.0.
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        return match all.as_slice() {
            [one] => field_type(one),
            _ => Err("allOf with more than one member".into()),
        };
    }
    let format = schema.get("format").and_then(Value::as_str);
    Ok(match (schema.get("type").and_then(Value::as_str), format) {
        (Some("string"), Some("date-time")) => "DateTime".into(),
        (Some("string"), Some("uri")) => "Uri".into(),
        (Some("string"), Some("base64")) => "Base64".into(),
        (Some("string"), None) => "String".into(),
        (Some("integer"), None) => "Integer".into(),
        (Some("number"), Some("float")) => "Float".into(),
        (Some("number"), None | Some("double")) => "f64".into(),
        (Some("boolean"), None) => "bool".into(),
        (Some("array"), None) => format!("Vec<{}>", field_type(&schema["items"])?),
        (ty, format) => return Err(format!("unsupported type {ty:?} with format {format:?}")),
    })
}
