//! Input limits. They are part of the API contract and listed in the OpenAPI
//! document and the README.

/// Most characters (Unicode scalar values) in a message's text.
pub const MAX_MESSAGE_TEXT_CHARS: usize = 10_000;
/// Most attachments on one message (x-bees: 10).
pub const MAX_ATTACHMENTS: usize = 10;
/// Most elements on one message.
pub const MAX_ELEMENTS: usize = 10;
/// Most actions (buttons) in one `actions` element.
pub const MAX_ACTIONS_PER_ELEMENT: usize = 10;
/// Most characters in a button's text.
pub const MAX_BUTTON_TEXT_CHARS: usize = 80;
/// Most characters in an action handler's id.
pub const MAX_ACTION_ID_CHARS: usize = 128;
/// Most users mentioned in one message.
pub const MAX_MENTIONS: usize = 100;
/// Most characters in a channel subject.
pub const MAX_SUBJECT_CHARS: usize = 255;
/// Most characters in a channel description.
pub const MAX_DESCRIPTION_CHARS: usize = 2_000;
/// Most characters in a name, email, URL or other short profile field.
pub const MAX_SHORT_FIELD_CHARS: usize = 255;
/// Most characters in a URL (pictures, links).
pub const MAX_URL_CHARS: usize = 2_048;
/// Most characters in a reaction type.
pub const MAX_REACTION_TYPE_CHARS: usize = 64;
/// Most members added or invited in one request (and at channel creation).
pub const MAX_MEMBERS_PER_REQUEST: usize = 500;
/// Most people in one invite request.
pub const MAX_INVITEES: usize = 100;
/// Page size when `limit` is not given.
pub const DEFAULT_PAGE_LIMIT: u32 = 25;
/// Largest `limit`.
pub const MAX_PAGE_LIMIT: u32 = 100;
/// Largest `offset`.
pub const MAX_PAGE_OFFSET: u32 = 100_000;
/// Typing indicator time-to-live when none is given, in seconds.
pub const DEFAULT_TYPING_TTL_SECONDS: u32 = 10;
/// Longest typing indicator time-to-live, in seconds.
pub const MAX_TYPING_TTL_SECONDS: u32 = 120;
/// How long an `Idempotency-Key` is remembered, in microseconds (24 h).
pub const IDEMPOTENCY_WINDOW_MICROS: i64 = 24 * 60 * 60 * 1_000_000;
/// Most characters in an `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;
/// Longest delay of an integration's retry schedule: a day.
pub const MAX_RETRY_DELAY_MS: u64 = 24 * 3_600 * 1_000;
/// Most delays in an integration's retry schedule.
pub const MAX_RETRY_DELAYS: usize = 50;
/// Most event ids in one replay.
pub const MAX_REPLAY_EVENT_IDS: usize = 1_000;
/// Shortest request timeout an integration may set, in milliseconds.
pub const MIN_DELIVERY_TIMEOUT_MS: u32 = 1_000;
/// Longest request timeout an integration may set, in milliseconds.
pub const MAX_DELIVERY_TIMEOUT_MS: u32 = 60_000;
/// Most deliveries in flight an integration may ask for.
pub const MAX_IN_FLIGHT_PER_INTEGRATION: u32 = 256;
