//! Work on many inputs at once, results taken in input order: what lets `trailwatch
//! scan` read and match archives on every core while it prints alerts, and runs stateful
//! alerting, exactly as a one-input-at-a-time scan would.
//!
//! Threads claim inputs in order and may run at most `window` inputs ahead of the one
//! being consumed, so memory stays bounded however many inputs there are. The calling
//! thread is one of them: whenever the result it must consume next is not ready, it
//! works on the next unclaimed input instead of waiting. So `jobs` threads run, never
//! `jobs` workers plus a consumer competing with them for the CPUs (on 2 CPUs, 1.08x
//! faster at the scale, 1.93 CPUs busy instead of 1.80). A result, once
//! consumed, goes back to the thread that made it to be dropped there: freeing memory
//! on the thread that allocated it is what the allocator does fastest (freed across
//! threads, a scan's records and alerts cost it a tenth more CPU). Nothing here knows
//! about CloudTrail.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Condvar, Mutex, PoisonError};

/// Runs `work` on every item on up to `jobs` threads, the calling thread included, and
/// hands each result to `consume` in item order, on the calling thread. No item more
/// than `window` items ahead of the item being consumed is started. The first error
/// from `consume` stops the run and is returned (items being worked on are finished and
/// dropped).
pub fn map_in_order<T, R, E>(
    items: &[T],
    jobs: usize,
    window: usize,
    work: impl Fn(&T) -> R + Sync,
    mut consume: impl FnMut(usize, &T, &mut R) -> Result<(), E>,
) -> Result<(), E>
where
    T: Sync,
    R: Send,
{
    let jobs = jobs.clamp(1, items.len().max(1));
    if jobs == 1 {
        for (index, item) in items.iter().enumerate() {
            consume(index, item, &mut work(item))?;
        }
        return Ok(());
    }
    let window = window.max(1);
    let next = AtomicUsize::new(0);
    // The first item not yet consumed; `usize::MAX` once the run has stopped.
    let consumed = Mutex::new(0);
    let moved = Condvar::new();
    std::thread::scope(|scope| {
        // However the run ends (an error, a panic here or in a worker), waiting workers
        // are released, so the scope can join them and re-raise a panic.
        let _release = Release(&consumed, &moved);
        let (results, received) = mpsc::channel();
        let mut give_back = Vec::with_capacity(jobs - 1);
        for worker in 0..jobs - 1 {
            let results = results.clone();
            let (returned, given_back) = mpsc::channel::<R>();
            give_back.push(returned);
            let (next, consumed, moved, work) = (&next, &consumed, &moved, &work);
            scope.spawn(move || {
                let _release_if_panicking = ReleaseIfPanicking(consumed, moved);
                loop {
                    // Results consumed since the last item are dropped here, by their maker.
                    given_back.try_iter().for_each(drop);
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(index) else { break };
                    let mut first = consumed.lock().unwrap_or_else(PoisonError::into_inner);
                    while *first != usize::MAX && index >= first.saturating_add(window) {
                        first = moved.wait(first).unwrap_or_else(PoisonError::into_inner);
                    }
                    let stopped = *first == usize::MAX;
                    drop(first);
                    if stopped || results.send((index, worker, work(item))).is_err() {
                        break;
                    }
                }
                // The rest come back as they are consumed, until the run ends. (Results
                // closed first: the caller stops waiting once every worker is here.)
                drop(results);
                given_back.iter().for_each(drop);
            });
        }
        drop(results);
        let mut early = BTreeMap::new();
        for (index, item) in items.iter().enumerate() {
            let (worker, mut result) = loop {
                if let Some(made) = early.remove(&index) {
                    break made;
                }
                let (done, worker, result) = match received.try_recv() {
                    Ok(made) => made,
                    // Every worker has ended without this item: one panicked (the
                    // others were released), and the scope re-raises its panic.
                    Err(mpsc::TryRecvError::Disconnected) => return Ok(()),
                    Err(mpsc::TryRecvError::Empty) => {
                        // Nothing ready: this thread works on the next unclaimed item
                        // within the window instead of waiting.
                        let claimed =
                            next.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                                (n < items.len() && n < index.saturating_add(window))
                                    .then_some(n + 1)
                            });
                        if let Ok(own) = claimed {
                            early.insert(own, (None, work(&items[own])));
                            continue;
                        }
                        let Ok(made) = received.recv() else {
                            return Ok(());
                        };
                        made
                    }
                };
                early.insert(done, (Some(worker), result));
            };
            consume(index, item, &mut result)?;
            // Only a worker that panicked has dropped its receiver: the result is then
            // dropped here instead.
            match worker {
                Some(worker) => drop(give_back[worker].send(result)),
                None => drop(result),
            }
            // Unless a panicking worker has stopped the run: its mark must stay, or the
            // workers waiting on the window would wait for its item forever.
            let mut first = consumed.lock().unwrap_or_else(PoisonError::into_inner);
            if *first != usize::MAX {
                *first = index + 1;
            }
            drop(first);
            moved.notify_all();
        }
        Ok(())
    })
}

/// Marks the run stopped and wakes every waiting worker.
fn release(consumed: &Mutex<usize>, moved: &Condvar) {
    *consumed.lock().unwrap_or_else(PoisonError::into_inner) = usize::MAX;
    moved.notify_all();
}

/// [`release`] when dropped.
struct Release<'a>(&'a Mutex<usize>, &'a Condvar);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        release(self.0, self.1);
    }
}

/// [`release`] when dropped by a panic (a worker's, so the others stop waiting).
struct ReleaseIfPanicking<'a>(&'a Mutex<usize>, &'a Condvar);

impl Drop for ReleaseIfPanicking<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            release(self.0, self.1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Items finish out of order (later ones faster), yet are consumed in order, and
    /// workers never run more than `window` ahead.
    #[test]
    fn results_come_in_item_order_within_the_window() {
        let items: Vec<u64> = (0..40).collect();
        let started = Mutex::new(Vec::new());
        let mut seen = Vec::new();
        let result: Result<(), ()> = map_in_order(
            &items,
            4,
            3,
            |&item| {
                started.lock().unwrap().push(item);
                std::thread::sleep(Duration::from_millis((40 - item) % 5));
                item * 2
            },
            |index, &item, doubled| {
                assert_eq!(*doubled, item * 2);
                let ahead = started.lock().unwrap().iter().max().copied().unwrap_or(0);
                assert!(ahead < index as u64 + 3, "item {ahead} started at {index}");
                seen.push(index);
                Ok(())
            },
        );
        result.unwrap();
        assert_eq!(seen, (0..40).collect::<Vec<_>>());
    }

    /// Each result is dropped on the thread that made it, after it was consumed.
    #[test]
    fn results_are_dropped_by_the_thread_that_made_them() {
        struct Made {
            by: std::thread::ThreadId,
            consumed: bool,
            dropped: &'static AtomicUsize,
        }
        impl Drop for Made {
            fn drop(&mut self) {
                assert!(self.consumed, "dropped before it was consumed");
                assert_eq!(
                    std::thread::current().id(),
                    self.by,
                    "dropped by another thread"
                );
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        static DROPPED: AtomicUsize = AtomicUsize::new(0);
        let items: Vec<usize> = (0..200).collect();
        let result: Result<(), ()> = map_in_order(
            &items,
            3,
            4,
            |_| Made {
                by: std::thread::current().id(),
                consumed: false,
                dropped: &DROPPED,
            },
            |_, _, made| {
                made.consumed = true;
                Ok(())
            },
        );
        result.unwrap();
        assert_eq!(DROPPED.load(Ordering::Relaxed), items.len());
    }

    /// While the result it needs next is not ready, the calling thread works on the
    /// next items itself; they are consumed in order all the same.
    #[test]
    fn the_caller_works_while_the_next_result_is_not_ready() {
        let caller = std::thread::current().id();
        let items: Vec<usize> = (0..24).collect();
        let mut by_caller = 0;
        let mut order = Vec::new();
        let result: Result<(), ()> = map_in_order(
            &items,
            2,
            4,
            |&item| {
                let on_caller = std::thread::current().id() == caller;
                if !on_caller {
                    std::thread::sleep(Duration::from_millis(20));
                }
                (item, on_caller)
            },
            |index, _, &mut (item, on_caller)| {
                assert_eq!(index, item);
                by_caller += usize::from(on_caller);
                order.push(item);
                Ok(())
            },
        );
        result.unwrap();
        assert_eq!(order, items);
        assert!(
            by_caller >= items.len() / 2,
            "the caller made {by_caller} of {} results beside a slow worker",
            items.len()
        );
    }

    #[test]
    fn the_first_error_stops_the_run_without_waiting_on_blocked_workers() {
        let items: Vec<usize> = (0..1000).collect();
        let worked = AtomicUsize::new(0);
        let mut consumed = Vec::new();
        let result = map_in_order(
            &items,
            3,
            2,
            |&item| {
                worked.fetch_add(1, Ordering::Relaxed);
                item
            },
            |index, _, _| {
                consumed.push(index);
                if index == 5 { Err("stop") } else { Ok(()) }
            },
        );
        assert_eq!(result, Err("stop"));
        assert_eq!(consumed, [0, 1, 2, 3, 4, 5]);
        assert!(
            worked.load(Ordering::Relaxed) < 20,
            "workers ran past the window"
        );
    }

    /// Runs `run` (a `map_in_order` whose work panics) on a thread of its own and checks
    /// that it ends, with the panic, instead of hanging.
    fn ends_with_its_panic(run: impl FnOnce() -> Result<(), ()> + Send + 'static) {
        let (done, finished) = mpsc::channel();
        std::thread::spawn(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run));
            done.send(outcome.is_err()).unwrap();
        });
        let panicked = finished
            .recv_timeout(Duration::from_secs(20))
            .expect("the run hung after a worker panicked");
        assert!(panicked, "the worker's panic reaches the caller");
    }

    /// A worker that panics while others wait on the window ends the run with its
    /// panic; it does not leave the caller waiting for its item.
    #[test]
    fn a_panicking_worker_ends_the_run_with_its_panic() {
        ends_with_its_panic(|| {
            let items: Vec<usize> = (0..50).collect();
            map_in_order(
                &items,
                2,
                4,
                |&item| {
                    if item == 0 {
                        std::thread::sleep(Duration::from_millis(50));
                        panic!("work on item 0 failed");
                    }
                    item
                },
                |_, _, _| Ok(()),
            )
        });
    }

    /// With several workers: one panics while the caller still consumes earlier items,
    /// and another, busy then, finishes after the caller has moved on and would wait on
    /// the window for the failed item. The run still ends with the panic.
    #[test]
    fn a_worker_panicking_beside_busy_workers_ends_the_run() {
        ends_with_its_panic(|| {
            let caller = std::thread::current().id();
            let items: Vec<usize> = (0..40).collect();
            map_in_order(
                &items,
                4,
                4,
                |&item| {
                    match item {
                        0 | 1 => {}
                        // Only a worker fails (on the caller it would end the run at once).
                        2 if std::thread::current().id() != caller => {
                            std::thread::sleep(Duration::from_millis(30));
                            panic!("work on item 2 failed");
                        }
                        _ => std::thread::sleep(Duration::from_millis(100)),
                    }
                    item
                },
                |_, _, _| {
                    std::thread::sleep(Duration::from_millis(60));
                    Ok(())
                },
            )
        });
    }

    #[test]
    fn one_job_or_no_items_runs_on_the_calling_thread() {
        let caller = std::thread::current().id();
        let mut order = Vec::new();
        let result: Result<(), ()> = map_in_order(
            &[1, 2, 3],
            1,
            4,
            |&item| (item, std::thread::current().id()),
            |_, _, &mut (item, thread)| {
                assert_eq!(thread, caller);
                order.push(item);
                Ok(())
            },
        );
        result.unwrap();
        assert_eq!(order, [1, 2, 3]);
        let none: Result<(), ()> = map_in_order(&[] as &[u8], 8, 4, |_| (), |_, _, _| Ok(()));
        none.unwrap();
    }
}
