//! Mosquitto-compatible password files (`password_file`).
//!
//! One user per line, `username:hash`; blank lines and lines starting with `#` are kept
//! but mean nothing. Three hash formats are read, whichever tool wrote them:
//!
//! | Prefix | Algorithm | Written by |
//! |---|---|---|
//! | `$6$<salt>$<digest>` | one SHA-512 over password ‖ salt (*not* crypt(3)'s sha512-crypt) | `mosquitto_passwd -H sha512` (Mosquitto ≤ 1.6) |
//! | `$7$<iterations>$<salt>$<digest>` | PBKDF2-HMAC-SHA512, 64-byte output | `mosquitto_passwd` 2.0 (101 iterations), 2.1 (1000) |
//! | `$argon2id$v=19$m=…,t=…,p=…$<salt>$<digest>` | Argon2id, PHC string | Mosquitto 2.1's default, `midge passwd`'s default |
//!
//! `$6$` and `$7$` use standard base64 with padding (OpenSSL's encoder), Argon2 strings
//! standard base64 without padding (libargon2's); either is read with or without padding.
//!
//! The broker builds one [`PasswordFile`] with [`PasswordFile::load`], calls
//! [`PasswordFile::verify`] for each CONNECT that carries a user name and
//! [`PasswordFile::reload`] on SIGHUP. `midge passwd` edits files with [`PasswordFile::set`],
//! [`PasswordFile::delete`] and [`PasswordFile::save`].
//!
//! Verification is CPU-bound (Argon2 takes milliseconds to tens of milliseconds, by
//! design), so async callers should run it on a blocking thread
//! (`tokio::task::spawn_blocking`) and bound how many run at once.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::locks::lock;
use base64::Engine as _;
use base64::engine::general_purpose::{
    STANDARD, STANDARD_NO_PAD, STANDARD_NO_PAD_INDIFFERENT, STANDARD_PAD_INDIFFERENT,
};
use sha2::{Digest as _, Sha256, Sha512};
use subtle::ConstantTimeEq;

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Argon2Params {
    /// Memory, in KiB.
    pub m_kib: u32,
    /// Passes over the memory.
    pub t: u32,
    /// Lanes (midge computes them one after the other).
    pub p: u32,
}

/// The Argon2id parameters `midge passwd` writes by default: 8 MiB, 2 passes, 1 lane.
///
/// Chosen for a Raspberry Pi Zero (one ARM1176 core at 1 GHz, 512 MB), taken as 10–15×
/// slower than the development machine (AMD EPYC, one core). Measured there with
/// `cargo run --release -p midge --example passwd_bench` (median of 20 verifications;
/// memory: peak resident growth of the process):
///
/// | Parameters | Time | Memory | Pi Zero, estimated |
/// |---|---|---|---|
/// | m=4 MiB, t=1 | 1.0 ms | 4 MiB | 10–16 ms |
/// | m=8 MiB, t=1 | 2.1 ms | 8 MiB | 21–32 ms |
/// | **m=8 MiB, t=2** | **4.3 ms** | **8 MiB** | **43–64 ms** |
/// | m=12 MiB, t=1 | 3.2 ms | 12 MiB | 32–48 ms |
/// | m=19 MiB, t=2 (OWASP minimum) | 11.0 ms | 19 MiB | 110–170 ms |
/// | m=46 MiB, t=1 (Mosquitto 2.1) | 16.4 ms | 46 MiB | 165–245 ms |
///
/// 8 MiB/t=2 is the most work that stays well under 100 ms per CONNECT on a Pi Zero,
/// with room for the Zero's slower memory (Argon2 is bound by memory bandwidth, so the
/// real factor may be worse than the CPU's), and 8 MiB per verification in flight leaves
/// room for a few at once in 512 MB. It is about 2.5× less work than OWASP's minimum
/// (19 MiB/t=2): the file is readable by root and the broker only (mode 0600), while the
/// cost on the Pi is paid at every CONNECT the cache does not cover. Mosquitto 2.1's
/// 46 MiB would cost a quarter of a second and 46 MiB per concurrent CONNECT there.
/// Hashes carry their own parameters, so a file written elsewhere with stronger settings
/// verifies unchanged, at its own cost.
pub const DEFAULT_ARGON2: Argon2Params = Argon2Params {
    m_kib: 8 * 1024,
    t: 2,
    p: 1,
};

/// PBKDF2-HMAC-SHA512 iterations `midge passwd -H sha512-pbkdf2` writes: OWASP's 2023
/// figure for that PRF (Mosquitto 2.0 writes 101, 2.1 writes 1000). It costs 63 ms per
/// verification on the development machine, 15× the default Argon2id and so most of a
/// second on a Pi Zero: use it only for files Mosquitto 2.0 must read too.
pub const PBKDF2_ITERATIONS: u32 = 210_000;

/// Salt lengths midge writes. Mosquitto 2.0 refuses `$6$`/`$7$` salts of any other
/// length than 12 bytes, so those keep it; Argon2 gets the usual 16.
const MOSQUITTO_SALT_LEN: usize = 12;
const ARGON2_SALT_LEN: usize = 16;
const ARGON2_OUTPUT_LEN: usize = 32;
const SHA512_LEN: usize = 64;

/// Longest user name and password MQTT can carry (two-byte length prefix).
const MAX_FIELD_LEN: usize = 65_535;

/// Most successful verifications remembered (see [`PasswordFile::verify`]).
pub const CACHE_CAPACITY: usize = 1024;

/// How a new password is hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `$argon2id$`: memory-hard; Mosquitto 2.1 and midge read it, Mosquitto 2.0 does not.
    Argon2id(Argon2Params),
    /// `$7$`: PBKDF2-HMAC-SHA512; every Mosquitto since 2.0 reads it.
    Sha512Pbkdf2 { iterations: u32 },
    /// `$6$`: one SHA-512; legacy (Mosquitto ≤ 1.6). Fast to brute-force if the file leaks.
    Sha512,
}

impl Algorithm {
    /// What `midge passwd` writes without `-H`.
    pub const DEFAULT: Self = Self::Argon2id(DEFAULT_ARGON2);

    /// `-H`'s names, with midge's parameters: `argon2id`, `sha512-pbkdf2`, `sha512`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "argon2id" => Some(Self::Argon2id(DEFAULT_ARGON2)),
            "sha512-pbkdf2" => Some(Self::Sha512Pbkdf2 {
                iterations: PBKDF2_ITERATIONS,
            }),
            "sha512" => Some(Self::Sha512),
            _ => None,
        }
    }
}

impl Default for Algorithm {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What a hash is, apart from its salt and digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Sha512,
    Pbkdf2 {
        iterations: u32,
    },
    Argon2id {
        /// 0x10 or 0x13.
        version: u32,
        params: Argon2Params,
    },
}

/// One password hash, as found in a password file.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash {
    kind: Kind,
    salt: Vec<u8>,
    digest: Vec<u8>,
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The salt and digest are secrets of a kind: keep them out of logs.
        f.debug_struct("PasswordHash")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl PasswordHash {
    /// Reads one hash: `$6$…`, `$7$…` or `$argon2id$…`. The error says what is wrong.
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Some(rest) = s.strip_prefix("$6$") {
            let [salt, digest] = fields(rest, "$6$<salt>$<hash>")?;
            let hash = Self {
                kind: Kind::Sha512,
                salt: decode_b64(salt, "salt")?,
                digest: decode_b64(digest, "hash")?,
            };
            hash.check_sha512_lengths()?;
            Ok(hash)
        } else if let Some(rest) = s.strip_prefix("$7$") {
            let [iterations, salt, digest] = fields(rest, "$7$<iterations>$<salt>$<hash>")?;
            let iterations = iterations
                .parse::<u32>()
                .ok()
                .filter(|&n| n >= 1)
                .ok_or_else(|| format!("\"{iterations}\" is not a valid iteration count"))?;
            let hash = Self {
                kind: Kind::Pbkdf2 { iterations },
                salt: decode_b64(salt, "salt")?,
                digest: decode_b64(digest, "hash")?,
            };
            hash.check_sha512_lengths()?;
            Ok(hash)
        } else if let Some(rest) = s.strip_prefix("$argon2id$") {
            Self::parse_argon2id(rest)
        } else if s.starts_with("$argon2i$") || s.starts_with("$argon2d$") {
            Err("only the argon2id variant of Argon2 is supported".into())
        } else if s.starts_with('$') {
            Err("unknown hash type (midge reads $6$, $7$ and $argon2id$ hashes)".into())
        } else {
            Err("the password is not hashed".into())
        }
    }

    fn check_sha512_lengths(&self) -> Result<(), String> {
        if self.salt.is_empty() {
            return Err("the salt is empty".into());
        }
        if self.digest.len() != SHA512_LEN {
            return Err(format!(
                "the hash is {} bytes long, a SHA-512 hash is {SHA512_LEN}",
                self.digest.len()
            ));
        }
        Ok(())
    }

    /// `[v=<version>$]m=<m>,t=<t>,p=<p>$<salt>$<hash>`, as libargon2 writes it. Parsed
    /// here rather than with the `password-hash` crate, which refuses salts over 48 bytes
    /// and so Mosquitto 2.1's 64-byte ones.
    fn parse_argon2id(rest: &str) -> Result<Self, String> {
        let mut parts: Vec<&str> = rest.split('$').collect();
        let version = match parts.first().and_then(|p| p.strip_prefix("v=")) {
            Some(v) => {
                let v = v
                    .parse::<u32>()
                    .ok()
                    .filter(|v| matches!(v, 0x10 | 0x13))
                    .ok_or_else(|| format!("unsupported Argon2 version \"{v}\""))?;
                parts.remove(0);
                v
            }
            // libargon2 reads a string without a version as version 0x10.
            None => 0x10,
        };
        let [params, salt, digest] = <[&str; 3]>::try_from(parts).map_err(|_| {
            "expected $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>".to_string()
        })?;
        let (mut m, mut t, mut p) = (None, None, None);
        for param in params.split(',') {
            let (name, value) = param
                .split_once('=')
                .ok_or_else(|| format!("\"{param}\" is not an Argon2 parameter"))?;
            let slot = match name {
                "m" => &mut m,
                "t" => &mut t,
                "p" => &mut p,
                _ => return Err(format!("unknown Argon2 parameter \"{name}\"")),
            };
            let value = value
                .parse::<u32>()
                .map_err(|_| format!("Argon2 parameter {name}=\"{value}\" is not a number"))?;
            if slot.replace(value).is_some() {
                return Err(format!("Argon2 parameter {name} is given twice"));
            }
        }
        let (Some(m_kib), Some(t), Some(p)) = (m, t, p) else {
            return Err("the Argon2 parameters need m, t and p".into());
        };
        let hash = Self {
            kind: Kind::Argon2id {
                version,
                params: Argon2Params { m_kib, t, p },
            },
            salt: decode_argon2_b64(salt, "salt")?,
            digest: decode_argon2_b64(digest, "hash")?,
        };
        if hash.salt.len() < argon2::MIN_SALT_LEN {
            return Err(format!(
                "the Argon2 salt must be at least {} bytes",
                argon2::MIN_SALT_LEN
            ));
        }
        hash.argon2()
            .map_err(|e| format!("invalid Argon2 parameters: {e}"))?;
        Ok(hash)
    }

    /// The Argon2 context for an `$argon2id$` hash.
    fn argon2(&self) -> Result<argon2::Argon2<'static>, argon2::Error> {
        let Kind::Argon2id { version, params } = self.kind else {
            return Err(argon2::Error::AlgorithmInvalid);
        };
        let version = argon2::Version::try_from(version)?;
        let params =
            argon2::Params::new(params.m_kib, params.t, params.p, Some(self.digest.len()))?;
        Ok(argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            version,
            params,
        ))
    }

    /// Hashes `password` with a fresh random salt.
    pub fn create(algorithm: Algorithm, password: &[u8]) -> Result<Self, String> {
        let (kind, salt_len, digest_len) = match algorithm {
            Algorithm::Sha512 => (Kind::Sha512, MOSQUITTO_SALT_LEN, SHA512_LEN),
            Algorithm::Sha512Pbkdf2 { iterations } => {
                if iterations == 0 {
                    return Err("PBKDF2 needs at least one iteration".into());
                }
                (Kind::Pbkdf2 { iterations }, MOSQUITTO_SALT_LEN, SHA512_LEN)
            }
            Algorithm::Argon2id(params) => (
                Kind::Argon2id {
                    version: 0x13,
                    params,
                },
                ARGON2_SALT_LEN,
                ARGON2_OUTPUT_LEN,
            ),
        };
        let mut salt = vec![0; salt_len];
        getrandom::fill(&mut salt).map_err(|e| format!("cannot get random bytes: {e}"))?;
        let mut hash = Self {
            kind,
            salt,
            digest: vec![0; digest_len],
        };
        hash.digest = hash.compute(password).map_err(|e| e.to_string())?;
        Ok(hash)
    }

    /// Whether `password` is the one this hash was made from, compared in constant time.
    pub fn verify(&self, password: &[u8]) -> bool {
        match self.compute(password) {
            Ok(digest) => bool::from(digest.ct_eq(&self.digest)),
            Err(_) => false,
        }
    }

    /// The digest of `password` with this hash's salt and parameters.
    fn compute(&self, password: &[u8]) -> Result<Vec<u8>, argon2::Error> {
        match self.kind {
            Kind::Sha512 => {
                let mut sha = Sha512::new();
                sha.update(password);
                sha.update(&self.salt);
                Ok(sha.finalize().to_vec())
            }
            Kind::Pbkdf2 { iterations } => {
                let mut out = vec![0; SHA512_LEN];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, &self.salt, iterations, &mut out);
                Ok(out)
            }
            Kind::Argon2id { .. } => {
                let argon2 = self.argon2()?;
                let blocks = argon2.params().block_count();
                let mut out = vec![0; self.digest.len()];
                ARGON2_MEMORY.with_borrow_mut(|memory| {
                    if memory.len() < blocks {
                        *memory = Vec::new();
                        memory.resize(blocks, argon2::Block::default());
                    }
                    argon2.hash_password_into_with_memory(
                        password,
                        &self.salt,
                        &mut out,
                        &mut memory[..blocks],
                    )
                })?;
                Ok(out)
            }
        }
    }

    /// A hash that costs the same to check as this one and that no password matches (in
    /// practice): same parameters, random salt and digest. Checked for unknown users.
    fn decoy(&self) -> Self {
        let mut salt = vec![0; self.salt.len()];
        let mut digest = vec![0; self.digest.len()];
        // Without randomness the decoy still costs the same; its digest of zeros is no
        // more guessable than any other.
        let _ = getrandom::fill(&mut salt);
        let _ = getrandom::fill(&mut digest);
        Self {
            kind: self.kind,
            salt,
            digest,
        }
    }

    /// The decoy for a file with no hash to copy: midge's default parameters.
    fn default_decoy() -> Self {
        let kind = Kind::Argon2id {
            version: 0x13,
            params: DEFAULT_ARGON2,
        };
        Self {
            kind,
            salt: vec![0; ARGON2_SALT_LEN],
            digest: vec![0; ARGON2_OUTPUT_LEN],
        }
        .decoy()
    }
}

impl fmt::Display for PasswordHash {
    /// The hash as it goes in the file, in the writing tool's own encoding.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Kind::Sha512 => write!(
                f,
                "$6${}${}",
                STANDARD.encode(&self.salt),
                STANDARD.encode(&self.digest)
            ),
            Kind::Pbkdf2 { iterations } => write!(
                f,
                "$7${iterations}${}${}",
                STANDARD.encode(&self.salt),
                STANDARD.encode(&self.digest)
            ),
            Kind::Argon2id { version, params } => write!(
                f,
                "$argon2id$v={version}$m={},t={},p={}${}${}",
                params.m_kib,
                params.t,
                params.p,
                STANDARD_NO_PAD.encode(&self.salt),
                STANDARD_NO_PAD.encode(&self.digest)
            ),
        }
    }
}

thread_local! {
    /// Argon2's working memory, kept for the thread's next verification. Allocating and
    /// freeing it for each one costs page faults (Mosquitto 2.1's 46 MiB took 42 ms per
    /// verification that way against 16 ms reused) and, below glibc's 32 MiB mmap
    /// threshold, fragments the heap: resident memory grew to 2–4× the Argon2 size.
    /// Reused, a thread holds exactly the largest size it has verified; threads of
    /// tokio's blocking pool give it back when they exit after 10 s idle.
    static ARGON2_MEMORY: std::cell::RefCell<Vec<argon2::Block>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Exactly `N` `$`-separated fields.
fn fields<'a, const N: usize>(s: &'a str, layout: &str) -> Result<[&'a str; N], String> {
    let parts: Vec<&str> = s.split('$').collect();
    <[&str; N]>::try_from(parts).map_err(|_| format!("expected {layout}"))
}

fn decode_b64(s: &str, what: &str) -> Result<Vec<u8>, String> {
    STANDARD_PAD_INDIFFERENT
        .decode(s)
        .map_err(|_| format!("the {what} is not valid base64"))
}

fn decode_argon2_b64(s: &str, what: &str) -> Result<Vec<u8>, String> {
    STANDARD_NO_PAD_INDIFFERENT
        .decode(s)
        .map_err(|_| format!("the {what} is not valid base64"))
}

/// Why a password file could not be read, written or changed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordFileError {
    #[error("{}: cannot read the password file: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: cannot write the password file: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A line of the file is wrong; `message` says how.
    #[error("{}:{line}: {message}", file.display())]
    Invalid {
        file: PathBuf,
        line: usize,
        message: String,
    },
    /// A user name or password that cannot go in a password file, or hashing failed.
    #[error("{0}")]
    Input(String),
}

/// A user's password as the file holds it.
#[derive(Debug, Clone)]
enum Secret {
    Hash(PasswordHash),
    /// Only in files read with [`PasswordFile::load_plain_text`], until upgraded.
    Plain(String),
}

#[derive(Debug, Clone)]
enum Line {
    /// A blank line or a comment, written back as it was.
    Text(String),
    Entry {
        username: String,
        secret: Secret,
        /// The line as written (rewritten when the password changes).
        text: String,
    },
}

/// A Mosquitto password file, with a cache of successful verifications.
///
/// # The verification cache
///
/// A reconnect storm (every client of a Pi Zero coming back after a network blip) would
/// redo one Argon2 computation per CONNECT. [`verify`](Self::verify) therefore remembers,
/// per user name, a keyed digest of the last password that verified: SHA-256(password ‖
/// key), with a 32-byte key drawn from the OS when the file is loaded, together with the
/// file generation it verified against. A CONNECT presenting the same password for that
/// user in the same generation is accepted without rehashing.
///
/// Why this is safe:
/// - only successes are cached, so a wrong password always pays the full hash (guessing
///   gets no faster), and a hit tells the client nothing its CONNACK would not;
/// - the digest is keyed with a secret that never leaves this process's memory and is
///   never written anywhere, so the cache is no offline-guessable password store: without
///   the key a cached digest cannot be tested against candidate passwords at any speed;
/// - [`reload`](Self::reload), [`set`](Self::set) and [`delete`](Self::delete) start a
///   new generation and empty the cache, so a changed or removed password stops working at
///   once;
/// - it holds at most [`CACHE_CAPACITY`] users (an arbitrary one is evicted when full).
pub struct PasswordFile {
    path: PathBuf,
    lines: Vec<Line>,
    /// User name → index in `lines`.
    index: HashMap<String, usize>,
    /// What unknown users are checked against, so they cost what known ones do.
    decoy: PasswordHash,
    generation: u64,
    cache: VerifyCache,
    hashes_computed: AtomicU64,
}

impl fmt::Debug for PasswordFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordFile")
            .field("path", &self.path)
            .field("users", &self.index.len())
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl PasswordFile {
    /// An empty file that [`save`](Self::save) will write at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            lines: Vec::new(),
            index: HashMap::new(),
            decoy: PasswordHash::default_decoy(),
            generation: 0,
            cache: VerifyCache::new(),
            hashes_computed: AtomicU64::new(0),
        }
    }

    /// Reads a password file. Every user line must carry a hash midge knows; a line that
    /// does not is an error naming the file and line.
    pub fn load(path: impl Into<PathBuf>) -> Result<Self, PasswordFileError> {
        let mut file = Self::new(path);
        let text = read_text(&file.path)?;
        file.replace_lines(parse_lines(&text, &file.path, false)?);
        Ok(file)
    }

    /// Reads a file that may hold plain-text passwords (`user:password`), to be hashed
    /// with [`upgrade_plain_text`](Self::upgrade_plain_text). Plain-text users never
    /// verify.
    pub fn load_plain_text(path: impl Into<PathBuf>) -> Result<Self, PasswordFileError> {
        let mut file = Self::new(path);
        let text = read_text(&file.path)?;
        file.replace_lines(parse_lines(&text, &file.path, true)?);
        Ok(file)
    }

    /// Reads password-file text; `path` names it in errors and is where
    /// [`save`](Self::save) writes.
    pub fn parse(text: &str, path: impl Into<PathBuf>) -> Result<Self, PasswordFileError> {
        let mut file = Self::new(path);
        file.replace_lines(parse_lines(text, &file.path, false)?);
        Ok(file)
    }

    /// Reads the file again. On success the new contents replace the old, the generation
    /// goes up and the verification cache is emptied; on error nothing changes.
    pub fn reload(&mut self) -> Result<(), PasswordFileError> {
        let text = read_text(&self.path)?;
        let lines = parse_lines(&text, &self.path, false)?;
        self.replace_lines(lines);
        Ok(())
    }

    fn replace_lines(&mut self, lines: Vec<Line>) {
        self.lines = lines;
        self.changed();
    }

    /// After any change: index, decoy, new generation, empty cache.
    fn changed(&mut self) {
        self.index = self
            .lines
            .iter()
            .enumerate()
            .filter_map(|(i, line)| match line {
                Line::Entry { username, .. } => Some((username.clone(), i)),
                Line::Text(_) => None,
            })
            .collect();
        self.decoy = self.pick_decoy();
        self.generation += 1;
        self.cache.clear();
    }

    /// A decoy with the parameters most users' hashes have (the first such on a tie), so
    /// an unknown user costs what a typical known one does.
    fn pick_decoy(&self) -> PasswordHash {
        let mut counts: Vec<(&PasswordHash, usize)> = Vec::new();
        for line in &self.lines {
            if let Line::Entry {
                secret: Secret::Hash(hash),
                ..
            } = line
            {
                let same = |h: &PasswordHash| {
                    h.kind == hash.kind
                        && h.salt.len() == hash.salt.len()
                        && h.digest.len() == hash.digest.len()
                };
                match counts.iter_mut().find(|(h, _)| same(h)) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((hash, 1)),
                }
            }
        }
        let mut best: Option<(&PasswordHash, usize)> = None;
        for (hash, n) in counts {
            if best.is_none_or(|(_, m)| n > m) {
                best = Some((hash, n));
            }
        }
        best.map_or_else(PasswordHash::default_decoy, |(hash, _)| hash.decoy())
    }

    /// Where the file is read from and saved to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Goes up by one at every reload or change.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Password hashes computed by [`verify`](Self::verify) so far (cache hits compute
    /// none; unknown users compute one, against the decoy).
    pub fn hashes_computed(&self) -> u64 {
        self.hashes_computed.load(Ordering::Relaxed)
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn contains(&self, username: &str) -> bool {
        self.index.contains_key(username)
    }

    /// User names, in file order.
    pub fn usernames(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().filter_map(|line| match line {
            Line::Entry { username, .. } => Some(username.as_str()),
            Line::Text(_) => None,
        })
    }

    /// Whether `password` is `username`'s. Unknown users are refused after checking the
    /// password against a decoy hash with the file's usual parameters, so the time taken
    /// does not tell whether a user exists. Successes are cached (see the type's
    /// documentation).
    pub fn verify(&self, username: &str, password: &[u8]) -> bool {
        let tag = self.cache.tag(password);
        if let Some(tag) = &tag
            && self.cache.hit(username, tag, self.generation)
        {
            return true;
        }
        let hash = match self.index.get(username).map(|&i| &self.lines[i]) {
            Some(Line::Entry {
                secret: Secret::Hash(hash),
                ..
            }) => Some(hash),
            _ => None,
        };
        self.hashes_computed.fetch_add(1, Ordering::Relaxed);
        let ok = match hash {
            Some(hash) => hash.verify(password),
            None => {
                let _ = self.decoy.verify(password);
                false
            }
        };
        if ok && let Some(tag) = tag {
            self.cache.insert(username, tag, self.generation);
        }
        ok
    }

    /// Sets `username`'s password with midge's default algorithm (Argon2id,
    /// [`DEFAULT_ARGON2`]), adding the user at the end if new.
    pub fn set(&mut self, username: &str, password: &[u8]) -> Result<(), PasswordFileError> {
        self.set_with(username, password, Algorithm::DEFAULT)
    }

    /// Sets `username`'s password, hashed with `algorithm`. An existing user's line is
    /// replaced where it is; a new user goes at the end.
    pub fn set_with(
        &mut self,
        username: &str,
        password: &[u8],
        algorithm: Algorithm,
    ) -> Result<(), PasswordFileError> {
        check_username(username).map_err(PasswordFileError::Input)?;
        if password.len() > MAX_FIELD_LEN {
            return Err(PasswordFileError::Input(format!(
                "the password is longer than {MAX_FIELD_LEN} bytes"
            )));
        }
        let hash = PasswordHash::create(algorithm, password)
            .map_err(|e| PasswordFileError::Input(format!("cannot hash the password: {e}")))?;
        let line = Line::Entry {
            username: username.to_owned(),
            text: format!("{username}:{hash}"),
            secret: Secret::Hash(hash),
        };
        match self.index.get(username) {
            Some(&i) => self.lines[i] = line,
            None => self.lines.push(line),
        }
        self.changed();
        Ok(())
    }

    /// Removes `username`; false if there was no such user.
    pub fn delete(&mut self, username: &str) -> bool {
        let Some(i) = self.index.get(username).copied() else {
            return false;
        };
        self.lines.remove(i);
        self.changed();
        true
    }

    /// Hashes every plain-text password with `algorithm` (as `mosquitto_passwd -U`);
    /// lines already hashed are left as they are. Returns how many were hashed.
    pub fn upgrade_plain_text(&mut self, algorithm: Algorithm) -> Result<usize, PasswordFileError> {
        let mut upgraded = 0;
        for line in &mut self.lines {
            if let Line::Entry {
                username,
                secret,
                text,
            } = line
                && let Secret::Plain(password) = secret
            {
                let hash = PasswordHash::create(algorithm, password.as_bytes()).map_err(|e| {
                    PasswordFileError::Input(format!("cannot hash the password: {e}"))
                })?;
                *text = format!("{username}:{hash}");
                *secret = Secret::Hash(hash);
                upgraded += 1;
            }
        }
        self.changed();
        Ok(upgraded)
    }

    /// The file's text: lines in their order, comments and blank lines kept.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for line in &self.lines {
            let (Line::Text(text) | Line::Entry { text, .. }) = line;
            out.push_str(text);
            out.push('\n');
        }
        out
    }

    /// Writes the file to [`path`](Self::path) atomically (see [`write_atomically`]).
    pub fn save(&self) -> Result<(), PasswordFileError> {
        write_atomically(&self.path, self.to_text().as_bytes()).map_err(|source| {
            PasswordFileError::Write {
                path: self.path.clone(),
                source,
            }
        })
    }
}

/// Checks a user name for a password file: not empty, no `:`, no control characters, no
/// blanks at either end (Mosquitto trims them when reading), not starting with `#` (that
/// would be a comment), at most 65 535 bytes.
pub fn check_username(username: &str) -> Result<(), String> {
    if username.is_empty() {
        return Err("the user name is empty".into());
    }
    if username.len() > MAX_FIELD_LEN {
        return Err(format!(
            "the user name is longer than {MAX_FIELD_LEN} bytes"
        ));
    }
    if username.contains(':') {
        return Err("a user name in a password file cannot contain ':'".into());
    }
    if username.chars().any(char::is_control) {
        return Err("the user name contains a control character".into());
    }
    if username.starts_with([' ', '\t']) || username.ends_with([' ', '\t']) {
        return Err("the user name starts or ends with a blank".into());
    }
    if username.starts_with('#') {
        return Err("a user name in a password file cannot start with '#'".into());
    }
    Ok(())
}

/// Reads a whole file as UTF-8 text.
fn read_text(path: &Path) -> Result<String, PasswordFileError> {
    let bytes = fs::read(path).map_err(|source| PasswordFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        PasswordFileError::Invalid {
            file: path.to_owned(),
            line: valid.iter().filter(|&&b| b == b'\n').count() + 1,
            message: "the line is not valid UTF-8 text".into(),
        }
    })
}

const BLANKS: [char; 3] = [' ', '\t', '\r'];

fn parse_lines(text: &str, file: &Path, allow_plain: bool) -> Result<Vec<Line>, PasswordFileError> {
    let mut lines = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let number = i + 1;
        let invalid = |message: String| PasswordFileError::Invalid {
            file: file.to_owned(),
            line: number,
            message,
        };
        let content = raw.trim_matches(BLANKS);
        if content.is_empty() || content.starts_with('#') {
            lines.push(Line::Text(raw.to_owned()));
            continue;
        }
        let Some((username, secret)) = content.split_once(':') else {
            return Err(invalid(
                "expected username:hash (a line without ':'); comment lines start with '#'".into(),
            ));
        };
        let username = username.trim_matches(BLANKS);
        let secret = secret.trim_matches(BLANKS);
        if username.is_empty() {
            return Err(invalid("the user name is empty".into()));
        }
        if secret.is_empty() {
            return Err(invalid(format!("user {username} has no password hash")));
        }
        if let Some(first) = seen.insert(username, number) {
            return Err(invalid(format!(
                "user {username} is already defined on line {first}"
            )));
        }
        let secret = match PasswordHash::parse(secret) {
            Ok(hash) => Secret::Hash(hash),
            Err(_) if allow_plain && !secret.starts_with('$') => Secret::Plain(secret.to_owned()),
            Err(e) if !secret.starts_with('$') => {
                return Err(invalid(format!(
                    "the password of user {username} is not hashed ({e}); hash plain-text \
                     passwords with `midge passwd -U {}`",
                    file.display()
                )));
            }
            Err(e) => {
                return Err(invalid(format!(
                    "the password hash of user {username} is invalid: {e}"
                )));
            }
        };
        lines.push(Line::Entry {
            username: username.to_owned(),
            secret,
            text: raw.trim_end_matches('\r').to_owned(),
        });
    }
    Ok(lines)
}

/// Replaces `path` with `contents` so that readers see the old file or the new one, never
/// a mix, even across a power cut: a temporary file in the same directory is written,
/// flushed to disk and renamed over the target, and the directory is flushed. A symbolic
/// link is followed (its target is replaced, the link kept). A new file gets mode 0600;
/// an existing one keeps its mode (and owner and group, where permitted).
pub fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let target = match fs::canonicalize(path) {
        Ok(target) => target,
        Err(e) if e.kind() == io::ErrorKind::NotFound => path.to_owned(),
        Err(e) => return Err(e),
    };
    let existing = fs::metadata(&target).ok();
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?
        .to_string_lossy()
        .into_owned();

    let (tmp_path, mut tmp) = create_temp(&dir, &name)?;
    let result = (|| {
        if let Some(meta) = &existing {
            let _ = std::os::unix::fs::fchown(&tmp, Some(meta.uid()), Some(meta.gid()));
            tmp.set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        }
        tmp.write_all(contents)?;
        tmp.sync_all()?;
        fs::rename(&tmp_path, &target)?;
        fs::File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp_path);
    }
    result
}

/// A new file `.<name>.<random>.tmp` in `dir`, mode 0600.
fn create_temp(dir: &Path, name: &str) -> io::Result<(PathBuf, fs::File)> {
    let mut last = None;
    for _ in 0..16 {
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).map_err(io::Error::other)?;
        let path = dir.join(format!(".{name}.{:016x}.tmp", u64::from_le_bytes(random)));
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("cannot create a temporary file")))
}

/// Successful verifications: user name → (keyed digest of the password, generation).
struct VerifyCache {
    /// `None` when the OS gave no randomness: then nothing is cached, rather than cached
    /// under a guessable key.
    key: Option<[u8; 32]>,
    entries: Mutex<HashMap<String, ([u8; 32], u64)>>,
}

impl VerifyCache {
    fn new() -> Self {
        let mut key = [0u8; 32];
        Self {
            key: getrandom::fill(&mut key).ok().map(|()| key),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// SHA-256(password ‖ key); `None` when caching is off.
    fn tag(&self, password: &[u8]) -> Option<[u8; 32]> {
        let key = self.key.as_ref()?;
        let mut sha = Sha256::new();
        sha.update(password);
        sha.update(key);
        Some(sha.finalize().into())
    }

    fn hit(&self, username: &str, tag: &[u8; 32], generation: u64) -> bool {
        let entries = lock(&self.entries);
        match entries.get(username) {
            Some((cached, g)) => *g == generation && bool::from(cached.ct_eq(tag)),
            None => false,
        }
    }

    fn insert(&self, username: &str, tag: [u8; 32], generation: u64) {
        let mut entries = lock(&self.entries);
        if entries.len() >= CACHE_CAPACITY
            && !entries.contains_key(username)
            && let Some(victim) = entries.keys().next().cloned()
        {
            entries.remove(&victim);
        }
        entries.insert(username.to_owned(), (tag, generation));
    }

    fn clear(&self) {
        lock(&self.entries).clear();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.entries).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Written by mosquitto_passwd 2.0.11 (`-c -b`, `-b`, `-H sha512 -b`).
    const ALICE_7: &str = "alice:$7$101$PLrZT1SeWYw7Sneg$1srmivlYRVg/EsaF0CEAipooNhpzN6ZIZZBFvaTKognqGpXfwpGTpTTEwjBh78SvhFAiPVAmUOaxTzkBw9sQUw==";
    const BOB_6: &str = "bob:$6$9qGmiFWK00A2TczN$uKO9U1j2ynQ4In7qmWS9Q2Cd3qrIA26Rfb1ksBWqdUbtWGwyR24brMirnV7Mqeo/yo5lhHCm5LpBy1ciE1wJHQ==";
    const CAROL_7: &str = "carol:$7$101$3OqUR8WOTw55BSXN$NeCNhBT8423pYc3LzU0rWPi9rsglQPrUATqX8MkscG39QCBJgWT6OGN4HEYZDzjSFIev6ixqUxvKUqgpDeAgGQ==";
    const CAROL_PASSWORD: &str = "pässwörd:with colon";
    const DAVE_7_EMPTY: &str = "dave:$7$101$6urIQXw7f4n9budW$7I63YkVbdDbOYVWlM8n4MKMjrPj+NH5KlxftdkehC3pzGAbm1LE8rv2SOCIAXqma0zdNQ8ZO06DtI5lS5PgGGw==";
    const ERIN_6_EMPTY: &str = "erin:$6$HWHLZOYxtMywBXtI$7FEwRSpOOhJnX5v9T1A99vGUQTfgGcvW839xLIHgSla6Pfjj9v7SeGFmDEEYkF5x4vEmw0b2NY5FdQxwAicIyQ==";

    // Written by the libargon2 reference tool (`argon2 SALT -id -t T -k M -p P -l LEN -e`).
    /// Mosquitto 2.1's layout (64-byte salt), cheap parameters; password "correct horse".
    const ARGON2_SALT64: &str = "$argon2id$v=19$m=256,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZg$NkzZyGvberaHtqdHey6+3IGc3mCDwmHRcRDKfdXVRIU";
    /// Two lanes, 64-byte output; password "s3cret".
    const ARGON2_P2: &str = "$argon2id$v=19$m=64,t=2,p=2$c2FsdHNhbHRzYWx0MTIzNA$FGoD3mZw46oFvL5X55NlTtqdUVY1t6zFCy4Gf1+jghHoNNNtwu5lEvdOQi9yCo3/wVHWSQvxED63hHmLprNfXA";
    /// Argon2 version 1.0; password "s3cret".
    const ARGON2_V16: &str = "$argon2id$v=16$m=64,t=1,p=1$c2FsdHNhbHRzYWx0MTIzNA$tJ1LZPEAzZsU9bkx8uuZ75ow0HcWJtlJ4nRPoi8fxd4";

    /// Cheap Argon2 for tests (debug builds are slow).
    const TEST_ARGON2: Algorithm = Algorithm::Argon2id(Argon2Params {
        m_kib: 64,
        t: 1,
        p: 1,
    });

    fn file(lines: &[&str]) -> PasswordFile {
        PasswordFile::parse(&(lines.join("\n") + "\n"), "/etc/midge/passwd").unwrap()
    }

    fn error(text: &str) -> (usize, String) {
        match PasswordFile::parse(text, "/etc/midge/passwd") {
            Err(PasswordFileError::Invalid {
                file,
                line,
                message,
            }) => {
                assert_eq!(file, Path::new("/etc/midge/passwd"));
                (line, message)
            }
            other => panic!("expected an Invalid error, got {other:?}"),
        }
    }

    #[test]
    fn mosquitto_passwd_hashes_verify() {
        let f = file(&[ALICE_7, BOB_6, CAROL_7, DAVE_7_EMPTY, ERIN_6_EMPTY]);
        assert_eq!(f.len(), 5);
        assert!(f.verify("alice", b"secret"));
        assert!(f.verify("bob", b"hunter2"));
        assert!(f.verify("carol", CAROL_PASSWORD.as_bytes()));
        assert!(f.verify("dave", b""));
        assert!(f.verify("erin", b""));

        assert!(!f.verify("alice", b"Secret"));
        assert!(!f.verify("alice", b"secret "));
        assert!(!f.verify("bob", b"hunter"));
        assert!(!f.verify("carol", "pässwörd".as_bytes()));
        assert!(!f.verify("dave", b"x"));
        assert!(!f.verify("erin", b"\0"));
        // User names are exact: no case folding, no trimming.
        assert!(!f.verify("Alice", b"secret"));
        assert!(!f.verify("alice ", b"secret"));
    }

    #[test]
    fn libargon2_strings_verify() {
        for (hash, password) in [
            (ARGON2_SALT64, "correct horse"),
            (ARGON2_P2, "s3cret"),
            (ARGON2_V16, "s3cret"),
        ] {
            let h = PasswordHash::parse(hash).unwrap();
            assert!(h.verify(password.as_bytes()), "{hash}");
            assert!(!h.verify(b"wrong"), "{hash}");
            // Written back exactly as libargon2 wrote it.
            assert_eq!(h.to_string(), hash);
        }
        let f = file(&[&format!("zed:{ARGON2_SALT64}")]);
        assert!(f.verify("zed", b"correct horse"));
        assert!(!f.verify("zed", b"correct horse "));
    }

    #[test]
    fn midge_argon2_strings_verify_with_the_argon2_crates_own_verifier() {
        use argon2::{PasswordHash as Phc, PasswordVerifier};
        let hash = PasswordHash::create(TEST_ARGON2, b"pw").unwrap();
        let text = hash.to_string();
        assert!(text.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{text}");
        let phc = Phc::new(&text).unwrap();
        assert!(
            argon2::Argon2::default()
                .verify_password(b"pw", &phc)
                .is_ok()
        );
        assert!(
            argon2::Argon2::default()
                .verify_password(b"pW", &phc)
                .is_err()
        );
        // And the other way round.
        let theirs = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(64, 1, 1, None).unwrap(),
        );
        let salt = [7u8; 16];
        let phc = argon2::PasswordHasher::hash_password_with_salt(&theirs, b"pw", &salt).unwrap();
        let ours = PasswordHash::parse(&phc.to_string()).unwrap();
        assert!(ours.verify(b"pw"));
        assert!(!ours.verify(b"px"));
    }

    #[test]
    fn hashes_by_the_installed_mosquitto_passwd_verify() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        let run = |args: &[&str]| {
            std::process::Command::new("mosquitto_passwd")
                .args(args)
                .status()
        };
        let p = path.to_str().unwrap();
        match run(&["-c", "-b", p, "u1", "first pass"]) {
            Ok(status) => assert!(status.success()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                eprintln!("mosquitto_passwd is not installed: checked the stored hashes only");
                return;
            }
            Err(e) => panic!("mosquitto_passwd: {e}"),
        }
        assert!(
            run(&["-H", "sha512", "-b", p, "u2", "sec:ond"])
                .unwrap()
                .success()
        );
        assert!(
            run(&["-H", "sha512-pbkdf2", "-b", p, "ü3", ""])
                .unwrap()
                .success()
        );
        let f = PasswordFile::load(&path).unwrap();
        let text = f.to_text();
        assert!(
            text.contains("u1:$7$101$") && text.contains("u2:$6$"),
            "{text}"
        );
        assert!(f.verify("u1", b"first pass"));
        assert!(f.verify("u2", b"sec:ond"));
        assert!(f.verify("ü3", b""));
        assert!(!f.verify("u1", b"first"));
        assert!(!f.verify("u2", b"sec"));
        assert!(!f.verify("ü3", b" "));
    }

    #[test]
    fn unknown_users_fail_after_a_decoy_hash() {
        let f = file(&[ALICE_7, CAROL_7, BOB_6]);
        let before = f.hashes_computed();
        assert!(!f.verify("mallory", b"secret"));
        assert!(!f.verify("", b""));
        assert_eq!(f.hashes_computed(), before + 2);
        // The decoy costs what most users' hashes cost: $7$ with 101 iterations here.
        assert_eq!(f.decoy.kind, Kind::Pbkdf2 { iterations: 101 });
        assert_eq!((f.decoy.salt.len(), f.decoy.digest.len()), (12, 64));

        let f = file(&[&format!("zed:{ARGON2_SALT64}"), BOB_6]);
        assert!(
            matches!(f.decoy.kind, Kind::Argon2id { .. }),
            "first on a tie"
        );
        assert_eq!(f.decoy.salt.len(), 64);

        let empty = PasswordFile::parse("# nobody yet\n", "x").unwrap();
        assert!(empty.is_empty());
        assert_eq!(
            empty.decoy.kind,
            Kind::Argon2id {
                version: 0x13,
                params: DEFAULT_ARGON2
            }
        );
    }

    #[test]
    fn comments_blank_lines_blanks_and_crlf() {
        let text = format!("# users\r\n\r\n   \n  # indented comment\n {ALICE_7} \r\n\t{BOB_6}\n");
        let f = PasswordFile::parse(&text, "p").unwrap();
        assert_eq!(f.usernames().collect::<Vec<_>>(), ["alice", "bob"]);
        assert!(f.verify("alice", b"secret"));
        assert!(f.verify("bob", b"hunter2"));
        // Blanks around the name and hash are Mosquitto's to trim as well.
        let f = file(&[
            "  alice  :  $6$9qGmiFWK00A2TczN$uKO9U1j2ynQ4In7qmWS9Q2Cd3qrIA26Rfb1ksBWqdUbtWGwyR24brMirnV7Mqeo/yo5lhHCm5LpBy1ciE1wJHQ==  ",
        ]);
        assert!(f.verify("alice", b"hunter2"));
        // Unpadded base64 is read too.
        let unpadded = BOB_6.trim_end_matches('=');
        assert!(file(&[unpadded]).verify("bob", b"hunter2"));
    }

    #[test]
    fn malformed_lines_are_errors_with_file_and_line() {
        let (line, message) = error(&format!("# c\n{ALICE_7}\nnocolon\n"));
        assert_eq!(line, 3);
        assert!(message.contains("username:hash"), "{message}");

        let (line, message) = error(&format!("{ALICE_7}\n\n:$6$abc$def\n"));
        assert_eq!((line, message.as_str()), (3, "the user name is empty"));

        let (line, message) = error("bob:\n");
        assert_eq!(
            (line, message.as_str()),
            (1, "user bob has no password hash")
        );

        let (line, message) = error("bob:plain\n");
        assert_eq!(line, 1);
        assert!(
            message.contains("not hashed") && message.contains("midge passwd -U"),
            "{message}"
        );

        let (line, message) = error(&format!("{ALICE_7}\n{ALICE_7}\n"));
        assert_eq!(line, 2);
        assert!(message.contains("already defined on line 1"), "{message}");

        for (hash, expect) in [
            ("$5$abc$def", "unknown hash type"),
            ("$6$abc", "expected $6$<salt>$<hash>"),
            ("$6$!!$AAAA", "salt is not valid base64"),
            ("$6$AAAA$AAAA", "is 3 bytes long"),
            ("$6$$AAAA", "salt is empty"),
            ("$7$0$AAAA$AAAA", "not a valid iteration count"),
            ("$7$many$AAAA$AAAA", "not a valid iteration count"),
            ("$7$101$AAAA", "expected $7$<iterations>$<salt>$<hash>"),
            (
                "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$AAAAAAAA",
                "only the argon2id",
            ),
            (
                "$argon2id$v=19$m=64,t=1$c2FsdHNhbHRzYWx0$AAAAAAAA",
                "need m, t and p",
            ),
            (
                "$argon2id$v=19$m=64,t=1,p=1,m=2$c2FsdHNhbHRzYWx0$AAAAAAAA",
                "given twice",
            ),
            (
                "$argon2id$v=19$m=64,t=1,x=1$c2FsdHNhbHRzYWx0$AAAAAAAA",
                "unknown Argon2 parameter",
            ),
            (
                "$argon2id$v=18$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$AAAAAAAA",
                "unsupported Argon2 version",
            ),
            (
                "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$AAAAAAAA",
                "at least 8 bytes",
            ),
            (
                "$argon2id$v=19$m=1,t=1,p=1$c2FsdHNhbHRzYWx0$AAAAAAAA",
                "invalid Argon2 parameters",
            ),
            (
                "$argon2id$v=19$m=64,t=0,p=1$c2FsdHNhbHRzYWx0$AAAAAAAA",
                "invalid Argon2 parameters",
            ),
            (
                "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0",
                "expected $argon2id$",
            ),
        ] {
            let (line, message) = error(&format!("# header\nuser:{hash}\n"));
            assert_eq!(line, 2, "{hash}");
            assert!(message.contains(expect), "{hash}: {message}");
            assert!(message.contains("user user"), "{hash}: {message}");
        }

        // The whole error, as the broker and `midge passwd` print it.
        let err = PasswordFile::parse("x\n", "/etc/midge/passwd").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("/etc/midge/passwd:1: expected username:hash"),
            "{err}"
        );
    }

    #[test]
    fn unreadable_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none");
        let err = PasswordFile::load(&missing).unwrap_err();
        assert!(matches!(err, PasswordFileError::Read { .. }));
        assert!(
            err.to_string()
                .starts_with(&format!("{}: cannot read", missing.display()))
        );

        let bad = dir.path().join("bad");
        fs::write(&bad, b"# ok\nal\xffce:$6$x$y\n").unwrap();
        match PasswordFile::load(&bad).unwrap_err() {
            PasswordFileError::Invalid { line, .. } => assert_eq!(line, 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn set_serialise_parse_verify_round_trip() {
        let mut f = file(&["# managed by hand", ALICE_7, "", BOB_6, "# end"]);
        f.set_with(
            "bob",
            b"new bob",
            Algorithm::Sha512Pbkdf2 { iterations: 1000 },
        )
        .unwrap();
        f.set_with("zoe", b"zoe's", TEST_ARGON2).unwrap();
        f.set_with("yan", b"", Algorithm::Sha512).unwrap();
        let text = f.to_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "# managed by hand");
        assert_eq!(lines[1], ALICE_7, "untouched lines stay as written");
        assert_eq!(lines[2], "");
        assert!(
            lines[3].starts_with("bob:$7$1000$"),
            "replaced in place: {}",
            lines[3]
        );
        assert_eq!(lines[4], "# end");
        assert!(
            lines[5].starts_with("zoe:$argon2id$v=19$m=64,t=1,p=1$"),
            "{}",
            lines[5]
        );
        assert!(lines[6].starts_with("yan:$6$"), "{}", lines[6]);
        assert_eq!(lines.len(), 7);

        let g = PasswordFile::parse(&text, "p").unwrap();
        assert_eq!(g.to_text(), text);
        assert!(g.verify("alice", b"secret"));
        assert!(g.verify("bob", b"new bob"));
        assert!(!g.verify("bob", b"hunter2"));
        assert!(g.verify("zoe", b"zoe's"));
        assert!(g.verify("yan", b""));
        assert!(!g.verify("yan", b"x"));

        // Salts as Mosquitto 2.0 requires them: 12 bytes for $6$ and $7$.
        let h = PasswordHash::create(Algorithm::Sha512, b"x").unwrap();
        assert_eq!((h.salt.len(), h.digest.len()), (12, 64));
        // A fresh salt every time.
        let again = PasswordHash::create(Algorithm::Sha512, b"x").unwrap();
        assert_ne!(h.to_string(), again.to_string());

        let mut g = g;
        assert!(g.delete("alice"));
        assert!(!g.delete("alice"));
        assert!(!g.verify("alice", b"secret"));
        assert!(!g.to_text().contains("alice"));
        assert!(g.to_text().starts_with("# managed by hand\n\nbob:"));
    }

    #[test]
    fn default_algorithm_is_argon2id_with_midges_parameters() {
        let mut f = PasswordFile::new("p");
        f.set("u", b"pw").unwrap();
        let text = f.to_text();
        assert!(
            text.starts_with(&format!(
                "u:$argon2id$v=19$m={},t={},p={}$",
                DEFAULT_ARGON2.m_kib, DEFAULT_ARGON2.t, DEFAULT_ARGON2.p
            )),
            "{text}"
        );
        assert!(PasswordFile::parse(&text, "p").unwrap().verify("u", b"pw"));
        assert_eq!(Algorithm::from_name("argon2id"), Some(Algorithm::DEFAULT));
        assert_eq!(
            Algorithm::from_name("sha512-pbkdf2"),
            Some(Algorithm::Sha512Pbkdf2 {
                iterations: 210_000
            })
        );
        assert_eq!(Algorithm::from_name("sha512"), Some(Algorithm::Sha512));
        assert_eq!(Algorithm::from_name("md5"), None);
    }

    #[test]
    fn user_names_that_cannot_be_stored_are_refused() {
        let mut f = PasswordFile::new("p");
        for bad in [
            "",
            "a:b",
            "tab\there",
            "new\nline",
            " lead",
            "trail ",
            "#hash",
            "nul\0",
        ] {
            let err = f.set_with(bad, b"pw", Algorithm::Sha512).unwrap_err();
            assert!(matches!(err, PasswordFileError::Input(_)), "{bad:?}");
        }
        let long = "x".repeat(65_536);
        assert!(f.set_with(&long, b"pw", Algorithm::Sha512).is_err());
        assert!(
            f.set_with("ok", &vec![b'p'; 65_536], Algorithm::Sha512)
                .is_err()
        );
        for good in ["a#b", "with space", "ünï", "x".repeat(65_535).as_str()] {
            f.set_with(good, b"pw", Algorithm::Sha512).unwrap();
            assert!(f.verify(good, b"pw"), "{good:?}");
        }
        assert!(!f.is_empty() && f.len() == 4);
    }

    #[test]
    fn plain_text_files_upgrade_to_hashes() {
        let text = format!("# plain\nann: open sesame \nbea:x:y\n{BOB_6}\n");
        assert!(PasswordFile::parse(&text, "p").is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plain");
        fs::write(&path, &text).unwrap();
        let mut f = PasswordFile::load_plain_text(&path).unwrap();
        assert!(
            !f.verify("ann", b"open sesame"),
            "plain text never verifies"
        );
        assert_eq!(f.upgrade_plain_text(Algorithm::Sha512).unwrap(), 2);
        f.save().unwrap();
        let g = PasswordFile::load(&path).unwrap();
        assert!(g.verify("ann", b"open sesame"));
        assert!(g.verify("bea", b"x:y"));
        assert!(g.verify("bob", b"hunter2"));
        let saved = fs::read_to_string(&path).unwrap();
        assert!(saved.starts_with("# plain\nann:$6$"), "{saved}");
        assert!(saved.ends_with(&format!("{BOB_6}\n")), "hashed lines kept");
        // Nothing left to do the second time.
        let mut g = PasswordFile::load_plain_text(&path).unwrap();
        assert_eq!(g.upgrade_plain_text(Algorithm::Sha512).unwrap(), 0);
    }

    #[test]
    fn successes_are_cached_failures_are_not() {
        let f = file(&[ALICE_7, &format!("zed:{ARGON2_SALT64}")]);
        assert!(f.verify("zed", b"correct horse"));
        assert_eq!(f.hashes_computed(), 1);
        for _ in 0..5 {
            assert!(f.verify("zed", b"correct horse"));
        }
        assert_eq!(f.hashes_computed(), 1, "cache hits compute no hash");
        assert_eq!(f.cache.len(), 1);

        for n in 2..5 {
            assert!(!f.verify("zed", b"wrong"));
            assert_eq!(f.hashes_computed(), n, "failures are never cached");
        }
        // Another user's cached password is no key to this one.
        assert!(!f.verify("alice", b"correct horse"));
        assert_eq!(f.hashes_computed(), 5);
        // A success for another password does not evict the cached one: both work.
        assert!(f.verify("alice", b"secret"));
        assert!(f.verify("zed", b"correct horse"));
        assert_eq!(f.hashes_computed(), 6);
    }

    #[test]
    fn a_cache_hit_is_much_faster_than_hashing() {
        let mut f = PasswordFile::new("p");
        let slow = Argon2Params {
            m_kib: 2048,
            t: 2,
            p: 1,
        };
        f.set_with("slow", b"pw", Algorithm::Argon2id(slow))
            .unwrap();
        let start = std::time::Instant::now();
        assert!(f.verify("slow", b"pw"));
        let miss = start.elapsed();
        let start = std::time::Instant::now();
        assert!(f.verify("slow", b"pw"));
        let hit = start.elapsed();
        assert!(hit * 20 < miss, "hit {hit:?}, miss {miss:?}");
        assert_eq!(f.hashes_computed(), 1);
    }

    #[test]
    fn reload_and_changes_invalidate_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        fs::write(&path, format!("{ALICE_7}\n{BOB_6}\n")).unwrap();
        let mut f = PasswordFile::load(&path).unwrap();
        let generation = f.generation();
        assert!(f.verify("alice", b"secret"));
        assert!(f.verify("alice", b"secret"));
        assert_eq!(f.hashes_computed(), 1);

        // Reloaded: the new file's hash decides, not the cache.
        fs::write(
            &path,
            format!("{BOB_6}\n{}\n", ALICE_7.replace("alice", "ann")),
        )
        .unwrap();
        f.reload().unwrap();
        assert!(f.generation() > generation);
        assert_eq!(f.cache.len(), 0);
        assert!(
            !f.verify("alice", b"secret"),
            "removed user no longer verifies"
        );
        assert!(f.verify("ann", b"secret"));
        assert_eq!(f.hashes_computed(), 3);

        // A failed reload keeps what was loaded.
        fs::write(&path, "broken\n").unwrap();
        let generation = f.generation();
        assert!(f.reload().is_err());
        assert_eq!(f.generation(), generation);
        assert!(f.verify("ann", b"secret"));
        assert_eq!(f.hashes_computed(), 3, "cache kept too");

        // A new password in memory: the old one stops working at once.
        f.set_with("ann", b"changed", Algorithm::Sha512).unwrap();
        assert!(!f.verify("ann", b"secret"));
        assert!(f.verify("ann", b"changed"));
        f.delete("ann");
        assert!(!f.verify("ann", b"changed"));
    }

    #[test]
    fn the_cache_is_bounded() {
        let mut f = PasswordFile::new("p");
        let n = CACHE_CAPACITY + 50;
        let text: String = (0..n)
            .map(|i| {
                let hash =
                    PasswordHash::create(Algorithm::Sha512, format!("pw{i}").as_bytes()).unwrap();
                format!("user{i}:{hash}\n")
            })
            .collect();
        f.replace_lines(parse_lines(&text, Path::new("p"), false).unwrap());
        for i in 0..n {
            assert!(f.verify(&format!("user{i}"), format!("pw{i}").as_bytes()));
        }
        assert_eq!(f.cache.len(), CACHE_CAPACITY);
        // Every password still verifies, cached or not.
        for i in 0..n {
            assert!(f.verify(&format!("user{i}"), format!("pw{i}").as_bytes()));
        }
        assert!(f.hashes_computed() >= n as u64);
    }

    #[test]
    fn debug_output_shows_no_hash_material() {
        let f = file(&[BOB_6]);
        let debug = format!("{f:?} {:?}", PasswordHash::parse(&BOB_6[4..]).unwrap());
        assert!(
            !debug.contains("9qGm") && !debug.contains("uKO9"),
            "{debug}"
        );
    }

    #[test]
    fn atomic_writes_keep_modes_and_follow_links() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new");
        write_atomically(&path, b"one\n").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"one\n");
        assert_eq!(
            fs::metadata(&path).unwrap().mode() & 0o777,
            0o600,
            "new files are 0600"
        );

        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        write_atomically(&path, b"two\n").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two\n");
        assert_eq!(
            fs::metadata(&path).unwrap().mode() & 0o777,
            0o640,
            "existing mode kept"
        );

        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        write_atomically(&link, b"three\n").unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read(&path).unwrap(), b"three\n");

        // No temporary file left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");

        // A failed write names the file and leaves nothing behind.
        let f = PasswordFile::new(dir.path().join("no/such/dir/pw"));
        let err = f.save().unwrap_err();
        assert!(
            err.to_string().contains("cannot write the password file"),
            "{err}"
        );
    }
}
