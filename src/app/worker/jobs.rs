//! Short jobs, each on its own named thread (`p2a-job-…`): folder scans, VGG
//! checks, run lists, model checks, adapters, dialogs, saving and folder
//! conversion.
//!
//! Scans, checks and lists always run: a newer request makes an older answer stale
//! (the UI compares generations), so choosing a folder while the previous scan
//! runs can never leave "scanning…" on screen. Dialogs and folder conversions run
//! one at a time and a second request is answered with [`WorkerEvent::Busy`]. A job
//! that panics answers with the same event it would have sent, carrying
//! [`WorkerError::Crashed`].

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use burn::tensor::Device;

use super::convert::options_for_backend;
use super::dialogs::run_dialog;
use super::protocol::{
    BatchSummary, CheckedModel, ExclusiveJob, JobRequest, ModelSpec, ScanSummary, VggStatus,
    WorkerError, WorkerEvent,
};
use super::{EventSink, spawn_named};
use crate::convert::finish::{StyleChoice, styled};
use crate::convert::{convert_batch, plan_jobs, save_image_with_recipe};
use crate::data::scan_folder;
use crate::device::{DeviceSetting, wgpu_adapters};
use crate::model_io::load_generator;
use crate::train::run_dir::list_runs;
use crate::video::ffmpeg::{VideoCodec, VideoQuality};

/// Runs jobs and remembers which exclusive ones are running.
pub(crate) struct Jobs {
    sink: EventSink,
    exclusive: Arc<Mutex<HashSet<ExclusiveJob>>>,
    batch_cancel: Arc<AtomicBool>,
    download_cancel: Arc<AtomicBool>,
    video_cancel: Arc<AtomicBool>,
}

/// Releases an exclusive job's slot when its thread ends, however it ends.
struct ExclusiveGuard {
    registry: Arc<Mutex<HashSet<ExclusiveJob>>>,
    job: ExclusiveJob,
}

impl Drop for ExclusiveGuard {
    fn drop(&mut self) {
        // A poisoned lock still holds the set: clear the slot either way.
        let mut set = match self.registry.lock() {
            Ok(set) => set,
            Err(poisoned) => poisoned.into_inner(),
        };
        set.remove(&self.job);
    }
}

impl Jobs {
    pub(crate) fn new(sink: EventSink) -> Self {
        Self {
            sink,
            exclusive: Arc::default(),
            batch_cancel: Arc::default(),
            download_cancel: Arc::default(),
            video_cancel: Arc::default(),
        }
    }

    /// Asks the running download to stop (its `.part` is kept for a later resume).
    pub(crate) fn cancel_download(&self) {
        self.download_cancel.store(true, Ordering::Relaxed);
    }

    /// Asks the running folder conversion to stop after the current file.
    pub(crate) fn cancel_video(&self) {
        self.video_cancel.store(true, Ordering::Relaxed);
    }

    pub(crate) fn cancel_batch(&self) {
        self.batch_cancel.store(true, Ordering::Relaxed);
    }

    /// Starts the job a request names.
    pub(crate) fn run(&self, request: JobRequest) {
        match request {
            JobRequest::Adapters => self.spawn(
                "adapters",
                None,
                |_| WorkerEvent::Adapters(wgpu_adapters()),
                // A crashed driver enumeration means no usable adapter.
                |_| WorkerEvent::Adapters(Vec::new()),
            ),
            JobRequest::Dialog {
                purpose,
                kind,
                start_dir,
            } => {
                let answer = purpose.clone();
                self.spawn(
                    "dialog",
                    Some(ExclusiveJob::Dialog),
                    move |_| match run_dialog(&kind, start_dir.as_deref()) {
                        Ok(paths) => WorkerEvent::DialogClosed {
                            purpose: answer,
                            paths,
                        },
                        Err(e) => WorkerEvent::DialogFailed(e),
                    },
                    WorkerEvent::DialogFailed,
                );
            }
            JobRequest::Scan {
                role,
                generation,
                dir,
            } => self.spawn(
                &format!("scan-{}", role.label()),
                None,
                move |_| WorkerEvent::Scanned {
                    role,
                    generation,
                    result: scan_folder(&dir)
                        .map(|r| ScanSummary {
                            files: r.files,
                            skipped: r.skipped,
                        })
                        .map_err(WorkerError::from),
                },
                move |e| WorkerEvent::Scanned {
                    role,
                    generation,
                    result: Err(e),
                },
            ),
            JobRequest::CheckVgg {
                generation,
                explicit,
            } => self.spawn(
                "vgg",
                None,
                move |_| WorkerEvent::Vgg {
                    generation,
                    status: check_vgg(explicit),
                },
                move |e| WorkerEvent::Vgg {
                    generation,
                    status: VggStatus::Unknown(e),
                },
            ),
            JobRequest::ListRuns { generation, root } => self.spawn(
                "runs",
                None,
                move |_| WorkerEvent::Runs {
                    generation,
                    result: Ok(list_runs(&root)),
                },
                move |e| WorkerEvent::Runs {
                    generation,
                    result: Err(e),
                },
            ),
            JobRequest::CheckModel { path } => {
                let answer = path.clone();
                self.spawn(
                    "model",
                    None,
                    move |_| WorkerEvent::ModelChecked {
                        result: check_model(&path),
                        path,
                    },
                    move |e| WorkerEvent::ModelChecked {
                        path: answer.clone(),
                        result: Err(e),
                    },
                );
            }
            JobRequest::ConvertFolder {
                model,
                input,
                output,
                style,
                device,
            } => {
                self.batch_cancel.store(false, Ordering::Relaxed);
                let cancel = self.batch_cancel.clone();
                self.spawn(
                    "batch",
                    Some(ExclusiveJob::Batch),
                    move |sink| {
                        WorkerEvent::BatchFinished(run_batch(
                            &model, &input, &output, &style, &device, &cancel, sink,
                        ))
                    },
                    |e| WorkerEvent::BatchFinished(Err(e)),
                );
            }
            JobRequest::ConvertVideo {
                model,
                input,
                output,
                style,
                codec,
                quality,
            } => self.convert_video(model, input, output, style, (codec, quality)),
            JobRequest::Download {
                entry,
                checkpoints_dir,
            } => self.download(entry, checkpoints_dir),
            JobRequest::OpenPath { path } => self.open_path(path),
            JobRequest::SaveImage {
                image,
                path,
                recipe,
            } => {
                let answer = path.clone();
                self.spawn(
                    "save",
                    None,
                    move |_| WorkerEvent::Saved {
                        result: save_image_with_recipe(&image, &path, recipe.as_ref())
                            .map_err(WorkerError::from),
                        path,
                    },
                    move |e| WorkerEvent::Saved {
                        path: answer.clone(),
                        result: Err(e),
                    },
                );
            }
        }
    }

    /// Runs `work` on a named thread and sends its answer. `on_failure` builds the
    /// answer when the job panics, or when its thread cannot start.
    /// Converts a clip on its own thread (one at a time), reporting progress; the
    /// answer is always [`WorkerEvent::VideoFinished`].
    fn convert_video(
        &self,
        model: ModelSpec,
        input: PathBuf,
        output: PathBuf,
        style: StyleChoice,
        encoding: (VideoCodec, VideoQuality),
    ) {
        self.video_cancel.store(false, Ordering::Relaxed);
        let cancel = self.video_cancel.clone();
        self.spawn(
            "video",
            Some(ExclusiveJob::Video),
            move |sink| {
                WorkerEvent::VideoFinished(run_video(
                    &model, &input, &output, &style, encoding, &cancel, sink,
                ))
            },
            |e| WorkerEvent::VideoFinished(Err(e)),
        );
    }

    /// Hands a file or folder to the desktop's launcher on its own thread (a
    /// launcher may take its time); the answer is [`WorkerEvent::Opened`].
    fn open_path(&self, path: PathBuf) {
        let answer = path.clone();
        self.spawn(
            "open",
            None,
            move |_| WorkerEvent::Opened {
                result: open::that(&path).map_err(|e| WorkerError::Open {
                    path: path.clone(),
                    reason: e.to_string(),
                }),
                path,
            },
            move |e| WorkerEvent::Opened {
                path: answer.clone(),
                result: Err(e),
            },
        );
    }

    /// Downloads and installs `entry` on its own thread (one at a time), reporting
    /// progress; the answer is always [`WorkerEvent::Downloaded`].
    fn download(&self, entry: crate::download::Entry, checkpoints_dir: PathBuf) {
        self.download_cancel.store(false, Ordering::Relaxed);
        let cancel = self.download_cancel.clone();
        let (name, answer) = (entry.name.clone(), entry.name.clone());
        self.spawn(
            "download",
            Some(ExclusiveJob::Download),
            move |sink| {
                let mut progress = |progress| {
                    sink.send(WorkerEvent::DownloadProgress {
                        name: name.clone(),
                        progress,
                    });
                };
                let result =
                    crate::download::install(&entry, &mut progress, &cancel, &checkpoints_dir)
                        .map_err(WorkerError::from);
                WorkerEvent::Downloaded { name, result }
            },
            move |e| WorkerEvent::Downloaded {
                name: answer.clone(),
                result: Err(e),
            },
        );
    }

    fn spawn(
        &self,
        name: &str,
        exclusive: Option<ExclusiveJob>,
        work: impl FnOnce(&EventSink) -> WorkerEvent + Send + 'static,
        on_failure: impl Fn(WorkerError) -> WorkerEvent + Send + Sync + 'static,
    ) {
        let guard = match exclusive {
            Some(job) => {
                let mut set = match self.exclusive.lock() {
                    Ok(set) => set,
                    Err(poisoned) => poisoned.into_inner(),
                };
                if !set.insert(job) {
                    self.sink.send(WorkerEvent::Busy(job));
                    return;
                }
                Some(ExclusiveGuard {
                    registry: self.exclusive.clone(),
                    job,
                })
            }
            None => None,
        };
        let sink = self.sink.clone();
        // Shared: the thread needs it on a panic, the caller when no thread starts.
        let failure = Arc::new(on_failure);
        let failure_in_thread = failure.clone();
        let what = job_label(name);
        let started = spawn_named(&format!("p2a-job-{name}"), move || {
            let _guard = guard;
            let event = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&sink)))
                .unwrap_or_else(|payload| {
                    failure_in_thread(WorkerError::crashed(what, payload.as_ref()))
                });
            sink.send(event);
        });
        if !started {
            self.sink.send(failure(WorkerError::Spawn(format!(
                "the '{name}' job could not start"
            ))));
        }
    }
}

/// What a job's panic message calls it.
fn job_label(name: &str) -> &'static str {
    match name {
        "adapters" => "looking for GPUs",
        "dialog" => "the file dialog",
        "vgg" => "checking the VGG19 weights",
        "runs" => "listing runs",
        "model" => "opening the model",
        "batch" => "folder conversion",
        "save" => "saving",
        _ => "scanning the folder",
    }
}

fn check_vgg(explicit: Option<PathBuf>) -> VggStatus {
    let path = match explicit {
        Some(p) => p,
        None => match crate::interop::vgg::find_cached_vgg19() {
            Some(p) => p,
            None => return VggStatus::Missing,
        },
    };
    // Loading proves the file holds the expected tensors; the CPU device is cheap.
    match crate::interop::vgg::load_vgg19(&path, &Device::flex()) {
        Ok(_) => VggStatus::Found(path),
        Err(e) => VggStatus::Invalid(path, e),
    }
}

/// Opens a model file on the CPU, so a broken file is reported when it is
/// imported, not later when a photo is converted with it.
fn check_model(path: &Path) -> Result<CheckedModel, WorkerError> {
    let loaded = load_generator(path, &Device::flex(), None)?;
    Ok(CheckedModel {
        spec: ModelSpec::imported(path),
        description: loaded.description,
    })
}

fn run_batch(
    model: &ModelSpec,
    input: &Path,
    output: &Path,
    style: &StyleChoice,
    device: &DeviceSetting,
    cancel: &AtomicBool,
    sink: &EventSink,
) -> Result<BatchSummary, WorkerError> {
    let selected = device.create();
    let loaded = super::convert::open_model(model, &selected.device)?;
    let styled = styled(loaded, &model.path, *style, &selected.device)?;
    let jobs = plan_jobs(&[input.to_path_buf()], output, None);
    if jobs.is_empty() {
        return Err(WorkerError::NothingToConvert(input.to_path_buf()));
    }
    let mut last_sent = std::time::Instant::now();
    let mut progress = |done: usize, total: usize, _: &Path| {
        if done == 0 || done == total || last_sent.elapsed().as_millis() >= 100 {
            last_sent = std::time::Instant::now();
            sink.send(WorkerEvent::BatchProgress { done, total });
        }
    };
    let options = options_for_backend(style, styled.photo_blend, selected.is_gpu_backend);
    let report = convert_batch(
        &styled.generator,
        &jobs,
        &options,
        &selected.device,
        cancel,
        Some(&styled.recipe),
        &mut progress,
    );
    Ok(BatchSummary {
        output: output.to_path_buf(),
        converted: report.converted.len(),
        skipped_existing: report.skipped_existing.len(),
        failed: report.failed,
        cancelled: report.cancelled,
    })
}

/// Converts a clip on the CPU engine (weights read from a Flex copy of the
/// model), reporting progress at most ten times a second.
fn run_video(
    model: &ModelSpec,
    input: &Path,
    output: &Path,
    style: &StyleChoice,
    (codec, quality): (VideoCodec, VideoQuality),
    cancel: &AtomicBool,
    sink: &EventSink,
) -> Result<crate::video::VideoReport, WorkerError> {
    use crate::video::ffmpeg::{Container, EncodeSettings, FfmpegTools};
    let device = burn::tensor::Device::flex();
    let loaded = super::convert::open_model(model, &device)?;
    let styled = styled(loaded, &model.path, *style, &device)?;
    let options = options_for_backend(style, styled.photo_blend, false);
    let mut styler = crate::video::FrameStyler::new(
        &styled.generator,
        options,
        Some(crate::video::temporal::DEFAULT_ALPHA),
    )?;
    // A .webm holds VP9 only: a name chosen in "Save as..." wins over the codec
    // picker, with the picker's quality.
    let codec = match Container::of(output)? {
        Container::Webm => VideoCodec::Vp9,
        Container::Mp4 | Container::Mov | Container::Matroska => codec,
    };
    let encode = EncodeSettings {
        codec,
        crf: Some(quality.crf(codec)),
    };
    let mut last_sent: Option<std::time::Instant> = None;
    let report = crate::video::convert_video(
        &mut styler,
        &FfmpegTools::default(),
        input,
        output,
        &encode,
        cancel,
        &mut |p| {
            if last_sent.is_none_or(|t| t.elapsed().as_millis() >= 100) {
                last_sent = Some(std::time::Instant::now());
                sink.send(WorkerEvent::VideoProgress(p.clone()));
            }
        },
    )?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::worker::protocol::FolderRole;
    use std::time::Duration;

    fn next(events: &crossbeam_channel::Receiver<WorkerEvent>) -> WorkerEvent {
        events.recv_timeout(Duration::from_secs(30)).unwrap()
    }

    /// A job that panics answers with its own event (the batch's progress bar goes
    /// away), and its exclusive slot is free again.
    #[test]
    fn a_crashed_job_still_answers_and_frees_its_slot() {
        let (sink, events) = EventSink::channel();
        let jobs = Jobs::new(sink);
        jobs.spawn(
            "batch",
            Some(ExclusiveJob::Batch),
            |_| panic!("boom"),
            |e| WorkerEvent::BatchFinished(Err(e)),
        );
        match next(&events) {
            WorkerEvent::BatchFinished(Err(WorkerError::Crashed { detail, .. })) => {
                assert_eq!(detail, "boom")
            }
            other => panic!("unexpected {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(100));
        jobs.spawn(
            "batch",
            Some(ExclusiveJob::Batch),
            |_| WorkerEvent::BatchFinished(Ok(BatchSummary::default())),
            |e| WorkerEvent::BatchFinished(Err(e)),
        );
        assert!(matches!(next(&events), WorkerEvent::BatchFinished(Ok(_))));
    }

    /// A second scan while the first runs is not refused: both are answered, so
    /// the newest generation always arrives.
    #[test]
    fn scans_are_never_refused() {
        let (sink, events) = EventSink::channel();
        let jobs = Jobs::new(sink);
        let demo = crate::demo_dir();
        for (generation, dir) in [(1, demo.join("photos")), (2, demo.join("style"))] {
            jobs.run(JobRequest::Scan {
                role: FolderRole::Photos,
                generation,
                dir,
            });
        }
        let mut seen = Vec::new();
        for _ in 0..2 {
            match next(&events) {
                WorkerEvent::Scanned {
                    generation, result, ..
                } => {
                    assert!(result.is_ok());
                    seen.push(generation);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        seen.sort_unstable();
        assert_eq!(seen, vec![1, 2]);
    }

    /// A second exclusive job is answered with Busy, not dropped.
    #[test]
    fn a_second_dialog_is_busy() {
        let (sink, events) = EventSink::channel();
        let jobs = Jobs::new(sink);
        let (release, wait) = crossbeam_channel::bounded::<()>(0);
        jobs.spawn(
            "dialog",
            Some(ExclusiveJob::Dialog),
            move |_| {
                let _ = wait.recv();
                WorkerEvent::DialogFailed(WorkerError::NoDialog)
            },
            WorkerEvent::DialogFailed,
        );
        jobs.spawn(
            "dialog",
            Some(ExclusiveJob::Dialog),
            |_| WorkerEvent::DialogFailed(WorkerError::NoDialog),
            WorkerEvent::DialogFailed,
        );
        assert!(matches!(
            next(&events),
            WorkerEvent::Busy(ExclusiveJob::Dialog)
        ));
        release.send(()).unwrap();
        assert!(matches!(next(&events), WorkerEvent::DialogFailed(_)));
    }

    /// Importing a file that is not a model fails at once, with the reason.
    #[test]
    fn a_broken_model_file_is_reported_when_imported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.pt");
        std::fs::write(&path, b"not a pickle").unwrap();
        let (sink, events) = EventSink::channel();
        Jobs::new(sink).run(JobRequest::CheckModel { path: path.clone() });
        match next(&events) {
            WorkerEvent::ModelChecked { path: p, result } => {
                assert_eq!(p, path);
                assert!(result.is_err());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
