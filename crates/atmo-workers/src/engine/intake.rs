//! Intake: whether the engine accepts submissions, and how many accepted requests are
//! unfinished (the bound behind `QueueFull`).
//!
//! A submission takes a [`Permit`] for its requests before it stores them; the permit gives
//! its places back when dropped, unless [`Permit::keep`] hands them to the stored requests,
//! whose places are given back as they finish ([`Intake::finished`]).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use atmo_core::Error;

#[derive(Debug)]
pub(crate) struct Intake {
    accepting: AtomicBool,
    /// Accepted requests not finished yet.
    active: AtomicUsize,
    capacity: usize,
}

impl Intake {
    pub(crate) fn new(capacity: usize) -> Self {
        Intake { accepting: AtomicBool::new(true), active: AtomicUsize::new(0), capacity }
    }

    pub(crate) fn is_accepting(&self) -> bool {
        self.accepting.load(Ordering::Acquire)
    }

    /// Stops intake; returns whether it was open (so shutdown runs once).
    pub(crate) fn close(&self) -> bool {
        self.accepting.swap(false, Ordering::AcqRel)
    }

    /// Unfinished accepted requests.
    pub(crate) fn active(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    /// Sets the count from the store (at start: what a previous run left unfinished).
    pub(crate) fn restore(&self, unfinished: usize) {
        self.active.store(unfinished, Ordering::Release);
    }

    /// Places for `n` requests.
    ///
    /// # Errors
    /// `ShuttingDown` once intake closed; `QueueFull` (with the count and the bound) when the
    /// places are not there.
    pub(crate) fn admit(&self, n: usize) -> Result<Permit<'_>, Error> {
        if !self.is_accepting() {
            return Err(Error::ShuttingDown);
        }
        let before = self.active.fetch_add(n, Ordering::AcqRel);
        if before.saturating_add(n) > self.capacity {
            self.active.fetch_sub(n, Ordering::AcqRel);
            return Err(Error::QueueFull { queued: before, capacity: self.capacity });
        }
        Ok(Permit { intake: self, places: n })
    }

    /// `n` accepted requests finished.
    pub(crate) fn finished(&self, n: usize) {
        if n > 0 {
            let _ = self.active.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| Some(v.saturating_sub(n)));
        }
    }
}

/// Places taken for a submission; what is not kept is given back on drop.
#[derive(Debug)]
#[must_use]
pub(crate) struct Permit<'a> {
    intake: &'a Intake,
    places: usize,
}

impl Permit<'_> {
    /// `n` of the places now belong to stored requests (the rest, duplicates of requests
    /// stored before, are given back).
    pub(crate) fn keep(mut self, n: usize) {
        self.places = self.places.saturating_sub(n);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.intake.finished(self.places);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_permit_gives_its_places_back() {
        let intake = Intake::new(3);
        drop(intake.admit(3));
        assert_eq!(intake.active(), 0);
        intake.admit(2).map(|p| p.keep(1)).unwrap_or_default();
        assert_eq!(intake.active(), 1, "one kept, one given back");
        match intake.admit(3) {
            Err(Error::QueueFull { queued: 1, capacity: 3 }) => {}
            other => panic!("expected QueueFull, got {other:?}"),
        }
        intake.finished(5);
        assert_eq!(intake.active(), 0, "never below zero");
        assert!(intake.close());
        assert!(matches!(intake.admit(1), Err(Error::ShuttingDown)));
        assert!(!intake.close(), "closes once");
    }
}
