//! libc's `clock_gettime` and `getrandom`, answered by the simulation
//! (see `ollystack_simulations::os`). Symbols defined in the executable
//! take precedence over the C library's for every caller in the process,
//! std included: `Instant::now`, `SystemTime::now` and std's `HashMap` keys
//! end up here. The same technique as madsim's; `LD_PRELOAD` libfaketime
//! did the same to the clocks when this was diagnosed.
#![allow(unsafe_code)]

use std::time::Duration;

use libc::{c_int, c_uint, c_void, clockid_t, size_t, ssize_t, timespec};
use ollystack_simulations::os::{self, ClockKind};

/// # Safety
/// `tp` must be valid for a write, as for libc's `clock_gettime`.
#[no_mangle]
pub unsafe extern "C" fn clock_gettime(clock: clockid_t, tp: *mut timespec) -> c_int {
    let kind = match clock {
        libc::CLOCK_REALTIME | libc::CLOCK_REALTIME_COARSE => Some(ClockKind::Realtime),
        libc::CLOCK_MONOTONIC | libc::CLOCK_MONOTONIC_RAW | libc::CLOCK_MONOTONIC_COARSE | libc::CLOCK_BOOTTIME => {
            Some(ClockKind::Monotonic)
        }
        _ => None,
    };
    if let (Some(now), false) = (kind.and_then(os::clock), tp.is_null()) {
        // SAFETY: the caller passes a writable timespec.
        unsafe {
            (*tp).tv_sec = now.as_secs() as libc::time_t;
            (*tp).tv_nsec = now.subsec_nanos() as libc::c_long;
        }
        return 0;
    }
    // SAFETY: the raw system call with the caller's arguments.
    unsafe { libc::syscall(libc::SYS_clock_gettime, clock, tp) as c_int }
}

/// # Safety
/// `buf` must be valid for `len` bytes of writes, as for libc's `getrandom`.
#[no_mangle]
pub unsafe extern "C" fn getrandom(buf: *mut c_void, len: size_t, _flags: c_uint) -> ssize_t {
    if buf.is_null() {
        return 0;
    }
    // SAFETY: the caller passes `len` writable bytes.
    let bytes = unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), len) };
    os::fill_random(bytes);
    len as ssize_t
}

/// The real monotonic clock, read before simulated time takes over.
pub fn real_monotonic() -> Duration {
    let mut ts = timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec for the kernel to fill.
    unsafe { libc::syscall(libc::SYS_clock_gettime, libc::CLOCK_MONOTONIC, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
