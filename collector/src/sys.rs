//! The two system calls the collector makes that std has no wrapper for.

#![allow(unsafe_code)] // kill(2) and setsid(2) through libc.

use std::io;

/// Sends signal `sig` (0: only check that the process exists) to process `pid` (> 0).
pub fn kill(pid: i32, sig: i32) -> io::Result<()> {
    if pid <= 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{pid} is not a process id"),
        ));
    }
    // SAFETY: kill(2) with a positive pid touches no memory of ours.
    if unsafe { libc::kill(pid, sig) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Makes this process the leader of a new session, without a controlling terminal.
pub fn setsid() -> io::Result<()> {
    // SAFETY: setsid(2) takes no arguments and touches no memory of ours.
    if unsafe { libc::setsid() } == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
