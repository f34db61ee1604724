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
//! again.
//!
//! Every change waits while the writer checkpoints, and that checkpoint
//! costs its fsyncs of the database file whatever it copies (6–11 ms on this
//! repository's machine kind, with the checkpointer having copied all but a
//! few hundred frames). At 8,192 frames it came four times a second under
//! load and was most of the API's p99; at [`WAL_RESTART_FRAMES`] it comes
//! about once in 1.5 s at 14,000 messages/s. The file is kept at its size
//! while busy (cutting and growing it again at each restart cost tens of
//! milliseconds), and cut to nothing once the server has been idle for
//! [`IDLE_TRUNCATE_AFTER`], so a burst does not keep its size on disk.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

/// Commits between two checkpoints.
pub const COMMITS_PER_CHECKPOINT: u64 = 64;

/// Frames in the WAL past which the writer is asked to checkpoint itself
/// (about 256 MiB with 4 KiB pages).
pub const WAL_RESTART_FRAMES: i64 = 65_536;

/// The WAL file's size (`journal_size_limit`) past which it is cut back when
/// it starts again: above what it reaches between two restarts (a frame is
/// a 4 KiB page and 24 bytes), so that a busy server does not cut it.
pub const WAL_FILE_LIMIT: i64 = WAL_RESTART_FRAMES * 4_120 * 9 / 8;

/// Without a poke for this long, the server is idle: the WAL is copied
/// whole and cut to nothing.
pub const IDLE_TRUNCATE_AFTER: Duration = Duration::from_secs(10);

/// How long the idle cut waits for readers, holding new writes meanwhile;
/// when they take longer it is tried again after the next idle spell.
const TRUNCATE_WAIT: Duration = Duration::from_millis(50);

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
        // Only the idle cut waits for others (a passive checkpoint never
        // does), and it must not hold new writes for long.
        if let Err(err) = conn.busy_timeout(TRUNCATE_WAIT) {
            tracing::warn!(error = %err, "could not set the checkpointer's wait");
        }
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
    // Whether the WAL may hold frames since it was last cut.
    let mut written = true;
    loop {
        match pokes.recv_timeout(IDLE_TRUNCATE_AFTER) {
            Ok(()) => written = true,
            Err(RecvTimeoutError::Timeout) => {
                if written {
                    written = !truncate(conn);
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
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

/// Copies the whole WAL and cuts it to nothing (the server is idle);
/// whether it did.
fn truncate(conn: &Connection) -> bool {
    // The first column is 1 when readers or a writer kept it from finishing.
    let cut = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
        row.get::<_, i64>(0)
    });
    matches!(cut, Ok(0))
}

/// A passive checkpoint: copies what no reader still needs. Returns the
/// frames in the WAL.
pub fn checkpoint(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))
}
