//! Reading an import's spooled body row by row, on a blocking thread: NDJSON lines, the
//! elements of a JSON array, or CSV records, each bounded to the largest `POST /usage` body
//! (plus the reader's buffer), so memory stays flat whatever the file's size. Each row is
//! checked (`row::usage`) here too, off the async runtime, after it has been put in
//! `usageDate` order within its window (`order`), when the job has one.

use super::csv_row;
use super::order::Window;
use super::row::{self, RowError};
use super::Format;
use crate::store::import::ImportRow;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use tokio::sync::mpsc;

/// What the reader hands on, in order.
pub enum Item {
    /// A row and its line: checked and ready to store, or rejected.
    Row(u64, Box<Result<ImportRow, RowError>>),
    /// The body cannot be read on from here (not an array, a row too long to find the next
    /// one): the rows before it stand.
    Fatal(String),
}

pub struct Reading {
    pub path: PathBuf,
    pub format: Format,
    pub max_row_bytes: usize,
    pub href_prefix: String,
    /// Rows already accounted for (a resumed job): read over, not handed on.
    pub skip: u64,
    /// Rows put in `usageDate` order at a time (`order`); under 2, the file's order.
    pub order_rows: u64,
}

/// Reads the whole file into `out`; stops early when `out` is closed.
pub fn read_file(reading: Reading, out: mpsc::Sender<Item>) {
    let window = (reading.order_rows >= 2).then(|| {
        let mut path = reading.path.clone().into_os_string();
        path.push(".order");
        Window::new(reading.order_rows, reading.skip, path.into())
    });
    let mut sink = Sink {
        out,
        skip: if window.is_some() { 0 } else { reading.skip },
        href_prefix: reading.href_prefix.clone(),
        max_row_bytes: reading.max_row_bytes,
        window,
    };
    let file = match File::open(&reading.path) {
        Ok(file) => file,
        Err(e) => {
            sink.fatal(format!("the spooled body could not be read: {e}"));
            return;
        }
    };
    let outcome = match reading.format {
        Format::Ndjson => ndjson(BufReader::new(file), &mut sink),
        Format::JsonArray => json_array(BufReader::new(file), &mut sink),
        Format::Csv => csv_row::read(file, &mut sink),
    };
    // The rows before a body that cannot be read on stand: the last window is handed on
    // first.
    let fatal = match outcome {
        Ok(()) => None,
        Err(Stop::Closed) => return,
        Err(Stop::Fatal(message)) => Some(message),
    };
    match sink.finish() {
        Ok(()) => {}
        Err(Stop::Closed) => return,
        Err(Stop::Fatal(message)) => {
            sink.fatal(message);
            return;
        }
    }
    if let Some(message) = fatal {
        sink.fatal(message);
    }
}

pub enum Stop {
    /// The receiver is gone: the job stopped.
    Closed,
    Fatal(String),
}

pub struct Sink {
    out: mpsc::Sender<Item>,
    /// Rows to read over (file order; a window skips its own).
    skip: u64,
    href_prefix: String,
    pub max_row_bytes: usize,
    window: Option<Window>,
}

impl Sink {
    /// Takes the row at `line` (a JSON value, or why it could not be read): hands it on, or
    /// puts it in its window.
    pub fn row(
        &mut self,
        line: u64,
        value: Result<serde_json::Value, RowError>,
    ) -> Result<(), Stop> {
        let Some(window) = &mut self.window else {
            if self.skip > 0 {
                self.skip -= 1;
                return Ok(());
            }
            return hand_on(&self.out, &self.href_prefix, line, value);
        };
        if window.add(line, value)? {
            let (out, href_prefix) = (&self.out, self.href_prefix.as_str());
            window.drain(|line, value| hand_on(out, href_prefix, line, value))?;
        }
        Ok(())
    }

    /// Hands on the rows still in the window, at the end of the body.
    fn finish(&mut self) -> Result<(), Stop> {
        let (out, href_prefix) = (&self.out, self.href_prefix.as_str());
        match &mut self.window {
            Some(window) => window.drain(|line, value| hand_on(out, href_prefix, line, value)),
            None => Ok(()),
        }
    }

    fn fatal(&mut self, message: String) {
        let _ = self.out.blocking_send(Item::Fatal(message));
    }
}

/// Checks the row at `line` and hands it on.
fn hand_on(
    out: &mpsc::Sender<Item>,
    href_prefix: &str,
    line: u64,
    value: Result<serde_json::Value, RowError>,
) -> Result<(), Stop> {
    let checked = value.and_then(|v| row::usage(line, v, href_prefix));
    out.blocking_send(Item::Row(line, Box::new(checked)))
        .map_err(|_| Stop::Closed)
}

fn io_error(e: std::io::Error) -> Stop {
    Stop::Fatal(format!("the spooled body could not be read: {e}"))
}

/// One object per line; blank lines are no rows.
fn ndjson(mut input: impl BufRead, sink: &mut Sink) -> Result<(), Stop> {
    let limit = sink.max_row_bytes;
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let read = (&mut input)
            .take(limit as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(io_error)?;
        if read == 0 {
            return Ok(());
        }
        number += 1;
        if line.len() > limit && line.last() != Some(&b'\n') {
            skip_line(&mut input)?;
            sink.row(
                number,
                Err(RowError::new(format!(
                    "the row is larger than {limit} bytes"
                ))),
            )?;
            continue;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        sink.row(number, row::parse_json(text, limit))?;
    }
}

/// Reads up to the end of the line, keeping nothing.
fn skip_line(input: &mut impl BufRead) -> Result<(), Stop> {
    loop {
        let buffer = input.fill_buf().map_err(io_error)?;
        if buffer.is_empty() {
            return Ok(());
        }
        match buffer.iter().position(|b| *b == b'\n') {
            Some(at) => {
                input.consume(at + 1);
                return Ok(());
            }
            None => {
                let all = buffer.len();
                input.consume(all);
            }
        }
    }
}

/// `[ {...}, {...} ]`: each element is cut out by its brackets (outside strings) and parsed
/// alone; its line is where it starts.
fn json_array(mut input: impl BufRead, sink: &mut Sink) -> Result<(), Stop> {
    let mut scan = Scanner { line: 1 };
    match scan.next_significant(&mut input)? {
        Some(b'[') => {}
        _ => return Err(Stop::Fatal("line 1: the body is not a JSON array".into())),
    }
    let mut element = Vec::new();
    loop {
        let start = match scan.next_significant(&mut input)? {
            Some(b']') => return Ok(()),
            Some(b) => b,
            None => {
                return Err(Stop::Fatal(format!(
                    "line {}: the JSON array is not closed",
                    scan.line
                )))
            }
        };
        let line = scan.line;
        element.clear();
        let (end, too_long) = scan.element(&mut input, start, &mut element, sink.max_row_bytes)?;
        let value = if too_long {
            Err(RowError::new(format!(
                "the row is larger than {} bytes",
                sink.max_row_bytes
            )))
        } else {
            row::parse_json(&element, sink.max_row_bytes)
        };
        sink.row(line, value)?;
        match end {
            Some(b',') => {}
            Some(b']') => return Ok(()),
            _ => {
                return Err(Stop::Fatal(format!(
                    "line {}: the JSON array is not closed",
                    scan.line
                )))
            }
        }
    }
}

struct Scanner {
    line: u64,
}

impl Scanner {
    fn byte(&mut self, input: &mut impl BufRead) -> Result<Option<u8>, Stop> {
        let buffer = input.fill_buf().map_err(io_error)?;
        let Some(&b) = buffer.first() else {
            return Ok(None);
        };
        input.consume(1);
        if b == b'\n' {
            self.line += 1;
        }
        Ok(Some(b))
    }

    fn next_significant(&mut self, input: &mut impl BufRead) -> Result<Option<u8>, Stop> {
        loop {
            match self.byte(input)? {
                Some(b) if b.is_ascii_whitespace() => continue,
                other => return Ok(other),
            }
        }
    }

    /// Reads an element that starts with `first` into `out` (at most `limit` bytes kept), up
    /// to the `,` or `]` after it, which it answers (None at the end of the input), and
    /// whether the element was longer than `limit`.
    fn element(
        &mut self,
        input: &mut impl BufRead,
        first: u8,
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(Option<u8>, bool), Stop> {
        let (mut depth, mut in_string, mut escaped, mut too_long) = (0usize, false, false, false);
        let mut next = Some(first);
        while let Some(b) = next {
            if !in_string && depth == 0 && (b == b',' || b == b']') && !out.is_empty() {
                return Ok((Some(b), too_long));
            }
            if out.len() < limit {
                out.push(b);
            } else {
                too_long = true;
            }
            if in_string {
                match (escaped, b) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'"') => in_string = false,
                    _ => {}
                }
            } else {
                match b {
                    b'"' => in_string = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => depth = depth.saturating_sub(1),
                    _ => {}
                }
            }
            next = self.byte(input)?;
        }
        Ok((None, too_long))
    }
}
