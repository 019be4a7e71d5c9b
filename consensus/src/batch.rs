//! Group commit: requests that arrive while earlier ones are in flight leave
//! together, so that one fsync and one Raft round trip serve many clients.
//!
//! A batcher is a task with a queue. It takes the first waiting item, waits
//! for one of `depth` in-flight slots, then takes every item that queued up
//! meanwhile (up to a weight budget) and runs them as one batch. Under light
//! load a request leaves at once (no timer, no added latency); under heavy
//! load the batches grow by themselves.
//!
//! Invariant: every item gets exactly one answer, in the order of its batch;
//! a batch that answers the wrong number of items answers none, and its
//! callers see a closed channel (an unknown outcome, safe to retry).

use std::future::Future;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// How big a batch may grow.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Batches in flight at once.
    pub depth: usize,
    /// Most items in one batch.
    pub max_items: usize,
    /// Most total weight (bytes) in one batch; a single heavier item still
    /// leaves, alone.
    pub max_weight: usize,
    /// Most items waiting for a batch; a caller beyond it waits to queue.
    pub queue: usize,
}

struct Queued<T, R> {
    item: T,
    weight: usize,
    answer: oneshot::Sender<R>,
}

/// The sending side of a batcher. Dropping every clone stops its task.
pub(crate) struct Batcher<T, R> {
    tx: mpsc::Sender<Queued<T, R>>,
}

impl<T, R> Clone for Batcher<T, R> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
        }
    }
}

impl<T, R> std::fmt::Debug for Batcher<T, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher").finish_non_exhaustive()
    }
}

impl<T: Send + 'static, R: Send + 'static> Batcher<T, R> {
    /// Starts a batcher that hands each batch to `run`, which answers every
    /// item of it, in order.
    pub(crate) fn spawn<F, Fut>(limits: Limits, run: F) -> Self
    where
        F: Fn(Vec<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<R>> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(limits.queue.max(1));
        tokio::spawn(batch_loop(limits, rx, Arc::new(run)));
        Self { tx }
    }

    /// Queues `item` and waits for its answer; `None` if the batch it went
    /// out in failed without answering (or the batcher is stopped).
    pub(crate) async fn call(&self, item: T, weight: usize) -> Option<R> {
        let (answer, answered) = oneshot::channel();
        self.tx
            .send(Queued {
                item,
                weight,
                answer,
            })
            .await
            .ok()?;
        answered.await.ok()
    }
}

async fn batch_loop<T, R, F, Fut>(limits: Limits, mut rx: mpsc::Receiver<Queued<T, R>>, run: Arc<F>)
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(Vec<T>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Vec<R>> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(limits.depth.max(1)));
    let mut carried: Option<Queued<T, R>> = None;
    loop {
        let first = match carried.take() {
            Some(first) => first,
            None => match rx.recv().await {
                Some(first) => first,
                None => return,
            },
        };
        // While every slot is busy, requests pile up behind `first`: that
        // pile is the next batch.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut weight = first.weight;
        let mut batch = vec![first];
        while batch.len() < limits.max_items {
            match rx.try_recv() {
                Ok(next) if weight + next.weight > limits.max_weight => {
                    carried = Some(next);
                    break;
                }
                Ok(next) => {
                    weight += next.weight;
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        let run = run.clone();
        tokio::spawn(async move {
            let (items, answers): (Vec<T>, Vec<oneshot::Sender<R>>) =
                batch.into_iter().map(|q| (q.item, q.answer)).unzip();
            let results = run(items).await;
            drop(slot);
            if results.len() == answers.len() {
                for (answer, result) in answers.into_iter().zip(results) {
                    let _ = answer.send(result);
                }
            } else {
                tracing::error!(
                    items = answers.len(),
                    answers = results.len(),
                    "a batch answered the wrong number of items; its callers will retry"
                );
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn concurrent_items_share_batches_and_each_gets_its_own_answer() {
        let batches = Arc::new(AtomicUsize::new(0));
        let counted = batches.clone();
        let batcher: Batcher<u32, u32> = Batcher::spawn(
            Limits {
                depth: 1,
                max_items: 64,
                max_weight: 1 << 20,
                queue: 16,
            },
            move |items: Vec<u32>| {
                let counted = counted.clone();
                async move {
                    counted.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    items.into_iter().map(|i| i * 2).collect()
                }
            },
        );
        let calls: Vec<_> = (0..100u32)
            .map(|i| {
                let batcher = batcher.clone();
                tokio::spawn(async move { (i, batcher.call(i, 1).await) })
            })
            .collect();
        for call in calls {
            let (i, answer) = call.await.expect("task");
            assert_eq!(answer, Some(i * 2));
        }
        let batches = batches.load(Ordering::Relaxed);
        assert!(batches < 100, "{batches} batches for 100 concurrent items");
    }

    #[tokio::test]
    async fn the_weight_budget_splits_batches_and_a_wrong_count_answers_nobody() {
        let batcher: Batcher<usize, usize> = Batcher::spawn(
            Limits {
                depth: 1,
                max_items: 64,
                max_weight: 10,
                queue: 16,
            },
            |items: Vec<usize>| async move {
                if items.contains(&7) {
                    Vec::new()
                } else {
                    items.iter().map(|_| items.len()).collect()
                }
            },
        );
        // A single item heavier than the budget still leaves, alone.
        assert_eq!(batcher.call(1, 50).await, Some(1));
        assert_eq!(batcher.call(7, 1).await, None);
    }
}
