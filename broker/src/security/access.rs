//! One listener's access rules at run time: anonymous access and the password and ACL
//! files its settings name, loaded at start and read again on reload.

use std::sync::{Arc, RwLock};

use super::acl::{Access, AclFile};
use super::password::PasswordFile;
use crate::config::Security;
use crate::locks::{read, write};

#[derive(Debug, Default)]
pub struct ListenerAccess {
    security: Security,
    passwords: RwLock<Option<Arc<PasswordFile>>>,
    acl: RwLock<Option<Arc<AclFile>>>,
}

/// Who a connected client is, for ACL checks on what it publishes and receives. The
/// checks use the ACL in force at the time, so a reload applies to connected clients.
#[derive(Debug, Clone)]
pub struct Identity {
    pub username: Option<Arc<str>>,
    access: Arc<ListenerAccess>,
}

impl Identity {
    /// May this client publish to (`Write`) or receive from (`Read`) `topic`?
    pub fn allows(&self, client_id: &str, topic: &str, access: Access) -> bool {
        self.access
            .acl()
            .is_none_or(|acl| acl.allows(client_id, self.username.as_deref(), topic, access))
    }

    /// May this client subscribe to `filter`?
    pub fn allows_subscribe(&self, client_id: &str, filter: &str) -> bool {
        self.access
            .acl()
            .is_none_or(|acl| acl.allows_subscribe(client_id, self.username.as_deref(), filter))
    }
}

impl ListenerAccess {
    /// Loads the files `security` names; an error names the file and what is wrong.
    pub fn load(security: &Security) -> Result<Self, String> {
        let access = Self {
            security: security.clone(),
            ..Self::default()
        };
        access.reload()?;
        Ok(access)
    }

    /// Reads the files again. On error the rules in force stay as they were.
    pub fn reload(&self) -> Result<(), String> {
        let passwords = match &self.security.password_file {
            Some(path) => Some(Arc::new(
                PasswordFile::load(path.clone()).map_err(|e| e.to_string())?,
            )),
            None => None,
        };
        let acl = match &self.security.acl_file {
            Some(path) => Some(Arc::new(AclFile::load(path).map_err(|e| e.to_string())?)),
            None => None,
        };
        *write(&self.passwords) = passwords;
        *write(&self.acl) = acl;
        Ok(())
    }

    /// Whether a CONNECT with these credentials is let in. `anonymous` says whether this
    /// client may connect without a user name (the listener's allow_anonymous, or its
    /// loopback default). As in Mosquitto, a user name is checked against the password
    /// file when there is one, and accepted only if anonymous clients are when there is not.
    pub fn authenticate(
        &self,
        username: Option<&str>,
        password: Option<&[u8]>,
        anonymous: bool,
    ) -> bool {
        match username {
            Some(username) if self.checks_passwords() => {
                self.verify_password(username, password.unwrap_or_default())
            }
            _ => anonymous,
        }
    }

    /// Whether a user name is checked against a password file: a check that may take
    /// milliseconds (argon2), which the network shell runs off the async workers.
    pub fn checks_passwords(&self) -> bool {
        read(&self.passwords).is_some()
    }

    /// Checks a password against the password file (false without one).
    pub fn verify_password(&self, username: &str, password: &[u8]) -> bool {
        // Clone the Arc so a reload is not held up by a slow check.
        let file = read(&self.passwords).clone();
        file.is_some_and(|f| f.verify(username, password))
    }

    /// The identity a client authenticated as on this listener.
    pub fn identity(self: &Arc<Self>, username: Option<&str>) -> Identity {
        Identity {
            username: username.map(Arc::from),
            access: Arc::clone(self),
        }
    }

    fn acl(&self) -> Option<Arc<AclFile>> {
        read(&self.acl).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn temp(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("midge-access-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn users_need_the_password_file_or_anonymous_access() {
        let mut file = PasswordFile::new(temp("passwd", ""));
        file.set("alice", b"secret").unwrap();
        file.save().unwrap();
        let security = Security {
            password_file: Some(file.path().to_path_buf()),
            ..Security::default()
        };
        let access = ListenerAccess::load(&security).unwrap();
        assert!(access.authenticate(Some("alice"), Some(b"secret"), false));
        assert!(!access.authenticate(Some("alice"), Some(b"wrong"), true));
        assert!(!access.authenticate(Some("alice"), None, true));
        assert!(!access.authenticate(Some("bob"), Some(b"secret"), true));
        assert!(!access.authenticate(None, None, false));
        assert!(access.authenticate(None, None, true));

        let open = ListenerAccess::load(&Security::default()).unwrap();
        assert!(open.authenticate(Some("anyone"), None, true));
        assert!(
            !open.authenticate(Some("anyone"), None, false),
            "no password file, no anonymous: nobody"
        );
    }

    #[test]
    fn reload_keeps_the_rules_in_force_when_the_file_is_broken() {
        let path = temp("acl", "user alice\ntopic readwrite a/#\n");
        let security = Security {
            acl_file: Some(path.clone()),
            ..Security::default()
        };
        let access = Arc::new(ListenerAccess::load(&security).unwrap());
        let alice = access.identity(Some("alice"));
        assert!(alice.allows("c", "a/b", Access::Write));
        assert!(!alice.allows("c", "b", Access::Write));
        std::fs::write(&path, "bogus line\n").unwrap();
        let error = access.reload().unwrap_err();
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(
            access
                .identity(Some("alice"))
                .allows("c", "a/b", Access::Write)
        );
        assert!(
            ListenerAccess::load(&Security {
                acl_file: Some("/nonexistent/acl".into()),
                ..Security::default()
            })
            .is_err()
        );
    }
}
