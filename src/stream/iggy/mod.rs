//! Apache Iggy topics as tables: `CREATE EXTERNAL TABLE t STORED AS IGGY LOCATION
//! 'iggy://user:password@host:port/stream/topic'`.
//!
//! The Iggy [`Platform`] (SDK `iggy` 0.10, server 0.8): metadata from `get_topic` (a
//! snapshot ends at each partition's current offset when the query is planned), reads by
//! explicit offset with nothing stored on the server ([`source::IggySource`], one connection
//! per reader), writes to the partition of each row's variant key with an id made from key and
//! content, flushed with fsync before an `INSERT` reports success ([`sink::IggySink`]).
//! Message keys travel in the user header `key`. Iggy timestamps are microseconds; `_timestamp`
//! shows milliseconds like Kafka's.

pub mod client;
pub mod sink;
pub mod source;

use std::sync::Arc;

use async_trait::async_trait;
use iggy::prelude::{
    CompressionAlgorithm, Consumer, Identifier, IggyError, IggyExpiry, IggyTimestamp, MaxTopicSize,
    PollingStrategy, StreamClient, TcpClient, TopicClient, TopicDetails,
};

use self::client::{Endpoint, bounded};
use super::StreamError;
use super::options::{Start, TopicOptions};
use super::platform::{PartitionRange, PartitionSource, Platform};
use super::seek::Seek;
use super::sink::TopicSink;
use crate::VcfError;

/// The user header holding a message's key.
pub const KEY_HEADER: &str = "key";

/// An Iggy topic.
#[derive(Debug, Clone)]
pub struct IggyPlatform {
    endpoint: Endpoint,
    /// A logged-in client kept between metadata calls (shared by clones).
    spare: client::Spare,
    stream: String,
    topic: String,
    options: TopicOptions,
}

/// What a location holds: `[iggy://][user:password@]host:port/stream/topic`.
#[derive(Debug, PartialEq, Eq)]
pub struct Location {
    /// `host:port`.
    pub address: String,
    /// Stream name.
    pub stream: String,
    /// Topic name.
    pub topic: String,
    /// User name and password, when the location has them.
    pub credentials: Option<(String, String)>,
}

/// `%40` → `@` and the like, for credentials inside a location.
fn percent_decode(s: &str) -> Result<String, VcfError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    VcfError::Invalid("iggy location: a '%' not followed by two hex digits".into())
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| VcfError::Invalid("iggy location: credentials are not UTF-8".into()))
}

/// Reads `[iggy://][user:password@]host:port/stream/topic` (credentials percent-encoded).
pub fn parse_location(location: &str) -> Result<Location, VcfError> {
    let bad = || {
        VcfError::Invalid(format!(
            "iggy location '{}': expected 'iggy://user:password@host:port/stream/topic'",
            redact(location)
        ))
    };
    let plain = location
        .strip_prefix("iggy://")
        .or_else(|| location.strip_prefix("iggy+tcp://"))
        .unwrap_or(location);
    let (credentials, rest) = match plain.rsplit_once('@') {
        Some((userinfo, rest)) => {
            let (user, password) = userinfo.split_once(':').ok_or_else(bad)?;
            if user.is_empty() || password.is_empty() {
                return Err(bad());
            }
            (
                Some((percent_decode(user)?, percent_decode(password)?)),
                rest,
            )
        }
        None => (None, plain),
    };
    let mut parts = rest.split('/');
    let (Some(address), Some(stream), Some(topic), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let port_ok = address
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !port_ok || stream.is_empty() || topic.is_empty() {
        return Err(bad());
    }
    if stream.len() > 255 || topic.len() > 255 {
        return Err(VcfError::Invalid(format!(
            "iggy location '{}': stream and topic names are at most 255 bytes",
            redact(location)
        )));
    }
    Ok(Location {
        address: address.to_string(),
        stream: stream.to_string(),
        topic: topic.to_string(),
        credentials,
    })
}

/// A location with its password replaced by `***`, for messages.
pub fn redact(location: &str) -> String {
    let (scheme, rest) = match location.find("://") {
        Some(i) => location.split_at(i + 3),
        None => ("", location),
    };
    match rest.rsplit_once('@') {
        Some((userinfo, tail)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}{user}:***@{tail}")
        }
        None => location.to_string(),
    }
}

impl IggyPlatform {
    /// The topic at `location`; credentials from the location, else the `user`/`password`
    /// options (nothing is contacted yet).
    pub fn new(location: &str, options: TopicOptions) -> Result<Self, VcfError> {
        let parsed = parse_location(location)?;
        let (user, password) = match (parsed.credentials, &options.user, &options.password) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(VcfError::Invalid(
                    "iggy table: credentials both in the location and in OPTIONS; give them once"
                        .into(),
                ));
            }
            (Some((u, p)), None, None) => (u, p),
            (None, Some(u), Some(p)) => (u.clone(), p.0.clone()),
            (None, _, _) => {
                return Err(VcfError::Invalid(format!(
                    "iggy table '{}': no credentials; use iggy://user:password@host:port/stream/topic or OPTIONS ('user' '…', 'password' '…')",
                    redact(location)
                )));
            }
        };
        if options.partitions as u32 > 1000 {
            return Err(VcfError::Invalid(
                "option 'partitions': Iggy makes at most 1000 partitions per topic".into(),
            ));
        }
        Ok(IggyPlatform {
            spare: client::Spare::default(),
            endpoint: Endpoint {
                address: parsed.address,
                user,
                password,
                timeout: options.timeout,
            },
            stream: parsed.stream,
            topic: parsed.topic,
            options,
        })
    }

    fn target_name(&self) -> String {
        format!(
            "iggy {}/{}/{}",
            self.endpoint.address, self.stream, self.topic
        )
    }

    fn stream_id(&self) -> Result<Identifier, StreamError> {
        Identifier::named(&self.stream)
            .map_err(|e| client::error(&self.target_name(), "bad stream name", &e))
    }

    fn topic_id(&self) -> Result<Identifier, StreamError> {
        Identifier::named(&self.topic)
            .map_err(|e| client::error(&self.target_name(), "bad topic name", &e))
    }

    /// The topic's details (`None`: it does not exist).
    async fn details(&self, client: &TcpClient) -> Result<Option<TopicDetails>, StreamError> {
        let target = self.target_name();
        bounded(
            &target,
            "cannot read the topic's metadata",
            self.endpoint.timeout,
            client.get_topic(&self.stream_id()?, &self.topic_id()?),
        )
        .await
    }

    /// The first offset at or after `ms` (ms since the epoch) in `partition`, else `end`.
    async fn offset_at(
        &self,
        client: &TcpClient,
        partition: u32,
        ms: i64,
        end: i64,
    ) -> Result<i64, StreamError> {
        let micros = u64::try_from(ms.max(0)).unwrap_or(0).saturating_mul(1000);
        let polled = bounded(
            &self.target_name(),
            "cannot look up offsets by time",
            self.endpoint.timeout,
            iggy::prelude::MessageClient::poll_messages(
                client,
                &self.stream_id()?,
                &self.topic_id()?,
                Some(partition),
                &self.consumer()?,
                &PollingStrategy::timestamp(IggyTimestamp::from(micros)),
                1,
                false,
            ),
        )
        .await?;
        Ok(polled
            .messages
            .first()
            .map_or(end, |m| m.header.offset as i64))
    }

    /// The consumer reads are made as (nothing is stored for it: reads name their offsets).
    fn consumer(&self) -> Result<Consumer, StreamError> {
        Ok(Consumer::new(
            Identifier::named(&self.options.group_id)
                .map_err(|e| client::error(&self.target_name(), "bad group.id", &e))?,
        ))
    }

    async fn ensure_with(&self, client: &TcpClient) -> Result<(), StreamError> {
        let target = self.target_name();
        let timeout = self.endpoint.timeout;
        let stream = self.stream_id()?;
        let exists = bounded(
            &target,
            "cannot read the stream's metadata",
            timeout,
            client.get_stream(&stream),
        )
        .await?;
        if exists.is_none() {
            // made meanwhile by someone else: as good as made here
            let create = async {
                match client.create_stream(&self.stream).await {
                    Err(IggyError::StreamNameAlreadyExists(_)) => Ok(()),
                    other => other.map(|_| ()),
                }
            };
            bounded(&target, "cannot create the stream", timeout, create).await?;
        }
        if self.details(client).await?.is_some() {
            return Ok(());
        }
        let create = async {
            let created = client
                .create_topic(
                    &stream,
                    &self.topic,
                    self.options.partitions as u32,
                    CompressionAlgorithm::None,
                    None,
                    IggyExpiry::ServerDefault,
                    MaxTopicSize::ServerDefault,
                )
                .await;
            match created {
                Err(IggyError::TopicNameAlreadyExists(..)) => Ok(()),
                other => other.map(|_| ()),
            }
        };
        bounded(&target, "cannot create the topic", timeout, create).await
    }

    async fn ranges_with(
        &self,
        client: &TcpClient,
        seek: &Seek,
    ) -> Result<Vec<PartitionRange>, StreamError> {
        let Some(details) = self.details(client).await? else {
            return Err(StreamError::permanent(
                self.target_name(),
                "topic does not exist",
            ));
        };
        let mut ranges = Vec::new();
        for p in &details.partitions {
            let partition = p.id as i32;
            if let Some(wanted) = &seek.partitions
                && !wanted.contains(&partition)
            {
                continue;
            }
            // current_offset is the last offset written (0 also when nothing was)
            let high = if p.messages_count == 0 && p.current_offset == 0 {
                0
            } else {
                p.current_offset as i64 + 1
            };
            let mut start = match self.options.start {
                Start::Earliest => 0,
                Start::Latest => high,
                Start::Timestamp(ms) => self.offset_at(client, p.id, ms, high).await?,
            };
            if let Some(ms) = seek.from_timestamp {
                start = start.max(self.offset_at(client, p.id, ms, high).await?);
            }
            ranges.push(seek.range(partition, start, high, self.options.follow));
        }
        ranges.sort_by_key(|r| r.partition);
        Ok(ranges)
    }
}

#[async_trait]
impl Platform for IggyPlatform {
    fn target(&self) -> String {
        self.target_name()
    }

    fn scan_name(&self) -> &'static str {
        "IggyExec"
    }

    fn has_message_ids(&self) -> bool {
        true
    }

    async fn ensure_topic(&self) -> Result<(), StreamError> {
        let target = self.target_name();
        client::with_client(&self.spare, &self.endpoint, &target, |client| async move {
            self.ensure_with(&client).await
        })
        .await
    }

    async fn plan_ranges(&self, seek: &Seek) -> Result<Vec<PartitionRange>, StreamError> {
        let target = self.target_name();
        client::with_client(&self.spare, &self.endpoint, &target, |client| async move {
            self.ranges_with(&client, seek).await
        })
        .await
    }

    fn open_source(
        &self,
        ranges: &[PartitionRange],
        keys: bool,
    ) -> Result<Box<dyn PartitionSource>, StreamError> {
        Ok(Box::new(source::IggySource::open(
            self.clone(),
            ranges,
            keys,
        )?))
    }

    fn sink(&self) -> Result<Arc<dyn TopicSink>, StreamError> {
        Ok(Arc::new(sink::IggySink::new(self.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_give_address_stream_topic_and_credentials() {
        assert_eq!(
            parse_location("iggy://vcfq:p%40ss:w@127.0.0.1:8090/genomics/calls").unwrap(),
            Location {
                address: "127.0.0.1:8090".into(),
                stream: "genomics".into(),
                topic: "calls".into(),
                credentials: Some(("vcfq".into(), "p@ss:w".into())),
            }
        );
        let plain = parse_location("localhost:8090/s/t").unwrap();
        assert_eq!(plain.credentials, None);
        assert_eq!(plain.address, "localhost:8090");
        for bad in [
            "iggy://127.0.0.1:8090/s",
            "iggy://127.0.0.1/s/t",
            "iggy://u@127.0.0.1:8090/s/t",
            "iggy://u:p@127.0.0.1:8090/s/t/x",
            "iggy://127.0.0.1:99999/s/t",
        ] {
            assert!(parse_location(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_never_show_the_password() {
        let e = parse_location("iggy://vcfq:secret@127.0.0.1/s")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("secret"), "{e}");
        assert!(e.contains("vcfq:***@127.0.0.1/s"), "{e}");
        let e = IggyPlatform::new("127.0.0.1:8090/s/t", TopicOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("no credentials"), "{e}");
        let p = IggyPlatform::new(
            "iggy://vcfq:secret@127.0.0.1:8090/s/t",
            TopicOptions::default(),
        )
        .unwrap();
        assert_eq!(p.target(), "iggy 127.0.0.1:8090/s/t");
        assert!(!format!("{p:?}").contains("secret"));
    }
}
