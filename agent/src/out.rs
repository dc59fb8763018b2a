//! Standard output for people and pipes. `wisp … | head` closes the pipe early: that is a normal
//! end for the reader, so the rest of the output is dropped quietly instead of panicking (as
//! `println!` does) — and a boot stage whose console went away still finishes its work.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once a write found the reader gone; later output is skipped.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes one line to standard output. Errors other than a closed pipe are dropped too: output
/// is a report, and failing to show it must not change what wisp does or its exit status.
pub fn line(args: fmt::Arguments<'_>) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = io::stdout().lock();
    let written = out.write_fmt(args).and_then(|()| out.write_all(b"\n"));
    if let Err(e) = written {
        if e.kind() == io::ErrorKind::BrokenPipe {
            CLOSED.store(true, Ordering::Relaxed);
        }
    }
}

/// `println!` that survives a closed pipe (see [`line`]).
#[macro_export]
macro_rules! outln {
    () => {
        $crate::out::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::out::line(format_args!($($arg)*))
    };
}
