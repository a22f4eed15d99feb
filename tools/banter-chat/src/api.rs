//! The server's API, transport aside: authentication, routes, request validation, and the jobs handed to
//! the generator thread. Runs on the server's bounded pool of blocking threads (a request waits there for
//! its reply); the HTTP side lives in [`crate::server`].

use std::sync::mpsc;

use banter_core::records::{Role, Turn};
use banter_model::generate::{Output, Sampling};
use serde_json::{Value, json};

/// What a request is answered with.
pub enum Answer {
    /// A JSON body with a status.
    Json(u16, Value),
    /// The chat page.
    Page,
    /// Server-sent events of a streamed completion: the first piece (already received), then the rest, then
    /// the end (the sender dropped).
    Stream(Option<String>, tokio::sync::mpsc::UnboundedReceiver<Piece>, String, StreamKind),
}

/// Conversations longer than this many turns are refused (400): the server's work per request is bounded.
pub const MAX_TURNS: usize = 1024;
/// The most choices (`n`) one request may ask for.
pub const MAX_CHOICES: usize = 8;

/// Why a job got no reply: the HTTP status, the error type, and the message.
#[derive(Debug, Clone)]
pub struct JobError {
    pub status: u16,
    pub kind: &'static str,
    pub message: String,
}

impl JobError {
    /// The request's fault (a chat template that refuses the conversation): 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        JobError { status: 400, kind: "invalid_request_error", message: message.into() }
    }

    /// The server's fault: `status` (500, or 503 when the log cannot be written).
    pub fn server(status: u16, message: impl Into<String>) -> Self {
        JobError {
            status,
            kind: if status == 503 { "server_unavailable" } else { "server_error" },
            message: message.into(),
        }
    }

    fn answer(&self) -> Answer {
        error(self.status, self.kind, self.message.clone())
    }
}

/// A piece of a streamed reply, or the error that ended it.
#[derive(Debug, Clone)]
pub enum Piece {
    Text(String),
    Failed(JobError),
}

/// Which OpenAI API a stream answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// `chat.completion.chunk` deltas.
    Chat,
    /// `text_completion` pieces.
    Text,
}

/// One generation for the generator thread.
pub struct Job {
    pub turns: Vec<Turn>,
    /// A plain-text prompt continued without the chat template (`/v1/completions`); `turns` is empty.
    pub raw: Option<String>,
    pub sampling: Sampling,
    pub stream: Option<tokio::sync::mpsc::UnboundedSender<Piece>>,
    pub done: mpsc::SyncSender<Result<Output, JobError>>,
}

/// What the handlers share.
pub struct Ctx {
    pub tx: mpsc::SyncSender<Job>,
    pub defaults: Sampling,
    /// Requests without a `seed` draw a fresh one (OpenAI's semantics), unless `serve --seed` fixed it.
    pub fresh_seeds: bool,
    /// The adapter served now (swapped by the generator when one is published).
    pub serving: std::sync::Arc<std::sync::Mutex<Option<String>>>,
    pub limit: usize,
    pub key: Option<String>,
    pub system: Option<String>,
    pub model: String,
}

/// A request, read.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub authorization: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

type Resp = Answer;

/// A JSON error in the shape both APIs use.
pub fn error(status: u16, kind: &str, msg: impl Into<String>) -> Answer {
    let msg = msg.into();
    Answer::Json(status, json!({"error": {"message": msg, "type": kind, "code": status}, "detail": msg}))
}

/// Answers a request (blocking while the model generates).
pub fn answer(req: &Request<'_>, ctx: &Ctx) -> Answer {
    let (method, path) = (req.method, req.path);
    if path != "/"
        && path != "/health"
        && let Some(key) = &ctx.key
    {
        let ok = req.authorization.and_then(|h| h.strip_prefix("Bearer ")).is_some_and(|k| k.trim() == key);
        if !ok {
            return error(401, "authentication_error", "missing or wrong API key (Authorization: Bearer …)");
        }
    }
    match (method, path) {
        ("GET", "/") => Answer::Page,
        // OpenAI-style clients (chat front-ends) list the models first.
        ("GET", "/v1/models") => Answer::Json(
            200,
            json!({"object": "list", "data": [{"id": ctx.model, "object": "model", "created": now(), "owned_by": "banter"}]}),
        ),
        ("GET", "/health") => {
            let adapter = ctx.serving.lock().map(|a| a.clone()).unwrap_or_default();
            Answer::Json(
                200,
                json!({"status": "ok", "model": ctx.model, "adapter": adapter, "version": banter_core::VERSION}),
            )
        }
        ("POST", "/chat") | ("POST", "/v1/chat/completions") | ("POST", "/v1/completions") => {
            if let Some(ct) = req.content_type {
                let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
                if mime != "application/json" {
                    return error(
                        415,
                        "invalid_request_error",
                        format!("Content-Type {mime} is not accepted: send application/json"),
                    );
                }
            }
            let body: Value = match serde_json::from_slice(req.body) {
                Ok(v) => v,
                Err(e) => return error(400, "invalid_request_error", format!("invalid JSON: {e}")),
            };
            match path {
                "/chat" => chat(&body, ctx),
                "/v1/completions" => text_completions(&body, ctx),
                _ => completions(&body, ctx),
            }
        }
        (_, "/" | "/health" | "/chat" | "/v1/chat/completions" | "/v1/completions" | "/v1/models") => {
            error(405, "invalid_request_error", format!("{method} is not allowed on {path}"))
        }
        _ => error(404, "not_found", format!("no route {path}")),
    }
}

/// A seed nobody chose: std's per-process random keys (from the OS), stepped for every call, mixed with the
/// clock.
fn fresh_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    h.finish()
}

fn sampling_from(v: &Value, ctx: &Ctx, tokens_key: &str) -> Result<Sampling, Resp> {
    let mut s = ctx.defaults.clone();
    let num = |k: &str| v.get(k).filter(|x| !x.is_null());
    let bad = |k: &str, what: &str| error(400, "invalid_request_error", format!("{k} must be {what}"));
    if let Some(t) = num("temperature") {
        s.temperature = t.as_f64().ok_or_else(|| bad("temperature", "a number"))?;
    }
    if let Some(p) = num("top_p") {
        s.top_p = p.as_f64().ok_or_else(|| bad("top_p", "a number"))?;
    }
    if let Some(k) = num("top_k") {
        s.top_k = k.as_u64().ok_or_else(|| bad("top_k", "a non-negative integer"))? as usize;
    }
    if let Some(r) = num("repetition_penalty") {
        s.repetition_penalty = r.as_f64().ok_or_else(|| bad("repetition_penalty", "a number"))?;
    }
    // The ranges are banter-model's, as for the command line's flags.
    s.validate().map_err(|(field, msg)| error(400, "invalid_request_error", format!("{field} {msg}")))?;
    match num("seed") {
        Some(seed) => s.seed = seed.as_u64().ok_or_else(|| bad("seed", "a non-negative integer"))?,
        None if ctx.fresh_seeds => s.seed = fresh_seed(),
        None => {}
    }
    if let Some(m) = num(tokens_key) {
        let m =
            m.as_u64().filter(|&m| m >= 1).ok_or_else(|| {
                error(400, "invalid_request_error", format!("{tokens_key} must be a positive integer"))
            })? as usize;
        if m > ctx.limit {
            return Err(error(
                400,
                "invalid_request_error",
                format!("{tokens_key} {m} is over the server's limit of {}", ctx.limit),
            ));
        }
        s.max_new_tokens = m;
    }
    Ok(s)
}

fn run_job(
    ctx: &Ctx,
    turns: Vec<Turn>,
    sampling: Sampling,
    stream: Option<tokio::sync::mpsc::UnboundedSender<Piece>>,
) -> Result<mpsc::Receiver<Result<Output, JobError>>, Resp> {
    send_job(ctx, turns, None, sampling, stream)
}

/// Waits for a job's output: its error (a template that refused the conversation: 400; an unwritable
/// log: 503) or the reply.
fn wait(rx: mpsc::Receiver<Result<Output, JobError>>) -> Result<Output, Resp> {
    match rx.recv() {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(e)) => Err(e.answer()),
        Err(_) => Err(error(500, "server_error", "generation failed")),
    }
}

/// `n` choices, 1 by default, at most [`MAX_CHOICES`], and 1 when streaming.
fn choices(v: &Value, stream: bool) -> Result<usize, Resp> {
    let Some(n) = v.get("n").filter(|n| !n.is_null()) else { return Ok(1) };
    let n = n
        .as_u64()
        .filter(|&n| n >= 1)
        .ok_or_else(|| error(400, "invalid_request_error", "n must be a positive integer"))? as usize;
    if n > MAX_CHOICES {
        return Err(error(400, "invalid_request_error", format!("n {n} is over the server's limit of {MAX_CHOICES}")));
    }
    if stream && n > 1 {
        return Err(error(400, "invalid_request_error", "n > 1 cannot be streamed: leave out stream or n"));
    }
    Ok(n)
}

/// A streamed job's answer: waits for its first piece, so that a conversation the template refuses is a
/// plain 400 (not a stream that breaks off).
fn stream_answer(mut srx: tokio::sync::mpsc::UnboundedReceiver<Piece>, id: String, kind: StreamKind) -> Resp {
    match srx.blocking_recv() {
        Some(Piece::Failed(e)) => e.answer(),
        Some(Piece::Text(t)) => Answer::Stream(Some(t), srx, id, kind),
        None => Answer::Stream(None, srx, id, kind),
    }
}

/// Queues a job for the generator; the receiver gets its output.
fn send_job(
    ctx: &Ctx,
    turns: Vec<Turn>,
    raw: Option<String>,
    sampling: Sampling,
    stream: Option<tokio::sync::mpsc::UnboundedSender<Piece>>,
) -> Result<mpsc::Receiver<Result<Output, JobError>>, Resp> {
    let (done, rx) = mpsc::sync_channel(1);
    ctx.tx.try_send(Job { turns, raw, sampling, stream, done }).map_err(|e| match e {
        mpsc::TrySendError::Full(_) => error(503, "server_busy", "too many requests are waiting; try again"),
        mpsc::TrySendError::Disconnected(_) => error(500, "server_error", "the model stopped"),
    })?;
    Ok(rx)
}

fn with_system(ctx: &Ctx, mut turns: Vec<Turn>) -> Vec<Turn> {
    if let (Some(s), false) = (&ctx.system, turns.first().is_some_and(|t| t.role == Role::System)) {
        turns.insert(0, Turn::new(Role::System, s.clone()));
    }
    turns
}

/// The seed's API: `{message, temperature, max_length, top_p, top_k, history?}` → `{response}`.
fn chat(v: &Value, ctx: &Ctx) -> Resp {
    let Some(message) = v.get("message").and_then(|m| m.as_str()) else {
        return error(400, "invalid_request_error", "field \"message\" (a string) is required");
    };
    let sampling = match sampling_from(v, ctx, "max_length") {
        Ok(s) => s,
        Err(r) => return r,
    };
    let mut turns = match v.get("history") {
        None | Some(Value::Null) => Vec::new(),
        Some(h) => match turns_from(h, "history") {
            Ok(t) => t,
            Err(r) => return r,
        },
    };
    turns.push(Turn::new(Role::User, message));
    match run_job(ctx, with_system(ctx, turns), sampling, None).and_then(wait) {
        Ok(out) => Answer::Json(200, json!({"response": out.text})),
        Err(r) => r,
    }
}

/// Chat turns from a JSON array, with banter-core's record errors (`field "messages[1].role": …`).
fn turns_from(v: &Value, field: &str) -> Result<Vec<Turn>, Resp> {
    let bad = |e: banter_core::FieldError| error(400, "invalid_request_error", e.to_string());
    let Value::Array(items) = v else {
        return Err(bad(banter_core::FieldError::field(field, "expected an array")));
    };
    if items.len() > MAX_TURNS {
        return Err(error(
            400,
            "invalid_request_error",
            format!("field \"{field}\": {} turns, over the server's limit of {MAX_TURNS}", items.len()),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, t)| Turn::from_value(t.clone()).map_err(|e| bad(e.within(&format!("{field}[{i}]")))))
        .collect()
}

fn completions(v: &Value, ctx: &Ctx) -> Resp {
    let result = (|| {
        let msgs = v
            .get("messages")
            .ok_or_else(|| error(400, "invalid_request_error", "field \"messages\" (an array) is required"))?;
        let turns = turns_from(msgs, "messages")?;
        if turns.is_empty() {
            return Err(error(400, "invalid_request_error", "\"messages\" is empty"));
        }
        let sampling = sampling_from(v, ctx, "max_tokens")?;
        let id = format!(
            "chatcmpl-{:x}",
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
        );
        let turns = with_system(ctx, turns);
        let stream = v.get("stream").and_then(|s| s.as_bool()) == Some(true);
        let n = choices(v, stream)?;
        if stream {
            let (stx, srx) = tokio::sync::mpsc::unbounded_channel();
            run_job(ctx, turns, sampling, Some(stx))?;
            return Ok(stream_answer(srx, id, StreamKind::Chat));
        }
        let outs = n_outputs(n, &sampling, |s| run_job(ctx, turns.clone(), s, None))?;
        let list: Vec<Value> = outs
            .iter()
            .enumerate()
            .map(|(i, out)| json!({"index": i, "message": {"role": "assistant", "content": out.text}, "finish_reason": out.finish.as_str()}))
            .collect();
        Ok(Answer::Json(
            200,
            json!({
                "id": id, "object": "chat.completion", "created": now(), "model": ctx.model,
                "choices": list, "usage": usage(&outs),
            }),
        ))
    })();
    result.unwrap_or_else(|e| e)
}

/// OpenAI's legacy completions: `{prompt, max_tokens, temperature, …, stream?}` → `text_completion`; the
/// prompt is continued as plain text, without the chat template.
fn text_completions(v: &Value, ctx: &Ctx) -> Resp {
    let result = (|| {
        let prompt = match v.get("prompt") {
            Some(Value::String(p)) => p.clone(),
            Some(Value::Array(a)) if a.len() == 1 && a[0].is_string() => a[0].as_str().unwrap_or("").to_string(),
            Some(Value::Array(_)) => {
                return Err(error(400, "invalid_request_error", "\"prompt\": one prompt (a string) per request"));
            }
            _ => return Err(error(400, "invalid_request_error", "field \"prompt\" (a string) is required")),
        };
        if prompt.is_empty() {
            return Err(error(400, "invalid_request_error", "\"prompt\" is empty"));
        }
        let sampling = sampling_from(v, ctx, "max_tokens")?;
        let id = format!(
            "cmpl-{:x}",
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
        );
        let stream = v.get("stream").and_then(|s| s.as_bool()) == Some(true);
        let n = choices(v, stream)?;
        if stream {
            let (stx, srx) = tokio::sync::mpsc::unbounded_channel();
            send_job(ctx, Vec::new(), Some(prompt), sampling, Some(stx))?;
            return Ok(stream_answer(srx, id, StreamKind::Text));
        }
        let outs = n_outputs(n, &sampling, |s| send_job(ctx, Vec::new(), Some(prompt.clone()), s, None))?;
        let list: Vec<Value> = outs
            .iter()
            .enumerate()
            .map(|(i, out)| json!({"index": i, "text": out.text, "logprobs": null, "finish_reason": out.finish.as_str()}))
            .collect();
        Ok(Answer::Json(
            200,
            json!({
                "id": id, "object": "text_completion", "created": now(), "model": ctx.model,
                "choices": list, "usage": usage(&outs),
            }),
        ))
    })();
    result.unwrap_or_else(|e| e)
}

/// `n` outputs of one request, the i-th sampled with seed + i; all are queued before the first is awaited.
fn n_outputs(
    n: usize,
    sampling: &Sampling,
    mut send: impl FnMut(Sampling) -> Result<mpsc::Receiver<Result<Output, JobError>>, Resp>,
) -> Result<Vec<Output>, Resp> {
    let rxs = (0..n)
        .map(|i| send(Sampling { seed: sampling.seed.wrapping_add(i as u64), ..sampling.clone() }))
        .collect::<Result<Vec<_>, _>>()?;
    rxs.into_iter().map(wait).collect()
}

/// OpenAI's `usage` over a request's choices (the prompt counted once).
fn usage(outs: &[Output]) -> Value {
    let prompt = outs.first().map_or(0, |o| o.prompt_tokens);
    let completion: usize = outs.iter().map(|o| o.ids.len()).sum();
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

/// One server-sent event of an OpenAI text-completion chunk.
pub fn sse_text_chunk(id: &str, model: &str, text: &str, finish: Value) -> String {
    let c = json!({"id": id, "object": "text_completion", "created": now(), "model": model,
                   "choices": [{"index": 0, "text": text, "logprobs": null, "finish_reason": finish}]});
    format!("data: {c}\n\n")
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// One server-sent event of an OpenAI chat-completion chunk.
pub fn sse_chunk(id: &str, model: &str, delta: Value, finish: Value) -> String {
    let c = json!({"id": id, "object": "chat.completion.chunk", "created": now(), "model": model,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    format!("data: {c}\n\n")
}
