//! Files end to end, on both backends: a real server, a real SQLite file, and
//! either the local disk or a real S3-compatible server (s3s-fs, which checks
//! signatures and expiry of presigned URLs). Uploads and downloads go over
//! HTTP without credentials, as a bot's or a browser's would.

use std::time::Duration;

use crate::support::TestServer;
use crate::support::receiver::Receiver;
use crate::support::s3::S3Server;
use bytes::Bytes;
use http_body::Frame;
use http_body_util::StreamBody;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use switchboard_server::Config;

const MIB: usize = 1024 * 1024;
const WAIT: Duration = Duration::from_secs(15);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Backend {
    Local,
    S3,
}

/// A server with a channel of Alice and a bot whose webhook records events;
/// Bob is a person of the company outside the channel.
struct Setup {
    server: TestServer,
    s3: Option<S3Server>,
    alice: String,
    bob: String,
    channel: String,
    receiver: Receiver,
    /// A client without credentials, as a browser fetching a URL.
    anonymous: reqwest::Client,
}

impl Setup {
    async fn start(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Setup {
        let s3 = match backend {
            Backend::S3 => Some(S3Server::start().await),
            Backend::Local => None,
        };
        let server = TestServer::start_with(|config| {
            if let Some(s3) = &s3 {
                s3.configure(config);
            }
            adjust(config);
        })
        .await;
        let (_, alice) = server.person("Alice").await;
        let (_, bob) = server.person("Bob").await;
        let (bot, _) = server.bot("Filer").await;
        let receiver = Receiver::start().await;
        server.webhook(&bot, &receiver.url, json!({})).await;
        let channel = server.channel(&alice, &[&bot]).await;
        Setup {
            server,
            s3,
            alice,
            bob,
            channel,
            receiver,
            anonymous: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
        }
    }

    fn backend(&self) -> Backend {
        if self.s3.is_some() {
            Backend::S3
        } else {
            Backend::Local
        }
    }

    /// UploadFile in the channel; returns the answer's body.
    async fn announce(&self, body: Value) -> Value {
        self.server
            .post(
                &format!("/v2/conversations/channels/{}/files", self.channel),
                &self.alice,
                body,
            )
            .await
            .expect(200)
    }

    /// One PUT of `bytes` to an upload URL, without credentials.
    async fn upload(&self, url: &str, bytes: Vec<u8>) -> crate::support::Reply {
        let response = self
            .anonymous
            .put(url)
            .body(bytes)
            .send()
            .await
            .expect("the upload reaches the server");
        crate::support::reply(response).await
    }

    /// GetUploadedFileInfo as `token`.
    async fn file_info(&self, token: &str, file: &str) -> crate::support::Reply {
        self.server
            .get(
                &format!("/v2/conversations/channels/{}/files/{file}", self.channel),
                token,
            )
            .await
    }

    /// Sends a message carrying these files.
    async fn send_with(&self, files: &[&str]) -> crate::support::Reply {
        let attachments: Vec<Value> = files.iter().map(|id| json!({"id": id})).collect();
        self.server
            .post(
                &format!("/v2/conversations/channels/{}/messages", self.channel),
                &self.alice,
                json!({"text": "see attached", "attachments": attachments}),
            )
            .await
    }

    /// GetMessageFileDownloadUrl as `token`.
    async fn download_url(&self, token: &str, message: &str, file: &str) -> crate::support::Reply {
        self.server
            .get(
                &format!(
                    "/v2/conversations/channels/{}/messages/{message}/files/{file}/url",
                    self.channel
                ),
                token,
            )
            .await
    }

    /// A file announced, uploaded and checked; returns its id.
    async fn uploaded(&self, name: &str, bytes: Vec<u8>) -> String {
        let announced = self
            .announce(json!({"name": name, "size": bytes.len()}))
            .await;
        let url = announced["presignedUploadUrl"].as_str().unwrap();
        self.upload(url, bytes).await.expect(200);
        let file = announced["fileId"].as_str().unwrap().to_owned();
        assert!(
            self.file_info(&self.alice, &file).await.expect(200)["file"].is_object(),
            "the upload is recorded"
        );
        file
    }
}

/// Bytes that differ everywhere (so a misplaced range shows).
fn bytes_of(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The URL with its object key changed by one digit.
fn other_object(url: &str) -> String {
    let at = url.find("obj_").expect("the URL names its object") + 4;
    let mut changed = url.to_owned();
    let digit = if &url[at..=at] == "0" { "1" } else { "0" };
    changed.replace_range(at..=at, digit);
    changed
}

/// A 20 MiB file goes up without credentials, is attached to a message,
/// reaches the bot as attachment metadata, comes down byte for byte (whole
/// and in a range) to members only, and stops coming down once its message
/// is deleted.
async fn share_a_large_file(backend: Backend) {
    let setup = Setup::start(backend, |_| {}).await;
    let server = &setup.server;
    let bytes = bytes_of(20 * MIB, 7);
    let announced = setup
        .announce(json!({"name": "Q3 report — final.pdf", "contentType": "application/pdf", "size": bytes.len()}))
        .await;
    let file = announced["fileId"].as_str().unwrap().to_owned();
    let upload_url = announced["presignedUploadUrl"].as_str().unwrap().to_owned();
    assert!(file.starts_with("file_"), "{announced}");
    assert!(announced["expiresAt"].is_string(), "{announced}");
    // The signature is random base64 that may spell anything ("Q3" once in
    // about a hundred URLs): only the rest of the URL is looked at.
    let unsigned = upload_url.split("sig=").next().unwrap_or_default();
    assert!(
        !unsigned.contains("Q3") && !unsigned.contains(&setup.channel),
        "the object URL names neither the file nor the channel: {upload_url}"
    );

    // Before the upload: no `file`, and it cannot be attached.
    let info = setup.file_info(&setup.alice, &file).await.expect(200);
    assert!(info.get("file").is_none(), "{info}");
    setup.send_with(&[&file]).await.expect_error(
        409,
        "ConflictException",
        "attachments[0].id: file",
    );

    setup.upload(&upload_url, bytes.clone()).await.expect(200);
    // Stored under a random key that names nothing.
    let stored: Vec<String> = match &setup.s3 {
        Some(s3) => {
            assert!(upload_url.starts_with(&s3.endpoint), "{upload_url}");
            s3.object_names()
        }
        None => {
            let objects = server.data_dir.path().join("files/objects");
            std::fs::read_dir(objects)
                .unwrap()
                .flat_map(|dir| std::fs::read_dir(dir.unwrap().path()).unwrap())
                .map(|entry| entry.unwrap().file_name().into_string().unwrap())
                .collect()
        }
    };
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(
        upload_url.contains(&stored[0]) && stored[0].starts_with("obj_"),
        "{stored:?}"
    );
    if backend == Backend::Local {
        setup
            .upload(&upload_url, b"another".to_vec())
            .await
            .expect_error(409, "ConflictException", "already uploaded");
    }
    let info = setup.file_info(&setup.alice, &file).await.expect(200);
    assert_eq!(
        info["file"],
        json!({"id": file, "fsId": file, "name": "Q3 report — final.pdf", "mime": "application/pdf", "size": 20 * MIB})
    );
    setup
        .file_info(&setup.bob, &file)
        .await
        .expect_error(404, "NotFoundException", "channel");

    let sent = setup.send_with(&[&file]).await.expect(200);
    let message = sent["message"]["messageId"].as_str().unwrap().to_owned();
    assert_eq!(sent["message"]["attachments"], json!([info["file"]]));
    let events = setup
        .receiver
        .wait_until("the message event", WAIT, |received| {
            received
                .iter()
                .any(|r| r.json["type"] == "chat:message:new")
        })
        .await;
    let event = events
        .iter()
        .find(|r| r.json["type"] == "chat:message:new")
        .unwrap();
    assert_eq!(
        event.json["data"]["message"]["attachments"],
        json!([info["file"]])
    );

    // Members only.
    setup
        .download_url(&setup.bob, &message, &file)
        .await
        .expect_error(404, "NotFoundException", "channel");
    let answered = setup
        .download_url(&setup.alice, &message, &file)
        .await
        .expect(200);
    let url = answered["url"].as_str().unwrap().to_owned();
    assert!(answered["expiresAt"].is_string(), "{answered}");

    let not_following = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let first = not_following.get(&url).send().await.unwrap();
    match &setup.s3 {
        // Checked here, then sent on to a presigned GET of the bucket.
        Some(s3) => {
            assert_eq!(first.status(), StatusCode::TEMPORARY_REDIRECT);
            let location = first.headers()["location"].to_str().unwrap();
            assert!(
                location.starts_with(&s3.endpoint) && location.contains("X-Amz-Signature="),
                "{location}"
            );
        }
        None => assert_eq!(first.status(), StatusCode::OK),
    }
    drop(first);
    let whole = setup.anonymous.get(&url).send().await.unwrap();
    assert_eq!(whole.status(), StatusCode::OK);
    let header = |response: &reqwest::Response, name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header(&whole, "content-type"), "application/pdf");
    let disposition = header(&whole, "content-disposition");
    assert!(
        disposition.starts_with("attachment;")
            && disposition.contains("filename*=UTF-8''Q3%20report%20%E2%80%94%20final.pdf"),
        "{disposition}"
    );
    let body = whole.bytes().await.unwrap();
    assert_eq!(body.len(), bytes.len());
    assert_eq!(sha256(&body), sha256(&bytes), "the same bytes come back");

    let range = setup
        .anonymous
        .get(&url)
        .header("range", "bytes=1000000-1000999")
        .send()
        .await
        .unwrap();
    assert_eq!(range.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header(&range, "content-range"),
        format!("bytes 1000000-1000999/{}", 20 * MIB)
    );
    assert_eq!(
        &range.bytes().await.unwrap()[..],
        &bytes[1_000_000..1_001_000]
    );

    let tampered = url.replace("type=application%2Fpdf", "type=text%2Fhtml");
    assert_ne!(tampered, url);
    let refused = crate::support::reply(setup.anonymous.get(&tampered).send().await.unwrap()).await;
    refused.expect_error(403, "ForbiddenException", "signature");

    // Deleting the message ends access through it.
    server
        .delete(
            &format!(
                "/v2/conversations/channels/{}/messages/{message}",
                setup.channel
            ),
            &setup.alice,
        )
        .await
        .expect(200);
    let gone = crate::support::reply(setup.anonymous.get(&url).send().await.unwrap()).await;
    gone.expect_error(404, "NotFoundException", "no longer available");
    setup
        .download_url(&setup.alice, &message, &file)
        .await
        .expect_error(404, "NotFoundException", "message");
    setup.server.stop().await;
}

/// Uploads are bounded by the configured maximum and by their declared size,
/// and their URLs cannot be pointed at another object.
async fn uploads_are_bounded(backend: Backend) {
    let setup = Setup::start(backend, |config| config.files.max_bytes = MIB as u64).await;
    setup
        .server
        .post(
            &format!("/v2/conversations/channels/{}/files", setup.channel),
            &setup.alice,
            json!({"name": "big.bin", "size": 2 * MIB}),
        )
        .await
        .expect_error(
            400,
            "ValidationException",
            "size: 2097152 bytes is more than the 1048576",
        );

    // Without a declared size: at most the maximum.
    let announced = setup.announce(json!({"name": "notes.txt"})).await;
    let file = announced["fileId"].as_str().unwrap().to_owned();
    let url = announced["presignedUploadUrl"].as_str().unwrap().to_owned();
    let refused = setup.upload(&other_object(&url), b"hello".to_vec()).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let over = setup.upload(&url, bytes_of(MIB + 1, 3)).await;
    match backend {
        Backend::Local => {
            over.expect_error(413, "PayloadTooLargeException", "1048576");
        }
        // S3 cannot bound an upload of undeclared size: the object is
        // found too large when first looked at, and removed.
        Backend::S3 => assert_eq!(over.status, StatusCode::OK),
    }
    let info = setup.file_info(&setup.alice, &file).await.expect(200);
    assert!(info.get("file").is_none(), "{info}");
    setup.send_with(&[&file]).await.expect_error(
        409,
        "ConflictException",
        "has not been uploaded yet",
    );
    if let Some(s3) = &setup.s3 {
        assert!(s3.object_names().is_empty(), "{:?}", s3.object_names());
    }
    // The URL still takes an upload within the limit.
    setup
        .upload(&url, b"hello, world".to_vec())
        .await
        .expect(200);
    let info = setup.file_info(&setup.alice, &file).await.expect(200);
    assert_eq!(info["file"]["size"], 12);
    assert_eq!(info["file"]["mime"], "text/plain", "guessed from the name");

    // A declared size must be met exactly.
    let announced = setup
        .announce(json!({"name": "exact.bin", "size": 1000}))
        .await;
    let file = announced["fileId"].as_str().unwrap().to_owned();
    let url = announced["presignedUploadUrl"].as_str().unwrap().to_owned();
    let short = setup.upload(&url, vec![1; 999]).await;
    assert!(
        short.status.is_client_error(),
        "{} {}",
        short.status,
        short.body
    );
    assert!(
        setup.file_info(&setup.alice, &file).await.expect(200)["file"].is_null(),
        "nothing recorded"
    );
    setup.upload(&url, vec![1; 1000]).await.expect(200);
    assert_eq!(
        setup.file_info(&setup.alice, &file).await.expect(200)["file"]["size"],
        1000
    );

    if backend == Backend::Local {
        // A body without a length is cut off as soon as it passes the limit.
        let announced = setup.announce(json!({"name": "stream.bin"})).await;
        let file = announced["fileId"].as_str().unwrap().to_owned();
        let url = announced["presignedUploadUrl"].as_str().unwrap().to_owned();
        let chunks = (0..64u64)
            .map(|i| Ok::<_, std::io::Error>(Frame::data(Bytes::from(bytes_of(64 * 1024, i + 1)))));
        let unsized_body = StreamBody::new(futures_util::stream::iter(chunks));
        let sent = setup
            .anonymous
            .put(&url)
            .body(reqwest::Body::wrap(unsized_body))
            .send()
            .await;
        if let Ok(response) = sent {
            assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        } // else the server closed the connection while the client still sent
        assert!(
            setup.file_info(&setup.alice, &file).await.expect(200)["file"].is_null(),
            "nothing stored"
        );
        let incoming = setup.server.data_dir.path().join("files/incoming");
        assert_eq!(std::fs::read_dir(incoming).unwrap().count(), 0);
    }
    setup.server.stop().await;
}

/// Upload and download URLs stop working when they expire.
async fn urls_expire(backend: Backend) {
    // Two servers, each on its own storage: one whose upload URLs live a
    // second, one whose download URLs do.
    let uploads = Setup::start(backend, |config| {
        config.files.upload_url_ttl = Duration::from_secs(1)
    })
    .await;
    let downloads = Setup::start(backend, |config| {
        config.files.download_url_ttl = Duration::from_secs(1)
    })
    .await;
    let announced = uploads.announce(json!({"name": "late.txt"})).await;
    let upload_url = announced["presignedUploadUrl"].as_str().unwrap().to_owned();
    let file = downloads.uploaded("early.txt", b"on time".to_vec()).await;
    let sent = downloads.send_with(&[&file]).await.expect(200);
    let message = sent["message"]["messageId"].as_str().unwrap();
    let answered = downloads
        .download_url(&downloads.alice, message, &file)
        .await
        .expect(200);
    let download_url = answered["url"].as_str().unwrap().to_owned();
    assert_eq!(
        &downloads
            .anonymous
            .get(&download_url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()[..],
        b"on time"
    );

    // What is tested here is time passing: both URLs were valid for a second.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let late = uploads.upload(&upload_url, b"too late".to_vec()).await;
    assert_eq!(late.status, StatusCode::FORBIDDEN, "{}", late.body);
    if uploads.backend() == Backend::Local {
        late.expect_error(403, "ForbiddenException", "expired");
    }
    let expired =
        crate::support::reply(downloads.anonymous.get(&download_url).send().await.unwrap()).await;
    expired.expect_error(403, "ForbiddenException", "expired");
    uploads.server.stop().await;
    downloads.server.stop().await;
}

#[tokio::test]
async fn local_disk_shares_a_20_mib_file_with_members_until_its_message_is_deleted() {
    share_a_large_file(Backend::Local).await;
}

#[tokio::test]
async fn s3_shares_a_20_mib_file_with_members_until_its_message_is_deleted() {
    share_a_large_file(Backend::S3).await;
}

#[tokio::test]
async fn local_disk_bounds_uploads_and_refuses_changed_urls() {
    uploads_are_bounded(Backend::Local).await;
}

#[tokio::test]
async fn s3_bounds_uploads_and_refuses_changed_urls() {
    uploads_are_bounded(Backend::S3).await;
}

#[tokio::test]
async fn local_disk_urls_expire() {
    urls_expire(Backend::Local).await;
}

#[tokio::test]
async fn s3_urls_expire() {
    urls_expire(Backend::S3).await;
}

/// Only files uploaded to the same channel can be attached: not another
/// channel's, not another company's, not an unknown id.
#[tokio::test]
async fn attachments_are_uploaded_files_of_the_same_channel() {
    let setup = Setup::start(Backend::Local, |_| {}).await;
    let server = &setup.server;
    let here = setup.uploaded("here.txt", b"here".to_vec()).await;

    let other_channel = server.channel(&setup.alice, &[]).await;
    let announced = server
        .post(
            &format!("/v2/conversations/channels/{other_channel}/files"),
            &setup.alice,
            json!({"name": "there.txt"}),
        )
        .await
        .expect(200);
    setup
        .upload(
            announced["presignedUploadUrl"].as_str().unwrap(),
            b"there".to_vec(),
        )
        .await
        .expect(200);
    let there = announced["fileId"].as_str().unwrap();

    let other_company = server.second_company().await;
    let stranger = server
        .post(
            "/v2/users",
            &other_company,
            json!({"name": "Stranger", "email": "stranger@example.org"}),
        )
        .await
        .expect(200)["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let foreign_channel = server
        .post(
            &format!("/v2/conversations/channels?userId={stranger}"),
            &other_company,
            json!({"subject": "Theirs"}),
        )
        .await
        .expect(200)["channel"]["channelId"]
        .as_str()
        .unwrap()
        .to_owned();
    let foreign = server
        .post(
            &format!("/v2/conversations/channels/{foreign_channel}/files?userId={stranger}"),
            &other_company,
            json!({"name": "theirs.txt"}),
        )
        .await
        .expect(200);
    setup
        .upload(
            foreign["presignedUploadUrl"].as_str().unwrap(),
            b"theirs".to_vec(),
        )
        .await
        .expect(200);
    let foreign = foreign["fileId"].as_str().unwrap();
    // The other company cannot see this company's file either.
    server
        .get(
            &format!(
                "/v2/conversations/channels/{}/files/{here}?userId={stranger}",
                setup.channel
            ),
            &other_company,
        )
        .await
        .expect_error(404, "NotFoundException", "");

    // Well-formed ids of files not in this channel conflict with what the
    // channel holds; a malformed one is refused.
    for (id, why, status, error_type, needle) in [
        (
            there,
            "another channel's file",
            409,
            "ConflictException",
            "attachments[1].id: no file",
        ),
        (
            foreign,
            "another company's file",
            409,
            "ConflictException",
            "attachments[1].id: no file",
        ),
        (
            "file_0000never",
            "an unknown id",
            409,
            "ConflictException",
            "attachments[1].id: no file",
        ),
        (
            "not a file id",
            "a malformed id",
            400,
            "ValidationException",
            "is not a file id",
        ),
    ] {
        let refused = setup.send_with(&[&here, id]).await;
        assert_eq!(refused.status.as_u16(), status, "{why}: {}", refused.body);
        refused.expect_error(status, error_type, needle);
    }
    setup.send_with(&[&here, &here]).await.expect_error(
        400,
        "ValidationException",
        "attached twice",
    );

    // Edits are held to the same rule; a valid edit keeps the metadata.
    let sent = setup.send_with(&[&here]).await.expect(200);
    let message = sent["message"]["messageId"].as_str().unwrap();
    let path = format!(
        "/v2/conversations/channels/{}/messages/{message}",
        setup.channel
    );
    server
        .patch(
            &path,
            &setup.alice,
            json!({"set": {"attachments": [{"id": there}]}}),
        )
        .await
        .expect_error(409, "ConflictException", "set.attachments[0].id: no file");
    let edited = server
        .put(
            &path,
            &setup.alice,
            json!({"text": "only the file", "attachments": [{"id": here}]}),
        )
        .await
        .expect(200);
    assert_eq!(edited["message"]["attachments"][0]["name"], "here.txt");
    // Removing the file from the message ends access to it through the message.
    let url = setup
        .download_url(&setup.alice, message, &here)
        .await
        .expect(200)["url"]
        .as_str()
        .unwrap()
        .to_owned();
    server
        .patch(
            &path,
            &setup.alice,
            json!({"set": {"text": "no file now"}, "unset": ["attachments"]}),
        )
        .await
        .expect(200);
    crate::support::reply(setup.anonymous.get(&url).send().await.unwrap())
        .await
        .expect_error(404, "NotFoundException", "no longer available");
    setup.server.stop().await;
}
