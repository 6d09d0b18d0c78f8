//! Reload coalescing: however many reload requests arrive, one reload runs at a time and
//! requests made while it runs are served by exactly one more.
//!
//! Requests from cluster notifications are also spaced: a reload starts at least
//! [`MIN_INTERVAL`] after the previous one started — Tyk's own floor ("1s is the minimum
//! amount of time between hot reloads", `gateway/server.go`), so a flood of reload
//! messages costs at most one reload per second. *Urgent* requests (this node's own
//! Gateway API, which needs the reload before answering) are not delayed.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::time::Instant;

/// The shortest time between the starts of two non-urgent reloads.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
struct State {
    /// Tickets handed out.
    requested: u64,
    /// The highest ticket served by a reload that has started.
    started: u64,
    /// A pending request wants no spacing.
    urgent: bool,
    /// A worker is running (or about to).
    running: bool,
    last_start: Option<Instant>,
}

/// One pending flag (`requested > started`) and at most one worker.
#[derive(Debug)]
pub struct Coalescer {
    state: Mutex<State>,
    /// Wakes a spacing worker when an urgent request arrives.
    wake: Notify,
    /// The highest ticket whose reload has completed.
    done: watch::Sender<u64>,
    min_interval: Duration,
}

impl Default for Coalescer {
    fn default() -> Self {
        Self::new(MIN_INTERVAL)
    }
}

impl Coalescer {
    /// A coalescer spacing non-urgent reloads by `min_interval`.
    pub fn new(min_interval: Duration) -> Self {
        Self {
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            done: watch::Sender::new(0),
            min_interval,
        }
    }

    /// Records a request. Returns its ticket (for [`Self::wait`]) and whether the
    /// caller must start a worker ([`Self::run`]).
    pub fn request(&self, urgent: bool) -> (u64, bool) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.requested += 1;
        let ticket = s.requested;
        if urgent {
            s.urgent = true;
            self.wake.notify_one();
        }
        let start = !s.running;
        s.running = true;
        (ticket, start)
    }

    /// The worker: runs `reload` while requests are pending, then returns.
    pub async fn run<F, Fut>(&self, mut reload: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = ()>,
    {
        // Should `reload` panic, a later request must still start a worker.
        struct Armed<'a>(&'a Coalescer, bool);
        impl Drop for Armed<'_> {
            fn drop(&mut self) {
                if self.1 {
                    let mut s = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
                    s.running = false;
                }
            }
        }
        let mut guard = Armed(self, true);
        loop {
            let wait = {
                let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                if s.requested == s.started {
                    s.running = false;
                    guard.1 = false;
                    return;
                }
                match s.last_start {
                    Some(at) if !s.urgent => {
                        (at + self.min_interval).saturating_duration_since(Instant::now())
                    }
                    _ => Duration::ZERO,
                }
            };
            if !wait.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = self.wake.notified() => {}
                }
                continue;
            }
            let covered = {
                let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                s.urgent = false;
                s.last_start = Some(Instant::now());
                s.started = s.requested;
                s.requested
            };
            reload().await;
            self.done.send_if_modified(|d| {
                let newer = covered > *d;
                if newer {
                    *d = covered;
                }
                newer
            });
        }
    }

    /// Waits until a reload that started after request `ticket` was made has completed.
    pub async fn wait(&self, ticket: u64) {
        let mut rx = self.done.subscribe();
        let _ = rx.wait_for(|d| *d >= ticket).await;
    }

    /// Requests made so far (for tests and metrics).
    pub fn requested(&self) -> u64 {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .requested
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    /// Starts a worker when asked, like the gateway does.
    fn request(
        c: &Arc<Coalescer>,
        runs: &Arc<AtomicU64>,
        gate: &Arc<tokio::sync::Semaphore>,
        urgent: bool,
    ) -> u64 {
        let (ticket, start) = c.request(urgent);
        if start {
            let (c, runs, gate) = (c.clone(), runs.clone(), gate.clone());
            tokio::spawn(async move {
                c.run(|| {
                    let (runs, gate) = (runs.clone(), gate.clone());
                    async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        // A reload takes until the test lets it finish.
                        gate.acquire().await.unwrap().forget();
                    }
                })
                .await;
            });
        }
        ticket
    }

    #[tokio::test]
    async fn requests_during_a_reload_cause_exactly_one_more() {
        let c = Arc::new(Coalescer::new(Duration::ZERO));
        let runs = Arc::new(AtomicU64::new(0));
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let first = request(&c, &runs, &gate, false);
        // Wait until the first reload is running.
        while runs.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        // 2,000 requests while it runs.
        let mut last = 0;
        for _ in 0..2000 {
            last = request(&c, &runs, &gate, false);
        }
        gate.add_permits(1);
        c.wait(first).await;
        gate.add_permits(1);
        c.wait(last).await;
        assert_eq!(runs.load(Ordering::SeqCst), 2, "reloads for 2,001 requests");
        // Nothing is left pending: no further reload starts.
        gate.add_permits(10);
        tokio::task::yield_now().await;
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert_eq!(c.requested(), 2001);
    }

    #[tokio::test(start_paused = true)]
    async fn notification_reloads_are_spaced_and_urgent_ones_are_not() {
        let c = Arc::new(Coalescer::new(Duration::from_secs(1)));
        let runs = Arc::new(AtomicU64::new(0));
        let gate = Arc::new(tokio::sync::Semaphore::new(1000));
        let t = request(&c, &runs, &gate, false);
        c.wait(t).await;
        let started = tokio::time::Instant::now();
        let t = request(&c, &runs, &gate, false);
        c.wait(t).await;
        assert!(
            started.elapsed() >= Duration::from_millis(999),
            "not spaced"
        );
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        // An urgent request does not wait for the spacing.
        let started = tokio::time::Instant::now();
        let _ = request(&c, &runs, &gate, false);
        let t = request(&c, &runs, &gate, true);
        c.wait(t).await;
        assert!(
            started.elapsed() < Duration::from_millis(999),
            "urgent was delayed"
        );
        assert_eq!(
            runs.load(Ordering::SeqCst),
            3,
            "the two requests share one reload"
        );
    }
}
