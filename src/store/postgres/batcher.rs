//! A queue whose items are applied in batches by a few runner tasks, with no timer: a batch is whatever queued
//! while the runners were busy, so a lone item is applied at once and a busy server applies many per round trip.
//! Each item carries its own reply channel; a runner that panics only fails its own batch's items.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

struct Waiting<T> {
    queued: Vec<T>,
    /// Runners applying a batch; what arrives meanwhile waits in `queued` for the next free one.
    running: usize,
}

pub(super) struct Batcher<T> {
    waiting: Arc<Mutex<Waiting<T>>>,
    runners: usize,
    max_batch: usize,
}

impl<T> Clone for Batcher<T> {
    fn clone(&self) -> Self {
        Self {
            waiting: self.waiting.clone(),
            runners: self.runners,
            max_batch: self.max_batch,
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
        Self {
            waiting: Arc::new(Mutex::new(Waiting {
                queued: Vec::new(),
                running: 0,
            })),
            runners,
            max_batch,
        }
    }

    /// Queues `item`, and starts a runner applying batches with `apply` if fewer than `runners` are busy. The
    /// runner is a task of its own: a request that goes away does not cancel the items batched with it.
    pub(super) fn push<F, Fut>(&self, item: T, apply: F)
    where
        F: Fn(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let start = {
            let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            waiting.queued.push(item);
            let start = waiting.running < self.runners;
            if start {
                waiting.running += 1;
            }
            start
        };
        if start {
            tokio::spawn(run(self.clone(), apply));
        }
    }

    /// The next batch, or `None` (and the runner stops) when nothing waits.
    fn next_batch(&self) -> Option<Vec<T>> {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        if waiting.queued.is_empty() {
            waiting.running -= 1;
            return None;
        }
        let take = waiting.queued.len().min(self.max_batch);
        Some(waiting.queued.drain(..take).collect())
    }
}

/// Lets the next item start a runner if this one panics.
struct RunnerGuard<T> {
    batcher: Batcher<T>,
    armed: bool,
}

impl<T> Drop for RunnerGuard<T> {
    fn drop(&mut self) {
        if self.armed {
            let mut waiting = (self.batcher.waiting)
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            waiting.running -= 1;
        }
    }
}

async fn run<T, F, Fut>(batcher: Batcher<T>, apply: F)
where
    T: Send + 'static,
    F: Fn(Vec<T>) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut guard = RunnerGuard {
        batcher: batcher.clone(),
        armed: true,
    };
    loop {
        let Some(batch) = batcher.next_batch() else {
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
}
