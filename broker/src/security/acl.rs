//! Mosquitto-compatible ACL files (`acl_file`): who may publish, receive and subscribe.
//!
//! ```text
//! # comment
//! topic [read|write|readwrite|deny] <filter>     # before any `user` line: anonymous clients
//! user <username>                                # the `topic` lines after it: this user
//! pattern [read|write|readwrite|deny] <filter>   # every client; %c = client id, %u = username
//! ```
//!
//! Semantics, following Mosquitto 2.0's `security_default.c` and 2.1's pattern matching
//! (`mosquitto_topic_matches_sub_with_pattern`, `mosquitto_sub_matches_acl`):
//!
//! * The access word defaults to `readwrite`; `deny` grants nothing and wins over every
//!   grant that applies to the same client and topic (`topic` and `pattern` alike).
//! * With a file loaded, anything not granted is denied; an empty file denies everything.
//! * A client sees the `topic` rules of its own `user` section (anonymous clients: the
//!   `topic` lines before the first `user` line) plus every `pattern` rule.
//! * `%c`/`%u` are substituted only when they are a whole level; `a/%c-x` is the literal
//!   level `%c-x`. The value is compared with one level, never split or treated as a
//!   wildcard: a client id or username that is empty or contains `/`, `+` or `#` never
//!   matches such a level, and `%u` never matches for an anonymous client.
//! * A client id or username containing `+` or `#` gets no grant from any `pattern` rule
//!   (Mosquitto's "ACL denying access to client with dangerous client id").
//! * A topic starting with `$` is matched only by a rule whose first level is that literal
//!   `$` level (not a wildcard, not `%c`/`%u`).
//! * Clients may never publish to `$SYS…` (except `$SYS/broker/connection/+/state`, for
//!   bridge notifications, when a rule grants it) nor to `$share…`.
//! * Every delivered message is checked with [`AclFile::allows`] (`Read`) for its topic,
//!   so what a client receives never depends on the SUBSCRIBE check.
//! * A SUBSCRIBE filter (for `$share/{group}/{filter}`: the inner filter) is refused only
//!   when it could never deliver anything: when no topic it can match is readable. That is
//!   the case when no read grant overlaps the filter, when an applicable `deny` rule is
//!   equal to or more general than the filter, or when the deny rules together leave
//!   nothing of what the grants overlap. Otherwise it is granted and deliveries are
//!   filtered per topic: with `topic read #` and `topic deny secret/#`, a client may
//!   subscribe to `#` and never receives `secret/…`. This is for Mosquitto compatibility:
//!   its `acl_file` does not check SUBSCRIBE at all and only filters deliveries, so files
//!   written that way keep working; refusing what can never deliver tells the client so in
//!   its SUBACK (0x80; 0x87 in MQTT 5) instead of leaving it waiting.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use midge_wire::topic::{self, SharedFilter};

use crate::config::ConfigError;

/// The kind of access asked for a topic name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Receive a message published on the topic.
    Read,
    /// Publish to the topic.
    Write,
}

/// Why an ACL file was refused: the same error as a configuration file's, naming the
/// file (and the line, for content errors) and saying what to write instead.
pub type AclError = ConfigError;

/// A parsed ACL file, ready for checks on every PUBLISH, delivery and SUBSCRIBE.
#[derive(Debug, Clone, Default)]
pub struct AclFile {
    /// `topic` lines before the first `user` line: clients without a username.
    anonymous: RuleSet,
    /// `topic` lines of each `user` section (sections for the same name are merged).
    users: HashMap<Box<str>, RuleSet>,
    /// `pattern` lines: every client.
    patterns: RuleSet,
}

#[derive(Debug, Clone, Default)]
struct RuleSet {
    deny: Vec<Rule>,
    grant: Vec<Rule>,
}

impl RuleSet {
    fn push(&mut self, rule: Rule) {
        if rule.read || rule.write {
            self.grant.push(rule);
        } else {
            self.deny.push(rule);
        }
    }
}

#[derive(Debug, Clone)]
struct Rule {
    /// The filter as written, for [`topic::matches`] when nothing is substituted.
    filter: Box<str>,
    /// The filter split into levels at load time.
    levels: Box<[Level]>,
    read: bool,
    write: bool,
    uses_client_id: bool,
    uses_username: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Level {
    Literal(Box<str>),
    /// `+`
    Plus,
    /// `#` (always the last level)
    Hash,
    /// `%c` as a whole level of a `pattern`
    ClientId,
    /// `%u` as a whole level of a `pattern`
    Username,
}

/// The client a check is for, with its identifiers prepared for level comparison.
struct Who<'a> {
    /// The client id when usable as one topic level.
    client_id: Option<&'a str>,
    /// The username when present and usable as one topic level.
    username: Option<&'a str>,
    /// Whether `pattern` rules may grant anything (no `+`/`#` in client id or username).
    pattern_grants: bool,
}

impl<'a> Who<'a> {
    fn new(client_id: &'a str, username: Option<&'a str>) -> Self {
        let dangerous = |s: &str| s.contains(['+', '#']);
        Self {
            client_id: Some(client_id).filter(|s| is_single_level(s)),
            username: username.filter(|s| is_single_level(s)),
            pattern_grants: !dangerous(client_id) && !username.is_some_and(dangerous),
        }
    }
}

/// Whether a client id or username can stand for exactly one topic level.
fn is_single_level(value: &str) -> bool {
    !value.is_empty() && !value.contains(['/', '+', '#'])
}

impl Rule {
    /// Whether the rule can apply to this client at all (its `%c`/`%u` have values).
    fn applies(&self, who: &Who<'_>) -> bool {
        (!self.uses_client_id || who.client_id.is_some())
            && (!self.uses_username || who.username.is_some())
    }

    /// The concrete text a level stands for, `None` for wildcards.
    fn level_value<'s>(level: &'s Level, who: &Who<'s>) -> Option<&'s str> {
        match level {
            Level::Literal(s) => Some(s),
            Level::ClientId => who.client_id,
            Level::Username => who.username,
            Level::Plus | Level::Hash => None,
        }
    }

    /// Whether the rule matches the topic name `topic`.
    fn matches_topic(&self, topic: &str, who: &Who<'_>) -> bool {
        if !self.uses_client_id && !self.uses_username {
            return topic::matches(&self.filter, topic);
        }
        if !self.applies(who) {
            return false;
        }
        // Only a literal first level matches a `$` topic, as in Mosquitto (where a `%c`
        // first level never matches one either).
        if topic.starts_with('$') && !matches!(self.levels[0], Level::Literal(_)) {
            return false;
        }
        let mut levels = topic.split('/');
        for level in &self.levels {
            if *level == Level::Hash {
                return true;
            }
            let Some(name) = levels.next() else {
                return false;
            };
            // `applies` made sure %c/%u have values; `+` has none and matches any level.
            if let Some(value) = Self::level_value(level, who)
                && value != name
            {
                return false;
            }
        }
        levels.next().is_none()
    }

    /// Whether every topic matched by the (valid, non-shared) `filter` is matched by this
    /// rule, i.e. the rule's filter is equal to or more general than `filter`.
    /// Conservative: `+/#` is not taken to cover `#`, as in Mosquitto.
    fn covers(&self, filter: &str, who: &Who<'_>) -> bool {
        if !self.applies(who) {
            return false;
        }
        // A filter starting with a literal `$` level matches only `$` topics, which only a
        // rule with that literal first level matches.
        if filter.starts_with('$') && !matches!(self.levels[0], Level::Literal(_)) {
            return false;
        }
        let mut levels = filter.split('/');
        for level in &self.levels {
            if *level == Level::Hash {
                return true;
            }
            let Some(f) = levels.next() else {
                return false;
            };
            if f == "#" {
                return false;
            }
            if let Some(value) = Self::level_value(level, who)
                && value != f
            {
                // Also refuses `+` in the filter: a valid value is never `+`.
                return false;
            }
        }
        levels.next().is_none()
    }

    /// Whether some topic name is matched both by this rule and by the (valid, non-shared)
    /// `filter`.
    fn overlaps(&self, filter: &str, who: &Who<'_>) -> bool {
        if !self.applies(who) {
            return false;
        }
        let mut levels = filter.split('/');
        for (i, level) in self.levels.iter().enumerate() {
            let f = levels.next();
            let value = Self::level_value(level, who);
            if i == 0 && !self.first_level_compatible(value, f) {
                return false;
            }
            match (level, f) {
                (Level::Hash, _) | (_, Some("#")) => return true,
                (_, None) => return false,
                (_, Some("+")) => {}
                (_, Some(f)) => {
                    if value.is_some_and(|v| v != f) {
                        return false;
                    }
                }
            }
        }
        // The rule is used up: the filter must end too, or end in `#` (which also matches
        // its parent level).
        matches!(levels.next(), None | Some("#"))
    }

    /// The `$` rule for the first level in [`Rule::overlaps`]: when the first level of a
    /// common topic would start with `$`, both filters must have it as a literal level.
    fn first_level_compatible(&self, rule_value: Option<&str>, filter: Option<&str>) -> bool {
        let filter_literal = filter.filter(|f| *f != "+" && *f != "#");
        let pinned = rule_value.or(filter_literal);
        match pinned {
            Some(p) if p.starts_with('$') => {
                matches!(self.levels[0], Level::Literal(_)) && filter_literal.is_some()
            }
            _ => true,
        }
    }

    /// The topics matched by both this rule and the (valid, non-shared) `filter`, as the
    /// levels they start with (`None`: any level) and whether any number of further levels
    /// may follow; `None` when the two cannot match the same topic. The `$` rule is left to
    /// the caller (a superset of the common topics is fine for [`Witnesses`]).
    fn intersection<'s>(
        &'s self,
        filter: &'s str,
        who: &Who<'s>,
    ) -> Option<(Vec<Option<&'s str>>, bool)> {
        if !self.applies(who) {
            return None;
        }
        let mut rule = self.levels.iter();
        let mut filter = filter.split('/');
        let mut levels = Vec::new();
        loop {
            match (rule.next(), filter.next()) {
                // `#` also matches its parent level: `a/#` and `a` have `a` in common.
                (None | Some(Level::Hash), None) | (None, Some("#")) => {
                    return Some((levels, false));
                }
                (Some(Level::Hash), Some("#")) => return Some((levels, true)),
                // One side is used up by its `#`: the rest of the other decides.
                (Some(Level::Hash), Some(first)) => {
                    let mut tail = false;
                    for f in std::iter::once(first).chain(filter) {
                        match f {
                            "#" => tail = true,
                            "+" => levels.push(None),
                            name => levels.push(Some(name)),
                        }
                    }
                    return Some((levels, tail));
                }
                (Some(first), Some("#")) => {
                    let mut tail = false;
                    for level in std::iter::once(first).chain(rule) {
                        match level {
                            Level::Hash => tail = true,
                            level => levels.push(Self::level_value(level, who)),
                        }
                    }
                    return Some((levels, tail));
                }
                (None, Some(_)) | (Some(_), None) => return None,
                (Some(level), Some(f)) => {
                    // `applies` made sure %c/%u have values; `+` has none.
                    let value = Self::level_value(level, who);
                    let name = (f != "+").then_some(f);
                    match (value, name) {
                        (Some(v), Some(n)) if v != n => return None,
                        (v, n) => levels.push(v.or(n)),
                    }
                }
            }
        }
    }
}

/// Stand-ins for the topics of a [`Rule::intersection`] when asking whether the deny
/// rules leave any of them. Each `None` level becomes a level no deny rule names (nor the
/// client id or username), so a deny rule matches the stand-in only if it matches every
/// topic of that shape; and beyond the longest deny rule, more levels change nothing. So
/// some topic of the intersection escapes every deny rule exactly when a stand-in does.
struct Witnesses {
    /// A level equal to no literal level of a deny rule, the client id or the username;
    /// never starting with `$`.
    fresh: String,
    /// The most levels of any deny rule.
    deepest: usize,
}

impl Witnesses {
    fn new<'r>(denies: impl Iterator<Item = &'r Rule>, who: &Who<'_>) -> Self {
        let mut taken: Vec<&str> = who.client_id.into_iter().chain(who.username).collect();
        let mut deepest = 0;
        for rule in denies {
            deepest = deepest.max(rule.levels.len());
            taken.extend(rule.levels.iter().filter_map(|level| match level {
                Level::Literal(s) => Some(&**s),
                _ => None,
            }));
        }
        let fresh = (0..)
            .map(|i| format!("~{i}"))
            .find(|candidate| !taken.contains(&candidate.as_str()))
            .expect("finitely many levels are taken");
        Self { fresh, deepest }
    }

    /// The stand-in topic names for `levels` (and, when `tail`, any further levels).
    fn topics<'a>(
        &'a self,
        levels: &'a [Option<&'a str>],
        tail: bool,
    ) -> impl Iterator<Item = String> + 'a {
        let shortest = levels.len().max(1);
        let longest = if tail {
            levels.len().max(self.deepest + 1)
        } else {
            levels.len()
        };
        (shortest..=longest).map(move |n| {
            (0..n)
                .map(|i| levels.get(i).copied().flatten().unwrap_or(&self.fresh))
                .collect::<Vec<_>>()
                .join("/")
        })
    }
}

impl AclFile {
    /// Reads and parses an ACL file.
    pub fn load(path: &Path) -> Result<AclFile, AclError> {
        let bytes = std::fs::read(path).map_err(|source| AclError::Io {
            what: "the ACL file",
            path: path.to_owned(),
            source,
        })?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            AclError::Invalid {
                file: path.to_owned(),
                line: valid.iter().filter(|&&b| b == b'\n').count() + 1,
                message: "the file is not valid UTF-8 text (save it as UTF-8)".into(),
            }
        })?;
        Self::parse(&text, path)
    }

    /// Parses the text of an ACL file; `origin` names it in error messages.
    pub fn parse(text: &str, origin: &Path) -> Result<AclFile, AclError> {
        let mut acl = AclFile::default();
        // `None`: still before the first `user` line (anonymous clients).
        let mut user: Option<Box<str>> = None;
        for (index, raw) in text.lines().enumerate() {
            let error = |message: String| AclError::Invalid {
                file: origin.to_owned(),
                line: index + 1,
                message,
            };
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (keyword, rest) = split_word(line);
            match keyword {
                "topic" | "pattern" => {
                    let is_pattern = keyword == "pattern";
                    let rule = parse_rule(keyword, rest, is_pattern).map_err(error)?;
                    if is_pattern {
                        acl.patterns.push(rule);
                    } else if let Some(name) = &user {
                        acl.users.entry(name.clone()).or_default().push(rule);
                    } else {
                        acl.anonymous.push(rule);
                    }
                }
                "user" => {
                    if rest.is_empty() {
                        return Err(error(
                            "user needs a username (write e.g. \"user roger\")".into(),
                        ));
                    }
                    user = Some(rest.into());
                }
                other => {
                    let mut message = format!("\"{other}\" is not an ACL keyword (");
                    if let Some(hint) = suggest(other, &["topic", "pattern", "user"]) {
                        let _ = write!(message, "did you mean \"{hint}\"? ");
                    }
                    message.push_str(
                        "lines are \"topic [read|write|readwrite|deny] <filter>\", \
                         \"pattern [read|write|readwrite|deny] <filter>\", \"user <name>\" \
                         or a # comment)",
                    );
                    return Err(error(message));
                }
            }
        }
        Ok(acl)
    }

    /// May `client_id`/`username` (None = anonymous) publish to `topic` (Write) or receive
    /// a message on `topic` (Read)?
    pub fn allows(
        &self,
        client_id: &str,
        username: Option<&str>,
        topic: &str,
        access: Access,
    ) -> bool {
        if topic::validate_name(topic).is_err() {
            return false;
        }
        if access == Access::Write && !dollar_writable(topic) {
            return false;
        }
        let who = Who::new(client_id, username);
        let own = self.own_rules(username);
        let mut denies = own
            .into_iter()
            .flat_map(|s| &s.deny)
            .chain(&self.patterns.deny);
        if denies.any(|rule| rule.matches_topic(topic, &who)) {
            return false;
        }
        let grants_access = |rule: &Rule| match access {
            Access::Read => rule.read,
            Access::Write => rule.write,
        };
        let granted = |rules: &[Rule]| {
            rules
                .iter()
                .any(|rule| grants_access(rule) && rule.matches_topic(topic, &who))
        };
        own.is_some_and(|s| granted(&s.grant))
            || (who.pattern_grants && granted(&self.patterns.grant))
    }

    /// May this client subscribe to `filter`? Yes when at least one topic the filter can
    /// match is readable ([`AclFile::allows`] with `Read`); each delivery is then checked
    /// for its own topic, so a filter may reach beyond what is readable (`#` with
    /// `topic read #` and `topic deny secret/#`), as with Mosquitto, which does not check
    /// SUBSCRIBE at all. Refused: invalid filters, filters no read grant overlaps, filters
    /// an applicable `deny` rule covers (equal or more general) and filters whose overlap
    /// with the grants is denied entirely. For `$share/{group}/{filter}`, `filter` is checked.
    pub fn allows_subscribe(&self, client_id: &str, username: Option<&str>, filter: &str) -> bool {
        if topic::validate_filter(filter).is_err() {
            return false;
        }
        let filter = match SharedFilter::parse(filter) {
            Ok(Some(shared)) => shared.filter,
            Ok(None) => filter,
            Err(_) => return false,
        };
        let who = Who::new(client_id, username);
        let own = self.own_rules(username);
        let denies = || {
            own.into_iter()
                .flat_map(|s| &s.deny)
                .chain(&self.patterns.deny)
        };
        // Everything the filter can match is denied.
        if denies().any(|rule| rule.covers(filter, &who)) {
            return false;
        }
        let pattern_grants = if who.pattern_grants {
            &self.patterns.grant[..]
        } else {
            &[]
        };
        let mut grants = own
            .into_iter()
            .flat_map(|s| &s.grant)
            .chain(pattern_grants)
            .filter(|rule| rule.read && rule.overlaps(filter, &who));
        let witnesses = Witnesses::new(denies(), &who);
        // Some topic both the grant and the filter match may still be denied by the deny
        // rules together; look for one that is readable.
        grants.any(|rule| {
            rule.intersection(filter, &who)
                .is_some_and(|(levels, tail)| {
                    witnesses.topics(&levels, tail).any(|topic| {
                        topic::matches(filter, &topic)
                            && self.allows(client_id, username, &topic, Access::Read)
                    })
                })
        })
    }

    /// The `topic` rules for this client: its user section, or the anonymous rules.
    fn own_rules(&self, username: Option<&str>) -> Option<&RuleSet> {
        match username {
            None => Some(&self.anonymous),
            Some(name) => self.users.get(name),
        }
    }
}

/// Mosquitto's `acl__check_dollar` for writes: no `$SYS…` topic but the bridge state
/// topics, no `$share…` topic.
fn dollar_writable(topic: &str) -> bool {
    if topic.starts_with("$SYS") {
        topic::matches("$SYS/broker/connection/+/state", topic)
    } else {
        !topic.starts_with("$share")
    }
}

/// Splits off the first space- or tab-separated word; the rest is trimmed.
fn split_word(text: &str) -> (&str, &str) {
    match text.split_once([' ', '\t']) {
        Some((word, rest)) => (word, rest.trim()),
        None => (text, ""),
    }
}

const ACCESS_WORDS: [&str; 4] = ["read", "write", "readwrite", "deny"];

/// Parses what follows `topic` or `pattern`: `[access] <filter>`.
fn parse_rule(keyword: &str, rest: &str, is_pattern: bool) -> Result<Rule, String> {
    let example = format!("write e.g. \"{keyword} read sensors/#\"");
    if rest.is_empty() {
        return Err(format!("{keyword} needs a topic filter ({example})"));
    }
    let (first, after) = split_word(rest);
    let (access, filter) = if after.is_empty() {
        if ACCESS_WORDS.contains(&first) {
            // Mosquitto would read `topic read` as readwrite on a topic named "read";
            // a forgotten filter is far more likely.
            return Err(format!(
                "{keyword} {first} needs a topic filter after the access type ({example}; for \
                 a topic literally named {first}, write \"{keyword} readwrite {first}\")"
            ));
        }
        ("readwrite", first)
    } else {
        (first, after)
    };
    let (read, write) = match access {
        "read" => (true, false),
        "write" => (false, true),
        "readwrite" => (true, true),
        "deny" => (false, false),
        other => {
            let mut message = format!("\"{other}\" is not an access type (");
            if let Some(hint) = suggest(other, &ACCESS_WORDS) {
                let _ = write!(message, "did you mean \"{hint}\"? ");
            }
            let _ = write!(
                message,
                "write read, write, readwrite or deny before the topic filter, e.g. \
                 \"{keyword} read sensors/#\"; a filter containing spaces needs the access \
                 type first)"
            );
            return Err(message);
        }
    };
    // Validate as a plain filter, as Mosquitto does: an ACL topic starting with `$share/`
    // is an ordinary (if useless) filter, not a shared subscription.
    let plain = filter.strip_prefix('$').unwrap_or(filter);
    if let Err(e) = topic::validate_filter(plain) {
        let mut message = format!("\"{filter}\" is not a valid topic filter: {e} (");
        if filter.contains(" #") {
            message.push_str("comments must be on a line of their own; ");
        }
        message.push_str(
            "+ must be a whole level and # a whole last level, e.g. \"sensors/+/temperature\" \
             or \"sensors/#\")",
        );
        return Err(message);
    }
    let levels: Box<[Level]> = filter
        .split('/')
        .map(|level| match level {
            "+" => Level::Plus,
            "#" => Level::Hash,
            "%c" if is_pattern => Level::ClientId,
            "%u" if is_pattern => Level::Username,
            literal => Level::Literal(literal.into()),
        })
        .collect();
    Ok(Rule {
        filter: filter.into(),
        uses_client_id: levels.contains(&Level::ClientId),
        uses_username: levels.contains(&Level::Username),
        levels,
        read,
        write,
    })
}

/// The candidate closest to `word` within two edits, ignoring case, for "did you mean".
fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|&c| (edit_distance(word.as_bytes(), c.as_bytes()), c))
        .filter(|&(d, _)| d <= 2)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over bytes (the words compared are a few bytes long).
fn edit_distance(a: &[u8], b: &[u8]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, &x) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &y) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(x != y))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use Access::{Read, Write};

    fn file(text: &str) -> AclFile {
        AclFile::parse(text, Path::new("acl")).unwrap_or_else(|e| panic!("{e}"))
    }

    fn error(text: &str) -> String {
        AclFile::parse(text, Path::new("/etc/mosquitto/acl"))
            .expect_err("the file should be refused")
            .to_string()
    }

    /// Read and write access of `client`/`user` to `topic`, as `"rw"`, `"r-"`, `"-w"`, `"--"`.
    fn access(acl: &AclFile, client: &str, user: Option<&str>, topic: &str) -> String {
        let r = if acl.allows(client, user, topic, Read) {
            'r'
        } else {
            '-'
        };
        let w = if acl.allows(client, user, topic, Write) {
            'w'
        } else {
            '-'
        };
        format!("{r}{w}")
    }

    fn anon(acl: &AclFile, topic: &str) -> String {
        access(acl, "client", None, topic)
    }

    fn sub(acl: &AclFile, filter: &str) -> bool {
        acl.allows_subscribe("client", None, filter)
    }

    // ----- syntax -----------------------------------------------------------------------

    #[test]
    fn access_words_and_readwrite_default() {
        let acl = file(
            "topic read r\n\
                       topic write w\n\
                       topic readwrite rw\n\
                       topic default\n\
                       topic deny d\n",
        );
        assert_eq!(anon(&acl, "r"), "r-");
        assert_eq!(anon(&acl, "w"), "-w");
        assert_eq!(anon(&acl, "rw"), "rw");
        assert_eq!(anon(&acl, "default"), "rw");
        assert_eq!(anon(&acl, "d"), "--");
        assert_eq!(anon(&acl, "other"), "--");
    }

    #[test]
    fn comments_blank_lines_and_whitespace() {
        let acl = file(
            "# a comment\n\
                       \n\
                       \t  \n\
                       \x20  # an indented comment\n\
                       \x20 topic\tread   a/b  \r\n\
                       topic read with space/x\r\n\
                       topic   readwrite   #\n",
        );
        assert_eq!(anon(&acl, "a/b"), "rw");
        assert_eq!(anon(&acl, "with space/x"), "rw");
        assert!(acl.allows("c", None, "a/b", Read));
        // `#` on its own in a rule is the wildcard, not a comment.
        assert_eq!(anon(&acl, "anything/at/all"), "rw");
    }

    #[test]
    fn topic_with_spaces_needs_the_access_word() {
        let acl = file("topic read my topic/+\n");
        assert_eq!(anon(&acl, "my topic/x"), "r-");
        let e = error("topic my topic\n");
        assert!(
            e.starts_with("/etc/mosquitto/acl:1: \"my\" is not an access type"),
            "{e}"
        );
        assert!(e.contains("needs the access type first"), "{e}");
    }

    #[test]
    fn empty_file_denies_everything() {
        for text in ["", "# nothing\n\n"] {
            let acl = file(text);
            assert_eq!(anon(&acl, "a"), "--");
            assert_eq!(access(&acl, "c", Some("u"), "a"), "--");
            assert!(!sub(&acl, "#"));
        }
    }

    #[test]
    fn keywords_are_case_sensitive_like_mosquitto() {
        let e = error("Topic read a\n");
        assert!(
            e.contains("\"Topic\" is not an ACL keyword (did you mean \"topic\"?"),
            "{e}"
        );
        let e = error("topic READ a\n");
        assert!(e.contains("did you mean \"read\"?"), "{e}");
    }

    // ----- errors -----------------------------------------------------------------------

    #[test]
    fn unknown_keyword_names_the_line() {
        let e = error("# header\ntopic read a\n\ntpoic read b\n");
        assert_eq!(
            e,
            "/etc/mosquitto/acl:4: \"tpoic\" is not an ACL keyword (did you mean \"topic\"? \
             lines are \"topic [read|write|readwrite|deny] <filter>\", \
             \"pattern [read|write|readwrite|deny] <filter>\", \"user <name>\" or a # comment)"
        );
        let e = error("frobnicate\n");
        assert!(
            e.starts_with("/etc/mosquitto/acl:1: \"frobnicate\" is not an ACL keyword (lines are"),
            "{e}"
        );
        let e = error("users roger\n");
        assert!(e.contains("did you mean \"user\"?"), "{e}");
    }

    #[test]
    fn bad_access_word() {
        let e = error("user roger\ntopic reed sensors/#\n");
        assert!(
            e.starts_with(
                "/etc/mosquitto/acl:2: \"reed\" is not an access type (did you mean \"read\"? \
                 write read, write, readwrite or deny before the topic filter"
            ),
            "{e}"
        );
        let e = error("pattern allow a/%c\n");
        assert!(
            e.starts_with("/etc/mosquitto/acl:1: \"allow\" is not an access type ("),
            "{e}"
        );
    }

    #[test]
    fn missing_topic() {
        assert_eq!(
            error("topic\n"),
            "/etc/mosquitto/acl:1: topic needs a topic filter (write e.g. \"topic read sensors/#\")"
        );
        assert_eq!(
            error("\n\npattern   \n"),
            "/etc/mosquitto/acl:3: pattern needs a topic filter (write e.g. \"pattern read sensors/#\")"
        );
        for word in ACCESS_WORDS {
            let e = error(&format!("topic {word}\n"));
            assert!(
                e.starts_with(&format!(
                    "/etc/mosquitto/acl:1: topic {word} needs a topic filter after the access type"
                )),
                "{e}"
            );
        }
    }

    #[test]
    fn missing_username() {
        assert_eq!(
            error("topic read a\nuser   \n"),
            "/etc/mosquitto/acl:2: user needs a username (write e.g. \"user roger\")"
        );
    }

    #[test]
    fn invalid_filters() {
        for (bad, what) in [
            ("a/#/b", "wildcard not alone"),
            ("a+", "wildcard not alone"),
            ("sensors/temp#", "wildcard not alone"),
        ] {
            let e = error(&format!("topic read ok\ntopic read {bad}\n"));
            assert!(
                e.starts_with(&format!(
                    "/etc/mosquitto/acl:2: \"{bad}\" is not a valid topic filter: {what}"
                )),
                "{e}"
            );
        }
        let e = error("topic read sensors/# # everything\n");
        assert!(e.contains("comments must be on a line of their own"), "{e}");
        // As in Mosquitto, `$share/…` in a rule is a plain filter, so these load.
        file("topic read $share/g\ntopic read $share/g/a/#\n");
    }

    #[test]
    fn load_reads_files_and_reports_io_and_utf8_errors() {
        let dir = std::env::temp_dir().join(format!("midge-acl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("acl");
        std::fs::write(&good, "user roger\ntopic foo/bar\n").unwrap();
        let acl = AclFile::load(&good).unwrap();
        assert_eq!(access(&acl, "c", Some("roger"), "foo/bar"), "rw");

        let bad = dir.join("bad-utf8");
        std::fs::write(&bad, b"topic read a\ntopic read \xff\n").unwrap();
        let e = AclFile::load(&bad).unwrap_err();
        assert_eq!(e.line(), Some(2));
        assert_eq!(e.file(), bad);
        assert!(
            e.to_string()
                .ends_with(":2: the file is not valid UTF-8 text (save it as UTF-8)")
        );

        let missing = dir.join("missing");
        let e = AclFile::load(&missing).unwrap_err();
        assert!(matches!(e, AclError::Io { .. }));
        assert_eq!(e.line(), None);
        assert!(e.to_string().contains("cannot read the ACL file"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    // ----- whose rules ------------------------------------------------------------------

    #[test]
    fn anonymous_and_user_sections() {
        let acl = file(
            "topic read public/#\n\
                       user alice\n\
                       topic readwrite alice/#\n\
                       user bob\n\
                       topic read alice/status\n\
                       user alice\n\
                       topic write shared/in\n\
                       user empty\n",
        );
        // Anonymous: only the lines before the first `user`.
        assert_eq!(anon(&acl, "public/x"), "r-");
        assert_eq!(anon(&acl, "alice/x"), "--");
        // Users do not get the anonymous rules.
        assert_eq!(access(&acl, "c", Some("alice"), "public/x"), "--");
        assert_eq!(access(&acl, "c", Some("alice"), "alice/x/y"), "rw");
        // A second section for the same user adds to the first.
        assert_eq!(access(&acl, "c", Some("alice"), "shared/in"), "-w");
        assert_eq!(access(&acl, "c", Some("bob"), "alice/status"), "r-");
        assert_eq!(access(&acl, "c", Some("bob"), "alice/other"), "--");
        // A section without rules, an unknown user and an empty username get nothing.
        assert_eq!(access(&acl, "c", Some("empty"), "public/x"), "--");
        assert_eq!(access(&acl, "c", Some("mallory"), "public/x"), "--");
        assert_eq!(access(&acl, "c", Some(""), "public/x"), "--");
        // The username is the user, not the client id.
        assert_eq!(access(&acl, "alice", None, "alice/x"), "--");
    }

    #[test]
    fn usernames_are_the_rest_of_the_line() {
        let acl = file("user  John Smith \ntopic a\n");
        assert_eq!(access(&acl, "c", Some("John Smith"), "a"), "rw");
        assert_eq!(access(&acl, "c", Some("John"), "a"), "--");
    }

    // ----- patterns ---------------------------------------------------------------------

    #[test]
    fn patterns_substitute_whole_levels() {
        let acl = file(
            "pattern readwrite devices/%c/#\n\
                       pattern read users/%u/inbox\n\
                       pattern write pair/%u/%c\n\
                       user alice\n\
                       pattern read after/user/%c\n",
        );
        // Client id, for everybody (patterns after `user` lines still apply to all).
        assert_eq!(access(&acl, "dev1", None, "devices/dev1/temp"), "rw");
        assert_eq!(access(&acl, "dev1", None, "devices/dev1"), "rw");
        assert_eq!(access(&acl, "dev1", Some("bob"), "devices/dev1/x"), "rw");
        assert_eq!(access(&acl, "dev1", None, "devices/dev2/temp"), "--");
        assert_eq!(access(&acl, "dev1", None, "devices/dev10/temp"), "--");
        assert_eq!(access(&acl, "dev10", None, "devices/dev1/temp"), "--");
        assert_eq!(access(&acl, "dev1", None, "after/user/dev1"), "r-");
        // Username; an anonymous client never matches %u.
        assert_eq!(access(&acl, "c", Some("bob"), "users/bob/inbox"), "r-");
        assert_eq!(access(&acl, "c", Some("bob"), "users/alice/inbox"), "--");
        assert_eq!(access(&acl, "c", None, "users/%u/inbox"), "--");
        assert_eq!(access(&acl, "c", None, "users//inbox"), "--");
        assert_eq!(access(&acl, "c", Some(""), "users//inbox"), "--");
        // Both in one rule.
        assert_eq!(access(&acl, "c1", Some("bob"), "pair/bob/c1"), "-w");
        assert_eq!(access(&acl, "c1", Some("bob"), "pair/c1/bob"), "--");
        assert_eq!(access(&acl, "c1", None, "pair/bob/c1"), "--");
    }

    #[test]
    fn patterns_inside_a_level_are_literal() {
        let acl = file(
            "pattern readwrite dev/%c-data\n\
                       pattern readwrite x%u/y\n\
                       topic readwrite plain/%c\n",
        );
        assert_eq!(access(&acl, "a", Some("u"), "dev/a-data"), "--");
        assert_eq!(access(&acl, "a", Some("u"), "dev/%c-data"), "rw");
        assert_eq!(access(&acl, "a", Some("u"), "xu/y"), "--");
        assert_eq!(access(&acl, "a", Some("u"), "x%u/y"), "rw");
        // `topic` lines never substitute.
        assert_eq!(access(&acl, "a", None, "plain/a"), "--");
        assert_eq!(access(&acl, "a", None, "plain/%c"), "rw");
    }

    #[test]
    fn client_ids_with_separators_or_wildcards_never_escalate() {
        let acl = file(
            "pattern readwrite devices/%c/#\n\
                       pattern read home/%u\n\
                       pattern read public/#\n\
                       user bob+\n\
                       topic read bob/own\n",
        );
        // `/` cannot span levels: "a/b" does not own devices/a/b/…, nor devices/a/….
        for topic in ["devices/a/b/x", "devices/a/b", "devices/a/x", "devices/a"] {
            assert_eq!(access(&acl, "a/b", None, topic), "--", "{topic}");
        }
        assert!(!acl.allows_subscribe("a/b", None, "devices/a/b/#"));
        assert!(!acl.allows_subscribe("a/b", None, "devices/a/#"));
        // `+` and `#` are not wildcards in a value.
        for id in ["+", "#", "a+", "x#"] {
            for topic in ["devices/x/y", "devices/+/y", "devices/a+/y", "devices"] {
                assert_eq!(access(&acl, id, None, topic), "--", "{id} {topic}");
            }
            for filter in ["devices/+/#", "devices/#", "devices/+", "#"] {
                assert!(!acl.allows_subscribe(id, None, filter), "{id} {filter}");
            }
        }
        assert_eq!(access(&acl, "c", Some("a/b"), "home/a/b"), "--");
        assert_eq!(access(&acl, "c", Some("+"), "home/x"), "--");
        assert!(!acl.allows_subscribe("c", Some("+"), "home/+"));
        // A `/` only voids the rules that substitute it.
        assert_eq!(access(&acl, "a/b", None, "public/x"), "r-");
        // `+`/`#` void every pattern grant (Mosquitto's "dangerous client id")…
        assert_eq!(access(&acl, "x+", None, "public/x"), "--");
        assert_eq!(access(&acl, "ok", Some("bob+"), "public/x"), "--");
        // …but not the client's own `topic` rules.
        assert_eq!(access(&acl, "ok", Some("bob+"), "bob/own"), "r-");
        assert_eq!(access(&acl, "ok", Some("bob"), "home/bob"), "r-");
    }

    #[test]
    fn pattern_levels_do_not_match_dollar_topics() {
        // As in Mosquitto: a `$` topic needs a literal `$` first level in the rule.
        let acl = file("pattern readwrite %c/#\npattern read $SYS/client/%c\n");
        assert_eq!(access(&acl, "$SYS", None, "$SYS/broker/uptime"), "--");
        assert!(!acl.allows_subscribe("$SYS", None, "$SYS/broker/#"));
        // Only `$SYS/client/$SYS` is readable (through the literal `$SYS` level).
        assert_eq!(access(&acl, "$SYS", None, "$SYS/client/$SYS"), "r-");
        assert!(acl.allows_subscribe("$SYS", None, "$SYS/#"));
        assert_eq!(access(&acl, "dev", None, "dev/x"), "rw");
        assert_eq!(access(&acl, "dev", None, "$SYS/client/dev"), "r-");
        assert!(acl.allows_subscribe("dev", None, "$SYS/client/dev"));
    }

    // ----- deny -------------------------------------------------------------------------

    #[test]
    fn deny_wins_whatever_the_order() {
        let acl = file(
            "topic readwrite home/#\n\
                       topic deny home/secret/#\n\
                       topic deny early/x\n\
                       topic readwrite early/#\n\
                       user alice\n\
                       topic readwrite #\n\
                       topic deny alice/private\n\
                       pattern deny home/%c/locked\n\
                       pattern readwrite devices/%c/#\n\
                       user bob\n\
                       topic deny devices/bob-phone/#\n",
        );
        assert_eq!(anon(&acl, "home/kitchen"), "rw");
        assert_eq!(anon(&acl, "home/secret"), "--");
        assert_eq!(anon(&acl, "home/secret/key"), "--");
        assert_eq!(anon(&acl, "early/x"), "--");
        assert_eq!(anon(&acl, "early/y"), "rw");
        assert_eq!(access(&acl, "c", Some("alice"), "alice/private"), "--");
        assert_eq!(access(&acl, "c", Some("alice"), "alice/public"), "rw");
        // A pattern deny beats a user's `topic` grant (the man page: "Any deny topics are
        // handled before topics that grant read/write access")…
        assert_eq!(access(&acl, "c", Some("alice"), "home/c/locked"), "--");
        assert_eq!(access(&acl, "d", Some("alice"), "home/c/locked"), "rw");
        // …and a user's `topic` deny beats a pattern grant.
        assert_eq!(
            access(&acl, "bob-phone", Some("bob"), "devices/bob-phone/x"),
            "--"
        );
        assert_eq!(
            access(&acl, "bob-phone", Some("alice"), "devices/bob-phone/x"),
            "rw"
        );
        // Another user's or the anonymous denies do not apply.
        assert_eq!(access(&acl, "c", Some("alice"), "home/secret/key"), "rw");
    }

    // ----- $SYS -------------------------------------------------------------------------

    #[test]
    fn sys_is_never_writable_but_bridge_state() {
        let acl = file(
            "topic readwrite $SYS/#\n\
                       topic readwrite $SYSTEM/#\n\
                       topic readwrite $share/#\n\
                       topic readwrite $other/#\n",
        );
        assert_eq!(anon(&acl, "$SYS/broker/uptime"), "r-");
        assert_eq!(anon(&acl, "$SYS/broker/connection/any/state"), "rw");
        assert_eq!(anon(&acl, "$SYS/broker/connection/any/state/x"), "r-");
        assert_eq!(anon(&acl, "$SYS/broker/connection/state"), "r-");
        // Mosquitto's check is a prefix check on "$SYS" and "$share".
        assert_eq!(anon(&acl, "$SYSTEM/x"), "r-");
        assert_eq!(anon(&acl, "$share/g/x"), "r-");
        assert_eq!(anon(&acl, "$other/x"), "rw");

        // The bridge state topic still needs a grant.
        let acl = file("topic read $SYS/#\npattern write $SYS/broker/connection/%c/state\n");
        assert_eq!(anon(&acl, "$SYS/broker/connection/client/state"), "rw");
        assert_eq!(anon(&acl, "$SYS/broker/connection/other/state"), "r-");
        assert_eq!(
            access(&acl, "other", None, "$SYS/broker/connection/other/state"),
            "rw"
        );

        let acl = file("topic readwrite #\n");
        assert_eq!(anon(&acl, "$SYS/broker/uptime"), "--");
        assert_eq!(anon(&acl, "$SYS/broker/connection/client/state"), "--");
        assert!(!sub(&acl, "$SYS/#"));
        let acl = file("topic readwrite $SYS/broker/connection/+/state\n");
        assert_eq!(anon(&acl, "$SYS/broker/connection/b1/state"), "rw");
    }

    #[test]
    fn invalid_topic_names_are_refused() {
        let acl = file("topic readwrite #\n");
        assert_eq!(anon(&acl, "a/+"), "--");
        assert_eq!(anon(&acl, "a/#"), "--");
        assert_eq!(anon(&acl, ""), "--");
        assert_eq!(anon(&acl, "a"), "rw");
    }

    // ----- subscriptions ----------------------------------------------------------------

    #[test]
    fn subscriptions_need_a_read_rule_that_overlaps() {
        let acl = file(
            "topic read sensors/#\n\
                       topic read rooms/+/t\n\
                       topic readwrite exact/topic\n\
                       topic write out/#\n\
                       topic read tail/+\n",
        );
        for ok in [
            "sensors/#",
            "sensors/+/t",
            "sensors/a/t",
            "sensors/+",
            "sensors/+/#",
            "sensors",
            "rooms/+/t",
            "rooms/kitchen/t",
            "exact/topic",
            "tail/+",
            "tail/x",
        ] {
            assert!(sub(&acl, ok), "{ok}");
        }
        // Wider than the grants: granted, and deliveries are filtered per topic.
        for wider in [
            "#",
            "+/#",
            "+",
            "+/+",
            "+/+/t",
            "rooms/#",
            "rooms/+/+",
            "rooms/+/t/#",
            "rooms/kitchen/#",
            "exact/#",
            "exact/+",
            "exact/topic/#",
            "tail/#",
            "tail/+/#",
        ] {
            assert!(sub(&acl, wider), "{wider}");
        }
        for unreadable in [
            "rooms/kitchen/x",
            "rooms/kitchen",
            "rooms/kitchen/t/x",
            "exact",
            "exact/other",
            "exact/topic/x",
            "tail",
            "tail/x/y",
            "out/x",
            "other",
        ] {
            assert_eq!(anon(&acl, unreadable).as_bytes()[0], b'-', "{unreadable}");
        }
        // Nothing the filter can match is readable.
        for refused in [
            "sensor/#",
            "rooms/+",
            "rooms/+/x",
            "rooms/kitchen/x/#",
            "exact",
            "exact/+/+",
            "out/#",
            "out/x",
            "tail",
            "tail/+/+",
            "other/#",
            "$SYS/#",
        ] {
            assert!(!sub(&acl, refused), "{refused}");
        }
    }

    #[test]
    fn hash_and_plus_corner_cases() {
        // `a/#` matches `a`; `+/#` matches every topic `#` does.
        let acl = file("topic read a/#\ntopic read /+\n");
        assert!(sub(&acl, "a"));
        assert!(sub(&acl, "+"));
        assert!(sub(&acl, "+/+"));
        assert!(sub(&acl, "#"));
        assert!(sub(&acl, "/x"));
        assert!(sub(&acl, "/+"));
        assert!(sub(&acl, "/#"));
        assert!(!sub(&acl, "/x/y"));
        assert!(!sub(&acl, "x/#"));
        assert!(!sub(&acl, "x"));
        let acl = file("topic read #\n");
        assert!(sub(&acl, "#"));
        assert!(sub(&acl, "+/+/+"));
        assert!(sub(&acl, "/"));
        assert!(!sub(&acl, "$SYS/#"));
        assert!(!sub(&acl, "$anything"));
        let acl = file("topic read $SYS/#\n");
        assert!(sub(&acl, "$SYS/#"));
        assert!(sub(&acl, "$SYS/broker/+"));
        assert!(!sub(&acl, "#"));
        assert!(!sub(&acl, "+/broker/uptime"));
        assert!(!sub(&acl, "$SYSTEM/#"));
        // A deny equivalent to the filter refuses it, though not literally more general.
        let acl = file("topic read #\ntopic deny +/#\n");
        assert!(!sub(&acl, "#"));
        assert!(!sub(&acl, "a/+"));
    }

    #[test]
    fn subscriptions_reaching_into_a_deny_are_granted_and_filtered_per_delivery() {
        let acl = file(
            "topic read #\n\
                       topic deny secret/#\n\
                       topic deny +/password\n",
        );
        for ok in [
            "sensors/a/#",
            "sensors/+/t",
            "public",
            "sensors/#",
            "#",
            "+",
            "+/#",
            "db/+",
            "db/#",
            "+/+",
            "+/password/#",
        ] {
            assert!(sub(&acl, ok), "{ok}");
        }
        // Deliveries keep the secrets out.
        assert_eq!(anon(&acl, "secret/x"), "--");
        assert_eq!(anon(&acl, "secret"), "--");
        assert_eq!(anon(&acl, "db/password"), "--");
        assert_eq!(anon(&acl, "db/user"), "r-");
        // A deny rule equal to or more general than the filter refuses it.
        for refused in [
            "secret",
            "secret/#",
            "secret/+",
            "secret/a/b",
            "secret/+/x/#",
            "+/password",
            "db/password",
        ] {
            assert!(!sub(&acl, refused), "{refused}");
        }
    }

    #[test]
    fn subscriptions_the_denies_leave_nothing_of_are_refused() {
        // No single deny covers `a/#`, but `a` and `a/+/#` together deny all of it.
        let acl = file("topic read a/#\ntopic deny a\ntopic deny a/+/#\n");
        for refused in ["a/#", "#", "+", "+/+/#", "a/+"] {
            assert!(!sub(&acl, refused), "{refused}");
        }
        // Topics deeper than every deny rule escape them.
        let acl = file(
            "topic read #\n\
                       topic deny +\n\
                       topic deny +/+\n\
                       topic deny +/+/+\n",
        );
        assert!(sub(&acl, "#"));
        assert!(sub(&acl, "a/+/#"));
        assert!(!sub(&acl, "a/+/+"));
        assert_eq!(anon(&acl, "a/b/c/d"), "r-");
        let acl = file("topic read #\ntopic deny +\ntopic deny +/+/#\n");
        assert!(!sub(&acl, "#"));
        // A level no deny names escapes them.
        let acl = file("topic read x/+\ntopic deny x/a\ntopic deny x/b\n");
        assert!(sub(&acl, "x/+"));
        assert!(!sub(&acl, "x/a"));
        // Denies for the client id and username count, too.
        let acl = file(
            "pattern read d/+\n\
                       pattern deny d/%c\n\
                       pattern deny d/%u\n",
        );
        assert!(acl.allows_subscribe("a", Some("b"), "d/+"));
        assert!(!acl.allows_subscribe("a", Some("b"), "d/a"));
        assert!(!acl.allows_subscribe("a", Some("b"), "d/b"));
        // Whatever the client id and username look like.
        for (id, user) in [("~0", "~1"), ("~1", "~0"), ("~0", "~0")] {
            assert!(acl.allows_subscribe(id, Some(user), "d/+"), "{id} {user}");
            assert!(!acl.allows_subscribe(id, Some(user), "d/~0"), "{id} {user}");
        }
        let acl = file("topic read x/+\ntopic deny x/~0\ntopic deny x/~1\n");
        assert!(sub(&acl, "x/+"));
        // Another user's denies do not.
        let acl = file("topic read a/#\nuser u\ntopic read a/#\ntopic deny a/+/#\n");
        assert!(sub(&acl, "a/+/x"));
        assert!(!acl.allows_subscribe("c", Some("u"), "a/+/x"));
        assert!(acl.allows_subscribe("c", Some("u"), "a/#"));
    }

    #[test]
    fn deny_coverage_respects_dollar_topics() {
        // `#` does not match `$` topics: a `$SYS` deny covers no wildcard filter.
        let acl = file("topic read #\ntopic read $SYS/#\ntopic deny $SYS/broker/secret\n");
        assert!(sub(&acl, "#"));
        assert!(sub(&acl, "+/broker/secret"));
        assert!(sub(&acl, "$SYS/broker/uptime"));
        assert!(sub(&acl, "$SYS/#"));
        assert!(sub(&acl, "$SYS/broker/+"));
        assert!(!sub(&acl, "$SYS/broker/secret"));
        assert_eq!(anon(&acl, "$SYS/broker/secret"), "--");
        // Nor does a deny starting with a wildcard cover a `$` filter.
        let acl = file("topic read $SYS/#\ntopic deny +/x\ntopic deny #\n");
        assert!(sub(&acl, "$SYS/x"));
        assert!(sub(&acl, "$SYS/#"));
        assert!(!sub(&acl, "#"));
        assert!(!sub(&acl, "+/+"));
    }

    #[test]
    fn write_only_and_user_subscriptions() {
        let acl = file(
            "pattern read devices/%c/cmd/#\n\
                       pattern write devices/%c/state\n\
                       user ui\n\
                       topic read devices/+/state\n",
        );
        assert!(acl.allows_subscribe("d1", None, "devices/d1/cmd/#"));
        assert!(acl.allows_subscribe("d1", None, "devices/d1/cmd/reboot"));
        assert!(!acl.allows_subscribe("d1", None, "devices/d2/cmd/#"));
        // Wider than its own subtree: only its own commands are delivered.
        assert!(acl.allows_subscribe("d1", None, "devices/+/cmd/#"));
        assert!(!acl.allows("d1", None, "devices/d2/cmd/reboot", Read));
        assert!(!acl.allows_subscribe("d1", None, "devices/d1/state"));
        assert!(!acl.allows_subscribe("d1", None, "devices/+/state"));
        assert!(acl.allows_subscribe("ui-1", Some("ui"), "devices/+/state"));
        assert!(acl.allows_subscribe("ui-1", Some("ui"), "devices/#"));
        assert!(!acl.allows("ui-1", Some("ui"), "devices/d1/cmd/reboot", Read));
        assert!(!acl.allows_subscribe("ui-1", Some("ui"), "devices/+/other/#"));
        assert!(!acl.allows_subscribe("ui-1", None, "devices/+/state"));
    }

    #[test]
    fn shared_subscriptions_are_checked_on_the_inner_filter() {
        let acl = file("topic read sensors/#\ntopic deny sensors/private/#\n");
        assert!(sub(&acl, "$share/g/sensors/public/+"));
        assert!(sub(&acl, "$share/group-1/sensors/public/#"));
        assert!(sub(&acl, "$share/g/sensors/#"));
        assert!(sub(&acl, "$share/g/sensors/+/t"));
        assert_eq!(anon(&acl, "sensors/private/t"), "--");
        assert!(!sub(&acl, "$share/g/sensors/private/x"));
        assert!(!sub(&acl, "$share/g/sensors/private/#"));
        assert!(!sub(&acl, "$share/g/other"));
        // The group is not part of the topic.
        assert!(!sub(&acl, "$share/sensors/other"));
        // Invalid filters are refused outright.
        for bad in [
            "$share/g",
            "$share//sensors/a",
            "$share/g+/sensors/a",
            "sensors/#/x",
            "",
            "sensors/a+",
        ] {
            assert!(!sub(&acl, bad), "{bad}");
        }
        // A `$share/…` rule does not grant shared subscriptions (nor does it in Mosquitto).
        let acl = file("topic read $share/g/x\n");
        assert!(!sub(&acl, "$share/g/x"));
    }

    // ----- realistic files --------------------------------------------------------------

    #[test]
    fn mosquittos_example_file() {
        // aclfile.example from the Mosquitto source tree.
        let acl = file(
            "# This affects access control for clients with no username.\n\
                       topic read $SYS/#\n\
                       \n\
                       # This only affects clients with username \"roger\".\n\
                       user roger\n\
                       topic foo/bar\n\
                       \n\
                       # This affects all clients.\n\
                       pattern write $SYS/broker/connection/%c/state\n",
        );
        assert_eq!(anon(&acl, "$SYS/broker/uptime"), "r-");
        assert!(sub(&acl, "$SYS/#"));
        assert_eq!(anon(&acl, "foo/bar"), "--");
        assert_eq!(access(&acl, "c", Some("roger"), "foo/bar"), "rw");
        assert_eq!(access(&acl, "c", Some("roger"), "$SYS/broker/uptime"), "--");
        assert_eq!(access(&acl, "c", Some("roger"), "foo/baz"), "--");
        assert!(acl.allows_subscribe("c", Some("roger"), "foo/bar"));
        assert!(acl.allows_subscribe("c", Some("roger"), "foo/+"));
        assert!(!acl.allows_subscribe("c", Some("roger"), "foo/baz"));
        assert!(!acl.allows_subscribe("c", Some("roger"), "$SYS/#"));
        assert!(acl.allows(
            "bridge1",
            None,
            "$SYS/broker/connection/bridge1/state",
            Write
        ));
        assert!(acl.allows(
            "bridge1",
            Some("roger"),
            "$SYS/broker/connection/bridge1/state",
            Write
        ));
        assert!(!acl.allows(
            "bridge1",
            None,
            "$SYS/broker/connection/bridge2/state",
            Write
        ));
    }

    #[test]
    fn a_home_automation_file() {
        let acl = file(
            "# Anonymous clients: read-only dashboard data.\n\
                       topic read home/+/temperature\n\
                       topic read home/+/humidity\n\
                       \n\
                       user homeassistant\n\
                       topic readwrite home/#\n\
                       topic readwrite homeassistant/#\n\
                       topic deny home/alarm/code\n\
                       topic read $SYS/broker/#\n\
                       \n\
                       user zigbee2mqtt\n\
                       topic readwrite zigbee2mqtt/#\n\
                       topic write home/+/temperature\n\
                       \n\
                       # Every device owns its subtree; its username is its room.\n\
                       pattern readwrite devices/%c/#\n\
                       pattern read home/%u/#\n\
                       pattern deny devices/%c/firmware/key\n\
                       pattern write $SYS/broker/connection/%c/state\n",
        );
        assert_eq!(anon(&acl, "home/kitchen/temperature"), "r-");
        assert_eq!(anon(&acl, "home/kitchen/light"), "--");
        assert!(sub(&acl, "home/+/temperature"));
        assert!(sub(&acl, "home/#"));
        assert!(!sub(&acl, "home/kitchen/light"));
        assert!(!sub(&acl, "home/+/light/#"));

        let ha = |topic| access(&acl, "ha", Some("homeassistant"), topic);
        assert_eq!(ha("home/kitchen/light/set"), "rw");
        assert_eq!(ha("home/alarm/code"), "--");
        assert_eq!(ha("homeassistant/status"), "rw");
        assert_eq!(ha("$SYS/broker/uptime"), "r-");
        assert_eq!(ha("zigbee2mqtt/bridge"), "--");
        assert!(acl.allows_subscribe("ha", Some("homeassistant"), "homeassistant/#"));
        // The alarm code is never delivered, but `home/#` is the usual subscription.
        assert!(acl.allows_subscribe("ha", Some("homeassistant"), "home/#"));
        assert!(acl.allows_subscribe("ha", Some("homeassistant"), "home/kitchen/#"));
        assert!(!acl.allows_subscribe("ha", Some("homeassistant"), "home/alarm/code"));
        assert!(!acl.allows_subscribe("ha", Some("homeassistant"), "zigbee2mqtt/#"));

        let z2m = |topic| access(&acl, "z2m", Some("zigbee2mqtt"), topic);
        assert_eq!(z2m("zigbee2mqtt/bridge/state"), "rw");
        assert_eq!(z2m("home/attic/temperature"), "-w");
        assert_eq!(z2m("home/attic/humidity"), "--");

        let dev = |topic| access(&acl, "esp-42", Some("kitchen"), topic);
        assert_eq!(dev("devices/esp-42/state"), "rw");
        assert_eq!(dev("devices/esp-42/firmware/key"), "--");
        assert_eq!(dev("devices/esp-43/state"), "--");
        assert_eq!(dev("home/kitchen/light"), "r-");
        assert_eq!(dev("home/attic/light"), "--");
        assert!(acl.allows_subscribe("esp-42", Some("kitchen"), "home/kitchen/#"));
        assert!(acl.allows_subscribe("esp-42", Some("kitchen"), "devices/esp-42/#"));
        assert!(acl.allows_subscribe("esp-42", Some("kitchen"), "devices/esp-42/cmd/+"));
        assert!(!acl.allows_subscribe("esp-42", Some("kitchen"), "devices/esp-42/firmware/key"));
        assert!(!acl.allows_subscribe("esp-42", Some("kitchen"), "devices/esp-43/#"));
        assert!(!acl.allows_subscribe("esp-42", Some("kitchen"), "home/attic/#"));
        // Unknown users still get the patterns.
        assert_eq!(
            access(&acl, "esp-1", Some("nobody"), "devices/esp-1/x"),
            "rw"
        );
    }

    /// Every topic name of up to `depth` levels drawn from `levels` (the empty topic excluded).
    fn topic_universe(levels: &[&str], depth: usize) -> Vec<String> {
        let mut all = Vec::new();
        let mut current: Vec<String> = vec![String::new()];
        for d in 0..depth {
            let mut next = Vec::new();
            for prefix in &current {
                for level in levels {
                    next.push(if d == 0 {
                        (*level).to_owned()
                    } else {
                        format!("{prefix}/{level}")
                    });
                }
            }
            all.extend(next.iter().filter(|t| !t.is_empty()).cloned());
            current = next;
        }
        all
    }

    /// A filter standing for the topics of a [`Rule::intersection`].
    fn intersection_filter(levels: &[Option<&str>], tail: bool) -> String {
        let mut parts: Vec<&str> = levels.iter().map(|l| l.unwrap_or("+")).collect();
        if tail {
            parts.push("#");
        }
        parts.join("/")
    }

    #[test]
    fn generality_overlap_and_subscriptions_agree_with_brute_force() {
        // Every valid filter of up to three levels (plus an optional `/#`) over these levels
        // is compared, as rule and as subscription, with the sets of topics they match in
        // a universe deep enough to hold a witness for every difference (one level more
        // than the longest filter; "z" stands for any other level).
        let universe = topic_universe(&["a", "", "$SYS", "z"], 5);
        let mut filters = vec!["#".to_owned()];
        for topic in topic_universe(&["a", "", "$SYS", "+"], 3) {
            filters.push(format!("{topic}/#"));
            filters.push(topic);
        }
        filters.retain(|f| topic::validate_filter(f).is_ok());
        let matched: Vec<Vec<bool>> = filters
            .iter()
            .map(|f| universe.iter().map(|t| topic::matches(f, t)).collect())
            .collect();
        let who = Who::new("c", None);
        for (i, rule) in filters.iter().enumerate() {
            let grant = file(&format!("topic read {rule}\n"));
            let deny = file(&format!(
                "topic read #\ntopic read $SYS/#\ntopic deny {rule}\n"
            ));
            let parsed = &grant.anonymous.grant[0];
            for (j, filter) in filters.iter().enumerate() {
                let pairs = || matched[j].iter().zip(&matched[i]);
                let covers = pairs().all(|(&by_filter, &by_rule)| !by_filter || by_rule);
                let overlaps = pairs().any(|(&by_filter, &by_rule)| by_filter && by_rule);
                // The helpers. The one deliberate gap, as in Mosquitto: `+/#` is not taken
                // to cover `#` (it only makes the quick refusal below miss a case).
                let quick_covers = covers && !(rule == "+/#" && filter == "#");
                assert_eq!(
                    parsed.covers(filter, &who),
                    quick_covers,
                    "{rule} covers {filter}"
                );
                assert_eq!(
                    parsed.overlaps(filter, &who),
                    overlaps,
                    "{rule} overlaps {filter}"
                );
                // The intersection holds every common topic, and nothing else but `$`
                // topics (the `$` rule is left to its caller).
                match parsed.intersection(filter, &who) {
                    None => assert!(!overlaps, "{rule} ∩ {filter} is empty"),
                    Some((levels, tail)) => {
                        let pattern = intersection_filter(&levels, tail);
                        for (t, topic) in universe.iter().enumerate() {
                            let both = matched[i][t] && matched[j][t];
                            let by_pattern = topic::matches(&pattern, topic);
                            assert!(
                                by_pattern == both || (!both && topic.starts_with('$')),
                                "{rule} ∩ {filter} = {pattern} on {topic}"
                            );
                        }
                    }
                }
                // Subscriptions: with one read rule, granted exactly when it overlaps the
                // filter; with one deny rule under read-all, refused exactly when the deny
                // covers the filter (`+/#` included: nothing under `#` is readable then).
                assert_eq!(
                    grant.allows_subscribe("c", None, filter),
                    overlaps,
                    "read {rule}, subscribe {filter}"
                );
                assert_eq!(
                    !deny.allows_subscribe("c", None, filter),
                    covers,
                    "deny {rule}, subscribe {filter}"
                );
            }
        }
    }

    // ----- properties -------------------------------------------------------------------

    const NAMES: [&str; 5] = ["a", "b", "", "$SYS", "c"];
    const CLIENT_IDS: [&str; 8] = ["a", "b", "c/a", "+", "a#", "", "$SYS", "~0"];
    const USERNAMES: [Option<&str>; 5] = [None, Some("a"), Some("u1"), Some("b/a"), Some("#")];

    fn filter_levels(names: &'static [&'static str]) -> impl Strategy<Value = String> {
        let level = prop_oneof![
            4 => proptest::sample::select(names),
            2 => Just("+"),
        ];
        (proptest::collection::vec(level, 1..4), any::<bool>()).prop_map(|(levels, hash)| {
            let mut filter = levels.join("/");
            if filter.is_empty() {
                filter.push('a');
            }
            if hash {
                filter.push_str("/#");
            }
            filter
        })
    }

    fn filter() -> impl Strategy<Value = String> {
        prop_oneof![Just("#".to_owned()), filter_levels(&NAMES)]
    }

    fn rule_filter() -> impl Strategy<Value = String> {
        const RULE_NAMES: [&str; 7] = ["a", "b", "", "$SYS", "c", "%c", "%u"];
        prop_oneof![1 => Just("#".to_owned()), 6 => filter_levels(&RULE_NAMES)]
    }

    fn acl_text() -> impl Strategy<Value = String> {
        let line = (
            0..5usize,
            proptest::sample::select(&["", "read ", "write ", "readwrite ", "deny "][..]),
            rule_filter(),
        )
            .prop_map(|(kind, access, filter)| match kind {
                0 => "user u1\n".to_owned(),
                1 => "user a\n".to_owned(),
                2 => format!("topic {access}{filter}\n"),
                _ => format!("pattern {access}{filter}\n"),
            });
        proptest::collection::vec(line, 0..8).prop_map(|lines| lines.concat())
    }

    /// A topic name matched by `filter`: each `+` and `#` replaced by generated levels.
    fn instantiate(filter: &str, picks: &[usize]) -> String {
        let mut picks = picks.iter().copied().cycle();
        let mut levels = Vec::new();
        for level in filter.split('/') {
            match level {
                "+" => levels.push(NAMES[picks.next().unwrap() % NAMES.len()]),
                "#" => {
                    for _ in 0..picks.next().unwrap() % 4 {
                        levels.push(NAMES[picks.next().unwrap() % NAMES.len()]);
                    }
                }
                name => levels.push(name),
            }
        }
        if levels.is_empty() {
            levels.push("a");
        }
        levels.join("/")
    }

    /// Every topic of up to five levels over the levels named by the file, the filter, the
    /// client id and the username, and "z" for any other level: complete for the question
    /// "is some topic under the filter readable", since a topic escaping every deny rule
    /// (of up to four levels) has a stand-in here.
    fn property_universe(
        text: &str,
        filter: &str,
        client: &str,
        user: Option<&str>,
    ) -> Vec<String> {
        let mut levels: Vec<&str> = vec!["z", client];
        levels.extend(user);
        for rule in text.lines().filter_map(|l| l.split_once(' ')) {
            if rule.0 != "user" {
                let filter = rule.1.rsplit(' ').next().unwrap();
                levels.extend(filter.split('/'));
            }
        }
        levels.extend(filter.split('/'));
        levels.retain(|l| !l.contains(['/', '+', '#']));
        levels.sort_unstable();
        levels.dedup();
        topic_universe(&levels, 5)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Subscriptions against brute force over a complete small topic space:
        /// (1) a granted subscription can deliver something: some topic it matches is
        /// readable; (2) a subscription is refused exactly when no topic it matches is
        /// readable or an applicable deny rule matches every topic it matches.
        #[test]
        fn subscriptions_agree_with_brute_force(
            text in acl_text(),
            filter in filter(),
            client in proptest::sample::select(&CLIENT_IDS[..]),
            user in proptest::sample::select(&USERNAMES[..]),
            share in any::<bool>(),
        ) {
            let acl = AclFile::parse(&text, Path::new("acl")).unwrap();
            let subscribed = if share { format!("$share/g/{filter}") } else { filter.clone() };
            let granted = acl.allows_subscribe(client, user, &subscribed);
            let universe = property_universe(&text, &filter, client, user);
            let under: Vec<&String> = universe
                .iter()
                .filter(|t| topic::matches(&filter, t))
                .collect();
            prop_assert!(!under.is_empty(), "{}", filter);
            let readable = under.iter().find(|t| acl.allows(client, user, t, Read));
            let who = Who::new(client, user);
            let denies: Vec<&Rule> = acl
                .own_rules(user)
                .into_iter()
                .flat_map(|s| &s.deny)
                .chain(&acl.patterns.deny)
                .collect();
            let covering = denies
                .iter()
                .find(|r| under.iter().all(|t| r.matches_topic(t, &who)));
            // (1)
            if granted {
                prop_assert!(
                    readable.is_some(),
                    "{text}\nsubscribe {subscribed} granted, but no topic under it is readable"
                );
            }
            // (2), both directions.
            prop_assert_eq!(
                !granted,
                readable.is_none() || covering.is_some(),
                "{}\nsubscribe {}: granted {}, readable {:?}, covering deny {:?}",
                text, subscribed, granted, readable, covering.map(|r| &r.filter)
            );
            // The quick refusal is sound: a deny that `covers` the filter denies all of it.
            for rule in &denies {
                if rule.covers(&filter, &who) {
                    prop_assert!(
                        under.iter().all(|t| rule.matches_topic(t, &who)),
                        "{} does not cover {}", rule.filter, filter
                    );
                }
            }
        }

        /// Beyond the brute-force topic space: a readable topic the filter matches always
        /// lets the subscription through (nothing deliverable is ever refused).
        #[test]
        fn a_readable_matched_topic_grants_the_subscription(
            text in acl_text(),
            filter in filter(),
            client in proptest::sample::select(&CLIENT_IDS[..]),
            user in proptest::sample::select(&USERNAMES[..]),
            picks in proptest::collection::vec(0..64usize, 1..16),
            share in any::<bool>(),
        ) {
            let acl = AclFile::parse(&text, Path::new("acl")).unwrap();
            let subscribed = if share { format!("$share/g/{filter}") } else { filter.clone() };
            let topic = instantiate(&filter, &picks);
            if topic::validate_name(&topic).is_ok()
                && topic::matches(&filter, &topic)
                && acl.allows(client, user, &topic, Read)
            {
                prop_assert!(
                    acl.allows_subscribe(client, user, &subscribed),
                    "{text}\nread {topic} allowed, but subscribe {subscribed} refused"
                );
            }
        }

        /// For a filter without wildcards, the subscription check is exactly the read check.
        #[test]
        fn subscribing_to_a_name_is_reading_it(
            text in acl_text(),
            name in proptest::collection::vec(proptest::sample::select(&NAMES[..]), 1..4),
            client in proptest::sample::select(&CLIENT_IDS[..]),
            user in proptest::sample::select(&USERNAMES[..]),
        ) {
            let acl = AclFile::parse(&text, Path::new("acl")).unwrap();
            let name = name.join("/");
            prop_assert_eq!(
                acl.allows_subscribe(client, user, &name),
                acl.allows(client, user, &name, Read),
                "{}\n{}", text, name
            );
        }

        /// Substituting `%c` level by level matches what the literal rule would.
        #[test]
        fn substitution_equals_the_literal_rule(
            filter in rule_filter(),
            client in proptest::sample::select(&["a", "b", "dev1"][..]),
            topic_levels in proptest::collection::vec(proptest::sample::select(&["a", "b", "dev1", "", "$SYS", "%c", "%u"][..]), 1..5),
            access_word in proptest::sample::select(&["read", "write", "readwrite", "deny"][..]),
        ) {
            let literal = filter
                .split('/')
                .map(|l| match l { "%c" => client, "%u" => "u", l => l })
                .collect::<Vec<_>>()
                .join("/");
            let with_patterns = AclFile::parse(&format!("pattern readwrite #\npattern readwrite $SYS/#\npattern {access_word} {filter}\n"), Path::new("p")).unwrap();
            let with_literal = AclFile::parse(&format!("pattern readwrite #\npattern readwrite $SYS/#\npattern {access_word} {literal}\n"), Path::new("l")).unwrap();
            let topic = topic_levels.join("/");
            for access in [Read, Write] {
                prop_assert_eq!(
                    with_patterns.allows(client, Some("u"), &topic, access),
                    with_literal.allows(client, Some("u"), &topic, access),
                    "{} vs {} on {}", filter, literal, topic
                );
            }
            for sub_filter in [topic.as_str(), "#", "a/#", "+/+", "$SYS/#"] {
                prop_assert_eq!(
                    with_patterns.allows_subscribe(client, Some("u"), sub_filter),
                    with_literal.allows_subscribe(client, Some("u"), sub_filter),
                    "{} vs {} subscribing {}", filter, literal, sub_filter
                );
            }
        }
    }
}
