//! A deadline kept by a task that its work wakes far more often than the deadline does.

use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use tokio::time::{Instant, Sleep};

/// A `Sleep` that stores the task's waker once, not on every poll.
///
/// A connection task polls its deadline with everything else each time it wakes, several times
/// a request. tokio's `Sleep` registers the waker anew on each poll (atomic swaps and a waker
/// clone, about 120 instructions), for a deadline that fires once in thousands of wake-ups.
/// A watchdog polls its `Sleep` only until the waker is stored, and again once it has fired.
pub struct Watchdog<'a> {
    sleep: Pin<&'a mut Sleep>,
    /// The waker the sleep holds, until it fires.
    armed_for: Option<Waker>,
}

impl<'a> Watchdog<'a> {
    pub fn new(sleep: Pin<&'a mut Sleep>) -> Self {
        Self { sleep, armed_for: None }
    }

    /// Moves the deadline; a sleep that has not fired keeps the waker it holds.
    pub fn reset(&mut self, deadline: Instant) {
        self.sleep.as_mut().reset(deadline);
    }
}

impl Future for Watchdog<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let armed = self.armed_for.as_ref().is_some_and(|waker| waker.will_wake(cx.waker()));
        // A fired sleep no longer holds a waker: `is_elapsed` is how its firing is seen.
        if armed && !self.sleep.is_elapsed() {
            return Poll::Pending;
        }
        // With the task's budget spent, `Sleep` answers Pending without storing the waker (or even
        // entering the timer wheel): that poll must not count as armed.
        let budget = tokio::task::coop::has_budget_remaining();
        let polled = self.sleep.as_mut().poll(cx);
        self.armed_for = (polled.is_pending() && budget).then(|| cx.waker().clone());
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn fires_at_its_deadline_however_often_it_is_polled_and_again_after_a_reset() {
        let sleep = std::pin::pin!(tokio::time::sleep(Duration::from_millis(100)));
        let mut watchdog = Watchdog::new(sleep);
        let started = Instant::now();
        // Polled often, as a busy task polls it, and never early.
        for _ in 0..10 {
            tokio::select! {
                () = &mut watchdog => panic!("fired before its deadline"),
                () = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
        }
        (&mut watchdog).await;
        assert_eq!(started.elapsed(), Duration::from_millis(100));
        // Reset after firing: the waker must be stored again, or this would never end.
        watchdog.reset(Instant::now() + Duration::from_millis(30));
        tokio::time::timeout(Duration::from_millis(31), &mut watchdog).await.expect("fires after a reset");
        // Reset before firing, to later and to sooner: the deadline moves, the waker stays.
        watchdog.reset(Instant::now() + Duration::from_millis(50));
        let _ = tokio::time::timeout(Duration::from_millis(10), &mut watchdog).await;
        watchdog.reset(Instant::now() + Duration::from_millis(200));
        assert!(tokio::time::timeout(Duration::from_millis(199), &mut watchdog).await.is_err(), "moved later");
        watchdog.reset(Instant::now() + Duration::from_millis(5));
        tokio::time::timeout(Duration::from_millis(6), &mut watchdog).await.expect("moved sooner");
    }

    #[tokio::test(start_paused = true)]
    async fn a_poll_refused_for_want_of_budget_does_not_arm_it() {
        let sleep = std::pin::pin!(tokio::time::sleep(Duration::from_millis(100)));
        let mut watchdog = Watchdog::new(sleep);
        // A busy connection can spend its task's budget before the watchdog is polled.
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
        for _ in 0..1_000 {
            sender.send(()).expect("open");
        }
        std::future::poll_fn(|cx| {
            while tokio::task::coop::has_budget_remaining() {
                let _ = receiver.poll_recv(cx);
            }
            assert!(Pin::new(&mut watchdog).poll(cx).is_pending());
            Poll::Ready(())
        })
        .await;
        tokio::time::timeout(Duration::from_millis(101), &mut watchdog).await.expect("fires at its deadline");
    }
}
