//! Group commit: callers that want the same costly step done (here: appending an issuance's
//! records to the provenance log, in one transaction with a signed tree head) queue their
//! items; one of them, the leader, takes every item queued so far and does the step once for
//! all of them, while the others wait for their result. Under load, one transaction, one tree
//! head signature and one receipt signature serve several issuances; alone, a caller leads a
//! batch of one and waits for no one.
//!
//! A leader that panics leaves its batch without results: its followers get `None` (and a new
//! leader takes the items queued after), never a wait without end.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// The most items one batch commits (a transaction's size stays bounded; the rest wait for
/// the next batch, in their order).
pub(crate) const MAX_BATCH: usize = 256;

/// Items of type `T` committed in batches, each answered with an `R`.
#[derive(Debug)]
pub(crate) struct GroupCommit<T, R> {
    queue: Mutex<Queue<T, R>>,
    answered: Condvar,
}

#[derive(Debug)]
struct Queue<T, R> {
    waiting: Vec<(u64, T)>,
    /// By ticket: the result, or `None` when the batch's leader panicked.
    results: HashMap<u64, Option<R>>,
    leading: bool,
    next: u64,
}

impl<T, R> Default for GroupCommit<T, R> {
    fn default() -> Self {
        let queue = Queue { waiting: Vec::new(), results: HashMap::new(), leading: false, next: 0 };
        Self { queue: Mutex::new(queue), answered: Condvar::new() }
    }
}

/// The leader's batch: on drop, the tickets it did not answer are answered `None` and the
/// lead is given up, so a panic in `commit` wakes every follower.
struct Lead<'a, T, R> {
    group: &'a GroupCommit<T, R>,
    tickets: Vec<u64>,
    /// The leader's own ticket: its caller, unwinding, reads no result.
    own: u64,
}

impl<T, R> Drop for Lead<'_, T, R> {
    fn drop(&mut self) {
        let mut queue = self.group.lock();
        let unwinding = std::thread::panicking();
        for ticket in self.tickets.drain(..).filter(|t| !(unwinding && *t == self.own)) {
            queue.results.entry(ticket).or_insert(None);
        }
        queue.leading = false;
        drop(queue);
        self.group.answered.notify_all();
    }
}

impl<T, R> GroupCommit<T, R> {
    fn lock(&self) -> MutexGuard<'_, Queue<T, R>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Commits `item` with whatever else is queued: `commit` gets a batch and returns one
    /// result per item, in order. `None` if the batch's leader panicked.
    pub(crate) fn submit(&self, item: T, commit: impl Fn(Vec<T>) -> Vec<R>) -> Option<R> {
        let mut queue = self.lock();
        let ticket = queue.next;
        queue.next += 1;
        queue.waiting.push((ticket, item));
        loop {
            if let Some(result) = queue.results.remove(&ticket) {
                return result;
            }
            if queue.leading {
                queue = self.answered.wait(queue).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            queue.leading = true;
            let take = queue.waiting.len().min(MAX_BATCH);
            let (tickets, items): (Vec<u64>, Vec<T>) = queue.waiting.drain(..take).unzip();
            drop(queue);
            let mut lead = Lead { group: self, tickets, own: ticket };
            let mut results = commit(items).into_iter();
            let mut answered = self.lock();
            // Answered under one lock with the tickets taken from the lead, so its drop (which
            // wakes the followers) answers nothing twice; a missing result is `None`.
            for ticket in std::mem::take(&mut lead.tickets) {
                answered.results.insert(ticket, results.next());
            }
            drop(answered);
            drop(lead);
            queue = self.lock();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn alone_a_caller_commits_a_batch_of_one() {
        let group = GroupCommit::default();
        assert_eq!(group.submit(3, |items| items.iter().map(|i| i * 2).collect()), Some(6));
        assert_eq!(group.submit(4, |items| items.iter().map(|i| i * 2).collect()), Some(8));
    }

    /// Callers arriving while a batch commits are committed together in the next one, and
    /// each gets its own result.
    #[test]
    fn concurrent_callers_share_batches_and_get_their_own_results() {
        let group = Arc::new(GroupCommit::default());
        let batches = Arc::new(AtomicUsize::new(0));
        let callers: Vec<_> = (0..32u64)
            .map(|i| {
                let (group, batches) = (group.clone(), batches.clone());
                std::thread::spawn(move || {
                    group.submit(i, |items| {
                        batches.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        items.iter().map(|i| i + 1000).collect()
                    })
                })
            })
            .collect();
        for (i, caller) in callers.into_iter().enumerate() {
            assert_eq!(caller.join().unwrap(), Some(i as u64 + 1000));
        }
        let batches = batches.load(Ordering::Relaxed);
        assert!(batches < 32, "32 callers in {batches} batches: none shared");
    }

    /// More callers than a batch holds: batches of at most [`MAX_BATCH`], everyone answered.
    #[test]
    fn batches_are_bounded() {
        let group = Arc::new(GroupCommit::default());
        let largest = Arc::new(AtomicUsize::new(0));
        let callers: Vec<_> = (0..(MAX_BATCH as u64 * 2 + 10))
            .map(|i| {
                let (group, largest) = (group.clone(), largest.clone());
                std::thread::spawn(move || {
                    group.submit(i, |items| {
                        largest.fetch_max(items.len(), Ordering::Relaxed);
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        items
                    })
                })
            })
            .collect();
        for (i, caller) in callers.into_iter().enumerate() {
            assert_eq!(caller.join().unwrap(), Some(i as u64));
        }
        assert!(largest.load(Ordering::Relaxed) <= MAX_BATCH);
    }

    /// A commit that returns fewer results than items answers the rest `None` and leaves
    /// nothing behind.
    #[test]
    fn a_missing_result_is_none() {
        let group = GroupCommit::<u32, u32>::default();
        assert_eq!(group.submit(1, |_| Vec::new()), None);
        assert!(group.lock().results.is_empty() && !group.lock().leading);
    }

    /// A leader that panics answers its followers `None`, and the group goes on.
    #[test]
    fn a_panicking_leader_leaves_no_one_waiting() {
        let group = Arc::new(GroupCommit::<u32, u32>::default());
        let leader = {
            let group = group.clone();
            std::thread::spawn(move || group.submit(1, |_| panic!("the commit failed")))
        };
        assert!(leader.join().is_err(), "the leader's panic reaches its caller");
        assert_eq!(group.submit(2, |items| items), Some(2), "the next caller leads");
        assert!(group.lock().results.is_empty() && !group.lock().leading);
    }
}
