//! The HTTP server: the self-learning chatbot's `POST /chat` (with sampling really applied), OpenAI's
//! `POST /v1/chat/completions` (with SSE streaming), `GET /health`, and a small chat page at `/`.
//!
//! One generator thread answers requests in arrival order (a fair FIFO queue, batching waiting requests
//! that share their sampling settings). The HTTP side is hyper on a small tokio runtime, with limits a
//! server facing the network needs: a connection cap (`--max-connections`; connections beyond it are
//! closed at once), a deadline for reading a request's head and body (`--read-timeout`), a request size
//! cap, a bounded pool of threads for requests waiting on the model, and `max_tokens` limits. With
//! `--log`, each exchange is appended (and synced) before its answer is sent. Errors are JSON.

use std::convert::Infallible;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use banter_core::cli::CommonArgs;
use banter_core::records::{Role, Turn};
use banter_core::{Error, Exit};
use clap::Args;
use http_body_util::{BodyExt, Full, Limited, StreamBody, combinators::BoxBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::{Request, Response};
use serde_json::json;

use crate::api::{self, Answer, Ctx, Job, JobError, Piece};
use crate::{ChatSettings, TOOL};
use banter_model::generate::Output;

/// `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (127.0.0.1: this machine only; 0.0.0.0 exposes it).
    #[arg(long, value_name = "HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// Port (0 picks a free one and prints it).
    #[arg(long, value_name = "PORT", default_value_t = 8000)]
    pub port: u16,
    /// Require `Authorization: Bearer KEY` (not empty).
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
    /// Open connections beyond this are closed as soon as they are accepted.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_connections: usize,
    /// Seconds a client has to send a request's head and body (and an idle kept-alive connection lives).
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub read_timeout: f64,
    /// Answer up to N waiting non-streaming requests with the same sampling settings in one batched
    /// decode (the weights are read once per step for all of them); 1 = one at a time.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub max_batch: usize,
    /// A persona for every conversation without a system message.
    #[arg(long, value_name = "TEXT")]
    pub system: Option<String>,
    /// Append every answered exchange to this JSONL file (synced before the answer is sent).
    #[arg(long, value_name = "PATH")]
    pub log: Option<std::path::PathBuf>,
    /// Seconds between looks for a newly published adapter or model (0 = never reload).
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
    pub reload_every: f64,
    /// Learn a LoRA adapter from every N logged exchanges in the background (into LOG.adapter) and serve it.
    #[arg(long, value_name = "N")]
    pub learn_every: Option<usize>,
    /// Samples always trained on with the new exchanges.
    #[arg(long, value_name = "FILE")]
    pub seed_data: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub hyper: crate::learn::HyperArgs,
}

const PAGE: &str = include_str!("page.html");

type Body = BoxBody<Bytes, Infallible>;

fn full(status: u16, ctype: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()).boxed());
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = hyper::header::HeaderValue::from_str(ctype) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

fn json_error(status: u16, kind: &str, msg: &str) -> Response<Body> {
    match api::error(status, kind, msg) {
        Answer::Json(s, v) => full(s, "application/json", v.to_string()),
        _ => full(500, "text/plain", "error"),
    }
}

/// Runs the server until Ctrl-C.
pub fn run(a: &ServeArgs, settings: &ChatSettings, common: &CommonArgs) -> anyhow::Result<Exit> {
    let model = &settings.model;
    if a.api_key.as_deref().is_some_and(|k| k.trim().is_empty()) {
        return Err(Error::usage("--api-key is empty: every request would be refused").into());
    }
    if !(a.read_timeout > 0.0 && a.read_timeout.is_finite()) {
        return Err(Error::usage("--read-timeout must be a positive number of seconds").into());
    }
    if a.max_connections == 0 {
        return Err(Error::usage("--max-connections must be at least 1").into());
    }
    if !(a.reload_every >= 0.0 && a.reload_every.is_finite()) {
        return Err(Error::usage("--reload-every must be 0 (off) or a positive number of seconds").into());
    }
    let defaults = settings.sampling.clone();
    let learner = match (a.learn_every, &a.log) {
        (Some(_), None) => {
            return Err(Error::usage_hint(
                "--learn-every learns from the logged exchanges, and there is no --log",
                "add --log chats.jsonl",
            )
            .into());
        }
        (Some(n), Some(log)) => {
            let plan = crate::learn::plan_for_log(model, log, a.seed_data.as_deref(), &a.hyper)?;
            Some(crate::learn::Learner::new(plan, n, None, common.quiet))
        }
        (None, _) => None,
    };
    let published = crate::reload::Published::new(model.clone(), learner.as_ref().map(|l| l.plan().clone()));
    let (engine, loaded) = published.load()?;
    let model_name = engine.name.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        // Requests waiting on the model hold a blocking thread: as many as can queue, plus a few.
        .max_blocking_threads(a.max_queue.max(1) + 8)
        .enable_all()
        .build()
        .map_err(|e| Error::io("tokio runtime", e))?;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind((a.host.as_str(), a.port)))
        .map_err(|e| Error::io(format!("{}:{}", a.host, a.port), e))?;
    let addr = listener.local_addr().map(|x| x.to_string()).unwrap_or_default();
    common.say(format!(
        "{TOOL}: serving {model_name} on http://{addr}/ (POST /chat, POST /v1/chat/completions, POST /v1/completions, GET /v1/models, GET /health); precision {}",
        engine.precision
    ));
    let (tx, rx) = mpsc::sync_channel::<Job>(a.max_queue);
    let log = a.log.clone();
    let max_batch = a.max_batch.max(1);
    let stops = settings.stops.clone();
    let reloads = (a.reload_every > 0.0).then(|| published.watch(loaded, Duration::from_secs_f64(a.reload_every)));
    let serving = Arc::new(std::sync::Mutex::new(engine.adapter.as_ref().map(|a| a.display().to_string())));
    let generator = Generator {
        max_batch,
        log,
        stops,
        reloads,
        serving: serving.clone(),
        learner,
        log_failing: std::cell::Cell::new(false),
    };
    std::thread::spawn(move || generator.run(engine, rx));
    let ctx = Arc::new(Ctx {
        tx,
        defaults,
        fresh_seeds: !settings.seed_given,
        serving,
        limit: a.max_tokens_limit,
        key: a.api_key.clone(),
        system: a.system.clone(),
        model: model_name,
    });
    let limits = Limits { max_bytes: a.max_request_bytes, read_timeout: Duration::from_secs_f64(a.read_timeout) };
    let slots = Arc::new(tokio::sync::Semaphore::new(a.max_connections));
    banter_core::interrupt::set_cooperative(true);
    rt.block_on(async move {
        loop {
            if banter_core::interrupt::interrupted() {
                break;
            }
            let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
            let Ok(Ok((stream, _))) = accepted else { continue };
            // Over the cap: the connection is dropped (closed) right away.
            let Ok(permit) = slots.clone().try_acquire_owned() else { continue };
            let (ctx, limits) = (ctx.clone(), limits);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| handle(req, ctx.clone(), limits));
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(limits.read_timeout)
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                let _ = conn.await;
                drop(permit);
            });
        }
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(Exit::Interrupted)
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    max_bytes: usize,
    read_timeout: Duration,
}

/// The generator thread's settings and companions.
struct Generator {
    max_batch: usize,
    log: Option<std::path::PathBuf>,
    stops: Vec<String>,
    /// Newly published models, loaded by [`crate::reload`].
    reloads: Option<mpsc::Receiver<crate::engine::Engine>>,
    /// The adapter served now, for `/health`.
    serving: Arc<std::sync::Mutex<Option<String>>>,
    learner: Option<crate::learn::Learner>,
    /// The log could not be written last time (said once on stderr until it works again).
    log_failing: std::cell::Cell<bool>,
}

impl Generator {
    /// Appends an answered exchange to `--log` (before the answer is sent) and counts it for learning. An
    /// exchange that cannot be logged is not answered: 503 (the docs promise every answer is logged).
    fn record(&self, job: &Job, text: &str) -> Result<(), JobError> {
        let Some(path) = &self.log else { return Ok(()) };
        let r = match &job.raw {
            Some(prompt) => crate::repl::append_record(
                path,
                json!({"text": format!("{prompt}{text}"), "ts": banter_core::util::now_rfc3339()}),
            ),
            None => {
                let mut t = job.turns.clone();
                t.push(Turn::new(Role::Assistant, text.to_string()));
                crate::repl::append_log(path, &t, None)
            }
        };
        match r {
            Err(e) => {
                if !self.log_failing.replace(true) {
                    banter_core::eline!(
                        "{TOOL}: error: --log {}: {e:#}; answering 503 until it can be written",
                        path.display()
                    );
                }
                Err(JobError::server(503, format!("the exchange could not be logged ({e:#}); try again later")))
            }
            Ok(()) => {
                if self.log_failing.replace(false) {
                    banter_core::eline!("{TOOL}: --log {}: writing again", path.display());
                }
                if let (Some(l), None) = (&self.learner, &job.raw) {
                    l.exchange();
                }
                Ok(())
            }
        }
    }

    /// Hands a job its result (and a stream its error), logging the reply first.
    fn finish(&self, job: Job, out: Result<Output, JobError>) {
        let out = out.and_then(|o| self.record(&job, &o.text).map(|()| o));
        if let (Err(e), Some(s)) = (&out, &job.stream) {
            let _ = s.send(Piece::Failed(e.clone()));
        }
        let _ = job.done.send(out);
    }

    /// One job (or a batch of jobs with the same sampling) at a time, in arrival order; a newly published
    /// model is swapped in between them.
    fn run(self, mut engine: crate::engine::Engine, rx: mpsc::Receiver<Job>) {
        let mut next: Option<Job> = None;
        loop {
            let first = match next.take() {
                Some(j) => j,
                None => match rx.recv() {
                    Ok(j) => j,
                    Err(_) => break,
                },
            };
            if let Some(r) = &self.reloads {
                while let Ok(e) = r.try_recv() {
                    engine = e;
                    *self.serving.lock().unwrap_or_else(|p| p.into_inner()) =
                        engine.adapter.as_ref().map(|a| a.display().to_string());
                }
            }
            // Batch the chat requests already waiting behind a non-streaming one, in arrival order, while
            // they share its sampling settings; the first that does not starts the next round.
            let mut group = vec![first];
            let batchable = |j: &Job| j.stream.is_none() && j.raw.is_none();
            while batchable(&group[0]) && group.len() < self.max_batch {
                match rx.try_recv() {
                    // Rows sample with their own seeds: the other settings must match.
                    Ok(j)
                        if batchable(&j)
                            && j.sampling
                                == banter_model::generate::Sampling {
                                    seed: j.sampling.seed,
                                    ..group[0].sampling.clone()
                                } =>
                    {
                        group.push(j)
                    }
                    Ok(j) => {
                        next = Some(j);
                        break;
                    }
                    Err(_) => break,
                }
            }
            // A request the model's template refuses is that request's 400; a panic while generating is that
            // request's 500. Either way the generator goes on serving the others.
            let failed = |e: Box<dyn std::any::Any + Send>| {
                let msg =
                    e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()));
                banter_core::eline!("{TOOL}: error: generation failed: {}", msg.as_deref().unwrap_or("panic"));
                JobError::server(500, "generation failed")
            };
            if group.len() == 1 {
                let job = group.remove(0);
                let mut on_text = |t: &str| match &job.stream {
                    Some(s) => s.send(Piece::Text(t.to_string())).is_ok(),
                    None => true,
                };
                let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match &job.raw {
                    Some(prompt) => Ok(engine.complete(prompt, &job.sampling, &self.stops, &mut on_text)),
                    None => engine
                        .reply(&job.turns, &job.sampling, &self.stops, &mut on_text)
                        .map(|r| r.0)
                        .map_err(|e| JobError::bad_request(e.to_string())),
                }))
                .unwrap_or_else(|e| Err(failed(e)));
                // Logged before the answer completes: before the JSON is sent, before a stream's end.
                self.finish(job, out);
            } else {
                let convs: Vec<Vec<Turn>> = group.iter().map(|j| j.turns.clone()).collect();
                let seeds: Vec<u64> = group.iter().map(|j| j.sampling.seed).collect();
                let outs = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    engine.reply_batch(&convs, &group[0].sampling, &seeds, &self.stops)
                }));
                match outs {
                    Ok(outs) => {
                        for (job, out) in group.into_iter().zip(outs) {
                            self.finish(job, out.map_err(|e| JobError::bad_request(e.to_string())));
                        }
                    }
                    Err(e) => {
                        let e = failed(e);
                        for job in group {
                            self.finish(job, Err(e.clone()));
                        }
                    }
                }
            }
        }
    }
}

async fn handle(req: Request<Incoming>, ctx: Arc<Ctx>, limits: Limits) -> Result<Response<Body>, Infallible> {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let header =
        |name: hyper::header::HeaderName| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (authorization, content_type) = (header(hyper::header::AUTHORIZATION), header(hyper::header::CONTENT_TYPE));
    if req.headers().get(hyper::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        > Some(limits.max_bytes)
    {
        return Ok(json_error(413, "invalid_request_error", &format!("request body over {} bytes", limits.max_bytes)));
    }
    let body = Limited::new(req.into_body(), limits.max_bytes);
    let body = match tokio::time::timeout(limits.read_timeout, body.collect()).await {
        Err(_) => return Ok(json_error(408, "invalid_request_error", "the request body was not sent in time")),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return Ok(json_error(
                413,
                "invalid_request_error",
                &format!("request body over {} bytes", limits.max_bytes),
            ));
        }
        Ok(Err(_)) => return Ok(json_error(400, "invalid_request_error", "could not read the request body")),
        Ok(Ok(b)) => b.to_bytes(),
    };
    let answer = tokio::task::spawn_blocking(move || {
        let r = api::Request {
            method: &method,
            path: &path,
            authorization: authorization.as_deref(),
            content_type: content_type.as_deref(),
            body: &body,
        };
        (api::answer(&r, &ctx), ctx.model.clone())
    })
    .await;
    let Ok((answer, model)) = answer else {
        return Ok(json_error(500, "server_error", "the request handler failed"));
    };
    Ok(match answer {
        Answer::Json(status, v) => full(status, "application/json", v.to_string()),
        Answer::Page => full(200, "text/html; charset=utf-8", PAGE),
        Answer::Stream(first, rx, id, kind) => sse(first, rx, id, model, kind),
    })
}

/// A streamed completion as server-sent events: a role chunk, one chunk per text piece, then the finish
/// chunk and `[DONE]` once the generator drops its sender.
fn sse(
    first_piece: Option<String>,
    rx: tokio::sync::mpsc::UnboundedReceiver<Piece>,
    id: String,
    model: String,
    kind: api::StreamKind,
) -> Response<Body> {
    let role = match kind {
        api::StreamKind::Chat => {
            Some(api::sse_chunk(&id, &model, json!({"role": "assistant", "content": ""}), serde_json::Value::Null))
        }
        api::StreamKind::Text => None,
    };
    let piece = move |id: &str, model: &str, text: Option<&str>| match (kind, text) {
        (api::StreamKind::Chat, Some(t)) => api::sse_chunk(id, model, json!({"content": t}), serde_json::Value::Null),
        (api::StreamKind::Chat, None) => api::sse_chunk(id, model, json!({}), json!("stop")) + "data: [DONE]\n\n",
        (api::StreamKind::Text, Some(t)) => api::sse_text_chunk(id, model, t, serde_json::Value::Null),
        (api::StreamKind::Text, None) => api::sse_text_chunk(id, model, "", json!("stop")) + "data: [DONE]\n\n",
    };
    // The role chunk (chat), then the piece the request already waited for.
    let first_text = first_piece.map(|p| piece(&id, &model, Some(&p)));
    let first = match (role, first_text) {
        (Some(a), Some(b)) => Some(a + &b),
        (a, b) => a.or(b),
    };
    let state = (first, rx, id, model, false);
    let stream = futures_util::stream::unfold(state, move |(first, mut rx, id, model, done)| async move {
        if let Some(f) = first {
            return Some((Ok::<_, Infallible>(Frame::data(Bytes::from(f))), (None, rx, id, model, done)));
        }
        if done {
            return None;
        }
        let (text, done) = match rx.recv().await {
            Some(Piece::Text(p)) => (piece(&id, &model, Some(&p)), false),
            // The reply could not be completed (its log could not be written): an error event, no [DONE].
            Some(Piece::Failed(e)) => {
                let err = json!({"error": {"message": e.message, "type": e.kind, "code": e.status}});
                (format!("data: {err}\n\n"), true)
            }
            None => (piece(&id, &model, None), true),
        };
        Some((Ok(Frame::data(Bytes::from(text))), (None, rx, id, model, done)))
    });
    let mut r = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    let h = r.headers_mut();
    h.insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("text/event-stream"));
    h.insert(hyper::header::CACHE_CONTROL, hyper::header::HeaderValue::from_static("no-cache"));
    r
}
