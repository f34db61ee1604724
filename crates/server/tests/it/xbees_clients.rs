//! What real x-bees client code does, done against switchboard: receivers
//! written for x-bees must run unchanged.

use std::process::Stdio;
use std::time::Duration;

use crate::support::TestServer;
use crate::support::receiver::Receiver;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

const WAIT: Duration = Duration::from_secs(15);

/// What an Express receiver with `express.json()` checks: the HMAC of
/// `JSON.stringify(req.body)` keyed by the secret, against `x-signature`.
/// Reads `{secret, deliveries: [{body, signature}]}` on standard input and
/// prints the deliveries whose check fails, and whose re-serialized body is
/// not the body received.
const EXPRESS_STYLE_CHECK: &str = r#"
const crypto = require('crypto');
let input = '';
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const { secret, deliveries } = JSON.parse(input);
  const failures = [];
  for (const { body, signature } of deliveries) {
    const reserialized = JSON.stringify(JSON.parse(body));
    const expected = crypto.createHmac('sha256', secret).update(reserialized).digest('hex');
    if (expected !== signature || reserialized !== body) {
      failures.push({ body, reserialized, signatureMatches: expected === signature });
    }
  }
  console.log(JSON.stringify({ checked: deliveries.length, failures }));
});
"#;

/// Runs [`EXPRESS_STYLE_CHECK`] in Node over the deliveries.
async fn check_like_express(secret: &str, deliveries: Vec<Value>) -> Value {
    let mut node = Command::new("node")
        .args(["-e", EXPRESS_STYLE_CHECK])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node runs (Node.js is on every machine of this kind)");
    let input = json!({"secret": secret, "deliveries": deliveries}).to_string();
    let mut stdin = node.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    drop(stdin);
    let output = tokio::time::timeout(WAIT, node.wait_with_output())
        .await
        .expect("node answers")
        .unwrap();
    assert!(output.status.success(), "node failed");
    serde_json::from_slice(&output.stdout).expect("node prints its verdict as JSON")
}

#[tokio::test]
async fn x_signature_holds_over_the_body_as_javascript_writes_it_again() {
    let server = TestServer::start().await;
    let receiver = Receiver::start().await;
    let (_, alice) = server.person("Alice").await;
    let (bob, bob_token) = server.person("Bob").await;
    let (dana, _) = server.person("Dana").await;
    let (bot, bot_key) = server.bot("Express bot").await;
    let (_, secret) = server.webhook(&bot, &receiver.url, json!({})).await;

    let channel = server.channel(&alice, &[&bot, &bob]).await;
    let base = format!("/v2/conversations/channels/{channel}");
    let messages = format!("{base}/messages");
    server
        .put(&base, &alice, json!({"subject": "Ünïcødé 🚀 \"quoted\""}))
        .await
        .expect(200);
    server
        .post(
            &format!("{base}/members"),
            &alice,
            json!({"members": [dana]}),
        )
        .await
        .expect(200);
    let text = "tab\t newline\n quote\" backslash\\ carriage\r é ß 中文 👍🏽 \u{2028}";
    let hello = server.say(&alice, &channel, text).await;
    server
        .put(
            &format!("{messages}/{hello}"),
            &alice,
            json!({"text": format!("{text} (edited)")}),
        )
        .await
        .expect(200);
    // Reaction types that JavaScript orders as array indices, and others.
    for (token, reaction) in [
        (&alice, "+1"),
        (&alice, "100"),
        (&bob_token, "0"),
        (&bob_token, "007"),
        (&alice, "👍"),
        (&bob_token, "9"),
    ] {
        server
            .post(
                &format!("{messages}/{hello}/reactions"),
                token,
                json!({"type": reaction}),
            )
            .await
            .expect(200);
    }
    server
        .delete(&format!("{messages}/{hello}/reactions/100"), &alice)
        .await
        .expect(200);
    let question = server
        .post(&messages, &bot_key, json!({"text": "OK?", "elements": [{"actions": [{"button": {"text": "OK", "handler": {"action": {"id": "ok"}}}}]}]}))
        .await
        .expect(200);
    let question = question["message"]["messageId"]
        .as_str()
        .unwrap()
        .to_owned();
    server
        .post(
            &format!("{messages}/{question}/actions"),
            &alice,
            json!({"actionId": "ok"}),
        )
        .await
        .expect(200);
    server
        .delete(&format!("{messages}/{hello}"), &alice)
        .await
        .expect(200);
    server
        .delete(&format!("{base}/members/{dana}"), &alice)
        .await
        .expect(200);
    server.delete(&base, &alice).await.expect(200);
    let path = format!("/v2/users/bots/{bot}/integrations");
    let listed = server.get(&path, &server.company_key).await.expect(200);
    let integration = listed["integrations"][0]["integrationId"]
        .as_str()
        .unwrap()
        .to_owned();
    server
        .post(
            &format!("{path}/{integration}/test"),
            &server.company_key,
            json!({}),
        )
        .await
        .expect(200);

    let received = receiver
        .wait_until("the channel's deletion and the test event", WAIT, |r| {
            let types: Vec<&str> = r.iter().filter_map(|r| r.json["type"].as_str()).collect();
            types.contains(&"chat:channel:deleted") && types.contains(&"integration:test")
        })
        .await;
    let mut types: Vec<&str> = received
        .iter()
        .filter_map(|r| r.json["type"].as_str())
        .collect();
    types.sort();
    types.dedup();
    assert_eq!(
        types,
        [
            "chat:channel:created",
            "chat:channel:deleted",
            "chat:channel:updated",
            "chat:member:added",
            "chat:member:removed",
            "chat:message:action",
            "chat:message:deleted",
            "chat:message:new",
            "chat:message:updated",
            "chat:reaction:deleted",
            "chat:reaction:new",
            "integration:test",
        ],
        "every event type is checked"
    );
    assert!(
        received.iter().any(|r| std::str::from_utf8(&r.body)
            .unwrap()
            .contains(r#""reactionCounts":{"0":1,"9":1,"100":1,"+1":1"#)),
        "reaction counts are written in JavaScript's order"
    );
    let deliveries: Vec<Value> = received
        .iter()
        .map(|r| {
            json!({
                "body": std::str::from_utf8(&r.body).expect("UTF-8 body"),
                "signature": r.header("x-signature"),
            })
        })
        .collect();
    let verdict = check_like_express(&secret, deliveries).await;
    assert_eq!(verdict["checked"], received.len());
    assert_eq!(verdict["failures"], json!([]), "{verdict:#}");
}

/// Two SQS consumers in Python with boto3, as bot authors write them: the
/// official x-bees example's check (`X-SIGNATURE` is the HMAC of the body
/// keyed by the AWS secret access key), and the Standard Webhooks library
/// over the `webhook-*` attributes with the `whsec_` secret. Reads until
/// `expected` messages arrived (bounded), deletes them, and prints a verdict.
const BOTO3_CONSUMERS: &str = r#"
import hashlib, hmac, json, sys, time
import boto3
from standardwebhooks.webhooks import Webhook

endpoint, region, key_id, aws_secret, whsec, queue, expected = sys.argv[1:8]
sqs = boto3.client("sqs", region_name=region, endpoint_url=endpoint,
                   aws_access_key_id=key_id, aws_secret_access_key=aws_secret)
webhook = Webhook(whsec)
seen, failures = {}, []
deadline = time.time() + 30
while len(seen) < int(expected) and time.time() < deadline:
    answer = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                 MessageAttributeNames=["All"])
    for message in answer.get("Messages", []):
        body = message["Body"]
        attributes = {name: value["StringValue"]
                      for name, value in message.get("MessageAttributes", {}).items()}
        expected_signature = hmac.new(aws_secret.encode(), body.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected_signature, attributes.get("X-SIGNATURE", "")):
            failures.append({"check": "X-SIGNATURE with the AWS secret", "body": body})
        try:
            webhook.verify(body, {name: attributes.get(name, "") for name in
                                  ("webhook-id", "webhook-timestamp", "webhook-signature")})
        except Exception as error:
            failures.append({"check": "Standard Webhooks", "error": str(error), "body": body})
        seen[json.loads(body)["id"]] = json.loads(body)["type"]
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
print(json.dumps({"received": len(seen), "types": sorted(set(seen.values())), "failures": failures}))
"#;

#[tokio::test]
async fn sqs_consumers_written_for_x_bees_verify_our_messages() {
    use crate::support::sqs::{self, Moto};
    let moto = Moto::start().await;
    let queue = moto.create_queue("xbees-bot", &[]).await;
    let server = TestServer::start().await;
    let (_, alice) = server.person("Alice").await;
    let (bot, _) = server.bot("Queue bot").await;
    let (integration, secret) = server
        .sqs_integration(&bot, &queue, &moto.endpoint, json!({}))
        .await;
    let channel = server.channel(&alice, &[&bot]).await;
    server.say(&alice, &channel, "Hello queue 👋").await;
    // During a rotation the Standard Webhooks signature carries both secrets;
    // a consumer that knows only the new one still verifies.
    let rotated = server
        .post(
            &format!("/v2/users/bots/{bot}/integrations/{integration}/rotate-secret"),
            &server.company_key,
            json!({}),
        )
        .await
        .expect(200);
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    server.say(&alice, &channel, "after the rotation").await;
    server.settle().await;

    // The Python environment scripts/moto made, with boto3 and standardwebhooks.
    let moto_server = std::env::var("TEST_MOTO_SERVER")
        .expect("TEST_MOTO_SERVER names moto_server: run ./scripts/test, which installs it");
    let python = std::path::Path::new(&moto_server).with_file_name("python");
    let run = |whsec: String, expected: &'static str| {
        let mut command = Command::new(&python);
        command.args([
            "-c",
            BOTO3_CONSUMERS,
            &moto.endpoint,
            sqs::REGION,
            sqs::ACCESS_KEY_ID,
            sqs::SECRET_ACCESS_KEY,
            &whsec,
            &queue,
            expected,
        ]);
        async move {
            let output = tokio::time::timeout(Duration::from_secs(60), command.output())
                .await
                .expect("the consumers finish")
                .unwrap();
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            serde_json::from_slice::<Value>(&output.stdout).expect("a JSON verdict")
        }
    };
    // Every message verifies with the AWS secret; with the old whsec_ secret
    // (the first two were signed by it alone, the third by both)...
    let verdict = run(secret, "3").await;
    assert_eq!(verdict["received"], 3, "{verdict}");
    assert_eq!(verdict["failures"], json!([]), "{verdict}");
    // ... and, while the rotation lasts, with the new one.
    server
        .say(&alice, &channel, "only the new secret now")
        .await;
    let verdict = run(new_secret, "1").await;
    assert_eq!(verdict["received"], 1, "{verdict}");
    assert_eq!(verdict["failures"], json!([]), "{verdict}");
}

/// The official SDK example's upload: the company credential uploads as a
/// person (`userId`), then asks for the file's info without one.
#[tokio::test]
async fn a_company_key_reads_file_info_without_acting_as_a_person() {
    let server = TestServer::start().await;
    let (alice, alice_token) = server.person("Alice").await;
    let channel = server.channel(&alice_token, &[]).await;
    let key = server.company_key.clone();
    let announced = server
        .post(
            &format!("/v2/conversations/channels/{channel}/files"),
            &key,
            json!({"userId": alice, "name": "notes.txt", "size": 5}),
        )
        .await
        .expect(200);
    let file = announced["fileId"].as_str().unwrap().to_owned();
    let upload = server
        .client
        .put(announced["presignedUploadUrl"].as_str().unwrap())
        .body("hello")
        .send()
        .await
        .unwrap();
    assert!(upload.status().is_success(), "{}", upload.status());

    let info_path = format!("/v2/conversations/channels/{channel}/files/{file}");
    let info = server.get(&info_path, &key).await.expect(200);
    assert_eq!(info["file"]["id"], file.as_str());
    assert_eq!(info["file"]["fsId"], file.as_str());
    assert_eq!(info["file"]["size"], 5);
    // Another company sees nothing; a person who is not a member neither.
    let other = server.second_company().await;
    server
        .get(&info_path, &other)
        .await
        .expect_error(404, "NotFoundException", "file");
    let (_, outsider) = server.person("Olga").await;
    server
        .get(&info_path, &outsider)
        .await
        .expect_error(404, "NotFoundException", "channel");
    // Conversations themselves are read as a person: userId stays required.
    server
        .get(
            &format!("/v2/conversations/channels/{channel}/messages"),
            &key,
        )
        .await
        .expect_error(400, "ValidationException", "userId");
}

/// Express's JSON parser refuses bodies over 100 kB by default: events in a
/// channel of 1,000 people stay well under, and still name who matters.
#[tokio::test]
async fn events_stay_small_in_a_channel_of_a_thousand_people() {
    let server = TestServer::start().await;
    let (alice, alice_token) = server.person("Alice").await;
    let (bot, bot_key) = server.bot("Bounded bot").await;
    let (full_bot, _) = server.bot("Full lists bot").await;
    let bounded = Receiver::start().await;
    let full = Receiver::start().await;
    server
        .webhook(
            &bot,
            &bounded.url,
            json!({"eventTypes": ["chat:message:new", "chat:message:action", "chat:member:added"]}),
        )
        .await;
    server
        .webhook(
            &full_bot,
            &full.url,
            json!({"eventTypes": ["chat:message:new"], "fullMemberLists": true}),
        )
        .await;
    let mut people = Vec::new();
    for batch in 0..10 {
        let invitees: Vec<Value> = (0..100)
            .map(|index| json!({"email": format!("person{batch}-{index}@example.com"), "name": format!("Person {batch}-{index}")}))
            .collect();
        let invited = server
            .post(
                "/v2/conversations/invite",
                &server.company_key,
                json!({"invitees": invitees}),
            )
            .await
            .expect(200);
        for user in invited["users"].as_array().unwrap() {
            people.push(user["id"].as_str().unwrap().to_owned());
        }
    }
    let channel = server.channel(&alice_token, &[&bot, &full_bot]).await;
    for chunk in people.chunks(500) {
        server
            .post(
                &format!("/v2/conversations/channels/{channel}/members"),
                &alice_token,
                json!({"members": chunk}),
            )
            .await
            .expect(200);
    }
    let mentioned = people[900].clone();
    server
        .post(
            &format!("/v2/conversations/channels/{channel}/messages"),
            &alice_token,
            json!({"text": "Hello everyone", "mentions": [mentioned]}),
        )
        .await
        .expect(200);
    let question = server
        .post(&format!("/v2/conversations/channels/{channel}/messages"), &bot_key, json!({"text": "OK?", "elements": [{"actions": [{"button": {"text": "OK", "handler": {"action": {"id": "ok"}}}}]}]}))
        .await
        .expect(200);
    let question = question["message"]["messageId"]
        .as_str()
        .unwrap()
        .to_owned();
    let (presser, presser_token) = server.person("Pressing Person").await;
    server
        .post(
            &format!("/v2/conversations/channels/{channel}/members"),
            &alice_token,
            json!({"members": [presser]}),
        )
        .await
        .expect(200);
    server
        .post(
            &format!("/v2/conversations/channels/{channel}/messages/{question}/actions"),
            &presser_token,
            json!({"actionId": "ok"}),
        )
        .await
        .expect(200);

    let received = bounded
        .wait_until("the message and the action", WAIT, |r| {
            r.iter().any(|r| r.json["type"] == "chat:message:action")
        })
        .await;
    let new = received
        .iter()
        .find(|r| {
            r.json["type"] == "chat:message:new"
                && r.json["data"]["message"]["text"] == "Hello everyone"
        })
        .expect("the message event");
    assert!(new.body.len() < 64 * 1024, "{} bytes", new.body.len());
    let data = &new.json["data"];
    assert_eq!(data["channel"]["memberCount"], 1003, "the true count");
    for list in ["members", "users"] {
        let ids: Vec<&str> = data[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| entry["id"].as_str().unwrap())
            .collect();
        assert!(ids.len() <= 50, "{list}: {} entries", ids.len());
        for id in [alice.as_str(), mentioned.as_str(), bot.as_str()] {
            assert!(ids.contains(&id), "{list} holds {id}");
        }
    }
    for event in received
        .iter()
        .filter(|r| r.json["type"] != "chat:member:added")
    {
        assert!(
            event.body.len() < 64 * 1024,
            "{}: {} bytes",
            event.json["type"],
            event.body.len()
        );
    }
    // Member events carry what they are about: all 500 people added at once.
    assert!(
        received
            .iter()
            .any(|r| r.json["type"] == "chat:member:added"
                && r.json["data"]["members"].as_array().unwrap().len() == 500),
        "an addition of 500 keeps its 500 members"
    );

    // The integration that asked for full lists gets every member.
    let received = full
        .wait_until("the full message event", WAIT, |r| {
            r.iter()
                .any(|r| r.json["data"]["message"]["text"] == "Hello everyone")
        })
        .await;
    let new = received
        .iter()
        .find(|r| r.json["data"]["message"]["text"] == "Hello everyone")
        .unwrap();
    assert_eq!(new.json["data"]["members"].as_array().unwrap().len(), 1003);
}
