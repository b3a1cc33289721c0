//! SQLite's own page cache, wrapped so that a commit no longer scans the whole cache.
//!
//! When a B-tree page splits, SQLite (3.46, `balance_nonroot`) puts the new pages in
//! ascending order by swapping their numbers through a temporary one, the page after the
//! lock-byte page (262,145 with 4 KiB pages). The default cache (`pcache1`) then remembers
//! that number as the highest it holds, and every commit truncates the cache to the
//! database's size: while the database is under 1 GiB, that truncation finds a "page past
//! the end" and walks every slot of the cache's hash table (the writer's 8,192 pages and
//! more), chasing a pointer per page. Under POST load that walk was ~10% of the writer's
//! SQLite thread.
//!
//! This wrapper passes every call to the default cache and keeps its own bound on the
//! highest page number the cache can hold: the highest fetched or moved to, not counting
//! the temporary number while no page sits on it. A truncation that cannot drop anything
//! is then skipped. The bound only ever errs high, which costs a needless walk, never a
//! page kept past the end.

use libsqlite3_sys as ffi;
use std::os::raw::{c_int, c_uint};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// SQLite's default: the lock-byte page starts at 1 GiB.
const PENDING_BYTE: u64 = 0x4000_0000;

/// The default cache's methods, as SQLite had them before ours replaced them.
struct Inner(ffi::sqlite3_pcache_methods2);
// SAFETY: the methods table is written once, before SQLite is initialised, and only read
// after; SQLite calls its functions from any thread, as it would call them unwrapped.
unsafe impl Send for Inner {}
unsafe impl Sync for Inner {}

static INNER: OnceLock<Inner> = OnceLock::new();
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// One cache (one per connection's pager).
struct Cache {
    methods: &'static ffi::sqlite3_pcache_methods2,
    inner: *mut ffi::sqlite3_pcache,
    /// No page with a higher number is in the cache, except on `temporary`.
    highest: c_uint,
    /// The number `balance_nonroot` swaps pages through, and how many pages sit on it.
    temporary: c_uint,
    on_temporary: u32,
}

/// Installs the wrapper. Must run before SQLite is initialised (before the first
/// connection opens); false, and the default cache stays, when it is too late.
pub(super) fn install() -> bool {
    // SAFETY: `sqlite3_config` takes a pointer to a methods struct for these two options;
    // it fails with SQLITE_MISUSE, changing nothing, once SQLite is initialised.
    unsafe {
        let mut default: ffi::sqlite3_pcache_methods2 = std::mem::zeroed();
        if ffi::sqlite3_config(ffi::SQLITE_CONFIG_GETPCACHE2, &mut default) != ffi::SQLITE_OK {
            return false;
        }
        if INNER.set(Inner(default)).is_err() {
            return false;
        }
        let wrapper = ffi::sqlite3_pcache_methods2 {
            iVersion: 1,
            pArg: default.pArg,
            xInit: default.xInit,
            xShutdown: default.xShutdown,
            xCreate: Some(create),
            xCachesize: Some(cachesize),
            xPagecount: Some(pagecount),
            xFetch: Some(fetch),
            xUnpin: Some(unpin),
            xRekey: Some(rekey),
            xTruncate: Some(truncate),
            xDestroy: Some(destroy),
            xShrink: Some(shrink),
        };
        // SQLite copies the struct.
        let installed = ffi::sqlite3_config(ffi::SQLITE_CONFIG_PCACHE2, &wrapper) == ffi::SQLITE_OK;
        INSTALLED.store(installed, Ordering::Relaxed);
        installed
    }
}

/// Whether SQLite uses the wrapper.
#[cfg(test)]
pub(super) fn installed() -> bool {
    INSTALLED.load(Ordering::Relaxed)
}

unsafe extern "C" fn create(
    page_size: c_int,
    extra: c_int,
    purgeable: c_int,
) -> *mut ffi::sqlite3_pcache {
    // `install` sets INNER before SQLite can call this.
    let Some(methods) = INNER.get().map(|i| &i.0) else {
        return std::ptr::null_mut();
    };
    let Some(create) = methods.xCreate else {
        return std::ptr::null_mut();
    };
    let cache = create(page_size, extra, purgeable);
    if cache.is_null() {
        return cache;
    }
    let temporary = (PENDING_BYTE / u64::try_from(page_size).unwrap_or(1).max(1) + 1) as c_uint;
    Box::into_raw(Box::new(Cache {
        methods,
        inner: cache,
        highest: 0,
        temporary,
        on_temporary: 0,
    }))
    .cast()
}

/// SAFETY: `p` is a cache `create` returned and SQLite has not destroyed.
unsafe fn cache<'a>(p: *mut ffi::sqlite3_pcache) -> &'a mut Cache {
    &mut *p.cast::<Cache>()
}

unsafe extern "C" fn cachesize(p: *mut ffi::sqlite3_pcache, pages: c_int) {
    let cache = cache(p);
    if let Some(f) = cache.methods.xCachesize {
        f(cache.inner, pages)
    }
}

unsafe extern "C" fn pagecount(p: *mut ffi::sqlite3_pcache) -> c_int {
    let cache = cache(p);
    match cache.methods.xPagecount {
        Some(f) => f(cache.inner),
        None => 0,
    }
}

unsafe extern "C" fn fetch(
    p: *mut ffi::sqlite3_pcache,
    key: c_uint,
    create: c_int,
) -> *mut ffi::sqlite3_pcache_page {
    let cache = cache(p);
    let Some(f) = cache.methods.xFetch else {
        return std::ptr::null_mut();
    };
    let page = f(cache.inner, key, create);
    if !page.is_null() && key > cache.highest {
        cache.highest = key;
    }
    page
}

unsafe extern "C" fn unpin(
    p: *mut ffi::sqlite3_pcache,
    page: *mut ffi::sqlite3_pcache_page,
    discard: c_int,
) {
    let cache = cache(p);
    if let Some(f) = cache.methods.xUnpin {
        f(cache.inner, page, discard)
    }
}

unsafe extern "C" fn rekey(
    p: *mut ffi::sqlite3_pcache,
    page: *mut ffi::sqlite3_pcache_page,
    old: c_uint,
    new: c_uint,
) {
    let cache = cache(p);
    if let Some(f) = cache.methods.xRekey {
        f(cache.inner, page, old, new)
    }
    if old == cache.temporary {
        cache.on_temporary = cache.on_temporary.saturating_sub(1);
    }
    if new == cache.temporary {
        cache.on_temporary += 1;
    } else if new > cache.highest {
        cache.highest = new;
    }
}

unsafe extern "C" fn truncate(p: *mut ffi::sqlite3_pcache, limit: c_uint) {
    let cache = cache(p);
    let temporary_past = cache.on_temporary > 0 && cache.temporary >= limit;
    if cache.highest < limit && !temporary_past {
        // No page numbered `limit` or above: nothing to drop.
        return;
    }
    if let Some(f) = cache.methods.xTruncate {
        f(cache.inner, limit)
    }
    cache.highest = cache.highest.min(limit.saturating_sub(1));
    if temporary_past {
        cache.on_temporary = 0;
    }
}

unsafe extern "C" fn destroy(p: *mut ffi::sqlite3_pcache) {
    let cache = Box::from_raw(p.cast::<Cache>());
    if let Some(f) = cache.methods.xDestroy {
        f(cache.inner)
    }
}

unsafe extern "C" fn shrink(p: *mut ffi::sqlite3_pcache) {
    let cache = cache(p);
    if let Some(f) = cache.methods.xShrink {
        f(cache.inner)
    }
}
