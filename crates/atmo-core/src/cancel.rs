//! [`CancellationToken`]: tells a handler that its attempt is over.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use event_listener::Event;

use crate::failure::TaskError;

/// Signals a handler that its attempt is over (timed out, cancelled, shutting down).
///
/// Synchronous handlers poll [`CancellationToken::is_cancelled`] between steps; asynchronous
/// ones can also `select` on [`CancellationToken::cancelled`].
///
/// ```
/// use atmo_core::CancellationToken;
/// let t = CancellationToken::new();
/// let seen = t.clone();
/// assert!(!seen.is_cancelled());
/// t.cancel();
/// assert!(seen.is_cancelled());
/// futures::executor::block_on(seen.cancelled()); // resolves at once
/// ```
#[derive(Clone, Default)]
pub struct CancellationToken(Repr);

#[derive(Clone)]
enum Repr {
    /// A token of its own.
    Own(Arc<TokenInner>),
    /// Flag `index` of a group that [`CancellationToken::group`] made: one allocation serves
    /// many tokens.
    Grouped(Arc<TokenGroup>, u32),
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Own(Arc::default())
    }
}

#[derive(Default)]
struct TokenInner {
    cancelled: AtomicBool,
    event: Event,
}

/// Tokens made together share one allocation; a group's waiters share one event, and each
/// checks its own flag when woken.
struct TokenGroup {
    flags: Box<[AtomicBool]>,
    /// Stands in for a flag out of range, which `group` never hands out.
    spare: AtomicBool,
    event: Event,
}

impl CancellationToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// `n` independent tokens, none cancelled, allocated together: cancelling one leaves the
    /// others alone. For whoever hands out many tokens at once (the engine, per dispatch
    /// round).
    ///
    /// ```
    /// use atmo_core::CancellationToken;
    /// let tokens = CancellationToken::group(3);
    /// tokens[1].cancel();
    /// assert!(!tokens[0].is_cancelled());
    /// assert!(tokens[1].is_cancelled());
    /// assert!(!tokens[2].is_cancelled());
    /// ```
    pub fn group(n: usize) -> Vec<CancellationToken> {
        match n {
            0 => Vec::new(),
            1 => vec![CancellationToken::new()],
            _ => {
                let group = Arc::new(TokenGroup {
                    flags: (0..n).map(|_| AtomicBool::new(false)).collect(),
                    spare: AtomicBool::new(false),
                    event: Event::new(),
                });
                (0..n)
                    .map(|i| CancellationToken(Repr::Grouped(group.clone(), u32::try_from(i).unwrap_or(u32::MAX))))
                    .collect()
            }
        }
    }

    fn parts(&self) -> (&AtomicBool, &Event) {
        match &self.0 {
            Repr::Own(inner) => (&inner.cancelled, &inner.event),
            Repr::Grouped(group, i) => (group.flags.get(*i as usize).unwrap_or(&group.spare), &group.event),
        }
    }

    /// Cancels: every clone sees it, every waiter wakes.
    pub fn cancel(&self) {
        let (flag, event) = self.parts();
        if !flag.swap(true, Ordering::SeqCst) {
            event.notify(usize::MAX);
        }
    }

    /// Whether it was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.parts().0.load(Ordering::SeqCst)
    }

    /// Resolves once cancelled.
    pub async fn cancelled(&self) {
        loop {
            if self.is_cancelled() {
                return;
            }
            let listener = self.parts().1.listen();
            if self.is_cancelled() {
                return;
            }
            listener.await;
        }
    }

    /// `Err(TaskError)` of category `cancelled` if cancelled: `ctx.cancel.check()?` in loops.
    ///
    /// # Errors
    /// When the token was cancelled.
    pub fn check(&self) -> Result<(), TaskError> {
        if self.is_cancelled() {
            Err(TaskError::fatal("CANCELLED", "the attempt was cancelled or timed out")
                .with_category(crate::failure::ErrorCategory::Cancelled))
        } else {
            Ok(())
        }
    }
}

impl fmt::Debug for CancellationToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancellationToken").field("cancelled", &self.is_cancelled()).finish()
    }
}
