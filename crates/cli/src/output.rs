//! What the client shows: progress bars on a terminal (per file: bytes, rate, time left; and
//! overall), or, with `--json`, one JSON object per line on stdout for scripts.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

/// Something that happened to an upload.
pub enum Event<'a> {
    Hashing {
        file: &'a str,
        bytes: u64,
        size: u64,
    },
    Started {
        file: &'a str,
        id: &'a str,
        size: u64,
        part_size: u64,
        part_count: u64,
        /// Bytes the store held already (a resumed upload).
        bytes_held: u64,
        parts_to_send: u64,
    },
    Part {
        file: &'a str,
        id: &'a str,
        number: u32,
        /// The file's bytes the store holds now.
        bytes: u64,
        size: u64,
    },
    Retry {
        file: &'a str,
        number: u32,
        attempt: u32,
        error: &'a str,
    },
    Completed {
        file: &'a str,
        id: &'a str,
        size: u64,
    },
}

pub enum Reporter {
    /// Nothing but the result (`--quiet`).
    Quiet,
    /// Lines for people on stdout (`watch`).
    Text,
    Json(Mutex<std::io::Stdout>),
    Bars {
        multi: MultiProgress,
        total: ProgressBar,
        files: Mutex<HashMap<String, ProgressBar>>,
    },
}

impl Reporter {
    pub fn json() -> Self {
        Reporter::Json(Mutex::new(std::io::stdout()))
    }

    /// Bars on stderr (hidden when it is not a terminal), `total` bytes in all.
    pub fn bars(total: u64) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let all = multi.add(ProgressBar::new(total));
        all.set_style(
            ProgressStyle::with_template(
                "{prefix:>12} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {eta} left",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        all.set_prefix("all files");
        Reporter::Bars {
            multi,
            total: all,
            files: Mutex::new(HashMap::new()),
        }
    }

    fn line(&self, value: serde_json::Value) {
        if let Reporter::Json(out) = self {
            let mut out = out.lock().unwrap_or_else(|p| p.into_inner());
            let _ = writeln!(out, "{value}");
            let _ = out.flush();
        }
    }

    /// A line for people (above the bars), or a JSON object.
    pub fn say(&self, text: &str, value: serde_json::Value) {
        match self {
            Reporter::Quiet => {}
            Reporter::Text => println!("{text}"),
            Reporter::Json(_) => self.line(value),
            Reporter::Bars { multi, .. } => {
                let _ = multi.println(text);
            }
        }
    }

    fn bar(&self, file: &str, size: u64) -> Option<ProgressBar> {
        let Reporter::Bars { multi, files, .. } = self else {
            return None;
        };
        let mut files = files.lock().unwrap_or_else(|p| p.into_inner());
        Some(
            files
                .entry(file.to_owned())
                .or_insert_with(|| {
                    let bar = multi.insert(0, ProgressBar::new(size));
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{prefix:>12} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {eta} left {msg}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    let short: String = file
                        .chars()
                        .rev()
                        .take(12)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect();
                    bar.set_prefix(short);
                    bar
                })
                .clone(),
        )
    }

    pub fn event(&self, event: Event<'_>) {
        match event {
            Event::Hashing { file, bytes, size } => {
                if let Some(bar) = self.bar(file, size) {
                    bar.set_message("hashing");
                    bar.set_position(bytes);
                } else if bytes == 0 {
                    self.line(json!({"event": "hashing", "file": file, "size": size}));
                }
            }
            Event::Started {
                file,
                id,
                size,
                part_size,
                part_count,
                bytes_held,
                parts_to_send,
            } => {
                if let Some(bar) = self.bar(file, size) {
                    bar.set_position(bytes_held);
                    bar.reset_eta();
                    bar.set_message(if bytes_held > 0 { "resumed" } else { "" });
                    if let Reporter::Bars { total, .. } = self {
                        total.inc(bytes_held);
                    }
                }
                self.line(json!({
                    "event": "started", "file": file, "id": id, "size": size, "part_size": part_size,
                    "part_count": part_count, "resumed": bytes_held > 0, "bytes_held": bytes_held,
                    "parts_to_send": parts_to_send,
                }));
            }
            Event::Part {
                file,
                id,
                number,
                bytes,
                size,
            } => {
                if let Some(bar) = self.bar(file, size) {
                    let before = bar.position();
                    bar.set_message("");
                    bar.set_position(bytes);
                    if let Reporter::Bars { total, .. } = self {
                        total.inc(bytes.saturating_sub(before));
                    }
                }
                self.line(
                    json!({"event": "part", "file": file, "id": id, "number": number, "bytes": bytes, "size": size}),
                );
            }
            Event::Retry {
                file,
                number,
                attempt,
                error,
            } => {
                if let Some(bar) = self.bar(file, 0) {
                    bar.set_message(format!("retrying part {number} (attempt {attempt}): {error}"));
                }
                self.line(
                    json!({"event": "retry", "file": file, "number": number, "attempt": attempt, "error": error}),
                );
            }
            Event::Completed { file, id, size } => {
                if let Some(bar) = self.bar(file, size) {
                    bar.finish_with_message("sent");
                }
                self.line(json!({"event": "completed", "file": file, "id": id, "size": size}));
            }
        }
    }

    pub fn finish(&self) {
        if let Reporter::Bars { total, .. } = self {
            total.finish();
        }
    }
}
