//! The writer thread: it owns the one connection that writes, and commits
//! the changes waiting for it together.
//!
//! A change arrives as a [`Job`]. The thread takes every job waiting at that
//! moment (up to [`MAX_GROUP`]), opens one transaction, runs each job in a
//! savepoint of its own (a job that fails is rolled back to its savepoint
//! and leaves the others untouched), and commits the group: one fsync for
//! all of them. Each job's caller is answered after that commit, never
//! before; a commit that fails answers every job of the group with the
//! failure. While a group commits, the next one gathers.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::Notify;

use crate::checkpoint::COMMITS_PER_CHECKPOINT;
use crate::conn::SqliteConn;

/// The most changes committed together.
pub const MAX_GROUP: usize = 512;

/// A change: runs on the writer's connection inside its savepoint, and says
/// how it went.
pub type Job = Box<dyn FnOnce(&mut SqliteConn) -> Done + Send>;

/// How a job went, and how to answer its caller once the group's commit is
/// known.
pub struct Done {
    pub succeeded: bool,
    /// Called after the commit: `Ok` when it committed, else why not.
    pub answer: Box<dyn FnOnce(Result<(), String>) + Send>,
}

/// The handle of the writer thread.
pub struct Writer {
    jobs: Mutex<Option<Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    /// Starts the thread on `conn`; `outbox` is woken after every commit that
    /// queued deliveries, and `checkpoints` poked every
    /// [`COMMITS_PER_CHECKPOINT`] commits.
    pub fn start(
        conn: SqliteConn,
        outbox: Arc<Notify>,
        checkpoints: Option<Sender<()>>,
    ) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".to_owned())
            .spawn(move || run(conn, receiver, &outbox, checkpoints.as_ref()))?;
        Ok(Writer {
            jobs: Mutex::new(Some(sender)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues a job; `false` once the writer is stopped (the job is dropped,
    /// which answers its caller that the store is closed).
    pub fn submit(&self, job: Job) -> bool {
        match &*self.jobs.lock().expect("writer queue") {
            Some(jobs) => jobs.send(job).is_ok(),
            None => false,
        }
    }

    /// Lets the thread finish the jobs already queued, then stops it.
    pub fn stop(&self) {
        self.jobs.lock().expect("writer queue").take();
        if let Some(thread) = self.thread.lock().expect("writer thread").take() {
            let _ = thread.join();
        }
    }
}

fn run(
    mut conn: SqliteConn,
    jobs: Receiver<Job>,
    outbox: &Notify,
    checkpoints: Option<&Sender<()>>,
) {
    let mut commits = 0u64;
    while let Ok(first) = jobs.recv() {
        let mut group = Vec::with_capacity(16);
        group.push(first);
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        metrics::histogram!("switchboard_store_group_commit_changes").record(group.len() as f64);
        if commit_group(&mut conn, group, outbox) {
            commits += 1;
            if commits.is_multiple_of(COMMITS_PER_CHECKPOINT)
                && let Some(checkpoints) = checkpoints
            {
                let _ = checkpoints.send(());
            }
        }
    }
}

/// Runs the jobs of one group and commits them together; whether a commit
/// was made.
fn commit_group(conn: &mut SqliteConn, group: Vec<Job>, outbox: &Notify) -> bool {
    let mut waiting: Vec<Done> = Vec::with_capacity(group.len());
    let mut open = false;
    for job in group {
        if !open {
            if let Err(err) = conn.control("BEGIN IMMEDIATE") {
                // Dropping the job answers its caller that the store failed.
                tracing::error!(error = %failure_text(&err), "the SQLite writer could not begin a transaction");
                continue;
            }
            open = true;
        }
        if let Err(err) = conn.control("SAVEPOINT change") {
            tracing::error!(error = %failure_text(&err), "the SQLite writer could not open a savepoint");
            continue;
        }
        let mark = conn.effects_mark();
        // A change that panics (a fault of the store) is rolled back alone;
        // dropping it answers its caller with an error, and the writer goes on.
        let done = match std::panic::catch_unwind(AssertUnwindSafe(|| job(conn))) {
            Ok(done) => done,
            Err(_) => {
                tracing::error!("a change panicked on the SQLite writer; it is rolled back");
                Done {
                    succeeded: false,
                    answer: Box::new(|_| {}),
                }
            }
        };
        if !done.succeeded {
            conn.rewind_effects(mark);
        }
        let closed = if done.succeeded {
            conn.control("RELEASE change")
        } else {
            conn.control("ROLLBACK TO change")
                .and_then(|()| conn.control("RELEASE change"))
        };
        if closed.is_err() || conn.raw().is_autocommit() {
            // The transaction ended under the job (SQLite rolls back on some
            // errors): what the group did so far is gone.
            let why = "the transaction was rolled back by the database".to_owned();
            for earlier in waiting.drain(..) {
                (earlier.answer)(Err(why.clone()));
            }
            (done.answer)(Err(why));
            conn.take_effects();
            if !conn.raw().is_autocommit() {
                let _ = conn.control("ROLLBACK");
            }
            open = false;
            continue;
        }
        waiting.push(done);
    }
    if !open {
        return false;
    }
    match conn.control("COMMIT") {
        Ok(()) => {
            let effects = conn.take_effects();
            effects.count_events();
            if effects.queued_deliveries {
                outbox.notify_one();
            }
            for done in waiting {
                (done.answer)(Ok(()));
            }
            true
        }
        Err(err) => {
            let why = failure_text(&err);
            tracing::error!(error = %why, "the SQLite writer could not commit");
            if !conn.raw().is_autocommit() {
                let _ = conn.control("ROLLBACK");
            }
            conn.take_effects();
            for done in waiting {
                (done.answer)(Err(why.clone()));
            }
            false
        }
    }
}

fn failure_text(failure: &switchboard_store_sql::Failure) -> String {
    match failure {
        switchboard_store_sql::Failure::Database(err) => err.to_string(),
        switchboard_store_sql::Failure::Store(err) => err.to_string(),
    }
}
