//! An echo bot on its `sqs` integration's queue (X-SIGNATURE checked with the AWS secret).
//! Set SWITCHBOARD_SERVER, SWITCHBOARD_BOT_KEY, QUEUE_URL, AWS_REGION, AWS_ACCESS_KEY_ID,
//! AWS_SECRET_ACCESS_KEY (and SQS_ENDPOINT for an SQS-compatible server).

use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use switchboard_bot_sdk::sqs::{Consumer, Signature};
use switchboard_bot_sdk::{Client, EventPayload, Reply, is_own};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
    let client = Client::new(&env("SWITCHBOARD_SERVER")?, &env("SWITCHBOARD_BOT_KEY")?);
    let secret = env("AWS_SECRET_ACCESS_KEY")?;
    let key = Credentials::new(env("AWS_ACCESS_KEY_ID")?, &secret, None, None, "env");
    let mut config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(env("AWS_REGION")?))
        .credentials_provider(key)
        .http_client(
            aws_smithy_http_client::Builder::new()
                .tls_provider(Provider::Rustls(CryptoMode::Ring))
                .build_https(),
        );
    if let Ok(endpoint) = env("SQS_ENDPOINT") {
        config = config.endpoint_url(endpoint);
    }
    let sqs = aws_sdk_sqs::Client::from_conf(config.build());
    Consumer::new(sqs, &env("QUEUE_URL")?, Signature::AwsSecret(secret))
        .run(move |event| {
            let client = client.clone();
            async move {
                // Its own answers come back too: they are let be.
                let Ok(EventPayload::MessageNew(new)) = event.payload() else {
                    return Reply::Handled;
                };
                let text = new.message.text.unwrap_or_default();
                if is_own(&event) || client.reply(&event, &format!("echo: {text}")).await.is_ok() {
                    return Reply::Handled;
                }
                Reply::RetryLater(std::time::Duration::from_secs(5))
            }
        })
        .await?;
    Ok(())
}
