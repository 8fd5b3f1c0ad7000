//! MQTT topic names and filters as they appear in `/ps/{topic}` paths.

use midge_wire::topic;
use thiserror::Error;

/// Why a path cannot be an MQTT topic or filter: answered with 4.00 Bad Request.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TopicError {
    #[error("empty topic")]
    Empty,
    #[error("topic is not UTF-8")]
    NotUtf8,
    #[error("topic contains U+0000")]
    Nul,
    #[error("wildcards are not allowed in a topic to publish to")]
    Wildcard,
    #[error("'#' must be the last level and '+' a whole level")]
    BadWildcard,
    #[error("topic longer than 65535 bytes")]
    TooLong,
}

/// Joins the Uri-Path segments after `ps` with `/`. The client has already percent-decoded
/// each segment (RFC 7252 §6.4), so `%2F` inside a segment arrives as a `/` and simply adds a
/// level, as it would in the MQTT topic anyway.
pub fn join_segments(segments: &[Vec<u8>]) -> Result<String, TopicError> {
    let mut topic = String::new();
    for (i, segment) in segments.iter().enumerate() {
        if i > 0 {
            topic.push('/');
        }
        topic.push_str(std::str::from_utf8(segment).map_err(|_| TopicError::NotUtf8)?);
    }
    if topic.is_empty() {
        return Err(TopicError::Empty);
    }
    if topic.contains('\0') {
        return Err(TopicError::Nul);
    }
    if topic.len() > usize::from(u16::MAX) {
        return Err(TopicError::TooLong);
    }
    Ok(topic)
}

/// A topic to publish to: no wildcards.
pub fn topic_name(segments: &[Vec<u8>]) -> Result<String, TopicError> {
    let topic = join_segments(segments)?;
    topic::validate_name(&topic).map_err(|_| TopicError::Wildcard)?;
    Ok(topic)
}

/// A subscription filter: wildcards allowed where MQTT allows them.
pub fn topic_filter(segments: &[Vec<u8>]) -> Result<String, TopicError> {
    let filter = join_segments(segments)?;
    topic::validate_filter(&filter).map_err(|_| TopicError::BadWildcard)?;
    Ok(filter)
}

pub fn has_wildcard(filter: &str) -> bool {
    filter.contains(['+', '#'])
}

/// Whether `topic` matches `filter`: the codec's rule, the broker's too.
pub use midge_wire::topic::matches;

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(path: &str) -> Vec<Vec<u8>> {
        path.split('/').map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn joins_levels() {
        assert_eq!(topic_name(&segs("a/b/c")).unwrap(), "a/b/c");
        assert_eq!(topic_name(&segs("a//c")).unwrap(), "a//c");
        assert_eq!(topic_name(&[]), Err(TopicError::Empty));
        assert_eq!(topic_name(&segs("")), Err(TopicError::Empty));
        assert_eq!(topic_name(&[vec![0xff]]), Err(TopicError::NotUtf8));
        assert_eq!(topic_name(&segs("a\0b")), Err(TopicError::Nul));
    }

    #[test]
    fn publish_topics_have_no_wildcards() {
        assert_eq!(topic_name(&segs("a/+")), Err(TopicError::Wildcard));
        assert_eq!(topic_name(&segs("a/#")), Err(TopicError::Wildcard));
        assert_eq!(topic_name(&segs("a/b#")), Err(TopicError::Wildcard));
    }

    #[test]
    fn filters_follow_mqtt_rules() {
        assert_eq!(topic_filter(&segs("a/+/c/#")).unwrap(), "a/+/c/#");
        assert_eq!(topic_filter(&segs("#")).unwrap(), "#");
        assert_eq!(topic_filter(&segs("a/#/c")), Err(TopicError::BadWildcard));
        assert_eq!(topic_filter(&segs("a/b+")), Err(TopicError::BadWildcard));
        assert_eq!(topic_filter(&segs("a#")), Err(TopicError::BadWildcard));
    }

    #[test]
    fn matching() {
        assert!(matches("a/+/c", "a/b/c"));
        assert!(!matches("a/+/c", "a/b/d"));
        assert!(matches("a/#", "a"));
        assert!(matches("a/#", "a/b/c"));
        assert!(matches("#", "x/y"));
        assert!(!matches("#", "$SYS/x"));
        assert!(!matches("+/x", "$SYS/x"));
        assert!(matches("$SYS/#", "$SYS/x"));
        assert!(!matches("a/b", "a/b/c"));
        assert!(!matches("a/b/c", "a/b"));
        assert!(matches("a//b", "a//b"));
        assert!(matches("+/+", "/x"));
    }
}
