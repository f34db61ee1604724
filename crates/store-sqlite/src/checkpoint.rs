//! The checkpointer thread: copies committed pages from the WAL into the
//! database file, on a connection of its own, so that the writer never does
//! (SQLite would otherwise checkpoint inside the commit that crosses its
//! threshold, with the fsyncs that go with it).
//!
//! The writer pokes it every [`COMMITS_PER_CHECKPOINT`] commits; a passive
//! checkpoint copies what no reader still needs and never waits for the
//! writer, which goes on appending to the WAL meanwhile.

use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

use rusqlite::Connection;

/// Commits between two checkpoints.
pub const COMMITS_PER_CHECKPOINT: u64 = 64;

/// The handle of the checkpointer thread.
pub struct Checkpointer {
    pokes: Mutex<Option<Sender<()>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Checkpointer {
    pub fn start(conn: Connection) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".to_owned())
            .spawn(move || run(&conn, &receiver))?;
        Ok(Checkpointer {
            pokes: Mutex::new(Some(sender)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The writer's side: a sender to poke the thread with.
    pub fn poker(&self) -> Option<Sender<()>> {
        self.pokes.lock().expect("checkpointer").clone()
    }

    /// Stops the thread (the last connection to close checkpoints what is left).
    pub fn stop(&self) {
        self.pokes.lock().expect("checkpointer").take();
        if let Some(thread) = self.thread.lock().expect("checkpointer").take() {
            let _ = thread.join();
        }
    }
}

fn run(conn: &Connection, pokes: &Receiver<()>) {
    while pokes.recv().is_ok() {
        // Pokes that came meanwhile ask for the same checkpoint.
        while pokes.try_recv().is_ok() {}
        if let Err(err) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %err, "the SQLite checkpoint failed; it is tried again after the next commits");
        }
    }
}
