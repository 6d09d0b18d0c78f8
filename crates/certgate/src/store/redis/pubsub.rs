//! The subscriber: one dedicated connection `SUBSCRIBE`d to the configured channels, whose
//! messages are forwarded to the store's broadcast channel (what `Store::subscribe` hands
//! out).
//!
//! - It connects to the configured addresses in turn (cluster: any node will do, since
//!   classic pub/sub is cluster-wide).
//! - When the connection is lost (Redis restarted, connection reset) or cannot be made, it
//!   retries after 0.5 s, then 1 s, then every 2 s, and subscribes again.
//! - As soon as the subscription is found lost (or cannot be made), it emits a
//!   [`super::SUBSCRIPTION_LOST_CHANNEL`] notification; when a subscription is established
//!   after any failure (including Redis being down when the store was opened), a
//!   [`super::RECONNECTED_CHANNEL`] notification: messages may have been missed meanwhile.
//! - While idle (no message for [`IDLE_PING`]) it `PING`s its connection, and when the
//!   store's health monitor sees Redis come back it asks for a `PING` too; an unanswered
//!   `PING` (within the store's round-trip bound) ends the connection, so one that died
//!   silently (no reset ever arrived, e.g. a dropped NAT entry) is noticed within
//!   `IDLE_PING` plus that bound rather than never.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::PubSub;
use redis::{Client, Msg, Value};
use tokio::sync::oneshot;

use super::super::Notification;
use super::conn::Shared;
use super::{RECONNECTED_CHANNEL, SUBSCRIPTION_LOST_CHANNEL};

const RETRY_MIN_DELAY: Duration = Duration::from_millis(500);
const RETRY_MAX_DELAY: Duration = Duration::from_secs(2);
/// The subscriber `PING`s its connection after this long without a message.
pub(super) const IDLE_PING: Duration = Duration::from_secs(1);

/// Runs until the store is dropped (aborted). `first` is answered after the first attempt
/// to subscribe, successful or not.
pub(super) async fn subscriber(
    shared: Arc<Shared>,
    clients: Vec<Client>,
    channels: Vec<String>,
    first: oneshot::Sender<()>,
) {
    let mut first = Some(first);
    let mut missed = false;
    let mut delay = RETRY_MIN_DELAY;
    let mut next = 0usize;
    loop {
        let client = &clients[next % clients.len()];
        match connect(&shared, client, &channels).await {
            Ok(pubsub) => {
                // The flag first, then the notice: a reader of the flag who subscribed
                // to notifications before reading it misses no transition.
                let changed = shared.set_subscribed(true);
                if let Some(first) = first.take() {
                    let _ = first.send(());
                }
                if missed || changed {
                    tracing::info!("Redis subscription established; notifying of the gap");
                    shared.deliver(Notification {
                        channel: RECONNECTED_CHANNEL.into(),
                        payload: String::new(),
                    });
                }
                delay = RETRY_MIN_DELAY;
                listen(&shared, pubsub).await;
                tracing::warn!("Redis subscription lost; subscribing again");
                lost(&shared);
                missed = true;
                shared.request_probe();
            }
            Err(e) => {
                if let Some(first) = first.take() {
                    let _ = first.send(());
                }
                tracing::debug!(error = %e, "cannot subscribe to Redis yet");
                lost(&shared);
                missed = true;
                next = next.wrapping_add(1);
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(RETRY_MAX_DELAY);
    }
}

/// Records the loss and announces it once per interruption.
fn lost(shared: &Shared) {
    if shared.set_subscribed(false) {
        shared.deliver(Notification {
            channel: SUBSCRIPTION_LOST_CHANNEL.into(),
            payload: String::new(),
        });
    }
}

/// Opens a pub/sub connection and subscribes, within the store's round-trip bound.
async fn connect(shared: &Shared, client: &Client, channels: &[String]) -> Result<PubSub, String> {
    let attempt = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(channels).await?;
        Ok::<_, redis::RedisError>(pubsub)
    };
    match tokio::time::timeout(shared.call_timeout(), attempt).await {
        Ok(Ok(pubsub)) => Ok(pubsub),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no reply within {:?}", shared.call_timeout())),
    }
}

/// Forwards messages until the connection ends or fails a check (requested, or after
/// [`IDLE_PING`] without a message).
async fn listen(shared: &Shared, pubsub: PubSub) {
    let (mut sink, mut stream) = pubsub.split();
    let idle = tokio::time::sleep(IDLE_PING);
    tokio::pin!(idle);
    loop {
        let check = tokio::select! {
            msg = stream.next() => match msg {
                Some(msg) => {
                    shared.deliver(to_notification(&msg));
                    idle.as_mut().reset(tokio::time::Instant::now() + IDLE_PING);
                    false
                }
                None => return,
            },
            () = shared.sub_check.notified() => true,
            () = &mut idle => true,
        };
        if check {
            let ping = tokio::time::timeout(shared.call_timeout(), sink.ping::<Value>());
            if !matches!(ping.await, Ok(Ok(_))) {
                tracing::warn!("Redis subscription did not answer PING; reconnecting");
                return;
            }
            idle.as_mut().reset(tokio::time::Instant::now() + IDLE_PING);
        }
    }
}

/// Never fails: a channel or payload that is not UTF-8 is converted lossily.
fn to_notification(msg: &Msg) -> Notification {
    let channel = match msg.get_channel::<Vec<u8>>() {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => String::new(),
    };
    Notification {
        channel,
        payload: String::from_utf8_lossy(msg.get_payload_bytes()).into_owned(),
    }
}
