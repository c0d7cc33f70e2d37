//! A queue whose items are applied in batches by a few runner tasks, with no timer: a batch is whatever queued
//! while the runners were busy, so a lone item is applied at once and a busy server applies many per round trip.
//! Each item carries its own reply channel; a runner that panics only fails its own batch's items.
//!
//! Items may name what they conflict on (the wallets a write locks). A batch then never takes an item that
//! conflicts with a batch in flight: that item waits for the runner holding its rows, which takes it in its next
//! batch. Two runners on one hot wallet would only take turns on its row lock, each with part of the queue; this
//! way one batch takes the whole queue while the other runner stays free for other wallets.

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

struct Queued<T> {
    item: T,
    conflicts: Vec<i64>,
}

struct Waiting<T> {
    queued: Vec<Queued<T>>,
    /// Runners applying a batch; what arrives meanwhile waits in `queued` for the next free one.
    running: usize,
    /// What each runner's batch in flight conflicts on, by runner.
    in_flight: Vec<(u64, Vec<i64>)>,
    next_runner: u64,
}

impl<T> Waiting<T> {
    fn held(&self) -> HashSet<i64> {
        self.in_flight
            .iter()
            .flat_map(|(_, conflicts)| conflicts.iter().copied())
            .collect()
    }

    /// Forgets what `runner`'s batch conflicted on (it finished, or panicked).
    fn finished(&mut self, runner: u64) {
        self.in_flight.retain(|(id, _)| *id != runner);
    }
}

/// What an item conflicts on; none for a queue whose items never do.
pub(super) type Conflicts<T> = fn(&T) -> Vec<i64>;

pub(super) struct Batcher<T> {
    waiting: Arc<Mutex<Waiting<T>>>,
    runners: usize,
    max_batch: usize,
    conflicts: Option<Conflicts<T>>,
}

impl<T> Clone for Batcher<T> {
    fn clone(&self) -> Self {
        Self {
            waiting: self.waiting.clone(),
            runners: self.runners,
            max_batch: self.max_batch,
            conflicts: self.conflicts,
        }
    }
}

impl<T> std::fmt::Debug for Batcher<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("runners", &self.runners)
            .field("max_batch", &self.max_batch)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Batcher<T> {
    pub(super) fn new(runners: usize, max_batch: usize) -> Self {
        Self::with_conflicts(runners, max_batch, None)
    }

    pub(super) fn with_conflicts(
        runners: usize,
        max_batch: usize,
        conflicts: Option<Conflicts<T>>,
    ) -> Self {
        Self {
            waiting: Arc::new(Mutex::new(Waiting {
                queued: Vec::new(),
                running: 0,
                in_flight: Vec::new(),
                next_runner: 0,
            })),
            runners,
            max_batch,
            conflicts,
        }
    }

    /// Queues `item`, and starts a runner applying batches with `apply` if fewer than `runners` are busy and no
    /// batch in flight holds what the item conflicts on (that batch's runner takes it next). The runner is a task
    /// of its own: a request that goes away does not cancel the items batched with it.
    pub(super) fn push<F, Fut>(&self, item: T, apply: F)
    where
        F: Fn(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let conflicts = self.conflicts.map(|of| of(&item)).unwrap_or_default();
        let runner = {
            let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            let waits_for_a_runner = !conflicts.is_empty() && {
                let held = waiting.held();
                conflicts.iter().any(|c| held.contains(c))
            };
            waiting.queued.push(Queued { item, conflicts });
            let start = waiting.running < self.runners && !waits_for_a_runner;
            start.then(|| {
                waiting.running += 1;
                waiting.next_runner += 1;
                waiting.next_runner
            })
        };
        if let Some(runner) = runner {
            tokio::spawn(run(self.clone(), runner, apply));
        }
    }

    /// `runner`'s next batch: what waits, but for items that conflict with another runner's batch in flight (and
    /// the items after them with what they conflict on, so that those keep their order). `None` (and the runner
    /// stops) when nothing is left for it.
    fn next_batch(&self, runner: u64) -> Option<Vec<T>> {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        waiting.finished(runner);
        let mut blocked = waiting.held();
        let mut batch = Vec::new();
        let mut taken = Vec::new();
        let mut left = Vec::new();
        for queued in waiting.queued.drain(..) {
            let free = batch.len() < self.max_batch
                && queued.conflicts.iter().all(|c| !blocked.contains(c));
            if free {
                taken.extend_from_slice(&queued.conflicts);
                batch.push(queued.item);
            } else {
                blocked.extend(queued.conflicts.iter().copied());
                left.push(queued);
            }
        }
        waiting.queued = left;
        if batch.is_empty() {
            waiting.running -= 1;
            return None;
        }
        if !taken.is_empty() {
            waiting.in_flight.push((runner, taken));
        }
        Some(batch)
    }
}

/// Lets the next item start a runner if this one panics.
struct RunnerGuard<T> {
    batcher: Batcher<T>,
    runner: u64,
    armed: bool,
}

impl<T> Drop for RunnerGuard<T> {
    fn drop(&mut self) {
        if self.armed {
            let mut waiting = (self.batcher.waiting)
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            waiting.running -= 1;
            waiting.finished(self.runner);
        }
    }
}

async fn run<T, F, Fut>(batcher: Batcher<T>, runner: u64, apply: F)
where
    T: Send + 'static,
    F: Fn(Vec<T>) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut guard = RunnerGuard {
        batcher: batcher.clone(),
        runner,
        armed: true,
    };
    loop {
        let Some(batch) = batcher.next_batch(runner) else {
            guard.armed = false;
            return;
        };
        apply(batch).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;

    type Item = (u32, oneshot::Sender<usize>);

    /// Answers each item with the size of its batch; an item 7 makes the runner panic.
    async fn apply(batch: Vec<Item>) {
        assert!(batch.iter().all(|(n, _)| *n != 7), "a poisoned batch");
        let size = batch.len();
        for (_, reply) in batch {
            let _ = reply.send(size);
        }
    }

    /// Pushes the items, then waits for their batch sizes. On this single-threaded runtime a runner starts only
    /// once every item is queued.
    async fn sizes(batcher: &Batcher<Item>, items: std::ops::Range<u32>) -> Vec<Option<usize>> {
        let answers: Vec<_> = items
            .map(|n| {
                let (reply, answer) = oneshot::channel();
                batcher.push((n, reply), apply);
                answer
            })
            .collect();
        let answered = futures::future::join_all(answers).await;
        answered.into_iter().map(Result::ok).collect()
    }

    #[tokio::test]
    async fn items_queued_while_a_runner_is_busy_form_the_next_batch() {
        let batcher = Batcher::new(1, 100);
        assert_eq!(sizes(&batcher, 10..20).await, [Some(10); 10]);
        // The runner stopped when the queue emptied: a later lone item runs alone.
        assert_eq!(sizes(&batcher, 20..21).await, [Some(1)]);
    }

    #[tokio::test]
    async fn batches_are_bounded_and_a_panicking_runner_lets_the_next_start() {
        let batcher = Batcher::new(1, 4);
        let bounded = sizes(&batcher, 0..6).await;
        assert_eq!(
            bounded,
            [Some(4), Some(4), Some(4), Some(4), Some(2), Some(2)]
        );
        assert_eq!(
            sizes(&batcher, 7..8).await,
            [None],
            "the panicking batch's item hears it"
        );
        assert_eq!(sizes(&batcher, 8..9).await, [Some(1)]);
    }

    type Keyed = (u32, i64, oneshot::Sender<Vec<u32>>);

    #[tokio::test]
    async fn an_item_that_conflicts_with_a_batch_in_flight_waits_for_that_batch() {
        let batcher: Batcher<Keyed> =
            Batcher::with_conflicts(2, 100, Some(|item: &Keyed| vec![item.1]));
        let gate = Arc::new(tokio::sync::Notify::new());
        // Answers each item with its batch's items; the batch of item 0 first waits for the gate.
        let apply = {
            let gate = gate.clone();
            move |batch: Vec<Keyed>| {
                let gate = gate.clone();
                async move {
                    if batch.iter().any(|(n, ..)| *n == 0) {
                        gate.notified().await;
                    }
                    let items: Vec<u32> = batch.iter().map(|(n, ..)| *n).collect();
                    for (.., reply) in batch {
                        let _ = reply.send(items.clone());
                    }
                }
            }
        };
        let push = |n: u32, key: i64| {
            let (reply, answer) = oneshot::channel();
            batcher.push((n, key, reply), apply.clone());
            answer
        };
        let first = push(0, 1);
        while batcher.waiting.lock().expect("lock").in_flight.is_empty() {
            tokio::task::yield_now().await;
        }
        let (same, other, same_again) = (push(1, 1), push(2, 2), push(3, 1));
        // The second runner takes only what the first's batch does not hold.
        assert_eq!(other.await.expect("answered"), [2]);
        gate.notify_one();
        assert_eq!(first.await.expect("answered"), [0]);
        // The first runner's next batch: both items on its key, in order.
        assert_eq!(same.await.expect("answered"), [1, 3]);
        assert_eq!(same_again.await.expect("answered"), [1, 3]);
    }
}
