//! Room history shared by every node: one Redis Stream per room.
//!
//! An event of a room with history is numbered and kept by one Lua script
//! (atomic in Redis, whichever node runs it): the room's metadata hash
//! holds its epoch and last offset, the stream holds the events (`XADD`
//! with `MAXLEN` for `size`, `XTRIM MINID` for `ttlSeconds`, both keys
//! expiring when idle). Any node replays what any other kept: resuming
//! reads the events after the client's offset from the stream.
//!
//! What Redis does not give: an order between two nodes' publishes of the
//! same room (numbered 5 on node A and 6 on node B, pub/sub may deliver 6
//! first), and a publish that is lost after its event was kept (pub/sub is
//! at most once; a node can die between the two). The client keeps
//! events that arrive ahead of a missing one and asks for the missing ones
//! (`evcontract:fill`) when they do not follow (see the client's
//! `recovery` module).

use std::sync::Arc;

use fred::prelude::ClientLike;
use fred::types::{ClusterHash, CustomCommand, Value as RedisValue};
use serde_json::value::RawValue;

use super::spec::HistorySpec;
use crate::wire::{Offset, RecoveryGap};

/// The room metadata outlives the events by this much at least, so that a
/// client coming back after the events expired is told `expired`, not
/// that the history is new (`epoch`).
const META_TTL_MS: u64 = 24 * 3600 * 1000;

/// The start of both scripts: the time, the room's epoch (a new one, with
/// its metadata, when the history is gone), and the events older than the
/// time to live trimmed (`XTRIM MINID`: stream ids are times), noted as
/// the reason earlier events are gone.
///
/// KEYS: stream, meta. ARGV: ttl ms, meta ttl ms, new epoch, then the
/// script's own.
macro_rules! prelude {
    () => {
        r"
local ttl = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local epoch = redis.call('HGET', KEYS[2], 'epoch')
if not epoch then
  epoch = ARGV[3]
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'epoch', epoch, 'seq', 0)
  redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[2]))
end
if redis.call('XTRIM', KEYS[1], 'MINID', tostring(now - ttl)) > 0 then
  redis.call('HSET', KEYS[2], 'why', 'expired')
end
"
    };
}

/// Keeps one event: `{epoch, offset}`.
///
/// KEYS[3], when given: the event's push token (a keyed handler's n-th
/// event of the room); an event already kept under it is not kept again,
/// its epoch and offset are the answer.
///
/// ARGV after the prelude's: size, event, payload, the token's time to
/// live in ms.
const PUSH: &str = concat!(
    r"
if KEYS[3] then
  local kept = redis.call('GET', KEYS[3])
  if kept then
    local at = string.find(kept, ' ', 1, true)
    return {string.sub(kept, 1, at - 1), string.sub(kept, at + 1)}
  end
end
",
    prelude!(),
    r"
local size = tonumber(ARGV[4])
if redis.call('XLEN', KEYS[1]) >= size then
  redis.call('HSET', KEYS[2], 'why', 'trimmed')
end
local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
redis.call('XADD', KEYS[1], 'MAXLEN', size, '*', 'o', seq, 'e', ARGV[5], 'p', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[2]))
if KEYS[3] then
  redis.call('SET', KEYS[3], epoch .. ' ' .. seq, 'PX', tonumber(ARGV[7]))
end
return {epoch, tostring(seq)}
"
);

/// Where a room stands, and the events after an offset:
/// `{epoch, last, why, (offset, event, payload)*}`. The events are given
/// only when the epoch is the one asked for and they are all still kept
/// (the caller checks that the first follows the offset).
///
/// ARGV after the prelude's: epoch, offset.
const READ: &str = concat!(
    prelude!(),
    r"
local seq = tonumber(redis.call('HGET', KEYS[2], 'seq'))
local out = {epoch, tostring(seq), redis.call('HGET', KEYS[2], 'why') or ''}
local from = tonumber(ARGV[5])
if ARGV[4] ~= epoch or from == nil or from >= seq then
  return out
end
local entries = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', seq - from)
for i = #entries, 1, -1 do
  local f = entries[i][2]
  out[#out + 1] = f[2]
  out[#out + 1] = f[4]
  out[#out + 1] = f[6]
end
return out
"
);

/// The room histories of one namespace in Redis.
#[derive(Clone)]
pub(crate) struct SharedHistory {
    client: fred::clients::SubscriberClient,
    /// `<prefix>:history:<namespace>:`
    keys: Arc<str>,
}

impl std::fmt::Debug for SharedHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedHistory")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

/// An event read back from a room's stream.
pub(crate) struct Kept {
    pub(crate) offset: u64,
    pub(crate) event: String,
    pub(crate) payload: Box<RawValue>,
}

/// What a read found: the room's epoch and last offset, and the events
/// after the offset asked for, or why some are gone.
pub(crate) struct Read {
    pub(crate) epoch: String,
    pub(crate) last: u64,
    pub(crate) events: Result<Vec<Kept>, RecoveryGap>,
}

impl SharedHistory {
    pub(crate) fn new(client: fred::clients::SubscriberClient, prefix: &str, ns: &str) -> Self {
        Self {
            client,
            keys: format!("{prefix}:history:{ns}:").into(),
        }
    }

    fn keys(&self, room: &str) -> Vec<String> {
        vec![
            format!("{}{room}:events", self.keys),
            format!("{}{room}:meta", self.keys),
        ]
    }

    async fn eval(
        &self,
        script: &str,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<Vec<RedisValue>, String> {
        let mut argv: Vec<RedisValue> = Vec::with_capacity(5 + args.len());
        argv.push(script.into());
        argv.push((keys.len() as i64).into());
        argv.extend(keys.into_iter().map(RedisValue::from));
        argv.extend(args.into_iter().map(RedisValue::from));
        let value: RedisValue = self
            .client
            .custom(
                CustomCommand::new_static("EVAL", ClusterHash::Random, false),
                argv,
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(value.into_array())
    }

    /// Numbers and keeps `event` of `room`: its offset. With a `token`
    /// (and how long to remember it), an event kept before under the same
    /// token is not kept again: its offset is the answer.
    pub(crate) async fn push(
        &self,
        room: &str,
        spec: HistorySpec,
        event: &str,
        payload: &RawValue,
        token: Option<(String, std::time::Duration)>,
    ) -> Result<Offset, String> {
        let mut keys = self.keys(room);
        let mut token_ttl = 0;
        if let Some((token, ttl)) = token {
            keys.push(format!("{}{room}:pushed:{token}", self.keys));
            token_ttl = ttl.as_millis().max(1);
        }
        let out = self
            .eval(
                PUSH,
                keys,
                vec![
                    ttl_ms(spec).to_string(),
                    META_TTL_MS.max(ttl_ms(spec)).to_string(),
                    crate::wire::new_epoch(),
                    spec.size.max(1).to_string(),
                    event.to_owned(),
                    payload.get().to_owned(),
                    token_ttl.to_string(),
                ],
            )
            .await?;
        let (epoch, offset) = match out.as_slice() {
            [epoch, offset] => (text(epoch)?, number(offset)?),
            _ => {
                return Err(format!(
                    "unexpected answer from the history script: {out:?}"
                ));
            }
        };
        Ok(Offset {
            room: room.to_owned(),
            epoch,
            offset,
        })
    }

    /// Where `room` stands, and the events after `offset` of `epoch` (none
    /// asked when `epoch` is empty).
    pub(crate) async fn read(
        &self,
        room: &str,
        spec: HistorySpec,
        epoch: &str,
        offset: u64,
    ) -> Result<Read, String> {
        let out = self
            .eval(
                READ,
                self.keys(room),
                vec![
                    ttl_ms(spec).to_string(),
                    META_TTL_MS.max(ttl_ms(spec)).to_string(),
                    crate::wire::new_epoch(),
                    epoch.to_owned(),
                    offset.to_string(),
                ],
            )
            .await?;
        let [current, last, why, rest @ ..] = out.as_slice() else {
            return Err(format!(
                "unexpected answer from the history script: {out:?}"
            ));
        };
        let (current, last, why) = (text(current)?, number(last)?, text(why)?);
        let mut events = Vec::with_capacity(rest.len() / 3);
        for entry in rest.chunks(3) {
            let [o, e, p] = entry else {
                return Err("a history entry has missing fields".to_owned());
            };
            let payload = RawValue::from_string(text(p)?).map_err(|e| e.to_string())?;
            events.push(Kept {
                offset: number(o)?,
                event: text(e)?,
                payload,
            });
        }
        let events = if epoch.is_empty() {
            Ok(Vec::new())
        } else if epoch != current || offset > last {
            Err(RecoveryGap::Epoch)
        } else if offset < last
            && events
                .first()
                .is_none_or(|first| first.offset != offset + 1)
        {
            Err(match why.as_str() {
                "expired" => RecoveryGap::Expired,
                _ => RecoveryGap::Trimmed,
            })
        } else {
            Ok(events)
        };
        Ok(Read {
            epoch: current,
            last,
            events,
        })
    }
}

fn ttl_ms(spec: HistorySpec) -> u64 {
    u64::from(spec.ttl_seconds.max(1)) * 1000
}

fn text(value: &RedisValue) -> Result<String, String> {
    value
        .as_string()
        .ok_or_else(|| format!("expected text from Redis, got {value:?}"))
}

fn number(value: &RedisValue) -> Result<u64, String> {
    text(value)?
        .parse()
        .map_err(|_| format!("expected a number from Redis, got {value:?}"))
}
