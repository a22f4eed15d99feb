//! Cancellation tokens: work that runs in the background gets its own token, so Ctrl-C on the foreground
//! (stopping a chat reply) does not stop it, while a command-line run follows the process-wide interrupt.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A cheap, cloneable "stop when you can" flag.
#[derive(Debug, Clone, Default)]
pub struct CancelToken {
    flag: Arc<AtomicBool>,
    /// Also cancelled once Ctrl-C or SIGTERM reached the process ([`crate::interrupt`]).
    follows_interrupt: bool,
}

impl CancelToken {
    /// A token only [`CancelToken::cancel`] cancels (background work).
    pub fn new() -> Self {
        Self::default()
    }

    /// A token that is also cancelled by Ctrl-C/SIGTERM (a command-line run in the foreground).
    pub fn interrupt() -> Self {
        CancelToken { flag: Arc::default(), follows_interrupt: true }
    }

    /// Asks the work to stop at its next safe point.
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }

    /// True once cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst) || (self.follows_interrupt && crate::interrupt::interrupted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_flag() {
        let t = CancelToken::new();
        let c = t.clone();
        assert!(!c.is_cancelled());
        t.cancel();
        assert!(c.is_cancelled());
    }
}
