//! CSV rows of usages. The columns are first-level attributes: a string attribute (by the
//! `Usage` schema of `api/`) is its text as it is, any other attribute (numbers, booleans,
//! objects, arrays) its JSON; an empty cell leaves the attribute out. An export's columns are
//! the schema's first-level attributes, in the schema's order.

use super::read::{Sink, Stop};
use super::row::RowError;
use crate::model::compiled_schema::{compiled, Node};
use serde_json::{Map, Value};
use std::cell::Cell;
use std::io::Read;
use std::rc::Rc;

/// The schema whose first-level attributes are the columns.
const SCHEMA: &str = "Usage";

/// The first-level attributes of `Usage`, each with whether it is a string.
pub fn columns() -> Vec<(&'static str, bool)> {
    let schemas = compiled();
    let Some(Node::Object {
        properties: Some(properties),
        ..
    }) = schemas.root(SCHEMA).map(|root| schemas.node(root))
    else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|p| (p.name, is_string(schemas.node(p.node))))
        .collect()
}

fn is_string(node: &Node) -> bool {
    matches!(node, Node::String { .. })
}

/// Reads the records of a CSV body into `sink`; the header names the columns.
pub fn read(file: impl Read, sink: &mut Sink) -> Result<(), Stop> {
    // Bytes the CSV reader may take from the file for one record: a record longer than the
    // largest body cannot be a usage, and reading on would hold it all in memory.
    let budget = sink.max_row_bytes + 64 * 1024;
    let left = Rc::new(Cell::new(budget));
    let input = Budgeted {
        inner: file,
        left: left.clone(),
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(input);
    let headers = reader.headers().map_err(csv_error)?.clone();
    let strings = columns();
    let string_column: Vec<bool> = headers
        .iter()
        .map(|h| {
            strings
                .iter()
                .find(|(n, _)| *n == h)
                .is_none_or(|(_, s)| *s)
        })
        .collect();
    let mut record = csv::StringRecord::new();
    loop {
        left.set(budget);
        if !reader.read_record(&mut record).map_err(csv_error)? {
            return Ok(());
        }
        let line = record.position().map_or(0, |p| p.line());
        if record.iter().all(str::is_empty) {
            continue;
        }
        let value = if record.len() != headers.len() {
            Err(RowError::new(format!(
                "the row has {} cells where the header names {} columns",
                record.len(),
                headers.len()
            )))
        } else {
            to_json(&headers, &string_column, &record)
        };
        sink.row(line, value)?;
    }
}

fn to_json(
    headers: &csv::StringRecord,
    string_column: &[bool],
    record: &csv::StringRecord,
) -> Result<Value, RowError> {
    let mut map = Map::new();
    for ((name, cell), string) in headers.iter().zip(record.iter()).zip(string_column) {
        if cell.is_empty() {
            continue;
        }
        let value = if *string {
            Value::String(cell.to_string())
        } else {
            serde_json::from_str(cell)
                .map_err(|e| RowError::at(name, format!("{name} is not valid JSON: {e}")))?
        };
        map.insert(name.to_string(), value);
    }
    Ok(Value::Object(map))
}

fn csv_error(e: csv::Error) -> Stop {
    let line = e
        .position()
        .map_or(String::new(), |p| format!("line {}: ", p.line()));
    Stop::Fatal(format!("{line}the CSV body cannot be read on: {e}"))
}

/// A reader that fails once `left` bytes have been read since it was last refilled.
struct Budgeted<R> {
    inner: R,
    left: Rc<Cell<usize>>,
}

impl<R: Read> Read for Budgeted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.left.get();
        if left == 0 {
            return Err(std::io::Error::other(
                "a row is longer than the largest body",
            ));
        }
        let n = buf.len().min(left);
        let read = self.inner.read(&mut buf[..n])?;
        self.left.set(left - read);
        Ok(read)
    }
}

/// The cells of a stored usage under `columns`.
pub fn cells(document: &Map<String, Value>, columns: &[(&str, bool)]) -> Vec<String> {
    columns
        .iter()
        .map(|(name, _)| match document.get(*name) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        })
        .collect()
}
