//! The worker loop: items handed out in order to N threads, each result passed back to the
//! calling thread as it is ready; the [`Migrator`](crate::migrate::Migrator) and the CLI's `run-sql`
//! both run their schemas through it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

/// How many threads work at once, and whether a failure stops the handing out.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Workers {
    /// Threads at most (never more than there are items).
    pub(crate) count: usize,
    /// Whether to go on handing out items after one failed.
    pub(crate) keep_going: bool,
}

/// Given to the job with each item, to report that the item failed.
pub(crate) struct FailFast<'a> {
    stop: &'a AtomicBool,
    keep_going: bool,
}

impl FailFast<'_> {
    /// The item failed: unless the run keeps going, no item is handed out after this one
    /// (those already running finish).
    pub(crate) fn failed(&self) {
        if !self.keep_going {
            self.stop.store(true, Ordering::SeqCst);
        }
    }
}

impl Workers {
    /// Hands `items` out in order to the threads (at most one per item), each with its own
    /// state made by `state` on that thread, and runs `job` on each item. `collect` gets each
    /// result with its item's index on the calling thread, in the order they finish. Items
    /// not handed out (after a failure) get no result.
    ///
    /// Returns when every thread has ended, or after the first error of `collect`: each
    /// thread then ends at its next result.
    pub(crate) fn run<T, S, R, E>(
        self,
        items: &[T],
        state: impl Fn() -> S + Sync,
        job: impl Fn(&mut S, &T, &FailFast<'_>) -> R + Sync,
        mut collect: impl FnMut(usize, R) -> Result<(), E>,
    ) -> Result<(), E>
    where
        T: Sync,
        R: Send,
    {
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let fail_fast = FailFast {
            stop: &stop,
            keep_going: self.keep_going,
        };
        let (tx, rx) = mpsc::channel::<(usize, R)>();
        std::thread::scope(|scope| {
            for _ in 0..self.count.min(items.len()) {
                let tx = tx.clone();
                let (next, stop, state, job, fail_fast) = (&next, &stop, &state, &job, &fail_fast);
                scope.spawn(move || {
                    let mut own = state();
                    while !stop.load(Ordering::SeqCst) {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(item) = items.get(i) else { break };
                        let result = job(&mut own, item, fail_fast);
                        if tx.send((i, result)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(tx);
            for (i, result) in rx {
                collect(i, result)?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::Workers;

    fn run(count: usize, keep_going: bool, items: &[i32]) -> Vec<Option<i32>> {
        let mut results = vec![None; items.len()];
        let workers = Workers { count, keep_going };
        let done: Result<(), Infallible> = workers.run(
            items,
            || (),
            |(), item, fail_fast| {
                if *item < 0 {
                    fail_fast.failed();
                }
                item * 10
            },
            |i, result| {
                results[i] = Some(result);
                Ok(())
            },
        );
        let Ok(()) = done;
        results
    }

    #[test]
    fn every_item_runs_once_whatever_the_workers() {
        for count in [1, 2, 3, 8] {
            let results = run(count, false, &[1, 2, 3, 4, 5]);
            assert_eq!(
                results,
                [Some(10), Some(20), Some(30), Some(40), Some(50)],
                "{count} workers"
            );
        }
    }

    #[test]
    fn one_worker_stops_at_the_first_failure_unless_keep_going() {
        assert_eq!(run(1, false, &[1, -2, 3]), [Some(10), Some(-20), None]);
        assert_eq!(run(1, true, &[1, -2, 3]), [Some(10), Some(-20), Some(30)]);
    }

    #[test]
    fn no_items_no_threads() {
        assert_eq!(run(4, false, &[]), []);
    }

    #[test]
    fn each_thread_keeps_its_own_state() {
        let made = AtomicUsize::new(0);
        let mut seen = Vec::new();
        let workers = Workers {
            count: 2,
            keep_going: false,
        };
        let done: Result<(), Infallible> = workers.run(
            &[(); 6],
            || made.fetch_add(1, Ordering::SeqCst),
            |thread, (), _| *thread,
            |_, thread| {
                seen.push(thread);
                Ok(())
            },
        );
        let Ok(()) = done;
        assert_eq!(made.load(Ordering::SeqCst), 2);
        assert!(seen.iter().all(|t| *t < 2), "{seen:?}");
        assert_eq!(seen.len(), 6);
    }

    #[test]
    fn an_error_while_collecting_ends_the_run() {
        let workers = Workers {
            count: 1,
            keep_going: true,
        };
        let done = workers.run(
            &[1, 2, 3, 4],
            || (),
            |(), item, _| *item,
            |_, item| if item == 1 { Err("gone") } else { Ok(()) },
        );
        assert_eq!(done, Err("gone"));
    }
}
