//! Third-party clients and browsers run as child processes: a script that prints JSON
//! lines on stdout (a ready line, a result line with `"ok": true`) and exits 0 on success.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// A script in flight: its stdout arrives line by line, within a deadline.
pub struct Script {
    name: String,
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    stderr: Option<thread::JoinHandle<String>>,
    started: Instant,
    deadline: Duration,
}

impl Script {
    /// Starts `cmd` (stdin closed, stdout and stderr captured); `name` labels failures.
    pub fn spawn(name: &str, mut cmd: Command, deadline: Duration) -> Self {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| {
            let program = cmd.get_program().to_string_lossy().into_owned();
            panic!("cannot start `{program}` for {name} ({e})")
        });
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout is piped");
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Self {
            name: name.to_owned(),
            child,
            lines,
            seen: Vec::new(),
            stderr: Some(stderr),
            started: Instant::now(),
            deadline,
        }
    }

    fn remaining(&self) -> Duration {
        self.deadline.saturating_sub(self.started.elapsed())
    }

    /// The next stdout line as JSON; panics on timeout, exit or garbage, with the output.
    pub fn next_json(&mut self, what: &str) -> Value {
        let Ok(line) = self.lines.recv_timeout(self.remaining()) else {
            let out = self.output();
            panic!("{}: no {what} within {:?}\n{out}", self.name, self.deadline);
        };
        self.seen.push(line.clone());
        serde_json::from_str(&line).unwrap_or_else(|e| {
            let out = self.output();
            panic!("{}: {what} is not JSON ({e}): {line}\n{out}", self.name)
        })
    }

    /// Waits for the exit; kills the child past the deadline.
    fn wait(&mut self) -> ExitStatus {
        loop {
            if let Some(status) = self.child.try_wait().expect("poll child") {
                return status;
            }
            if self.remaining().is_zero() {
                let out = self.output();
                panic!(
                    "{} still running after {:?}\n{out}",
                    self.name, self.deadline
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The result line, checked for `"ok": true` and a zero exit code.
    pub fn result(mut self) -> Value {
        let result = self.next_json("result line");
        let status = self.wait();
        if !status.success() || result["ok"] != json!(true) {
            let out = self.output();
            panic!("{} failed ({status}): {result}\n{out}", self.name);
        }
        result
    }

    /// Everything the child printed (it is stopped first), for failure messages.
    pub fn output(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.seen.extend(self.lines.try_iter());
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{stderr}",
            self.seen.join("\n")
        )
    }
}

impl Drop for Script {
    /// A failed test must not leave its client or browser behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `f` (which blocks on child processes) off the runtime serving the server.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
