//! A VFS over SQLite's default one that gathers the writes of a transaction into the WAL
//! and hands them to the kernel as one `pwrite` at its commit.
//!
//! SQLite writes each WAL frame as two `pwrite`s, its 24-byte header and its page; a batch
//! of creates is a few hundred of them. Frames are 4,120 bytes, so most writes cover part of
//! a page of the file, and in a part of the file not written before (the WAL's first pass
//! after every start) the kernel zeroes each page before copying in the part written. Under
//! POST load that zeroing and the per-call cost of the writes were ~8% of the server's CPU,
//! nearly all on the writer's SQLite thread, which every create waits for.
//!
//! Only WAL files are wrapped; every other file is the default VFS's own, untouched. A WAL
//! file keeps contiguous writes in a buffer and writes it out:
//! - when the page of a commit frame (a frame header whose "database size after commit" is
//!   set) has been added: SQLite makes a commit visible to other connections only after it
//!   has written the commit frame, so they never read a frame still in the buffer, and the
//!   COMMIT still has every frame in the file before it returns (`wal_sync` then syncs it);
//! - before any other call on the file (a read, a sync, its size, a truncation, closing), so
//!   the connection itself always sees the file as it wrote it;
//! - before a write that does not continue the buffer, and once the buffer holds 1 MiB.
//!
//! Durability is unchanged: nothing is acknowledged before its frames are written and synced.

use libsqlite3_sys as ffi;
use std::cell::UnsafeCell;
use std::ffi::CStr;
use std::os::raw::{c_int, c_void};
use std::sync::OnceLock;

/// The name connections ask for (`vfs=` in their options).
pub const NAME: &str = "tmf635";
const NAME_C: &CStr = c"tmf635";

/// The buffer is written out once it holds this much.
const BUFFER_LIMIT: usize = 1 << 20;
/// Bytes per write to the default VFS, whose unix `xWrite` takes at most 128 KiB - 1.
const WRITE_LIMIT: usize = 120 * 1024;
/// The size of a WAL frame header; no other write to a WAL file has this size.
const FRAME_HEADER: usize = 24;

struct Vfs {
    /// SQLite writes into it when it registers it (`pNext`).
    ours: UnsafeCell<ffi::sqlite3_vfs>,
    /// The default VFS, which opens the files.
    inner: *mut ffi::sqlite3_vfs,
    /// Where our state sits in a file's allocation: after the default VFS's file, aligned.
    state_offset: usize,
}
// SAFETY: written once in `register`, read only after; SQLite uses a VFS from any thread.
unsafe impl Send for Vfs {}
unsafe impl Sync for Vfs {}

static VFS: OnceLock<Box<Vfs>> = OnceLock::new();

/// A WAL file's buffered writes, kept after the default VFS's file in the same allocation.
struct WalState {
    /// The default VFS's methods for this file.
    methods: *const ffi::sqlite3_io_methods,
    /// File offset of the buffer's first byte.
    start: i64,
    buffer: Vec<u8>,
    /// The last write was a commit frame's header: write out after its page.
    commit_page_next: bool,
}

/// Registers the VFS (not as the default). True when it is registered.
pub(super) fn register() -> bool {
    let vfs = VFS.get_or_init(|| {
        // SAFETY: `sqlite3_vfs_find(NULL)` returns the default VFS, which lives as long as
        // the process; we copy its fields.
        unsafe {
            let inner = ffi::sqlite3_vfs_find(std::ptr::null());
            let mut ours = if inner.is_null() {
                std::mem::zeroed()
            } else {
                *inner
            };
            let inner_size = usize::try_from(ours.szOsFile).unwrap_or(0);
            let state_offset = inner_size.next_multiple_of(std::mem::align_of::<WalState>());
            ours.szOsFile =
                c_int::try_from(state_offset + std::mem::size_of::<WalState>()).unwrap_or(0);
            ours.zName = NAME_C.as_ptr();
            ours.pNext = std::ptr::null_mut();
            ours.xOpen = Some(open);
            Box::new(Vfs {
                ours: UnsafeCell::new(ours),
                inner,
                state_offset,
            })
        }
    });
    let ours = vfs.ours.get();
    // SAFETY: nothing else touches the struct until it is registered.
    if vfs.inner.is_null() || unsafe { (*ours).szOsFile } == 0 {
        return false;
    }
    // SAFETY: the struct is boxed in a static, so it outlives every connection; SQLite
    // links it into its list (writing `pNext`) and never frees it.
    unsafe { ffi::sqlite3_vfs_register(ours, 0) == ffi::SQLITE_OK }
}

static WAL_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: Some(shm_map),
    xShmLock: Some(shm_lock),
    xShmBarrier: Some(shm_barrier),
    xShmUnmap: Some(shm_unmap),
    xFetch: Some(fetch),
    xUnfetch: Some(unfetch),
};

unsafe extern "C" fn open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let Some(vfs) = VFS.get() else {
        return ffi::SQLITE_ERROR;
    };
    let Some(inner_open) = (*vfs.inner).xOpen else {
        return ffi::SQLITE_ERROR;
    };
    // The default VFS's file starts our allocation: any file but a WAL is exactly its own.
    let rc = inner_open(vfs.inner, name, file, flags, out_flags);
    if rc != ffi::SQLITE_OK || flags & ffi::SQLITE_OPEN_WAL == 0 || (*file).pMethods.is_null() {
        return rc;
    }
    state_ptr(file).write(WalState {
        methods: (*file).pMethods,
        start: 0,
        buffer: Vec::new(),
        commit_page_next: false,
    });
    (*file).pMethods = &WAL_METHODS;
    ffi::SQLITE_OK
}

/// SAFETY: `file` was opened by `open` in an allocation of our `szOsFile`.
unsafe fn state_ptr(file: *mut ffi::sqlite3_file) -> *mut WalState {
    let offset = VFS.get().map_or(0, |v| v.state_offset);
    file.cast::<u8>().add(offset).cast::<WalState>()
}

/// SAFETY: `file` is a WAL file `open` wrapped, not yet closed.
unsafe fn state<'a>(file: *mut ffi::sqlite3_file) -> &'a mut WalState {
    &mut *state_ptr(file)
}

/// Runs `call` with the default VFS's methods on `file` (its code may look at them), then
/// puts ours back.
unsafe fn inner<R>(
    file: *mut ffi::sqlite3_file,
    call: impl FnOnce(&ffi::sqlite3_io_methods) -> Option<R>,
) -> Option<R> {
    let methods = state(file).methods;
    (*file).pMethods = methods;
    let result = call(&*methods);
    (*file).pMethods = &WAL_METHODS;
    result
}

/// Writes the buffer out; on failure it is dropped (its frames belong to the transaction
/// the error then undoes).
unsafe fn flush(file: *mut ffi::sqlite3_file) -> c_int {
    let (start, buffer) = {
        let state = state(file);
        state.commit_page_next = false;
        if state.buffer.is_empty() {
            return ffi::SQLITE_OK;
        }
        (state.start, std::mem::take(&mut state.buffer))
    };
    let mut rc = ffi::SQLITE_OK;
    let mut offset = start;
    for chunk in buffer.chunks(WRITE_LIMIT) {
        // A chunk is at most WRITE_LIMIT bytes, which fits.
        let len = chunk.len() as c_int;
        rc = inner(file, |m| {
            m.xWrite
                .map(|w| w(file, chunk.as_ptr().cast::<c_void>(), len, offset))
        })
        .unwrap_or(ffi::SQLITE_IOERR_WRITE);
        if rc != ffi::SQLITE_OK {
            break;
        }
        offset += len as i64;
    }
    // Keep the allocation for the next transaction.
    let mut buffer = buffer;
    buffer.clear();
    state(file).buffer = buffer;
    rc
}

unsafe extern "C" fn write(
    file: *mut ffi::sqlite3_file,
    data: *const c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    let Ok(len) = usize::try_from(amount) else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    let bytes = std::slice::from_raw_parts(data.cast::<u8>(), len);
    let st = state(file);
    if !st.buffer.is_empty() && offset != st.start + st.buffer.len() as i64 {
        let rc = flush(file);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
    }
    let st = state(file);
    if st.buffer.is_empty() {
        st.start = offset;
    }
    st.buffer.extend_from_slice(bytes);
    if st.commit_page_next || st.buffer.len() >= BUFFER_LIMIT {
        return flush(file);
    }
    // A frame header: bytes 4..8 hold the database size after a commit, 0 for other frames.
    st.commit_page_next = len == FRAME_HEADER && bytes[4..8] != [0, 0, 0, 0];
    ffi::SQLITE_OK
}

/// Writes the buffer out, then runs `call` on the default VFS's file.
unsafe fn flushed(
    file: *mut ffi::sqlite3_file,
    call: impl FnOnce(&ffi::sqlite3_io_methods) -> Option<c_int>,
) -> c_int {
    let rc = flush(file);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    inner(file, call).unwrap_or(ffi::SQLITE_OK)
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    let flushed_rc = flush(file);
    let rc = inner(file, |m| m.xClose.map(|f| f(file))).unwrap_or(ffi::SQLITE_OK);
    std::ptr::drop_in_place(state_ptr(file));
    if flushed_rc != ffi::SQLITE_OK {
        flushed_rc
    } else {
        rc
    }
}

unsafe extern "C" fn read(
    file: *mut ffi::sqlite3_file,
    data: *mut c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    flushed(file, |m| m.xRead.map(|f| f(file, data, amount, offset)))
}

unsafe extern "C" fn truncate(file: *mut ffi::sqlite3_file, size: ffi::sqlite3_int64) -> c_int {
    flushed(file, |m| m.xTruncate.map(|f| f(file, size)))
}

unsafe extern "C" fn sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    flushed(file, |m| m.xSync.map(|f| f(file, flags)))
}

unsafe extern "C" fn file_size(
    file: *mut ffi::sqlite3_file,
    size: *mut ffi::sqlite3_int64,
) -> c_int {
    flushed(file, |m| m.xFileSize.map(|f| f(file, size)))
}

unsafe extern "C" fn lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    flushed(file, |m| m.xLock.map(|f| f(file, level)))
}

unsafe extern "C" fn unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    flushed(file, |m| m.xUnlock.map(|f| f(file, level)))
}

unsafe extern "C" fn check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    flushed(file, |m| m.xCheckReservedLock.map(|f| f(file, out)))
}

unsafe extern "C" fn file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    flushed(file, |m| {
        Some(
            m.xFileControl
                .map_or(ffi::SQLITE_NOTFOUND, |f| f(file, op, arg)),
        )
    })
}

unsafe extern "C" fn sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    inner(file, |m| m.xSectorSize.map(|f| f(file))).unwrap_or(0)
}

unsafe extern "C" fn device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    inner(file, |m| m.xDeviceCharacteristics.map(|f| f(file))).unwrap_or(0)
}

// A WAL file has no shared memory or memory map of its own (the database file has them);
// these only pass the call on.
unsafe extern "C" fn shm_map(
    file: *mut ffi::sqlite3_file,
    region: c_int,
    size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    flushed(file, |m| {
        m.xShmMap.map(|f| f(file, region, size, extend, out))
    })
}

unsafe extern "C" fn shm_lock(
    file: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    flushed(file, |m| m.xShmLock.map(|f| f(file, offset, n, flags)))
}

unsafe extern "C" fn shm_barrier(file: *mut ffi::sqlite3_file) {
    flush(file);
    inner(file, |m| m.xShmBarrier.map(|f| f(file)));
}

unsafe extern "C" fn shm_unmap(file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    flushed(file, |m| m.xShmUnmap.map(|f| f(file, delete)))
}

unsafe extern "C" fn fetch(
    file: *mut ffi::sqlite3_file,
    offset: ffi::sqlite3_int64,
    amount: c_int,
    out: *mut *mut c_void,
) -> c_int {
    flushed(file, |m| match m.xFetch {
        Some(f) => Some(f(file, offset, amount, out)),
        None => {
            // No memory map: SQLite reads instead.
            *out = std::ptr::null_mut();
            None
        }
    })
}

unsafe extern "C" fn unfetch(
    file: *mut ffi::sqlite3_file,
    offset: ffi::sqlite3_int64,
    p: *mut c_void,
) -> c_int {
    flushed(file, |m| m.xUnfetch.map(|f| f(file, offset, p)))
}
