//! `midge passwd`: creates and edits Mosquitto password files, with `mosquitto_passwd`'s
//! command line (`-c`, `-b`, `-D`, `-U`, `-H`).
//!
//! Unlike `mosquitto_passwd`, it writes Argon2id by default (Mosquitto 2.1 reads it,
//! Mosquitto 2.0 does not: `-H sha512-pbkdf2` writes what every Mosquitto 2.x reads),
//! keeps comment lines, leaves already-hashed lines alone on `-U`, and replaces the file
//! atomically instead of rewriting it in place.

use std::ffi::{OsStr, OsString};
use std::io::{self, BufRead, IsTerminal};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::security::password::{self, Algorithm, PasswordFile, PasswordFileError};

const USAGE: &str = "\
midge passwd manages Mosquitto password files (as mosquitto_passwd does).

Usage: midge passwd [-H argon2id | -H sha512-pbkdf2 | -H sha512] [-c | -D] passwordfile username
       midge passwd [-H argon2id | -H sha512-pbkdf2 | -H sha512] [-c] -b passwordfile username password
       midge passwd [-H argon2id | -H sha512-pbkdf2 | -H sha512] -U passwordfile
 -b : batch mode: the password is given on the command line (where other local users
      may see it). Without -b, it is asked for twice on a terminal, or read as one line
      from standard input.
 -c : create a new password file, replacing any existing one.
 -D : delete the user.
 -H : the hash to write. argon2id (default) is read by midge and Mosquitto 2.1;
      sha512-pbkdf2 by every Mosquitto since 2.0, but costs the broker about 15 times
      as much per check (most of a second on a Pi Zero); sha512 is the weak legacy
      format of Mosquitto 1.6 and earlier.
 -U : hash the plain-text passwords of a file of username:password lines (lines already
      hashed are kept).
";

/// Runs `midge passwd` with the arguments after `passwd`: 0 on success, 1 with a one-line
/// message on standard error otherwise.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    match run(args.into_iter().collect()) {
        Ok(Done::Success) => ExitCode::SUCCESS,
        Ok(Done::Help) => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Ok(Done::Usage) => {
            eprint!("{USAGE}");
            ExitCode::FAILURE
        }
        Err(message) => {
            eprintln!("midge passwd: {message}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Done {
    Success,
    /// `-h`: usage on standard output.
    Help,
    /// No arguments: usage on standard error, failure (as `mosquitto_passwd`).
    Usage,
}

/// What to do, from the command line.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    /// Set a user's password, in a new file (`create`) or an existing one.
    Set {
        file: PathBuf,
        username: String,
        /// Given with `-b`; else asked for.
        password: Option<Vec<u8>>,
        create: bool,
        algorithm: Algorithm,
    },
    Delete {
        file: PathBuf,
        username: String,
    },
    Upgrade {
        file: PathBuf,
        algorithm: Algorithm,
    },
}

fn run(args: Vec<OsString>) -> Result<Done, String> {
    if args.is_empty() {
        return Ok(Done::Usage);
    }
    let Some(command) = parse(&args)? else {
        return Ok(Done::Help);
    };
    match command {
        Command::Set {
            file,
            username,
            password,
            create,
            algorithm,
        } => {
            password::check_username(&username)?;
            warn_about(algorithm);
            let mut passwords = if create {
                PasswordFile::new(file)
            } else {
                load(&file, PasswordFile::load)?
            };
            let password = match password {
                Some(password) => password,
                None => read_password()?,
            };
            passwords
                .set_with(&username, &password, algorithm)
                .map_err(|e| e.to_string())?;
            passwords.save().map_err(|e| e.to_string())?;
        }
        Command::Delete { file, username } => {
            let mut passwords = load(&file, PasswordFile::load)?;
            if !passwords.delete(&username) {
                return Err(format!(
                    "user {username} is not in {}; nothing was changed",
                    file.display()
                ));
            }
            passwords.save().map_err(|e| e.to_string())?;
        }
        Command::Upgrade { file, algorithm } => {
            warn_about(algorithm);
            let mut passwords = load(&file, PasswordFile::load_plain_text)?;
            if passwords
                .upgrade_plain_text(algorithm)
                .map_err(|e| e.to_string())?
                > 0
            {
                passwords.save().map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(Done::Success)
}

/// Reads the command line; `None` for `-h`.
fn parse(args: &[OsString]) -> Result<Option<Command>, String> {
    let mut algorithm = Algorithm::DEFAULT;
    let (mut batch, mut create, mut delete, mut upgrade) = (false, false, false, false);
    let mut i = 0;
    while let Some(arg) = args.get(i).and_then(|a| a.to_str()) {
        match arg {
            "-H" => {
                let name = args
                    .get(i + 1)
                    .ok_or("-H needs a hash name: argon2id, sha512-pbkdf2 or sha512")?;
                algorithm = name
                    .to_str()
                    .and_then(Algorithm::from_name)
                    .ok_or_else(|| {
                        format!(
                            "unknown hash \"{}\" (use argon2id, sha512-pbkdf2 or sha512)",
                            name.to_string_lossy()
                        )
                    })?;
                i += 1;
            }
            "-b" => batch = true,
            "-c" => create = true,
            "-D" => delete = true,
            "-U" => upgrade = true,
            "-h" | "--help" => return Ok(None),
            "--" => {
                i += 1;
                break;
            }
            _ if arg.starts_with('-') && arg.len() > 1 => {
                return Err(format!("unknown option {arg} (see midge passwd -h)"));
            }
            _ => break,
        }
        i += 1;
    }
    for (a, b, both) in [
        (create, delete, "-c and -D"),
        (create, upgrade, "-c and -U"),
        (delete, upgrade, "-D and -U"),
        (delete, batch, "-b and -D"),
        (upgrade, batch, "-b and -U"),
    ] {
        if a && b {
            return Err(format!("{both} cannot be used together"));
        }
    }

    let rest = &args[i.min(args.len())..];
    let expected = if upgrade {
        "passwordfile"
    } else if batch {
        "passwordfile username password"
    } else {
        "passwordfile username"
    };
    let wanted = expected.split(' ').count();
    if rest.len() != wanted {
        return Err(format!(
            "expected {expected} after the options, got {} argument{} (see midge passwd -h)",
            rest.len(),
            if rest.len() == 1 { "" } else { "s" }
        ));
    }
    let file = PathBuf::from(&rest[0]);
    if upgrade {
        return Ok(Some(Command::Upgrade { file, algorithm }));
    }
    let username = rest[1]
        .to_str()
        .ok_or("the user name is not valid UTF-8")?
        .to_owned();
    if delete {
        return Ok(Some(Command::Delete { file, username }));
    }
    Ok(Some(Command::Set {
        file,
        username,
        password: rest.get(2).map(|p| p.as_bytes().to_vec()),
        create,
        algorithm,
    }))
}

/// Loads an existing file, saying how to create it when there is none.
fn load(
    file: &Path,
    loader: fn(PathBuf) -> Result<PasswordFile, PasswordFileError>,
) -> Result<PasswordFile, String> {
    loader(file.to_owned()).map_err(|e| match e {
        PasswordFileError::Read { source, .. } if source.kind() == io::ErrorKind::NotFound => {
            format!(
                "{}: no such password file (use -c to create it)",
                file.display()
            )
        }
        e => e.to_string(),
    })
}

fn warn_about(algorithm: Algorithm) {
    if algorithm == Algorithm::Sha512 {
        eprintln!(
            "midge passwd: warning: sha512 is a single fast hash, easy to brute-force if the \
             file leaks; use it only for Mosquitto 1.6 and earlier"
        );
    }
}

/// The password: asked twice without echo on a terminal, else one line of standard input.
fn read_password() -> Result<Vec<u8>, String> {
    let stdin = io::stdin();
    if stdin.is_terminal() {
        let first = rpassword::prompt_password("Password: ")
            .map_err(|e| format!("cannot read the password: {e}"))?;
        let second = rpassword::prompt_password("Reenter password: ")
            .map_err(|e| format!("cannot read the password: {e}"))?;
        if first != second {
            return Err("the passwords do not match; nothing was changed".into());
        }
        return Ok(first.into_bytes());
    }
    let mut line = Vec::new();
    let n = stdin
        .lock()
        .read_until(b'\n', &mut line)
        .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
    if n == 0 {
        return Err(
            "no password on standard input (give it as one line, or use -b to pass it as an \
             argument)"
                .into(),
        );
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    Ok(line)
}

/// Whether `args` (after the program name) ask for `midge passwd`.
pub fn is_passwd(first_arg: Option<&OsStr>) -> bool {
    first_arg == Some(OsStr::new("passwd"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(args: &[&str]) -> Result<Option<Command>, String> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        parse(&args)
    }

    #[test]
    fn command_lines() {
        assert_eq!(
            parse_str(&["-c", "f", "u"]).unwrap(),
            Some(Command::Set {
                file: "f".into(),
                username: "u".into(),
                password: None,
                create: true,
                algorithm: Algorithm::DEFAULT,
            })
        );
        assert_eq!(
            parse_str(&["-H", "sha512-pbkdf2", "-b", "f", "u", "p w"]).unwrap(),
            Some(Command::Set {
                file: "f".into(),
                username: "u".into(),
                password: Some(b"p w".to_vec()),
                create: false,
                algorithm: Algorithm::Sha512Pbkdf2 {
                    iterations: password::PBKDF2_ITERATIONS
                },
            })
        );
        assert_eq!(
            parse_str(&["-D", "f", "u"]).unwrap(),
            Some(Command::Delete {
                file: "f".into(),
                username: "u".into()
            })
        );
        assert_eq!(
            parse_str(&["-U", "-H", "sha512", "f"]).unwrap(),
            Some(Command::Upgrade {
                file: "f".into(),
                algorithm: Algorithm::Sha512
            })
        );
        // A password may start with '-' after `--` or once the positionals began.
        assert_eq!(
            parse_str(&["-b", "--", "f", "u", "-x"]).unwrap(),
            Some(Command::Set {
                file: "f".into(),
                username: "u".into(),
                password: Some(b"-x".to_vec()),
                create: false,
                algorithm: Algorithm::DEFAULT,
            })
        );
        assert_eq!(parse_str(&["-h"]).unwrap(), None);
    }

    #[test]
    fn bad_command_lines() {
        for (args, expect) in [
            (
                &["-c", "-D", "f", "u"][..],
                "-c and -D cannot be used together",
            ),
            (&["-c", "-U", "f"], "-c and -U"),
            (&["-D", "-U", "f"], "-D and -U"),
            (&["-b", "-D", "f", "u"], "-b and -D"),
            (&["-H", "md5", "f", "u"], "unknown hash \"md5\""),
            (&["-H"], "-H needs a hash name"),
            (&["-x", "f", "u"], "unknown option -x"),
            (
                &["f"],
                "expected passwordfile username after the options, got 1 argument",
            ),
            (&["-b", "f", "u"], "expected passwordfile username password"),
            (&["-U", "f", "g"], "expected passwordfile after"),
            (&["f", "u", "extra"], "got 3 arguments"),
        ] {
            let err = parse_str(args).unwrap_err();
            assert!(err.contains(expect), "{args:?}: {err}");
        }
        assert_eq!(run(Vec::new()), Ok(Done::Usage));
    }

    #[test]
    fn dispatch_word() {
        assert!(is_passwd(Some(OsStr::new("passwd"))));
        assert!(!is_passwd(Some(OsStr::new("-c"))));
        assert!(!is_passwd(None));
    }
}
