//! The tags, one response enum per operation, and the `#[OpenApi]` impl whose methods hand the
//! decoded parameters to `crate::handlers::Handlers`, one method per operationId.

use crate::models::field_type;
use crate::names::{pascal, snake};
use crate::{doc_comment, lit, Spec};
use serde_json::Value;

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

pub fn generate(spec: &Spec) -> Result<String, String> {
    let mut out = String::from(
        "/// The operations of the document, each routed to its handler in `crate::handlers`.\n\
         pub mod endpoints {\n\
         \x20   #![allow(clippy::all, clippy::pedantic)]\n\
         \x20   use super::models;\n\
         \x20   use crate::model::document::Document;\n\
         \x20   use crate::model::scalar::Integer;\n\
         \x20   use poem_openapi::param::{Header, Path, Query};\n\
         \x20   use poem_openapi::payload::Json;\n\n",
    );
    out.push_str(&tags(spec)?);
    let mut methods = String::new();
    let paths = spec.doc["paths"]
        .as_object()
        .ok_or("the document has no paths")?;
    for (path, item) in paths {
        for (method, op) in item.as_object().into_iter().flatten() {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            let id = op["operationId"]
                .as_str()
                .ok_or_else(|| format!("{method} {path} has no operationId"))?;
            out.push_str(&response_enum(id, op).map_err(|e| format!("{id}: {e}"))?);
            methods.push_str(&operation(path, method, id, op).map_err(|e| format!("{id}: {e}"))?);
        }
    }
    out.push_str(
        "    /// Every operation of the document; the handlers live in `crate::handlers`.\n",
    );
    out.push_str("    pub struct UsageManagementApi(pub crate::handlers::Handlers);\n\n");
    out.push_str("    #[poem_openapi::OpenApi]\n    impl UsageManagementApi {\n");
    out.push_str(&methods);
    out.push_str("    }\n\n");
    out.push_str(&all_schemas(spec));
    out.push_str("}\n");
    Ok(out)
}

fn tags(spec: &Spec) -> Result<String, String> {
    let mut out = String::from("    #[derive(poem_openapi::Tags)]\n    pub enum Tag {\n");
    for tag in spec.doc["tags"].as_array().into_iter().flatten() {
        let name = tag["name"].as_str().ok_or("a tag has no name")?;
        out.push_str(&doc_comment("        ", tag["description"].as_str()));
        out.push_str(&format!(
            "        #[oai(rename = {})]\n        {},\n",
            lit(name),
            pascal(name)
        ));
    }
    out.push_str("    }\n\n");
    Ok(out)
}

fn variant_name(status: &str) -> Result<&'static str, String> {
    Ok(match status {
        "200" => "Ok",
        "201" => "Created",
        "202" => "Accepted",
        "204" => "NoContent",
        "206" => "PartialContent",
        "400" => "BadRequest",
        "401" => "Unauthorized",
        "403" => "Forbidden",
        "404" => "NotFound",
        "405" => "MethodNotAllowed",
        "409" => "Conflict",
        "412" => "PreconditionFailed",
        "413" => "PayloadTooLarge",
        "415" => "UnsupportedMediaType",
        "422" => "UnprocessableEntity",
        "500" => "InternalServerError",
        "503" => "ServiceUnavailable",
        other => return Err(format!("unsupported response status {other}")),
    })
}

/// A JSON body: the TMF `Error` is typed (the server builds it); every other schema travels as a
/// `Document`, checked against its model but kept as the client wrote it. A response body of
/// documents is a `JsonBody`, written into the response without being parsed again.
fn payload_type(schema: &Value, response: bool) -> Result<String, String> {
    let ty = field_type(schema)?;
    let wrap = |t: &str| {
        if t == "Error" {
            "models::Error".to_string()
        } else {
            format!("Document<models::{t}>")
        }
    };
    let payload = if response && ty != "Error" {
        "crate::model::document::JsonBody"
    } else {
        "Json"
    };
    Ok(
        match ty.strip_prefix("Vec<").and_then(|t| t.strip_suffix('>')) {
            Some(inner) => format!("{payload}<Vec<{}>>", wrap(inner)),
            None => format!("{payload}<{}>", wrap(&ty)),
        },
    )
}

/// Rows in bulk: a request body or response offered as NDJSON (one document per line) and
/// CSV, the document's schema given by the NDJSON media. A request body becomes
/// `crate::bulk::Upload<T>` (its body streamed to the handler), a response
/// `crate::bulk::Rows<T>` (a streamed body); both declare their media types themselves.
/// A response offered as JSON and NDJSON (without CSV) becomes
/// `crate::bulk::Negotiated<JsonPayload, T>`: the handler picks one by the request's Accept.
const NDJSON: &str = "application/x-ndjson";
const JSON: &str = "application/json";

fn bulk_type(content_holder: &Value, wrapper: &str) -> Result<Option<String>, String> {
    let Some(content) = content_holder.get("content").and_then(Value::as_object) else {
        return Ok(None);
    };
    let Some(media) = content.get(NDJSON) else {
        return Ok(None);
    };
    let ty = field_type(&media["schema"])?;
    if wrapper == "Rows" {
        if let Some(json) = content.get(JSON) {
            let json = payload_type(&json["schema"], true)?;
            return Ok(Some(format!(
                "crate::bulk::Negotiated<{json}, models::{ty}>"
            )));
        }
    }
    Ok(Some(format!("crate::bulk::{wrapper}<models::{ty}>")))
}

fn json_schema(content_holder: &Value) -> Result<Option<&Value>, String> {
    let Some(content) = content_holder.get("content").and_then(Value::as_object) else {
        return Ok(None);
    };
    match content.get(JSON) {
        Some(media) => Ok(Some(&media["schema"])),
        None => Err("only application/json content is supported".into()),
    }
}

/// The content types of a PATCH that takes both JSON Merge Patch and JSON Patch.
const PATCH_TYPES: [&str; 3] = [
    "application/merge-patch+json",
    "application/json",
    "application/json-patch+json",
];

/// A request body offered as merge patch and JSON Patch becomes `PatchRequest<Update, Op>`.
fn patch_request(body: &Value) -> Result<Option<String>, String> {
    let Some(content) = body.get("content").and_then(Value::as_object) else {
        return Ok(None);
    };
    if content.len() == 1 {
        return Ok(None);
    }
    let mut types: Vec<&str> = content.keys().map(String::as_str).collect();
    types.sort_unstable();
    let mut expected = PATCH_TYPES.to_vec();
    expected.sort_unstable();
    if types != expected {
        return Err(format!("unsupported request content types {types:?}"));
    }
    let update = field_type(&content[PATCH_TYPES[0]]["schema"])?;
    if field_type(&content[PATCH_TYPES[1]]["schema"])? != update {
        return Err("merge patch and JSON bodies must share one schema".into());
    }
    let operations = field_type(&content[PATCH_TYPES[2]]["schema"])?;
    let operation = operations
        .strip_prefix("Vec<")
        .and_then(|t| t.strip_suffix('>'))
        .ok_or("a JSON Patch body is an array of operations")?;
    Ok(Some(format!(
        "crate::model::patch::PatchRequest<models::{update}, models::{operation}>"
    )))
}

fn response_enum(id: &str, op: &Value) -> Result<String, String> {
    let mut out = String::from("    #[derive(poem_openapi::ApiResponse)]\n");
    out.push_str(&format!("    pub enum {}Response {{\n", pascal(id)));
    for (status, response) in op["responses"].as_object().ok_or("no responses")?.iter() {
        out.push_str(&doc_comment("        ", response["description"].as_str()));
        out.push_str(&format!("        #[oai(status = {status})]\n"));
        let mut fields = Vec::new();
        if let Some(rows) = bulk_type(response, "Rows")? {
            fields.push(rows);
        } else if let Some(schema) = json_schema(response)? {
            fields.push(payload_type(schema, true)?);
        }
        for (header, h) in response["headers"].as_object().into_iter().flatten() {
            let ty = field_type(&h["schema"])?;
            let ty = if h["required"].as_bool().unwrap_or(false) {
                ty
            } else {
                format!("Option<{ty}>")
            };
            let doc = h["description"].as_str().unwrap_or_default();
            fields.push(format!(
                "#[doc = {}] #[oai(header = {})] {ty}",
                lit(doc),
                lit(header)
            ));
        }
        let name = variant_name(status)?;
        if fields.is_empty() {
            out.push_str(&format!("        {name},\n"));
        } else {
            out.push_str(&format!("        {name}({}),\n", fields.join(", ")));
        }
    }
    out.push_str("    }\n\n");
    Ok(out)
}

fn operation(path: &str, method: &str, id: &str, op: &Value) -> Result<String, String> {
    let summary = op["summary"].as_str().unwrap_or_default();
    let description = op["description"].as_str().unwrap_or_default();
    let mut out = doc_comment("        ", Some(&format!("{summary}\n\n{description}")));
    let poem_path: String = path
        .split('/')
        .map(
            |seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => format!(":{name}"),
                None => seg.to_string(),
            },
        )
        .collect::<Vec<_>>()
        .join("/");
    let tag = op["tags"]
        .as_array()
        .and_then(|t| t.first())
        .and_then(Value::as_str)
        .ok_or("no tag")?;
    out.push_str(&format!(
        "        #[oai(path = {}, method = {}, operation_id = {}, tag = \"Tag::{}\")]\n",
        lit(&poem_path),
        lit(method),
        lit(id),
        pascal(tag)
    ));
    let mut params = vec!["request: &poem::Request".to_string()];
    let mut args = vec!["request".to_string()];
    for param in op["parameters"].as_array().into_iter().flatten() {
        let name = param["name"].as_str().ok_or("parameter without name")?;
        let ty = field_type(&param["schema"])?;
        let required = param["required"].as_bool().unwrap_or(false);
        let wrapper = match param["in"].as_str() {
            Some("path") => "Path",
            Some("query") => "Query",
            Some("header") => "Header",
            other => return Err(format!("parameter {name}: unsupported location {other:?}")),
        };
        let ty = if required {
            ty
        } else {
            format!("Option<{ty}>")
        };
        let ident = snake(name);
        let doc = param["description"].as_str().unwrap_or_default();
        params.push(format!(
            "#[doc = {}] #[oai(name = {})] {ident}: {wrapper}<{ty}>",
            lit(doc),
            lit(name)
        ));
        args.push(format!("{ident}.0"));
    }
    if let Some(body) = op.get("requestBody") {
        let special = match bulk_type(body, "Upload")? {
            Some(upload) => Some(upload),
            None => patch_request(body)?,
        };
        match special {
            Some(ty) => {
                params.push(format!("body: {ty}"));
                args.push("body".into());
            }
            None => {
                let schema = json_schema(body)?.ok_or("request body without JSON content")?;
                params.push(format!("body: {}", payload_type(schema, false)?));
                args.push("body.0".into());
            }
        }
    }
    out.push_str(&format!(
        "        async fn {}(&self, {}) -> poem::Result<{}Response> {{\n",
        snake(id),
        params.join(", "),
        pascal(id)
    ));
    out.push_str(&format!(
        "            self.0.{}({}).await\n        }}\n\n",
        snake(id),
        args.join(", ")
    ));
    Ok(out)
}

/// An API with no operations that registers every schema of the document, so the served spec
/// lists the schemas no operation reaches too (base classes like `Entity`, `Addressable`).
fn all_schemas(spec: &Spec) -> String {
    let mut out = String::from(
        "    /// Registers every schema of the document in the served spec.\n\
         \x20   pub struct AllSchemas;\n\n\
         \x20   impl poem_openapi::OpenApi for AllSchemas {\n\
         \x20       fn meta() -> Vec<poem_openapi::registry::MetaApi> {\n\
         \x20           Vec::new()\n\
         \x20       }\n\n\
         \x20       fn register(registry: &mut poem_openapi::registry::Registry) {\n",
    );
    for (name, _) in spec.schemas() {
        out.push_str(&format!(
            "            <models::{} as poem_openapi::types::Type>::register(registry);\n",
            pascal(name)
        ));
    }
    out.push_str(
        "        }\n\n\
         \x20       fn add_routes(self, _routes: &mut std::collections::HashMap<String, std::collections::HashMap<poem::http::Method, poem::endpoint::BoxEndpoint<'static>>>) {}\n\
         \x20   }\n",
    );
    out
}
