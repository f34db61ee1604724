//! Whole messages from their rows: authors, mentions and reactions.

use std::collections::{BTreeMap, HashMap};

use switchboard_protocol::{
    Element, Message, MessageAttachment, MessageQuote, MessageType, Reaction, Timestamp, User,
};
use switchboard_store::StoreError;

use crate::failure::Outcome;
use crate::rows::MessageRow;

/// How many of a message's reactions `latestReactions` shows.
pub const LATEST_REACTIONS: usize = 10;

/// A reaction as read: message id, user id, reaction type, when — newest first.
pub type ReactionRow = (String, String, String, i64);

/// The users the messages need, sorted and once each: authors and the mentioned.
pub fn user_ids(rows: &[MessageRow]) -> Outcome<Vec<String>> {
    let mut ids: Vec<String> = rows.iter().map(|row| row.user_id.clone()).collect();
    for row in rows {
        let mentioned: Vec<String> = serde_json::from_str(&row.mentions)?;
        ids.extend(mentioned);
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// The messages of these rows, in the same order, given the users of
/// [`user_ids`] by id and the messages' reactions newest first.
pub fn assemble(
    rows: Vec<MessageRow>,
    users: &HashMap<String, User>,
    reaction_rows: Vec<ReactionRow>,
) -> Outcome<Vec<Message>> {
    let mut reactions: HashMap<String, Vec<Reaction>> = HashMap::new();
    for (message_id, user_id, reaction_type, created_at) in reaction_rows {
        reactions.entry(message_id).or_default().push(Reaction {
            reaction_type,
            user_id,
            created_at: Timestamp::from_unix_micros(created_at),
        });
    }
    rows.into_iter()
        .map(|row| {
            let mentioned: Vec<String> = serde_json::from_str(&row.mentions)?;
            let user = users
                .get(&row.user_id)
                .cloned()
                .ok_or_else(|| StoreError::not_found("user", &row.user_id))?;
            let all_reactions = reactions.remove(&row.id).unwrap_or_default();
            let mut reaction_counts = BTreeMap::new();
            for reaction in &all_reactions {
                *reaction_counts
                    .entry(reaction.reaction_type.clone())
                    .or_insert(0u64) += 1;
            }
            let elements: Vec<Element> = serde_json::from_str(&row.elements)?;
            let mut attachments: Vec<MessageAttachment> = serde_json::from_str(&row.attachments)?;
            // Attachments stored before fsId was written carry the file id there too.
            for attachment in attachments.iter_mut().filter(|a| a.fs_id.is_empty()) {
                attachment.fs_id = attachment.id.clone();
            }
            let quote: Option<MessageQuote> =
                row.quote.as_deref().map(serde_json::from_str).transpose()?;
            Ok(Message {
                message_id: row.id,
                channel_id: row.channel_id,
                message_type: MessageType::from(row.message_type.as_str()),
                text: row.text,
                elements: Some(elements),
                attachments,
                mentions: mentioned
                    .iter()
                    .filter_map(|id| users.get(id).cloned())
                    .collect(),
                giphy: None,
                latest_reactions: all_reactions.into_iter().take(LATEST_REACTIONS).collect(),
                reaction_counts,
                created_at: Timestamp::from_unix_micros(row.created_at),
                updated_at: row.updated_at.map(Timestamp::from_unix_micros),
                user,
                quote,
                forward: None,
                sms: false,
                silent: row.silent,
                event: None,
                extra: Default::default(),
            })
        })
        .collect()
}
