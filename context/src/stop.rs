//! When a query gives up: superseded (a newer request made it pointless) or past its deadline.
//! Queries check it between files and while parsing; this module only answers the question.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// A cancellation check and a deadline for one query. `Copy`; pass it by value.
#[derive(Clone, Copy, Default)]
pub struct Stop<'a> {
    flag: Option<&'a AtomicBool>,
    check: Option<&'a dyn Fn() -> bool>,
    deadline: Option<Instant>,
}

impl std::fmt::Debug for Stop<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stop")
            .field("flag", &self.flag)
            .field("check", &self.check.is_some())
            .field("deadline", &self.deadline)
            .finish()
    }
}

/// Why a query stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Stopped {
    /// The cancellation check turned true.
    #[error("cancelled")]
    Cancelled,
    /// The deadline passed.
    #[error("deadline passed")]
    Deadline,
}

impl<'a> Stop<'a> {
    /// Never stops.
    pub fn never() -> Stop<'static> {
        Stop::default()
    }

    /// Stops once `flag` is set.
    pub fn flag(flag: &'a AtomicBool) -> Stop<'a> {
        Stop {
            flag: Some(flag),
            ..Stop::default()
        }
    }

    /// Stops once `check()` returns true.
    pub fn check(check: &'a dyn Fn() -> bool) -> Stop<'a> {
        Stop {
            check: Some(check),
            ..Stop::default()
        }
    }

    /// Also stops at `deadline`.
    pub fn until(self, deadline: Instant) -> Stop<'a> {
        Stop {
            deadline: Some(self.deadline.map_or(deadline, |d| d.min(deadline))),
            ..self
        }
    }

    /// Whether to stop now, and why.
    pub fn reason(&self) -> Option<Stopped> {
        if self.flag.is_some_and(|f| f.load(Ordering::Relaxed)) || self.check.is_some_and(|c| c()) {
            return Some(Stopped::Cancelled);
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Some(Stopped::Deadline);
        }
        None
    }

    /// Whether to stop now.
    pub fn stopped(&self) -> bool {
        self.reason().is_some()
    }

    /// `Err` when the query should stop now.
    pub fn check_now(&self) -> Result<(), Stopped> {
        match self.reason() {
            Some(reason) => Err(reason),
            None => Ok(()),
        }
    }
}
