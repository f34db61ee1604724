//! The reader threads: each owns a read-only connection and runs whole
//! queries on it, one at a time, each in a read transaction of its own (a
//! snapshot that sees every commit made before it began).

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::conn::SqliteConn;

/// A query: runs on a reader's connection and answers its caller itself.
pub type Read = Box<dyn FnOnce(&mut SqliteConn) + Send>;

/// The handle of the reader threads.
pub struct Readers {
    jobs: Mutex<Option<Sender<Read>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Readers {
    /// Starts one thread per connection.
    pub fn start(connections: Vec<SqliteConn>) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::channel();
        let receiver = Arc::new(Mutex::new(receiver));
        let mut threads = Vec::with_capacity(connections.len());
        for (index, conn) in connections.into_iter().enumerate() {
            let receiver = receiver.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("sqlite-reader-{index}"))
                    .spawn(move || run(conn, &receiver))?,
            );
        }
        Ok(Readers {
            jobs: Mutex::new(Some(sender)),
            threads: Mutex::new(threads),
        })
    }

    /// Queues a query; `false` once the readers are stopped.
    pub fn submit(&self, read: Read) -> bool {
        match &*self.jobs.lock().expect("reader queue") {
            Some(jobs) => jobs.send(read).is_ok(),
            None => false,
        }
    }

    /// Lets the threads finish the queries already queued, then stops them.
    pub fn stop(&self) {
        self.jobs.lock().expect("reader queue").take();
        for thread in self.threads.lock().expect("reader threads").drain(..) {
            let _ = thread.join();
        }
    }
}

fn run(mut conn: SqliteConn, jobs: &Mutex<Receiver<Read>>) {
    loop {
        let next = jobs.lock().expect("reader queue").recv();
        match next {
            // A query that panics fails alone: see `read_now`.
            Ok(read) => read(&mut conn),
            Err(_) => return,
        }
    }
}
