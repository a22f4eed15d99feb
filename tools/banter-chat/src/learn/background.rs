//! `--learn-every N`: learning rounds in a background thread while the chat (or the server) goes on.
//!
//! The learner counts logged exchanges; once N are waiting (counting those a previous run left unlearned)
//! it runs a [`Plan`] round on its own thread with its own cancellation token, so Ctrl-C on a reply never
//! stops it. The REPL swaps the new model in between turns ([`Learner::poll_swap`]); the server picks the
//! published adapter up by itself.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use banter_core::CancelToken;

use super::plan::{Learned, Plan, recover};
use crate::TOOL;
use crate::engine::Engine;

/// Loads the model with a newly published adapter (in the learner's thread).
pub type Loader = Box<dyn Fn(&Plan) -> anyhow::Result<Engine> + Send + Sync>;

/// A round's result: the new model (when a loader was given) and a notice.
type Done = Result<(Option<Engine>, Learned), String>;

/// Background learning.
pub struct Learner {
    plan: Arc<Plan>,
    every: usize,
    waiting: AtomicUsize,
    busy: Arc<AtomicBool>,
    done: Mutex<Option<mpsc::Receiver<Done>>>,
    loader: Option<Arc<Loader>>,
    cancel: CancelToken,
    /// `-q`: no notices (errors are still said).
    quiet: bool,
}

impl std::fmt::Debug for Learner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Learner").field("plan", &self.plan).field("every", &self.every).finish()
    }
}

impl Learner {
    /// A learner for `plan`, rounds every `every` exchanges; a round starts at once when a previous run
    /// left that many exchanges unlearned.
    pub fn new(plan: Plan, every: usize, loader: Option<Loader>, quiet: bool) -> Self {
        recover(&plan.out);
        let backlog = plan.backlog();
        let l = Learner {
            plan: Arc::new(plan),
            every: every.max(1),
            waiting: AtomicUsize::new(backlog),
            busy: Arc::new(AtomicBool::new(false)),
            done: Mutex::new(None),
            loader: loader.map(Arc::new),
            cancel: CancelToken::new(),
            quiet,
        };
        if backlog >= l.every && !quiet {
            banter_core::eline!("({TOOL}: {backlog} logged exchange(s) were not learned yet; learning from them now)");
        }
        l.maybe_start();
        l
    }

    /// The plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// An exchange was logged; every `every` of them start a round in the background.
    pub fn exchange(&self) {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        self.maybe_start();
    }

    fn maybe_start(&self) {
        if self.waiting.load(Ordering::SeqCst) < self.every || self.busy.swap(true, Ordering::SeqCst) {
            return;
        }
        let n = self.waiting.swap(0, Ordering::SeqCst);
        // With a loader (the REPL) the new model is handed over; without (the server) there is only a notice.
        let (tx, rx) = mpsc::channel();
        if self.loader.is_some() {
            *self.done.lock().unwrap_or_else(|e| e.into_inner()) = Some(rx);
        }
        let (plan, busy, loader, cancel, quiet) =
            (self.plan.clone(), self.busy.clone(), self.loader.clone(), self.cancel.clone(), self.quiet);
        if !quiet {
            banter_core::eline!("({TOOL}: learning from {n} new exchange(s) in the background…)");
        }
        std::thread::spawn(move || {
            let result = plan.learn(&cancel).and_then(|l| {
                let engine = loader.as_ref().map(|load| load(&plan)).transpose()?;
                Ok((engine, l))
            });
            let result = result.map_err(|e| format!("({TOOL}: learning failed, the previous model stays: {e:#})"));
            match (&loader, result) {
                // Nothing to hand over (the server reloads by itself): the notice now.
                (None, Ok(_)) if quiet => {}
                (None, Ok((_, l))) => banter_core::eline!("({TOOL}: {})", l.describe(&plan.out, "is now in use")),
                (None, Err(msg)) => banter_core::eline!("{}", msg),
                (Some(_), r) => {
                    let _ = tx.send(r);
                }
            }
            busy.store(false, Ordering::SeqCst);
        });
    }

    /// The outcome of a finished round, if one finished: swaps in its model; returns a notice (`Err`: the
    /// round failed).
    pub fn poll_swap(&self, engine: &mut Engine) -> Option<Result<String, String>> {
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        let r = done.as_ref()?.try_recv().ok()?;
        *done = None;
        drop(done);
        // Exchanges logged while that round ran may already make the next one due.
        self.maybe_start();
        Some(r.map(|(new, l)| {
            if let Some(new) = new {
                *engine = new;
            }
            format!("({TOOL}: {})", l.describe(&self.plan.out, "is now in use"))
        }))
    }

    /// True while a round runs.
    pub fn busy(&self) -> bool {
        self.busy.load(Ordering::SeqCst)
    }

    /// True when notices are off (`-q`).
    pub fn quiet(&self) -> bool {
        self.quiet
    }

    /// Waits for a round in progress (its files complete) before the program exits, and says how it ended.
    pub fn finish(self) {
        if !self.busy() {
            return;
        }
        if !self.quiet {
            banter_core::eline!("({TOOL}: a learning round is still running; waiting for it to finish…)");
        }
        while self.busy() {
            std::thread::sleep(Duration::from_millis(100));
        }
        let done = self.done.lock().unwrap_or_else(|e| e.into_inner()).take();
        match done.and_then(|rx| rx.try_recv().ok()) {
            Some(Ok((_, l))) if !self.quiet => {
                banter_core::eline!("({TOOL}: {})", l.describe(&self.plan.out, "is saved and will be used next time"))
            }
            Some(Err(e)) => banter_core::eline!("{e}"),
            _ => {}
        }
    }
}
