//! `midge passwd` end to end: the built binary edits password files that midge's reader
//! and, where installed, Mosquitto's own tools accept.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use midge::security::password::PasswordFile;

/// Runs `midge passwd ARGS`, with `stdin` on standard input (not a terminal).
fn midge_passwd(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_midge"))
        .arg("passwd")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run midge");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn ok(args: &[&str]) -> Output {
    let out = midge_passwd(args, "");
    assert!(
        out.status.success(),
        "midge passwd {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Fails with exit code 1 and one line on standard error containing `expect`.
fn fails(args: &[&str], expect: &str) {
    let out = midge_passwd(args, "");
    assert_eq!(out.status.code(), Some(1), "midge passwd {args:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
    assert!(
        stderr.starts_with("midge passwd: ") && stderr.contains(expect),
        "{args:?}: {stderr}"
    );
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// Whether a program can be started (it may still exit non-zero without arguments).
fn installed(program: &str) -> bool {
    match Command::new(program)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => true,
        Err(_) => {
            eprintln!("{program} is not installed: skipping the checks that need it");
            false
        }
    }
}

#[test]
fn create_add_replace_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("passwd");
    ok(&["-c", "-b", s(&pw), "alice", "first secret"]);
    assert_eq!(
        std::fs::metadata(&pw).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let t = text(&pw);
    assert!(t.starts_with("alice:$argon2id$v=19$m=8192,t=2,p=1$"), "{t}");
    assert_eq!(t.lines().count(), 1);

    ok(&["-H", "sha512-pbkdf2", "-b", s(&pw), "bob", "b:o:b"]);
    let out = ok(&["-H", "sha512", "-b", s(&pw), "carol", ""]);
    let warning = String::from_utf8(out.stderr).unwrap();
    assert!(warning.contains("warning: sha512"), "{warning}");
    ok(&["-H", "argon2id", "-b", s(&pw), "dave", "dävé"]);
    // Replacing a password keeps the user's place.
    ok(&["-b", s(&pw), "alice", "second secret"]);

    let t = text(&pw);
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines.len(), 4, "{t}");
    assert!(lines[0].starts_with("alice:$argon2id$"));
    assert!(lines[1].starts_with("bob:$7$210000$"), "{}", lines[1]);
    assert!(lines[2].starts_with("carol:$6$"), "{}", lines[2]);
    assert!(lines[3].starts_with("dave:$argon2id$"));

    let f = PasswordFile::load(&pw).unwrap();
    assert!(f.verify("alice", b"second secret"));
    assert!(!f.verify("alice", b"first secret"));
    assert!(f.verify("bob", b"b:o:b"));
    assert!(f.verify("carol", b""));
    assert!(f.verify("dave", "dävé".as_bytes()));
    assert!(!f.verify("dave", b"dave"));

    // -c starts over.
    ok(&["-c", "-b", s(&pw), "erin", "e"]);
    let f = PasswordFile::load(&pw).unwrap();
    assert_eq!(f.usernames().collect::<Vec<_>>(), ["erin"]);
}

#[test]
fn password_from_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("passwd");
    let out = midge_passwd(&["-c", s(&pw), "piper"], "from stdin\n");
    assert!(out.status.success(), "{out:?}");
    let out = midge_passwd(&[s(&pw), "crlf"], "dos line\r\n");
    assert!(out.status.success(), "{out:?}");
    let f = PasswordFile::load(&pw).unwrap();
    assert!(f.verify("piper", b"from stdin"));
    assert!(f.verify("crlf", b"dos line"));

    let out = midge_passwd(&[s(&pw), "nobody"], "");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("no password on standard input"), "{stderr}");
    assert!(!PasswordFile::load(&pw).unwrap().contains("nobody"));
}

#[test]
fn delete_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("passwd");
    ok(&["-c", "-H", "sha512", "-b", s(&pw), "a", "1"]);
    ok(&["-H", "sha512", "-b", s(&pw), "b", "2"]);
    let with_comment = format!("# who may connect\n{}\n# end\n", text(&pw).trim_end());
    std::fs::write(&pw, &with_comment).unwrap();

    ok(&["-D", s(&pw), "a"]);
    let t = text(&pw);
    assert!(t.starts_with("# who may connect\nb:$6$"), "{t}");
    assert!(t.ends_with("\n# end\n"), "{t}");
    let f = PasswordFile::load(&pw).unwrap();
    assert!(!f.contains("a"));
    assert!(f.verify("b", b"2"));

    fails(&["-D", s(&pw), "a"], "user a is not in");
    assert_eq!(text(&pw), t, "unchanged");
}

#[test]
fn upgrade_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("passwd");
    std::fs::write(&pw, "# plain\nann:open sesame\nbea: spaced \n").unwrap();
    ok(&["-U", s(&pw)]);
    let t = text(&pw);
    assert!(t.starts_with("# plain\nann:$argon2id$"), "{t}");
    let f = PasswordFile::load(&pw).unwrap();
    assert!(f.verify("ann", b"open sesame"));
    assert!(f.verify("bea", b"spaced"), "blanks trimmed, as Mosquitto");

    // Already hashed: nothing to do, the file is left alone.
    ok(&["-U", "-H", "sha512-pbkdf2", s(&pw)]);
    assert_eq!(text(&pw), t);

    std::fs::write(&pw, "cid:plain\n").unwrap();
    ok(&["-U", "-H", "sha512-pbkdf2", s(&pw)]);
    assert!(text(&pw).starts_with("cid:$7$210000$"));
}

#[test]
fn errors_are_one_line_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("passwd");
    let missing = s(&pw);
    fails(
        &["-b", missing, "u", "p"],
        "no such password file (use -c to create it)",
    );
    fails(&["-D", missing, "u"], "no such password file");
    fails(&["-U", missing], "no such password file");
    fails(
        &["-c", "-D", missing, "u"],
        "-c and -D cannot be used together",
    );
    fails(
        &["-H", "md5", "-b", missing, "u", "p"],
        "unknown hash \"md5\"",
    );
    fails(
        &["-b", missing, "u"],
        "expected passwordfile username password",
    );
    fails(&["-c", "-b", missing, "us:er", "p"], "cannot contain ':'");
    fails(&["--bogus", missing, "u"], "unknown option --bogus");
    assert!(!pw.exists());

    std::fs::write(&pw, "good:$6$AAAA$AAAA\n").unwrap();
    fails(
        &["-b", missing, "u", "p"],
        ":1: the password hash of user good is invalid",
    );
    fails(
        &["-c", "-b", s(&dir.path().join("no/dir/pw")), "u", "p"],
        "cannot write the password file",
    );

    // No arguments: usage on stderr, exit 1 (as mosquitto_passwd); -h: usage on stdout.
    let out = midge_passwd(&[], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage: midge passwd"));
    let out = midge_passwd(&["-h"], "");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: midge passwd"));
}

#[test]
fn broker_flags_still_work() {
    // `passwd` is only special as the first argument; the broker's flags are untouched.
    let out = Command::new(env!("CARGO_BIN_EXE_midge"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("--test-config") && !help.contains("passwordfile"));
    let out = Command::new(env!("CARGO_BIN_EXE_midge"))
        .args(["-p", "1883", "passwd"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "a stray word is still an error");
}

/// Files written by `mosquitto_passwd` are read and extended by midge, and the other way
/// round.
#[test]
fn mosquitto_passwd_and_midge_passwd_share_files() {
    if !installed("mosquitto_passwd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("passwd");
    let mosquitto_passwd = |args: &[&str]| {
        let status = Command::new("mosquitto_passwd")
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "mosquitto_passwd {args:?}");
    };
    mosquitto_passwd(&["-c", "-b", s(&pw), "m7", "mosquitto seven"]);
    mosquitto_passwd(&["-H", "sha512", "-b", s(&pw), "m6", "mosquitto six"]);
    ok(&["-H", "sha512-pbkdf2", "-b", s(&pw), "k7", "midge seven"]);
    ok(&["-b", s(&pw), "ka", "midge argon"]);
    // mosquitto_passwd edits a file midge wrote (it copies lines it does not touch).
    mosquitto_passwd(&["-D", s(&pw), "m6"]);
    mosquitto_passwd(&["-b", s(&pw), "m8", "eight"]);

    let f = PasswordFile::load(&pw).unwrap();
    assert_eq!(
        f.usernames().collect::<Vec<_>>(),
        ["m7", "k7", "ka", "m8"],
        "{}",
        text(&pw)
    );
    assert!(f.verify("m7", b"mosquitto seven"));
    assert!(f.verify("k7", b"midge seven"));
    assert!(f.verify("ka", b"midge argon"));
    assert!(f.verify("m8", b"eight"));
    assert!(!f.verify("m6", b"mosquitto six"));
    assert!(!f.verify("m7", b"midge seven"));
}

/// The real Mosquitto broker accepts the `$7$` and `$6$` hashes midge writes.
#[test]
fn mosquitto_accepts_what_midge_writes() {
    if !installed("mosquitto_pub") || !installed_broker() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("passwd");
    ok(&["-c", "-H", "sha512-pbkdf2", "-b", s(&pw), "seven", "pw 7"]);
    ok(&["-H", "sha512", "-b", s(&pw), "six", "pw 6"]);

    let port = free_port();
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\nuser root\n",
            pw.display()
        ),
    )
    .unwrap();
    let mut broker = Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let broker_up = wait_for_port(port);
    let publish = |user: &str, password: &str| {
        Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(["-u", user, "-P", password, "-t", "midge/test", "-m", "x"])
            .output()
            .unwrap()
            .status
            .success()
    };
    let results = broker_up.then(|| {
        [
            publish("seven", "pw 7"),
            publish("six", "pw 6"),
            publish("seven", "pw 6"),
            publish("six", "pw 7"),
        ]
    });
    let _ = broker.kill();
    let mut log = String::new();
    let _ = broker.stderr.take().unwrap().read_to_string(&mut log);
    let _ = broker.wait();
    assert_eq!(
        results,
        Some([true, true, false, false]),
        "mosquitto's log:\n{log}"
    );
}

fn installed_broker() -> bool {
    match Command::new("mosquitto").arg("-h").output() {
        Ok(_) => true,
        Err(_) => {
            eprintln!("mosquitto is not installed: skipping the broker check");
            false
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
