//! The API document's schemas compiled once for checking bodies (`validate`): `$ref`s and
//! single-member `allOf`s resolved, each object's properties in a list. Walking the JSON
//! document instead looked up `type`, `properties`, `$ref`, ... by name at every value of
//! every body, a tenth of the CPU of a create.

use crate::api_document::{self, deref};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::OnceLock;

/// One schema. Nodes refer to each other by index, so recursive schemas compile.
pub enum Node {
    /// `properties` is None for an object schema that lists none (any object goes).
    Object {
        properties: Option<Vec<Property>>,
        required: Vec<&'static str>,
    },
    Array(usize),
    String {
        allowed: Option<&'static [Value]>,
        format: Format,
    },
    Integer,
    Number,
    Boolean,
    /// No `type` (a free `Any`, or a composition the check does not go into): anything goes.
    Any,
}

pub struct Property {
    pub name: &'static str,
    pub node: usize,
    /// The property's schema has no type: it holds any JSON value, null included.
    pub holds_any: bool,
}

#[derive(Clone, Copy, PartialEq)]
pub enum Format {
    Other,
    Uri,
    DateTime,
}

pub struct Compiled {
    nodes: Vec<Node>,
    roots: HashMap<&'static str, usize>,
}

impl Compiled {
    pub fn node(&self, index: usize) -> &Node {
        &self.nodes[index]
    }

    /// The node of the schema named `name` in `components.schemas`.
    pub fn root(&self, name: &str) -> Option<usize> {
        self.roots.get(name).copied()
    }
}

/// Every schema of the API document, compiled at first use.
pub fn compiled() -> &'static Compiled {
    static COMPILED: OnceLock<Compiled> = OnceLock::new();
    COMPILED.get_or_init(|| {
        let mut compiler = Compiler {
            nodes: Vec::new(),
            seen: HashMap::new(),
        };
        let schemas = api_document::document()["components"]["schemas"].as_object();
        let roots = schemas
            .into_iter()
            .flatten()
            .map(|(name, schema)| (name.as_str(), compiler.compile(schema)))
            .collect();
        Compiled {
            nodes: compiler.nodes,
            roots,
        }
    })
}

struct Compiler {
    nodes: Vec<Node>,
    /// Schemas already compiled, by address in the document (a `$ref` target compiles once).
    seen: HashMap<usize, usize>,
}

impl Compiler {
    fn compile(&mut self, schema: &'static Value) -> usize {
        let schema = deref(schema);
        let address = schema as *const Value as usize;
        if let Some(&index) = self.seen.get(&address) {
            return index;
        }
        // Reserved before the children compile, so a schema that contains itself ends here.
        let index = self.nodes.len();
        self.nodes.push(Node::Any);
        self.seen.insert(address, index);
        let node = match schema.get("type").and_then(Value::as_str) {
            Some("object") => Node::Object {
                properties: schema["properties"].as_object().map(|properties| {
                    properties
                        .iter()
                        .map(|(name, property)| Property {
                            name: name.as_str(),
                            node: self.compile(property),
                            holds_any: deref(property).get("type").is_none(),
                        })
                        .collect()
                }),
                required: schema["required"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| r.as_str().unwrap_or_default())
                    .collect(),
            },
            Some("array") => Node::Array(self.compile(&schema["items"])),
            Some("string") => Node::String {
                allowed: schema["enum"].as_array().map(Vec::as_slice),
                format: match schema["format"].as_str() {
                    Some("uri") => Format::Uri,
                    Some("date-time") => Format::DateTime,
                    _ => Format::Other,
                },
            },
            Some("integer") => Node::Integer,
            Some("number") => Node::Number,
            Some("boolean") => Node::Boolean,
            _ => Node::Any,
        };
        self.nodes[index] = node;
        index
    }
}
