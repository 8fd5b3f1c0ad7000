//! The Uri-Query options of `/ps/` requests, EMQX-compatible long and short names:
//! `qos`/`q`, `retain`/`r`, `clientid`/`c`, `username`/`u`, `password`/`p`.

use thiserror::Error;

/// A query value the gateway cannot use: answered with 4.00 Bad Request.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum QueryError {
    #[error("query option is not UTF-8")]
    NotUtf8,
    #[error("qos must be 0, 1 or 2, not {0:?}")]
    Qos(String),
    #[error("retain must be true or false, not {0:?}")]
    Retain(String),
    #[error("{0} needs a value")]
    Missing(&'static str),
    #[error("{0} given twice")]
    Repeated(&'static str),
}

/// Who the device says it is; all `None` means "anonymous device".
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Credentials {
    pub client_id: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl Credentials {
    pub fn is_anonymous(&self) -> bool {
        self.client_id.is_none() && self.username.is_none() && self.password.is_none()
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Query {
    pub qos: Option<u8>,
    pub retain: Option<bool>,
    pub credentials: Credentials,
}

/// Parses every Uri-Query option. Unknown keys are ignored (devices written for other
/// gateways send their own), known keys with bad values are errors.
pub fn parse<'a>(options: impl IntoIterator<Item = &'a Vec<u8>>) -> Result<Query, QueryError> {
    let mut query = Query::default();
    for option in options {
        let text = std::str::from_utf8(option).map_err(|_| QueryError::NotUtf8)?;
        let (key, value) = match text.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (text, None),
        };
        match key {
            "qos" | "q" => {
                let v = value.ok_or(QueryError::Missing("qos"))?;
                let qos = match v {
                    "0" => 0,
                    "1" => 1,
                    "2" => 2,
                    _ => return Err(QueryError::Qos(v.to_owned())),
                };
                set(&mut query.qos, qos, "qos")?;
            }
            "retain" | "r" => {
                let v = value.ok_or(QueryError::Missing("retain"))?;
                let retain = match v {
                    "true" => true,
                    "false" => false,
                    _ => return Err(QueryError::Retain(v.to_owned())),
                };
                set(&mut query.retain, retain, "retain")?;
            }
            "clientid" | "c" => text_value(&mut query.credentials.client_id, value, "clientid")?,
            "username" | "u" => text_value(&mut query.credentials.username, value, "username")?,
            "password" | "p" => text_value(&mut query.credentials.password, value, "password")?,
            _ => {}
        }
    }
    Ok(query)
}

fn set<T>(slot: &mut Option<T>, value: T, name: &'static str) -> Result<(), QueryError> {
    if slot.replace(value).is_some() {
        return Err(QueryError::Repeated(name));
    }
    Ok(())
}

fn text_value(
    slot: &mut Option<String>,
    value: Option<&str>,
    name: &'static str,
) -> Result<(), QueryError> {
    let value = value.ok_or(QueryError::Missing(name))?;
    set(slot, value.to_owned(), name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(items: &[&str]) -> Result<Query, QueryError> {
        let owned: Vec<Vec<u8>> = items.iter().map(|s| s.as_bytes().to_vec()).collect();
        parse(&owned)
    }

    #[test]
    fn long_and_short_names() {
        let query = q(&[
            "qos=2",
            "retain=true",
            "clientid=dev1",
            "u=alice",
            "p=s=cret",
        ])
        .unwrap();
        assert_eq!(query.qos, Some(2));
        assert_eq!(query.retain, Some(true));
        assert_eq!(query.credentials.client_id.as_deref(), Some("dev1"));
        assert_eq!(query.credentials.username.as_deref(), Some("alice"));
        assert_eq!(query.credentials.password.as_deref(), Some("s=cret"));
        let query = q(&["q=0", "r=false", "c=x"]).unwrap();
        assert_eq!((query.qos, query.retain), (Some(0), Some(false)));
        assert!(q(&[]).unwrap().credentials.is_anonymous());
    }

    #[test]
    fn bad_values_are_errors() {
        assert_eq!(q(&["qos=3"]), Err(QueryError::Qos("3".into())));
        assert_eq!(q(&["qos="]), Err(QueryError::Qos("".into())));
        assert_eq!(q(&["retain=yes"]), Err(QueryError::Retain("yes".into())));
        assert_eq!(q(&["qos"]), Err(QueryError::Missing("qos")));
        assert_eq!(q(&["qos=1", "q=1"]), Err(QueryError::Repeated("qos")));
        assert_eq!(parse(&[vec![0xff]]), Err(QueryError::NotUtf8));
    }

    #[test]
    fn unknown_keys_are_ignored() {
        assert_eq!(
            q(&["expiry=10", "token=abc", "flag"]).unwrap(),
            Query::default()
        );
    }
}
