//! A real S3-compatible server for tests: `s3s-fs`, which checks SigV4
//! signatures and the expiry of presigned URLs, started on a free loopback
//! port over a temporary directory and stopped when dropped.
//!
//! `./scripts/test` installs it and sets `TEST_S3S_FS`; otherwise `s3s-fs`
//! must be on the `PATH`.

#![allow(dead_code)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

pub const BUCKET: &str = "switchboard-files";
pub const REGION: &str = "us-east-1";
pub const ACCESS_KEY_ID: &str = "AKIATESTFILES";
pub const SECRET_ACCESS_KEY: &str = "test/files+Secret456";

/// A running s3s-fs with one bucket, [`BUCKET`].
pub struct S3Server {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    /// Where the objects are: `<root>/<bucket>/<key>`.
    pub root: tempfile::TempDir,
}

impl S3Server {
    pub async fn start() -> S3Server {
        let program = std::env::var("TEST_S3S_FS").unwrap_or_else(|_| "s3s-fs".to_owned());
        let root = tempfile::tempdir().expect("temporary directory");
        std::fs::create_dir(root.path().join(BUCKET)).expect("bucket directory");
        for _ in 0..5 {
            let port = super::free_port().await;
            let mut child = Command::new(&program)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", ACCESS_KEY_ID, "--secret-key", SECRET_ACCESS_KEY])
                .arg(root.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .unwrap_or_else(|err| {
                    panic!("cannot start `{program}` ({err}); run ./scripts/test, which installs s3s-fs")
                });
            let endpoint = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // it exited: most likely the port was taken; try another
                }
                // Any HTTP answer (403 without credentials) means it listens.
                if reqwest::get(&endpoint).await.is_ok() {
                    return S3Server {
                        child,
                        endpoint,
                        root,
                    };
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            let _ = child.kill().await;
        }
        panic!("s3s-fs did not start listening within 30 s on any of 5 ports");
    }

    /// The names of the objects in the bucket.
    pub fn object_names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.root.path().join(BUCKET))
            .expect("bucket directory")
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| !name.starts_with('.'))
            .collect();
        names.sort();
        names
    }

    /// Points a server configuration at this bucket.
    pub fn configure(&self, config: &mut switchboard_server::Config) {
        use switchboard_server::config::FilesBackend;
        config.files.backend = FilesBackend::S3;
        config.files.s3.bucket = BUCKET.to_owned();
        config.files.s3.region = REGION.to_owned();
        config.files.s3.endpoint_url = Some(self.endpoint.clone());
        config.files.s3.force_path_style = true;
        config.files.s3.access_key_id = ACCESS_KEY_ID.to_owned();
        config.files.s3.secret_access_key = Some(SECRET_ACCESS_KEY.to_owned().into());
    }
}
