//! The writer thread: it owns the one connection that writes, and commits
//! the changes waiting for it together.
//!
//! A change arrives as a [`Job`]. The thread takes every job waiting at that
//! moment (up to [`MAX_GROUP`]), opens one transaction, runs the jobs in it
//! and commits the group: one fsync for all of them. Each job's caller is
//! answered after that commit, never before; a commit that fails answers
//! every job of the group with the failure. While a group commits, the next
//! one gathers.
//!
//! A job that fails must leave the others untouched. The writer first runs
//! a group as one plain transaction (the common case: every change
//! succeeds, and nothing is copied aside to undo one). When a job fails, the
//! whole transaction is rolled back and the group runs again with each job
//! in a savepoint of its own, so the failed job is rolled back alone; the
//! next group also starts that way, and the writer returns to plain groups
//! after a group in which nothing failed. A savepoint makes SQLite keep a
//! copy of every page a job touches, which was a tenth of the writer's time
//! when every job had one. Running a job again is safe: nothing it did is
//! visible to anyone before the commit, and its caller is answered only
//! with the outcome of the run that was committed.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use switchboard_store::OutboxSignal;

use crate::checkpoint::{COMMITS_PER_CHECKPOINT, Poker};
use crate::conn::SqliteConn;

/// The most changes committed together.
pub const MAX_GROUP: usize = 512;

/// A change waiting for the writer. It may be run more than once (see the
/// module docs) and is answered exactly once.
pub trait Change: Send {
    /// Runs the change in the open transaction; whether it succeeded (one
    /// that failed is rolled back).
    fn run(&mut self, conn: &mut SqliteConn) -> bool;
    /// Answers the caller with the last run's outcome: `commit` is `Ok` when
    /// the group committed, else why not.
    fn answer(self: Box<Self>, commit: Result<(), String>);
}

/// A queued change.
pub type Job = Box<dyn Change>;

/// The handle of the writer thread.
pub struct Writer {
    jobs: Mutex<Option<Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    /// Starts the thread on `conn`; `outbox` is woken after every commit that
    /// queued deliveries, and `checkpoints` poked every
    /// `checkpoint::COMMITS_PER_CHECKPOINT` commits.
    pub fn start(
        conn: SqliteConn,
        outbox: Arc<OutboxSignal>,
        checkpoints: Option<Poker>,
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
    outbox: &OutboxSignal,
    checkpoints: Option<&Poker>,
) {
    let mut commits = 0u64;
    let mut isolate = false;
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
        let group = if isolate {
            Ran::Isolated(group)
        } else {
            run_plain(&mut conn, group)
        };
        let committed = match group {
            Ran::Plain(group) => {
                isolate = false;
                commit(&mut conn, group, outbox)
            }
            Ran::Isolated(group) => {
                let (succeeded, failures) = run_isolated(&mut conn, group);
                isolate = failures > 0;
                commit(&mut conn, succeeded, outbox)
            }
            Ran::Unbegun => false,
        };
        if committed && let Some(checkpoints) = checkpoints {
            commits += 1;
            if commits.is_multiple_of(COMMITS_PER_CHECKPOINT) {
                checkpoints.poke();
            }
            if checkpoints.restart_wanted()
                && let Err(err) = crate::checkpoint::checkpoint(conn.raw())
            {
                tracing::warn!(error = %err, "the SQLite writer's checkpoint failed");
            }
        }
    }
}

/// How a group's first run went.
enum Ran {
    /// Every job succeeded in one open transaction.
    Plain(Vec<Job>),
    /// A job failed; the transaction was rolled back and the group must run
    /// with a savepoint per job.
    Isolated(Vec<Job>),
    /// The transaction could not begin; every job was answered.
    Unbegun,
}

/// Runs every job of the group in one transaction, until one fails.
fn run_plain(conn: &mut SqliteConn, mut group: Vec<Job>) -> Ran {
    if let Err(why) = begin(conn) {
        answer_all(group, &why);
        return Ran::Unbegun;
    }
    for job in &mut group {
        if !run_guarded(conn, job) || conn.raw().is_autocommit() {
            roll_back(conn);
            return Ran::Isolated(group);
        }
    }
    Ran::Plain(group)
}

/// Runs each job in a savepoint of its own; a job that fails is rolled back
/// and answered at once. The jobs that succeeded, in the open transaction,
/// and how many failed.
fn run_isolated(conn: &mut SqliteConn, group: Vec<Job>) -> (Vec<Job>, usize) {
    let mut succeeded: Vec<Job> = Vec::with_capacity(group.len());
    let mut failures = 0;
    let mut open = false;
    for mut job in group {
        if !open {
            if let Err(why) = begin(conn) {
                job.answer(Err(why));
                continue;
            }
            open = true;
        }
        if let Err(err) = conn.control("SAVEPOINT change") {
            tracing::error!(error = %failure_text(&err), "the SQLite writer could not open a savepoint");
            job.answer(Err(failure_text(&err)));
            continue;
        }
        let mark = conn.effects_mark();
        let ok = run_guarded(conn, &mut job);
        if !ok {
            failures += 1;
            conn.rewind_effects(mark);
        }
        let closed = if ok {
            conn.control("RELEASE change")
        } else {
            conn.control("ROLLBACK TO change")
                .and_then(|()| conn.control("RELEASE change"))
        };
        if closed.is_err() || conn.raw().is_autocommit() {
            // The transaction ended under the job (SQLite rolls back on some
            // errors): what the group did so far is gone.
            let why = "the transaction was rolled back by the database";
            answer_all(succeeded.drain(..), why);
            job.answer(Err(why.to_owned()));
            roll_back(conn);
            open = false;
            continue;
        }
        if ok {
            succeeded.push(job);
        } else {
            // Its outcome is the failure; there is nothing of it to commit.
            job.answer(Ok(()));
        }
    }
    (succeeded, failures)
}

/// Commits the open transaction and answers the group; whether a commit was
/// made. An empty group with no open transaction makes none.
fn commit(conn: &mut SqliteConn, group: Vec<Job>, outbox: &OutboxSignal) -> bool {
    if conn.raw().is_autocommit() {
        return false;
    }
    match conn.control("COMMIT") {
        Ok(()) => {
            let effects = conn.take_effects();
            effects.count_events();
            if !effects.handed_off.is_empty()
                && let Some(hand_off) = conn.hand_off_target()
            {
                let _ = hand_off.deliveries.send(effects.handed_off);
            }
            if effects.queued_deliveries {
                outbox.deliveries_queued();
            }
            if !effects.events.is_empty() {
                outbox.events_recorded();
            }
            for job in group {
                job.answer(Ok(()));
            }
            true
        }
        Err(err) => {
            let why = failure_text(&err);
            tracing::error!(error = %why, "the SQLite writer could not commit");
            roll_back(conn);
            answer_all(group, &why);
            false
        }
    }
}

/// Runs one job; a job that panics (a fault of the store) counts as failed,
/// and its caller is answered with an error.
fn run_guarded(conn: &mut SqliteConn, job: &mut Job) -> bool {
    match std::panic::catch_unwind(AssertUnwindSafe(|| job.run(conn))) {
        Ok(succeeded) => succeeded,
        Err(_) => {
            tracing::error!("a change panicked on the SQLite writer; it is rolled back");
            false
        }
    }
}

fn begin(conn: &SqliteConn) -> Result<(), String> {
    conn.control("BEGIN IMMEDIATE").map_err(|err| {
        let why = failure_text(&err);
        tracing::error!(error = %why, "the SQLite writer could not begin a transaction");
        why
    })
}

/// Rolls back the open transaction, if any, and forgets its effects.
fn roll_back(conn: &mut SqliteConn) {
    if !conn.raw().is_autocommit() {
        let _ = conn.control("ROLLBACK");
    }
    conn.take_effects();
}

fn answer_all(jobs: impl IntoIterator<Item = Job>, why: &str) {
    for job in jobs {
        job.answer(Err(why.to_owned()));
    }
}

fn failure_text(failure: &switchboard_store_sql::Failure) -> String {
    match failure {
        switchboard_store_sql::Failure::Database(err) => err.to_string(),
        switchboard_store_sql::Failure::Store(err) => err.to_string(),
    }
}
