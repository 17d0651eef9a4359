//! Concurrency limits that never queue: a request takes a slot or is answered 503 at once.

use std::sync::atomic::{AtomicUsize, Ordering};

/// At most `limit` holders at once. A counter, not a semaphore: nobody waits for a slot, so a
/// semaphore's wait queue, and the lock it takes on every release, would be paid for nothing.
#[derive(Debug)]
pub struct Slots {
    taken: AtomicUsize,
    limit: usize,
}

/// A slot held until dropped.
#[derive(Debug)]
pub struct Slot<'a>(&'a Slots);

impl Slots {
    pub fn new(limit: usize) -> Self {
        Self { taken: AtomicUsize::new(0), limit }
    }

    /// A free slot, or `None` when all `limit` are taken.
    pub fn try_take(&self) -> Option<Slot<'_>> {
        self.taken
            .fetch_update(Ordering::Acquire, Ordering::Relaxed, |taken| (taken < self.limit).then_some(taken + 1))
            .ok()?;
        Some(Slot(self))
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.taken.fetch_sub(1, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_limit_slots_are_held_and_a_released_one_can_be_taken_again() {
        let slots = Slots::new(2);
        let (first, second) = (slots.try_take(), slots.try_take());
        assert!(first.is_some() && second.is_some());
        assert!(slots.try_take().is_none(), "a third while two are held");
        drop(first);
        let third = slots.try_take();
        assert!(third.is_some(), "the released slot");
        assert!(slots.try_take().is_none());
        drop((second, third));
        assert_eq!(slots.taken.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn many_threads_never_hold_more_than_the_limit() {
        let slots = Slots::new(3);
        let most = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..10_000 {
                        if let Some(_slot) = slots.try_take() {
                            most.fetch_max(slots.taken.load(Ordering::SeqCst), Ordering::SeqCst);
                        }
                    }
                });
            }
        });
        assert!(most.load(Ordering::SeqCst) <= 3);
        assert_eq!(slots.taken.load(Ordering::SeqCst), 0, "every slot came back");
    }
}
