//! The checkpointer thread: copies committed pages from the WAL into the
//! database file, on a connection of its own, so that the writer never does
//! (SQLite would otherwise checkpoint inside the commit that crosses its
//! threshold, with the fsyncs that go with it).
//!
//! The writer pokes it every [`COMMITS_PER_CHECKPOINT`] commits; a passive
//! checkpoint copies what no reader still needs and never waits for the
//! writer, which goes on appending to the WAL meanwhile.
//!
//! The WAL starts again from its beginning only after a checkpoint that
//! copied every frame, and under steady load the writer appends frames
//! while each checkpoint runs, so the checkpointer alone never gets there:
//! the WAL grew by gigabytes in a minute. So once the WAL holds more than
//! [`WAL_RESTART_FRAMES`], the checkpointer asks the writer to checkpoint
//! itself between two commits, when nothing is appended: it copies only the
//! few frames the checkpointer has not, and the next commit starts the WAL
//! again (truncated to `journal_size_limit`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::Connection;

/// Commits between two checkpoints.
pub const COMMITS_PER_CHECKPOINT: u64 = 64;

/// Frames in the WAL past which the writer is asked to checkpoint itself
/// (about 32 MiB with 4 KiB pages).
pub const WAL_RESTART_FRAMES: i64 = 8_192;

/// The handle of the checkpointer thread.
pub struct Checkpointer {
    pokes: Mutex<Option<Sender<()>>>,
    restart_wanted: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// The writer's side of the checkpointer.
pub struct Poker {
    pokes: Sender<()>,
    restart_wanted: Arc<AtomicBool>,
}

impl Poker {
    /// Asks for a passive checkpoint soon.
    pub fn poke(&self) {
        let _ = self.pokes.send(());
    }

    /// Whether the writer should checkpoint itself now (asked once per ask).
    pub fn restart_wanted(&self) -> bool {
        self.restart_wanted.swap(false, Ordering::Relaxed)
    }
}

impl Checkpointer {
    pub fn start(conn: Connection) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::channel();
        let restart_wanted = Arc::new(AtomicBool::new(false));
        let wanted = restart_wanted.clone();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".to_owned())
            .spawn(move || run(&conn, &receiver, &wanted))?;
        Ok(Checkpointer {
            pokes: Mutex::new(Some(sender)),
            restart_wanted,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The writer's side.
    pub fn poker(&self) -> Option<Poker> {
        let pokes = self.pokes.lock().expect("checkpointer").clone()?;
        Some(Poker {
            pokes,
            restart_wanted: self.restart_wanted.clone(),
        })
    }

    /// Stops the thread (the last connection to close checkpoints what is left).
    pub fn stop(&self) {
        self.pokes.lock().expect("checkpointer").take();
        if let Some(thread) = self.thread.lock().expect("checkpointer").take() {
            let _ = thread.join();
        }
    }
}

fn run(conn: &Connection, pokes: &Receiver<()>, restart_wanted: &AtomicBool) {
    while pokes.recv().is_ok() {
        // Pokes that came meanwhile ask for the same checkpoint.
        while pokes.try_recv().is_ok() {}
        match checkpoint(conn) {
            Ok(frames) if frames > WAL_RESTART_FRAMES => {
                restart_wanted.store(true, Ordering::Relaxed);
            }
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(error = %err, "the SQLite checkpoint failed; it is tried again after the next commits");
            }
        }
    }
}

/// A passive checkpoint: copies what no reader still needs. Returns the
/// frames in the WAL.
pub fn checkpoint(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))
}
