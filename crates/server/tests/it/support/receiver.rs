//! A real HTTP receiver for deliveries: records every request and answers
//! with scripted statuses (200 when the script is empty).

#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub json: Value,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

#[derive(Default)]
struct Inner {
    received: Vec<Received>,
    script: VecDeque<(u16, Option<String>)>,
    /// Answer every request with this status when the script is empty.
    default_status: u16,
    /// Answer 500 to every request whose body contains this text.
    poison: Option<String>,
    delay: Duration,
    /// While it holds `true`, requests wait before they are answered.
    gate: Option<tokio::sync::watch::Receiver<bool>>,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    gate: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let (gate, held) = tokio::sync::watch::channel(false);
        let inner = Arc::new(Mutex::new(Inner {
            default_status: 200,
            gate: Some(held),
            ..Inner::default()
        }));
        let app = Router::new().fallback(receive).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver {
            url,
            inner,
            gate: Arc::new(gate),
        }
    }

    /// Holds every request (recorded, not answered) until [`Receiver::release`].
    pub fn hold(&self) {
        self.gate.send_replace(true);
    }

    /// Answers the held requests and stops holding.
    pub fn release(&self) {
        self.gate.send_replace(false);
    }

    /// The next answers, in order: `(status, Retry-After)`.
    pub fn script(&self, answers: &[(u16, Option<&str>)]) {
        let mut inner = self.inner.lock().unwrap();
        inner.script.extend(
            answers
                .iter()
                .map(|(status, retry)| (*status, retry.map(str::to_owned))),
        );
    }

    /// The answer when nothing is scripted.
    pub fn answer_with(&self, status: u16) {
        self.inner.lock().unwrap().default_status = status;
    }

    /// Answers 500 to requests whose body contains `marker` (`None` lifts it).
    pub fn refuse_containing(&self, marker: Option<&str>) {
        self.inner.lock().unwrap().poison = marker.map(str::to_owned);
    }

    /// Waits this long before answering each request.
    pub fn delay(&self, delay: Duration) {
        self.inner.lock().unwrap().delay = delay;
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    /// The successfully answered requests' event types, in arrival order.
    pub fn event_types(&self) -> Vec<String> {
        self.received()
            .iter()
            .map(|r| r.json["type"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Waits (bounded) until `done` holds for what was received.
    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let received = self.received();
            if done(&received) {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}; received {} requests: {:?}",
                received.len(),
                received
                    .iter()
                    .map(|r| r.json["type"].clone())
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn receive(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (status, retry_after, delay, gate) = {
        let mut inner = inner.lock().unwrap();
        let poisoned = inner.poison.as_ref().is_some_and(|marker| {
            std::str::from_utf8(&body).is_ok_and(|text| text.contains(marker.as_str()))
        });
        let (status, retry) = if poisoned {
            (500, None)
        } else {
            inner
                .script
                .pop_front()
                .unwrap_or((inner.default_status, None))
        };
        inner.received.push(Received {
            headers,
            json: serde_json::from_slice(&body).unwrap_or(Value::Null),
            body,
        });
        (status, retry, inner.delay, inner.gate.clone())
    };
    if let Some(mut gate) = gate {
        let _ = gate.wait_for(|held| !*held).await;
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut response = (StatusCode::from_u16(status).unwrap(), "ok").into_response();
    if let Some(retry) = retry_after {
        response
            .headers_mut()
            .insert("retry-after", retry.parse().unwrap());
    }
    response
}
