//! The HTTP server: the self-learning chatbot's `POST /chat` (with sampling really applied), OpenAI's
//! `POST /v1/chat/completions` (with SSE streaming), `GET /health`, and a small chat page at `/`.
//! One generator thread answers requests in arrival order (a fair FIFO queue); request size and
//! `max_tokens` are limited; `--api-key` requires `Authorization: Bearer KEY`; errors are JSON.

use std::io::Read;
use std::sync::mpsc;

use banter_core::cli::CommonArgs;
use banter_core::records::{Role, Turn};
use banter_core::{Error, Exit};
use banter_model::generate::{Output, Sampling};
use clap::Args;
use serde_json::{Value, json};
use tiny_http::{Header, Method, Request, Response, Server};

use crate::{ModelArgs, SamplingArgs, TOOL};

/// `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (127.0.0.1: this machine only; 0.0.0.0 exposes it).
    #[arg(long, value_name = "HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// Port (0 picks a free one and prints it).
    #[arg(long, value_name = "PORT", default_value_t = 8000)]
    pub port: u16,
    /// Require `Authorization: Bearer KEY`.
    #[arg(long, value_name = "KEY", env = "BANTER_API_KEY")]
    pub api_key: Option<String>,
    /// Largest request body, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    pub max_request_bytes: usize,
    /// Largest `max_tokens` / `max_length` a request may ask for.
    #[arg(long, value_name = "N", default_value_t = 512)]
    pub max_tokens_limit: usize,
    /// Requests waiting for the model beyond this are refused with 503.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_queue: usize,
    /// Answer up to N waiting non-streaming requests with the same sampling settings in one batched
    /// decode (the weights are read once per step for all of them); 1 = one at a time.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub max_batch: usize,
    /// A persona for every conversation without a system message.
    #[arg(long, value_name = "TEXT")]
    pub system: Option<String>,
}

struct Job {
    turns: Vec<Turn>,
    sampling: Sampling,
    stream: Option<mpsc::Sender<String>>,
    done: mpsc::SyncSender<Output>,
}

const PAGE: &str = include_str!("page.html");

fn header(k: &str, v: &str) -> Header {
    Header::from_bytes(k.as_bytes(), v.as_bytes()).expect("static header")
}

fn json_response(status: u16, v: &Value) -> Response<std::io::Cursor<Vec<u8>>> {
    Response::from_data(v.to_string().into_bytes())
        .with_status_code(status)
        .with_header(header("Content-Type", "application/json"))
}

fn error(status: u16, kind: &str, msg: impl Into<String>) -> Response<std::io::Cursor<Vec<u8>>> {
    let msg = msg.into();
    json_response(status, &json!({"error": {"message": msg, "type": kind, "code": status}, "detail": msg}))
}

/// Runs the server until Ctrl-C.
pub fn run(a: &ServeArgs, model: &ModelArgs, sampling: &SamplingArgs, common: &CommonArgs) -> anyhow::Result<Exit> {
    let defaults = sampling.sampling()?;
    let engine = model.load()?;
    let model_name = engine.name.clone();
    let server = Server::http((a.host.as_str(), a.port))
        .map_err(|e| Error::io(format!("{}:{}", a.host, a.port), std::io::Error::other(e.to_string())))?;
    let addr = server.server_addr().to_ip().map(|x| x.to_string()).unwrap_or_default();
    common.say(format!(
        "{TOOL}: serving {model_name} on http://{addr}/ (POST /chat, POST /v1/chat/completions, GET /health); precision {}",
        engine.precision
    ));
    // One generator, FIFO: requests are answered in the order they arrived.
    let (tx, rx) = mpsc::sync_channel::<Job>(a.max_queue);
    let max_batch = a.max_batch.max(1);
    std::thread::spawn(move || {
        let mut next: Option<Job> = None;
        loop {
            let first = match next.take() {
                Some(j) => j,
                None => match rx.recv() {
                    Ok(j) => j,
                    Err(_) => break,
                },
            };
            // Batch the requests already waiting behind a non-streaming one, in arrival order, while they
            // share its sampling settings; the first that does not starts the next round.
            let mut group = vec![first];
            while group[0].stream.is_none() && group.len() < max_batch {
                match rx.try_recv() {
                    Ok(j) if j.stream.is_none() && j.sampling == group[0].sampling => group.push(j),
                    Ok(j) => {
                        next = Some(j);
                        break;
                    }
                    Err(_) => break,
                }
            }
            if group.len() == 1 {
                let Job { turns, sampling, stream, done } = group.remove(0);
                let (out, _) = engine.reply(&turns, &sampling, &[], &mut |t| match &stream {
                    Some(s) => s.send(t.to_string()).is_ok(),
                    None => true,
                });
                let _ = done.send(out);
            } else {
                let convs: Vec<Vec<Turn>> = group.iter().map(|j| j.turns.clone()).collect();
                let outs = engine.reply_batch(&convs, &group[0].sampling, &[]);
                for (job, out) in group.into_iter().zip(outs) {
                    let _ = job.done.send(out);
                }
            }
        }
    });
    let ctx = Ctx {
        tx,
        defaults,
        limit: a.max_tokens_limit,
        max_bytes: a.max_request_bytes,
        key: a.api_key.clone(),
        system: a.system.clone(),
        model: model_name,
    };
    let ctx = std::sync::Arc::new(ctx);
    banter_core::interrupt::set_cooperative(true);
    loop {
        if banter_core::interrupt::interrupted() {
            break;
        }
        match server.recv_timeout(std::time::Duration::from_millis(200)) {
            Ok(Some(req)) => {
                let ctx = ctx.clone();
                std::thread::spawn(move || handle(req, &ctx));
            }
            Ok(None) => {}
            Err(e) => return Err(Error::io("http", e).into()),
        }
    }
    Ok(Exit::Interrupted)
}

struct Ctx {
    tx: mpsc::SyncSender<Job>,
    defaults: Sampling,
    limit: usize,
    max_bytes: usize,
    key: Option<String>,
    system: Option<String>,
    model: String,
}

fn handle(mut req: Request, ctx: &Ctx) {
    let path = req.url().split('?').next().unwrap_or("/").to_string();
    let method = req.method().clone();
    if path != "/" && path != "/health" {
        if let Some(key) = &ctx.key {
            let ok = req.headers().iter().any(|h| {
                h.field.equiv("Authorization")
                    && h.value.as_str().strip_prefix("Bearer ").is_some_and(|k| k.trim() == key)
            });
            if !ok {
                let _ = req.respond(error(
                    401,
                    "authentication_error",
                    "missing or wrong API key (Authorization: Bearer …)",
                ));
                return;
            }
        }
    }
    let resp = match (&method, path.as_str()) {
        (Method::Get, "/") => {
            let _ = req
                .respond(Response::from_string(PAGE).with_header(header("Content-Type", "text/html; charset=utf-8")));
            return;
        }
        (Method::Get, "/health") => {
            json_response(200, &json!({"status": "ok", "model": ctx.model, "version": banter_core::VERSION}))
        }
        (Method::Post, "/chat") | (Method::Post, "/v1/chat/completions") => {
            let body = match read_body(&mut req, ctx.max_bytes) {
                Ok(b) => b,
                Err(r) => {
                    let _ = req.respond(r);
                    return;
                }
            };
            if path == "/chat" {
                chat(&body, ctx)
            } else {
                match completions(&body, ctx) {
                    Ok(Completion::Json(v)) => json_response(200, &v),
                    Ok(Completion::Stream(rx, id)) => {
                        let reader = SseReader {
                            rx,
                            buf: Vec::new(),
                            pos: 0,
                            id,
                            model: ctx.model.clone(),
                            first: true,
                            done: false,
                        };
                        let resp = Response::new(
                            200.into(),
                            vec![header("Content-Type", "text/event-stream"), header("Cache-Control", "no-cache")],
                            reader,
                            None,
                            None,
                        );
                        let _ = req.respond(resp);
                        return;
                    }
                    Err(r) => r,
                }
            }
        }
        (_, "/" | "/health" | "/chat" | "/v1/chat/completions") => {
            error(405, "invalid_request_error", format!("{method} is not allowed on {path}"))
        }
        _ => error(404, "not_found", format!("no route {path}")),
    };
    let _ = req.respond(resp);
}

type Resp = Response<std::io::Cursor<Vec<u8>>>;

fn read_body(req: &mut Request, max: usize) -> Result<Value, Resp> {
    if req.body_length().is_some_and(|n| n > max) {
        return Err(error(413, "invalid_request_error", format!("request body over {max} bytes")));
    }
    let mut body = Vec::new();
    if req.as_reader().take(max as u64 + 1).read_to_end(&mut body).is_err() {
        return Err(error(400, "invalid_request_error", "could not read the request body"));
    }
    if body.len() > max {
        return Err(error(413, "invalid_request_error", format!("request body over {max} bytes")));
    }
    serde_json::from_slice(&body).map_err(|e| error(400, "invalid_request_error", format!("invalid JSON: {e}")))
}

fn sampling_from(v: &Value, ctx: &Ctx, tokens_key: &str) -> Result<Sampling, Resp> {
    let mut s = ctx.defaults.clone();
    let num = |k: &str| v.get(k).filter(|x| !x.is_null());
    if let Some(t) = num("temperature") {
        s.temperature = t
            .as_f64()
            .filter(|t| *t >= 0.0)
            .ok_or_else(|| error(400, "invalid_request_error", "temperature must be a number ≥ 0"))?;
    }
    if let Some(p) = num("top_p") {
        s.top_p = p
            .as_f64()
            .filter(|p| *p > 0.0 && *p <= 1.0)
            .ok_or_else(|| error(400, "invalid_request_error", "top_p must be in (0, 1]"))?;
    }
    if let Some(k) = num("top_k") {
        s.top_k =
            k.as_u64().ok_or_else(|| error(400, "invalid_request_error", "top_k must be a non-negative integer"))?
                as usize;
    }
    if let Some(r) = num("repetition_penalty") {
        s.repetition_penalty = r
            .as_f64()
            .filter(|r| *r > 0.0)
            .ok_or_else(|| error(400, "invalid_request_error", "repetition_penalty must be > 0"))?;
    }
    if let Some(seed) = num("seed") {
        s.seed = seed.as_u64().unwrap_or(s.seed);
    }
    if let Some(m) = num(tokens_key) {
        let m = m
            .as_u64()
            .ok_or_else(|| error(400, "invalid_request_error", format!("{tokens_key} must be a positive integer")))?
            as usize;
        if m > ctx.limit {
            return Err(error(
                400,
                "invalid_request_error",
                format!("{tokens_key} {m} is over the server's limit of {}", ctx.limit),
            ));
        }
        s.max_new_tokens = m.max(1);
    }
    Ok(s)
}

fn run_job(
    ctx: &Ctx,
    turns: Vec<Turn>,
    sampling: Sampling,
    stream: Option<mpsc::Sender<String>>,
) -> Result<mpsc::Receiver<Output>, Resp> {
    let (done, rx) = mpsc::sync_channel(1);
    ctx.tx.try_send(Job { turns, sampling, stream, done }).map_err(|e| match e {
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
    match run_job(ctx, with_system(ctx, turns), sampling, None) {
        Ok(rx) => match rx.recv() {
            Ok(out) => json_response(200, &json!({"response": out.text})),
            Err(_) => error(500, "server_error", "generation failed"),
        },
        Err(r) => r,
    }
}

/// Chat turns from a JSON array, with banter-core's record errors (`field "messages[1].role": …`).
fn turns_from(v: &Value, field: &str) -> Result<Vec<Turn>, Resp> {
    let bad = |e: banter_core::FieldError| error(400, "invalid_request_error", e.to_string());
    let Value::Array(items) = v else {
        return Err(bad(banter_core::FieldError::field(field, "expected an array")));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, t)| Turn::from_value(t.clone()).map_err(|e| bad(e.within(&format!("{field}[{i}]")))))
        .collect()
}

enum Completion {
    Json(Value),
    Stream(mpsc::Receiver<String>, String),
}

fn completions(v: &Value, ctx: &Ctx) -> Result<Completion, Resp> {
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
    if v.get("stream").and_then(|s| s.as_bool()) == Some(true) {
        let (stx, srx) = mpsc::channel();
        run_job(ctx, turns, sampling, Some(stx))?;
        return Ok(Completion::Stream(srx, id));
    }
    let rx = run_job(ctx, turns, sampling, None)?;
    let out = rx.recv().map_err(|_| error(500, "server_error", "generation failed"))?;
    Ok(Completion::Json(json!({
        "id": id, "object": "chat.completion", "created": now(), "model": ctx.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": out.text}, "finish_reason": out.finish.as_str()}],
        "usage": {"completion_tokens": out.ids.len()},
    })))
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Streams OpenAI chat-completion chunks as server-sent events while the model writes.
struct SseReader {
    rx: mpsc::Receiver<String>,
    buf: Vec<u8>,
    pos: usize,
    id: String,
    model: String,
    first: bool,
    done: bool,
}

impl Read for SseReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.buf.len() {
            if self.done {
                return Ok(0);
            }
            self.buf.clear();
            self.pos = 0;
            let chunk = |delta: Value, finish: Value, id: &str, model: &str| {
                json!({"id": id, "object": "chat.completion.chunk", "created": now(), "model": model,
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
            };
            if self.first {
                self.first = false;
                let c = chunk(json!({"role": "assistant", "content": ""}), Value::Null, &self.id, &self.model);
                self.buf.extend(format!("data: {c}\n\n").bytes());
                continue;
            }
            match self.rx.recv() {
                Ok(text) => {
                    let c = chunk(json!({"content": text}), Value::Null, &self.id, &self.model);
                    self.buf.extend(format!("data: {c}\n\n").bytes());
                }
                Err(_) => {
                    let c = chunk(json!({}), json!("stop"), &self.id, &self.model);
                    self.buf.extend(format!("data: {c}\n\ndata: [DONE]\n\n").bytes());
                    self.done = true;
                }
            }
        }
        let n = (self.buf.len() - self.pos).min(out.len());
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
