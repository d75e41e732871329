//! The few POSIX calls std does not wrap, kept in one small module so the
//! rest of the crate stays free of `unsafe`.
//!
//! Every function here is a thin, documented wrapper around one libc call;
//! the invariants each relies on are stated in its SAFETY comment.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

/// The effective uid of this process.
pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The account postgres runs as when we are root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Account {
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

/// Looks up a user by name through NSS (`getpwnam_r`, the thread-safe form).
pub(crate) fn lookup_user(name: &str) -> io::Result<Option<Account>> {
    let c_name = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut buf_len = 1024usize;
    loop {
        let mut buf = vec![0 as libc::c_char; buf_len];
        // SAFETY: an all-zero passwd is a valid value for this plain C struct
        // (null pointers, zero ids); getpwnam_r overwrites it on success.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer refers to live, writable memory of the stated
        // size for the whole call; `c_name` is NUL-terminated.
        let rc = unsafe {
            libc::getpwnam_r(
                c_name.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && buf_len < 1 << 20 {
            buf_len *= 4;
            continue;
        }
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        if result.is_null() {
            return Ok(None);
        }
        let home = if pwd.pw_dir.is_null() {
            PathBuf::from("/")
        } else {
            // SAFETY: on success pw_dir points into `buf`, NUL-terminated,
            // and `buf` is still alive here.
            let dir = unsafe { CStr::from_ptr(pwd.pw_dir) };
            PathBuf::from(std::ffi::OsStr::from_bytes(dir.to_bytes()))
        };
        return Ok(Some(Account {
            uid: pwd.pw_uid,
            gid: pwd.pw_gid,
            home,
        }));
    }
}

/// Takes an exclusive, non-blocking `flock` on `file`. `Ok(false)` means
/// another open file description (this or another process) holds it.
pub(crate) fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    loop {
        // SAFETY: the fd is owned by `file`, which outlives the call.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EWOULDBLOCK) => return Ok(false),
            Some(libc::EINTR) => continue,
            _ => return Err(err),
        }
    }
}

/// Sends `signal` to `pid`.
pub(crate) fn send_signal(pid: u32, signal: libc::c_int) -> io::Result<()> {
    let pid =
        libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    if pid <= 0 {
        // kill(0|-n) would hit a whole process group.
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: kill has no memory-safety preconditions; pid > 0 so it
    // targets exactly one process.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether a process with this pid exists (a zombie counts as gone).
pub(crate) fn process_alive(pid: u32) -> bool {
    match send_signal(pid, 0) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {}
        Err(_) => return false,
    }
    // kill(pid, 0) succeeds on zombies; an unreaped corpse is not running.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_none_or(|state| state != "Z" && state != "X"),
        Err(_) => true,
    }
}

/// Blocks until child `pid` has exited, without reaping it, so the caller
/// can mark it dead before the pid becomes reusable.
pub(crate) fn wait_exit_without_reaping(pid: u32) -> io::Result<()> {
    let id = libc::id_t::from(pid);
    loop {
        // SAFETY: siginfo_t is a plain C struct for which all-zero is valid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a live, writable siginfo_t for the whole call.
        let rc = unsafe { libc::waitid(libc::P_PID, id, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    }
}

/// Arranges for the child of `cmd` to (1) drop to `run_as` (uid, gid) with
/// no supplementary groups, then (2) receive `death_signal` when the thread
/// that spawns it exits.
///
/// The order matters: Linux clears the parent-death signal whenever the
/// effective uid/gid changes, so it must be set after the switch. If this
/// process died between fork and prctl, the signal would never come, so the
/// child checks its parent is still us and refuses to exec otherwise.
pub(crate) fn configure_child(
    cmd: &mut Command,
    run_as: Option<(u32, u32)>,
    death_signal: libc::c_int,
) {
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    let hook = move || -> io::Result<()> {
        // Only async-signal-safe calls below, and no allocation: this runs
        // between fork and exec in a copy of a multi-threaded process.
        if let Some((uid, gid)) = run_as {
            // SAFETY: plain syscalls on integers; a null list with size 0
            // is the documented way to clear supplementary groups.
            unsafe {
                if libc::setgroups(0, std::ptr::null()) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::setgid(gid) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::setuid(uid) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        // SAFETY: prctl(PR_SET_PDEATHSIG, sig) reads only its integer args.
        let rc = unsafe {
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                death_signal as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: getppid has no preconditions.
        if unsafe { libc::getppid() } != parent {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        Ok(())
    };
    // SAFETY: the hook only makes async-signal-safe syscalls and does not
    // allocate or touch locks, as pre_exec requires.
    unsafe {
        cmd.pre_exec(hook);
    }
}

/// Registers `f` to run when the process exits normally (`exit()`/return
/// from main), which is how the test harness ends.
pub(crate) fn at_exit(f: extern "C" fn()) -> bool {
    // SAFETY: `f` is a plain function with 'static lifetime.
    unsafe { libc::atexit(f) == 0 }
}
