//! Topic names, topic filters and how they match, shared by broker and devices.
//!
//! * A topic name is non-empty and has no `+` or `#`.
//! * In a filter, `+` is a whole level and `#` is a whole last level.
//! * A topic starting with `$` is not matched by a filter starting with a wildcard.
//! * `$share/{group}/{filter}` is a shared subscription: the group is a non-empty level
//!   without wildcards, the filter after it is an ordinary filter. This holds for every
//!   protocol version, as in Mosquitto, which offers shared subscriptions to 3.1.1 clients.

use core::fmt;

/// What is wrong with a topic name or filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TopicError {
    /// Empty name or filter (a PUBLISH may only leave it empty with a Topic Alias).
    Empty,
    /// `+` or `#` in a topic name.
    WildcardInName,
    /// `#` not alone in the last level, or `+` not alone in its level.
    MisplacedWildcard,
    /// `$share/` without a valid group and filter after it.
    InvalidSharedSubscription,
}

impl fmt::Display for TopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "empty",
            Self::WildcardInName => "wildcard in a topic name",
            Self::MisplacedWildcard => "wildcard not alone in its level, or # not last",
            Self::InvalidSharedSubscription => "shared subscription needs $share/{group}/{filter}",
        })
    }
}

const SHARE_PREFIX: &str = "$share/";

/// Checks a topic name (PUBLISH, will, Response Topic).
pub fn validate_name(name: &str) -> Result<(), TopicError> {
    if name.is_empty() {
        Err(TopicError::Empty)
    } else if name.bytes().any(|b| b == b'+' || b == b'#') {
        Err(TopicError::WildcardInName)
    } else {
        Ok(())
    }
}

/// Checks a topic filter (SUBSCRIBE, UNSUBSCRIBE), including `$share/` filters.
pub fn validate_filter(filter: &str) -> Result<(), TopicError> {
    match SharedFilter::parse(filter)? {
        Some(shared) => validate_plain_filter(shared.filter),
        None => validate_plain_filter(filter),
    }
}

fn validate_plain_filter(filter: &str) -> Result<(), TopicError> {
    if filter.is_empty() {
        return Err(TopicError::Empty);
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        let wild = level.bytes().any(|b| b == b'+' || b == b'#');
        let ok = !wild || level == "+" || (level == "#" && levels.peek().is_none());
        if !ok {
            return Err(TopicError::MisplacedWildcard);
        }
    }
    Ok(())
}

/// A `$share/{group}/{filter}` subscription split into its parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedFilter<'a> {
    pub group: &'a str,
    pub filter: &'a str,
}

impl<'a> SharedFilter<'a> {
    /// `Ok(None)` for an ordinary filter; the parts of a shared one; an error for a
    /// `$share/` filter without a valid group and filter. The inner filter is not
    /// validated here ([`validate_filter`] does both).
    pub fn parse(filter: &'a str) -> Result<Option<Self>, TopicError> {
        let Some(rest) = filter.strip_prefix(SHARE_PREFIX) else {
            return Ok(None);
        };
        let (group, filter) = rest
            .split_once('/')
            .ok_or(TopicError::InvalidSharedSubscription)?;
        if group.is_empty() || group.contains(['+', '#']) || filter.is_empty() {
            return Err(TopicError::InvalidSharedSubscription);
        }
        Ok(Some(Self { group, filter }))
    }
}

/// Whether `topic` (a valid name) matches `filter` (a valid, non-shared filter).
pub fn matches(filter: &str, topic: &str) -> bool {
    // [MQTT-4.7.2-1]: $-topics are not matched by filters starting with a wildcard.
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            // `#` also matches the parent level: "a/#" matches "a".
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(fl), Some(tl)) if fl == tl => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(validate_name("a/b"), Ok(()));
        assert_eq!(validate_name("/"), Ok(()));
        assert_eq!(validate_name(""), Err(TopicError::Empty));
        assert_eq!(validate_name("a/+"), Err(TopicError::WildcardInName));
        assert_eq!(validate_name("a#"), Err(TopicError::WildcardInName));
    }

    #[test]
    fn filters() {
        for ok in [
            "#",
            "+",
            "a/#",
            "+/+",
            "/+",
            "a/+/b",
            "sport/tennis/#",
            "$SYS/#",
            "+/",
        ] {
            assert_eq!(validate_filter(ok), Ok(()), "{ok}");
        }
        for bad in ["a/#/b", "a+", "a/b#", "#/", "a/+b", "##"] {
            assert_eq!(
                validate_filter(bad),
                Err(TopicError::MisplacedWildcard),
                "{bad}"
            );
        }
        assert_eq!(validate_filter(""), Err(TopicError::Empty));
    }

    #[test]
    fn shared_filters() {
        assert_eq!(
            SharedFilter::parse("$share/g1/a/+"),
            Ok(Some(SharedFilter {
                group: "g1",
                filter: "a/+"
            }))
        );
        assert_eq!(SharedFilter::parse("a/b"), Ok(None));
        assert_eq!(SharedFilter::parse("$shared/g/a"), Ok(None));
        for bad in [
            "$share/",
            "$share/g",
            "$share/g/",
            "$share//a",
            "$share/g+/a",
            "$share/#/a",
        ] {
            assert_eq!(
                validate_filter(bad),
                Err(TopicError::InvalidSharedSubscription),
                "{bad}"
            );
        }
        assert_eq!(
            validate_filter("$share/g/a/#/b"),
            Err(TopicError::MisplacedWildcard)
        );
    }

    #[test]
    fn matching_examples_from_the_specification() {
        // Section 4.7.1 of MQTT 3.1.1 and 5.0.
        assert!(matches("sport/tennis/player1/#", "sport/tennis/player1"));
        assert!(matches(
            "sport/tennis/player1/#",
            "sport/tennis/player1/ranking"
        ));
        assert!(matches(
            "sport/tennis/player1/#",
            "sport/tennis/player1/score/wimbledon"
        ));
        assert!(matches("sport/#", "sport"));
        assert!(matches("sport/tennis/+", "sport/tennis/player1"));
        assert!(!matches("sport/tennis/+", "sport/tennis/player1/ranking"));
        assert!(!matches("sport/+", "sport"));
        assert!(matches("sport/+", "sport/"));
        assert!(matches("+/+", "/finance"));
        assert!(matches("/+", "/finance"));
        assert!(!matches("+", "/finance"));
        assert!(matches("#", "a/b/c"));
        assert!(!matches("a/b", "a/b/c"));
        assert!(!matches("a/b/c", "a/b"));
    }

    #[test]
    fn dollar_topics() {
        assert!(!matches("#", "$SYS/broker/uptime"));
        assert!(!matches("+/broker/uptime", "$SYS/broker/uptime"));
        assert!(matches("$SYS/#", "$SYS/broker/uptime"));
        assert!(matches("$SYS/+/uptime", "$SYS/broker/uptime"));
    }
}
