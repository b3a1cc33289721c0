//! Changes to how SQLite itself works, installed once per process before the first
//! connection opens (see each module for why).

mod page_cache;
mod wal_writes;

#[cfg(test)]
mod tests;

use std::sync::OnceLock;

static VFS: OnceLock<Option<&'static str>> = OnceLock::new();

/// Installs what this module changes in SQLite (once) and answers the name of the VFS
/// connections are to open their files with; None for SQLite's default. The page cache
/// can only be changed before the first connection opens; if one already has, SQLite's
/// stays.
pub fn prepare() -> Option<&'static str> {
    *VFS.get_or_init(|| {
        // First: finding the default VFS initialises SQLite, after which its cache is fixed.
        let page_cache = page_cache::install();
        let vfs = wal_writes::register();
        tracing::debug!(page_cache, vfs, "SQLite prepared");
        vfs.then_some(wal_writes::NAME)
    })
}
