//! The studio's background side: every device, tensor, decode, dialog and file
//! operation happens here, never on the UI thread.
//!
//! The UI sends [`WorkerRequest`]s through [`Worker::send`], which routes each to
//! the thread that serves it, and drains [`WorkerEvent`]s (see [`protocol`]).
//! - [`training`]: `p2a-train` runs one trainer at a time;
//! - [`convert`]: `p2a-convert` owns the conversion device and a few loaded models;
//! - [`images`]: `p2a-images` decodes thumbnails, style variants and photos;
//! - [`jobs`]: short named jobs (scans, VGG checks, run lists, model checks, folder
//!   conversion, saving, adapters) and [`dialogs`] (native file dialogs).
//!
//! Every sender wakes the UI with `request_repaint` after sending.

pub(crate) mod convert;
pub(crate) mod dialogs;
pub(crate) mod images;
pub(crate) mod jobs;
pub mod protocol;
pub(crate) mod training;

use std::sync::{Arc, Mutex};

use crossbeam_channel::{Receiver, Sender, unbounded};
use eframe::egui;

pub use protocol::*;

/// Wakes the UI when a worker has sent something. The context is known only once the
/// first frame runs, so the waker starts empty.
#[derive(Clone, Default)]
pub(crate) struct Waker(Arc<Mutex<Option<egui::Context>>>);

impl Waker {
    /// Records the context to wake.
    fn set(&self, ctx: &egui::Context) {
        if let Ok(mut slot) = self.0.lock()
            && slot.is_none()
        {
            *slot = Some(ctx.clone());
        }
    }

    /// Requests a repaint (no-op before the first frame).
    fn wake(&self) {
        if let Ok(slot) = self.0.lock()
            && let Some(ctx) = slot.as_ref()
        {
            ctx.request_repaint();
        }
    }
}

/// Sends events to the UI and wakes it.
#[derive(Clone)]
pub(crate) struct EventSink {
    tx: Sender<WorkerEvent>,
    waker: Waker,
}

impl EventSink {
    /// A sink and the receiving end (tests drive threads with it directly).
    pub(crate) fn channel() -> (Self, Receiver<WorkerEvent>) {
        let (tx, rx) = unbounded();
        (
            Self {
                tx,
                waker: Waker::default(),
            },
            rx,
        )
    }

    /// Sends one event. A closed channel means the UI is gone: nobody is left to tell.
    pub(crate) fn send(&self, event: WorkerEvent) {
        if self.tx.send(event).is_ok() {
            self.waker.wake();
        }
    }
}

/// Runs `f` on a named thread; false when the OS refused the thread.
pub(crate) fn spawn_named(name: &str, f: impl FnOnce() + Send + 'static) -> bool {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .is_ok()
}

/// The UI's handle on every background thread.
pub struct Worker {
    sink: EventSink,
    events: Receiver<WorkerEvent>,
    images: Sender<ImageRequest>,
    convert: Sender<ConvertRequest>,
    training: training::TrainingSlot,
    jobs: jobs::Jobs,
}

impl Default for Worker {
    fn default() -> Self {
        Self::new()
    }
}

impl Worker {
    /// Starts the long-lived threads.
    pub fn new() -> Self {
        let (sink, events) = EventSink::channel();
        let images = images::spawn(sink.clone());
        let convert = convert::spawn(sink.clone());
        Self {
            jobs: jobs::Jobs::new(sink.clone()),
            training: training::TrainingSlot::default(),
            sink,
            events,
            images,
            convert,
        }
    }

    /// Lets workers wake this context.
    pub fn set_context(&self, ctx: &egui::Context) {
        self.sink.waker.set(ctx);
    }

    /// The next pending event, if any (never blocks).
    pub fn try_recv(&self) -> Option<WorkerEvent> {
        self.events.try_recv().ok()
    }

    /// Whether a training thread is alive.
    pub fn training_active(&self) -> bool {
        self.training.is_active()
    }

    /// Stops the running video conversion (its partial output is removed).
    pub fn cancel_video(&self) {
        self.jobs.cancel_video();
    }

    /// Asks the running folder conversion to stop after the current file.
    pub fn cancel_batch(&self) {
        self.jobs.cancel_batch();
    }

    /// Asks the running download to stop; its partial file is kept for a resume.
    pub fn cancel_download(&self) {
        self.jobs.cancel_download();
    }

    /// Hands a request to the thread that serves it. Never blocks. A thread that is
    /// gone answers through the same event its request would have produced.
    pub fn send(&mut self, request: WorkerRequest) {
        match request {
            WorkerRequest::Images(r) => {
                if let Err(lost) = self.images.send(r) {
                    images::answer_lost(lost.into_inner(), &self.sink);
                }
            }
            WorkerRequest::Convert(r) => {
                if let Err(lost) = self.convert.send(r) {
                    convert::answer_lost(lost.into_inner(), &self.sink);
                }
            }
            WorkerRequest::Training(r) => self.training.send(r, &self.sink),
            WorkerRequest::Job(r) => self.jobs.run(r),
        }
    }
}
