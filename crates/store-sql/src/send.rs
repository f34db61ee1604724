//! SendMessage's change, written for a group of sends at once.
//!
//! Every send runs [`send_group`]: with one request when the backend runs
//! each change on its own, with many when it groups them (see
//! [`SendGroups`]). A group reads its senders, its channels' bot
//! integrations and their members with one statement each, decides each
//! send in Rust, and writes the messages, the channels' sequences, the
//! events, the deliveries and the lanes with one statement per table. On
//! PostgreSQL, where each statement is a round trip and a transaction's
//! commit a flush of the log, a group of 32 sends costs about what one does.
//!
//! A send is grouped only when it needs nothing beyond its channel and
//! author ([`SendRequest::groups`]): no attachments, quote, mentions or
//! `Idempotency-Key`. Those read and may write more, and are refused on
//! conditions a group could not take back for one send alone, so each runs
//! as a group of one. In a group, a send refused for its sender (not a
//! member, an unknown channel) is answered so alone: its refusal is decided
//! on what the group read, before anything is written.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use switchboard_domain::{Actor, ChannelId, MessageId, now_micros};
use switchboard_protocol::events::MessageNewData;
use switchboard_protocol::{EventType, Message, MessageQuote};
use switchboard_store::{
    ChannelDetails, IdempotencyRecord, Members, NewMessage, StoreError, StoreResult,
};

use crate::backend::Backend;
use crate::channels::clear_typing;
use crate::db::{Arg, Db, statement_text, value_rows};
use crate::events::{self, NewEvent};
use crate::failure::{Failure, Outcome};
use crate::files::resolve_attachments;
use crate::load::{self, Sender};
use crate::message_changes::{ensure_members, quote_of, remembered_send};
use crate::rows::MessageRow;

/// One SendMessage request, as the store takes it.
#[derive(Clone, Debug)]
pub(crate) struct SendRequest {
    pub actor: Actor,
    pub channel: ChannelId,
    pub new: NewMessage,
    pub idempotency: Option<IdempotencyRecord>,
}

impl SendRequest {
    /// Whether the send may share its change with others: it needs nothing
    /// but its channel and author.
    pub(crate) fn groups(&self) -> bool {
        self.idempotency.is_none()
            && self.new.attachments.is_empty()
            && self.new.confirmed_uploads.is_empty()
            && self.new.quote.is_none()
            && self.new.mentions.is_empty()
    }
}

/// The most sends one change takes.
pub(crate) const MAX_GROUP: usize = 64;

/// Sends `requests` in the open transaction: the answer to each, in the same
/// order. An `Err` of the whole (a database error, or the refusal of a send
/// that does not [group](SendRequest::groups), which is always alone) rolls
/// the transaction back.
pub(crate) async fn send_group(
    tx: &mut impl Db,
    requests: &[SendRequest],
) -> Outcome<Vec<Outcome<Message>>> {
    debug_assert!(requests.len() == 1 || requests.iter().all(SendRequest::groups));
    let now = now_micros();
    let sends: Vec<(&Actor, &ChannelId)> = requests
        .iter()
        .map(|request| (&request.actor, &request.channel))
        .collect();
    let senders = load::senders(tx, &sends).await?;
    let mut answers: Vec<Outcome<Message>> = Vec::with_capacity(requests.len());
    // The sends that go on: their request's place, author and message row.
    let mut going: Vec<(usize, Sender, MessageRow)> = Vec::new();
    for (index, (request, sender)) in requests.iter().zip(senders).enumerate() {
        let sender = match sender {
            Ok(sender) => sender,
            Err(refused) => {
                answers.push(Err(refused));
                continue;
            }
        };
        if let Some(record) = &request.idempotency
            && let Some(first) = remembered_send(tx, &request.actor, record, now).await?
        {
            answers.push(load::message(tx, first).await);
            continue;
        }
        // Each send its own microsecond: a channel's messages sent in one
        // group keep their order by time.
        let row = message_row(tx, request, now + index as i64).await?;
        answers.push(Err(Failure::backend("a send of the group was not written")));
        going.push((index, sender, row));
    }
    if going.is_empty() {
        return Ok(answers);
    }
    insert_messages(tx, requests, &going).await?;
    let mut sent: Vec<(usize, Sender, Message)> = Vec::with_capacity(going.len());
    for (index, sender, row) in going {
        let request = &requests[index];
        if sender.typing {
            clear_typing(tx, &request.channel, &request.actor.user).await?;
        }
        if let Some(record) = &request.idempotency {
            tx.execute(
                "INSERT INTO idempotency_keys (company_id, caller_id, idempotency_key, request_fingerprint, \
                 message_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                args![
                    request.actor.company.as_str(),
                    request.actor.user.as_str(),
                    &record.key,
                    &record.request_fingerprint,
                    &row.id,
                    now,
                ],
            )
            .await?;
        }
        let message = load::new_message(tx, row, sender.user.clone()).await?;
        sent.push((index, sender, message));
    }
    let channels: Vec<(&str, &str)> = sent
        .iter()
        .map(|(index, ..)| {
            let request = &requests[*index];
            (request.actor.company.as_str(), request.channel.as_str())
        })
        .collect();
    let targets = events::bot_member_targets(tx, &channels, &EventType::MessageNew).await?;
    let details = channel_details(tx, &sent, &targets).await?;
    let mut new_events = Vec::with_capacity(sent.len());
    let mut messages = Vec::with_capacity(sent.len());
    for ((((index, _, message), details), targets), (company, channel)) in
        sent.into_iter().zip(details).zip(&targets).zip(&channels)
    {
        let data = MessageNewData {
            channel: details.channel,
            members: details.members,
            users: details.users,
            message,
        };
        new_events.push(NewEvent {
            company,
            channel: Some(channel),
            event_type: &EventType::MessageNew,
            data: switchboard_protocol::js_json::to_string(&data)?,
            targets,
        });
        messages.push((index, data.message));
    }
    events::record_many(tx, &new_events, now).await?;
    for (index, message) in messages {
        answers[index] = Ok(message);
    }
    Ok(answers)
}

/// The row of a new message, with what a send that does not group reads
/// beyond its sender: the mentioned members, the attachments and the quote.
async fn message_row(tx: &mut impl Db, request: &SendRequest, now: i64) -> Outcome<MessageRow> {
    let SendRequest {
        actor,
        channel,
        new,
        ..
    } = request;
    ensure_members(tx, channel, &new.mentions).await?;
    let attachments = resolve_attachments(
        tx,
        actor,
        channel,
        "attachments",
        &new.attachments,
        &new.confirmed_uploads,
    )
    .await?;
    let quote: Option<MessageQuote> = match &new.quote {
        Some(quoted) => Some(quote_of(tx, channel, quoted).await?),
        None => None,
    };
    Ok(MessageRow {
        id: MessageId::generate().into_string(),
        channel_id: channel.as_str().to_owned(),
        user_id: actor.user.as_str().to_owned(),
        message_type: "regular".to_owned(),
        text: new.text.clone(),
        elements: serde_json::to_string(&new.elements)?,
        attachments: serde_json::to_string(&attachments)?,
        mentions: serde_json::to_string(&new.mentions)?,
        quote: quote.as_ref().map(serde_json::to_string).transpose()?,
        silent: new.silent,
        created_at: now,
        updated_at: None,
        deleted_at: None,
    })
}

/// Inserts the rows of the sends going on (each in its request's company)
/// with one statement.
async fn insert_messages(
    tx: &mut impl Db,
    requests: &[SendRequest],
    going: &[(usize, Sender, MessageRow)],
) -> Outcome<()> {
    let mut args: Vec<Arg<'_>> = Vec::with_capacity(going.len() * 12);
    for (index, _, row) in going {
        args.extend([
            Arg::Text(Some(&row.id)),
            Arg::Text(Some(requests[*index].actor.company.as_str())),
            Arg::Text(Some(&row.channel_id)),
            Arg::Text(Some(&row.user_id)),
            Arg::Text(Some(&row.message_type)),
            Arg::Text(row.text.as_deref()),
            Arg::Text(Some(&row.elements)),
            Arg::Text(Some(&row.attachments)),
            Arg::Text(Some(&row.mentions)),
            Arg::Text(row.quote.as_deref()),
            Arg::Bool(Some(row.silent)),
            Arg::Int(Some(row.created_at)),
        ]);
    }
    let insert = statement_text("insert messages", going.len(), || {
        format!(
            "INSERT INTO messages (id, company_id, channel_id, user_id, message_type, text, elements, \
             attachments, mentions, quote, silent, created_at) VALUES {}",
            value_rows(going.len(), 12)
        )
    });
    tx.execute(&insert, args).await?;
    Ok(())
}

/// The channel, members and users each send's event carries. A channel some
/// bot hears of is sent whole (its members read once for the group); one no
/// bot hears of only reaches the members' feeds, and its event names the
/// author and the users mentioned (as a bounded delivery keeps them), who
/// are in the message already, without reading a channel of any size whole.
async fn channel_details(
    tx: &mut impl Db,
    sent: &[(usize, Sender, Message)],
    targets: &[Vec<String>],
) -> Outcome<Vec<ChannelDetails>> {
    let heard: Vec<&str> = load::distinct(
        sent.iter()
            .zip(targets)
            .filter(|(_, targets)| !targets.is_empty())
            .map(|((_, sender, _), _)| sender.channel.id.as_str()),
    );
    let whole: Vec<Members> = if heard.is_empty() {
        Vec::new()
    } else {
        load::members_of(tx, &heard).await?
    };
    let mut details = Vec::with_capacity(sent.len());
    for ((_, sender, message), targets) in sent.iter().zip(targets) {
        let channel = sender.channel.clone().into_channel();
        if !targets.is_empty() {
            let at = heard.iter().position(|id| *id == sender.channel.id);
            let members = at.map(|at| whole[at].clone()).unwrap_or(Members {
                members: Vec::new(),
                users: Vec::new(),
            });
            details.push(ChannelDetails {
                channel,
                members: members.members,
                users: members.users,
            });
            continue;
        }
        let mut users = vec![message.user.clone()];
        for mentioned in &message.mentions {
            if users.iter().all(|user| user.id != mentioned.id) {
                users.push(mentioned.clone());
            }
        }
        let members = if users.len() == 1 {
            vec![sender.membership.clone()]
        } else {
            let ids: Vec<&str> = users.iter().map(|user| user.id.as_str()).collect();
            load::memberships(tx, &sender.channel.id, &ids).await?
        };
        details.push(ChannelDetails {
            channel,
            members,
            users,
        });
    }
    Ok(details)
}

/// Sends waiting to be grouped into one change, and the task that runs
/// them: while one group's transaction runs, the sends that arrive wait and
/// go together in the next. Used where the backend
/// [groups sends](Backend::groups_sends).
pub(crate) struct SendGroups {
    waiting: mpsc::UnboundedSender<WaitingSend>,
}

struct WaitingSend {
    request: SendRequest,
    answer: oneshot::Sender<StoreResult<Message>>,
}

impl SendGroups {
    /// Starts the task that runs groups on `backend`.
    pub(crate) fn start<B: Backend>(backend: Arc<B>) -> Self {
        let (waiting, arrivals) = mpsc::unbounded_channel();
        tokio::spawn(run_groups(backend, arrivals));
        SendGroups { waiting }
    }

    /// Sends `request` with the next group; its answer once that commits.
    pub(crate) async fn send(&self, request: SendRequest) -> StoreResult<Message> {
        let (answer, answered) = oneshot::channel();
        self.waiting
            .send(WaitingSend { request, answer })
            .map_err(|_| StoreError::Unavailable("the store is closing".into()))?;
        answered
            .await
            .map_err(|_| StoreError::Unavailable("the store is closing".into()))?
    }
}

/// Takes the sends waiting (at most [`MAX_GROUP`]) and runs them as one
/// change, until every sender is gone.
async fn run_groups<B: Backend>(
    backend: Arc<B>,
    mut arrivals: mpsc::UnboundedReceiver<WaitingSend>,
) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while arrivals.recv_many(&mut group, MAX_GROUP).await > 0 {
        let (requests, answers): (Vec<SendRequest>, Vec<_>) = group
            .drain(..)
            .map(|waiting| (waiting.request, waiting.answer))
            .unzip();
        metrics::histogram!("switchboard_store_send_group_size").record(requests.len() as f64);
        let requests = Arc::new(requests);
        match run_group(&*backend, requests.clone()).await {
            Ok(sent) => {
                for (answer, sent) in answers.into_iter().zip(sent) {
                    let _ = answer.send(sent.map_err(StoreError::from));
                }
            }
            Err(error) if requests.len() == 1 => {
                if let Some(answer) = answers.into_iter().next() {
                    let _ = answer.send(Err(error));
                }
            }
            // The database is unreachable or out of time: every send of the
            // group is answered so at once (run again one by one, each would
            // wait out the same outage in turn).
            Err(StoreError::Unavailable(cause)) => {
                let cause = cause.to_string();
                for answer in answers {
                    let _ = answer.send(Err(StoreError::Unavailable(cause.clone().into())));
                }
            }
            // The whole group failed otherwise (a database error): each send
            // runs again alone, so that one send's fault is answered to it only.
            Err(_) => {
                for (request, answer) in requests.iter().zip(answers) {
                    let _ = answer.send(send_alone(&*backend, request.clone()).await);
                }
            }
        }
    }
}

/// Sends `request` as a change of its own.
pub(crate) async fn send_alone<B: Backend>(
    backend: &B,
    request: SendRequest,
) -> StoreResult<Message> {
    let mut sent = run_group(backend, Arc::new(vec![request])).await?;
    Ok(sent.remove(0)?)
}

/// Runs `requests` as one committed change.
pub(crate) async fn run_group<B: Backend>(
    backend: &B,
    requests: Arc<Vec<SendRequest>>,
) -> StoreResult<Vec<Outcome<Message>>> {
    backend
        .write(move |tx| {
            let requests = requests.clone();
            Box::pin(async move { send_group(tx, &requests).await })
        })
        .await
}
