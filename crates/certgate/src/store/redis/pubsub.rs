//! The subscriber: one dedicated connection `SUBSCRIBE`d to the configured channels, whose
//! messages are forwarded to the store's broadcast channel (what `Store::subscribe` hands
//! out).
//!
//! - It connects to the configured addresses in turn (cluster: any node will do, since
//!   classic pub/sub is cluster-wide).
//! - When the connection is lost (Redis restarted, connection reset) or cannot be made, it
//!   retries after 0.5 s, then 1 s, then every 2 s, and subscribes again.
//! - When a subscription is established after any failure (including Redis being down when
//!   the store was opened), it emits a [`super::RECONNECTED_CHANNEL`] notification: messages
//!   may have been missed meanwhile.
//! - It sends no command while idle; when the store's health monitor sees Redis come back,
//!   it asks the subscriber to `PING` its connection, so a connection that died silently (no
//!   reset ever arrived) is replaced too.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::PubSub;
use redis::{Client, Msg, Value};
use tokio::sync::oneshot;

use super::super::Notification;
use super::conn::Shared;
use super::RECONNECTED_CHANNEL;

const RETRY_MIN_DELAY: Duration = Duration::from_millis(500);
const RETRY_MAX_DELAY: Duration = Duration::from_secs(2);

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
                if let Some(first) = first.take() {
                    let _ = first.send(());
                }
                if missed {
                    tracing::info!("Redis subscription re-established; notifying of the gap");
                    shared.deliver(Notification {
                        channel: RECONNECTED_CHANNEL.into(),
                        payload: String::new(),
                    });
                }
                delay = RETRY_MIN_DELAY;
                listen(&shared, pubsub).await;
                tracing::warn!("Redis subscription lost; subscribing again");
                missed = true;
                shared.request_probe();
            }
            Err(e) => {
                if let Some(first) = first.take() {
                    let _ = first.send(());
                }
                tracing::debug!(error = %e, "cannot subscribe to Redis yet");
                missed = true;
                next = next.wrapping_add(1);
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(RETRY_MAX_DELAY);
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

/// Forwards messages until the connection ends or fails a requested check.
async fn listen(shared: &Shared, pubsub: PubSub) {
    let (mut sink, mut stream) = pubsub.split();
    loop {
        tokio::select! {
            msg = stream.next() => match msg {
                Some(msg) => shared.deliver(to_notification(&msg)),
                None => return,
            },
            () = shared.sub_check.notified() => {
                let ping = tokio::time::timeout(shared.call_timeout(), sink.ping::<Value>());
                if !matches!(ping.await, Ok(Ok(_))) {
                    return;
                }
            }
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
