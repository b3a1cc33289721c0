//! An import's rows put in `usageDate` order before they are checked and stored, a window of
//! the file at a time.
//!
//! A row's entries in the date-keyed indexes (the usageDate index, the array-value lookup,
//! the keys of a derived id, which carries the date) land where its date falls. Rows in no
//! order write a page of each of those indexes per row; rows in date order land beside one
//! another, so a batch writes few pages. Files from mediation are mostly in date order
//! already; for the others the reader sorts each window of `rows` rows (in file order) by
//! date, then line, before handing them on.
//!
//! Memory stays bounded by the window: a window keeps an `Entry` per row, its text going to
//! a temporary file beside the spooled body, read back in order. The order is a function of
//! the file and the window size alone, so a resumed job (which records its window) skips
//! exactly the rows it had accounted for: whole windows before it, then the first rows of
//! its window in sorted order.

use super::read::Stop;
use super::row::RowError;
use serde_json::Value;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

/// A row of the window: where its text is in the temporary file and where it sorts (32 bytes).
struct Entry {
    /// Its usageDate in milliseconds; rows without a readable one come first.
    date: i64,
    line: u64,
    offset: u64,
    /// Under 4 GiB: a row is bounded by the body limit.
    len: u32,
    /// The text is a `[attribute, message]` of why the row could not be read.
    error: bool,
}

/// Where a window's rows wait for their turn.
pub struct Window {
    rows: u64,
    /// Rows still to pass over without handing them on (a resumed job's), in sorted order.
    skip: u64,
    /// Rows of the current window, counted even when it is passed over whole.
    counted: u64,
    entries: Vec<Entry>,
    path: PathBuf,
    file: Option<BufWriter<File>>,
    written: u64,
    buffer: Vec<u8>,
}

impl Window {
    /// A window of `rows` rows (at least 2) whose text goes to `path`; `skip` rows, in sorted
    /// order, are already accounted for.
    pub fn new(rows: u64, skip: u64, path: PathBuf) -> Window {
        Window {
            rows,
            skip,
            counted: 0,
            entries: Vec::new(),
            path,
            file: None,
            written: 0,
            buffer: Vec::new(),
        }
    }

    /// Adds the row at `line`; answers whether the window is full (to be handed on with
    /// `drain`).
    pub fn add(&mut self, line: u64, value: Result<Value, RowError>) -> Result<bool, Stop> {
        self.counted += 1;
        // A window the job has accounted for whole is only counted.
        if self.skip < self.rows {
            self.buffer.clear();
            let (date, error) = match &value {
                Ok(row) => {
                    serde_json::to_writer(&mut self.buffer, row).map_err(spill_error)?;
                    (usage_date(row), false)
                }
                Err(e) => {
                    let text = Value::from(vec![
                        e.attribute.clone().map_or(Value::Null, Value::String),
                        Value::String(e.message.clone()),
                    ]);
                    serde_json::to_writer(&mut self.buffer, &text).map_err(spill_error)?;
                    (i64::MIN, true)
                }
            };
            if self.entries.capacity() == 0 {
                // Reserved whole (up to a million entries) rather than grown by doubling,
                // which would hold the old and the new vector at once.
                let reserve = usize::try_from(self.rows).unwrap_or(usize::MAX);
                self.entries.reserve_exact(reserve.min(1 << 20));
            }
            let file = match &mut self.file {
                Some(file) => file,
                None => self.file.insert(BufWriter::new(create(&self.path)?)),
            };
            file.write_all(&self.buffer).map_err(io_error)?;
            self.entries.push(Entry {
                date,
                line,
                offset: self.written,
                len: u32::try_from(self.buffer.len()).map_err(|_| {
                    Stop::Fatal(format!("line {line}: the row is too long to put in order"))
                })?,
                error,
            });
            self.written += self.buffer.len() as u64;
        }
        Ok(self.counted >= self.rows)
    }

    /// Hands the window's rows to `hand_on` in order (less those accounted for), and starts
    /// the next window.
    pub fn drain(
        &mut self,
        mut hand_on: impl FnMut(u64, Result<Value, RowError>) -> Result<(), Stop>,
    ) -> Result<(), Stop> {
        let passed = self.skip.min(self.counted);
        self.skip -= passed;
        self.counted = 0;
        let mut entries = std::mem::take(&mut self.entries);
        entries.sort_unstable_by_key(|e| (e.date, e.line));
        let entries = entries.into_iter().skip(passed as usize);
        if let Some(file) = &mut self.file {
            file.flush().map_err(io_error)?;
        }
        for entry in entries {
            let Some(file) = &self.file else { break };
            self.buffer.resize(entry.len as usize, 0);
            file.get_ref()
                .read_exact_at(&mut self.buffer, entry.offset)
                .map_err(io_error)?;
            let value = serde_json::from_slice::<Value>(&self.buffer).map_err(spill_error)?;
            let row = if entry.error {
                let attribute = value.get(0).and_then(Value::as_str).map(str::to_string);
                let message = value.get(1).and_then(Value::as_str).unwrap_or_default();
                Err(RowError {
                    attribute,
                    message: message.to_string(),
                })
            } else {
                Ok(value)
            };
            hand_on(entry.line, row)?;
        }
        // The next window writes its text from the top of the file again.
        if let Some(file) = &mut self.file {
            file.get_mut().set_len(0).map_err(io_error)?;
            file.seek(SeekFrom::Start(0)).map_err(io_error)?;
        }
        self.written = 0;
        Ok(())
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The row's usageDate in milliseconds, or the least key when it has none that parses.
fn usage_date(row: &Value) -> i64 {
    row.get("usageDate")
        .and_then(Value::as_str)
        .and_then(|date| chrono::DateTime::parse_from_rfc3339(date).ok())
        .map_or(i64::MIN, |date| date.timestamp_millis())
}

fn create(path: &PathBuf) -> Result<File, Stop> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(io_error)
}

fn io_error(e: std::io::Error) -> Stop {
    Stop::Fatal(format!("the import's rows could not be put in order: {e}"))
}

fn spill_error(e: serde_json::Error) -> Stop {
    Stop::Fatal(format!("the import's rows could not be put in order: {e}"))
}

#[cfg(test)]
mod tests;
